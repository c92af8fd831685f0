"""A scriptable, raw-bytes DICOM SCP for tests.

Rules of this module:

* It is an independent oracle: it never imports echoprobe. Its tiny encoder and parser are written
  from PS3.8 (upper layer PDUs, §9.3) and PS3.7 (command sets, §9.3.5, §E.1) directly, so a bug
  in echoprobe's codec cannot hide itself here, and malformed bytes are easy to produce.
* A scenario is data: a sequence of `Step` values run in order for each accepted connection.
* Loopback only, ephemeral port, one background thread, and a hard time bound: every wait is sliced
  and checks the bound, so the thread always ends by itself even if nobody calls `stop()`.
* Every PDU received is recorded with its raw bytes (`received`), and every byte string sent
  (`sent`).
* When an A-ABORT arrives the connection is closed at once (by default): DCMTK waits up to its ACSE
  timeout for the peer to close after its own A-ABORT, which would otherwise slow every test down.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

# --- constants (PS3.8 §9.3, PS3.7 Annex E) ------------------------------------------------------

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
# The fake SCP's own identity, as in the contract's Appendix B transcript.
FAKE_IMPL_UID = "1.2.826.0.1.3680043.9.7433.99.1"
FAKE_IMPL_VERSION = "FAKESCP_1"

A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
NO_DATA_SET = 0x0101

# A received PDU larger than this is recorded truncated and the connection closed: the peers under
# test never send anything near it, and the bound keeps a broken peer from filling memory.
MAX_RECEIVED_PDU = 4 * 1024 * 1024
# Poll slice for every blocking wait, so that stop() and the hard bound are noticed quickly.
_SLICE = 0.05


# --- encoder ------------------------------------------------------------------------------------


def pdu(pdu_type: int, body: bytes, *, reserved: int = 0, length: int | None = None) -> bytes:
    """PDU header (type, reserved, 32-bit big-endian length) + body; `length` can lie on purpose."""
    return struct.pack(">BBI", pdu_type, reserved, len(body) if length is None else length) + body


def item(item_type: int, body: bytes) -> bytes:
    """Variable item / sub-item: type, reserved, 16-bit big-endian length, body (PS3.8 §9.3.2)."""
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def ae_title(title: str | bytes) -> bytes:
    """AE title field: 16 bytes, space padded, truncated (raw bytes pass through unchanged)."""
    raw = title.encode("latin-1") if isinstance(title, str) else title
    return raw[:16].ljust(16, b" ")


def user_information(
    max_length: int | None = 16384,
    impl_uid: str | None = FAKE_IMPL_UID,
    impl_version: str | None = FAKE_IMPL_VERSION,
    extra: bytes = b"",
) -> bytes:
    """User Information item 0x50 with max-length 0x51, class UID 0x52, version name 0x55."""
    body = b""
    if max_length is not None:
        body += item(0x51, struct.pack(">I", max_length))
    if impl_uid is not None:
        body += item(0x52, impl_uid.encode("ascii"))
    if impl_version is not None:
        body += item(0x55, impl_version.encode("ascii"))
    return item(0x50, body + extra)


@dataclass(frozen=True, slots=True)
class PresentationContext:
    """A proposed presentation context (item 0x20)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


def a_associate_rq(
    called: str | bytes,
    calling: str | bytes,
    contexts: Sequence[PresentationContext],
    *,
    max_length: int = 16384,
    impl_uid: str | None = None,
    impl_version: str | None = None,
    pc_reserved: int = 0xFF,
) -> bytes:
    """A-ASSOCIATE-RQ as DCMTK builds it, 0xFF in each PC item's third byte (contract §4.2)."""
    body = struct.pack(">HH", 1, 0) + ae_title(called) + ae_title(calling) + bytes(32)
    body += item(0x10, APPLICATION_CONTEXT.encode("ascii"))
    for pc in contexts:
        sub = item(0x30, pc.abstract_syntax.encode("ascii"))
        sub += b"".join(item(0x40, ts.encode("ascii")) for ts in pc.transfer_syntaxes)
        body += item(0x20, bytes([pc.context_id, 0, pc_reserved, 0]) + sub)
    body += user_information(max_length, impl_uid, impl_version)
    return pdu(A_ASSOCIATE_RQ, body)


