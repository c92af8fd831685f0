"""The blocking-socket driver: one association on one thread, no asyncio.

It exists for start-up time: `echoscu` runs one association, and importing asyncio costs more
than DCMTK's whole echo (docs/performance.md). It shares the protocol core and the association
procedure with the asyncio driver and only moves bytes.

The usual path (`drive_usual`) imports neither the association procedure nor the state
machine; building them is the fall-back's job.

System calls are the cost of `echoscu --repeat`: a plain TCP socket stays in blocking mode and
its timeouts are the kernel's (SO_RCVTIMEO, SO_SNDTIMEO), set only when the bound they stand for
changes by more than `_SLACK`, so an echo costs one send and one recv. A kernel timer that fires
early is retried for the rest of the bound; one that would fire late is never kept. TLS sockets
keep Python's own timeouts (their reads report a kernel timeout as an SSL error).

Plain sockets are `_socket.socket`: importing `socket.py` (its enum tables, `selectors`,
`array`) costs echoscu's start-up about 6 ms; TLS wraps a `socket.socket` made from the same
descriptor (ssl imports `socket.py` anyway).
"""

from __future__ import annotations

import _socket
import struct
import time

from echoprobe.dimse.echo import (
    echo_request_pdus,
    message_id_for,
    parse_echo_response,
    success_response_pdu,
)
from echoprobe.errors import ConnectionLost, EchoprobeError, ProbeError
from echoprobe.net.addresses import format_address, literal_family, strip_brackets
from echoprobe.net.errors_map import map_connect_error, map_resolve_error
from echoprobe.net.outcome import AssociationOutcome, Resume, TimedOut, Wait
from echoprobe.reply import EchoReply
from echoprobe.ul.codec import RELEASE_RP_BYTES, RELEASE_RQ_BYTES
from echoprobe.ul.framing import FrameLimits
from echoprobe.ul.negotiation import Negotiated, usual_accept
from echoprobe.ul.pdu import AssociateAC

# Not typing.TYPE_CHECKING: echoscu's start-up must not pay for importing typing.
TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Callable, Iterator

    from echoprobe.dimse.echo import EchoResponse
    from echoprobe.net.association import Driver, Observer
    from echoprobe.options import AssociationOptions, Timeouts
    from echoprobe.ul.connection import ULConnection
    from echoprobe.ul.pdu import AssociateRQ

    # Builds the general procedure for a hand-over: (clock, observer, resume point).
    StartGeneral = Callable[
        [Callable[[], float], Observer, Resume | None], tuple[ULConnection, Driver]
    ]

clock: Callable[[], float] = time.monotonic

_RECV_SIZE = 65536
_TIMEVAL = struct.Struct("@ll")
_SLACK = 0.9  # a kernel timeout down to 90 % of the bound is kept (then retried)
_SHORTEST = 0.001  # the kernel's timeval rounds to jiffies; never set 0, which means "none"
_LE16 = struct.Struct("<H")  # Message IDs
_MAX_AC_BODY = FrameLimits().max_associate_ac


def resolve(host: str, port: int) -> list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]]:
    """(family, sockaddr) candidates for `host`; literals are not resolved."""
    family = literal_family(host)
    if family is not None:
        bare = strip_brackets(host)
        return [(family, (bare, port) if family == _socket.AF_INET else (bare, port, 0, 0))]
    try:
        infos = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise map_resolve_error(host, exc) from exc
    return [(info[0], info[4]) for info in infos]  # type: ignore[misc]


def connect(host: str, port: int, timeout: float | None) -> _socket.socket:
    """A connected TCP socket with TCP_NODELAY, trying each resolved address in turn."""
    candidates = resolve(host, port)
    deadline = None if timeout is None else clock() + timeout
    last: ProbeError | None = None
    for family, sockaddr in candidates:
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
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
    sock: _socket.socket,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    timeout: float | None,
    total_deadline: float | None = None,
) -> socket.socket:
    """The TLS client handshake on connected `sock`, bounded as a whole by `timeout` (the
    association's `Timeouts.tls`) and by `total_deadline` (monotonic); returns the TLS socket.
    On failure the socket is closed and a `ProbeError` raised (see `net.tls`)."""
    import socket  # noqa: PLC0415 - only with TLS (ssl imports it anyway)

    from echoprobe.net import tls  # noqa: PLC0415 - ssl is imported only when TLS is used

    if not isinstance(sock, socket.socket):  # ssl wraps `socket.socket`s: same descriptor
        sock = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
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


