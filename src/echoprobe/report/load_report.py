"""What a load run shows: the summary table (rich), the JSON document, the HTML report.

Rules:
- The HTML page is self-contained: inline CSS and inline SVG drawn here, no script, no
  external URL of any kind (it must open on an air-gapped workstation). Hovering a point shows
  its value (SVG `<title>`).
- JSON is `LoadReport.to_dict()` / `CapacityReport.to_dict()` plus a `kind` and the version;
  the histograms carry their buckets, so any percentile can be recomputed.
- Nothing here measures or reads a clock; only the writers touch files.
"""

# ruff: noqa: RUF001  (the pages print en dashes and multiplication signs)

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from echoprobe import __version__
from echoprobe.fleet.capacity import CapacityReport
from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load import LoadReport, TickStats
from echoprobe.report.table import OUTCOME_STYLE

PHASE_ROWS = (
    ("connect", "connect"),
    ("associate", "associate (RQ → AC)"),
    ("echo", "echo (each C-ECHO)"),
    ("release", "release (RQ → RP)"),
    ("association", "whole association"),
    ("start_lag", "start lag (open loop)"),
)


# --- numbers ----------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _level_text(mode: str, level: float | None) -> str:
    if level is None:
        return "–"
    return f"{level:,.0f} at once" if mode == "concurrency" else f"{level:,.0f}/s"


def describe_shape(config: dict[str, Any]) -> str:
    """ "closed loop, 64 at once, 10 s after 1 s warm-up, 1 echo per association"."""
    parts = []
    ramp = config.get("ramp")
    if config["mode"] == "concurrency":
        level = f"{ramp[0]:g} → {ramp[1]:g} at once" if ramp else f"{config['concurrency']} at once"
        parts.append(f"closed loop, {level}")
    else:
        level = f"{ramp[0]:g} → {ramp[1]:g}/s" if ramp else f"{config['rate']:g}/s"
        parts.append(f"open loop, {config.get('arrivals') or 'constant'} arrivals, {level}")
    bounds = []
    if config.get("associations"):
        bounds.append(f"{config['associations']:,} associations")
    if config.get("duration"):
        bounds.append(f"{config['duration']:g} s")
    parts.append(" or ".join(bounds))
    if config.get("warmup"):
        parts.append(f"after {config['warmup']:g} s warm-up")
    repeat = config.get("repeat", 1)
    parts.append(f"{repeat:,} echo{'es' if repeat != 1 else ''} per association")
    if config.get("tls"):
        parts.append(f"TLS: {config['tls']}")
    if config.get("source_addresses"):
        parts.append(f"{len(config['source_addresses'])} source addresses")
    if (workers := config.get("workers") or 1) > 1:
        parts.append(f"{workers} worker processes")
    if config.get("merged"):
        parts.append(f"{len(config['merged'])} reports merged")
    return ", ".join(parts)


# --- terminal summary -------------------------------------------------------------------------


def latency_table(histograms: dict[str, LatencyHistogram], title: str = "latency (ms)") -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("phase")
    for name in ("count", "min", "p50", "p90", "p99", "p99.9", "max", "mean"):
        table.add_column(name, justify="right")
    for key, label in PHASE_ROWS:
        h = histograms.get(key)
        if h is None or not h.count:
            continue
        pct = h.percentiles()
        table.add_row(
            label,
            f"{h.count:,}",
            fmt_ms(h.min),
            fmt_ms(pct[50.0]),
            fmt_ms(pct[90.0]),
            fmt_ms(pct[99.0]),
            fmt_ms(pct[99.9]),
            fmt_ms(h.max),
            fmt_ms(h.mean),
        )
    return table


def outcomes_table(report: LoadReport, limit: int = 12) -> Table | None:
    if not report.reasons:
        return None
    table = Table(title="failures (the peer's own words)", title_justify="left", title_style="bold")
    table.add_column("count", justify="right")
    table.add_column("outcome")
    table.add_column("reason")
    for index, (key, n) in enumerate(report.reasons.items()):
        if index >= limit:
            rest = sum(list(report.reasons.values())[limit:])
            table.add_row(f"{rest:,}", "…", f"{len(report.reasons) - limit} more reasons")
            break
        outcome, _, reason = key.partition(": ")
        table.add_row(f"{n:,}", Text(outcome, style=OUTCOME_STYLE.get(outcome, "")), reason)
    return table


