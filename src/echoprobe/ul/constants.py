"""PS3.8 constants: PDU and item types, reject/abort codes and their DCMTK-style names.

Pure data. Values are as the standard spells them (PS3.8 §9.3, Tables 9-21 and 9-26).

The coded fields are classes of plain `int` constants, not `IntEnum`s: the codec compares wire
bytes with them, a peer may send any value (reserved ones included), and `enum` with what it
imports costs `echoscu` about 3 ms of its start-up, more than its whole margin over DCMTK's.
The `*_TEXT` tables name the values.
"""

from __future__ import annotations

# `Final` is for type checkers only; importing typing costs echoscu start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

APPLICATION_CONTEXT_NAME: Final = "1.2.840.10008.3.1.1.1"  # PS3.7 Annex A.2.1
VERIFICATION_SOP_CLASS: Final = "1.2.840.10008.1.1"
IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN: Final = "1.2.840.10008.1.2.2"

# echoprobe's own implementation identity: a UUID-derived UID under the 2.25 root (PS3.5 B.2).
IMPLEMENTATION_CLASS_UID: Final = "2.25.308973838326323306269881352858131232881"
IMPLEMENTATION_VERSION_NAME: Final = "ECHOPROBE_010"

DEFAULT_MAX_PDU: Final = 16384  # DCMTK's default Maximum Length
AE_TITLE_LENGTH: Final = 16


class PDUType:
    """PS3.8 §9.3.1: the first byte of every PDU."""

    A_ASSOCIATE_RQ: Final = 0x01
    A_ASSOCIATE_AC: Final = 0x02
    A_ASSOCIATE_RJ: Final = 0x03
    P_DATA_TF: Final = 0x04
    A_RELEASE_RQ: Final = 0x05
    A_RELEASE_RP: Final = 0x06
    A_ABORT: Final = 0x07


class ItemType:
    """PS3.8 §9.3.2-9.3.3 and Annex D: variable items and user-information sub-items."""

    APPLICATION_CONTEXT: Final = 0x10
    PRESENTATION_CONTEXT_RQ: Final = 0x20
    PRESENTATION_CONTEXT_AC: Final = 0x21
    ABSTRACT_SYNTAX: Final = 0x30
    TRANSFER_SYNTAX: Final = 0x40
    USER_INFORMATION: Final = 0x50
    MAXIMUM_LENGTH: Final = 0x51
    IMPLEMENTATION_CLASS_UID: Final = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW: Final = 0x53
    SCP_SCU_ROLE_SELECTION: Final = 0x54
    IMPLEMENTATION_VERSION_NAME: Final = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION: Final = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION: Final = 0x57
    USER_IDENTITY_RQ: Final = 0x58
    USER_IDENTITY_AC: Final = 0x59


class ContextResult:
    """PS3.8 Table 9-18: Result/Reason of a presentation context in an A-ASSOCIATE-AC."""

    ACCEPTANCE: Final = 0
    USER_REJECTION: Final = 1
    NO_REASON: Final = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED: Final = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED: Final = 4


class RejectResult:
    """PS3.8 Table 9-21."""

    REJECTED_PERMANENT: Final = 1
    REJECTED_TRANSIENT: Final = 2


class RejectSource:
    SERVICE_USER: Final = 1
    SERVICE_PROVIDER_ACSE: Final = 2
    SERVICE_PROVIDER_PRESENTATION: Final = 3


class AbortSource:
    """PS3.8 Table 9-26 (value 1 is reserved)."""

    SERVICE_USER: Final = 0
    RESERVED: Final = 1
    SERVICE_PROVIDER: Final = 2


class AbortReason:
    """PS3.8 Table 9-26, meaningful when the source is the service provider."""

    NOT_SPECIFIED: Final = 0
    UNRECOGNIZED_PDU: Final = 1
    UNEXPECTED_PDU: Final = 2
    RESERVED: Final = 3
    UNRECOGNIZED_PDU_PARAMETER: Final = 4
    UNEXPECTED_PDU_PARAMETER: Final = 5
    INVALID_PDU_PARAMETER_VALUE: Final = 6


REJECT_RESULT_TEXT: Final = {1: "Rejected Permanent", 2: "Rejected Transient"}
REJECT_SOURCE_TEXT: Final = {
    1: "Service User",
    2: "Service Provider (ACSE Related)",
    3: "Service Provider (Presentation Related)",
}
# (source, reason) → text, exactly the pairs PS3.8 Table 9-21 defines.
REJECT_REASON_TEXT: Final = {
    (1, 1): "No Reason",
    (1, 2): "App Context Name Not Supported",
    (1, 3): "Calling AE Title Not Recognized",
    (1, 7): "Called AE Title Not Recognized",
    (2, 1): "No Reason",
    (2, 2): "Protocol Version Not Supported",
    (3, 1): "Temporary Congestion",
    (3, 2): "Local Limit Exceeded",
}
ABORT_SOURCE_TEXT: Final = {0: "Service User", 1: "Reserved", 2: "Service Provider"}
ABORT_REASON_TEXT: Final = {
    0: "reason not specified",
    1: "unrecognized PDU",
    2: "unexpected PDU",
    3: "reserved",
    4: "unrecognized PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}
CONTEXT_RESULT_TEXT: Final = {
    0: "Accepted",
    1: "User Rejection",
    2: "No Reason",
    3: "Abstract Syntax Not Supported",
    4: "Transfer Syntaxes Not Supported",
}


def reject_is_valid(result: int, source: int, reason: int) -> bool:
    """True when the three bytes form a combination PS3.8 Table 9-21 defines."""
    return result in REJECT_RESULT_TEXT and (source, reason) in REJECT_REASON_TEXT


def describe_reject(result: int, source: int, reason: int) -> str:
    res = REJECT_RESULT_TEXT.get(result, f"result 0x{result:02x}")
    src = REJECT_SOURCE_TEXT.get(source, f"source 0x{source:02x}")
    why = REJECT_REASON_TEXT.get((source, reason), f"reason 0x{reason:02x}")
    return f"{res}, {src}, {why}"


def describe_abort(source: int, reason: int) -> str:
    src = ABORT_SOURCE_TEXT.get(source, f"source 0x{source:02x}")
    why = ABORT_REASON_TEXT.get(reason, f"reason 0x{reason:02x}")
    return f"{src}, {why}"