def a_associate_ac(
    called: bytes,
    calling: bytes,
    contexts: Sequence[tuple[int, int, str | None]],
    user_info: bytes | None,
    *,
    application_context: str = APPLICATION_CONTEXT,
) -> bytes:
    """A-ASSOCIATE-AC; `contexts` holds (id, result, transfer syntax or None for no sub-item)."""
    body = struct.pack(">HH", 1, 0) + called + calling + bytes(32)
    body += item(0x10, application_context.encode("ascii"))
    for context_id, result, ts in contexts:
        sub = item(0x40, ts.encode("ascii")) if ts is not None else b""
        body += item(0x21, bytes([context_id, 0, result, 0]) + sub)
    if user_info is not None:
        body += user_info
    return pdu(A_ASSOCIATE_AC, body)


def a_associate_rj(result: int, source: int, reason: int) -> bytes:
    return pdu(A_ASSOCIATE_RJ, bytes([0, result, source, reason]))


def a_abort(source: int = 0, reason: int = 0) -> bytes:
    return pdu(A_ABORT, bytes([0, 0, source, reason]))


def a_release_rq() -> bytes:
    return pdu(A_RELEASE_RQ, bytes(4))


def a_release_rp() -> bytes:
    return pdu(A_RELEASE_RP, bytes(4))


def pdv(context_id: int, control: int, data: bytes) -> bytes:
    """PDV item: length (covers context ID and control header), context ID, control header."""
    return struct.pack(">IBB", len(data) + 2, context_id, control) + data


def p_data_tf(*pdvs: bytes) -> bytes:
    return pdu(P_DATA_TF, b"".join(pdvs))