def drive(sock: _socket.socket, conn: ULConnection, flow: Driver) -> AssociationOutcome:
    """Run `flow` over `sock` until it returns or raises; always leaves the socket closed."""
    run = _Run(conn, flow)
    return _general(sock, _io_for(sock), run, lambda: (next(flow), False))


class _Run:
    """The general procedure being driven: made at once, or by a fall-back from the usual path."""

    __slots__ = ("conn", "flow", "write_error")

    def __init__(self, conn: ULConnection | None = None, flow: Driver | None = None) -> None:
        self.conn = conn
        self.flow = flow
        self.write_error: OSError | None = None


def _io_for(sock: _socket.socket) -> _KernelTimeouts | _PythonTimeouts:
    return _KernelTimeouts(sock) if type(sock) is _socket.socket else _PythonTimeouts(sock)


def _general(
    sock: _socket.socket,
    io: _KernelTimeouts | _PythonTimeouts,
    run: _Run,
    start: Callable[[], tuple[Wait, bool]],
) -> AssociationOutcome:
    """The driver loop: `start()` gives the first wait and whether its bytes are already out."""
    try:
        wait, sent = start()
        flow = run.flow
        assert flow is not None  # start() made it
        while True:
            if wait.send and not sent:
                try:
                    io.send(wait.send, wait.deadline)
                except OSError as exc:
                    run.write_error = run.write_error or exc
                    wait = flow.send(b"")  # the peer is gone; the state machine decides
                    continue
            sent = False
            reply: bytes | TimedOut
            now = clock()
            limit = None if wait.deadline is None else wait.deadline - now
            which = TimedOut.DEADLINE
            if wait.socket_timeout is not None and (limit is None or wait.socket_timeout < limit):
                limit, which = wait.socket_timeout, TimedOut.SOCKET
            if limit is not None and limit <= 0:
                reply = which
            else:
                try:
                    got = io.recv(None if limit is None else now + limit)
                except OSError:
                    got = b""  # reset: reported like a close, as DCMTK does
                reply = which if got is None else got
            wait = flow.send(reply)
    except StopIteration as stop:
        result: AssociationOutcome = stop.value
        _flush(sock, run.conn)
        return result
    except ConnectionLost as exc:
        _abort(sock, run.conn)
        write_error = run.write_error
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
        _abort(sock, run.conn)
        raise
    finally:
        sock.close()


def _abort(sock: _socket.socket, conn: ULConnection | None) -> None:
    if conn is None:
        return
    if not conn.close_requested:
        conn.abort(clock())
    _flush(sock, conn)


# -- the usual conversation, in byte comparisons


def drive_usual(  # noqa: PLR0917 - the procedure's own inputs, in its order
    sock: _socket.socket,
    request: AssociateRQ,
    request_bytes: bytes,
    options: AssociationOptions,
    timeouts: Timeouts,
    observer: Observer,
    start_general: StartGeneral,
    *,
    keep_replies: bool = True,
) -> AssociationOutcome:
    """`drive()` for the usual association: our A-ASSOCIATE-RQ, one acceptable A-ASSOCIATE-AC,
    each C-ECHO-RQ answered by the canonical success C-ECHO-RSP, A-RELEASE-RQ and -RP, every PDU
    whole and alone in its read. That is recognised in byte comparisons, skipping the framer,
    the state machine, the event objects and the generator (most of an echo's CPU).

    Anything else (a read that is not exactly the expected PDU, a timeout, a failed write, an
    interrupt) makes it build the general procedure with `start_general(clock, observer,
    resume)`, resumed after the C-ECHOs already answered, and replay into it the A-ASSOCIATE-AC
    and the read that was not the usual one, at the times they arrived, with the observer calls
    already made held back; the procedure must want to have sent exactly the bytes already sent
    (checked), and carries on from there. So `run_association` stays the one definition of
    behaviour, as for the asyncio driver's fast path (`net/fastpath.py`), and a hand-over after
    millions of echoes costs what one after the first does. With `keep_replies=False` no
    per-echo state is kept at all: memory stays flat however long `--repeat` runs.

    Use it only when `options.release`, no total deadline, and the observer's hooks do not raise.
    """
    io = _io_for(sock)
    usual = _Usual(request, request_bytes, options, timeouts, observer, keep_replies=keep_replies)
    try:
        outcome = usual.run(io)
    except BaseException as exc:
        usual.interrupt = exc
        outcome = None
    if outcome is not None:
        sock.close()
        return outcome
    run = _Run()
    return _general(sock, io, run, lambda: usual.fall_back(run, start_general))


