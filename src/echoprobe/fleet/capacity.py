"""`find_capacity()`: raise the load step by step until the SCP gives way, then bisect.

    capacity = await find_capacity("127.0.0.1", 11112, p99_bound_ms=50)

Rules: every step is a bounded `run_load`; at most `max_steps` steps; a step fails when the SCP
rejects, times out or fails more than `max_error_ratio` of its attempts, when its p99 passes
`p99_bound_ms`, or (open loop) when it falls short of the offered rate. Nothing here prints.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from echoprobe.fleet.load import run_load
from echoprobe.fleet.load_model import (
    CPU_BOTTLENECK,
    Arrivals,
    LoadProgress,
    LoadReport,
    Mode,
    TickStats,
    loadavg,
    tls_text,
)
from echoprobe.net.budget import DEFAULT_TIMEOUTS
from echoprobe.options import Timeouts
from echoprobe.results import Outcome

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig

_TIMEOUT_OUTCOMES: Final = frozenset(
    {
        Outcome.CONNECT_TIMEOUT,
        Outcome.ACSE_TIMEOUT,
        Outcome.DIMSE_TIMEOUT,
        Outcome.RELEASE_TIMEOUT,
        Outcome.DEADLINE_EXCEEDED,
        Outcome.TIMEOUT,
        Outcome.TLS_HANDSHAKE_TIMEOUT,
    }
)
_REJECT_OUTCOMES: Final = frozenset({Outcome.REJECTED_TRANSIENT, Outcome.REJECTED_PERMANENT})


@dataclass(slots=True)
class CapacityStep:
    """One level tried by `find_capacity` and what it showed."""

    level: float
    ok: bool
    reason: str | None  # why the step failed (None when it passed)
    assoc_per_s: float
    echoes_per_s: float
    p50: float | None
    p99: float | None
    attempted: int
    succeeded: int
    failed: int
    outcomes: dict[str, int]
    cpu_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "ok": self.ok,
            "reason": self.reason,
            "assoc_per_s": round(self.assoc_per_s, 2),
            "echoes_per_s": round(self.echoes_per_s, 2),
            "p50": self.p50,
            "p99": self.p99,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "outcomes": dict(self.outcomes),
            "cpu_fraction": round(self.cpu_fraction, 4),
        }


@dataclass(slots=True)
class CapacityReport:
    """The result of `find_capacity`: the level found, why the next one failed, the curve."""

    mode: Mode
    capacity: float | None  # the highest level that passed (None: even the first failed)
    first_failure: float | None  # the lowest level that failed (None: none did)
    stop_reason: str  # why the search ended
    steps: list[CapacityStep]
    config: dict[str, Any]
    best: CapacityStep | None  # the passing step with the highest throughput
    at_capacity: LoadReport | None  # the full report of the capacity step
    series: list[TickStats]  # every step's ticks, one after another (t continues)
    warnings: list[str]
    interrupted: bool = False

    @property
    def found(self) -> bool:
        return self.capacity is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "capacity": self.capacity,
            "first_failure": self.first_failure,
            "stop_reason": self.stop_reason,
            "best": self.best.to_dict() if self.best else None,
            "steps": [s.to_dict() for s in self.steps],
            "config": self.config,
            "series": [t.to_dict() for t in self.series],
            "at_capacity": self.at_capacity.to_dict() if self.at_capacity else None,
            "warnings": list(self.warnings),
            "interrupted": self.interrupted,
        }


def judge_step(
    report: LoadReport,
    *,
    mode: Mode,
    level: float,
    p99_bound_ms: float | None,
    max_error_ratio: float,
    min_rate_ratio: float = 0.9,
) -> str | None:
    """Why this step shows the SCP past its capacity, or None when it held."""
    attempts = max(1, report.attempted)
    failures = report.failed + report.cancelled + report.not_started
    outcomes = report.outcomes

    def top_reason(kinds: frozenset[str]) -> str:
        for key in report.reasons:
            if key.split(":", 1)[0] in kinds:
                return key
        return ", ".join(sorted(k for k in outcomes if k in kinds))

    rejects = sum(outcomes.get(k, 0) for k in _REJECT_OUTCOMES)
    if rejects and rejects / attempts > max_error_ratio:
        return f"rejected ({rejects:,} of {attempts:,}): {top_reason(_REJECT_OUTCOMES)}"
    timeouts = sum(outcomes.get(k, 0) for k in _TIMEOUT_OUTCOMES)
    if timeouts and timeouts / attempts > max_error_ratio:
        return f"timed out ({timeouts:,} of {attempts:,}): {top_reason(_TIMEOUT_OUTCOMES)}"
    if failures and failures / attempts > max_error_ratio:
        everything = frozenset(outcomes)
        return f"failed ({failures:,} of {attempts:,}): {top_reason(everything)}"
    if report.succeeded == 0:
        return "no association completed"
    p99 = report.percentile("association", 99)
    if p99_bound_ms is not None and p99 is not None and p99 > p99_bound_ms:
        return f"p99 {p99:.1f} ms above the bound of {p99_bound_ms:g} ms"
    if mode == "rate" and report.assoc_per_s < min_rate_ratio * level:
        return f"throughput {report.assoc_per_s:,.0f}/s below the offered {level:,.0f}/s"
    return None


async def find_capacity(
    host: str,
    port: int,
    *,
    mode: Mode = "concurrency",
    start: float = 1,
    max_level: float | None = None,
    factor: float = 2.0,
    step_duration: float = 2.0,
    step_warmup: float = 0.3,
    p99_bound_ms: float | None = None,
    max_error_ratio: float = 0.0,
    refine: bool = True,
    max_steps: int = 40,
    settle: float = 0.2,
    repeat: int = 1,
    arrivals: Arrivals = "constant",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    source_addresses: Sequence[str] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
    tick: float = 0.5,
    seed: int | None = None,
    on_tick: Callable[[LoadProgress], None] | None = None,
    on_step: Callable[[CapacityStep], None] | None = None,
    stop: asyncio.Event | None = None,
) -> CapacityReport:
    """Raise concurrency (or rate) step by step (times `factor`), until the SCP rejects, times out,
    fails, or its p99 exceeds `p99_bound_ms`; then, with `refine`, bisect between the last level
    that held and the first that did not. Each step is a bounded `run_load` of `step_duration`
    seconds after `step_warmup`; at most `max_steps` steps."""
    if mode not in ("concurrency", "rate"):
        raise ValueError("mode must be 'concurrency' or 'rate'")
    if not (start > 0 and factor > 1 and step_duration > 0):
        raise ValueError("start must be positive, factor > 1, step_duration > 0")
    if max_level is None:
        max_level = 4096 if mode == "concurrency" else 100_000
    if mode == "concurrency":
        start = max(1, round(start))
        max_level = max(start, int(max_level))
    steps: list[CapacityStep] = []
    series: list[TickStats] = []
    reports: dict[float, LoadReport] = {}
    warnings: list[str] = []
    warning_keys: set[str] = set()  # one warning of each kind, the first one
    offset = 0.0

    async def attempt(level: float) -> CapacityStep:
        nonlocal offset
        kwargs: dict[str, Any] = (
            {"concurrency": int(level)} if mode == "concurrency" else {"rate": level}
        )
        report = await run_load(
            host,
            port,
            **kwargs,
            arrivals=arrivals,
            repeat=repeat,
            duration=step_duration,
            warmup=step_warmup,
            timeouts=timeouts,
            calling_ae=calling_ae,
            called_ae=called_ae,
            source_addresses=source_addresses,
            tls=tls,
            tick=tick,
            seed=seed,
            on_tick=on_tick,
            stop=stop,
            drain_timeout=max(5.0, step_duration),
        )
        series.extend(replace(t, t=t.t + offset) for t in report.series)
        offset += report.wall_seconds + settle
        reason = judge_step(
            report,
            mode=mode,
            level=level,
            p99_bound_ms=p99_bound_ms,
            max_error_ratio=max_error_ratio,
        )
        if report.interrupted:
            reason = reason or "interrupted"
        for text in report.warnings:
            key = re.sub(r"[\d,.%]+", "#", text)
            if key not in warning_keys:
                warning_keys.add(key)
                warnings.append(text)
        step = CapacityStep(
            level=level,
            ok=reason is None,
            reason=reason,
            assoc_per_s=report.assoc_per_s,
            echoes_per_s=report.echoes_per_s,
            p50=report.percentile("association", 50),
            p99=report.percentile("association", 99),
            attempted=report.attempted,
            succeeded=report.succeeded,
            failed=report.failed + report.cancelled + report.not_started,
            outcomes=dict(report.outcomes),
            cpu_fraction=report.cpu_fraction,
        )
        steps.append(step)
        reports[level] = report
        if on_step is not None:
            on_step(step)
        if settle > 0:
            await asyncio.sleep(settle)  # let the SCP see the last connections close
        return step

    def interrupted() -> bool:
        return stop is not None and stop.is_set()

    good: float | None = None
    bad: float | None = None
    stop_reason = ""
    level = float(start)
    while len(steps) < max_steps and not interrupted():
        step = await attempt(level)
        if not step.ok:
            bad, stop_reason = level, step.reason or "failed"
            break
        good = level
        if level >= max_level:
            stop_reason = f"reached the highest level tried ({max_level:g}) without failing"
            break
        nxt = level * factor
        if mode == "concurrency":
            nxt = max(level + 1, round(nxt))
        level = min(float(nxt), float(max_level))
    if refine and good is not None and bad is not None:
        while len(steps) < max_steps and not interrupted():
            if mode == "concurrency":
                if bad - good <= 1:
                    break
                mid = float((int(good) + int(bad)) // 2)
            else:
                if bad / good <= 1.05:
                    break
                mid = round((good + bad) / 2, 1)
            step = await attempt(mid)
            if step.ok:
                good = mid
            else:
                bad, stop_reason = mid, step.reason or "failed"
    if interrupted():
        stop_reason = "interrupted"
    elif not stop_reason:
        stop_reason = f"stopped after {max_steps} steps"
    passing = [s for s in steps if s.ok]
    best = max(passing, key=lambda s: s.assoc_per_s, default=None)
    # Only steps that held measure the SCP's throughput: past the capacity, quick refusals
    # can keep the generator busy without saying anything about its limits.
    busy = [s for s in steps if s.ok and s.cpu_fraction > CPU_BOTTLENECK]
    warnings = [w for w in warnings if not w.startswith("the load generator used")]
    if busy:
        worst = max(s.cpu_fraction for s in busy)
        warnings.insert(
            0,
            f"the load generator used more than {CPU_BOTTLENECK:.0%} of one CPU core in "
            f"{len(busy)} of the {len(passing)} steps that held (up to {worst:.0%}, from "
            f"{mode} {min(s.level for s in busy):g}): from there on it, not the SCP, is "
            "probably the bottleneck, and the curve is a lower bound of the SCP's",
        )
    config = {
        "host": host,
        "port": port,
        "mode": mode,
        "start": start,
        "max_level": max_level,
        "factor": factor,
        "step_duration": step_duration,
        "step_warmup": step_warmup,
        "p99_bound_ms": p99_bound_ms,
        "max_error_ratio": max_error_ratio,
        "repeat": repeat,
        "arrivals": arrivals if mode == "rate" else None,
        "calling_ae": calling_ae,
        "called_ae": called_ae,
        "tls": tls_text(tls),
        "machine": {"cpus": os.cpu_count(), "loadavg": loadavg()},
    }
    return CapacityReport(
        mode=mode,
        capacity=good,
        first_failure=bad,
        stop_reason=stop_reason,
        steps=steps,
        config=config,
        best=best,
        at_capacity=reports.get(good) if good is not None else None,
        series=series,
        warnings=warnings,
        interrupted=interrupted(),
    )


__all__ = ["CapacityReport", "CapacityStep", "find_capacity", "judge_step"]
