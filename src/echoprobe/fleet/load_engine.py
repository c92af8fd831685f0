"""The load engine: one process's closed or open loop, its counters, ticks and histograms.

Rules (the whole contract is in load.py's head; these are the engine's own):
- One engine per run and per process; single-threaded (its event loop's thread): no locks.
- Closed loop: a pool of worker tasks, resized by the ramp every `_CONTROL_PERIOD`. Open loop:
  one arrival task launching associations on schedule, a bounded backlog behind
  `max_in_flight`. Latency counts from the intended start.
- Only measured associations enter the totals and histograms; failures are counted with the
  peer's own words (at most `MAX_REASONS` distinct texts).
- The association itself is `run_echo` (net/client.py), passed in by the caller so that the
  caller decides which one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from time import perf_counter, process_time
from typing import TYPE_CHECKING, Any, Final

from echoprobe.errors import NetworkError, ProbeError
from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load_model import (
    CPU_BOTTLENECK,
    HISTOGRAMS,
    Arrivals,
    LoadProgress,
    Mode,
    TickStats,
)
from echoprobe.fleet.load_ports import NO_PORT_ERRNOS, explain_ports, port_facts
from echoprobe.fleet.load_schedule import Ramp
from echoprobe.net.addresses import format_address
from echoprobe.net.association import EchoTally
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.results import Outcome

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig

logger = logging.getLogger(__name__)

RunEcho = Callable[..., Awaitable[Any]]
"""`net.client.run_echo`'s shape: (address, port, options, timeouts, *, tally, timings,
local_address, tls) → the association's outcome."""

MAX_REASONS: Final = 64  # distinct failure texts kept; the rest are counted as "(other)"
BACKLOG_LIMIT: Final = 1_000_000  # open-loop arrivals waiting for a free slot
STOP_GRACE: Final = 2.0  # seconds in-flight associations get after a stop request
# This many refused connections and not one success: nothing listens there; the run stops
# instead of running its whole duration against a closed port.
REFUSED_GIVE_UP: Final = 20
ARRIVAL_TICK: Final = 0.001  # open loop: the shortest wait between launches (uvloop's clock)
_CONTROL_PERIOD: Final = 0.05  # seconds between ramp adjustments of the worker pool


