"""The exporter's own metrics (`/metrics`), in a registry of its own.

Rules: one `CollectorRegistry` per exporter instance (not prometheus_client's global one), so
that several exporters in one process (tests) do not collide; the process, GC and platform
collectors are prometheus_client's.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from echoprobe import __version__

# Association times run from milliseconds (a healthy LAN peer) to the timeout (a dead one).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.probes = Counter(
            "echoprobe_exporter_probes",
            "Probes answered, by module and outcome",
            ["module", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "echoprobe_exporter_probe_duration_seconds",
            "Duration of the probes answered (as reported in probe_duration_seconds)",
            ["module"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "echoprobe_exporter_probes_in_flight",
            "Associations under way or waiting for a slot",
            registry=registry,
        )
        self.shared = Counter(
            "echoprobe_exporter_probes_shared",
            "Probe requests answered with another probe's result",
            ["module", "how"],
            registry=registry,
        )
        self.refused = Counter(
            "echoprobe_exporter_requests_refused",
            "HTTP requests refused, by status code",
            ["code"],
            registry=registry,
        )
        self.reload_ok = Gauge(
            "echoprobe_exporter_config_last_reload_successful",
            "Whether the last configuration reload succeeded",
            registry=registry,
        )
        self.reload_time = Gauge(
            "echoprobe_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load",
            registry=registry,
        )
        self.build = Gauge(
            "echoprobe_exporter_build_info",
            "Always 1; the version of echoprobe as a label",
            ["version"],
            registry=registry,
        )
        self.build.labels(version=__version__).set(1)
