"""The blocking-socket driver: one association on one thread, no asyncio.

It exists for start-up time: `echoscu` runs one association, and importing asyncio costs more
than DCMTK's whole echo (docs/performance.md). It shares the protocol core and the association
procedure with the asyncio driver and only moves bytes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from echoprobe.errors import ConnectionLost, ProbeError
from echoprobe.net.addresses import format_address, literal_family, strip_brackets
from echoprobe.net.association import AssociationOutcome, Driver, TimedOut
from echoprobe.net.errors_map import map_connect_error, map_resolve_error
from echoprobe.ul.connection import ULConnection

# Not typing.TYPE_CHECKING: echoscu's start-up must not pay for importing typing.
TYPE_CHECKING = False

if TYPE_CHECKING:
    import ssl

clock: Callable[[], float] = time.monotonic

_RECV_SIZE = 65536


def resolve(host: str, port: int) -> list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]]:
    """(family, sockaddr) candidates for `host`; literals are not resolved."""
    family = literal_family(host)
    if family is not None:
        bare = strip_brackets(host)
        return [(family, (bare, port) if family == socket.AF_INET else (bare, port, 0, 0))]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise map_resolve_error(host, exc) from exc
    return [(info[0], info[4]) for info in infos]  # type: ignore[misc]


def connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY, trying each resolved address in turn."""
    candidates = resolve(host, port)
    deadline = None if timeout is None else clock() + timeout
    last: ProbeError | None = None
    for family, sockaddr in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if deadline is not None:
                sock.settimeout(max(deadline - clock(), 0.001))
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = map_connect_error(exc, address=format_address(host, port))
            if deadline is not None and clock() >= deadline:
                break
    assert last is not None  # resolve() returns at least one candidate or raises
    raise last


def start_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    timeout: float | None,
    total_deadline: float | None = None,
) -> socket.socket:
    """The TLS client handshake on connected `sock`, bounded as a whole by `timeout` (the
    association's `Timeouts.tls`) and by `total_deadline` (monotonic); returns the TLS socket.
    On failure the socket is closed and a `ProbeError` raised (see `net.tls`)."""
    from echoprobe.net import tls  # noqa: PLC0415 - ssl is imported only when TLS is used

    own = None if timeout is None else clock() + timeout
    by_total = total_deadline is not None and (own is None or total_deadline < own)
    return tls.handshake_blocking(
        sock,
        context,
        server_hostname=server_hostname,
        deadline=total_deadline if by_total else own,
        limit=timeout,
        by_total=by_total,
        clock=clock,
    )


def drive(sock: socket.socket, conn: ULConnection, flow: Driver) -> AssociationOutcome:
    """Run `flow` over `sock` until it returns or raises; always leaves the socket closed."""
    write_error: OSError | None = None
    try:
        wait = next(flow)
        while True:
            if wait.send:
                try:
                    sock.settimeout(
                        None if wait.deadline is None else max(wait.deadline - clock(), 0.001)
                    )
                    sock.sendall(wait.send)
                except OSError as exc:
                    write_error = write_error or exc
                    wait = flow.send(b"")  # the peer is gone; the state machine decides
                    continue
            reply: bytes | TimedOut
            now = clock()
            limit = None if wait.deadline is None else wait.deadline - now
            which = TimedOut.DEADLINE
            if wait.socket_timeout is not None and (limit is None or wait.socket_timeout < limit):
                limit, which = wait.socket_timeout, TimedOut.SOCKET
            if limit is not None and limit <= 0:
                reply = which
            else:
                sock.settimeout(limit)
                try:
                    reply = sock.recv(_RECV_SIZE)
                except TimeoutError:
                    reply = which
                except OSError:
                    reply = b""  # reset: reported like a close, as DCMTK does
            wait = flow.send(reply)
    except StopIteration as stop:
        result: AssociationOutcome = stop.value
        _flush(sock, conn)
        return result
    except ConnectionLost as exc:
        if not conn.close_requested:
            conn.abort(clock())
        _flush(sock, conn)
        if write_error is None or exc.write_error is not None:
            raise
        # Our write failed first (reported as such by DCMTK): say so, not "the peer closed".
        raise ConnectionLost(
            str(exc),
            phase=exc.phase,
            mid_pdu=exc.mid_pdu,
            write_error=write_error.strerror or str(write_error),
        ) from write_error
    except BaseException:
        if not conn.close_requested:
            conn.abort(clock())
        _flush(sock, conn)
        raise
    finally:
        sock.close()


def _flush(sock: socket.socket, conn: ULConnection) -> None:
    data = conn.data_to_send()
    if data:
        try:
            sock.settimeout(1.0)
            sock.sendall(data)
        except OSError:
            pass
