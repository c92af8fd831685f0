"""The load report model: per-tick figures, live progress, and the report of a run.

Rules: values only (no I/O, no clock); latencies live in `LatencyHistogram`s so that reports
of several processes or machines can be merged exactly, bucket by bucket (`load_merge.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load_ports import PortFacts

Arrivals = Literal["constant", "poisson"]
Mode = Literal["concurrency", "rate"]

HISTOGRAMS: Final = ("connect", "associate", "echo", "release", "association", "start_lag")
"""Histogram names: four phases (echo: each C-ECHO round trip), the whole association (from
its intended start), and, in open loop, how late associations started."""

CPU_BOTTLENECK: Final = 0.90  # of one core: above this the generator limits the result


@dataclass(slots=True)
class TickStats:
    """One interval of the time series (counts by completion time)."""

    t: float  # seconds since the run began, at the end of the interval
    seconds: float  # the interval's length
    warmup: bool  # the interval ended before the measured part began
    level: float  # concurrency or rate in force at its end
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    echoes: int = 0  # C-ECHO responses received with status 0000H
    in_flight: int = 0
    cpu: float = 0.0  # the generator's CPU seconds per wall second (1.0 = one core)
    p50: float | None = None  # whole-association latency (ms) of the successes that ended
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    failures: dict[str, int] = field(default_factory=dict)
    draining: bool = False  # no association was started any more (the run's tail)

    @property
    def assoc_per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0

    @property
    def echoes_per_s(self) -> float:
        return self.echoes / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors_per_s(self) -> float:
        return self.failed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 4),
            "seconds": round(self.seconds, 4),
            "warmup": self.warmup,
            "draining": self.draining,
            "level": self.level,
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "echoes": self.echoes,
            "in_flight": self.in_flight,
            "assoc_per_s": round(self.assoc_per_s, 2),
            "echoes_per_s": round(self.echoes_per_s, 2),
            "errors_per_s": round(self.errors_per_s, 2),
            "cpu": round(self.cpu, 4),
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "max": self.max,
            "failures": dict(self.failures),
        }


@dataclass(slots=True)
class LoadProgress:
    """What `on_tick` receives once per tick."""

    tick: TickStats
    elapsed: float
    stage: str  # "warmup", "measuring", "draining"
    mode: Mode
    level: float
    planned: int | None  # measured associations asked for
    duration: float | None
    warmup: float
    started: int  # measured associations started
    succeeded: int
    failed: int
    in_flight: int
    echoes: int
    outcomes: dict[str, int]
    # For merging the progress of several workers (live view, live metrics): the tick's
    # whole-association latencies, the run's measured histograms so far (live objects: read
    # them in the callback), and the generator's CPU seconds since the run began.
    tick_latency: LatencyHistogram | None = None
    histograms: dict[str, LatencyHistogram] | None = None
    cpu_seconds: float = 0.0


@dataclass(slots=True)
class LoadReport:
    """Everything a load run measured (warm-up excluded from every total)."""

    config: dict[str, Any]
    started_at: str
    wall_seconds: float
    window_seconds: float  # from the end of warm-up to the last measured completion
    attempted: int
    succeeded: int
    failed: int
    not_started: int
    cancelled: int
    echoes: int  # C-ECHO responses (0000H) received in `echo_window_seconds`
    echo_window_seconds: float  # the measured window (or, if no measured association ended,
    # from the end of warm-up to the end of the run: long associations still count)
    outcomes: dict[str, int]
    reasons: dict[str, int]
    histograms: dict[str, LatencyHistogram]
    series: list[TickStats]
    cpu_seconds: float
    cpu_fraction: float  # over the measured ticks (1.0 = one core)
    cpu_peak: float
    ports: PortFacts
    time_wait_at_end: int | None
    port_errors: int
    warnings: list[str]
    warmup_associations: int
    interrupted: bool = False
    echoes_total: int = 0  # every C-ECHO response (0000H) received, warm-up included
    processes: int = 1  # generator processes (or runs) merged into this report
    parts: list[dict[str, Any]] = field(default_factory=list)  # per worker / source file
    missing: list[str] = field(default_factory=list)  # workers that died without a report

    @property
    def assoc_per_s(self) -> float:
        return self.succeeded / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def echoes_per_s(self) -> float:
        seconds = self.echo_window_seconds
        return self.echoes / seconds if seconds > 0 else 0.0

    @property
    def errors_per_s(self) -> float:
        bad = self.failed + self.cancelled
        return bad / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """The run completed and every measured association succeeded."""
        return (
            not self.interrupted
            and not self.missing
            and self.attempted > 0
            and self.succeeded == self.attempted
            and not self.not_started
        )

    @property
    def cpu_us_per_association(self) -> float | None:
        """The generator's CPU per association run (warm-up included, as is its CPU time)."""
        ran = self.succeeded + self.failed + self.cancelled + self.warmup_associations
        return self.cpu_seconds / ran * 1e6 if ran else None

    @property
    def cpu_us_per_echo(self) -> float | None:
        """The generator's CPU per C-ECHO received (meaningful with a large repeat)."""
        return self.cpu_seconds / self.echoes_total * 1e6 if self.echoes_total else None

    @property
    def generator_bound(self) -> bool:
        """Some generator process used most of its core (`cpu_fraction` sums the processes)."""
        peaks = [float(p.get("cpu_fraction", 0.0)) for p in self.parts]
        return max(peaks, default=self.cpu_fraction / self.processes) > CPU_BOTTLENECK

    def percentile(self, name: str, q: float) -> float | None:
        return self.histograms[name].percentile(q)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "started_at": self.started_at,
            "wall_seconds": round(self.wall_seconds, 4),
            "window_seconds": round(self.window_seconds, 4),
            "echo_window_seconds": round(self.echo_window_seconds, 4),
            "ok": self.ok,
            "interrupted": self.interrupted,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "not_started": self.not_started,
            "cancelled": self.cancelled,
            "warmup_associations": self.warmup_associations,
            "echoes": self.echoes,
            "echoes_total": self.echoes_total,
            "assoc_per_s": round(self.assoc_per_s, 2),
            "echoes_per_s": round(self.echoes_per_s, 2),
            "errors_per_s": round(self.errors_per_s, 2),
            "outcomes": dict(self.outcomes),
            "reasons": dict(self.reasons),
            "latency_ms": {
                name: h.to_dict(buckets=True) for name, h in self.histograms.items() if h.count
            },
            "series": [t.to_dict() for t in self.series],
            "cpu": {
                "seconds": round(self.cpu_seconds, 4),
                "fraction": round(self.cpu_fraction, 4),
                "peak": round(self.cpu_peak, 4),
                "us_per_association": (
                    None if (us := self.cpu_us_per_association) is None else round(us, 1)
                ),
                "us_per_echo": (
                    None if (us_echo := self.cpu_us_per_echo) is None else round(us_echo, 2)
                ),
                "bottleneck_threshold": CPU_BOTTLENECK,
                "generator_bound": self.generator_bound,
            },
            "ports": {
                **self.ports.to_dict(),
                "time_wait_at_end": self.time_wait_at_end,
                "port_errors": self.port_errors,
            },
            "warnings": list(self.warnings),
            "processes": self.processes,
            "parts": [dict(p) for p in self.parts],
            "missing": list(self.missing),
        }


def tls_text(tls: object) -> str | None:
    """How the report names the TLS settings (None: plain TCP)."""
    if tls is None:
        return None
    profile = getattr(tls, "profile", None)
    if profile is not None:
        return f"{profile.title} ({profile.value})"
    return "a caller's ssl.SSLContext"


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


__all__ = [
    "CPU_BOTTLENECK",
    "HISTOGRAMS",
    "Arrivals",
    "LoadProgress",
    "LoadReport",
    "Mode",
    "TickStats",
    "loadavg",
    "tls_text",
]
