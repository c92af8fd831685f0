"""Live Prometheus metrics of a load run, every worker of the process summed.

    metrics = LoadMetrics()
    server = serve_metrics(metrics, "127.0.0.1", 9464)     # /metrics, in a thread
    report = await run_load(..., metrics=metrics)
    server.close()

Rules:
- One `CollectorRegistry` per `LoadMetrics` (never prometheus_client's global one) holding one
  custom collector; exposition and the HTTP server are prometheus_client's.
- Workers send their cumulative figures at every tick (`update`) and their final report
  (`finish`); the collector sums the latest figures of every worker at scrape time, so the
  counters only rise and, once the run has ended, equal the merged report's.
- Only measured associations count (warm-up enters no metric, as it enters no report total).
- Latency buckets are fixed Prometheus bounds (seconds) filled from the exact histograms: a
  value lands by its 1 % bucket, so a value within 0.5 % of a bound may fall on either side.
- Thread-safe: updates come from the event loop's thread, scrapes from the server's thread;
  figures are copied under a lock, never shared live.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load_merge import merge_histograms
from echoprobe.fleet.load_model import LoadProgress, LoadReport

BOUNDS_SECONDS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
PHASES: Final = ("connect", "associate", "echo", "release")
SUCCESS: Final = "success"


@dataclass(slots=True)
class _Figures:
    """One worker's cumulative figures."""

    outcomes: Counter[str] = field(default_factory=Counter)  # "success" included
    histograms: dict[str, LatencyHistogram] = field(default_factory=dict)
    in_flight: int = 0
    cpu_seconds: float = 0.0
    state: str = "running"  # "running", "finished", "lost"


class LoadMetrics(Collector):
    """The live figures of a load run and their Prometheus collector."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._figures: dict[int, _Figures] = {}
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self)

    def expect(self, workers: int) -> None:
        with self._lock:
            for index in range(workers):
                self._figures.setdefault(index, _Figures())

    def update(self, source: int, progress: LoadProgress) -> None:
        outcomes = Counter(progress.outcomes)
        outcomes[SUCCESS] = progress.succeeded
        histograms = {n: h.copy() for n, h in (progress.histograms or {}).items()}
        with self._lock:
            figures = self._figures.setdefault(source, _Figures())
            figures.outcomes = outcomes
            if histograms:
                figures.histograms = histograms
            figures.in_flight = progress.in_flight
            figures.cpu_seconds = progress.cpu_seconds

    def finish(self, source: int, report: LoadReport) -> None:
        outcomes = Counter(report.outcomes)
        outcomes[SUCCESS] = report.succeeded
        histograms = {n: h.copy() for n, h in report.histograms.items()}
        with self._lock:
            figures = self._figures.setdefault(source, _Figures())
            figures.outcomes = outcomes
            figures.histograms = histograms
            figures.in_flight = 0
            figures.cpu_seconds = max(figures.cpu_seconds, report.cpu_seconds)
            figures.state = "finished"

    def lost(self, source: int) -> None:
        """A worker died: its last figures stay (counters never go down), marked lost."""
        with self._lock:
            figures = self._figures.setdefault(source, _Figures())
            figures.state = "lost"
            figures.in_flight = 0

    def associations(self) -> dict[str, int]:
        """The association counts by outcome, every worker summed."""
        with self._lock:
            total: Counter[str] = Counter()
            for figures in self._figures.values():
                total.update(figures.outcomes)
        return dict(total)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            figures = list(self._figures.values())
            outcomes: Counter[str] = Counter()
            for f in figures:
                outcomes.update(f.outcomes)
            merged = {
                name: merge_histograms(f.histograms[name] for f in figures if name in f.histograms)
                for name in ("association", *PHASES)
            }
        counter = CounterMetricFamily(
            "echoprobe_load_associations",
            "Measured associations ended, by outcome (success or the failure's outcome).",
            labels=["outcome"],
        )
        outcomes.setdefault(SUCCESS, 0)
        for outcome, n in sorted(outcomes.items()):
            counter.add_metric([outcome], n)
        yield counter
        whole = HistogramMetricFamily(
            "echoprobe_load_association_duration_seconds",
            "Whole successful associations, from their intended start to the end of release.",
        )
        buckets, total = _buckets(merged["association"])
        whole.add_metric([], buckets, total)
        yield whole
        phases = HistogramMetricFamily(
            "echoprobe_load_phase_duration_seconds",
            "Phases of successful associations (echo: each C-ECHO round trip).",
            labels=["phase"],
        )
        for phase in PHASES:
            buckets, total = _buckets(merged[phase])
            phases.add_metric([phase], buckets, total)
        yield phases
        yield GaugeMetricFamily(
            "echoprobe_load_in_flight",
            "Associations open now, every worker summed.",
            value=sum(f.in_flight for f in figures),
        )
        yield CounterMetricFamily(
            "echoprobe_load_generator_cpu_seconds",
            "CPU time the generator processes used (1 per second = one core busy).",
            value=sum(f.cpu_seconds for f in figures),
        )
        workers = GaugeMetricFamily(
            "echoprobe_load_workers", "Generator processes, by state.", labels=["state"]
        )
        states = Counter(f.state for f in figures)
        for state in ("running", "finished", "lost"):
            workers.add_metric([state], states.get(state, 0))
        yield workers


def _buckets(hist: LatencyHistogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets (seconds) and the sum, from a millisecond histogram."""
    rows = hist.buckets()
    out: list[tuple[str, float]] = []
    seen = 0
    position = 0
    for bound in BOUNDS_SECONDS:
        limit_ms = bound * 1000.0
        while position < len(rows):
            low, high, n = rows[position]
            middle = (low * high) ** 0.5 if low > 0 else 0.0
            if middle > limit_ms:
                break
            seen += n
            position += 1
        out.append((repr(bound), seen))
    out.append(("+Inf", hist.count))
    return out, hist.total / 1000.0


class MetricsServer:
    """prometheus_client's HTTP server for one registry, in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(metrics: LoadMetrics, host: str, port: int) -> MetricsServer:
    """Serve `metrics` on http://host:port/metrics (port 0: any free port); raises OSError."""
    return MetricsServer(metrics.registry, host, port)


__all__ = ["BOUNDS_SECONDS", "LoadMetrics", "MetricsServer", "serve_metrics"]