def element(group: int, elem: int, value: bytes) -> bytes:
    """Implicit VR Little Endian element (PS3.5 §7.1.3)."""
    return struct.pack("<HHI", group, elem, len(value)) + value


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def ui(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def lo(text: str) -> bytes:
    raw = text.encode("latin-1")
    return raw + b" " if len(raw) % 2 else raw


def command_set(elements: Sequence[bytes]) -> bytes:
    """Command set with its (0000,0000) group length computed over the following elements."""
    rest = b"".join(elements)
    return element(0x0000, 0x0000, struct.pack("<I", len(rest))) + rest


def c_echo_rq(message_id: int) -> bytes:
    """The 68-byte C-ECHO-RQ command set DCMTK sends (contract §6.1)."""
    return command_set(
        [
            element(0x0000, 0x0002, ui(VERIFICATION_SOP_CLASS)),
            element(0x0000, 0x0100, us(C_ECHO_RQ)),
            element(0x0000, 0x0110, us(message_id)),
            element(0x0000, 0x0800, us(NO_DATA_SET)),
        ]
    )


def c_echo_rsp(
    message_id: int,
    status: int = 0x0000,
    *,
    command_field: int = C_ECHO_RSP,
    error_comment: str | None = None,
    sop_class: str = VERIFICATION_SOP_CLASS,
) -> bytes:
    """C-ECHO-RSP command set (PS3.7 §9.3.5.2), optionally with an Error Comment (0000,0902)."""
    elements = [
        element(0x0000, 0x0002, ui(sop_class)),
        element(0x0000, 0x0100, us(command_field)),
        element(0x0000, 0x0120, us(message_id)),
        element(0x0000, 0x0800, us(NO_DATA_SET)),
        element(0x0000, 0x0900, us(status)),
    ]
    if error_comment is not None:
        elements.append(element(0x0000, 0x0902, lo(error_comment)))
    return command_set(elements)


# --- parser -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssociateRQ:
    """The fields of a received A-ASSOCIATE-RQ that scenarios and tests need."""

    called: bytes
    calling: bytes
    application_context: str
    contexts: tuple[PresentationContext, ...]
    user_items: tuple[tuple[int, bytes], ...]

    @property
    def max_length(self) -> int | None:
        for sub_type, value in self.user_items:
            if sub_type == 0x51 and len(value) == 4:
                return int(struct.unpack(">I", value)[0])
        return None


def iter_items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Split a run of items into (type, body); raise ValueError when a length overruns."""
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError(f"truncated item header at {pos}")
        item_type, _, length = struct.unpack_from(">BBH", data, pos)
        if pos + 4 + length > len(data):
            raise ValueError(f"item 0x{item_type:02x} at {pos} overruns its parent")
        yield item_type, data[pos + 4 : pos + 4 + length]
        pos += 4 + length


def parse_associate_rq(raw: bytes) -> AssociateRQ:
    if len(raw) < 74 or raw[0] != A_ASSOCIATE_RQ:
        raise ValueError("not an A-ASSOCIATE-RQ")
    app_context = ""
    contexts: list[PresentationContext] = []
    user_items: list[tuple[int, bytes]] = []
    for item_type, body in iter_items(raw[74:]):
        if item_type == 0x10:
            app_context = body.decode("ascii", "replace")
        elif item_type == 0x20:
            abstract = ""
            syntaxes: list[str] = []
            for sub_type, sub in iter_items(body[4:]):
                if sub_type == 0x30:
                    abstract = sub.decode("ascii", "replace")
                elif sub_type == 0x40:
                    syntaxes.append(sub.decode("ascii", "replace"))
            contexts.append(PresentationContext(body[0], abstract, tuple(syntaxes)))
        elif item_type == 0x50:
            user_items.extend(iter_items(body))
    return AssociateRQ(raw[10:26], raw[26:42], app_context, tuple(contexts), tuple(user_items))


def strip_implementation_items(raw: bytes) -> bytes:
    """An A-ASSOCIATE-RQ/AC without sub-items 0x52 and 0x55, every length fixed up.

    Those two sub-items name the implementation, the one place where a drop-in may differ.
    """
    head, variable = raw[:74], raw[74:]
    out = b""
    for item_type, body in iter_items(variable):
        kept = body
        if item_type == 0x50:
            kept = b"".join(
                item(sub_type, sub)
                for sub_type, sub in iter_items(body)
                if sub_type not in (0x52, 0x55)
            )
        out += item(item_type, kept)
    return head[:2] + struct.pack(">I", len(head) - 6 + len(out)) + head[6:] + out


@dataclass(frozen=True, slots=True)
class Pdv:
    context_id: int
    control: int
    data: bytes


def parse_pdvs(body: bytes) -> list[Pdv]:
    out: list[Pdv] = []
    pos = 0
    while pos < len(body):
        if pos + 6 > len(body):
            raise ValueError("truncated PDV header")
        length, context_id, control = struct.unpack_from(">IBB", body, pos)
        if length < 2 or pos + 4 + length > len(body):
            raise ValueError(f"bad PDV length {length}")
        out.append(Pdv(context_id, control, body[pos + 6 : pos + 4 + length]))
        pos += 4 + length
    return out


def parse_command(data: bytes) -> dict[tuple[int, int], bytes]:
    """Implicit VR Little Endian elements of a command set, keyed by (group, element)."""
    out: dict[tuple[int, int], bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        if pos + 8 + length > len(data):
            raise ValueError("element overruns the command set")
        out[(group, elem)] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return out


# --- scenario steps -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trickle:
    """How to send a byte string: `head` bytes first, a pause, then `chunk`-sized pieces."""

    head: int = 0
    head_pause: float = 0.0
    chunk: int = 0  # 0: the rest in one piece
    interval: float = 0.0


class Step:
    """Base of all scenario steps."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ReadPDU(Step):
    """Read one PDU and record it; the connection ends on EOF (and on A-ABORT, see module doc)."""


@dataclass(frozen=True, slots=True)
class ReadEcho(Step):
    """Read P-DATA-TF PDUs until a whole command message has arrived (a C-ECHO-RQ)."""


@dataclass(frozen=True, slots=True)
class Accept(Step):
    """Answer the last A-ASSOCIATE-RQ with an A-ASSOCIATE-AC built from it."""

    results: Mapping[int, int] = field(default_factory=dict)  # context ID -> result; default 0
    default_result: int = 0
    transfer_syntax: str | None = None  # None: the first one proposed for that context
    last_transfer_syntax: bool = False  # accept the last proposed one instead of the first
    max_length: int | None = 16384  # None: no max-length sub-item
    user_info: bool = True  # False: no user information item at all
    impl_uid: str | None = FAKE_IMPL_UID
    impl_version: str | None = FAKE_IMPL_VERSION
    include_contexts: bool = True  # False: an AC without any presentation context item
    extra_contexts: tuple[tuple[int, int, str | None], ...] = ()  # (id, result, ts) appended
    extra_user_items: bytes = b""
    trickle: Trickle | None = None


@dataclass(frozen=True, slots=True)
class Reject(Step):
    result: int = 1
    source: int = 1
    reason: int = 1


@dataclass(frozen=True, slots=True)
class Abort(Step):
    source: int = 0
    reason: int = 0


@dataclass(frozen=True, slots=True)
class Send(Step):
    """Send arbitrary (possibly malformed) bytes."""

    data: bytes
    trickle: Trickle | None = None


@dataclass(frozen=True, slots=True)
class EchoReply:
    """How to answer one C-ECHO-RQ."""

    status: int = 0x0000
    message_id: int | None = None  # None: echo the request's Message ID
    command_field: int = C_ECHO_RSP
    error_comment: str | None = None
    sop_class: str = VERIFICATION_SOP_CLASS
    fragment: int | None = None  # split the command set into PDVs of this many bytes
    pdvs_per_pdu: int | None = None  # None: all PDVs in one P-DATA-TF
    data_pdv: bool = False  # send a data-set PDV (control 0x02) instead of a command PDV
    context_id: int | None = None  # None: the request's context ID
    trickle: Trickle | None = None


@dataclass(frozen=True, slots=True)
class Respond(Step):
    """Answer the C-ECHO-RQ read by the last `ReadEcho`."""

    reply: EchoReply = EchoReply()


ReleaseMode = Literal["rp", "abort", "close", "reset", "silence", "collision"]


@dataclass(frozen=True, slots=True)
class Serve(Step):
    """Answer every C-ECHO-RQ with `reply` until the peer releases, aborts or closes."""

    reply: EchoReply = EchoReply()
    release: ReleaseMode = "rp"
    max_messages: int = 1000


@dataclass(frozen=True, slots=True)
class Release(Step):
    """Read the A-RELEASE-RQ and react to it according to `mode`."""

    mode: ReleaseMode = "rp"


@dataclass(frozen=True, slots=True)
class Sleep(Step):
    seconds: float


@dataclass(frozen=True, slots=True)
class Close(Step):
    """Close the connection normally (FIN)."""


@dataclass(frozen=True, slots=True)
class Reset(Step):
    """Close the connection with RST (SO_LINGER with a zero timeout)."""


@dataclass(frozen=True, slots=True)
class Stall(Step):
    """Answer nothing more; keep reading (and recording) until EOF, A-ABORT or the time bound."""


# --- recording ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    connection: int
    raw: bytes
    at: float  # seconds since the server started
    complete: bool = True  # False: the peer closed in the middle of this PDU

    @property
    def pdu_type(self) -> int:
        return self.raw[0] if self.raw else -1


@dataclass(frozen=True, slots=True)
class EchoRequest:
    connection: int
    context_id: int
    message_id: int | None
    command: bytes


class _ConnectionEnded(Exception):
    """EOF, reset, an A-ABORT, a send failure or the time bound: stop this connection's steps."""


# --- server -------------------------------------------------------------------------------------


class FakeSCP:
    """Runs `steps` for each of up to `connections` connections, in a background thread.

    Use as a context manager. `stop()` (called on exit) makes sleeps and stalls end, lets pending
    reads drain for `grace` seconds, and joins the thread; without it the thread still ends at
    `time_limit`.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        connections: int = 1,
        host: str = "127.0.0.1",
        time_limit: float = 15.0,
        close_on_abort: bool = True,
    ) -> None:
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("the fake SCP listens on loopback only")
        self.steps = tuple(steps)
        self.connections = connections
        self.host = host
        self.close_on_abort = close_on_abort
        self.time_limit = time_limit
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(8)
        self.port: int = self._listener.getsockname()[1]
        self.received: list[Received] = []
        self.sent: list[tuple[int, bytes]] = []
        self.echo_requests: list[EchoRequest] = []
        self.events: list[str] = []
        self.failures: list[str] = []  # scenario or harness bugs, never the peer's behaviour
        self.accepted = 0
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._hard_deadline = self._start + time_limit
        self._drain_deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"fake-scp-{self.port}", daemon=True)

    # lifecycle

    def start(self) -> Self:
        self._start = time.monotonic()
        self._hard_deadline = self._start + self.time_limit
        self._thread.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, grace: float = 1.0) -> None:
        if self._drain_deadline is None:
            self._drain_deadline = time.monotonic() + grace
        self._stop.set()
        if self._thread.ident is None:  # never started: nobody else will close the listener
            self._listener.close()
            return
        if self._thread.is_alive():
            self._thread.join(timeout=grace + 2.0)
        if self._thread.is_alive():
            self.failures.append("server thread did not stop")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # results

    def pdus(self, connection: int = 0) -> list[Received]:
        return [r for r in self.received if r.connection == connection]

    @property
    def associate_rq(self) -> bytes | None:
        for r in self.received:
            if r.pdu_type == A_ASSOCIATE_RQ:
                return r.raw
        return None

    # internals

    def _now(self) -> float:
        return time.monotonic() - self._start

    def _deadline(self) -> float:
        if self._drain_deadline is not None:
            return min(self._hard_deadline, self._drain_deadline)
        return self._hard_deadline

    def _run(self) -> None:
        try:
            while self.accepted < self.connections:
                conn = self._accept()
                if conn is None:
                    break
                index = self.accepted
                self.accepted += 1
                _Connection(self, conn, index).run()
        except Exception as exc:  # a bug in the harness: record it, never hang
            self.failures.append(f"server crashed: {exc!r}")
        finally:
            self._listener.close()

    def _accept(self) -> socket.socket | None:
        while not self._stop.is_set():
            remaining = self._hard_deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._listener.settimeout(min(_SLICE, remaining))
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        return None


class _Connection:
    def __init__(self, server: FakeSCP, sock: socket.socket, index: int) -> None:
        self.server = server
        self.sock: socket.socket | None = sock
        self.index = index
        self.last_rq: AssociateRQ | None = None
        self.last_echo: EchoRequest | None = None
        self.buffer = b""

    def event(self, text: str) -> None:
        self.server.events.append(f"[{self.server._now():.3f} conn {self.index}] {text}")

    def run(self) -> None:
        try:
            for step in self.server.steps:
                self.step(step)
        except _ConnectionEnded as end:
            self.event(f"ended: {end}")
        finally:
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def _socket(self) -> socket.socket:
        if self.sock is None:
            raise _ConnectionEnded("socket already closed")
        return self.sock

    # time

    def sleep(self, seconds: float) -> None:
        """Sleep, ending early on stop() or at the hard bound."""
        end = min(time.monotonic() + seconds, self.server._hard_deadline)
        remaining = end - time.monotonic()
        if remaining > 0:
            self.server._stop.wait(remaining)

    def watchful_pause(self, seconds: float) -> None:
        """Pause between trickled pieces, but end the connection at once on EOF or an A-ABORT.

        A peer that gave up (closed, or sent A-ABORT and now waits for us to close) must not be
        kept waiting for the rest of the pause. Any other incoming PDU is left unread for the steps
        that follow.
        """
        sock = self._socket()
        end = min(time.monotonic() + seconds, self.server._hard_deadline)
        while not self.server._stop.is_set():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            if self.buffer:
                first = self.buffer[:1]
            else:
                readable, _, _ = select.select([sock], [], [], min(_SLICE, remaining))
                if not readable:
                    continue
                try:
                    first = sock.recv(1, socket.MSG_PEEK)
                except OSError as exc:
                    raise _ConnectionEnded(f"recv failed while pausing: {exc!r}") from exc
            if not first or first[0] == A_ABORT:
                self.read_pdu()  # records it; EOF and A-ABORT both end the connection
                raise _ConnectionEnded("peer ended while we paused")
            self.server._stop.wait(min(_SLICE, remaining))

    # receiving

    def recv_exact(self, count: int) -> bytes | None:
        """`count` bytes, or None on a clean EOF before the first byte of them."""
        sock = self._socket()
        while len(self.buffer) < count:
            remaining = self.server._deadline() - time.monotonic()
            if remaining <= 0:
                raise _ConnectionEnded("time bound reached while reading")
            sock.settimeout(min(_SLICE, remaining))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise _ConnectionEnded(f"recv failed: {exc!r}") from exc
            if not chunk:
                if self.buffer:
                    partial, self.buffer = self.buffer, b""
                    self.server.received.append(
                        Received(self.index, partial, self.server._now(), complete=False)
                    )
                    raise _ConnectionEnded(f"EOF inside a PDU after {len(partial)} bytes")
                return None
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_pdu(self) -> Received:
        header = self.recv_exact(6)
        if header is None:
            raise _ConnectionEnded("EOF")
        length = struct.unpack(">I", header[2:6])[0]
        if length > MAX_RECEIVED_PDU:
            self.server.received.append(Received(self.index, header, self.server._now(), False))
            raise _ConnectionEnded(f"declared PDU length {length} over the limit")
        self.buffer = header + self.buffer
        raw = self.recv_exact(6 + length)
        if raw is None:  # cannot happen: the header is buffered
            raise _ConnectionEnded("EOF")
        received = Received(self.index, raw, self.server._now())
        self.server.received.append(received)
        self.event(f"received PDU 0x{raw[0]:02x} ({len(raw)} bytes)")
        if raw[0] == A_ASSOCIATE_RQ:
            try:
                self.last_rq = parse_associate_rq(raw)
            except ValueError as exc:
                self.event(f"unparsable A-ASSOCIATE-RQ: {exc}")
        if raw[0] == A_ABORT and self.server.close_on_abort:
            raise _ConnectionEnded("A-ABORT received")
        return received

    def read_echo(self, first: Received | None = None) -> EchoRequest:
        """Reassemble one command message from P-DATA-TF PDUs (bounded count)."""
        fragments = b""
        context_id = -1
        for _ in range(10_000):
            received = first if first is not None else self.read_pdu()
            first = None
            if received.pdu_type != P_DATA_TF:
                raise _ConnectionEnded(f"PDU 0x{received.pdu_type:02x} while reading a command")
            try:
                pdvs = parse_pdvs(received.raw[6:])
            except ValueError as exc:
                raise _ConnectionEnded(f"malformed P-DATA-TF: {exc}") from exc
            for one in pdvs:
                context_id = one.context_id
                if one.control & 0x01:
                    fragments += one.data
                if one.control & 0x03 == 0x03:
                    return self._echo_request(context_id, fragments)
        raise _ConnectionEnded("too many P-DATA-TF PDUs for one command")

    def _echo_request(self, context_id: int, command: bytes) -> EchoRequest:
        message_id: int | None = None
        try:
            value = parse_command(command).get((0x0000, 0x0110))
            if value is not None and len(value) == 2:
                message_id = int(struct.unpack("<H", value)[0])
        except ValueError as exc:
            self.event(f"unparsable command set: {exc}")
        request = EchoRequest(self.index, context_id, message_id, command)
        self.server.echo_requests.append(request)
        self.last_echo = request
        return request

    # sending

    def send(self, data: bytes, trickle: Trickle | None = None) -> None:
        sock = self._socket()
        self.server.sent.append((self.index, data))
        pieces: list[tuple[bytes, float]] = []
        if trickle is None:
            pieces.append((data, 0.0))
        else:
            rest = data
            if trickle.head:
                pieces.append((rest[: trickle.head], trickle.head_pause))
                rest = rest[trickle.head :]
            size = trickle.chunk or max(len(rest), 1)
            pieces.extend((rest[i : i + size], trickle.interval) for i in range(0, len(rest), size))
        for index, (piece, pause) in enumerate(pieces):
            remaining = self.server._hard_deadline - time.monotonic()
            if remaining <= 0:
                raise _ConnectionEnded("time bound reached while sending")
            sock.settimeout(remaining)
            try:
                sock.sendall(piece)
            except OSError as exc:
                raise _ConnectionEnded(f"send failed: {exc!r}") from exc
            if pause and index < len(pieces) - 1:
                self.watchful_pause(pause)
                if self.server._stop.is_set():
                    raise _ConnectionEnded("stopped while trickling")

    def stall(self) -> None:
        for _ in range(100_000):
            self.read_pdu()  # ends by EOF, A-ABORT or the (drain) deadline
        raise _ConnectionEnded("too many PDUs while stalling")

    # steps

    def step(self, step: Step) -> None:
        if isinstance(step, ReadPDU):
            self.read_pdu()
        elif isinstance(step, ReadEcho):
            self.read_echo()
        elif isinstance(step, Accept):
            self.send(self.build_ac(step), step.trickle)
        elif isinstance(step, Reject):
            self.send(a_associate_rj(step.result, step.source, step.reason))
        elif isinstance(step, Abort):
            self.send(a_abort(step.source, step.reason))
        elif isinstance(step, Send):
            self.send(step.data, step.trickle)
        elif isinstance(step, Respond):
            if self.last_echo is None:
                self.server.failures.append("Respond without a preceding ReadEcho")
                raise _ConnectionEnded("no request to answer")
            self.respond(step.reply, self.last_echo)
        elif isinstance(step, Serve):
            self.serve(step)
        elif isinstance(step, Release):
            received = self.read_pdu()
            if received.pdu_type != A_RELEASE_RQ:
                raise _ConnectionEnded(f"PDU 0x{received.pdu_type:02x} instead of A-RELEASE-RQ")
            self.release(step.mode)
        elif isinstance(step, Sleep):
            self.sleep(step.seconds)
        elif isinstance(step, Close):
            raise _ConnectionEnded("closed by the scenario")
        elif isinstance(step, Reset):
            sock = self._socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise _ConnectionEnded("reset by the scenario")
        elif isinstance(step, Stall):
            self.stall()
        else:
            self.server.failures.append(f"unknown step {step!r}")
            raise _ConnectionEnded("unknown step")

    def build_ac(self, step: Accept) -> bytes:
        rq = self.last_rq
        if rq is None:
            self.server.failures.append("Accept without a parsed A-ASSOCIATE-RQ")
            raise _ConnectionEnded("no request to accept")
        contexts: list[tuple[int, int, str | None]] = []
        if step.include_contexts:
            for pc in rq.contexts:
                ts: str | None = step.transfer_syntax
                if ts is None and pc.transfer_syntaxes:
                    index = -1 if step.last_transfer_syntax else 0
                    ts = pc.transfer_syntaxes[index]
                contexts.append(
                    (pc.context_id, step.results.get(pc.context_id, step.default_result), ts)
                )
        contexts.extend(step.extra_contexts)
        user_info = (
            user_information(
                step.max_length, step.impl_uid, step.impl_version, step.extra_user_items
            )
            if step.user_info
            else None
        )
        return a_associate_ac(rq.called, rq.calling, contexts, user_info)

    def respond(self, reply: EchoReply, request: EchoRequest) -> None:
        message_id = request.message_id if reply.message_id is None else reply.message_id
        command = c_echo_rsp(
            message_id or 0,
            reply.status,
            command_field=reply.command_field,
            error_comment=reply.error_comment,
            sop_class=reply.sop_class,
        )
        context_id = request.context_id if reply.context_id is None else reply.context_id
        control_more, control_last = (0x00, 0x02) if reply.data_pdv else (0x01, 0x03)
        size = reply.fragment or len(command)
        pieces = [command[i : i + size] for i in range(0, len(command), size)]
        pdvs = [
            pdv(context_id, control_last if i == len(pieces) - 1 else control_more, piece)
            for i, piece in enumerate(pieces)
        ]
        per_pdu = reply.pdvs_per_pdu or len(pdvs)
        data = b"".join(p_data_tf(*pdvs[i : i + per_pdu]) for i in range(0, len(pdvs), per_pdu))
        self.send(data, reply.trickle)

    def serve(self, step: Serve) -> None:
        for _ in range(step.max_messages):
            received = self.read_pdu()
            if received.pdu_type == P_DATA_TF:
                self.respond(step.reply, self.read_echo(received))
            elif received.pdu_type == A_RELEASE_RQ:
                self.release(step.release)
                return
            else:
                self.event(f"serve: ignoring PDU 0x{received.pdu_type:02x}")
        raise _ConnectionEnded("message limit reached")

    def release(self, mode: ReleaseMode) -> None:
        if mode == "rp":
            self.send(a_release_rp())
            self.stall()  # the requestor closes the connection (PS3.8 AR-3)
        elif mode == "abort":
            self.send(a_abort(0, 0))
            raise _ConnectionEnded("aborted the release")
        elif mode == "close":
            raise _ConnectionEnded("closed instead of A-RELEASE-RP")
        elif mode == "reset":
            self.step(Reset())
        elif mode == "silence":
            self.stall()
        elif mode == "collision":
            self.send(a_release_rq())
            self.stall()


# --- connect-timeout peer -----------------------------------------------------------------------


class FullBacklog:
    """A loopback listener whose accept queue is full, so the kernel drops further SYNs.

    A connect() to `port` then neither succeeds nor is refused: it times out. The sockets close
    by themselves after `time_limit` even if the context is never left.
    """

    def __init__(
        self, *, max_fillers: int = 16, fill_timeout: float = 0.3, time_limit: float = 30.0
    ):
        self.max_fillers = max_fillers
        self.fill_timeout = fill_timeout
        self.time_limit = time_limit
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(listener)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        self.port = listener.getsockname()[1]
        self._timer = threading.Timer(self.time_limit, self.close)
        self._timer.daemon = True
        self._timer.start()
        for _ in range(self.max_fillers):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sockets.append(filler)
            filler.settimeout(self.fill_timeout)
            try:
                filler.connect(("127.0.0.1", self.port))
            except TimeoutError:
                return self  # this SYN was dropped: the queue is full
        self.close()
        raise RuntimeError("could not fill the accept queue of a listen(0) socket")

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()


def unused_port() -> tuple[socket.socket, int]:
    """A bound but non-listening loopback socket: connecting to its port is refused.

    The caller keeps the socket open for the test's duration so that nobody else takes the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])
