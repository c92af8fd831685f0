"""`ULConnection`: one DICOM Upper Layer association endpoint, sans-I/O (PS3.8 §9.2).

The shape follows h11 and aioquic: bytes in (`receive_data`), bytes out (`data_to_send`),
events out (`next_event`), and time in as a `now` argument (`get_timer` / `handle_timer` for the
ARTIM timer). The object never touches a socket or a clock.

Rules:
- Every incoming PDU and every local primitive becomes a PS3.8 event; the action is looked up
  in `fsm.TRANSITIONS` and performed here, and nowhere else. A primitive the table does not
  allow in the current state raises `LocalProtocolError` (a bug in the caller).
- A framing or decoding error is Evt19: we send A-ABORT (service provider, with the error's
  reason) and stop reading, because the byte stream can no longer be trusted.
- `close_requested` tells the driver to close the transport once `data_to_send()` is flushed
  (AE-4, AR-3, AA-2, AA-3, AA-4, and ARTIM expiry).
- When a PDU is dispatched is the driver's choice, made once:
  - on arrival (the default; the requestor's): every PDU of a read is dispatched by
    `receive_data`, so the state is the peer's latest word (an A-ASSOCIATE-AC and an A-ABORT
    in one read leave Sta1 at once);
  - on demand (`on_demand=True`; the SCP's): a PDU is dispatched only once every event
    before it has been taken with `next_event()`, as if the PDUs had arrived one by one with
    the driver answering each in between (how DCMTK reads). Whatever arrives together (an
    A-ASSOCIATE-RQ and a C-ECHO-RQ, a C-ECHO-RQ and an A-RELEASE-RQ, a PDU and a stray
    byte), the answers are the same however the transport sliced the bytes.
  An end of input (Evt17) is dispatched after the PDUs received before it. Either way the
  driver answers an event only if `allows()` says the state still takes that primitive (the
  answer is moot otherwise: the peer has aborted, released or broken the protocol, and the
  events that follow say so).
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from struct import Struct

from echoprobe.errors import LocalProtocolError, RemoteProtocolError
from echoprobe.ul.codec import (
    RELEASE_RP_BYTES,
    RELEASE_RQ_BYTES,
    decode_pdu,
    encode_pdata,
    encode_pdu,
)
from echoprobe.ul.constants import AbortReason, AbortSource, PDUType
from echoprobe.ul.events import (
    NEED_DATA,
    AbortReceived,
    ARTIMExpired,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    ConnectionClosed,
    DataReceived,
    ProtocolViolation,
    ReleaseConfirmed,
    ReleaseRequested,
    Sentinel,
    ULEvent,
)
from echoprobe.ul.framing import FrameLimits, Framer
from echoprobe.ul.fsm import NEXT_STATE, TRANSITIONS, Action, Event, State
from echoprobe.ul.pdu import (
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
)

_HEADER = Struct(">BBL")

# PDU type → the PS3.8 event of its arrival (Table 9-2).
_PDU_EVENT: dict[int, Event] = {
    PDUType.A_ASSOCIATE_RQ: Event.EVT6,
    PDUType.A_ASSOCIATE_AC: Event.EVT3,
    PDUType.A_ASSOCIATE_RJ: Event.EVT4,
    PDUType.P_DATA_TF: Event.EVT10,
    PDUType.A_RELEASE_RQ: Event.EVT12,
    PDUType.A_RELEASE_RP: Event.EVT13,
    PDUType.A_ABORT: Event.EVT16,
}


class Role(Enum):
    REQUESTOR = "requestor"  # association-requestor: the SCU side of echoprobe
    ACCEPTOR = "acceptor"  # association-acceptor: the SCP side


class ULConnection:
    """One association endpoint. Not thread-safe; one driver owns it."""

    __slots__ = (
        "_artim_deadline",
        "_artim_timeout",
        "_closed_input",
        "_eof",
        "_events",
        "_framer",
        "_now",
        "_on_demand",
        "_outgoing",
        "_pending_frame",
        "_pending_rq",
        "_raw_associate",
        "close_requested",
        "role",
        "state",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_receive_pdu: int = 16384,
        artim_timeout: float = 30.0,
        limits: FrameLimits | None = None,
        on_demand: bool = False,
    ) -> None:
        self.role = role
        self._on_demand = on_demand
        self.state = State.STA1
        self.close_requested = False
        self._framer = Framer(limits or FrameLimits(max_pdata=max_receive_pdu))
        self._events: deque[ULEvent] = deque()
        self._outgoing: list[bytes] = []
        self._artim_timeout = artim_timeout
        self._artim_deadline: float | None = None
        self._now = 0.0
        self._closed_input = False
        self._eof = False  # the transport closed; Evt17 follows the PDUs received before it
        self._pending_frame: tuple[int, bytes] | None = None  # a whole read that was one PDU
        self._pending_rq: bytes | None = None
        self._raw_associate = b""

    # ---------------------------------------------------------------- byte and event plumbing

    @property
    def mid_pdu(self) -> bool:
        """True while a PDU has been partly received (used to classify stalls and closes).
        On demand, meaningful once `next_event()` has returned `NEED_DATA`."""
        return self._framer.buffered > 0

    @property
    def buffered(self) -> int:
        """Bytes received and held: a PDU not yet whole (and, on demand, PDUs not yet
        dispatched behind a waiting event)."""
        frame = self._pending_frame
        return self._framer.buffered + (0 if frame is None else len(frame[1]))

    @property
    def limits(self) -> FrameLimits:
        return self._framer.limits

    def set_limits(self, limits: FrameLimits) -> None:
        self._framer.limits = limits

    def data_to_send(self) -> bytes:
        """Bytes the driver must write now, in order (empty when there is nothing)."""
        if not self._outgoing:
            return b""
        out = self._outgoing[0] if len(self._outgoing) == 1 else b"".join(self._outgoing)
        self._outgoing.clear()
        return out

    def next_event(self) -> ULEvent | Sentinel:
        """The next event; `NEED_DATA` when everything received so far has been dispatched.
        On demand, taking the last waiting event lets the next buffered PDU be dispatched."""
        events = self._events
        if not events:
            if self._on_demand:
                self._dispatch_waiting()
            if not events:
                return NEED_DATA
        return events.popleft()

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the transport; `b""` means the peer closed it (Evt17)."""
        self._now = now
        if not data:
            self._eof = True
        elif not (self._eof or self._input_ended()):
            framer = self._framer
            if self._pending_frame is None and not framer.buffered:
                frame = framer.whole(data)
                if frame is None:
                    framer.feed(data)
                else:
                    self._pending_frame = frame  # the usual read: one whole PDU, no copy
            else:
                # A held whole PDU was received before anything in the framer: it goes first.
                framer.feed(data)
        if not self._on_demand:
            while self._dispatch_next():
                pass
        elif not self._events:
            self._dispatch_waiting()

    def _dispatch_waiting(self) -> None:
        """Dispatch received PDUs until one gives the driver an event (or none is left)."""
        while not self._events and self._dispatch_next():
            pass

    def _dispatch_next(self) -> bool:
        """Dispatch one incoming PDU, framing error or end of input; False if there is none."""
        if not self._input_ended():
            frame = self._pending_frame
            if frame is not None:
                self._pending_frame = None
                self._arrived(*frame)
            else:
                try:
                    frame = self._framer.next_pdu()
                except RemoteProtocolError as exc:
                    self._closed_input = True
                    self._dispatch(Event.EVT19, exc)
                    frame = None
                else:
                    if frame is None:
                        return self._dispatch_eof()
                    self._arrived(*frame)
            if self._input_ended():
                self._discard_input()  # behind a PDU that ended input: never read
            return True
        return self._dispatch_eof()

    def _dispatch_eof(self) -> bool:
        if self._eof:
            self._eof = False
            self._pending_frame = None
            self._transport_closed()
            return True
        return False

    def _discard_input(self) -> None:
        self._framer.clear()
        self._pending_frame = None

    def stop_reading(self) -> None:
        """The driver reads no more (after a protocol violation, say): bytes already received
        and not yet dispatched are dropped, so what happens does not depend on how the peer's
        bytes were sliced into reads. The end of the transport (Evt17) is still dispatched."""
        self._closed_input = True
        self._discard_input()

    def _arrived(self, pdu_type: int, body: bytes) -> None:
        try:
            pdu = decode_pdu(pdu_type, body)
        except RemoteProtocolError as exc:
            self._closed_input = True
            self._dispatch(Event.EVT19, exc)
            return
        if pdu_type <= 0x02:
            self._raw_associate = _HEADER.pack(pdu_type, 0, len(body)) + body
        self._dispatch(_PDU_EVENT[pdu_type], pdu)

    def _input_ended(self) -> bool:
        # After a framing error nothing more is trusted. In Sta1 nothing counts: a PDU that
        # ends the association (AE-4, AR-3, AA-2, AA-3) leads there, and no PDU has a cell in
        # Sta1 (Table 9-10), so bytes behind it in the same read are not dispatched either.
        return self._closed_input or self.state is State.STA1

    # ---------------------------------------------------------------------------- timers

    def get_timer(self) -> float | None:
        """When `handle_timer` must be called next (the ARTIM deadline), or None."""
        return self._artim_deadline

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._artim_deadline is not None and now >= self._artim_deadline:
            self._artim_deadline = None
            self._dispatch(Event.EVT18, None)

    # ------------------------------------------------------------- transport primitives

    def start_connect(self, request: AssociateRQ | bytes, now: float = 0.0) -> None:
        """A-ASSOCIATE request (Evt1, requestor): the driver is to open the transport next.

        `request` may be pre-encoded bytes (drivers cache the encoding of a fixed request).
        """
        if self.role is not Role.REQUESTOR:
            raise LocalProtocolError("only the requestor sends A-ASSOCIATE-RQ")
        self._now = now
        self._pending_rq = request if isinstance(request, bytes) else encode_pdu(request)
        self._dispatch(Event.EVT1, None)

    def connection_made(self, now: float = 0.0) -> None:
        """Transport connect confirmation (Evt2, requestor) or indication (Evt5, acceptor)."""
        self._now = now
        self._dispatch(Event.EVT2 if self.role is Role.REQUESTOR else Event.EVT5, None)

    def _transport_closed(self) -> None:
        if self.state is State.STA1:
            return
        self._dispatch(Event.EVT17, None)

    # -------------------------------------------------------------------- local primitives

    def allows(self, primitive: Event) -> bool:
        """Whether the current state takes this local primitive (Table 9-10 has a cell)."""
        return (self.state, primitive) in TRANSITIONS

    def accept(self, accept: AssociateAC | bytes) -> None:
        """A-ASSOCIATE response, accept (Evt7, acceptor)."""
        self._dispatch(Event.EVT7, accept)

    def reject(self, reject: AssociateRJ, now: float | None = None) -> None:
        """A-ASSOCIATE response, reject (Evt8, acceptor)."""
        if now is not None:
            self._now = now
        self._dispatch(Event.EVT8, reject)

    def send_pdata(self, pdata: PDataTF | bytes) -> None:
        """P-DATA request (Evt9). Pre-encoded bytes are accepted for the hot path."""
        self._dispatch(Event.EVT9, pdata)

    def request_release(self) -> None:
        """A-RELEASE request (Evt11)."""
        self._dispatch(Event.EVT11, None)

    def respond_release(self, now: float | None = None) -> None:
        """A-RELEASE response (Evt14)."""
        if now is not None:
            self._now = now
        self._dispatch(Event.EVT14, None)

    def abort(self, now: float | None = None, *, reason: int = 0) -> None:
        """A-ABORT request (Evt15): source 0 (service user). Harmless when already closing."""
        if now is not None:
            self._now = now
        if (self.state, Event.EVT15) in TRANSITIONS:
            self._dispatch(Event.EVT15, reason)
        elif self.state is not State.STA1:
            self.close_requested = True

    # ------------------------------------------------------------------ the state machine

    def _dispatch(self, event: Event, payload: object) -> None:
        action = TRANSITIONS.get((self.state, event))
        if action is None:
            if event in _LOCAL_EVENTS:
                raise LocalProtocolError(
                    f"{event.value} is not allowed in {self.state.value} (PS3.8 Table 9-10)"
                )
            return  # a peer event with an empty cell: cannot happen by the table's design
        next_state = NEXT_STATE[action]
        chosen = _ACTIONS[action](self, event, payload)
        if next_state is None:
            assert chosen is not None  # AE-6 and AR-8 always choose
            next_state = chosen
        self.state = next_state

    def _emit(self, event: ULEvent) -> None:
        self._events.append(event)

    def _start_artim(self) -> None:
        self._artim_deadline = self._now + self._artim_timeout

    def _send_abort(self, source: int, reason: int) -> None:
        self._outgoing.append(encode_pdu(Abort(source, reason)))

    # Action implementations. Each returns the next state when NEXT_STATE leaves it open.

    def _ae1(self, _e: Event, _p: object) -> None:
        pass  # the driver opens the transport after start_connect()

    def _ae2(self, _e: Event, _p: object) -> None:
        assert self._pending_rq is not None  # set by start_connect, our own invariant
        self._outgoing.append(self._pending_rq)
        self._pending_rq = None

    def _ae3(self, _e: Event, pdu: object) -> None:
        assert isinstance(pdu, AssociateAC)
        self._emit(AssociationAccepted(pdu, self._raw_associate))

    def _ae4(self, _e: Event, pdu: object) -> None:
        assert isinstance(pdu, AssociateRJ)
        self._emit(AssociationRejected(pdu))
        self.close_requested = True

    def _ae5(self, _e: Event, _p: object) -> None:
        self._start_artim()

    def _ae6(self, _e: Event, pdu: object) -> State:
        assert isinstance(pdu, AssociateRQ)
        self._artim_deadline = None
        if pdu.protocol_version & 0x0001:  # PS3.8 §9.3.2: bit 0 is the version we speak
            self._emit(AssociationRequested(pdu, self._raw_associate))
            return State.STA3
        self._outgoing.append(encode_pdu(AssociateRJ(1, 2, 2)))  # protocol version not supported
        self._start_artim()
        return State.STA13

    def _ae7(self, _e: Event, accept: object) -> None:
        self._outgoing.append(accept if isinstance(accept, bytes) else encode_pdu(accept))  # type: ignore[arg-type]

    def _ae8(self, _e: Event, reject: object) -> None:
        assert isinstance(reject, AssociateRJ)
        self._outgoing.append(encode_pdu(reject))
        self._start_artim()

    def _dt1(self, _e: Event, pdata: object) -> None:
        if isinstance(pdata, PDataTF):
            self._outgoing.append(encode_pdata(pdata.pdvs))
        else:
            assert isinstance(pdata, bytes)
            self._outgoing.append(pdata)

    def _dt2(self, _e: Event, pdu: object) -> None:
        assert isinstance(pdu, PDataTF)
        self._emit(DataReceived(pdu.pdvs))

    def _ar1(self, _e: Event, _p: object) -> None:
        self._outgoing.append(RELEASE_RQ_BYTES)

    def _ar2(self, _e: Event, _p: object) -> None:
        self._emit(ReleaseRequested())

    def _ar3(self, _e: Event, _p: object) -> None:
        self._emit(ReleaseConfirmed())
        self.close_requested = True

    def _ar4(self, _e: Event, _p: object) -> None:
        self._outgoing.append(RELEASE_RP_BYTES)
        self._start_artim()

    def _ar5(self, _e: Event, _p: object) -> None:
        self._artim_deadline = None
        self._emit(ConnectionClosed(expected=True))

    _ar6 = _dt2
    _ar7 = _dt1

    def _ar8(self, _e: Event, _p: object) -> State:
        self._emit(ReleaseRequested(collision=True))
        return State.STA9 if self.role is Role.REQUESTOR else State.STA10

    def _ar9(self, _e: Event, _p: object) -> None:
        self._outgoing.append(RELEASE_RP_BYTES)

    def _ar10(self, _e: Event, _p: object) -> None:
        self._emit(ReleaseConfirmed())

    def _aa1(self, event: Event, payload: object) -> None:
        if event is Event.EVT15:
            self._send_abort(AbortSource.SERVICE_USER, payload if isinstance(payload, int) else 0)
        else:
            # An unexpected PDU in Sta2 (acceptor before any request): PS3.8 says A-ABORT
            # with service-user source; we also report what went wrong (for Evt19, the
            # decoding error itself, with its offset and field).
            self._send_abort(AbortSource.SERVICE_USER, 0)
            error = (
                payload if isinstance(payload, RemoteProtocolError) else _unexpected(event, payload)
            )
            self._emit(ProtocolViolation(error))
        self._start_artim()

    def _aa2(self, event: Event, _p: object) -> None:
        self._artim_deadline = None
        self.close_requested = True
        if event is Event.EVT18:
            self._emit(ARTIMExpired())
        elif event is Event.EVT16:
            self._emit(ConnectionClosed(expected=True))

    def _aa3(self, _e: Event, pdu: object) -> None:
        assert isinstance(pdu, Abort)
        self._emit(AbortReceived(pdu.source, pdu.reason))
        self.close_requested = True

    def _aa4(self, _e: Event, _p: object) -> None:
        self._emit(ConnectionClosed(expected=False, mid_pdu=self.mid_pdu))
        self.close_requested = True

    def _aa5(self, _e: Event, _p: object) -> None:
        self._artim_deadline = None
        self._emit(ConnectionClosed(expected=True))

    def _aa6(self, _e: Event, _p: object) -> None:
        pass  # ignore the PDU while waiting for the transport to close

    def _aa7(self, event: Event, payload: object) -> None:
        error = payload if isinstance(payload, RemoteProtocolError) else _unexpected(event, payload)
        self._send_abort(AbortSource.SERVICE_PROVIDER, error.abort_reason)

    def _aa8(self, event: Event, payload: object) -> None:
        error = payload if isinstance(payload, RemoteProtocolError) else _unexpected(event, payload)
        self._send_abort(AbortSource.SERVICE_PROVIDER, error.abort_reason)
        self._emit(ProtocolViolation(error))
        self._start_artim()


