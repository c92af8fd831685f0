"""Fuzz `ULConnection` (`ul/connection.py`) as an SCP and as an SCU, through its public API.

The input's control bytes choose the role, our Maximum Length, how the stream is cut into
reads and how the transport ends; the stream is what the peer sends. A driver reacts to each
event with the public primitives, as `EchoSCP` and the association procedure do, and stops
reading once the connection asks to be closed.

Invariants:
- nothing escapes the connection or the driver: no `LocalProtocolError` (the driver only does
  what the event it got allows), no IndexError, AssertionError, ...;
- what we write is whole, valid PDUs;
- dispatching on demand (`on_demand=True`, the SCP's choice; a control bit picks it): every
  answer is allowed in the state its event left, and the same bytes give the same events,
  writes, closing, final state and unfinished-PDU bytes held (`mid_pdu`, `buffered`) however
  they are sliced (compared with one read);
- dispatching on arrival (the requestor's default): the driver answers only where `allows()`
  says the state still takes the primitive, as the drivers do.
"""

from __future__ import annotations

from echoprobe.dimse.echo import (
    echo_request_pdus,
    echo_response_command,
    parse_echo_request,
    parse_echo_response,
)
from echoprobe.dimse.fragment import Reassembler, fragment_command
from echoprobe.errors import DIMSEError, NoAcceptedContext, RemoteProtocolError
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.events import (
    NEED_DATA,
    AssociationAccepted,
    AssociationRequested,
    DataReceived,
    ProtocolViolation,
    ReleaseConfirmed,
    ReleaseRequested,
    ULEvent,
)
from echoprobe.ul.fsm import Event, State
from echoprobe.ul.negotiation import (
    PDV_OVERHEAD,
    AcceptorPolicy,
    answer_request,
    build_request,
    check_request,
    effective_send_pdu,
    validate_accept,
)
from echoprobe.ul.pdu import AssociateRQ
from fuzz._common import (
    Finding,
    describe_error,
    parse_written,
    slice_reads,
    split_input,
)

_MAX_PDUS = (16384, 0, 1024, 128)
_REPEATS = 2  # C-ECHOs the requestor sends before it releases
_ARTIM = 5.0


