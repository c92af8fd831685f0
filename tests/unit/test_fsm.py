"""PS3.8 Table 9-10 as data, and `ULConnection` performing every cell of it.

The table is checked against pynetdicom's transcription (an independent one), then every
(state, event) cell is exercised on a connection brought into that state through the public
API, for each role that can reach the state.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from pynetdicom.fsm import ACTIONS as PYNETDICOM_ACTIONS
from pynetdicom.fsm import TRANSITION_TABLE as PYNETDICOM_TABLE
from tests.support.ul_drive import (
    ARTIM,
    LOCAL_EVENTS,
    PDU_FOR_EVENT,
    REACHABLE,
    RQ_BAD_VERSION_BYTES,
    apply_event,
    drain,
    drive,
    state_of,
)

from echoprobe.errors import LocalProtocolError
from echoprobe.ul.codec import decode_pdu_bytes
from echoprobe.ul.connection import Role
from echoprobe.ul.events import ARTIMExpired, ConnectionClosed, ProtocolViolation
from echoprobe.ul.fsm import NEXT_STATE, TRANSITIONS, Action, Event, State
from echoprobe.ul.pdu import Abort, AssociateRJ

# -- the table itself ---------------------------------------------------------------------


def test_transitions_equal_pynetdicom_table() -> None:
    ours = {
        (event.value, state.value): action.value for (state, event), action in TRANSITIONS.items()
    }
    assert ours == PYNETDICOM_TABLE


def test_next_states_equal_pynetdicom_actions() -> None:
    for action, state in NEXT_STATE.items():
        theirs = PYNETDICOM_ACTIONS[action.value][2]
        if state is None:
            # The two actions whose next state depends on the situation (AE-6, AR-8).
            assert action in (Action.AE_6, Action.AR_8)
            assert isinstance(theirs, tuple)
        else:
            assert theirs == state.value
    assert {a.value for a in NEXT_STATE} == set(PYNETDICOM_ACTIONS)
    assert set(NEXT_STATE) == set(Action)


def test_table_has_thirteen_states_and_nineteen_events() -> None:
    assert [s.value for s in State] == [f"Sta{i}" for i in range(1, 14)]
    assert [e.value for e in Event] == [f"Evt{i}" for i in range(1, 20)]
    assert {state for state, _ in TRANSITIONS} == set(State)
    assert {event for _, event in TRANSITIONS} == set(Event)


# -- every cell, performed ------------------------------------------------------------------


class Cell(NamedTuple):
    role: Role
    state: State
    event: Event
    action: Action


def _role_can_cause(role: Role, event: Event) -> bool:
    # Evt1/Evt2 are requestor primitives; Evt5 is connection_made() on the acceptor side.
    if event in (Event.EVT1, Event.EVT2):
        return role is Role.REQUESTOR
    if event is Event.EVT5:
        return role is Role.ACCEPTOR
    return True


CELLS = [
    Cell(role, state, event, action)
    for (state, event), action in TRANSITIONS.items()
    for role in Role
    if state in REACHABLE[role] and _role_can_cause(role, event)
]


def test_every_table_cell_is_exercised() -> None:
    assert {(c.state, c.event) for c in CELLS} == set(TRANSITIONS)


def _expected_state(cell: Cell) -> State:
    if cell.action is Action.AE_6:
        return State.STA3  # the driven request is acceptable; the other branch is tested below
    if cell.action is Action.AR_8:
        return State.STA9 if cell.role is Role.REQUESTOR else State.STA10
    state = NEXT_STATE[cell.action]
    assert state is not None
    return state


# What each action puts on the wire (first byte of the PDU), per PS3.8 Tables 9-6 to 9-9.
SENDS: dict[Action, int | None] = {
    Action.AE_1: None, Action.AE_2: 0x01, Action.AE_3: None, Action.AE_4: None,
    Action.AE_5: None, Action.AE_6: None, Action.AE_7: 0x02, Action.AE_8: 0x03,
    Action.DT_1: 0x04, Action.DT_2: None,
    Action.AR_1: 0x05, Action.AR_2: None, Action.AR_3: None, Action.AR_4: 0x06,
    Action.AR_5: None, Action.AR_6: None, Action.AR_7: 0x04, Action.AR_8: None,
    Action.AR_9: 0x06, Action.AR_10: None,
    Action.AA_1: 0x07, Action.AA_2: None, Action.AA_3: None, Action.AA_4: None,
    Action.AA_5: None, Action.AA_6: None, Action.AA_7: 0x07, Action.AA_8: 0x07,
}  # fmt: skip
# Actions after which the driver must close the transport.
CLOSES = frozenset((Action.AE_4, Action.AR_3, Action.AA_2, Action.AA_3, Action.AA_4))


@pytest.mark.parametrize(
    "cell", CELLS, ids=lambda c: f"{c.role.value}-{c.state.value}-{c.event.value}-{c.action.value}"
)
def test_cell(cell: Cell) -> None:
    conn = drive(cell.role, cell.state)
    apply_event(conn, cell.event)
    assert state_of(conn) is _expected_state(cell)

    out = conn.data_to_send()
    sent = SENDS[cell.action]
    if sent is None:
        assert out == b""
    else:
        pdu = decode_pdu_bytes(out)
        assert out[0] == sent
        if cell.action is Action.AA_1:
            assert pdu == Abort(0, 0)  # service-user source
        elif sent == 0x07:
            assert isinstance(pdu, Abort)
            assert pdu.source == 2  # service-provider source (AA-7, AA-8)
            assert pdu.reason == (1 if cell.event is Event.EVT19 else 2)
    if cell.action in CLOSES:
        assert conn.close_requested
    events = drain(conn)
    if cell.action is Action.AA_8:
        assert any(isinstance(e, ProtocolViolation) for e in events)
    if cell.event is Event.EVT18:
        assert events == [ARTIMExpired()]


def test_ae6_refuses_an_unsupported_protocol_version() -> None:
    conn = drive(Role.ACCEPTOR, State.STA2)
    conn.receive_data(RQ_BAD_VERSION_BYTES, 1.0)
    assert state_of(conn) is State.STA13
    assert decode_pdu_bytes(conn.data_to_send()) == AssociateRJ(1, 2, 2)
    assert drain(conn) == []
    assert conn.get_timer() == 1.0 + ARTIM  # AE-6: RJ sent, ARTIM started


def _number(event: Event) -> int:
    return int(event.value[3:])


# -- what the table forbids -------------------------------------------------------------------


def _local_event_of(role: Role, event: Event) -> bool:
    # connection_made() is Evt2 or Evt5 depending on the role: only test the one it means.
    return event not in (Event.EVT2, Event.EVT5) or _role_can_cause(role, event)


FORBIDDEN_LOCAL = [
    (role, state, event)
    for role in Role
    for state in REACHABLE[role]
    for event in sorted(LOCAL_EVENTS - {Event.EVT15}, key=_number)
    if _local_event_of(role, event)
    and ((state, event) not in TRANSITIONS or not _role_can_cause(role, event))
]


@pytest.mark.parametrize(
    ("role", "state", "event"),
    FORBIDDEN_LOCAL,
    ids=[f"{r.value}-{s.value}-{e.value}" for r, s, e in FORBIDDEN_LOCAL],
)
def test_disallowed_local_primitive_raises(role: Role, state: State, event: Event) -> None:
    conn = drive(role, state)
    with pytest.raises(LocalProtocolError):
        apply_event(conn, event)
    assert state_of(conn) is state
    assert conn.data_to_send() == b""
    assert drain(conn) == []


@pytest.mark.parametrize("state", [State.STA1, State.STA2, State.STA13])
def test_abort_is_harmless_where_the_table_has_no_evt15(state: State) -> None:
    # Documented choice: abort() may be called on any path out (e.g. cancellation); where
    # Evt15 has no cell it asks the driver to close instead of raising.
    role = Role.ACCEPTOR
    conn = drive(role, state)
    conn.abort(1.0)
    assert state_of(conn) is state
    assert conn.data_to_send() == b""
    assert conn.close_requested is (state is not State.STA1)


ARRIVALS = sorted(PDU_FOR_EVENT, key=_number)


@pytest.mark.parametrize("event", ARRIVALS)
def test_input_in_sta1_is_ignored(event: Event) -> None:
    conn = drive(Role.REQUESTOR, State.STA1)
    apply_event(conn, event)
    apply_event(conn, Event.EVT17)
    assert state_of(conn) is State.STA1
    assert conn.data_to_send() == b""
    assert drain(conn) == []


# -- the ARTIM timer ---------------------------------------------------------------------------

REACHED = [(role, state) for role in Role for state in REACHABLE[role]]


@pytest.mark.parametrize(
    ("role", "state"), REACHED, ids=[f"{r.value}-{s.value}" for r, s in REACHED]
)
def test_artim_runs_only_in_sta2_and_sta13(role: Role, state: State) -> None:
    # Evt18 has cells in Sta2 and Sta13 only, so the timer must not run anywhere else.
    conn = drive(role, state)
    assert (conn.get_timer() is not None) is (state in (State.STA2, State.STA13))


def test_artim_does_not_fire_early() -> None:
    conn = drive(Role.ACCEPTOR, State.STA2)
    assert conn.get_timer() == ARTIM
    conn.handle_timer(ARTIM - 0.001)
    assert state_of(conn) is State.STA2
    conn.handle_timer(ARTIM)
    assert state_of(conn) is State.STA1
    assert drain(conn) == [ARTIMExpired()]
    assert conn.close_requested
    assert conn.get_timer() is None


def test_evt17_in_sta2_is_an_expected_close() -> None:
    conn = drive(Role.ACCEPTOR, State.STA2)
    conn.receive_data(b"", 1.0)
    assert state_of(conn) is State.STA1
    assert drain(conn) == [ConnectionClosed(expected=True)]
    assert conn.get_timer() is None
