"""The requestor's public entry points: `echo()` raises, `probe()` returns a record.

`echo()` resolves, connects, and runs the shared association procedure on the asyncio driver.
The absolute deadline (`Timeouts.total`) covers resolution, connection and every phase after;
each phase also has its own timeout. Cancelling the calling task aborts the association.
"""

from __future__ import annotations

import asyncio
import socket
from functools import lru_cache
from time import perf_counter
from typing import TYPE_CHECKING, Any

from echoprobe.errors import (
    EchoprobeError,
    EchoStatusError,
    ProbeError,
)
from echoprobe.net import fastpath
from echoprobe.net.addresses import format_address, literal_family, strip_brackets
from echoprobe.net.aio import (
    AssociationProtocol,
    Deadline,
    connect_socket,
    factory_of,
    start_tls,
)
from echoprobe.net.association import AssociationOutcome, EchoTally, Observer
from echoprobe.net.budget import DEFAULT_TIMEOUTS, least, remaining
from echoprobe.net.errors_map import connect_timeout_error, map_connect_error, map_resolve_error
from echoprobe.net.fastpath import FastAssociation
from echoprobe.net.procedure import start_procedure
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.results import EchoResult, Outcome, PeerInfo, ProbeResult
from echoprobe.ul.constants import IMPLICIT_VR_LITTLE_ENDIAN

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig


@lru_cache(maxsize=256)
def _options(
    calling_ae: str,
    called_ae: str,
    max_pdu: int,
    repeat: int,
    *,
    transfer_syntaxes: tuple[str, ...] = (IMPLICIT_VR_LITTLE_ENDIAN,),
    contexts: int = 1,
    release: bool = True,
) -> AssociationOptions:
    # Sweeps and load tests run thousands of associations with the same few option sets:
    # validate each once, and hand the same object to the request and fast-path caches.
    return AssociationOptions(
        calling_ae=calling_ae,
        called_ae=called_ae,
        max_pdu=max_pdu,
        transfer_syntaxes=transfer_syntaxes,
        contexts=contexts,
        repeat=repeat,
        release=release,
    )


async def resolve_host(
    loop: asyncio.AbstractEventLoop, host: str, port: int, limit: float | None
) -> list[tuple[int, tuple[object, ...]]]:
    family = literal_family(host)
    if family is not None:
        return [(family, (strip_brackets(host), port))]
    try:
        async with asyncio.timeout(limit):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise map_resolve_error(host, TimeoutError("resolution timed out")) from exc
    except (OSError, UnicodeError) as exc:
        raise map_resolve_error(host, exc) from exc
    return [(info[0], info[4]) for info in infos]


