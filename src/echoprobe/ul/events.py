"""Events that `ULConnection.next_event()` hands to its user (PS3.8 indications/confirmations).

Events are past-tense facts. `NEED_DATA` is returned when nothing more can happen until more
bytes arrive (or a timer fires).
"""

from __future__ import annotations

from enum import Enum

from echoprobe._values import value
from echoprobe.errors import RemoteProtocolError
from echoprobe.ul.pdu import PDV, AssociateAC, AssociateRJ, AssociateRQ


class Sentinel(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = Sentinel.NEED_DATA


@value
class AssociationRequested:
    """A-ASSOCIATE indication (acceptor, AE-6): answer with accept or reject."""

    request: AssociateRQ
    raw: bytes = b""  # the whole PDU as received, for dumps


@value
class AssociationAccepted:
    """A-ASSOCIATE confirmation, accept (requestor, AE-3)."""

    accept: AssociateAC
    raw: bytes = b""  # the whole PDU as received, for dumps (DCMTK's -d hex dump)


@value
class AssociationRejected:
    """A-ASSOCIATE confirmation, reject (requestor, AE-4); the transport is to be closed."""

    reject: AssociateRJ


@value
class DataReceived:
    """P-DATA indication (DT-2, AR-6): the PDVs of one P-DATA-TF PDU."""

    pdvs: tuple[PDV, ...]


@value
class ReleaseRequested:
    """A-RELEASE indication (AR-2), or a release collision (AR-8) when `collision` is true."""

    collision: bool = False


@value
class ReleaseConfirmed:
    """A-RELEASE confirmation (AR-3, AR-10)."""


@value
class AbortReceived:
    """A-ABORT or A-P-ABORT indication after an A-ABORT PDU from the peer (AA-3)."""

    source: int
    reason: int


@value
class ProtocolViolation:
    """The peer broke PS3.8; we sent A-ABORT (source 2, `error.abort_reason`) (AA-8, AA-7)."""

    error: RemoteProtocolError


@value
class ConnectionClosed:
    """The transport closed. `expected` is false for an A-P-ABORT indication (AA-4);
    `mid_pdu` tells that a PDU was cut short."""

    expected: bool
    mid_pdu: bool = False


@value
class ARTIMExpired:
    """The ARTIM timer expired (Evt18); the transport is to be closed."""


ULEvent = (
    AssociationRequested
    | AssociationAccepted
    | AssociationRejected
    | DataReceived
    | ReleaseRequested
    | ReleaseConfirmed
    | AbortReceived
    | ProtocolViolation
    | ConnectionClosed
    | ARTIMExpired
)
