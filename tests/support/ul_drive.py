"""Drive `ULConnection`s through PS3.8 states in memory, for the pure-core tests.

Every state is reached through the public API only (no `conn.state = ...`), so a test that
starts from a state also checks the path to it. Requestor-only states (Sta4, Sta5, Sta9, Sta11)
and acceptor-only states (Sta2, Sta3, Sta10, Sta12) are reachable by one role only: PS3.8 gives
the other role no way in.
"""

from __future__ import annotations

from collections.abc import Callable

from echoprobe._values import replace
from echoprobe.ul.codec import encode_pdata, encode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.events import Sentinel, ULEvent
from echoprobe.ul.fsm import Event, State
from echoprobe.ul.negotiation import AcceptorPolicy, answer_request, build_request
from echoprobe.ul.pdu import PDV, Abort, AssociateRJ, PDataTF, ReleaseRP, ReleaseRQ

REQUEST = build_request()
ACCEPT = answer_request(REQUEST, AcceptorPolicy())
REJECT = AssociateRJ(1, 1, 7)

RQ_BYTES = encode_pdu(REQUEST)
# Protocol version 2 has bit 0 clear: the acceptor must refuse it (AE-6, PS3.8 §9.3.2).
RQ_BAD_VERSION_BYTES = encode_pdu(replace(REQUEST, protocol_version=2))
AC_BYTES = encode_pdu(ACCEPT)
RJ_BYTES = encode_pdu(REJECT)
PDATA = PDataTF((PDV(1, 0x03, b"\x00\x00"),))
PDATA_BYTES = encode_pdata(PDATA.pdvs)
RELEASE_RQ_BYTES = encode_pdu(ReleaseRQ())
RELEASE_RP_BYTES = encode_pdu(ReleaseRP())
ABORT_BYTES = encode_pdu(Abort(0, 0))
GARBAGE_BYTES = b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00"  # PDU type 09H does not exist

ARTIM = 30.0  # the ARTIM timeout every driven connection uses

# The PDU whose arrival is each PS3.8 event (Table 9-2); Evt19 is an unrecognized PDU.
PDU_FOR_EVENT: dict[Event, bytes] = {
    Event.EVT3: AC_BYTES,
    Event.EVT4: RJ_BYTES,
    Event.EVT6: RQ_BYTES,
    Event.EVT10: PDATA_BYTES,
    Event.EVT12: RELEASE_RQ_BYTES,
    Event.EVT13: RELEASE_RP_BYTES,
    Event.EVT16: ABORT_BYTES,
    Event.EVT19: GARBAGE_BYTES,
}

LOCAL_EVENTS = frozenset(
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

Step = Callable[[ULConnection], None]


def _recv(data: bytes) -> Step:
    def step(conn: ULConnection) -> None:
        conn.receive_data(data, 0.0)

    return step


def _start(conn: ULConnection) -> None:
    conn.start_connect(REQUEST, 0.0)


def _connected(conn: ULConnection) -> None:
    conn.connection_made(0.0)


def _accept(conn: ULConnection) -> None:
    conn.accept(ACCEPT)


def _reject(conn: ULConnection) -> None:
    conn.reject(REJECT, 0.0)


def _release(conn: ULConnection) -> None:
    conn.request_release()


def _respond(conn: ULConnection) -> None:
    conn.respond_release(0.0)


def _abort(conn: ULConnection) -> None:
    conn.abort(0.0)


S = State
_R, _A = Role.REQUESTOR, Role.ACCEPTOR

# (role, state) → (the state it is reached from, the step that leads here).
_PATHS: dict[tuple[Role, State], tuple[State, Step]] = {
    (_R, S.STA4): (S.STA1, _start),
    (_R, S.STA5): (S.STA4, _connected),
    (_R, S.STA6): (S.STA5, _recv(AC_BYTES)),
    (_R, S.STA7): (S.STA6, _release),
    (_R, S.STA8): (S.STA6, _recv(RELEASE_RQ_BYTES)),
    (_R, S.STA9): (S.STA7, _recv(RELEASE_RQ_BYTES)),
    (_R, S.STA11): (S.STA9, _respond),
    (_R, S.STA13): (S.STA5, _abort),
    (_A, S.STA2): (S.STA1, _connected),
    (_A, S.STA3): (S.STA2, _recv(RQ_BYTES)),
    (_A, S.STA6): (S.STA3, _accept),
    (_A, S.STA7): (S.STA6, _release),
    (_A, S.STA8): (S.STA6, _recv(RELEASE_RQ_BYTES)),
    (_A, S.STA10): (S.STA7, _recv(RELEASE_RQ_BYTES)),
    (_A, S.STA12): (S.STA10, _recv(RELEASE_RP_BYTES)),
    (_A, S.STA13): (S.STA3, _reject),
}

REACHABLE: dict[Role, tuple[State, ...]] = {
    role: (S.STA1, *(state for (r, state) in _PATHS if r is role)) for role in Role
}


def connection(role: Role) -> ULConnection:
    return ULConnection(role, artim_timeout=ARTIM)


def drive(
    role: Role, state: State, factory: Callable[[Role], ULConnection] = connection
) -> ULConnection:
    """A fresh connection of `role` (made by `factory`) brought into `state`, its output and
    events drained."""
    conn = factory(role)
    for step in _path(role, state):
        step(conn)
    assert conn.state is state, f"{role.value} reached {conn.state.value}, not {state.value}"
    conn.data_to_send()
    drain(conn)
    return conn


def _path(role: Role, state: State) -> list[Step]:
    steps: list[Step] = []
    while state is not S.STA1:
        try:
            state, step = _PATHS[(role, state)]
        except KeyError:
            raise ValueError(f"{state.value} is not reachable by the {role.value}") from None
        steps.append(step)
    return steps[::-1]


def state_of(conn: ULConnection) -> State:
    """`conn.state`, read through a call: a type checker must not carry a state narrowed by
    one assertion across the primitives that change it."""
    return conn.state


def drain(conn: ULConnection) -> list[ULEvent]:
    events: list[ULEvent] = []
    while not isinstance(event := conn.next_event(), Sentinel):
        events.append(event)
    return events


def apply_event(conn: ULConnection, event: Event, now: float = 0.0) -> None:
    """Make PS3.8 `event` happen to `conn` through the public API (Table 9-2)."""
    if event in PDU_FOR_EVENT:
        conn.receive_data(PDU_FOR_EVENT[event], now)
    elif event is Event.EVT17:
        conn.receive_data(b"", now)
    elif event is Event.EVT18:
        conn.handle_timer(now + ARTIM)
    elif event is Event.EVT1:
        conn.start_connect(REQUEST, now)
    elif event in (Event.EVT2, Event.EVT5):
        conn.connection_made(now)
    elif event is Event.EVT7:
        conn.accept(ACCEPT)
    elif event is Event.EVT8:
        conn.reject(REJECT, now)
    elif event is Event.EVT9:
        conn.send_pdata(PDATA)
    elif event is Event.EVT11:
        conn.request_release()
    elif event is Event.EVT14:
        conn.respond_release(now)
    elif event is Event.EVT15:
        conn.abort(now)
    else:  # pragma: no cover - every Table 9-2 event is listed above
        raise AssertionError(event)


def pump(a: ULConnection, b: ULConnection, now: float = 0.0) -> None:
    """Move bytes both ways until neither side has anything left to send."""
    while True:
        out_a = a.data_to_send()
        out_b = b.data_to_send()
        if not out_a and not out_b:
            return
        if out_a:
            b.receive_data(out_a, now)
        if out_b:
            a.receive_data(out_b, now)
