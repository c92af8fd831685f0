"""The asyncio driver: callbacks of an `asyncio.Protocol` feed the association procedure.

Why a Protocol and not streams or anyio: measured here, uvloop + Protocol is the fastest I/O
style (docs/performance.md), and driving the generator from `data_received` means no task
switch per PDU. Deadlines are `loop.call_at` timers, re-armed only when the deadline changes.

Cancellation: if the awaiting task is cancelled, the association is aborted (A-ABORT when the
state allows it) and the transport closed, synchronously, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

from echoprobe.errors import ConnectionLost
from echoprobe.net.association import AssociationOutcome, Driver, TimedOut, Wait
from echoprobe.ul.connection import ULConnection

if TYPE_CHECKING:
    import ssl


# A handshake that fails is reported by asyncio's own `ssl_handshake_timeout`; this outer bound
# only guards against a loop that would not report it.
_HANDSHAKE_GRACE = 1.0
# After the association, the TLS close (close_notify both ways) may take this long before the
# transport is dropped; asyncio's default (30 s) would keep sockets of silent peers around.
TLS_SHUTDOWN_TIMEOUT = 2.0


# Linux's IP_BIND_ADDRESS_NO_PORT (Python 3.11 does not name it).
_BIND_NO_PORT: int | None = getattr(
    socket, "IP_BIND_ADDRESS_NO_PORT", 24 if sys.platform == "linux" else None
)

# A timer that fires this close to the wanted deadline counts as on time (uvloop's clock
# counts milliseconds).
_EARLY = 0.001


class AbortableProtocol(asyncio.Protocol):
    """An association's asyncio protocol, as `start_tls` and the callers of `run_echo` drive
    it: `AssociationProtocol` here, the fast path's `FastAssociation`."""

    __slots__ = ()

    def abort_now(self) -> None:
        """Cancellation: A-ABORT if associated, then close; idempotent."""
        raise NotImplementedError


