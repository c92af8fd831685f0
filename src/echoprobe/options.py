"""Options of an association: timeouts and what to propose. Frozen values, validated once."""

from __future__ import annotations

from echoprobe._values import value
from echoprobe.ul.constants import IMPLICIT_VR_LITTLE_ENDIAN


@value
class Timeouts:
    """How long each phase of one association may take: seconds, or None for no limit.

    Each one bounds its whole phase, not a single read: a peer trickling one byte a second or
    streaming empty PDVs cannot stretch it. When one expires, `echo()` raises the matching
    `TimeoutError_` subclass (every one is also a builtin `TimeoutError`) and `probe()`
    records its outcome.

    Attributes:
        connect: the TCP connect, each resolved address in turn (default 10 s;
            `ConnectTimeout`, outcome `connect_timeout`; DCMTK's `-to`).
        tls: the TLS handshake, when TLS is used (default 10 s; `TLSHandshakeTimeout`).
        acse: from the A-ASSOCIATE-RQ to the peer's AC or RJ (default 30 s;
            `AssociationTimeout`, outcome `acse_timeout`; DCMTK's `-ta`).
        dimse: each C-ECHO-RQ to its C-ECHO-RSP (default 30 s; `DIMSETimeout`, outcome
            `dimse_timeout`; DCMTK's `-td`).
        release: from our A-RELEASE-RQ to the peer's RP; on expiry we abort (default 10 s;
            the echo verdict stands, outcome `release_timeout`).
        socket: each wait for the rest of a PDU already begun, and every wait of a phase whose
            own timeout is None (default None; DCMTK's `-ts`).
        total: the association's absolute deadline, from the start of name resolution to
            the close (default 60 s; `DeadlineExceeded`, outcome `deadline_exceeded`).

    Why `total` defaults to 60 s: without it the phases add up to 80 s (90 s with TLS) for a
    peer that is slow in every phase, which is too long for a health check to wait on one
    peer. 60 s is at least twice every single phase's default, so a peer stuck in one phase
    is still reported by that phase's own timeout (`acse_timeout`, not `deadline_exceeded`);
    only a peer slow everywhere is cut off by the total. Pass `total=None` for the old,
    unbounded sum (e.g. for a long `repeat`), as `echoscu` does to match DCMTK.
    """

    connect: float | None = 10.0
    tls: float | None = 10.0
    acse: float | None = 30.0
    dimse: float | None = 30.0
    release: float | None = 10.0
    socket: float | None = None
    total: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "tls", "acse", "dimse", "release", "socket", "total"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Timeouts.{name} must be positive or None, not {value!r}")


@value
class AssociationOptions:
    """What the requestor proposes and how it ends the association."""

    calling_ae: str = "ECHOSCU"
    called_ae: str = "ANY-SCP"
    max_pdu: int = 16384
    transfer_syntaxes: tuple[str, ...] = (IMPLICIT_VR_LITTLE_ENDIAN,)
    contexts: int = 1
    repeat: int = 1
    release: bool = True  # False: end with A-ABORT instead of A-RELEASE (echoscu --abort)
    abort_on_failure: bool = True  # send A-ABORT when we give up after the AC
    abort_linger: float = 0.0  # after our A-ABORT, wait this long for the peer to close

    def __post_init__(self) -> None:
        if not 1 <= self.contexts <= 128:
            raise ValueError("contexts must be 1..128")
        if self.repeat < 1:
            raise ValueError("repeat must be at least 1")
        if not 0 <= self.max_pdu <= 0xFFFFFFFF:
            raise ValueError("max_pdu must fit in 32 bits (0 = no limit)")
        if not self.transfer_syntaxes:
            raise ValueError("at least one transfer syntax must be proposed")
