"""The DICOM Upper Layer state machine, PS3.8 §9.2, as data.

Rules:
- `TRANSITIONS` is PS3.8 Table 9-10 transcribed row by row: (state, event) → action. A pair
  that is not in the table is not allowed to happen; `ULConnection` treats it as a local error.
- `NEXT_STATE` is the state each action leads to (PS3.8 Tables 9-6 to 9-9). Two actions choose
  between two states (AE-6: acceptable request or not; AR-8: requestor or acceptor side of a
  release collision); for those the entry is None and `ULConnection` passes the choice.
- No transition is written anywhere else: the connection looks up the action here and performs it.
"""

from __future__ import annotations

from enum import Enum

# `Final` is for type checkers only; importing typing costs echoscu start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final


class State(Enum):
    """PS3.8 Table 9-1: the thirteen states."""

    # Identity hashing: Enum's own __hash__ runs Python code on every table lookup.
    __hash__ = object.__hash__

    STA1 = "Sta1"  # Idle
    STA2 = "Sta2"  # Transport connection open (awaiting A-ASSOCIATE-RQ PDU)
    STA3 = "Sta3"  # Awaiting local A-ASSOCIATE response primitive
    STA4 = "Sta4"  # Awaiting transport connection opening to complete
    STA5 = "Sta5"  # Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU
    STA6 = "Sta6"  # Association established and ready for data transfer
    STA7 = "Sta7"  # Awaiting A-RELEASE-RP PDU
    STA8 = "Sta8"  # Awaiting local A-RELEASE response primitive
    STA9 = "Sta9"  # Release collision requestor side; awaiting A-RELEASE response
    STA10 = "Sta10"  # Release collision acceptor side; awaiting A-RELEASE-RP PDU
    STA11 = "Sta11"  # Release collision requestor side; awaiting A-RELEASE-RP PDU
    STA12 = "Sta12"  # Release collision acceptor side; awaiting A-RELEASE response primitive
    STA13 = "Sta13"  # Awaiting Transport Connection Close Indication


class Event(Enum):
    """PS3.8 Table 9-2: the nineteen events."""

    # Identity hashing: Enum's own __hash__ runs Python code on every table lookup.
    __hash__ = object.__hash__

    EVT1 = "Evt1"  # A-ASSOCIATE request (local user)
    EVT2 = "Evt2"  # Transport connect confirmation (local transport service)
    EVT3 = "Evt3"  # A-ASSOCIATE-AC PDU received
    EVT4 = "Evt4"  # A-ASSOCIATE-RJ PDU received
    EVT5 = "Evt5"  # Transport connection indication
    EVT6 = "Evt6"  # A-ASSOCIATE-RQ PDU received
    EVT7 = "Evt7"  # A-ASSOCIATE response primitive (accept)
    EVT8 = "Evt8"  # A-ASSOCIATE response primitive (reject)
    EVT9 = "Evt9"  # P-DATA request primitive
    EVT10 = "Evt10"  # P-DATA-TF PDU received
    EVT11 = "Evt11"  # A-RELEASE request primitive
    EVT12 = "Evt12"  # A-RELEASE-RQ PDU received
    EVT13 = "Evt13"  # A-RELEASE-RP PDU received
    EVT14 = "Evt14"  # A-RELEASE response primitive
    EVT15 = "Evt15"  # A-ABORT request primitive
    EVT16 = "Evt16"  # A-ABORT PDU received
    EVT17 = "Evt17"  # Transport connection closed indication
    EVT18 = "Evt18"  # ARTIM timer expired
    EVT19 = "Evt19"  # Unrecognized or invalid PDU received


class Action(Enum):
    """PS3.8 Tables 9-6 (AE), 9-7 (DT), 9-8 (AR) and 9-9 (AA)."""

    # Identity hashing: Enum's own __hash__ runs Python code on every table lookup.
    __hash__ = object.__hash__

    AE_1 = "AE-1"  # Issue TRANSPORT CONNECT request primitive to local transport service
    AE_2 = "AE-2"  # Send A-ASSOCIATE-RQ PDU
    AE_3 = "AE-3"  # Issue A-ASSOCIATE confirmation (accept) primitive
    AE_4 = "AE-4"  # Issue A-ASSOCIATE confirmation (reject) primitive and close transport
    AE_5 = "AE-5"  # Issue Transport connection response primitive; start ARTIM timer
    AE_6 = "AE-6"  # Stop ARTIM; issue A-ASSOCIATE indication, or send RJ and start ARTIM
    AE_7 = "AE-7"  # Send A-ASSOCIATE-AC PDU
    AE_8 = "AE-8"  # Send A-ASSOCIATE-RJ PDU and start ARTIM timer
    DT_1 = "DT-1"  # Send P-DATA-TF PDU
    DT_2 = "DT-2"  # Send P-DATA indication primitive
    AR_1 = "AR-1"  # Send A-RELEASE-RQ PDU
    AR_2 = "AR-2"  # Issue A-RELEASE indication primitive
    AR_3 = "AR-3"  # Issue A-RELEASE confirmation primitive, and close transport connection
    AR_4 = "AR-4"  # Issue A-RELEASE-RP PDU and start ARTIM timer
    AR_5 = "AR-5"  # Stop ARTIM timer
    AR_6 = "AR-6"  # Issue P-DATA indication
    AR_7 = "AR-7"  # Issue P-DATA-TF PDU
    AR_8 = "AR-8"  # Issue A-RELEASE indication (release collision)
    AR_9 = "AR-9"  # Send A-RELEASE-RP PDU
    AR_10 = "AR-10"  # Issue A-RELEASE confirmation primitive
    AA_1 = "AA-1"  # Send A-ABORT PDU (service-user source) and start (or restart) ARTIM
    AA_2 = "AA-2"  # Stop ARTIM if running; close transport connection
    AA_3 = "AA-3"  # Issue A-ABORT or A-P-ABORT indication and close transport connection
    AA_4 = "AA-4"  # Issue A-P-ABORT indication primitive
    AA_5 = "AA-5"  # Stop ARTIM timer
    AA_6 = "AA-6"  # Ignore PDU
    AA_7 = "AA-7"  # Send A-ABORT PDU
    AA_8 = "AA-8"  # Send A-ABORT PDU (service-provider source), issue A-P-ABORT, start ARTIM


