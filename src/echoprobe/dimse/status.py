"""C-ECHO status codes and their meanings (PS3.7 §9.1.5.1.4, Annex C).

Verification defines Success (0000H), Refused: SOP class not supported (0122H), and the
general failures duplicate invocation (0210H), unrecognized operation (0211H) and mistyped
argument (0212H). Every other status PS3.7 Annex C names (C.1-C.5) is named as the standard
names it, so a peer answering 0110H reads "Failure: Processing failure", not "unknown"; values
the standard leaves undefined are classified by their range, as Annex C does.
"""

from __future__ import annotations

# `Final` is for type checkers only; importing typing costs echoscu start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final


SUCCESS: Final = 0x0000

ECHO_STATUS_TEXT: Final = {
    0x0000: "Success",
    0x0122: "Refused: SOP Class Not Supported",
    0x0210: "Failed: Duplicate Invocation",
    0x0211: "Failed: Unrecognized Operation",
    0x0212: "Failed: Mistyped Argument",
}

# PS3.7 Annex C, the statuses every DIMSE service may return (C.3 Cancel, C.4 Warning, C.5 Failure),
# with the standard's own names. Service-specific codes (Axxx, Bxxx, Cxxx) are not listed: they
# mean something only for the service that defines them.
GENERAL_STATUS_TEXT: Final = {
    0xFE00: "Cancel",
    0xFF00: "Pending",
    0xFF01: "Pending",
    0x0107: "Warning: Attribute list error",
    0x0116: "Warning: Attribute Value Out of Range",
    0x0105: "Failure: No such attribute",
    0x0106: "Failure: Invalid attribute value",
    0x0110: "Failure: Processing failure",
    0x0111: "Failure: Duplicate SOP Instance",
    0x0112: "Failure: No such SOP Instance",
    0x0113: "Failure: No such event type",
    0x0114: "Failure: No such argument",
    0x0115: "Failure: Invalid argument value",
    0x0117: "Failure: Invalid object instance",
    0x0118: "Failure: No such SOP Class",
    0x0119: "Failure: Class-instance conflict",
    0x0120: "Failure: Missing attribute",
    0x0121: "Failure: Missing attribute value",
    0x0123: "Failure: No such action",
    0x0124: "Refused: Not authorized",
    0x0213: "Failure: Resource limitation",
}


def status_category(status: int) -> str:
    """PS3.7 Annex C category: Success, Warning, Failure, Cancel or Pending."""
    if status == 0x0000:
        return "Success"
    if status == 0xFE00:
        return "Cancel"
    if status in (0xFF00, 0xFF01):
        return "Pending"
    if status == 0x0001 or (status & 0xF000) == 0xB000 or status in {0x0107, 0x0116}:
        return "Warning"
    return "Failure"


def status_text(status: int) -> str:
    """A human description: the C-ECHO meaning, else the PS3.7 Annex C name, else the
    category of a value the standard leaves undefined ("Failure: unknown status")."""
    text = ECHO_STATUS_TEXT.get(status)
    if text is None:
        text = GENERAL_STATUS_TEXT.get(status)
    if text is not None:
        return text
    return f"{status_category(status)}: unknown status"
