"""C-ECHO status codes and their meanings (PS3.7 §9.1.5.1.4, Annex C).

Verification defines Success (0000H), Refused: SOP class not supported (0122H), and the
general failures duplicate invocation (0210H), unrecognized operation (0211H) and mistyped
argument (0212H). Other values are classified by their range, as PS3.7 Annex C does.
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
    """A human description: the C-ECHO meaning when defined, else the category."""
    text = ECHO_STATUS_TEXT.get(status)
    if text is not None:
        return text
    return f"{status_category(status)}: unknown status"