S = State
A = Action

NEXT_STATE: Final[dict[Action, State | None]] = {
    A.AE_1: S.STA4, A.AE_2: S.STA5, A.AE_3: S.STA6, A.AE_4: S.STA1, A.AE_5: S.STA2,
    A.AE_6: None,  # Sta3 if the request is acceptable, otherwise Sta13
    A.AE_7: S.STA6, A.AE_8: S.STA13,
    A.DT_1: S.STA6, A.DT_2: S.STA6,
    A.AR_1: S.STA7, A.AR_2: S.STA8, A.AR_3: S.STA1, A.AR_4: S.STA13, A.AR_5: S.STA1,
    A.AR_6: S.STA7, A.AR_7: S.STA8,
    A.AR_8: None,  # Sta9 on the association-requestor side, Sta10 on the acceptor side
    A.AR_9: S.STA11, A.AR_10: S.STA12,
    A.AA_1: S.STA13, A.AA_2: S.STA1, A.AA_3: S.STA1, A.AA_4: S.STA1, A.AA_5: S.STA1,
    A.AA_6: S.STA13, A.AA_7: S.STA13, A.AA_8: S.STA13,
}  # fmt: skip

_ALL_BUT = (S.STA6, S.STA7, S.STA8, S.STA9, S.STA10, S.STA11, S.STA12)  # "associated" states


def _row(event: Event, **cells: Action) -> dict[tuple[State, Event], Action]:
    return {(State(f"Sta{name[3:]}"), event): action for name, action in cells.items()}


def _same(
    event: Event, states: tuple[State, ...], action: Action
) -> dict[tuple[State, Event], Action]:
    return {(state, event): action for state in states}


E = Event
# PS3.8 Table 9-10, one row per event. Cells not listed are empty in the standard.
TRANSITIONS: Final[dict[tuple[State, Event], Action]] = {
    **_row(E.EVT1, Sta1=A.AE_1),
    **_row(E.EVT2, Sta4=A.AE_2),
    **_row(E.EVT3, Sta2=A.AA_1, Sta3=A.AA_8, Sta5=A.AE_3, Sta13=A.AA_6),
    **_same(E.EVT3, _ALL_BUT, A.AA_8),
    **_row(E.EVT4, Sta2=A.AA_1, Sta3=A.AA_8, Sta5=A.AE_4, Sta13=A.AA_6),
    **_same(E.EVT4, _ALL_BUT, A.AA_8),
    **_row(E.EVT5, Sta1=A.AE_5),
    **_row(E.EVT6, Sta2=A.AE_6, Sta3=A.AA_8, Sta5=A.AA_8, Sta13=A.AA_7),
    **_same(E.EVT6, _ALL_BUT, A.AA_8),
    **_row(E.EVT7, Sta3=A.AE_7),
    **_row(E.EVT8, Sta3=A.AE_8),
    **_row(E.EVT9, Sta6=A.DT_1, Sta8=A.AR_7),
    **_same(E.EVT10, _ALL_BUT, A.AA_8),
    **_row(E.EVT10, Sta2=A.AA_1, Sta3=A.AA_8, Sta5=A.AA_8, Sta6=A.DT_2, Sta7=A.AR_6, Sta13=A.AA_6),
    **_row(E.EVT11, Sta6=A.AR_1),
    **_same(E.EVT12, _ALL_BUT, A.AA_8),
    **_row(E.EVT12, Sta2=A.AA_1, Sta3=A.AA_8, Sta5=A.AA_8, Sta6=A.AR_2, Sta7=A.AR_8, Sta13=A.AA_6),
    **_same(E.EVT13, _ALL_BUT, A.AA_8),
    **_row(
        E.EVT13,
        Sta2=A.AA_1,
        Sta3=A.AA_8,
        Sta5=A.AA_8,
        Sta7=A.AR_3,
        Sta10=A.AR_10,
        Sta11=A.AR_3,
        Sta13=A.AA_6,
    ),
    **_row(E.EVT14, Sta8=A.AR_4, Sta9=A.AR_9, Sta12=A.AR_4),
    **_row(E.EVT15, Sta3=A.AA_1, Sta4=A.AA_2, Sta5=A.AA_1),
    **_same(E.EVT15, _ALL_BUT, A.AA_1),
    **_row(E.EVT16, Sta2=A.AA_2, Sta3=A.AA_3, Sta5=A.AA_3, Sta13=A.AA_2),
    **_same(E.EVT16, _ALL_BUT, A.AA_3),
    **_row(E.EVT17, Sta2=A.AA_5, Sta3=A.AA_4, Sta4=A.AA_4, Sta5=A.AA_4, Sta13=A.AR_5),
    **_same(E.EVT17, _ALL_BUT, A.AA_4),
    **_row(E.EVT18, Sta2=A.AA_2, Sta13=A.AA_2),
    **_row(E.EVT19, Sta2=A.AA_1, Sta3=A.AA_8, Sta5=A.AA_8, Sta13=A.AA_7),
    **_same(E.EVT19, _ALL_BUT, A.AA_8),
}

# The order above matters only where a row overrides the "associated states" default.
del S, A, E