class _ReplayClock:
    """The procedure's clock: the recorded arrival times while replaying, then the real one."""

    __slots__ = ("now",)

    def __init__(self, now: float) -> None:
        self.now: float | None = now

    def __call__(self) -> float:
        now = self.now
        return clock() if now is None else now


class _HeldBack:
    """The observer, as the replayed procedure sees it: the calls the usual path already made
    are swallowed, in order; every later call goes through."""

    __slots__ = ("_made", "_observer")

    def __init__(self, observer: Observer, made: list[str]) -> None:
        self._observer = observer
        self._made = made

    def _hook(self, name: str) -> Callable[..., None]:
        if self._made:
            if self._made[0] != name:
                raise EchoprobeError(
                    f"internal error: usual path: {name} instead of {self._made[0]}"
                )
            self._made.pop(0)
            return _ignore
        hook: Callable[..., None] = getattr(self._observer, name)
        return hook

    def association_accepted(self, accept: AssociateAC, raw: bytes, negotiated: Negotiated) -> None:
        self._hook("association_accepted")(accept, raw, negotiated)

    def association_failed_no_context(self, accept: AssociateAC, raw: bytes) -> None:
        self._hook("association_failed_no_context")(accept, raw)

    def echo_sending(self, message_id: int) -> None:
        self._hook("echo_sending")(message_id)

    def echo_received(self, response: EchoResponse) -> None:
        self._hook("echo_received")(response)

    def releasing(self) -> None:
        self._hook("releasing")()

    def aborting(self) -> None:
        self._hook("aborting")()


def _ignore(*args: object) -> None:
    pass