class _Driver:
    """Reacts to events as our SCP (acceptor) or our SCU (requestor) does."""

    def __init__(self, role: Role, max_pdu: int, on_demand: bool) -> None:
        self.conn = ULConnection(
            role, max_receive_pdu=max_pdu, artim_timeout=_ARTIM, on_demand=on_demand
        )
        self.on_demand = on_demand
        self.events: list[object] = []
        self.written = bytearray()
        self.closed = False
        self.reassembler: Reassembler | None = None
        self.max_fragment = 16372
        self.message_id = 1
        self.context_id = 1
        self.echoes = 0
        self.request: AssociateRQ | None = None
        if role is Role.REQUESTOR:
            self.request = build_request(num_contexts=2, max_pdu=max_pdu)
            self.conn.start_connect(self.request, 0.0)
        self.conn.connection_made(0.0)
        self._flush()

    def may(self, primitive: Event) -> bool:
        """Whether answering with `primitive` is allowed now (always, on demand)."""
        allowed = self.conn.allows(primitive)
        if self.on_demand and not allowed:
            raise Finding(
                f"{primitive.value} refused in {self.conn.state.value} right after its event"
            )
        return allowed

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            if self.closed:
                raise Finding(f"bytes to send after close: {out.hex()}")
            self.written += out
        if self.conn.close_requested:
            self.closed = True

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        self.conn.receive_data(data, 0.0)
        self.pump()

    def pump(self) -> None:
        while not self.closed:
            event = self.conn.next_event()
            if event is NEED_DATA:
                break
            self.events.append(_describe(event))
            if self.conn.role is Role.ACCEPTOR:
                self._as_scp(event)
            else:
                self._as_scu(event)
            self._flush()
        self._flush()

    def end(self, how: int) -> None:
        """0: the peer stays; 1: it closes; 2: it stays until the ARTIM timer fires."""
        if self.closed:
            return
        if how == 1:
            self.conn.receive_data(b"", 0.0)
            self.pump()
        elif how == 2:
            deadline = self.conn.get_timer()
            if deadline is not None:
                self.conn.handle_timer(deadline)
                self.pump()

    # -- the SCP's reactions (net/server.py `_pump`)

    def _as_scp(self, event: ULEvent) -> None:
        conn = self.conn
        if isinstance(event, AssociationRequested):
            policy = AcceptorPolicy()
            reject = check_request(event.request, policy)
            if reject is not None:
                if self.may(Event.EVT8):
                    conn.reject(reject, 0.0)
                return
            answer = answer_request(event.request, policy)
            accepted = frozenset(
                pc.context_id for pc in answer.presentation_contexts if pc.result == 0
            )
            self.reassembler = Reassembler(accepted)
            peer_max = event.request.user_information.max_length
            self.max_fragment = max(effective_send_pdu(peer_max) - PDV_OVERHEAD, 2)
            if self.may(Event.EVT7):
                conn.accept(answer)
        elif isinstance(event, DataReceived):
            if self.reassembler is None:
                return
            try:
                done = self.reassembler.feed(event.pdvs)
                if done is None:
                    return
                message_id = parse_echo_request(done[1])
            except (RemoteProtocolError, DIMSEError):
                conn.abort(0.0, reason=0)
                return
            if self.may(Event.EVT9):
                conn.send_pdata(
                    fragment_command(echo_response_command(message_id), done[0], self.max_fragment)
                )
        elif isinstance(event, ReleaseRequested):
            if not event.collision and self.may(Event.EVT14):
                conn.respond_release(0.0)
        elif isinstance(event, ReleaseConfirmed) and conn.state is State.STA12:
            conn.respond_release(0.0)

    # -- the SCU's reactions (net/association.py `run_association`)

    def _as_scu(self, event: ULEvent) -> None:
        conn = self.conn
        if isinstance(event, AssociationAccepted):
            assert self.request is not None
            try:
                negotiated = validate_accept(self.request, event.accept)
            except NoAcceptedContext:
                conn.abort(0.0)
                return
            if negotiated.max_send_pdu <= PDV_OVERHEAD:
                conn.abort(0.0)
                return
            accepted = frozenset(cid for cid, result in negotiated.context_results if result == 0)
            self.reassembler = Reassembler(accepted)
            self.max_fragment = negotiated.max_fragment
            self.context_id = negotiated.context_id
            if self.may(Event.EVT9):
                conn.send_pdata(echo_request_pdus(1, negotiated.context_id, self.max_fragment))
        elif isinstance(event, DataReceived):
            if self.reassembler is None or self.echoes >= _REPEATS or not self.may(Event.EVT9):
                return  # after our A-RELEASE-RQ, data is not answered
            try:
                done = self.reassembler.feed(event.pdvs)
                if done is None:
                    return
                parse_echo_response(done[1], self.message_id)
            except (RemoteProtocolError, DIMSEError):
                conn.abort(0.0)
                return
            self.echoes += 1
            if self.echoes < _REPEATS:
                self.message_id += 1
                conn.send_pdata(
                    echo_request_pdus(self.message_id, self.context_id, self.max_fragment)
                )
            else:
                conn.request_release()
        elif isinstance(event, ReleaseRequested):
            if event.collision:
                if self.may(Event.EVT14):
                    conn.respond_release(0.0)  # Sta9 → AR-9 → Sta11
            else:
                conn.abort(0.0)  # A-RELEASE-RQ while we wait for a C-ECHO-RSP


def _describe(event: ULEvent) -> object:
    if isinstance(event, ProtocolViolation):
        return ("ProtocolViolation", describe_error(event.error))
    return event


def _held(driver: _Driver) -> tuple[bool, int]:
    """What the connection says it holds of an unfinished PDU (drivers time and cap it)."""
    return driver.conn.mid_pdu, driver.conn.buffered


def run(role: Role, max_pdu: int, on_demand: bool, reads: list[bytes], end: int) -> _Driver:
    driver = _Driver(role, max_pdu, on_demand)
    for chunk in reads:
        driver.feed(chunk)
    driver.end(end)
    return driver


def check(data: bytes) -> None:
    control, stream = split_input(data, 2)
    role = Role.ACCEPTOR if control[0] & 1 else Role.REQUESTOR
    max_pdu = _MAX_PDUS[(control[0] >> 1) % len(_MAX_PDUS)]
    end = (control[0] >> 3) % 3
    on_demand = bool(control[0] & 0x20)
    sliced = run(role, max_pdu, on_demand, slice_reads(stream, control[1]), end)
    parse_written(bytes(sliced.written))
    if not on_demand:
        return
    whole = run(role, max_pdu, on_demand, [stream] if stream else [], end)
    got = (sliced.events, bytes(sliced.written), sliced.closed, sliced.conn.state, _held(sliced))
    want = (whole.events, bytes(whole.written), whole.closed, whole.conn.state, _held(whole))
    if got != want:
        raise Finding(f"slicing changed the conversation:\n{got!r}\nvs whole:\n{want!r}")
