"""The portable driver: anyio streams feed the association procedure (trio, or any anyio backend).

Why it exists: the asyncio driver (`aio.py`) is built on `asyncio.Protocol` callbacks, the
measured fast path, and cannot run inside trio. This driver runs the same generator
(`association.run_association`) over an anyio `SocketStream`, so `echo()` and `probe()` work
in trio services, DICOM over TLS included (anyio's `TLSStream`, errors mapped as on asyncio).
anyio's stream layer costs ~3x on the per-byte path (docs/performance.md);
that is acceptable here, where portability is the point. `client.run_echo` dispatches here
when the running async library is not asyncio.

Rules (the same as every driver's, architecture rule 3):
- it only moves bytes: the procedure decides; deadlines come from each `Wait`, in
  `time.perf_counter` seconds, and are translated into anyio's clock when a scope is armed;
- the absolute deadline (`Timeouts.total`) covers resolution, connection and every phase;
- OS errors become echoprobe errors through `errors_map` only;
- cancellation sends A-ABORT (when the state allows) and closes the stream, shielded from the
  cancellation and bounded by `_CLOSE_GRACE`; the stream is closed on every exit path.
"""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
from time import perf_counter
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from echoprobe.errors import ConnectionLost, ProbeError
from echoprobe.net.addresses import format_address, literal_family, strip_brackets
from echoprobe.net.association import (
    AssociationOutcome,
    Driver,
    EchoTally,
    Observer,
    TimedOut,
    Wait,
)
from echoprobe.net.budget import DEFAULT_TIMEOUTS, least, remaining
from echoprobe.net.errors_map import connect_timeout_error, map_connect_error, map_resolve_error
from echoprobe.net.procedure import start_procedure
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.ul.connection import ULConnection

if TYPE_CHECKING:
    from echoprobe.net.tls import TLSConfig

_RECV_SIZE = 65536
# How long the last bytes (an A-ABORT, or what the procedure left to send) may take to leave
# when the association ends, cancelled or not; the stream is closed after it either way.
_CLOSE_GRACE = 0.5
# A send is bounded by the wait's deadline, but gets at least this long (as the blocking driver).
_MIN_SEND_WINDOW = 0.001
# Transport failures while reading or writing: the peer is gone; the procedure decides what
# that means (it sees an EOF, as with the other drivers).
_STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def _anyio_deadline(deadline: float | None, *, at_least: float = 0.0) -> float:
    """A `perf_counter` deadline translated into anyio's clock (inf = none)."""
    if deadline is None:
        return math.inf
    return anyio.current_time() + max(deadline - perf_counter(), at_least)


async def _resolve(host: str, port: int, limit: float | None) -> list[tuple[int, str]]:
    """(family, address) candidates for `host`; literals are not resolved."""
    family = literal_family(host)
    if family is not None:
        return [(family, strip_brackets(host))]
    try:
        with anyio.fail_after(limit):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise map_resolve_error(host, TimeoutError("resolution timed out")) from exc
    except (OSError, UnicodeError) as exc:
        raise map_resolve_error(host, exc) from exc
    if not infos:  # anyio drops IPv6 results when IPv6 is disabled
        raise map_resolve_error(host, OSError("no usable address"))
    return [(int(info[0]), str(info[4][0])) for info in infos]


def _os_cause(exc: OSError) -> BaseException:
    """The OS error under anyio's "All connection attempts failed" wrapper, if any."""
    cause = exc.__cause__
    if exc.errno is None:
        if isinstance(cause, OSError):
            return cause
        if isinstance(cause, BaseExceptionGroup):
            for inner in cause.exceptions:
                if isinstance(inner, OSError):
                    return inner
    return exc


async def _connect(
    address: str, port: int, local_address: tuple[str, int] | None
) -> anyio.abc.SocketStream:
    if local_address is None:
        return await anyio.connect_tcp(address, port)
    local_host, local_port = local_address
    if local_port:
        return await anyio.connect_tcp(address, port, local_host=local_host, local_port=local_port)
    return await anyio.connect_tcp(address, port, local_host=local_host)


