"""Properties of `ULConnection` under hostile input and random primitive sequences.

- Any bytes, in any state, only ever become events (a `ProtocolViolation` for broken PS3.8):
  `receive_data` never raises.
- Whatever happens, every dispatched (state, event) pair is a cell of PS3.8 Table 9-10; the
  only exception is a local primitive the table forbids, which raises `LocalProtocolError`.
- The ARTIM timer only runs in Sta2 and Sta13, the states where Evt18 has a cell.
- What the connection sends is always a sequence of well-formed PDUs.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.pdu_strategies import encoded_pdus, mutated
from tests.support.ul_drive import (
    ACCEPT,
    ARTIM,
    LOCAL_EVENTS,
    PDATA,
    PDATA_BYTES,
    PDU_FOR_EVENT,
    REACHABLE,
    REJECT,
    REQUEST,
    RQ_BAD_VERSION_BYTES,
    drain,
    drive,
)

from echoprobe.errors import LocalProtocolError, RemoteProtocolError
from echoprobe.ul.codec import decode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.events import (
    AssociationRequested,
    DataReceived,
    ProtocolViolation,
    ReleaseRequested,
    Sentinel,
    ULEvent,
)
from echoprobe.ul.framing import FrameLimits, Framer
from echoprobe.ul.fsm import TRANSITIONS, Event, State

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class RecordingConnection(ULConnection):
    """A ULConnection that records every (state, event) pair it dispatches."""

    def __init__(self, role: Role) -> None:
        super().__init__(role, artim_timeout=ARTIM)
        self.seen: list[tuple[State, Event]] = []

    def _dispatch(self, event: Event, payload: object) -> None:
        self.seen.append((self.state, event))
        super()._dispatch(event, payload)


def _recording(role: Role) -> ULConnection:
    return RecordingConnection(role)


def _check_sent(outputs: list[bytes]) -> None:
    """Everything sent frames and decodes as PDUs, with nothing left over."""
    framer = Framer(FrameLimits(max_pdata=1 << 20, max_associate_ac=1 << 20))
    framer.feed(b"".join(outputs))
    while (frame := framer.next_pdu()) is not None:
        decode_pdu(*frame)
    assert framer.buffered == 0


def _check_events(events: list[ULEvent]) -> None:
    for event in events:
        if isinstance(event, ProtocolViolation):
            assert isinstance(event.error, RemoteProtocolError)
            assert event.error.abort_reason in (1, 2, 4, 5, 6)


# -- hostile bytes --------------------------------------------------------------------------------

# States with an open transport, where bytes can arrive.
RECEIVING = [
    (role, state)
    for role in Role
    for state in REACHABLE[role]
    if state not in (State.STA1, State.STA4)
]
chunk = st.one_of(
    st.binary(min_size=1, max_size=80),
    mutated(encoded_pdus),
    encoded_pdus,
    st.sampled_from(list(PDU_FOR_EVENT.values())),
).filter(bool)  # b"" would mean "transport closed"


@FAST
@given(st.sampled_from(RECEIVING), st.lists(chunk, min_size=1, max_size=6))
def test_hostile_bytes_only_become_events(
    role_state: tuple[Role, State], chunks: list[bytes]
) -> None:
    role, state = role_state
    conn = drive(role, state, _recording)
    assert isinstance(conn, RecordingConnection)
    outputs: list[bytes] = []
    events: list[ULEvent] = []
    for i, data in enumerate(chunks):
        conn.receive_data(data, float(i))
        outputs.append(conn.data_to_send())
        events += drain(conn)
    conn.receive_data(b"", float(len(chunks)))
    events += drain(conn)
    outputs.append(conn.data_to_send())
    assert [pair for pair in conn.seen if pair not in TRANSITIONS] == []
    _check_events(events)
    _check_sent(outputs)


@FAST
@given(st.sampled_from(RECEIVING), mutated(encoded_pdus).filter(bool), st.integers(1, 7))
def test_byte_by_byte_equals_whole(role_state: tuple[Role, State], data: bytes, step: int) -> None:
    role, state = role_state
    whole = drive(role, state)
    whole.receive_data(data, 0.0)
    pieces = drive(role, state)
    for start in range(0, len(data), step):
        pieces.receive_data(data[start : start + step], 0.0)
    assert pieces.state is whole.state
    assert pieces.data_to_send() == whole.data_to_send()
    left, right = drain(pieces), drain(whole)
    # Errors carry no value equality; compare their kind, reason and position instead.
    assert [_key(e) for e in left] == [_key(e) for e in right]


def _key(event: ULEvent) -> object:
    if isinstance(event, ProtocolViolation):
        return ("violation", event.error.field, event.error.offset, event.error.abort_reason)
    return event


# -- random sequences of primitives and arrivals ----------------------------------------------

PDU_KINDS: dict[str, bytes] = {
    **{event.value: data for event, data in PDU_FOR_EVENT.items()},
    "bad-version-rq": RQ_BAD_VERSION_BYTES,
    "half-pdata": PDATA_BYTES[:3],
    "rest-pdata": PDATA_BYTES[3:],
}

LOCAL: dict[str, Callable[[ULConnection, float], None]] = {
    "start_connect": lambda c, now: c.start_connect(REQUEST, now),
    "connection_made": lambda c, now: c.connection_made(now),
    "accept": lambda c, now: c.accept(ACCEPT),
    "reject": lambda c, now: c.reject(REJECT, now),
    "send_pdata": lambda c, now: c.send_pdata(PDATA),
    "request_release": lambda c, now: c.request_release(),
    "respond_release": lambda c, now: c.respond_release(now),
    "abort": lambda c, now: c.abort(now),
}

Step = tuple[str, tuple[str, ...]]
step: st.SearchStrategy[Step] = st.one_of(
    st.sampled_from(sorted(LOCAL)).map(lambda name: ("local", (name,))),
    st.lists(st.sampled_from(sorted(PDU_KINDS)), min_size=1, max_size=3).map(
        lambda kinds: ("recv", tuple(kinds))
    ),
    st.just(("close", ())),
    st.just(("timer", ())),
)


def _run(conn: ULConnection, kind: str, args: tuple[str, ...], now: float) -> None:
    if kind == "local":
        LOCAL[args[0]](conn, now)
    elif kind == "recv":
        if conn.state is not State.STA4:  # no transport yet: nothing can arrive
            conn.receive_data(b"".join(PDU_KINDS[a] for a in args), now)
    elif kind == "close":
        conn.receive_data(b"", now)
    else:
        conn.handle_timer(now + ARTIM)


# Start anywhere (deep states are unlikely to be reached by chance), then wander.
STARTS = [(role, state) for role in Role for state in REACHABLE[role]]


@settings(FAST, max_examples=300)
@given(st.sampled_from(STARTS), st.lists(step, max_size=25))
def test_random_sequences_stay_inside_the_table(
    start: tuple[Role, State], steps: list[Step]
) -> None:
    conn = drive(*start, _recording)
    assert isinstance(conn, RecordingConnection)
    outputs: list[bytes] = []
    for i, (kind, args) in enumerate(steps):
        conn.seen.clear()
        before = conn.state
        raised: LocalProtocolError | None = None
        try:
            _run(conn, kind, args, float(i))
        except LocalProtocolError as exc:
            raised = exc
        outside = [pair for pair in conn.seen if pair not in TRANSITIONS]
        if raised is None:
            assert outside == [], (before, kind, args)
        else:
            # Only a local primitive may be refused, before anything happened.
            assert kind == "local"
            assert conn.state is before
            assert outside == conn.seen[-1:]
            assert all(event in LOCAL_EVENTS for _, event in outside)
        if conn.get_timer() is not None:
            assert conn.state in (State.STA2, State.STA13)
        outputs.append(conn.data_to_send())
        _check_events(drain(conn))
    _check_sent(outputs)


# -- on demand: an acceptor answering each event, however the bytes are sliced ----------------

ASSOCIATION_BYTES = st.lists(
    st.sampled_from(
        [
            PDU_FOR_EVENT[Event.EVT6],  # A-ASSOCIATE-RQ
            PDATA_BYTES,
            PDU_FOR_EVENT[Event.EVT12],  # A-RELEASE-RQ
            PDU_FOR_EVENT[Event.EVT13],  # A-RELEASE-RP
            PDU_FOR_EVENT[Event.EVT16],  # A-ABORT
            PDU_FOR_EVENT[Event.EVT19],  # an unknown PDU type
            b"\xff",  # a stray byte
        ]
    ),
    min_size=1,
    max_size=6,
).map(b"".join)


def _answer_all(conn: ULConnection) -> list[ULEvent]:
    """What `EchoSCP` does with each event: answer it if the state still takes the answer."""
    events: list[ULEvent] = []
    while not isinstance(event := conn.next_event(), Sentinel):
        events.append(event)
        if isinstance(event, AssociationRequested) and conn.allows(Event.EVT7):
            conn.accept(ACCEPT)
        elif isinstance(event, DataReceived) and conn.allows(Event.EVT9):
            conn.send_pdata(PDATA)
        elif (
            isinstance(event, ReleaseRequested) and not event.collision and conn.allows(Event.EVT14)
        ):
            conn.respond_release(0.0)
    return events


@FAST
@given(ASSOCIATION_BYTES, st.integers(1, 9), st.booleans())
def test_on_demand_answers_do_not_depend_on_slicing(data: bytes, step: int, close: bool) -> None:
    """On demand, an acceptor that answers every event it may answer sends the same bytes and
    sees the same events whether the requestor's bytes come whole or in pieces, and never
    calls a primitive its state does not take."""

    def run(pieces: list[bytes]) -> tuple[list[object], bytes, State]:
        conn = ULConnection(Role.ACCEPTOR, artim_timeout=ARTIM, on_demand=True)
        conn.connection_made(0.0)
        events: list[object] = []
        for piece in pieces:
            conn.receive_data(piece, 0.0)
            events += [_key(e) for e in _answer_all(conn)]
        if close:
            conn.receive_data(b"", 0.0)
            events += [_key(e) for e in _answer_all(conn)]
        return events, conn.data_to_send(), conn.state

    whole = run([data])
    sliced = run([data[i : i + step] for i in range(0, len(data), step)])
    assert sliced == whole
