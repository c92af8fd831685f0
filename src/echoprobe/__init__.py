"""echoprobe: high-concurrency DICOM Verification (C-ECHO) prober.

The public API is imported lazily (PEP 562), so that `import echoprobe` stays cheap: the
`echoscu` drop-in must start faster than DCMTK's, and asyncio alone costs more than that.

    import echoprobe
    result = await echoprobe.echo("pacs.example.org", 104, called_ae="PACS")
    record = await echoprobe.probe("127.0.0.1", 11112)       # never raises for the peer
    async with echoprobe.sweep(targets, concurrency=256) as results:
        async for record in results: ...
    async with echoprobe.EchoSCP(port=0) as scp: ...

Every exception is an `EchoprobeError`; every timeout is also a builtin `TimeoutError` and
`ConnectionRefused` a builtin `ConnectionRefusedError`. Inventories: `load_targets(path)`.
"""

from __future__ import annotations

# Not `typing.TYPE_CHECKING`: importing typing is part of the start-up cost this file avoids.
TYPE_CHECKING = False

__version__ = "0.1.0"

# name → module that defines it
_EXPORTS = {
    "echo": "echoprobe.net.client",
    "probe": "echoprobe.net.client",
    "sweep": "echoprobe.fleet.sweep",
    "run_load": "echoprobe.fleet.load",
    "find_capacity": "echoprobe.fleet.capacity",
    "TLSConfig": "echoprobe.net.tls",
    "EchoSCP": "echoprobe.net.server",
    "Faults": "echoprobe.net.server",
    "Timeouts": "echoprobe.options",
    "Target": "echoprobe.fleet.targets",
    "InvalidTarget": "echoprobe.fleet.targets",
    "load_targets": "echoprobe.fleet.targets",
    "TargetFileError": "echoprobe.fleet.targets",
    "AssociationOptions": "echoprobe.options",
    "EchoResult": "echoprobe.results",
    "EchoReply": "echoprobe.results",
    "ProbeResult": "echoprobe.results",
    "PeerInfo": "echoprobe.results",
    "Outcome": "echoprobe.results",
    "Phase": "echoprobe.results",
    "EchoprobeError": "echoprobe.errors",
    "ProbeError": "echoprobe.errors",
    "NetworkError": "echoprobe.errors",
    "DNSError": "echoprobe.errors",
    "ConnectionRefused": "echoprobe.errors",
    "ConnectionLost": "echoprobe.errors",
    "ConnectTimeout": "echoprobe.errors",
    "TLSError": "echoprobe.errors",
    "AssociationTimeout": "echoprobe.errors",
    "DIMSETimeout": "echoprobe.errors",
    "ReleaseTimeout": "echoprobe.errors",
    "DeadlineExceeded": "echoprobe.errors",
    "AssociationRejected": "echoprobe.errors",
    "AssociationAborted": "echoprobe.errors",
    "ProtocolError": "echoprobe.errors",
    "NoAcceptedContext": "echoprobe.errors",
    "DIMSEError": "echoprobe.errors",
    "EchoStatusError": "echoprobe.errors",
    "RemoteProtocolError": "echoprobe.errors",
}

__all__ = [
    "AssociationAborted",
    "AssociationOptions",
    "AssociationRejected",
    "AssociationTimeout",
    "ConnectTimeout",
    "ConnectionLost",
    "ConnectionRefused",
    "DIMSEError",
    "DIMSETimeout",
    "DNSError",
    "DeadlineExceeded",
    "EchoReply",
    "EchoResult",
    "EchoSCP",
    "EchoStatusError",
    "EchoprobeError",
    "Faults",
    "InvalidTarget",
    "NetworkError",
    "NoAcceptedContext",
    "Outcome",
    "PeerInfo",
    "Phase",
    "ProbeError",
    "ProbeResult",
    "ProtocolError",
    "ReleaseTimeout",
    "RemoteProtocolError",
    "TLSConfig",
    "TLSError",
    "Target",
    "TargetFileError",
    "Timeouts",
    "__version__",
    "echo",
    "find_capacity",
    "load_targets",
    "probe",
    "run_load",
    "sweep",
]

if TYPE_CHECKING:
    from echoprobe.errors import (
        AssociationAborted,
        AssociationRejected,
        AssociationTimeout,
        ConnectionLost,
        ConnectionRefused,
        ConnectTimeout,
        DeadlineExceeded,
        DIMSEError,
        DIMSETimeout,
        DNSError,
        EchoprobeError,
        EchoStatusError,
        NetworkError,
        NoAcceptedContext,
        ProbeError,
        ProtocolError,
        ReleaseTimeout,
        RemoteProtocolError,
        TLSError,
    )
    from echoprobe.fleet.capacity import find_capacity
    from echoprobe.fleet.load import run_load
    from echoprobe.fleet.sweep import sweep
    from echoprobe.fleet.targets import InvalidTarget, Target, TargetFileError, load_targets
    from echoprobe.net.client import echo, probe
    from echoprobe.net.server import EchoSCP, Faults
    from echoprobe.net.tls import TLSConfig
    from echoprobe.options import AssociationOptions, Timeouts
    from echoprobe.results import EchoReply, EchoResult, Outcome, PeerInfo, Phase, ProbeResult


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'echoprobe' has no attribute {name!r}")
    # __import__ with a fromlist returns the submodule itself, as importlib.import_module
    # would; importlib is not imported for it (start-up time again).
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
