"""The sweep's HTML report: `echoprobe sweep --report FILE.html`.

Rules:
- Self-contained: inline CSS, no script, no external URL (it must open on an air-gapped
  workstation and survive being mailed).
- Built from the `SweepSummary` only, so memory stays bounded whatever the fleet's size: the
  outcome counts, the groups, the attention list (the first of each kind of trouble, every
  kind), the per-phase histograms. Every peer-chosen text is escaped.
- Nothing here measures or reads a clock; `write_sweep_html` is the only file access.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from echoprobe import __version__
from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.report.admin import explain, group_of, human_outcome, label, shown_target
from echoprobe.report.summary import SUMMARY_PHASES, SweepSummary

if TYPE_CHECKING:
    from echoprobe.fleet.sweep import SweepStats

MAX_BARS = 24
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
td.n,th.n{text-align:right}
.red{color:#b00020}.yellow{color:#a66b00}.green{color:#1b7a1b}.dim{color:#777}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:1.6em}
.bar{background:#4a7bd0;height:.9em;display:inline-block}
footer{margin-top:3em;color:#777;font-size:.9em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"  # noqa: RUF001 - an en dash for "no value"
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    def cell(tag: str, index: int, content: str) -> str:
        cls = ' class="n"' if index in numeric else ""
        return f"<{tag}{cls}>{content}</{tag}>"

    out = ["<table><tr>", *(cell("th", i, _e(h)) for i, h in enumerate(head)), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _cards(summary: SweepSummary, stats: SweepStats | None) -> str:
    cards = [
        (str(summary.count), "targets", ""),
        (str(summary.succeeded), "succeeded", "green"),
        (str(summary.release_trouble), "echoed, release failed", "yellow"),
        (str(summary.failed), "failed", "red" if summary.failed else ""),
    ]
    if summary.stopped:
        cards.append((str(summary.stopped), "not checked (stopped)", "dim"))
    if stats is not None:
        cards.append((f"{stats.elapsed:.1f} s", "sweep time", ""))
    body = "".join(
        f'<div class="card {cls}"><b>{_e(value)}</b>{_e(text)}</div>' for value, text, cls in cards
    )
    return f'<div class="cards">{body}</div>'


def _outcomes(summary: SweepSummary) -> str:
    rows = []
    for outcome, n in sorted(summary.by_outcome.items(), key=lambda kv: (-kv[1], kv[0])):
        share = f"{100.0 * n / summary.count:.1f}%" if summary.count else ""
        rows.append([_e(outcome), _e(human_outcome(outcome)), str(n), share])
    return _table(["outcome", "meaning", "count", "share"], rows, {2, 3})


def _groups(summary: SweepSummary) -> str:
    view = summary.admin
    names = sorted(view.groups, key=lambda name: name.lower())
    rows = []
    for name in names:
        group = view.groups[name]
        median = group.latency.percentile(50) if group.latency.count else None
        rows.append(
            [
                _e(name),
                str(group.peers),
                f'<span class="green">{group.ok}</span>',
                f'<span class="yellow">{group.warning or ""}</span>',
                f'<span class="red">{group.failed or ""}</span>',
                str(group.stopped or ""),
                _ms(median),
            ]
        )
    head = ["group", "peers", "OK", "warning", "failed", "not checked", "median ms"]
    return _table(head, rows, {1, 2, 3, 4, 5, 6})


def _attention(summary: SweepSummary) -> str:
    view = summary.admin
    rows = []
    for record in view.attention():
        words, style = label(record, view.slow_ms)
        rows.append(
            [
                _e(shown_target(record)),
                _e(group_of(record, view.group_by)),
                f'<span class="{_e(style)}">{_e(words)}</span>',
                _e(explain(record, view.timeouts, width=200)),
                _e(record.phase or ""),
            ]
        )
    shown = len(rows)
    note = (
        f"<p>{shown} of {view.attention_count} shown: the first of every kind of trouble.</p>"
        if shown < view.attention_count
        else ""
    )
    table = _table(["target", "group", "result", "what to check", "phase"], rows, set())
    return note + table


def _latency(summary: SweepSummary) -> str:
    rows = []
    for phase in SUMMARY_PHASES:
        h = summary.latency[phase]
        if h.count:
            rows.append(
                [
                    _e(phase),
                    str(h.count),
                    _ms(h.percentile(50)),
                    _ms(h.percentile(90)),
                    _ms(h.percentile(99)),
                    _ms(h.max),
                ]
            )
    return _table(["phase", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows, {1, 2, 3, 4, 5})


def _distribution(histogram: LatencyHistogram) -> str:
    """The histogram's buckets merged into at most MAX_BARS rows, each a bar."""
    buckets = histogram.buckets()
    if not buckets:
        return "<p>No measured target.</p>"
    per_bar = max(1, -(-len(buckets) // MAX_BARS))
    bars = []
    for start in range(0, len(buckets), per_bar):
        chunk = buckets[start : start + per_bar]
        bars.append((chunk[0][0], chunk[-1][1], sum(c for _, _, c in chunk)))
    top = max(count for _, _, count in bars) or 1
    rows = [
        [
            f"{_ms(low)} – {_ms(high)}",  # noqa: RUF001 - an en dash for a range
            str(count),
            f'<span class="bar" style="width:{max(1, round(20 * count / top))}em"></span>',
        ]
        for low, high, count in bars
    ]
    return _table(["total ms", "targets", ""], rows, {1})


def render_sweep_html(
    summary: SweepSummary, *, stats: SweepStats | None = None, title: str = "echoprobe sweep"
) -> str:
    """The whole page."""
    sections = [
        f"<h1>{_e(title)}</h1>",
        _cards(summary, stats),
        "<h2>Outcomes</h2>",
        _outcomes(summary),
    ]
    if summary.admin.grouped:
        sections += ["<h2>By department / tag</h2>", _groups(summary)]
    if summary.admin.attention_count:
        sections += ["<h2>Peers that need attention</h2>", _attention(summary)]
    if any(h.count for h in summary.latency.values()):
        sections += ["<h2>Latency per phase</h2>", _latency(summary)]
        sections += ["<h2>Time per target</h2>", _distribution(summary.latency["total"])]
    footer = f"<footer>echoprobe {_e(__version__)}</footer>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(sections)
        + footer
        + "</body></html>\n"
    )


def write_sweep_html(
    summary: SweepSummary, path: str | Path, *, stats: SweepStats | None = None
) -> None:
    """Write the page to `path` (raises OSError)."""
    Path(path).write_text(render_sweep_html(summary, stats=stats), encoding="utf-8")


__all__ = ["render_sweep_html", "write_sweep_html"]