async def run_echo(
    host: str,
    port: int,
    options: AssociationOptions,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    *,
    observer: Observer | None = None,
    timings: dict[str, float] | None = None,
    peer: dict[str, object] | None = None,
    local_address: tuple[str, int] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
    tally: EchoTally | None = None,
) -> AssociationOutcome:
    """Resolve, connect and run the association; `timings`/`peer` are filled as it goes, so a
    caller keeps partial facts when it fails. With `tls`, the TLS handshake follows the
    connection under `Timeouts.tls` and `peer` receives the `PeerInfo.tls_*` facts; `tally`
    counts successful C-ECHOs as they arrive."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio, or another anyio backend
        # The portable driver, imported here because it imports this module, and so that the
        # asyncio path never imports anyio.
        from echoprobe.net.portable import run_echo_portable  # noqa: PLC0415 - avoids a cycle

        return await run_echo_portable(
            host,
            port,
            options,
            timeouts,
            observer=observer,
            timings=timings,
            peer=peer,
            local_address=local_address,
            tally=tally,
            tls=tls,
        )
    clock = perf_counter
    timings = {} if timings is None else timings
    start = clock()
    total_deadline = None if timeouts.total is None else start + timeouts.total
    address = format_address(host, port)

    candidates = await resolve_host(
        loop, host, port, least(timeouts.connect, remaining(total_deadline, start))
    )
    now = clock()
    timings["resolve"] = (now - start) * 1000.0

    proto: AssociationProtocol | FastAssociation
    if observer is None and fastpath.usable(options, timeouts):
        proto = FastAssociation(options, timeouts, loop, timings, total_deadline, tally=tally)
    else:
        conn, flow = start_procedure(
            options,
            timeouts,
            clock,
            now,
            total_deadline,
            observer=observer,
            timings=timings,
            tally=tally,
        )
        proto = AssociationProtocol(conn, flow, loop)
    # Cancellation at any await (connect, TLS, the association) aborts (A-ABORT if
    # associated), closes, and leaves no outcome behind that nobody would read.
    connected = False
    try:
        connect_limit = least(timeouts.connect, remaining(total_deadline, now))
        last_error: ProbeError | None = None
        context, server_hostname = (None, None) if tls is None else _tls_settings(tls, host)
        raw: socket.socket | None = None
        for family, sockaddr in candidates:
            try:
                with Deadline(loop, connect_limit):
                    if context is not None:
                        address_tuple = (str(sockaddr[0]), port, *sockaddr[2:])
                        raw = await connect_socket(loop, family, address_tuple, local_address)
                        last_error = None
                        break
                    if local_address is not None:
                        # Our own socket, so that the source port is chosen at connect time.
                        address_tuple = (str(sockaddr[0]), port, *sockaddr[2:])
                        own = await connect_socket(loop, family, address_tuple, local_address)
                        try:
                            await loop.create_connection(factory_of(proto), sock=own)
                        except BaseException:
                            own.close()
                            raise
                        last_error = None
                        break
                    await loop.create_connection(
                        factory_of(proto),
                        sock=None,
                        host=str(sockaddr[0]),
                        port=port,
                        family=family,
                        local_addr=local_address,
                    )
                last_error = None
                break
            except TimeoutError as exc:
                proto.abort_now()
                passed = total_deadline is not None and clock() >= total_deadline
                raise connect_timeout_error(address, deadline_passed=passed) from exc
            except OSError as exc:
                last_error = map_connect_error(exc, address=address)
        if last_error is not None:
            raise last_error
        connected = True
        timings["connect"] = (clock() - now) * 1000.0
        if peer is not None:
            peer["address"] = address
        if context is not None and raw is not None:
            tls_start = clock()
            await start_tls(
                loop,
                proto,
                raw,
                context,
                server_hostname=server_hostname,
                handshake_timeout=timeouts.tls,
                total_deadline=total_deadline,
                clock=clock,
            )
            timings["tls"] = (clock() - tls_start) * 1000.0
            if peer is not None:
                from echoprobe.net.tls import session_facts  # noqa: PLC0415 - only with TLS

                peer.update(session_facts(proto.ssl_object()))
        # Awaited here, not in a helper coroutine (one object less per association in
        # flight). Not shielded (a shield costs a future and two callbacks per association):
        # cancelling the task cancels `done` too, and abort_now() still aborts the procedure.
        return await proto.done
    except asyncio.CancelledError:
        if connected:
            proto.abort_now()
        else:
            proto.detach()
        raise


def _tls_settings(tls: TLSConfig | ssl.SSLContext, host: str) -> tuple[ssl.SSLContext, str | None]:
    from echoprobe.net.tls import client_settings  # noqa: PLC0415 - ssl only with TLS

    return client_settings(tls, host)


async def echo(
    host: str,
    port: int = 104,
    *,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    max_pdu: int = 16384,
    transfer_syntaxes: tuple[str, ...] = (IMPLICIT_VR_LITTLE_ENDIAN,),
    contexts: int = 1,
    repeat: int = 1,
    release: bool = True,
    observer: Observer | None = None,
    local_address: tuple[str, int] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
) -> EchoResult:
    """Verify a DICOM peer with C-ECHO over one association; raise if it fails.

    Resolves `host`, connects, negotiates the Verification SOP Class, sends `repeat`
    C-ECHO-RQs, and releases. Cancelling the calling task aborts the association (A-ABORT
    when associated) and closes the socket.

    Args:
        host: a host name or an IPv4/IPv6 literal (brackets allowed: "[::1]").
        port: the peer's TCP port (default 104, the DICOM port).
        calling_ae: our AE title (default "ECHOSCU"; at most 16 characters).
        called_ae: the peer's AE title (default "ANY-SCP").
        timeouts: per-phase and total deadlines (default `Timeouts()`: connect 10 s, TLS
            10 s, ACSE 30 s, DIMSE 30 s, release 10 s, the whole association 60 s).
        max_pdu: our maximum receive PDU length (default 16384; 0 = no limit).
        transfer_syntaxes: the transfer syntax UIDs proposed (default Implicit VR Little
            Endian).
        contexts: how many Verification presentation contexts to propose (default 1).
        repeat: C-ECHOs sent on the association (default 1).
        release: end with A-RELEASE (default True) or, if False, with A-ABORT.
        observer: an `Observer` that sees each PDU sent and received (logging, tests).
        local_address: (host, port) to bind our end to, e.g. ("127.0.0.2", 0).
        tls: DICOM over TLS: a `TLSConfig`, or a ready-made client `ssl.SSLContext`
            (default None: plain TCP).

    Returns:
        An `EchoResult`: each reply's status, the peer's negotiated parameters and
        implementation, per-phase timings in ms, and how the release went (`release`;
        a release that timed out or failed does not make `echo()` raise).

    Every exception is a `ProbeError` with a stable `outcome` string and the `phase` it
    happened in.

    Raises:
        DNSError: `host` did not resolve.
        ConnectionRefused: nothing listens there (also a builtin `ConnectionRefusedError`).
        ConnectTimeout, AssociationTimeout, DIMSETimeout, DeadlineExceeded: a deadline of
            `timeouts` expired (all are builtin `TimeoutError`s).
        TLSError: the TLS handshake failed (`TLSVerifyFailed`: the certificate did not verify).
        AssociationRejected: A-ASSOCIATE-RJ (`result`, `source`, `reason` as the peer sent).
        AssociationAborted: the peer sent A-ABORT.
        NoAcceptedContext: the peer accepted no Verification presentation context.
        ProtocolError, DIMSEError: the peer broke PS3.8/PS3.7 (we aborted).
        ConnectionLost: the peer closed or reset the connection.
        EchoStatusError: a C-ECHO-RSP had a non-success status (`status`,
            `error_comment`; its `.result` holds the `EchoResult`).
    """
    options = _options(
        calling_ae,
        called_ae,
        max_pdu,
        repeat,
        transfer_syntaxes=tuple(transfer_syntaxes),
        contexts=contexts,
        release=release,
    )
    start = perf_counter()
    timings: dict[str, float] = {}
    peer_facts: dict[str, object] = {}
    outcome = await run_echo(
        host,
        port,
        options,
        timeouts,
        observer=observer,
        timings=timings,
        peer=peer_facts,
        local_address=local_address,
        tls=tls,
    )
    timings["total"] = (perf_counter() - start) * 1000.0
    result = _echo_result(host, port, options, outcome, timings, peer_facts=peer_facts)
    for reply in result.replies:
        if reply.status != 0:
            error = EchoStatusError(reply.status, reply.error_comment)
            error.result = result  # type: ignore[attr-defined]
            raise error
    return result


def _echo_result(
    host: str,
    port: int,
    options: AssociationOptions,
    outcome: AssociationOutcome,
    timings: dict[str, float],
    *,
    peer_facts: dict[str, object] | None = None,
) -> EchoResult:
    neg = outcome.negotiated
    facts = peer_facts or {}
    return EchoResult(
        host=host,
        port=port,
        calling_ae=options.calling_ae,
        called_ae=options.called_ae,
        replies=tuple(outcome.replies),
        peer=PeerInfo(
            address=format_address(host, port),
            implementation_class_uid=neg.peer_implementation_class_uid,
            implementation_version_name=neg.peer_implementation_version_name,
            max_pdu=neg.peer_max_pdu,
            transfer_syntax=neg.transfer_syntax,
            context_id=neg.context_id,
            tls_protocol=_text(facts.get("tls_protocol")),
            tls_cipher=_text(facts.get("tls_cipher")),
            tls_peer_subject=_text(facts.get("tls_peer_subject")),
            tls_peer_not_after=_text(facts.get("tls_peer_not_after")),
        ),
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        release=outcome.release,
        warnings=neg.warnings,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def error_detail(exc: BaseException) -> dict[str, object]:
    """The peer's own words for a failure, as JSON-ready values."""
    detail: dict[str, object] = {}
    for attr in (
        "result",
        "source",
        "reason",
        "status",
        "error_comment",
        "abort_reason",
        "pdu_type",
        "code",
        "timer",
        "mid_pdu",
        "peer_max_pdu",
        "host",
    ):
        value = getattr(exc, attr, None)
        if isinstance(value, int | str | bool):
            detail[attr] = value
    return detail