def parts_table(report: LoadReport) -> Table | None:
    """The per-source breakdown of a merged report (workers, runs, machines)."""
    if not report.parts:
        return None
    table = Table(title="by source", title_justify="left", title_style="bold")
    for name in ("source", "status", "attempted", "succeeded", "failed", "assoc/s", "p99 ms"):
        table.add_column(name, justify="left" if name in ("source", "status") else "right")
    for part in report.parts:
        status = str(part.get("status", ""))
        table.add_row(
            str(part.get("source", "")),
            Text(status, style="bold red" if status == "died" else ""),
            f"{int(part.get('attempted') or 0):,}",
            f"{int(part.get('succeeded') or 0):,}",
            f"{int(part.get('failed') or 0):,}",
            fmt_rate(float(part.get("assoc_per_s") or 0.0)) if "assoc_per_s" in part else "–",
            fmt_ms(part.get("p99")),
        )
    return table


def _cpu_unit_text(report: LoadReport) -> str:
    if report.config.get("repeat", 1) > 1 and (per_echo := report.cpu_us_per_echo) is not None:
        return f", {per_echo:,.1f} µs per C-ECHO"
    if (us := report.cpu_us_per_association) is not None:
        return f", {us:,.0f} µs per association"
    return ""


def render_load_summary(report: LoadReport, console: Console) -> None:
    """The end-of-run summary: shape, throughput, latency per phase, failures, warnings."""
    cfg = report.config
    head = Text()
    head.append("echoprobe load ", style="bold")
    head.append(f"{cfg['host']}:{cfg['port']}  ")
    head.append(describe_shape(cfg), style="dim")
    console.print(head)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    status = Text("completed" if not report.interrupted else "interrupted")
    status.stylize("green" if report.ok else ("yellow" if report.interrupted else "red"))
    table.add_row("run", status)
    table.add_row(
        "associations",
        f"{report.attempted:,} measured: {report.succeeded:,} succeeded, "
        f"{report.failed:,} failed"
        + (f", {report.cancelled:,} cancelled" if report.cancelled else "")
        + (f", {report.not_started:,} not started" if report.not_started else "")
        + (f" (+{report.warmup_associations:,} in warm-up)" if report.warmup_associations else ""),
    )
    table.add_row(
        "throughput",
        f"{fmt_rate(report.assoc_per_s)} associations/s, {fmt_rate(report.echoes_per_s)} "
        f"echoes/s, {fmt_rate(report.errors_per_s)} errors/s over "
        f"{report.window_seconds:.2f} s",
    )
    full = max((t.seconds for t in report.series), default=0.0)
    peak = max(
        (t.assoc_per_s for t in report.series if not t.warmup and t.seconds >= 0.5 * full),
        default=0.0,
    )
    if peak:
        table.add_row("peak interval", f"{fmt_rate(peak)} associations/s")
    summed = f" (summed over {report.processes} processes)" if report.processes > 1 else ""
    cpu = Text(
        f"{report.cpu_fraction:.0%} of one core on average{summed}, "
        f"{report.cpu_peak:.0%} at peak "
        f"({report.cpu_seconds:.2f} CPU-s" + _cpu_unit_text(report) + ")"
    )
    if report.generator_bound:
        cpu.stylize("bold yellow")
    table.add_row("generator CPU", cpu)
    ports = report.ports
    port_text = f"{ports.ports:,} local ports" if ports.ports else "local ports unknown"
    if report.time_wait_at_end is not None:
        port_text += f", {report.time_wait_at_end:,} in TIME_WAIT to the SCP at the end"
    if ports.reuses_time_wait:
        port_text += " (reused on loopback: tcp_tw_reuse)"
    elif ports.sustainable_rate:
        port_text += f", ≈{ports.sustainable_rate:,.0f} new connections/s sustainable"
    table.add_row("ports", port_text)
    console.print(table)
    console.print(latency_table(report.histograms))
    by_source = parts_table(report)
    if by_source is not None:
        console.print(by_source)
    failures = outcomes_table(report)
    if failures is not None:
        console.print(failures)
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


