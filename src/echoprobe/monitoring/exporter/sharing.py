"""Being gentle with modalities: one association for identical probes, results reused for
`min_interval`, and bounds on associations at once, in total and per host.

Rules:
- Identical probes (same configuration generation, module and target) in flight share one
  association: the first request starts it as a task of its own, later ones wait for that
  task. A waiter gives up at its own deadline without cancelling the task, so a scrape that
  times out never aborts an association another scrape is waiting for.
- With `min_interval`, a finished result younger than it is served again (bounded cache, oldest
  dropped first). A reload starts a new generation: nothing of the old one is shared.
- `Limits.max_concurrent_probes` bounds associations at once; `Limits.per_host` bounds them per
  host (the target's host as written). A probe waits for both within its budget; the time spent
  waiting is taken from it. The probe task never raises: a failure of ours becomes an
  `internal_error` record, logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final

from echoprobe._values import replace
from echoprobe.monitoring.exporter.config import Limits
from echoprobe.results import Outcome, ProbeResult

log = logging.getLogger(__name__)

CACHE_SIZE: Final = 10_000  # results kept for min_interval (one per target and module)
MIN_PROBE_TIME: Final = 0.005  # seconds: with less left after waiting, no association starts

Run = Callable[[float], Awaitable[ProbeResult]]
"""Runs the probe with this many seconds of budget left."""

Expired = Callable[[str], ProbeResult]
"""The record to answer when the budget ran out (given why)."""


@dataclass(frozen=True, slots=True)
class Shared:
    result: ProbeResult
    how: str | None  # None: this request's own probe; "inflight" or "cached": someone else's


class _HostSlot:
    __slots__ = ("semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.users = 0


class ProbeSharer:
    def __init__(self, limits: Limits, *, cache_size: int = CACHE_SIZE) -> None:
        self._limits = limits
        self._global = asyncio.Semaphore(limits.max_concurrent_probes)
        self._hosts: dict[str, _HostSlot] = {}
        self._inflight: dict[Hashable, asyncio.Task[ProbeResult]] = {}
        self._cache: OrderedDict[Hashable, tuple[float, ProbeResult]] = OrderedDict()
        self._cache_size = cache_size

    def reconfigure(self, limits: Limits) -> None:
        """New limits for probes that start from now on; the cache of the old config is gone."""
        self._cache.clear()
        if limits != self._limits:
            # Probes under way keep the semaphores they hold; new ones use new semaphores.
            self._limits = limits
            self._global = asyncio.Semaphore(limits.max_concurrent_probes)
            self._hosts = {}

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def get(
        self,
        key: Hashable,
        host: str,
        *,
        min_interval: float,
        deadline: float,
        run: Run,
        expired: Expired,
    ) -> Shared:
        """The result for `key`: cached, shared with a probe in flight, or from a new probe.

        `deadline` is on the loop's clock; the answer never comes later than it."""
        loop = asyncio.get_running_loop()
        if min_interval > 0:
            hit = self._cache.get(key)
            if hit is not None:
                if loop.time() - hit[0] < min_interval:
                    return Shared(hit[1], "cached")
                del self._cache[key]
        task = self._inflight.get(key)
        how: str | None = "inflight"
        if task is None:
            how = None
            task = loop.create_task(
                self._probe(
                    key,
                    host,
                    min_interval=min_interval,
                    deadline=deadline,
                    run=run,
                    expired=expired,
                )
            )
            self._inflight[key] = task
        remaining = deadline - loop.time()
        if remaining > 0 and not task.done():
            await asyncio.wait((task,), timeout=remaining)
        if not task.done():
            return Shared(expired("the probe did not finish within the scrape's budget"), how)
        if task.cancelled():  # the exporter is stopping
            return Shared(expired("the probe was cancelled: the exporter is stopping"), how)
        return Shared(task.result(), how)

    async def _probe(
        self,
        key: Hashable,
        host: str,
        *,
        min_interval: float,
        deadline: float,
        run: Run,
        expired: Expired,
    ) -> ProbeResult:
        loop = asyncio.get_running_loop()
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = _HostSlot(self._limits.per_host)
        slot.users += 1
        global_slot = self._global
        try:
            result = await self._limited(slot, global_slot, deadline, run, expired)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours must not leave waiters hanging
            log.exception("probe of %s failed inside the exporter", host)
            why = f"internal error: {type(exc).__name__}: {exc}"
            result = replace(expired(why), outcome=Outcome.INTERNAL_ERROR)
        finally:
            slot.users -= 1
            if slot.users == 0 and self._hosts.get(host) is slot:
                del self._hosts[host]
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        if min_interval > 0:
            self._cache[key] = (loop.time(), result)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    async def _limited(
        self,
        slot: _HostSlot,
        global_slot: asyncio.Semaphore,
        deadline: float,
        run: Run,
        expired: Expired,
    ) -> ProbeResult:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                await global_slot.acquire()
        except TimeoutError:
            return expired("no probe slot free within the budget (limits.max_concurrent_probes)")
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await slot.semaphore.acquire()
            except TimeoutError:
                return expired("the host was busy with other probes (limits.per_host)")
            remaining = deadline - loop.time()
            if remaining < MIN_PROBE_TIME:
                return expired("no time left for an association after waiting for a slot")
            try:
                return await run(remaining)
            finally:
                slot.semaphore.release()
        finally:
            global_slot.release()

    async def close(self) -> None:
        """Cancel the probes in flight (each aborts its association) and wait for them."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        self._inflight.clear()
        self._cache.clear()