async def probe(
    host: str,
    port: int = 104,
    *,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    max_pdu: int = 16384,
    repeat: int = 1,
    target: str | None = None,
    name: str | None = None,
    tags: tuple[str, ...] = (),
    local_address: tuple[str, int] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
) -> ProbeResult:
    """Verify a DICOM peer with C-ECHO and return one record; never raise for its failure.

    Runs the same association as `echo()`; every failure becomes a `ProbeResult` whose
    `outcome` is a stable `Outcome` string (`success`, `connection_refused`, `acse_timeout`,
    `rejected_permanent`, `echo_failed_status`, `release_timeout`, ...), with the `phase` it
    happened in, the peer's own words in `detail`, per-phase timings and an `error` text.

    Args:
        host: a host name or an IPv4/IPv6 literal, as for `echo()`.
        port: the peer's TCP port (default 104).
        calling_ae: our AE title (default "ECHOSCU").
        called_ae: the peer's AE title (default "ANY-SCP").
        timeouts: as for `echo()` (default `Timeouts()`, whose total deadline is 60 s).
        max_pdu: our maximum receive PDU length (default 16384).
        repeat: C-ECHOs sent on the association (default 1).
        local_address: (host, port) to bind our end to (default None).
        tls: DICOM over TLS, as for `echo()` (default None: plain TCP).
        target: the record's `target` text (default "CALLED_AE@host:port").
        name: the peer's inventory name, copied into the record (default None).
        tags: the peer's inventory tags (department, site, ...), copied into the record.

    Returns:
        A `ProbeResult`; `result.ok` tells whether the verification succeeded.

    Nothing is raised for the peer's failure.

    Raises:
        asyncio.CancelledError: the calling task was cancelled (the association is aborted;
            the caller decides how to record it).
    """
    options = _options(calling_ae, called_ae, max_pdu, repeat)
    start = perf_counter()
    timings: dict[str, float] = {}
    peer_facts: dict[str, object] = {}

    def record(**fields: Any) -> ProbeResult:
        return ProbeResult(
            target=target or f"{called_ae}@{format_address(host, port)}",
            host=host,
            port=port,
            called_ae=called_ae,
            calling_ae=calling_ae,
            name=name,
            tags=tags,
            **fields,
        )

    try:
        outcome = await run_echo(
            host,
            port,
            options,
            timeouts,
            timings=timings,
            peer=peer_facts,
            local_address=local_address,
            tls=tls,
        )
    except ProbeError as exc:
        timings["total"] = (perf_counter() - start) * 1000.0
        return record(
            outcome=Outcome(exc.outcome),
            detail=error_detail(exc),
            timings_ms={k: round(v, 3) for k, v in timings.items()},
            error=str(exc),
            phase=exc.phase,
        )
    except EchoprobeError as exc:
        timings["total"] = (perf_counter() - start) * 1000.0
        return record(
            outcome=Outcome.INTERNAL_ERROR,
            error=f"{type(exc).__name__}: {exc}",
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )
    timings["total"] = (perf_counter() - start) * 1000.0
    result = _echo_result(host, port, options, outcome, timings, peer_facts=peer_facts)
    status = result.status
    if not result.ok:
        kind = Outcome.ECHO_FAILED_STATUS
    elif outcome.release == "release_timeout":
        kind = Outcome.RELEASE_TIMEOUT
    elif outcome.release in ("peer_aborted", "connection_closed", "protocol_error"):
        kind = Outcome.RELEASE_FAILED
    else:
        kind = Outcome.SUCCESS
    failing = next((r for r in result.replies if r.status != 0), None)
    detail: dict[str, object] = {"release": outcome.release}
    if failing is not None:
        status = failing.status
        detail["status"] = failing.status
        if failing.error_comment:
            detail["error_comment"] = failing.error_comment
    if outcome.release_error is not None:
        detail["release_error"] = str(outcome.release_error)
    return record(
        outcome=kind,
        status=status,
        detail=detail,
        timings_ms=result.timings_ms,
        peer=result.peer,
        echoes=len(result.replies),
        error=None
        if kind is Outcome.SUCCESS
        else (str(outcome.release_error) if outcome.release_error else f"status 0x{status:04X}"),
        phase=_PHASE_OF.get(kind),
    )


# Where a record that is not an exception's went wrong (an exception carries its own phase).
_PHASE_OF: dict[Outcome, str] = {
    Outcome.ECHO_FAILED_STATUS: "echo",
    Outcome.RELEASE_TIMEOUT: "release",
    Outcome.RELEASE_FAILED: "release",
}