def capacity_table(cap: CapacityReport) -> Table:
    table = Table(title="capacity search", title_justify="left", title_style="bold")
    table.add_column(cap.mode, justify="right")
    table.add_column("assoc/s", justify="right")
    table.add_column("echoes/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("CPU", justify="right")
    table.add_column("verdict")
    best = cap.best
    for step in sorted(cap.steps, key=lambda s: s.level):
        if step.ok:
            verdict = Text("held", style="green")
            if step.level == cap.capacity:
                verdict.append("  ◀ capacity", style="bold green")
            if best is not None and step is best and step.level != cap.capacity:
                verdict.append("  ◀ best throughput", style="green")
        else:
            # One line: what failed and how much; the peer's words are under the table.
            verdict = Text(_short_reason(step.reason or "failed"), style="red")
        table.add_row(
            f"{step.level:,g}",
            fmt_rate(step.assoc_per_s),
            fmt_rate(step.echoes_per_s),
            fmt_ms(step.p50),
            fmt_ms(step.p99),
            f"{step.failed:,}",
            f"{step.cpu_fraction:.0%}",
            verdict,
        )
    return table


def _short_reason(reason: str) -> str:
    """A failed step's verdict in one line: from `rejected (6,880 of 11,459): rejected_transient:
    association rejected: …` to `rejected 60% (rejected_transient)`."""
    head, _, rest = reason.partition(": ")
    kind = head.split(" (", 1)[0]
    counts = head[len(kind) :].strip(" ()").replace(",", "").split(" of ")
    share = ""
    if len(counts) == 2 and all(c.isdigit() for c in counts) and int(counts[1]):
        share = f" {int(counts[0]) / int(counts[1]):.0%}"
    outcome = rest.split(":", 1)[0].strip()
    if not rest or " " in outcome:
        return reason if len(reason) <= 48 else reason[:47] + "…"
    return f"{kind}{share} ({outcome})"


def render_capacity_summary(cap: CapacityReport, console: Console) -> None:
    cfg = cap.config
    head = Text()
    head.append("echoprobe load --find-capacity ", style="bold")
    head.append(f"{cfg['host']}:{cfg['port']}  ")
    head.append(f"{cap.mode}, steps of {cfg['step_duration']:g} s", style="dim")
    console.print(head)
    console.print(capacity_table(cap))
    line = Text()
    if cap.capacity is None:
        line.append("no capacity found: ", style="bold red")
        line.append(f"even {_level_text(cap.mode, cap.first_failure)} failed: {cap.stop_reason}")
    else:
        line.append("capacity: ", style="bold")
        at_least = "" if cap.first_failure is not None else "≥ "
        line.append(at_least + _level_text(cap.mode, cap.capacity), style="bold green")
        if cap.at_capacity is not None:
            line.append(
                f" ({fmt_rate(cap.at_capacity.assoc_per_s)} associations/s, p99 "
                f"{fmt_ms(cap.at_capacity.percentile('association', 99))} ms)"
            )
        line.append(f"; stopped: {cap.stop_reason}")
    console.print(line)
    if cap.best is not None and cap.best.level != cap.capacity:
        console.print(
            f"best throughput: {fmt_rate(cap.best.assoc_per_s)} associations/s at "
            f"{_level_text(cap.mode, cap.best.level)}"
        )
    for warning in cap.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


# --- JSON -------------------------------------------------------------------------------------


def to_json(result: LoadReport | CapacityReport) -> dict[str, Any]:
    kind = "capacity" if isinstance(result, CapacityReport) else "load"
    return {"kind": kind, "echoprobe": __version__, **result.to_dict()}


def write_json(result: LoadReport | CapacityReport, path: str | Path) -> None:
    text = json.dumps(to_json(result), indent=1, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


# --- SVG charts -------------------------------------------------------------------------------

COLORS = ("#1f6feb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2")
_W, _H = 1080, 300
_ML, _MR, _MT, _MB = 70, 20, 34, 42


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 0.001:
        if value >= lo - step * 0.001:
            ticks.append(round(value, 10))
        value += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exp in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**exp
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def _tick_label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


class _Axes:
    """Maps data to pixels for one chart (linear or log on each axis)."""

    def __init__(
        self,
        x: tuple[float, float],
        y: tuple[float, float],
        *,
        log_x: bool = False,
        log_y: bool = False,
    ) -> None:
        self.log_x, self.log_y = log_x, log_y
        self.x0, self.x1 = self._range(x, log_x)
        self.y0, self.y1 = self._range(y, log_y)

    @staticmethod
    def _range(span: tuple[float, float], log: bool) -> tuple[float, float]:
        lo, hi = span
        if log:
            lo = max(lo, 1e-6)
            hi = max(hi, lo * 1.0001)
            return math.log10(lo), math.log10(hi)
        if hi <= lo:
            hi = lo + 1.0
        return lo, hi

    def px(self, x: float) -> float:
        v = math.log10(max(x, 1e-6)) if self.log_x else x
        return _ML + (v - self.x0) / (self.x1 - self.x0) * (_W - _ML - _MR)

    def py(self, y: float) -> float:
        v = math.log10(max(y, 1e-6)) if self.log_y else y
        return _H - _MB - (v - self.y0) / (self.y1 - self.y0) * (_H - _MT - _MB)

    def x_ticks(self) -> list[float]:
        if self.log_x:
            return _log_ticks(10**self.x0, 10**self.x1)
        return _nice_ticks(self.x0, self.x1)

    def y_ticks(self) -> list[float]:
        if self.log_y:
            return _log_ticks(10**self.y0, 10**self.y1)
        return _nice_ticks(self.y0, self.y1)


def _frame(axes: _Axes, title: str, x_label: str, y_label: str, body: list[str]) -> str:
    out = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{_e(title)}">',
        f'<text x="{_ML}" y="20" class="title">{_e(title)}</text>',
    ]
    for v in axes.y_ticks():
        y = axes.py(v)
        if _MT - 1 <= y <= _H - _MB + 1:
            out.append(f'<line x1="{_ML}" x2="{_W - _MR}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
            out.append(
                f'<text x="{_ML - 6}" y="{y + 4:.1f}" class="tick" '
                f'text-anchor="end">{_e(_tick_label(v))}</text>'
            )
    for v in axes.x_ticks():
        x = axes.px(v)
        if _ML - 1 <= x <= _W - _MR + 1:
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_MT}" y2="{_H - _MB}" class="grid"/>')
            out.append(
                f'<text x="{x:.1f}" y="{_H - _MB + 16}" class="tick" '
                f'text-anchor="middle">{_e(_tick_label(v))}</text>'
            )
    out.append(
        f'<rect x="{_ML}" y="{_MT}" width="{_W - _ML - _MR}" height="{_H - _MT - _MB}" '
        'class="plot"/>'
    )
    out.extend(body)
    out.append(
        f'<text x="{(_ML + _W - _MR) / 2}" y="{_H - 6}" class="label" '
        f'text-anchor="middle">{_e(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{(_MT + _H - _MB) / 2}" class="label" text-anchor="middle" '
        f'transform="rotate(-90 14 {(_MT + _H - _MB) / 2})">{_e(y_label)}</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _legend(names: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{color}"></span>'
        f"{_e(name)}</span>"
        for name, color in names
    )
    return f'<div class="legend">{items}</div>'


Series = tuple[str, str, list[tuple[float, float]]]


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    shade: tuple[float, float] | None = None,
    shade_label: str = "warm-up",
    y_unit: str = "",
    markers: bool = False,
    log_x: bool = False,
) -> str:
    """Lines (name, color, points) on shared axes; an optional shaded x-range."""
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return f'<p class="empty">{_e(title)}: no data</p>'
    xs = [p[0] for p in points]
    ys = [p[1] for p in points if not log_y or p[1] > 0]
    y_lo = min(ys) * 0.8 if log_y and ys else 0.0
    y_hi = max(ys) * (1.3 if log_y else 1.08) if ys else 1.0
    x_span = (min(xs) / 1.15, max(xs) * 1.15) if log_x else (min(*xs, 0.0), max(xs))
    axes = _Axes(x_span, (y_lo, y_hi), log_x=log_x, log_y=log_y)
    body: list[str] = []
    if shade is not None and shade[1] > shade[0]:
        x0, x1 = axes.px(shade[0]), axes.px(shade[1])
        body.append(
            f'<rect x="{x0:.1f}" y="{_MT}" width="{max(x1 - x0, 0):.1f}" '
            f'height="{_H - _MT - _MB}" class="shade"><title>{_e(shade_label)}</title></rect>'
        )
    for name, color, pts in series:
        usable = [(x, y) for x, y in pts if not log_y or y > 0]
        if not usable:
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{axes.px(x):.1f},{axes.py(y):.1f}"
            for i, (x, y) in enumerate(usable)
        )
        body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        radius = 3.5 if markers or len(usable) <= 40 else 2.0
        for x, y in usable:
            body.append(
                f'<circle cx="{axes.px(x):.1f}" cy="{axes.py(y):.1f}" r="{radius}" '
                f'fill="{color}"><title>{_e(name)}: {_e(_tick_label(round(y, 3)))}{_e(y_unit)}'
                f" at {x:g}</title></circle>"
            )
    svg = _frame(axes, title, x_label, y_label, body)
    return svg + _legend([(n, c) for n, c, _ in series])


