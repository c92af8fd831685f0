"""One probe's request and answer: the target, the time budget, the metrics of a `ProbeResult`.

Rules (after blackbox_exporter's handler and prober):
- The budget is `X-Prometheus-Scrape-Timeout-Seconds` minus the offset, capped by the module's
  timeout; without the header, the module's timeout. It becomes `Timeouts.total` and bounds
  every per-phase timeout, so the association ends before the scrape gives up on us.
- Each probe gets a fresh `CollectorRegistry` holding one collector that turns the result into
  metric families; the exposition is prometheus_client's. Nothing here touches the network: the
  DICOM work is `echoprobe.net.client.probe()`'s.
- A metric exists only when it means something: the phases that ran, the echo status when an
  echo was answered, the reject reasons when the peer rejected, TLS facts with TLS.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from echoprobe.fleet.targets import TargetSyntaxError, check_ae_title, parse_target
from echoprobe.monitoring.exporter.config import Module
from echoprobe.net.addresses import format_address
from echoprobe.options import Timeouts
from echoprobe.results import PHASES, Outcome, ProbeResult

MAX_TARGET_LENGTH: Final = 300  # an AE title, "@", a host name of 253 characters, a port
MIN_BUDGET: Final = 0.05
_DEFAULTS: Final = Timeouts()

# Python's ssl spells versions "TLSv1.3"; blackbox_exporter's metric says "TLS 1.3".
_TLS_VERSIONS: Final = {
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
    "SSLv3": "SSL 3.0",
}


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where one probe goes: the module's port and called AE unless the target names them."""

    host: str
    port: int
    called_ae: str
    spec: str

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def label(self) -> str:
        return f"{self.called_ae}@{self.address}"


def parse_probe_target(text: str, module: Module) -> ProbeTarget:
    """`[CALLED_AE@]host[:port]` → `ProbeTarget`; raises `TargetSyntaxError`."""
    if len(text) > MAX_TARGET_LENGTH:
        raise TargetSyntaxError(f"target longer than {MAX_TARGET_LENGTH} characters")
    target = parse_target(text)
    rest = text.strip().rpartition("@")[2]
    has_port = ("]:" in rest) if rest.startswith("[") else rest.count(":") == 1
    called = target.called_ae or module.dicom.called_ae
    return ProbeTarget(
        host=target.host,
        port=target.port if has_port else module.dicom.port,
        called_ae=check_ae_title(called, "called AE title"),
        spec=text.strip(),
    )


def probe_budget(header: str | None, offset: float, module_timeout: float) -> float:
    """Seconds the probe may take; ValueError when the header is not a positive number."""
    if header is None:
        return module_timeout
    try:
        scrape = float(header)
    except ValueError:
        raise ValueError(f"invalid X-Prometheus-Scrape-Timeout-Seconds {header[:40]!r}") from None
    if not (math.isfinite(scrape) and scrape > 0):
        raise ValueError(f"invalid X-Prometheus-Scrape-Timeout-Seconds {header[:40]!r}")
    # An offset as large as the scrape timeout itself would leave nothing: keep half of it.
    budget = scrape - offset if scrape > offset else scrape / 2
    return max(min(budget, module_timeout), MIN_BUDGET)


def probe_timeouts(budget: float) -> Timeouts:
    """The library's per-phase timeouts, each cut to fit in `budget`, which is the total."""

    def cut(value: float | None) -> float:
        return budget if value is None else min(value, budget)

    return Timeouts(
        connect=cut(_DEFAULTS.connect),
        tls=cut(_DEFAULTS.tls),
        acse=cut(_DEFAULTS.acse),
        dimse=cut(_DEFAULTS.dimse),
        release=cut(_DEFAULTS.release),
        total=budget,
    )