async def run_echo_portable(
    host: str,
    port: int,
    options: AssociationOptions,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    *,
    observer: Observer | None = None,
    tally: EchoTally | None = None,
    timings: dict[str, float] | None = None,
    peer: dict[str, object] | None = None,
    local_address: tuple[str, int] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
) -> AssociationOutcome:
    """`client.run_echo` on anyio: resolve, connect (and run the TLS handshake under
    `Timeouts.tls`) and run the association; `timings`/`peer` are filled as it goes, so a
    caller keeps partial facts when it fails."""
    clock = perf_counter
    timings = {} if timings is None else timings
    start = clock()
    total_deadline = None if timeouts.total is None else start + timeouts.total
    address = format_address(host, port)

    candidates = await _resolve(
        host, port, least(timeouts.connect, remaining(total_deadline, start))
    )
    now = clock()
    timings["resolve"] = (now - start) * 1000.0

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
    connect_limit = least(timeouts.connect, remaining(total_deadline, now))
    stream: anyio.abc.SocketStream | None = None
    last_error: ProbeError | None = None
    for _family, candidate in candidates:
        try:
            with anyio.fail_after(connect_limit):
                stream = await _connect(candidate, port, local_address)
            last_error = None
            break
        except TimeoutError as exc:
            flow.close()
            passed = total_deadline is not None and clock() >= total_deadline
            raise connect_timeout_error(address, deadline_passed=passed) from exc
        except OSError as exc:
            last_error = map_connect_error(_os_cause(exc), address=address)
    if last_error is not None or stream is None:
        flow.close()
        raise last_error or ConnectionLost(f"cannot connect to {address}", phase="connect")
    # anyio sets TCP_NODELAY itself today; set it here too, as every driver does (S610: this
    # `extra` is anyio's typed attribute lookup, not Django's).
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)  # noqa: S610
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    timings["connect"] = (clock() - now) * 1000.0
    if peer is not None:
        peer["address"] = address
    byte_stream: anyio.abc.ByteStream = stream
    if tls is not None:
        try:
            byte_stream = await _start_tls(
                stream, tls, host, timeouts=timeouts, total_deadline=total_deadline, timings=timings
            )
        except BaseException:
            flow.close()
            raise
        if peer is not None:
            from echoprobe.net.tls import session_facts  # noqa: PLC0415 - only with TLS

            peer.update(session_facts(byte_stream.extra(TLSAttribute.ssl_object)))  # noqa: S610
    conn.connection_made(clock())
    return await _drive(byte_stream, conn, flow)


async def _start_tls(
    stream: anyio.abc.SocketStream,
    tls: TLSConfig | ssl.SSLContext,
    host: str,
    *,
    timeouts: Timeouts,
    total_deadline: float | None,
    timings: dict[str, float],
) -> TLSStream:
    """The TLS handshake on a connected stream, bounded by `Timeouts.tls` and the absolute
    deadline; failures are mapped as the asyncio driver maps them, and the stream closed."""
    from echoprobe.net import tls as tls_support  # noqa: PLC0415 - only with TLS

    context, server_hostname = tls_support.client_settings(tls, host)
    started = perf_counter()
    limit, by_total = tls_support.handshake_limit(timeouts.tls, total_deadline, started)
    try:
        with anyio.fail_after(limit):
            # Not standard-compatible: DICOM peers commonly close without close_notify.
            wrapped = await TLSStream.wrap(
                stream,
                server_side=False,
                hostname=server_hostname,
                ssl_context=context,
                standard_compatible=False,
            )
    except TimeoutError as exc:
        await anyio.aclose_forcefully(stream)
        raise tls_support.handshake_timeout(timeouts.tls, by_total=by_total) from exc
    except (*_STREAM_ERRORS, ssl.SSLError) as exc:
        await anyio.aclose_forcefully(stream)
        cause = exc.__cause__ if isinstance(exc.__cause__, ssl.SSLError | OSError) else exc
        raise tls_support.map_handshake_error(cause) from exc
    timings["tls"] = (perf_counter() - started) * 1000.0
    return wrapped


