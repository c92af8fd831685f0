"""Exact merging of load reports: several worker processes, several runs, several machines.

    merged = merge_reports([("worker 0", a), ("worker 1", b)])
    merged = merge_reports([(path, report_from_dict(json.load(f))) ...])

Rules:
- Counts add; outcomes and failure reasons add key by key; latency histograms merge bucket by
  bucket (never by averaging percentiles), so a merged percentile is what one run measuring
  every association would have reported.
- A report read back from JSON (`report_from_dict`) carries the same buckets it was written
  with: each bucket is recovered from its bounds, so a JSON round trip loses nothing but the
  last bits of the latency sum.
- Throughput windows overlap (the parts run at the same time): the merged window is the
  longest of them. Time series are merged tick by tick (by index); a tick's percentiles come
  from its merged histogram when the parts gave one, else from the worst part (an upper bound).
- Every part is listed (`parts`) with its own counts, so one slow or failing generator can
  be seen behind the totals; a part that gave no report is named in `missing`.
- Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load_model import HISTOGRAMS, LoadReport, TickStats
from echoprobe.fleet.load_ports import PortFacts


class ReportFormatError(ValueError):
    """A JSON document that is not a load report (or not one this version can merge)."""


# --- histograms -------------------------------------------------------------------------------


def histogram_from_dict(data: Mapping[str, Any]) -> LatencyHistogram:
    """The histogram `LatencyHistogram.to_dict(buckets=True)` described, bucket for bucket."""
    rows = data.get("buckets")
    if not isinstance(rows, list):
        raise ReportFormatError("a latency histogram without its buckets cannot be merged")
    mean = data.get("mean")
    hist = LatencyHistogram.from_buckets(
        [_bucket_row(row) for row in rows],
        precision=_precision(rows),
        minimum=_float_or_none(data.get("min")),
        maximum=_float_or_none(data.get("max")),
    )
    if data.get("count") != hist.count:
        raise ReportFormatError("a histogram's buckets do not add up to its count")
    hist.total = float(mean) * hist.count if isinstance(mean, int | float) else 0.0
    return hist


def _precision(rows: list[Any]) -> float:
    for row in rows:
        low, high, _ = _bucket_row(row)
        if low > 0:
            return round(high / low - 1.0, 9)
    return LatencyHistogram().precision  # only the lowest bucket: any precision will do


def _bucket_row(row: Any) -> tuple[float, float, int]:
    if not (isinstance(row, list) and len(row) == 3):
        raise ReportFormatError(f"not a histogram bucket: {row!r}")
    low, high, n = row
    if not (
        isinstance(low, int | float)
        and isinstance(high, int | float)
        and isinstance(n, int)
        and 0 <= low < high
        and n >= 0
    ):
        raise ReportFormatError(f"not a histogram bucket: {row!r}")
    return float(low), float(high), n


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def merge_histograms(parts: Iterable[LatencyHistogram]) -> LatencyHistogram:
    merged: LatencyHistogram | None = None
    for hist in parts:
        if merged is None:
            merged = LatencyHistogram(hist.precision)
        merged.merge(hist)
    return merged if merged is not None else LatencyHistogram()


# --- reports from JSON ------------------------------------------------------------------------


def report_from_dict(data: Mapping[str, Any]) -> LoadReport:
    """A `LoadReport` from its JSON (`echoprobe load --json`); raises `ReportFormatError`."""
    if data.get("kind", "load") != "load":
        raise ReportFormatError(f"not a load report (kind {data.get('kind')!r})")
    try:
        cpu = data["cpu"]
        ports = data["ports"]
        port_range = ports.get("port_range")
        return LoadReport(
            config=dict(data["config"]),
            started_at=str(data["started_at"]),
            wall_seconds=float(data["wall_seconds"]),
            window_seconds=float(data["window_seconds"]),
            attempted=int(data["attempted"]),
            succeeded=int(data["succeeded"]),
            failed=int(data["failed"]),
            not_started=int(data["not_started"]),
            cancelled=int(data["cancelled"]),
            echoes=int(data["echoes"]),
            echo_window_seconds=float(data["echo_window_seconds"]),
            outcomes={str(k): int(v) for k, v in data["outcomes"].items()},
            reasons={str(k): int(v) for k, v in data["reasons"].items()},
            histograms={
                **{name: LatencyHistogram() for name in HISTOGRAMS},  # JSON omits empty ones
                **{str(name): histogram_from_dict(h) for name, h in data["latency_ms"].items()},
            },
            series=[_tick_from_dict(t) for t in data["series"]],
            cpu_seconds=float(cpu["seconds"]),
            cpu_fraction=float(cpu["fraction"]),
            cpu_peak=float(cpu["peak"]),
            ports=PortFacts(
                port_range=(int(port_range[0]), int(port_range[1])) if port_range else None,
                tw_reuse=ports.get("tw_reuse"),
                loopback=bool(ports.get("loopback")),
                source_addresses=int(ports.get("source_addresses") or 0),
            ),
            time_wait_at_end=ports.get("time_wait_at_end"),
            port_errors=int(ports.get("port_errors") or 0),
            warnings=[str(w) for w in data["warnings"]],
            warmup_associations=int(data["warmup_associations"]),
            interrupted=bool(data["interrupted"]),
            echoes_total=int(data.get("echoes_total") or 0),
            processes=int(data.get("processes") or 1),
            parts=[dict(p) for p in data.get("parts") or ()],
            missing=[str(m) for m in data.get("missing") or ()],
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, ReportFormatError):
            raise
        raise ReportFormatError(f"not a load report: {type(exc).__name__}: {exc}") from exc


def _tick_from_dict(data: Mapping[str, Any]) -> TickStats:
    return TickStats(
        t=float(data["t"]),
        seconds=float(data["seconds"]),
        warmup=bool(data["warmup"]),
        level=float(data["level"]),
        started=int(data["started"]),
        succeeded=int(data["succeeded"]),
        failed=int(data["failed"]),
        echoes=int(data["echoes"]),
        in_flight=int(data["in_flight"]),
        cpu=float(data["cpu"]),
        p50=_float_or_none(data.get("p50")),
        p90=_float_or_none(data.get("p90")),
        p99=_float_or_none(data.get("p99")),
        max=_float_or_none(data.get("max")),
        failures={str(k): int(v) for k, v in (data.get("failures") or {}).items()},
        draining=bool(data.get("draining")),
    )


# --- merging ----------------------------------------------------------------------------------


def merge_ticks(ticks: Sequence[TickStats], latency: LatencyHistogram | None = None) -> TickStats:
    """One tick of several parts that ran at the same time (`latency`: their merged tick
    histogram, for exact percentiles)."""
    failures: Counter[str] = Counter()
    for tick in ticks:
        failures.update(tick.failures)
    if latency is not None and latency.count:
        pct = latency.percentiles((50.0, 90.0, 99.0))
        p50, p90, p99, top = pct[50.0], pct[90.0], pct[99.0], latency.max
    else:
        p50, p90, p99, top = (
            _worst(t.p50 for t in ticks),
            _worst(t.p90 for t in ticks),
            _worst(t.p99 for t in ticks),
            _worst(t.max for t in ticks),
        )
    return TickStats(
        t=max(t.t for t in ticks),
        seconds=max(t.seconds for t in ticks),
        warmup=all(t.warmup for t in ticks),
        level=round(sum(t.level for t in ticks), 3),
        started=sum(t.started for t in ticks),
        succeeded=sum(t.succeeded for t in ticks),
        failed=sum(t.failed for t in ticks),
        echoes=sum(t.echoes for t in ticks),
        in_flight=sum(t.in_flight for t in ticks),
        cpu=sum(t.cpu for t in ticks),
        p50=p50,
        p90=p90,
        p99=p99,
        max=top,
        failures=dict(failures),
        draining=all(t.draining for t in ticks),
    )


def _worst(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def part_summary(label: str, report: LoadReport) -> dict[str, Any]:
    """One line of the per-source breakdown."""
    return {
        "source": label,
        "status": "interrupted" if report.interrupted else "completed",
        "started_at": report.started_at,
        "attempted": report.attempted,
        "succeeded": report.succeeded,
        "failed": report.failed,
        "cancelled": report.cancelled,
        "not_started": report.not_started,
        "assoc_per_s": round(report.assoc_per_s, 2),
        "p50": report.percentile("association", 50) if "association" in report.histograms else None,
        "p99": report.percentile("association", 99) if "association" in report.histograms else None,
        "cpu_seconds": round(report.cpu_seconds, 4),
        "cpu_fraction": round(report.cpu_fraction, 4),
        "host": report.config.get("host"),
        "port": report.config.get("port"),
    }


def merge_reports(
    named: Sequence[tuple[str, LoadReport]],
    *,
    config: dict[str, Any] | None = None,
    tick_latencies: Sequence[Sequence[LatencyHistogram | None]] | None = None,
    missing: Sequence[str] = (),
    extra_parts: Sequence[dict[str, Any]] = (),
) -> LoadReport:
    """One report of parts that ran at the same time. `config` defaults to the first part's;
    `tick_latencies[i][k]` is part i's whole-association histogram of tick k (exact tick
    percentiles); `missing` names parts that gave no report (listed, and the run is not ok);
    `extra_parts` are breakdown lines for them."""
    if not named:
        raise ValueError("nothing to merge")
    reports = [r for _, r in named]
    first = reports[0]
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for report in reports:
        outcomes.update(report.outcomes)
        reasons.update(report.reasons)
    names = list(dict.fromkeys(n for r in reports for n in r.histograms))
    histograms = {
        name: merge_histograms(r.histograms[name] for r in reports if name in r.histograms)
        for name in names
    }
    series = _merge_series(reports, tick_latencies)
    measured = [t for t in series if not t.warmup] or series
    parts: list[dict[str, Any]] = []
    for label, report in named:
        if report.parts:  # already a merge: keep its own breakdown, under its name
            parts.extend({**p, "source": f"{label} / {p.get('source')}"} for p in report.parts)
        else:
            parts.append(part_summary(label, report))
    parts.extend(extra_parts)
    warnings: list[str] = []
    for label, report in named:
        warnings.extend(f"{label}: {w}" for w in report.warnings)
    warnings = list(dict.fromkeys(warnings))
    for name in missing:
        warnings.insert(0, f"{name} gave no report: its associations are not in the totals")
    time_waits = [r.time_wait_at_end for r in reports if r.time_wait_at_end is not None]
    return LoadReport(
        config=dict(config if config is not None else first.config),
        started_at=min(r.started_at for r in reports),
        wall_seconds=max(r.wall_seconds for r in reports),
        window_seconds=max(r.window_seconds for r in reports),
        attempted=sum(r.attempted for r in reports),
        succeeded=sum(r.succeeded for r in reports),
        failed=sum(r.failed for r in reports),
        not_started=sum(r.not_started for r in reports),
        cancelled=sum(r.cancelled for r in reports),
        echoes=sum(r.echoes for r in reports),
        echo_window_seconds=max(r.echo_window_seconds for r in reports),
        outcomes=dict(outcomes.most_common()),
        reasons=dict(reasons.most_common()),
        histograms=histograms,
        series=series,
        cpu_seconds=sum(r.cpu_seconds for r in reports),
        cpu_fraction=sum(r.cpu_fraction for r in reports),
        cpu_peak=max((t.cpu for t in measured), default=sum(r.cpu_peak for r in reports)),
        ports=PortFacts(
            port_range=first.ports.port_range,
            tw_reuse=first.ports.tw_reuse,
            loopback=first.ports.loopback,
            source_addresses=sum(r.ports.source_addresses for r in reports),
        ),
        time_wait_at_end=max(time_waits) if time_waits else None,
        port_errors=sum(r.port_errors for r in reports),
        warnings=warnings,
        warmup_associations=sum(r.warmup_associations for r in reports),
        interrupted=any(r.interrupted for r in reports),
        echoes_total=sum(r.echoes_total for r in reports),
        processes=sum(r.processes for r in reports) + len(missing),
        parts=parts,
        missing=[m for r in reports for m in r.missing] + list(missing),
    )


def _merge_series(
    reports: Sequence[LoadReport],
    tick_latencies: Sequence[Sequence[LatencyHistogram | None]] | None,
) -> list[TickStats]:
    longest = max(len(r.series) for r in reports)
    out: list[TickStats] = []
    for k in range(longest):
        ticks = [r.series[k] for r in reports if k < len(r.series)]
        latency: LatencyHistogram | None = None
        if tick_latencies is not None:
            found = [
                lat[k]
                for i, lat in enumerate(tick_latencies)
                if k < len(lat) and k < len(reports[i].series)
            ]
            if len(found) == len(ticks) and all(h is not None for h in found):
                latency = merge_histograms(h for h in found if h is not None)
        out.append(merge_ticks(ticks, latency))
    return out


__all__ = [
    "ReportFormatError",
    "histogram_from_dict",
    "merge_histograms",
    "merge_reports",
    "merge_ticks",
    "part_summary",
    "report_from_dict",
]