def expired_result(target: ProbeTarget, module: Module, elapsed: float, why: str) -> ProbeResult:
    """The record of a probe that did not finish within the budget."""
    return ProbeResult(
        target=target.spec,
        host=target.host,
        port=target.port,
        called_ae=target.called_ae,
        calling_ae=module.dicom.calling_ae,
        outcome=Outcome.DEADLINE_EXCEEDED,
        timings_ms={"total": round(elapsed * 1000.0, 3)},
        error=why,
    )


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    if labels is None:
        return GaugeMetricFamily(name, doc, value=value)
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _not_after(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class ProbeMetrics:
    """A collector of one probe's result (registered in a fresh registry per probe)."""

    __slots__ = ("cached", "result")

    def __init__(self, result: ProbeResult, *, cached: bool) -> None:
        self.result = result
        self.cached = cached

    def collect(self) -> Iterator[Metric]:
        r = self.result
        yield _gauge("probe_success", "Whether the C-ECHO probe succeeded", float(r.ok))
        yield _gauge(
            "probe_duration_seconds",
            "How long the probe took to complete in seconds",
            _seconds(r.timings_ms.get("total", 0.0)),
        )
        yield _gauge("probe_dicom_outcome", "The probe's outcome", 1.0, {"outcome": str(r.outcome)})
        phases = GaugeMetricFamily(
            "probe_dicom_phase_duration_seconds",
            "Duration of each phase of the association that ran",
            labels=["phase"],
        )
        for phase in PHASES:
            if phase in r.timings_ms:
                phases.add_metric([phase], _seconds(r.timings_ms[phase]))
        yield phases
        if r.status is not None:
            yield _gauge(
                "probe_dicom_echo_status", "DIMSE status of the C-ECHO response", float(r.status)
            )
        reject = [r.detail.get(key) for key in ("result", "source", "reason")]
        # Only an A-ASSOCIATE-RJ carries all three (an A-ABORT has source and reason only).
        if all(isinstance(v, int) and not isinstance(v, bool) for v in reject):
            yield _gauge(
                "probe_dicom_association_rejected",
                "A-ASSOCIATE-RJ result, source and reason (PS3.8 Table 9-21)",
                1.0,
                {"result": str(reject[0]), "source": str(reject[1]), "reason": str(reject[2])},
            )
        peer = r.peer
        if peer is not None:
            if peer.implementation_class_uid is not None:
                yield _gauge(
                    "probe_dicom_peer_info",
                    "Implementation Class UID and Version Name the peer sent",
                    1.0,
                    {
                        "implementation_class_uid": peer.implementation_class_uid,
                        "implementation_version_name": peer.implementation_version_name or "",
                    },
                )
            if peer.max_pdu is not None:
                yield _gauge(
                    "probe_dicom_max_pdu_bytes",
                    "Maximum PDU length the peer can receive (0: no limit)",
                    float(peer.max_pdu),
                )
            expiry = _not_after(peer.tls_peer_not_after)
            if expiry is not None:
                yield _gauge(
                    "probe_ssl_earliest_cert_expiry",
                    "Unix time of the peer certificate's notAfter",
                    expiry,
                )
            if peer.tls_protocol:
                version = _TLS_VERSIONS.get(peer.tls_protocol, peer.tls_protocol)
                yield _gauge(
                    "probe_tls_version_info", "The TLS version used", 1.0, {"version": version}
                )
        yield _gauge(
            "probe_dicom_cached",
            "1 when the result was shared with an identical probe or served from min_interval",
            float(self.cached),
        )


def render_metrics(result: ProbeResult, *, cached: bool, accept: str | None) -> tuple[bytes, str]:
    """The exposition of one probe (body, content type), in the format `accept` asks for."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeMetrics(result, cached=cached))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def probe_log(result: ProbeResult, module: Module, budget: float, how: str | None) -> list[str]:
    """The probe told as logfmt lines, for `debug=true` and the landing page's logs."""

    def quote(value: object) -> str:
        text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{text}"'

    lines = [
        f'level=info msg="Beginning probe" probe={module.prober} module={module.name} '
        f"target={quote(result.target)} timeout_seconds={budget:.3f}"
    ]
    if how is not None:
        lines.append(f'level=info msg="Result shared" how={how}')
    for phase in PHASES:
        if phase in result.timings_ms:
            lines.append(
                f'level=info msg="Phase done" phase={phase} '
                f"duration_seconds={result.timings_ms[phase] / 1000.0:.6f}"
            )
    peer = result.peer
    if peer is not None:
        lines.append(
            f'level=info msg="Peer" address={quote(peer.address or "")} '
            f"implementation_class_uid={quote(peer.implementation_class_uid or '')} "
            f"implementation_version_name={quote(peer.implementation_version_name or '')} "
            f"max_pdu={peer.max_pdu}"
        )
        if peer.tls_protocol:
            lines.append(
                f'level=info msg="TLS" version={quote(peer.tls_protocol)} '
                f"cipher={quote(peer.tls_cipher or '')} "
                f"subject={quote(peer.tls_peer_subject or '')} "
                f"not_after={quote(peer.tls_peer_not_after or '')}"
            )
    details = " ".join(f"{k}={quote(v)}" for k, v in sorted(result.detail.items()))
    total = result.timings_ms.get("total", 0.0) / 1000.0
    if result.ok:
        lines.append(f'level=info msg="Probe succeeded" duration_seconds={total:.6f} {details}')
    else:
        lines.append(
            f'level=error msg="Probe failed" outcome={result.outcome} '
            f"phase={result.phase or ''} error={quote(result.error or '')} "
            f"duration_seconds={total:.6f} {details}".rstrip()
        )
    return lines


def _seconds(milliseconds: float) -> float:
    # Records keep milliseconds to the microsecond: the same resolution in seconds, without
    # the binary noise of the division (1.7999999999999997e-05).
    return round(milliseconds / 1000.0, 6)