async def _drive(
    stream: anyio.abc.ByteStream, conn: ULConnection, flow: Driver
) -> AssociationOutcome:
    """Run `flow` over `stream` until it returns or raises; always leaves the stream closed.
    A TLS failure that ended the stream after the handshake (TLS 1.3: the server refusing our
    certificate) is reported as that TLS error, as the asyncio driver does."""
    lost_tls: list[BaseException] = []
    try:
        wait = next(flow)
        while True:
            reply = await _exchange(stream, wait, lost_tls)
            wait = flow.send(reply)
    except StopIteration as stop:
        outcome: AssociationOutcome = stop.value
        await _close(stream, conn)
        return outcome
    except BaseException as exc:
        # The procedure failed (it has chosen what to send), or we were cancelled mid-wait:
        # stop the procedure, abort if still associated, and close, whatever is in flight.
        flow.close()
        if not conn.close_requested:
            conn.abort(perf_counter())
        await _close(stream, conn)
        if isinstance(exc, ConnectionLost) and lost_tls:
            from echoprobe.net.tls import map_handshake_error  # noqa: PLC0415 - TLS only

            raise map_handshake_error(lost_tls[0], phase=exc.phase) from exc
        raise


async def _exchange(
    stream: anyio.abc.ByteStream, wait: Wait, lost_tls: list[BaseException]
) -> bytes | TimedOut:
    """Write `wait.send`, then read: bytes, `b""` for EOF or a dead transport, or which
    timer ran out first (ties go to the deadline, as in the other drivers). A TLS error that
    killed the stream is kept in `lost_tls`."""
    if wait.send:
        with anyio.CancelScope(
            deadline=_anyio_deadline(wait.deadline, at_least=_MIN_SEND_WINDOW)
        ) as scope:
            try:
                await stream.send(wait.send)
            except _STREAM_ERRORS as exc:
                _keep_tls_error(exc, lost_tls)
                return b""
        if scope.cancelled_caught:
            return TimedOut.DEADLINE
    limit = None if wait.deadline is None else wait.deadline - perf_counter()
    which = TimedOut.DEADLINE
    if wait.socket_timeout is not None and (limit is None or wait.socket_timeout < limit):
        limit, which = wait.socket_timeout, TimedOut.SOCKET
    if limit is not None and limit <= 0:
        return which
    with anyio.CancelScope(deadline=math.inf if limit is None else anyio.current_time() + limit):
        try:
            return await stream.receive(_RECV_SIZE)
        except anyio.EndOfStream:
            return b""
        except _STREAM_ERRORS as exc:
            _keep_tls_error(exc, lost_tls)
            return b""  # reset: reported like a close, as the other drivers do
    return which


def _keep_tls_error(exc: BaseException, lost_tls: list[BaseException]) -> None:
    # anyio raises OpenSSL's error itself (an alert) or wraps it (a broken stream).
    for candidate in (exc, exc.__cause__):
        if not lost_tls and candidate is not None and type(candidate).__module__ == "ssl":
            lost_tls.append(candidate)


async def _close(stream: anyio.abc.ByteStream, conn: ULConnection) -> None:
    """Flush what the procedure left to send (an A-ABORT, a last PDU), then close the stream:
    shielded from any cancellation of the caller and bounded by `_CLOSE_GRACE`."""
    with anyio.CancelScope(shield=True):
        data = conn.data_to_send()
        if data:
            with anyio.move_on_after(_CLOSE_GRACE), contextlib.suppress(*_STREAM_ERRORS):
                await stream.send(data)
        await anyio.aclose_forcefully(stream)
