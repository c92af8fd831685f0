"""What the association procedure and its drivers exchange: `Wait`, `TimedOut`, the
`AssociationOutcome` a completed association returns, and the `Resume` point of a hand-over.

Split from `net.association` so that a driver's usual path (`blocking.drive_usual`, echoscu's
start-up) can return an outcome without importing the state machine it only needs when the
conversation is not the usual one. `net.association` re-exports all three.
"""

from __future__ import annotations

from echoprobe._values import record

TYPE_CHECKING = False  # not typing's: echoscu's start-up must not pay for importing typing
if TYPE_CHECKING:
    from typing import ClassVar

    from echoprobe.errors import ProbeError
    from echoprobe.reply import EchoReply
    from echoprobe.ul.negotiation import Negotiated


class TimedOut:
    """What a driver answers instead of bytes when a wait ran out: one of its two instances,
    compared with `is` (a two-member class, not an `Enum`: `enum` costs echoscu's start-up).
    """

    __slots__ = ("value",)
    DEADLINE: ClassVar[TimedOut]  # the wait's deadline (phase or absolute) passed
    SOCKET: ClassVar[TimedOut]  # the per-read socket timeout passed first

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"TimedOut.{self.value.upper()}"


TimedOut.DEADLINE = TimedOut("deadline")
TimedOut.SOCKET = TimedOut("socket")


@record  # not frozen: one is made per wait, and a frozen __init__ costs more
class Wait:
    """Write `send`, then wait for bytes until `deadline` (monotonic seconds, None = forever)
    or for `socket_timeout` seconds without any byte, whichever comes first."""

    send: bytes
    deadline: float | None
    socket_timeout: float | None


@record
class AssociationOutcome:
    """What `run_association` returns when the echoes completed (failures raise)."""

    negotiated: Negotiated
    replies: list[EchoReply]
    timings: dict[str, float]
    release: str = "released"
    release_error: ProbeError | None = None
    collision: bool = False  # the peer's A-RELEASE-RQ crossed ours (PS3.8 §7.2, Sta9/Sta11)


@record
class Resume:
    """Where a driver's usual path hands the association over to `run_association` after
    `echoes` C-ECHOs already answered (`replies`: theirs, when kept): the procedure starts at
    the next one, whose C-ECHO-RQ went out at `at` (when the last answer arrived), and needs no
    replay of the answers before it."""

    echoes: int
    replies: list[EchoReply]
    at: float