class _Usual:
    """The usual conversation's state: what was written and what arrived when, kept small and
    independent of the echo count (the replies only when kept): the bytes are the usual ones,
    rebuilt for a replay, and the procedure resumes after the echoes already answered."""

    __slots__ = (
        "ac",
        "done",
        "interrupt",
        "keep_replies",
        "last",
        "last_answer_at",
        "made",
        "negotiated",
        "observer",
        "options",
        "pending",
        "replies",
        "request",
        "request_bytes",
        "started",
        "timeouts",
        "writes",
    )

    def __init__(
        self,
        request: AssociateRQ,
        request_bytes: bytes,
        options: AssociationOptions,
        timeouts: Timeouts,
        observer: Observer,
        *,
        keep_replies: bool,
    ) -> None:
        self.request = request
        self.request_bytes = request_bytes
        self.options = options
        self.timeouts = timeouts
        self.observer = observer
        self.keep_replies = keep_replies
        self.started = 0.0
        self.writes = 0  # attempted: the A-ASSOCIATE-RQ, the C-ECHO-RQs, the A-RELEASE-RQ
        self.ac: tuple[bytes, float] | None = None  # the usual A-ASSOCIATE-AC, when it came
        self.negotiated: Negotiated | None = None
        self.done = 0  # C-ECHOs answered the usual way
        self.last_answer_at = 0.0  # when the last of them was answered
        self.replies: list[EchoReply] = []  # theirs, when kept
        self.last: tuple[bytes, float] | None = None  # a read that was not the usual one
        self.made: list[str] = []  # the observer calls the procedure will make again
        self.pending: TimedOut | OSError | None = None  # what else stopped the usual path
        self.interrupt: BaseException | None = None

    def _exchange(
        self, io: _KernelTimeouts | _PythonTimeouts, data: bytes, start: float, phase: float | None
    ) -> bytes | None:
        """Write `data`, then read once, as the procedure's wait for a phase that started at
        `start` with timeout `phase` would; None when a timeout or a failed write ends the
        usual path (`pending` says which)."""
        self.writes += 1
        deadline = None if phase is None else start + phase
        try:
            io.send(data, deadline)
        except OSError as exc:
            self.pending = exc
            return None
        now = clock()
        socket_timeout = self.timeouts.socket if phase is None else None
        end, which = deadline, TimedOut.DEADLINE
        if socket_timeout is not None and (end is None or now + socket_timeout < end):
            end, which = now + socket_timeout, TimedOut.SOCKET
        if end is not None and end <= now:
            self.pending = which
            return None
        try:
            got = io.recv(end)
        except OSError:
            got = b""  # reset: reported like a close, as `_general` does
        if got is None:
            self.pending = which
            return None
        return got

    def run(self, io: _KernelTimeouts | _PythonTimeouts) -> AssociationOutcome | None:
        """The usual conversation to its end, or None where it stops being the usual one."""
        timeouts, observer, made, replies = self.timeouts, self.observer, self.made, self.replies
        keep = self.keep_replies
        self.started = start = clock()
        data = self._exchange(io, self.request_bytes, start, timeouts.acse)
        if data is None:
            return None
        ac_at = clock()
        found = usual_accept(self.request, data, _MAX_AC_BODY)
        if found is None:
            self.last = (data, ac_at)
            return None
        accept, negotiated = found
        self.ac, self.negotiated = (data, ac_at), negotiated
        observer.association_accepted(accept, data, negotiated)
        made.append("association_accepted")
        head, tail = success_response_pdu(negotiated.context_id)
        sent_at = self.last_answer_at = ac_at
        context_id, max_fragment = negotiated.context_id, negotiated.max_fragment
        for index in range(self.options.repeat):
            message_id = message_id_for(index)
            observer.echo_sending(message_id)
            made.append("echo_sending")
            rq = echo_request_pdus(message_id, context_id, max_fragment)
            data = self._exchange(io, rq, sent_at, timeouts.dimse)
            if data is None:
                return None
            received_at = clock()
            if data != head + _LE16.pack(message_id) + tail:
                self.last = (data, received_at)
                return None
            response = parse_echo_response(data[12:], message_id)
            if keep:
                replies.append(EchoReply(message_id, 0, (received_at - sent_at) * 1000.0, None))
            # Answered: a hand-over resumes after this echo, so its call is not made again.
            self.done, self.last_answer_at = index + 1, received_at
            made.pop()
            observer.echo_received(response)
            sent_at = received_at
        observer.releasing()
        made.append("releasing")
        data = self._exchange(io, RELEASE_RQ_BYTES, sent_at, timeouts.release)
        if data is None:
            return None
        released_at = clock()
        if data != RELEASE_RP_BYTES:
            self.last = (data, released_at)
            return None
        timings = {
            "associate": (ac_at - start) * 1000.0,
            "echo": (sent_at - ac_at) * 1000.0,
            "release": (released_at - sent_at) * 1000.0,
        }
        return AssociationOutcome(negotiated, replies, timings)

    def _reads(self) -> Iterator[tuple[bytes, float]]:
        """The reads the resumed procedure needs, with their arrival times: the A-ASSOCIATE-AC
        (the answers of the echoes done are not replayed), and the read that was not usual."""
        if self.ac is not None:
            yield self.ac
        if self.last is not None:
            yield self.last

    def _writes(self) -> Iterator[bytes]:
        """The writes the resumed procedure makes again, rebuilt: the A-ASSOCIATE-RQ, and those
        attempted after the echoes done (their C-ECHO-RQs are not made again)."""
        left = self.writes
        if left:
            yield self.request_bytes
            left -= 1
        negotiated = self.negotiated
        left -= min(left, self.done)
        echoes = min(left, self.options.repeat - self.done)
        if negotiated is not None:
            for index in range(self.done, self.done + echoes):
                yield echo_request_pdus(
                    message_id_for(index), negotiated.context_id, negotiated.max_fragment
                )
        if left > echoes:
            yield RELEASE_RQ_BYTES

    def fall_back(self, run: _Run, start_general: StartGeneral) -> tuple[Wait, bool]:
        """Build the general procedure, replay into it, and give `_general` where it stands."""
        replay = _ReplayClock(self.started)
        resume = None
        if self.negotiated is not None:
            resume = Resume(self.done, self.replies, self.last_answer_at)
        conn, flow = start_general(replay, _HeldBack(self.observer, self.made), resume)
        run.conn, run.flow = conn, flow
        # Every write the usual path made answered the read before it, as the procedure's own
        # would have; after the last read it may have written (then stopped: a timeout or a
        # failed write) or not (that read was not the usual one: the procedure writes next).
        writes = self._writes()
        try:
            wait = next(flow)
            already = _same(wait.send, writes)
            for data, at in self._reads():
                if not already:
                    raise EchoprobeError("internal error: usual path: a read after a lost write")
                replay.now = at
                wait = flow.send(data)
                already = _same(wait.send, writes)
        finally:
            replay.now = None
        if next(writes, None) is not None:
            raise EchoprobeError("internal error: usual path: the procedure wrote less")
        if self.interrupt is not None:
            raise self.interrupt
        pending = self.pending
        if isinstance(pending, OSError):
            run.write_error = pending
            return flow.send(b""), False  # as `_general` does when a write fails
        if pending is not None:
            return flow.send(pending), False
        return wait, already


