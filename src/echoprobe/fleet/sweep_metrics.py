"""Live Prometheus metrics of a sweep (`echoprobe sweep --metrics-listen`).

Rules:
- Counted from the records as they reach the writer, so the figures are the records' own,
  with or without worker processes (the parent receives every record), and the final value
  of `echoprobe_sweep_targets_total` equals the number of records written.
- prometheus_client does the exposition, on its own registry and HTTP thread
  (`fleet.load_metrics.MetricsServer`); nothing here formats a metric.
- Durations are seconds (Prometheus's base unit), in the load test's bucket bounds, so that
  dashboards can put sweeps and load tests side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from echoprobe.fleet.load_metrics import BOUNDS_SECONDS, MetricsServer
from echoprobe.fleet.sweep import SweepStats
from echoprobe.results import ProbeResult

PHASES: Final = ("resolve", "connect", "tls", "associate", "echo", "release")


class SweepMetrics:
    """The figures of one sweep, updated per record; `stats` gives the live in-flight count."""

    def __init__(self, stats: Callable[[], SweepStats | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._targets = Counter(
            "echoprobe_sweep_targets",
            "Targets with a record, by outcome (the stable Outcome strings)",
            ["outcome"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "echoprobe_sweep_probe_duration_seconds",
            "Whole probe of one target, resolution to release",
            buckets=BOUNDS_SECONDS,
            registry=self.registry,
        )
        self._phases = Histogram(
            "echoprobe_sweep_phase_duration_seconds",
            "Each phase of a probe that ran it",
            ["phase"],
            buckets=BOUNDS_SECONDS,
            registry=self.registry,
        )
        in_flight = Gauge(
            "echoprobe_sweep_in_flight", "Probes under way now", registry=self.registry
        )
        in_flight.set_function(lambda: _in_flight(stats()))
        self._expected = Gauge(
            "echoprobe_sweep_targets_expected",
            "Targets in the inventory, when known in advance",
            registry=self.registry,
        )

    def expect(self, total: int | None) -> None:
        if total is not None:
            self._expected.set(total)

    def record(self, result: ProbeResult) -> None:
        self._targets.labels(result.outcome.value).inc()
        timings = result.timings_ms
        total = timings.get("total")
        if total is not None:
            self._duration.observe(total / 1000.0)
        for phase in PHASES:
            value = timings.get(phase)
            if value is not None:
                self._phases.labels(phase).observe(value / 1000.0)

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve on http://host:port/metrics (port 0: any free port); raises OSError."""
        return MetricsServer(self.registry, host, port)


def _in_flight(stats: SweepStats | None) -> float:
    return 0.0 if stats is None else float(stats.in_flight)


__all__ = ["SweepMetrics"]
