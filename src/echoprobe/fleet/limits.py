"""How hard a sweep may push: global concurrency, a per-host limit, a rate with jitter.

Rules:
- Each probe holds one file descriptor, so the global concurrency is capped at the open-file
  soft limit minus a reserve (for the event loop, output files, listeners in the same process);
  `raise_nofile_limit()` first lifts the soft limit to the hard one (docs/robustness.md §4.3).
  The effective value is returned, never silently applied.
- The per-host limit is keyed by the peer's address (after resolution), so two names for one
  machine share it. Idle hosts hold no memory.
- The rate limiter spaces starts `1/rate` apart with ± `jitter` (relative), so thousands of
  probes do not start in lock-step; after an idle spell it does not burst.
- Cancellation-safe: a task cancelled while waiting holds nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

logger = logging.getLogger(__name__)

FD_RESERVE = 64  # descriptors kept back for the loop, output files and the process itself


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """What was asked for, what will be used, and why."""

    requested: int
    effective: int
    nofile_soft: int | None  # the open-file soft limit after raising it (None: unknown)
    nofile_hard: int | None
    reserve: int = FD_RESERVE

    @property
    def capped(self) -> bool:
        return self.effective < self.requested

    def describe(self) -> str:
        if self.nofile_soft is None:
            return f"concurrency {self.effective}"
        text = f"concurrency {self.effective} (open-file limit {self.nofile_soft}"
        if self.capped:
            text += f", capped from {self.requested}, {self.reserve} descriptors reserved"
        return text + ")"


def raise_nofile_limit() -> tuple[int | None, int | None]:
    """Lift RLIMIT_NOFILE's soft limit to the hard limit; return (soft, hard) afterwards.

    (None, None) where the platform has no such limit (Windows)."""
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:
        return None, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An "unlimited" hard limit leaves the soft one alone: raising it to infinity fails.
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. a container forbidding it
            logger.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    soft_value = None if soft == resource.RLIM_INFINITY else int(soft)
    hard_value = None if hard == resource.RLIM_INFINITY else int(hard)
    return soft_value, hard_value


def effective_concurrency(
    requested: int, *, raise_limit: bool = True, reserve: int = FD_RESERVE
) -> ConcurrencyLimit:
    """The concurrency a sweep can really use: `requested`, capped at soft limit - reserve."""
    if requested < 1:
        raise ValueError("concurrency must be at least 1")
    if raise_limit:
        soft, hard = raise_nofile_limit()
    else:
        try:
            import resource  # noqa: PLC0415 - POSIX only

            s, h = resource.getrlimit(resource.RLIMIT_NOFILE)
            soft = None if s == resource.RLIM_INFINITY else int(s)
            hard = None if h == resource.RLIM_INFINITY else int(h)
        except ImportError:
            soft = hard = None
    effective = requested
    if soft is not None:
        effective = max(1, min(requested, soft - reserve))
    return ConcurrencyLimit(requested, effective, soft, hard, reserve)


class HostLimiter:
    """At most `limit` probes at once per host key; `None` or 0 means no limit.

    It never makes anyone wait: a caller that finds a host `full()` sets its work aside (the
    sweep parks the target, and the worker that releases the host takes it next), so taking
    and giving back a slot are plain counter updates.
    """

    __slots__ = ("_limit", "_taken")

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("per-host limit must be positive (or 0/None for none)")
        self._limit = limit or None
        self._taken: dict[str, int] = {}

    @property
    def limit(self) -> int | None:
        return self._limit

    def full(self, key: str) -> bool:
        """Whether this host has no slot free now."""
        limit = self._limit
        return limit is not None and self._taken.get(key, 0) >= limit

    def busy(self, key: str) -> int:
        """Slots of this host taken now."""
        return self._taken.get(key, 0)

    def acquire(self, key: str) -> None:
        """Take a slot of a host that is not `full()`."""
        if self.full(key):
            raise RuntimeError(f"host {key} has no free slot")
        if self._limit is not None:
            self._taken[key] = self._taken.get(key, 0) + 1

    def release(self, key: str) -> None:
        if self._limit is None:
            return
        left = self._taken[key] - 1
        if left:
            self._taken[key] = left
        else:
            del self._taken[key]  # forget idle hosts: memory follows the hosts in flight


class RateLimiter:
    """Starts at most `rate` per second on average, each gap `1/rate` x (1 ± jitter)."""

    def __init__(
        self, rate: float, *, jitter: float = 0.1, rng: random.Random | None = None
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be within [0, 1)")
        self.rate = rate
        self.jitter = jitter
        self._interval = 1.0 / rate
        self._rng = rng or random.Random()
        self._next: float | None = None

    async def wait(self) -> None:
        """Wait for this caller's start slot (slots are handed out in call order)."""
        now = asyncio.get_running_loop().time()
        slot = now if self._next is None else max(now, self._next)
        spread = self._rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        self._next = slot + self._interval * (1.0 + spread)
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)


__all__ = [
    "FD_RESERVE",
    "ConcurrencyLimit",
    "HostLimiter",
    "RateLimiter",
    "effective_concurrency",
    "raise_nofile_limit",
]
