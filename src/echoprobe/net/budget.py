"""Time left for a wait: a phase's own timeout bounded by the association's absolute deadline.

Shared by every driver (asyncio, anyio), so that each bounds its waits the same way. Pure
arithmetic on monotonic seconds; None means "no bound".
"""

from __future__ import annotations

from echoprobe.options import Timeouts

DEFAULT_TIMEOUTS = Timeouts()


def remaining(deadline: float | None, now: float) -> float | None:
    """Seconds until `deadline` (never negative), or None without a deadline."""
    return None if deadline is None else max(deadline - now, 0.0)


def least(*values: float | None) -> float | None:
    """The tightest of the bounds given, or None when none is."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


__all__ = ["DEFAULT_TIMEOUTS", "least", "remaining"]