class LoadEngine:
    def __init__(
        self,
        address: str,
        port: int,
        *,
        mode: Mode,
        level: float,
        arrivals: Arrivals,
        options: AssociationOptions,
        timeouts: Timeouts,
        planned: int | None,
        duration: float | None,
        ramp: Ramp | None,
        warmup: float,
        sources: list[str],
        max_in_flight: int,
        tick: float,
        drain_timeout: float,
        seed: int | None,
        on_tick: Callable[[LoadProgress], None] | None,
        stop: asyncio.Event | None,
        tls: TLSConfig | ssl.SSLContext | None,
        run_echo: RunEcho,
    ) -> None:
        self.run_echo = run_echo
        self.address = address
        self.tls = tls
        self.port = port
        self.mode: Mode = mode
        self.base_level = level
        self.arrivals = arrivals
        self.options = options
        self.timeouts = timeouts
        self.planned = planned
        self.duration = duration
        self.ramp = ramp
        self.warmup = warmup
        self.max_in_flight = max_in_flight
        self.tick = tick
        self.drain_timeout = drain_timeout
        self.rng = random.Random(seed)
        self.on_tick = on_tick
        self.stop_event = stop
        self.gave_up: str | None = None  # why the run stopped by itself (nothing listens)
        self._sources: Iterator[tuple[str, int] | None] = (
            itertools.cycle([(s, 0) for s in sources]) if sources else itertools.repeat(None)
        )
        self.facts = port_facts(address, len(sources))

        self.hist = {name: LatencyHistogram() for name in HISTOGRAMS}
        self.h_connect = self.hist["connect"]
        self.h_associate = self.hist["associate"]
        self.h_echo = self.hist["echo"]
        self.h_release = self.hist["release"]
        self.h_whole = self.hist["association"]
        self.h_lag = self.hist["start_lag"]
        self.counter = EchoTally()  # successful echoes so far, for the time series
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.internal_logged = False
        self.port_errors = 0

        self.t0 = 0.0
        self.cpu0 = 0.0
        self.tick_since = 0.0
        self.tick_cpu = 0.0
        self.measure_from = 0.0
        self.end_at: float | None = None
        self.issued = 0  # measured associations started (or queued, in open loop)
        self.warmup_started = 0
        self.in_flight = 0
        # Open loop: tasks created for an arrival that have not run yet. The drain waits for
        # them too: one cancelled before its first step would otherwise vanish uncounted.
        self.launched = 0
        self.succeeded = 0
        self.failed = 0
        self.cancelled = 0
        self.not_started = 0
        self.echo_mark_start = 0  # echoes received before the measured part began
        self.echo_mark_end = -1  # ... when the last measured association ended (-1: none)
        self.tick_echoes = 0
        self.echo_window = 0.0
        self.last_done = 0.0
        self.issuing = True
        self.stopping = False
        self.workers = 0
        self.retire = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.unmeasured: set[asyncio.Task[Any]] = set()  # running a warm-up association
        self.backlog: deque[float] = deque()
        self.idle = asyncio.Event()

        # per-tick accumulators
        self.t_started = 0
        self.t_succeeded = 0
        self.t_failed = 0
        self.t_failures: Counter[str] = Counter()
        self.t_hist = LatencyHistogram()
        self.series: list[TickStats] = []

    # -- levels and tickets

    def level_at(self, now: float) -> float:
        ramp = self.ramp
        if ramp is None:
            return self.base_level
        if now <= self.measure_from:
            return ramp.start
        if self.duration is not None:
            fraction = (now - self.measure_from) / self.duration
        elif self.planned:
            fraction = self.issued / self.planned
        else:
            fraction = 1.0
        return ramp.start + (ramp.end - ramp.start) * min(1.0, fraction)

    def _take(self, when: float) -> bool:
        """May an association intended to start at `when` start? Counts it if measured."""
        if self.stopping or not self.issuing:
            return False
        if when < self.measure_from:
            self.warmup_started += 1
            return True
        if (self.end_at is not None and when >= self.end_at) or (
            self.planned is not None and self.issued >= self.planned
        ):
            self.issuing = False
            return False
        self.issued += 1
        return True

    # -- one association

    async def _one(self, intended: float, *, launched: bool = False) -> None:
        if launched:
            self.launched -= 1
        self.in_flight += 1
        self.t_started += 1
        measured = intended >= self.measure_from
        task = None if measured else asyncio.current_task()
        if task is not None:
            self.unmeasured.add(task)
        timings: dict[str, float] = {}
        start = perf_counter()
        try:
            outcome = await self.run_echo(
                self.address,
                self.port,
                self.options,
                self.timeouts,
                tally=self.counter,
                timings=timings,
                local_address=next(self._sources),
                tls=self.tls,
            )
        except ProbeError as exc:
            self._failure(str(exc.outcome), str(exc), measured, exc)
        except asyncio.CancelledError:
            self._failure(Outcome.CANCELLED.value, "cancelled at the end of the run", measured)
            raise
        except Exception as exc:  # a bug of ours (or a LocalProtocolError): counted, logged once
            if not self.internal_logged:
                self.internal_logged = True
                logger.error("internal error in an association", exc_info=exc)
            self._failure(Outcome.INTERNAL_ERROR.value, f"{type(exc).__name__}: {exc}", measured)
        else:
            end = perf_counter()
            replies = outcome.replies
            failing = None
            for reply in replies:
                if reply.status != 0:
                    failing = reply
                    break
            if failing is not None:
                text = f"C-ECHO status 0x{failing.status:04X}"
                if failing.error_comment:
                    text += f" ({failing.error_comment})"
                self._failure(Outcome.ECHO_FAILED_STATUS.value, text, measured)
            elif outcome.release not in ("released", "collision"):
                kind = (
                    Outcome.RELEASE_TIMEOUT
                    if outcome.release == "release_timeout"
                    else Outcome.RELEASE_FAILED
                )
                self._failure(kind.value, str(outcome.release_error or outcome.release), measured)
            else:
                whole = (end - intended) * 1000.0
                self.t_succeeded += 1
                self.t_hist.record(whole)
                if measured:
                    self.succeeded += 1
                    self.last_done = end
                    self.echo_mark_end = self.counter.total
                    self.h_whole.record(whole)
                    value = timings.get("connect")
                    if value is not None:
                        self.h_connect.record(value)
                    value = timings.get("associate")
                    if value is not None:
                        self.h_associate.record(value)
                    value = timings.get("release")
                    if value is not None:
                        self.h_release.record(value)
                    record = self.h_echo.record
                    for reply in replies:
                        record(reply.rtt_ms)
                    if self.mode == "rate":
                        self.h_lag.record((start - intended) * 1000.0)
        finally:
            if task is not None:
                self.unmeasured.discard(task)
            self.in_flight -= 1
            if self.backlog and not self.stopping:
                self._launch(self.backlog.popleft())
            elif self.in_flight == 0 and not self.issuing:
                self.idle.set()

    def _failure(
        self, outcome: str, reason: str, measured: bool, exc: BaseException | None = None
    ) -> None:
        self.t_failed += 1
        self.t_failures[outcome] += 1
        if (
            outcome == Outcome.CONNECTION_REFUSED
            and self.t_succeeded == 0
            and self.t_failures[outcome] == self.t_failed >= REFUSED_GIVE_UP
            and not self.stopping
        ):
            self.gave_up = (
                f"nothing listens on {format_address(self.address, self.port)}: "
                f"{self.t_failed:,} connections refused and none accepted; the run stopped"
            )
            self._stop_now()
        if (
            exc is not None
            and isinstance(exc, NetworkError)
            and exc.phase == "connect"
            and exc.os_errno in NO_PORT_ERRNOS
        ):
            self.port_errors += 1
            reason = "no local port available (TIME_WAIT): " + reason
        if not measured:
            return
        if outcome == Outcome.CANCELLED:
            self.cancelled += 1
        else:
            self.failed += 1
        self.last_done = perf_counter()
        self.echo_mark_end = self.counter.total
        self.outcomes[outcome] += 1
        key = f"{outcome}: {reason}"
        if key in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[key] += 1
        else:
            self.reasons["(other reasons)"] += 1

    # -- closed loop

    def _spawn_workers(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            self.workers += 1
            task = loop.create_task(self._worker())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _worker(self) -> None:
        try:
            while True:
                if self.retire > 0:
                    self.retire -= 1
                    return
                now = perf_counter()
                if not self._take(now):
                    return
                await self._one(now)
        finally:
            self.workers -= 1
            if self.workers == 0 and self.in_flight == 0 and not self.issuing:
                self.idle.set()

    def _adjust_workers(self, now: float) -> None:
        if not self.issuing or self.stopping:
            return
        target = max(1, min(self.max_in_flight, round(self.level_at(now))))
        active = self.workers - self.retire
        if target > active:
            take_back = min(self.retire, target - active)
            self.retire -= take_back
            self._spawn_workers(target - active - take_back)
        elif target < active:
            self.retire += active - target

    # -- open loop

    def _launch(self, intended: float) -> None:
        if self.in_flight >= self.max_in_flight:
            if len(self.backlog) < BACKLOG_LIMIT:
                self.backlog.append(intended)
            else:
                self.not_started += intended >= self.measure_from
            return
        self.launched += 1
        task = asyncio.get_running_loop().create_task(self._one(intended, launched=True))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _arrive(self) -> None:
        poisson = self.arrivals == "poisson"
        expovariate = self.rng.expovariate
        next_at = self.t0
        try:
            while True:
                now = perf_counter()
                while next_at <= now:
                    if not self._take(next_at):
                        return
                    self._launch(next_at)
                    rate = self.level_at(next_at)
                    next_at += expovariate(rate) if poisson else 1.0 / rate
                # Never less than the loop's timer resolution: a shorter sleep returns at once
                # and the loop spins until the arrival (measured: 98 % of a core at 3,000/s,
                # which also made the generator look saturated). Arrivals due meanwhile start
                # together; their lag is part of their latency (from the intended start).
                await asyncio.sleep(max(next_at - perf_counter(), ARRIVAL_TICK))
        finally:
            self.issuing = False
            if self.in_flight == 0 and not self.backlog:
                self.idle.set()

    # -- ticks

    def _snapshot(self, now: float, cpu_before: float, cpu_now: float, since: float) -> None:
        seconds = now - since
        pct = self.t_hist.percentiles((50.0, 90.0, 99.0))
        tick = TickStats(
            t=now - self.t0,
            seconds=seconds,
            warmup=now <= self.measure_from,
            level=round(self.level_at(now), 3),
            started=self.t_started,
            succeeded=self.t_succeeded,
            failed=self.t_failed,
            echoes=self.counter.total - self.tick_echoes,
            in_flight=self.in_flight,
            cpu=(cpu_now - cpu_before) / seconds if seconds > 0 else 0.0,
            p50=pct[50.0],
            p90=pct[90.0],
            p99=pct[99.0],
            max=self.t_hist.max,
            failures=dict(self.t_failures),
            draining=not self.issuing and now > self.measure_from,
        )
        self.series.append(tick)
        self.t_started = self.t_succeeded = self.t_failed = 0
        self.tick_echoes = self.counter.total
        self.t_failures = Counter()
        tick_latency, self.t_hist = self.t_hist, LatencyHistogram()
        if self.on_tick is not None:
            stage = (
                "warmup"
                if now < self.measure_from
                else ("measuring" if self.issuing else "draining")
            )
            progress = LoadProgress(
                tick=tick,
                elapsed=now - self.t0,
                stage=stage,
                mode=self.mode,
                level=tick.level,
                planned=self.planned,
                duration=self.duration,
                warmup=self.warmup,
                started=self.issued,
                succeeded=self.succeeded,
                failed=self.failed,
                in_flight=self.in_flight,
                echoes=self.counter.total - self.echo_mark_start,
                outcomes=dict(self.outcomes),
                tick_latency=tick_latency,
                histograms=self.hist,
                cpu_seconds=cpu_now - self.cpu0,
            )
            try:
                self.on_tick(progress)
            except Exception:
                logger.exception("on_tick failed; no more progress callbacks")
                self.on_tick = None

    def _tick_now(self, now: float) -> None:
        cpu_now = process_time()
        self._snapshot(now, self.tick_cpu, cpu_now, self.tick_since)
        self.tick_since, self.tick_cpu = now, cpu_now

    async def _ticker(self) -> None:
        next_tick = self.t0 + self.tick
        ramping = self.mode == "concurrency" and self.ramp is not None
        while True:
            now = perf_counter()
            wake = min(next_tick, now + _CONTROL_PERIOD) if ramping else next_tick
            await asyncio.sleep(max(0.0, wake - now))
            now = perf_counter()
            if ramping:
                self._adjust_workers(now)
            if now >= next_tick:
                self._tick_now(now)
                next_tick += self.tick
                if next_tick <= now:  # a stalled loop: skip the missed ticks
                    next_tick = now + self.tick

    async def run(self) -> tuple[float, float, bool]:
        """Run to the end; returns (wall seconds, window seconds, interrupted)."""
        loop = asyncio.get_running_loop()
        self.t0 = perf_counter()
        self.measure_from = self.t0 + self.warmup
        self.end_at = None if self.duration is None else self.measure_from + self.duration
        self.last_done = self.measure_from
        self.tick_since, self.tick_cpu = self.t0, process_time()
        self.cpu0 = self.tick_cpu
        marker = loop.call_later(self.warmup, self._mark_start) if self.warmup > 0 else None
        ticker = loop.create_task(self._ticker())
        stop_waiter: asyncio.Task[Any] | None = None
        if self.stop_event is not None:
            stop_waiter = loop.create_task(self.stop_event.wait())
            stop_waiter.add_done_callback(
                lambda task: None if task.cancelled() else self._stop_now()
            )
        arrivals: asyncio.Task[None] | None = None
        try:
            if self.mode == "concurrency":
                first = max(1, min(self.max_in_flight, round(self.level_at(self.t0))))
                self._spawn_workers(first)
            else:
                arrivals = loop.create_task(self._arrive())
            await self._drain(arrivals)
        finally:
            ticker.cancel()
            if marker is not None:
                marker.cancel()
            if stop_waiter is not None:
                stop_waiter.cancel()
            if arrivals is not None:
                arrivals.cancel()
            await self._cancel_all()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        end = perf_counter()
        if end - self.tick_since > 0.001:  # the last, partial interval
            self._tick_now(end)
        window = max(0.0, self.last_done - self.measure_from)
        if self.echo_mark_end < 0:  # no measured association ended: the echoes up to now
            self.echo_mark_end = self.counter.total
            self.echo_window = max(0.0, end - self.measure_from)
        else:
            self.echo_window = window
        # Stopping by itself (nothing listens) is an outcome of the run, not an interruption.
        return end - self.t0, window, self.stopping and self.gave_up is None

    def _mark_start(self) -> None:
        self.echo_mark_start = self.counter.total

    def _stop_now(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.issuing = False
            if self.in_flight == 0:
                self.idle.set()

    async def _drain(self, arrivals: asyncio.Task[None] | None) -> None:
        # First wait for the end of issuing (bounded by the run's bounds), then for the
        # associations in flight (bounded by drain_timeout).
        while self.issuing:
            await asyncio.sleep(0.02 if arrivals is None else 0.05)
            if self.end_at is not None and perf_counter() >= self.end_at:
                self.issuing = False  # even if every worker is still busy
            if arrivals is not None and arrivals.done():
                arrivals.result()  # re-raise a bug in the scheduler
                break
        if self.backlog:
            self.not_started += sum(1 for t in self.backlog if t >= self.measure_from)
            self.backlog.clear()
        # Warm-up associations still running (long ones: large repeat) count for nothing:
        # aborted now rather than waited for.
        for task in list(self.unmeasured):
            task.cancel()
        closed = self.mode == "concurrency"
        clock = asyncio.get_running_loop().time
        deadline = clock() + self.drain_timeout
        stop_deadline = math.inf  # a stop request leaves the associations in flight 2 s
        while self.in_flight or self.launched or (closed and self.workers):
            now = clock()
            if self.stopping and stop_deadline == math.inf:
                stop_deadline = now + STOP_GRACE
            limit = min(deadline, stop_deadline)
            if now >= limit:
                break
            self.idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(limit - now, 0.1)):
                    await self.idle.wait()

    async def _cancel_all(self) -> None:
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def warnings(self, window: float, cpu_fraction: float, time_wait: int | None) -> list[str]:
        out: list[str] = []
        address = format_address(self.address, self.port)
        if self.gave_up is not None:
            return [self.gave_up]  # nothing else the run measured means anything
        if cpu_fraction > CPU_BOTTLENECK:
            out.append(
                f"the load generator used {cpu_fraction:.0%} of one CPU core: it, not the SCP, "
                "is probably the bottleneck, so these figures are a lower bound of what the "
                "SCP can do (run several generator processes or machines)"
            )
        if self.mode == "rate":
            lag = self.h_lag.percentile(99)
            if lag is not None and lag > 10.0:
                out.append(
                    f"associations started late (p99 {lag:.1f} ms after their intended time): "
                    "the generator or the in-flight limit could not keep the offered rate; "
                    "latencies include that wait"
                )
        if self.issued == 0 and not self.stopping:
            out.append(
                "no association started in the measured part of the run: each lasted longer "
                "than the warm-up and the duration; for long associations (large --repeat) "
                "bound the run with --associations"
            )
        if self.not_started:
            out.append(
                f"{self.not_started:,} arrivals never started (more than {self.max_in_flight:,} "
                "associations in flight): the SCP did not keep up with the offered rate"
            )
        facts = self.facts
        if self.port_errors:
            out.append(
                f"{self.port_errors:,} connections failed for lack of a local port. "
                + explain_ports(facts, address)
            )
        else:
            opened = self.succeeded + self.failed + self.warmup_started
            rate = opened / window if window > 0 else 0.0
            sustainable = facts.sustainable_rate
            if sustainable is not None and rate > 0.8 * sustainable:
                out.append(
                    f"{rate:,.0f} new connections/s is near what this machine can sustain to "
                    f"one SCP address ({sustainable:,.0f}/s with "
                    f"{max(1, facts.source_addresses)} local address(es))"
                    + (f", {time_wait:,} sockets in TIME_WAIT now" if time_wait else "")
                    + ". "
                    + explain_ports(facts, address)
                )
        return out


__all__ = ["ARRIVAL_TICK", "BACKLOG_LIMIT", "MAX_REASONS", "STOP_GRACE", "LoadEngine", "RunEcho"]