def _rebin(
    h: LatencyHistogram, lo: float, hi: float, bins: int = 72
) -> list[tuple[float, float, int]]:
    """The histogram's fine buckets merged into `bins` log-spaced bins between lo and hi
    (shared by every histogram of a chart, so their bars line up)."""
    rows = h.buckets()
    if not rows:
        return []
    edges = [lo * (hi / lo) ** (i / bins) for i in range(bins + 1)]
    counts = [0] * bins
    for low, high, n in rows:
        mid = math.sqrt(max(low, 1e-3) * high)
        index = min(bins - 1, max(0, int(bins * math.log(mid / lo) / math.log(hi / lo))))
        counts[index] += n
    return [(edges[i], edges[i + 1], counts[i]) for i in range(bins) if counts[i]]


def histogram_chart(histograms: Sequence[tuple[str, str, LatencyHistogram]], title: str) -> str:
    """Latency distributions as log-x step outlines, with p50/p99 markers."""
    used = [(n, c, h) for n, c, h in histograms if h.count]
    if not used:
        return f'<p class="empty">{_e(title)}: no data</p>'
    lo = max(min(h.buckets()[0][0] for _, _, h in used), 1e-3)
    hi = max(*(h.buckets()[-1][1] for _, _, h in used), lo * 1.01)
    binned = [(n, c, h, _rebin(h, lo, hi)) for n, c, h in used]
    lo, hi = lo * 0.8, hi * 1.25
    top = max(n / h.count for _, _, h, rows in binned for *_, n in rows) * 100
    axes = _Axes((lo, hi), (0.0, top * 1.1), log_x=True)
    body: list[str] = []
    for order, (name, color, h, rows) in enumerate(binned):
        for low, high, n in rows:
            share = n / h.count * 100
            x0, x1 = axes.px(low), axes.px(high)
            y = axes.py(share)
            body.append(
                f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.5, 0.8):.1f}" '
                f'height="{axes.py(0) - y:.1f}" fill="{color}" fill-opacity="0.45" '
                f'stroke="{color}" stroke-width="0.6"><title>{_e(name)}: {n:,} '
                f"({share:.2f} %) between {fmt_ms(low)} and {fmt_ms(high)} ms</title></rect>"
            )
        for q, dash in ((50.0, "4 3"), (99.0, "1 3")):
            value = h.percentile(q)
            if value is None:
                continue
            x = axes.px(value)
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_MT}" y2="{_H - _MB}" stroke="{color}" '
                f'stroke-width="1.5" stroke-dasharray="{dash}"><title>{_e(name)} p{q:g}: '
                f"{fmt_ms(value)} ms</title></line>"
            )
            row = order * 2 + (0 if q == 50 else 1)
            body.append(
                f'<text x="{x + 3:.1f}" y="{_MT + 12 + 12 * row}" '
                f'class="mark" fill="{color}">p{q:g} {_e(fmt_ms(value))}</text>'
            )
    svg = _frame(axes, title, "latency (ms, log scale)", "% of values", body)
    return svg + _legend([(n, c) for n, c, _ in used])