_LOCAL_EVENTS = frozenset(
    (
        Event.EVT1,
        Event.EVT2,
        Event.EVT5,
        Event.EVT7,
        Event.EVT8,
        Event.EVT9,
        Event.EVT11,
        Event.EVT14,
        Event.EVT15,
    )
)


def _unexpected(event: Event, payload: object) -> RemoteProtocolError:
    pdu_type = None
    for ptype, evt in _PDU_EVENT.items():
        if evt is event:
            pdu_type = int(ptype)
    name = type(payload).__name__ if payload is not None else event.value
    return RemoteProtocolError(
        f"unexpected {name} PDU",
        field="pdu_type",
        abort_reason=AbortReason.UNEXPECTED_PDU,
        pdu_type=pdu_type,
    )


_ACTIONS = {
    Action.AE_1: ULConnection._ae1, Action.AE_2: ULConnection._ae2,
    Action.AE_3: ULConnection._ae3, Action.AE_4: ULConnection._ae4,
    Action.AE_5: ULConnection._ae5, Action.AE_6: ULConnection._ae6,
    Action.AE_7: ULConnection._ae7, Action.AE_8: ULConnection._ae8,
    Action.DT_1: ULConnection._dt1, Action.DT_2: ULConnection._dt2,
    Action.AR_1: ULConnection._ar1, Action.AR_2: ULConnection._ar2,
    Action.AR_3: ULConnection._ar3, Action.AR_4: ULConnection._ar4,
    Action.AR_5: ULConnection._ar5, Action.AR_6: ULConnection._ar6,
    Action.AR_7: ULConnection._ar7, Action.AR_8: ULConnection._ar8,
    Action.AR_9: ULConnection._ar9, Action.AR_10: ULConnection._ar10,
    Action.AA_1: ULConnection._aa1, Action.AA_2: ULConnection._aa2,
    Action.AA_3: ULConnection._aa3, Action.AA_4: ULConnection._aa4,
    Action.AA_5: ULConnection._aa5, Action.AA_6: ULConnection._aa6,
    Action.AA_7: ULConnection._aa7, Action.AA_8: ULConnection._aa8,
}  # fmt: skip