def _same(wanted: bytes, writes: Iterator[bytes]) -> bool:
    """Whether the procedure's next write `wanted` is the usual path's next one (True), or
    comes after the usual path's last one (False); anything else is a divergence."""
    written = next(writes, None)
    if written is None:
        return False
    if written != wanted:
        raise EchoprobeError("internal error: usual path: the procedure would send other bytes")
    return True


class _KernelTimeouts:
    """Reads and writes on a blocking socket, bounded by the kernel's SO_RCVTIMEO/SO_SNDTIMEO."""

    __slots__ = ("_recv_set", "_send_set", "_sock")

    def __init__(self, sock: _socket.socket) -> None:
        sock.settimeout(None)  # once: blocking mode, no poll() before each call
        self._sock = sock
        self._recv_set = 0.0  # the kernel timeouts now set; 0 is none
        self._send_set = 0.0

    def recv(self, end: float | None) -> bytes | None:
        """One read, or None when monotonic time `end` came first."""
        sock = self._sock
        while True:
            self._recv_set = _bound(sock, _socket.SO_RCVTIMEO, self._recv_set, end)
            try:
                return sock.recv(_RECV_SIZE)
            except BlockingIOError:  # the kernel's timer: early or on time
                if end is not None and clock() >= end:
                    return None

    def send(self, data: bytes, end: float | None) -> None:
        sock = self._sock
        view = memoryview(data)
        while view:
            self._send_set = _bound(sock, _socket.SO_SNDTIMEO, self._send_set, end)
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                if end is None or clock() >= end:
                    raise TimeoutError("timed out") from None


def _bound(sock: _socket.socket, option: int, current: float, end: float | None) -> float:
    """Set the kernel timeout `option` for a call that must return by `end` (None: never),
    unless `current` already serves; returns the timeout now set."""
    if end is None:
        if current == 0.0:
            return current
        wanted = 0.0
    else:
        wanted = max(end - clock(), _SHORTEST)
        if wanted * _SLACK <= current <= wanted:
            return current
    seconds = int(wanted)
    sock.setsockopt(
        _socket.SOL_SOCKET, option, _TIMEVAL.pack(seconds, int((wanted - seconds) * 1e6))
    )
    return wanted


class _PythonTimeouts:
    """Reads and writes bounded by Python's socket timeouts (TLS sockets)."""

    __slots__ = ("_sock",)

    def __init__(self, sock: _socket.socket) -> None:
        self._sock = sock

    def recv(self, end: float | None) -> bytes | None:
        sock = self._sock
        sock.settimeout(None if end is None else max(end - clock(), _SHORTEST))
        try:
            return sock.recv(_RECV_SIZE)
        except TimeoutError:
            return None

    def send(self, data: bytes, end: float | None) -> None:
        self._sock.settimeout(None if end is None else max(end - clock(), _SHORTEST))
        self._sock.sendall(data)


def _flush(sock: _socket.socket, conn: ULConnection | None) -> None:
    data = b"" if conn is None else conn.data_to_send()
    if data:
        try:
            sock.settimeout(1.0)
            sock.sendall(data)
        except OSError:
            pass