# --- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
margin:0;background:#f6f8fa}
main{max-width:1120px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px}
.sub{color:#57606a;margin-bottom:14px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;
flex:1 1 auto;min-width:110px}
.card b{display:block;font-size:22px;white-space:nowrap}.card span{color:#57606a;font-size:12px}
.ok{color:#1a7f37}.bad{color:#cf222e}.warn{background:#fff8c5;border:1px solid #d4a72c;
border-radius:6px;padding:8px 12px;margin:6px 0}
table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de;margin:6px 0}
th,td{padding:4px 10px;border-bottom:1px solid #eaeef2;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
td.text{text-align:left}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px;margin:10px 0}
svg.chart{width:100%;height:auto;display:block}
svg .title{font-weight:600;font-size:14px;fill:#1f2328}
svg .tick{font-size:11px;fill:#57606a}svg .label{font-size:12px;fill:#57606a}
svg .mark{font-size:11px}
svg .grid{stroke:#eaeef2;stroke-width:1}svg .plot{fill:none;stroke:#d0d7de}
svg .shade{fill:#8c959f;fill-opacity:0.12}
.legend{display:flex;gap:16px;padding:2px 8px 6px 70px;font-size:12px;color:#57606a}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
footer{color:#57606a;font-size:12px;margin-top:24px}
pre{background:#fff;border:1px solid #d0d7de;padding:8px;overflow:auto;font-size:12px}
"""


def _card(value: str, label: str, cls: str = "") -> str:
    return f'<div class="card"><b class="{cls}">{_e(value)}</b><span>{_e(label)}</span></div>'


def _latency_html(histograms: dict[str, LatencyHistogram]) -> str:
    rows = []
    for key, label in PHASE_ROWS:
        h = histograms.get(key)
        if h is None or not h.count:
            continue
        pct = h.percentiles()
        cells = [f"{h.count:,}", fmt_ms(h.min)]
        cells += [fmt_ms(pct[q]) for q in (50.0, 90.0, 99.0, 99.9)]
        cells += [fmt_ms(h.max), fmt_ms(h.mean)]
        rows.append(
            f"<tr><td>{_e(label)}</td>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>"
        )
    head = "".join(
        f"<th>{n}</th>"
        for n in ("phase", "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean")
    )
    rel = next((h.relative_error for h in histograms.values()), 0.005)
    return (
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        f'<div class="sub">milliseconds; percentiles within ±{rel:.1%} (log buckets); '
        "min and max exact; latency of successful associations only</div>"
    )


def _failures_html(report: LoadReport) -> str:
    if not report.reasons:
        return '<p class="ok">No failure.</p>'
    rows = []
    for key, n in report.reasons.items():
        outcome, _, reason = key.partition(": ")
        rows.append(
            f'<tr><td>{n:,}</td><td class="text">{_e(outcome)}</td>'
            f'<td class="text">{_e(reason)}</td></tr>'
        )
    return (
        "<table><tr><th>count</th><th>outcome</th><th>reason (the peer's own words)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _parts_html(report: LoadReport) -> str:
    rows = []
    for part in report.parts:
        status = str(part.get("status", ""))
        cls = ' class="bad"' if status == "died" else ""
        rate = float(part.get("assoc_per_s") or 0.0)
        rows.append(
            f'<tr><td class="text">{_e(part.get("source", ""))}</td>'
            f'<td class="text"{cls}>{_e(part.get("reason") or status)}</td>'
            f"<td>{int(part.get('attempted') or 0):,}</td>"
            f"<td>{int(part.get('succeeded') or 0):,}</td>"
            f"<td>{int(part.get('failed') or 0):,}</td>"
            f"<td>{_e(fmt_rate(rate))}</td><td>{_e(fmt_ms(part.get('p99')))}</td></tr>"
        )
    return (
        "<table><tr><th>source</th><th>status</th><th>attempted</th><th>succeeded</th>"
        "<th>failed</th><th>assoc/s</th><th>p99 ms</th></tr>" + "".join(rows) + "</table>"
    )


def _warnings_html(warnings: Sequence[str]) -> str:
    return "".join(f'<div class="warn">⚠ {_e(w)}</div>' for w in warnings)


def _series_charts(
    series: Sequence[TickStats], warmup_end: float | None, repeat: int, mode: str
) -> str:
    if not series:
        return '<p class="empty">No time series (the run was shorter than one interval).</p>'
    # A last interval much shorter than the others gives noisy rates: left out of the charts.
    full = max((t.seconds for t in series), default=0.0)
    mid = [(t.t - t.seconds / 2, t) for t in series if t.seconds > 0.25 * full]
    throughput: list[Series] = [
        ("associations/s", COLORS[0], [(x, t.assoc_per_s) for x, t in mid]),
    ]
    if repeat > 1:
        throughput.append(("echoes/s", COLORS[2], [(x, t.echoes_per_s) for x, t in mid]))
    throughput.append(("errors/s", COLORS[3], [(x, t.errors_per_s) for x, t in mid]))
    if mode == "rate":
        offered = [(x, t.level) for x, t in mid if not t.draining]
        throughput.append(("offered/s", COLORS[5], offered))
    shade = (0.0, warmup_end) if warmup_end else None
    out = [
        '<div class="panel">',
        line_chart(
            throughput,
            title="Throughput over time",
            x_label="seconds since start",
            y_label="per second",
            shade=shade,
            y_unit="/s",
        ),
        "</div>",
    ]
    lat: list[Series] = []
    for name, color in (("p50", COLORS[0]), ("p90", COLORS[1]), ("p99", COLORS[3])):
        pts = [(x, v) for x, t in mid if (v := getattr(t, name)) is not None]
        lat.append((name, color, pts))
    lat.append(("max", COLORS[4], [(x, t.max) for x, t in mid if t.max is not None]))
    values = [y for _, _, pts in lat for _, y in pts if y > 0]
    log_y = bool(values) and max(values) / max(min(values), 1e-6) > 30
    out += [
        '<div class="panel">',
        line_chart(
            lat,
            title="Whole-association latency percentiles per interval",
            x_label="seconds since start",
            y_label="ms" + (" (log scale)" if log_y else ""),
            log_y=log_y,
            shade=shade,
            y_unit=" ms",
        ),
        "</div>",
    ]
    level: list[Series] = [
        ("in flight", COLORS[1], [(x, float(t.in_flight)) for x, t in mid]),
        ("generator CPU %", COLORS[4], [(x, t.cpu * 100) for x, t in mid]),
    ]
    if mode == "concurrency":
        level.insert(0, ("concurrency", COLORS[5], [(x, t.level) for x, t in mid]))
    out += [
        '<div class="panel">',
        line_chart(
            level,
            title="Associations in flight and the generator's CPU",
            x_label="seconds since start",
            y_label="count / %",
            shade=shade,
        ),
        "</div>",
    ]
    return "\n".join(out)


def _histogram_panel(histograms: dict[str, LatencyHistogram]) -> str:
    picks = [
        ("whole association", COLORS[0], histograms.get("association")),
        ("each C-ECHO", COLORS[2], histograms.get("echo")),
        ("connect", COLORS[1], histograms.get("connect")),
    ]
    chosen = [(n, c, h) for n, c, h in picks if h is not None]
    return (
        '<div class="panel">'
        + histogram_chart(chosen, "Latency distribution (share of values per bucket)")
        + "</div>"
    )


def _page(title: str, subtitle: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><div class="sub">{_e(subtitle)}</div>'
        f"{body}"
        f"<footer>echoprobe {_e(__version__)} — self-contained report: no script, no "
        "external resource.</footer></main></body></html>\n"
    )


def _load_body(report: LoadReport) -> str:
    cfg = report.config
    ok_cls = "ok" if report.ok else "bad"
    cards = "".join(
        (
            _card(fmt_rate(report.assoc_per_s), "associations/s"),
            _card(fmt_rate(report.echoes_per_s), "echoes/s"),
            _card(fmt_ms(report.percentile("association", 50)) + " ms", "p50 association"),
            _card(fmt_ms(report.percentile("association", 99)) + " ms", "p99 association"),
            _card(f"{report.succeeded:,}/{report.attempted:,}", "associations succeeded", ok_cls),
            _card(
                f"{report.cpu_fraction:.0%}",
                "generator CPU (one core = 100%)",
                "bad" if report.generator_bound else "",
            ),
        )
    )
    warmup_end = float(cfg.get("warmup") or 0.0)
    parts = [
        f'<div class="cards">{cards}</div>',
        _warnings_html(report.warnings),
        "<h2>Over time</h2>",
        _series_charts(report.series, warmup_end, int(cfg.get("repeat", 1)), cfg["mode"]),
        "<h2>Latency</h2>",
        _latency_html(report.histograms),
        _histogram_panel(report.histograms),
        "<h2>Outcomes</h2>",
        _failures_html(report),
        *(("<h2>By source</h2>", _parts_html(report)) if report.parts else ()),
        "<h2>Run</h2>",
        _config_html(report),
    ]
    return "\n".join(parts)


def _config_html(report: LoadReport) -> str:
    cfg = report.config
    rows = [
        (
            "target",
            f"{cfg['host']}:{cfg['port']} ({cfg['address']}), called AE "
            f"{cfg['called_ae']}, calling AE {cfg['calling_ae']}",
        ),
        ("shape", describe_shape(cfg)),
        ("started", report.started_at),
        (
            "wall time",
            f"{report.wall_seconds:.2f} s (measured window {report.window_seconds:.2f} s)",
        ),
        ("timeouts (s)", ", ".join(f"{k} {v}" for k, v in cfg["timeouts"].items() if v)),
        (
            "generator CPU",
            f"{report.cpu_seconds:.2f} s, {report.cpu_fraction:.0%} average, "
            f"{report.cpu_peak:.0%} peak",
        ),
        ("ports", _ports_text(report)),
        ("machine", _machine_text(cfg.get("machine"))),
    ]
    return (
        "<table>"
        + "".join(f'<tr><td>{_e(k)}</td><td class="text">{_e(v)}</td></tr>' for k, v in rows)
        + "</table>"
    )


def _ports_text(report: LoadReport) -> str:
    facts = report.ports
    parts = []
    if facts.port_range:
        parts.append(f"local ports {facts.port_range[0]}-{facts.port_range[1]} ({facts.ports:,})")
    if facts.tw_reuse is not None:
        parts.append(f"tcp_tw_reuse {facts.tw_reuse}")
    parts.append(
        f"{facts.source_addresses} source addresses"
        if facts.source_addresses
        else "source address chosen by the kernel"
    )
    if report.time_wait_at_end is not None:
        parts.append(f"{report.time_wait_at_end:,} in TIME_WAIT to the SCP at the end")
    if facts.sustainable_rate:
        parts.append(f"≈{facts.sustainable_rate:,.0f} new connections/s sustainable")
    elif facts.reuses_time_wait:
        parts.append("TIME_WAIT ports reused (loopback)")
    parts.append(f"{report.port_errors:,} connect errors for lack of a port")
    return "; ".join(parts)


def _machine_text(machine: Any) -> str:
    if not isinstance(machine, dict):
        return "unknown"
    load = machine.get("loadavg")
    text = f"{machine.get('cpus')} CPUs"
    if load:
        text += f", load average {' '.join(str(v) for v in load)} at the end"
    if machine.get("python"):
        text += f", {machine['python']}"
    return text


def _capacity_body(cap: CapacityReport) -> str:
    steps = sorted(cap.steps, key=lambda s: s.level)
    found = cap.capacity is not None
    cards = "".join(
        (
            _card(
                ("" if cap.first_failure is not None else "≥ ")
                + _level_text(cap.mode, cap.capacity)
                if found
                else "none",
                "capacity found",
                "ok" if found else "bad",
            ),
            _card(
                fmt_rate(cap.at_capacity.assoc_per_s) if cap.at_capacity else "–",
                "associations/s at capacity",
            ),
            _card(fmt_rate(cap.best.assoc_per_s) if cap.best else "–", "best associations/s"),
            _card(str(len(cap.steps)), "steps"),
        )
    )
    curve: list[Series] = [
        ("associations/s", COLORS[0], [(s.level, s.assoc_per_s) for s in steps]),
    ]
    levels = [s.level for s in steps]
    log_x = bool(levels) and min(levels) > 0 and max(levels) / min(levels) >= 8
    p99: list[Series] = [
        ("p99 ms", COLORS[3], [(s.level, s.p99) for s in steps if s.p99 is not None]),
        ("p50 ms", COLORS[1], [(s.level, s.p50) for s in steps if s.p50 is not None]),
    ]
    rows = "".join(
        f"<tr><td>{s.level:,g}</td><td>{fmt_rate(s.assoc_per_s)}</td>"
        f"<td>{fmt_rate(s.echoes_per_s)}</td><td>{fmt_ms(s.p50)}</td><td>{fmt_ms(s.p99)}</td>"
        f"<td>{s.failed:,}</td><td>{s.cpu_fraction:.0%}</td>"
        f'<td class="text {"ok" if s.ok else "bad"}">{_e("held" if s.ok else s.reason)}</td></tr>'
        for s in steps
    )
    parts = [
        f'<div class="cards">{cards}</div>',
        f"<p><b>Stopped:</b> {_e(cap.stop_reason)}</p>",
        _warnings_html(cap.warnings),
        "<h2>Capacity curve</h2>",
        '<div class="panel">',
        line_chart(
            curve,
            title="Throughput by level",
            x_label=cap.mode + (" (log scale)" if log_x else ""),
            y_label="associations/s",
            markers=True,
            y_unit="/s",
            log_x=log_x,
        ),
        "</div>",
        '<div class="panel">',
        line_chart(
            p99,
            title="Latency by level",
            x_label=cap.mode + (" (log scale)" if log_x else ""),
            y_label="ms",
            markers=True,
            y_unit=" ms",
            log_x=log_x,
        ),
        "</div>",
        f"<table><tr><th>{_e(cap.mode)}</th><th>assoc/s</th><th>echoes/s</th><th>p50 ms</th>"
        "<th>p99 ms</th><th>failed</th><th>CPU</th><th>verdict</th></tr>" + rows + "</table>",
        "<h2>The whole search over time</h2>",
        _series_charts(cap.series, None, int(cap.config.get("repeat", 1)), cap.mode),
    ]
    if cap.at_capacity is not None:
        parts += [
            "<h2>At capacity</h2>",
            _latency_html(cap.at_capacity.histograms),
            _histogram_panel(cap.at_capacity.histograms),
        ]
    return "\n".join(parts)


def render_html(result: LoadReport | CapacityReport) -> str:
    """The self-contained HTML page for a load run or a capacity search."""
    if isinstance(result, CapacityReport):
        cfg = result.config
        title = f"Capacity of {cfg['host']}:{cfg['port']}"
        subtitle = f"echoprobe load --find-capacity, by {cfg['mode']}"
        return _page(title, subtitle, _capacity_body(result))
    cfg = result.config
    title = f"Load test of {cfg['host']}:{cfg['port']}"
    return _page(title, describe_shape(cfg) + f" — {result.started_at}", _load_body(result))


def write_html(result: LoadReport | CapacityReport, path: str | Path) -> None:
    Path(path).write_text(render_html(result), encoding="utf-8")


__all__ = [
    "capacity_table",
    "describe_shape",
    "fmt_ms",
    "fmt_rate",
    "histogram_chart",
    "latency_table",
    "line_chart",
    "parts_table",
    "render_capacity_summary",
    "render_html",
    "render_load_summary",
    "to_json",
    "write_html",
    "write_json",
]