class AssociationProtocol(AbortableProtocol):
    """Moves bytes between one transport and one `ULConnection` + association procedure."""

    __slots__ = (
        "_conn",
        "_deadline_at",
        "_flow",
        "_loop",
        "_lost_tls",
        "_socket_at",
        "_timer",
        "_timer_at",
        "_transport",
        "_want_at",
        "done",
    )

    def __init__(
        self,
        conn: ULConnection,
        flow: Driver,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[AssociationOutcome] | None = None,
    ) -> None:
        self._conn = conn
        self._flow = flow
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._want_at: float | None = None  # the deadline the procedure is waiting for
        self._deadline_at: float | None = None
        self._socket_at: float | None = None
        self._lost_tls: Exception | None = None  # a TLS error that ended the connection
        self.done: asyncio.Future[AssociationOutcome] = (
            loop.create_future() if done is None else done
        )

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is not a subclass. TCP_NODELAY: both asyncio and uvloop set it on
        # every TCP transport (checked in tests/integration), so no system call here.
        self._transport = cast(asyncio.Transport, transport)
        self._conn.connection_made(perf_counter())
        self._step(None)

    def data_received(self, data: bytes) -> None:
        self._step(data)

    def eof_received(self) -> bool:
        self._step(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if exc is not None and type(exc).__module__ == "ssl":
            # E.g. TLS 1.3: the server refuses our certificate after our handshake finished.
            self._lost_tls = exc
        if not self.done.done():
            self._step(b"")
        if not self.done.done():  # the flow ignored the close: it cannot go on without bytes
            self.done.set_exception(ConnectionLost("connection lost", phase="unknown"))

    # -- driving the procedure

    def _step(self, reply: bytes | TimedOut | None) -> None:
        if self.done.done():
            return
        try:
            wait: Wait = self._flow.send(reply)  # type: ignore[arg-type]
        except StopIteration as stop:
            self._finish()
            self.done.set_result(stop.value)
            return
        except BaseException as exc:
            if not self._conn.close_requested:
                self._conn.abort(perf_counter())
            self._finish()
            if isinstance(exc, ConnectionLost) and self._lost_tls is not None:
                from echoprobe.net.tls import map_handshake_error  # noqa: PLC0415 - TLS only

                exc = map_handshake_error(self._lost_tls, phase=exc.phase)
            self.done.set_exception(exc)
            return
        transport = self._transport
        assert transport is not None
        if wait.send:
            transport.write(wait.send)
        self._arm(wait)

    def adopt(self, transport: asyncio.BaseTransport, wait: Wait) -> None:
        """Take over a connected transport whose procedure has already reached `wait` (its
        bytes already written): the hand-over from the fast path."""
        self._transport = cast(asyncio.Transport, transport)
        self._arm(wait)

    def _arm(self, wait: Wait) -> None:
        # The procedure's clock is time.perf_counter (fine-grained timings); uvloop's loop
        # clock counts whole milliseconds, so deadlines are translated into it here.
        deadline = wait.deadline
        if deadline is not None:
            deadline = self._loop.time() + (deadline - perf_counter())
        socket_at = None
        if wait.socket_timeout is not None:
            socket_at = self._loop.time() + wait.socket_timeout
        when = (
            deadline
            if socket_at is None
            else (socket_at if deadline is None else min(deadline, socket_at))
        )
        self._deadline_at, self._socket_at = deadline, socket_at
        self._want_at = when
        if when is None:
            self._cancel_timer()
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            # The armed timer fires first; _fire() then re-arms for the later deadline. Most
            # steps move the deadline later (every C-ECHO of a long association does), so
            # this saves a timer cancel and create per step.
            return
        self._cancel_timer()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        want = self._want_at
        if want is None:
            return
        if self._loop.time() < want - _EARLY:
            self._timer_at = want
            self._timer = self._loop.call_at(want, self._fire)
            return
        socket_first = self._socket_at is not None and (
            self._deadline_at is None or self._socket_at < self._deadline_at
        )
        self._step(TimedOut.SOCKET if socket_first else TimedOut.DEADLINE)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None

    def _finish(self) -> None:
        self._cancel_timer()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            data = self._conn.data_to_send()
            if data:
                transport.write(data)
            transport.close()

    def ssl_object(self) -> Any:
        """The transport's `ssl.SSLObject` (None without TLS or before the handshake)."""
        transport = self._transport
        return None if transport is None else transport.get_extra_info("ssl_object")

    def detach(self) -> None:
        """Cancellation while connecting: the loop closes the transport it was making (uvloop's
        can no longer be written to, although it does not say it is closing), so only this
        side is wound up."""
        self._cancel_timer()
        self._flow.close()
        if not self.done.done():
            self.done.cancel()
        mark_retrieved(self.done)

    def abort_now(self) -> None:
        """Cancellation: A-ABORT if associated, then close; idempotent."""
        if self.done.done() and not self.done.cancelled():
            mark_retrieved(self.done)
            return  # the procedure had already ended (and closed) on its own
        transport = self._transport
        if self.done.cancelled() and (transport is None or transport.is_closing()):
            return
        self._flow.close()
        if not self._conn.close_requested:
            self._conn.abort(perf_counter())
        self._finish()
        if not self.done.done():
            self.done.cancel()


def mark_retrieved(done: asyncio.Future[Any]) -> None:
    """Mark an outcome (a future or a task) nobody will await as seen, so that a failure set
    on it is not reported as "Future exception was never retrieved"."""
    if done.done() and not done.cancelled():
        done.exception()


def factory_of(proto: asyncio.Protocol) -> Callable[[], asyncio.Protocol]:
    """`create_connection`'s protocol factory for an existing protocol. A helper rather than a
    lambda in the caller, whose `proto` would otherwise live in a closure cell for the whole
    association: one GC-tracked object less per association in flight."""
    return lambda: proto


async def connect_socket(
    loop: asyncio.AbstractEventLoop,
    family: int,
    address: tuple[Any, ...],
    local_address: tuple[str, int] | None = None,
) -> socket.socket:
    """A connected, non-blocking TCP socket (TCP only: TLS starts in `start_tls`)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if local_address is not None:
            if local_address[1] == 0 and _BIND_NO_PORT is not None:
                # Let connect() pick the port: bind() alone would reserve one per source
                # address for any destination, and run out under load (measured: 526 instead of
                # 4,446 associations/s from one source address once TIME_WAIT filled up).
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, _BIND_NO_PORT, 1)
            sock.bind(local_address)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_tls(
    loop: asyncio.AbstractEventLoop,
    proto: AbortableProtocol,
    sock: socket.socket,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    handshake_timeout: float | None,
    total_deadline: float | None,
    clock: Callable[[], float] = perf_counter,
) -> None:
    """Run the TLS handshake on connected `sock` (asyncio's `ssl_handshake_timeout`, bounded by
    `handshake_timeout` and the absolute `total_deadline`), then hand the transport to `proto`,
    whose association starts. On failure `proto` is aborted, the socket closed (by the
    transport, which owns it once asyncio has it) and a `ProbeError` raised."""
    from echoprobe.net import tls  # noqa: PLC0415 - TLS errors are mapped in one place

    started = clock()
    limit, by_total = tls.handshake_limit(handshake_timeout, total_deadline, started)
    if limit is not None and limit <= 0:
        proto.abort_now()
        sock.close()
        raise tls.handshake_timeout(handshake_timeout, by_total=by_total)
    try:
        async with asyncio.timeout(None if limit is None else limit + _HANDSHAKE_GRACE):
            await loop.create_connection(
                factory_of(proto),
                sock=sock,
                ssl=context,
                server_hostname=server_hostname or "",  # "": no SNI, no host name check
                ssl_handshake_timeout=limit,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT,
            )
    except BaseException as exc:
        # The transport owns `sock` from here on and closes it (uvloop a moment later): closing
        # it here too could close a descriptor number another connection has been given since.
        proto.abort_now()
        if isinstance(exc, asyncio.CancelledError):
            raise
        timed_out = isinstance(exc, TimeoutError) or (
            isinstance(exc, ConnectionAbortedError)
            and limit is not None
            and ("handshake is taking longer" in str(exc) or clock() - started >= limit)
        )
        if timed_out:
            raise tls.handshake_timeout(handshake_timeout, by_total=by_total) from exc
        if isinstance(exc, OSError | ValueError):
            raise tls.map_handshake_error(exc) from exc
        raise


class Deadline:
    """`asyncio.timeout()` for the hot path (one per association): a loop timer that cancels
    the current task, and the cancellation turned into `TimeoutError` on the way out.

    Same rules as asyncio's: a cancellation from elsewhere is re-raised untouched; only the one
    this deadline caused becomes `TimeoutError`. Measured: a quarter of asyncio.timeout's cost,
    which is pure-Python state handling around the same timer.
    """

    __slots__ = ("_cancelling", "_handle", "_task", "expired")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float | None) -> None:
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        if delay is not None:
            task = asyncio.current_task(loop)
            if task is None:
                raise RuntimeError("Deadline must be used inside a task")
            self._task = task
            self._cancelling = task.cancelling()
            self._handle = loop.call_later(max(delay, 0.0), self._expire)

    def _expire(self) -> None:
        self.expired = True
        assert self._task is not None  # only armed with a task
        self._task.cancel()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        # uncancel() must run whenever this deadline cancelled the task, whatever came out.
        if (
            self.expired
            and self._task is not None
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
