"""The end-of-sweep summary: counts by outcome, latency percentiles per phase, slowest and
failing targets.

    summary = SweepSummary()
    async for record in results:
        summary.add(record)
    render_summary(summary, Console(stderr=True), stats=results.stats)

Rules: memory is bounded whatever the number of records (histograms, a top-N heap, the first N
failures); `render_summary` also accepts a plain iterable of records. Nothing here reads a clock
or does I/O beyond printing on the console it is given.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.report.table import detail_text, outcome_text
from echoprobe.results import PHASES, Outcome, ProbeResult

if TYPE_CHECKING:
    from echoprobe.fleet.sweep import SweepStats

SUMMARY_PHASES = (*PHASES, "total")
# Records that never measured a whole probe: they have no place in the "total" percentiles.
_UNMEASURED = frozenset(
    {Outcome.INVALID_TARGET, Outcome.NOT_STARTED, Outcome.CANCELLED, Outcome.INTERNAL_ERROR}
)


@dataclass(slots=True)
class SweepSummary:
    """Accumulates records (`add`) into what `render_summary` shows."""

    keep_failing: int = 10
    keep_slowest: int = 5
    count: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    latency: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {phase: LatencyHistogram() for phase in SUMMARY_PHASES}
    )
    failing: list[ProbeResult] = field(default_factory=list)  # the first `keep_failing`
    failing_count: int = 0  # every record that is not a success, cancelled ones included
    failing_unlisted: int = 0  # failures (not cancelled/not started) beyond `failing`
    _slowest: list[tuple[float, int, ProbeResult]] = field(default_factory=list)

    def add(self, result: ProbeResult) -> None:
        self.count += 1
        self.by_outcome[result.outcome.value] += 1
        timings = result.timings_ms
        for phase in PHASES:
            value = timings.get(phase)
            if value is not None:
                self.latency[phase].record(max(float(value), 0.0))
        total = timings.get("total")
        if total is not None and result.outcome not in _UNMEASURED:
            self.latency["total"].record(max(float(total), 0.0))
        if result.outcome.echo_succeeded:
            if total is not None:
                entry = (float(total), self.count, result)
                if len(self._slowest) < self.keep_slowest:
                    heapq.heappush(self._slowest, entry)
                else:
                    heapq.heappushpop(self._slowest, entry)
        else:
            self.failing_count += 1
            # Targets the sweep never finished (stopped) are counted, not listed one by one.
            stopped = result.outcome in (Outcome.CANCELLED, Outcome.NOT_STARTED)
            if not stopped and len(self.failing) < self.keep_failing:
                self.failing.append(result)
            elif not stopped:
                self.failing_unlisted += 1

    def extend(self, results: Iterable[ProbeResult]) -> None:
        for result in results:
            self.add(result)

    @property
    def successes(self) -> int:
        """Targets whose every C-ECHO returned 0000H (release trouble included)."""
        return self.count - self.failing_count

    @property
    def success_ratio(self) -> float | None:
        return self.successes / self.count if self.count else None

    @property
    def internal_errors(self) -> int:
        return self.by_outcome.get(Outcome.INTERNAL_ERROR.value, 0)

    @property
    def slowest(self) -> list[ProbeResult]:
        """The slowest successful targets, slowest first."""
        return [entry[2] for entry in sorted(self._slowest, reverse=True)]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def outcome_counts_table(summary: SweepSummary) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for outcome, n in sorted(summary.by_outcome.items(), key=lambda kv: (-kv[1], kv[0])):
        share = f"{100.0 * n / summary.count:.1f}%" if summary.count else ""
        table.add_row(outcome_text(outcome), str(n), share)
    return table


def latency_table(summary: SweepSummary) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None, title_justify="left")
    for name in ("phase (ms)", "n", "p50", "p90", "p99", "max"):
        table.add_column(name, justify="left" if name.startswith("phase") else "right")
    for phase in SUMMARY_PHASES:
        h = summary.latency[phase]
        if not h.count:
            continue
        table.add_row(
            phase,
            str(h.count),
            _ms(h.percentile(50)),
            _ms(h.percentile(90)),
            _ms(h.percentile(99)),
            _ms(h.max),
        )
    return table


def _failing_table(rows: Iterable[ProbeResult]) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("target", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    table.add_column("detail", overflow="fold")  # gives way first on a narrow console
    for r in rows:
        table.add_row(
            Text(r.target), outcome_text(r.outcome), r.phase or "", Text(detail_text(r, 100))
        )
    return table


def _slowest_table(rows: Iterable[ProbeResult]) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("target", no_wrap=True)
    for name in ("total ms", "connect", "assoc", "echo", "release"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        t = r.timings_ms
        table.add_row(
            Text(r.target),
            *(_ms(t.get(k)) for k in ("total", "connect", "associate", "echo", "release")),
        )
    return table


def headline(summary: SweepSummary, stats: SweepStats | None = None) -> Text:
    """ "N targets: S succeeded, F failed in T s (R/s)"."""
    text = Text()
    text.append(f"{summary.count} target{'s' if summary.count != 1 else ''}: ", style="bold")
    text.append(f"{summary.successes} succeeded", style="green")
    text.append(", ")
    text.append(f"{summary.failing_count} failed", style="red" if summary.failing_count else "")
    if stats is not None:
        elapsed = stats.elapsed
        rate = summary.count / elapsed if elapsed > 0 else 0.0
        text.append(f" in {elapsed:.2f} s ({rate:,.0f}/s); {stats.concurrency.describe()}")
        if stats.duplicates:
            text.append(f"; {stats.duplicates} duplicate(s) skipped", style="yellow")
        if stats.stopping:
            text.append("; stopped early", style="yellow")
    return text


def render_summary(
    summary: SweepSummary | Iterable[ProbeResult],
    console: Console,
    *,
    stats: SweepStats | None = None,
    title: str = "sweep summary",
) -> SweepSummary:
    """Print the summary of a sweep on `console`; returns the `SweepSummary` it used.

    `summary` is a `SweepSummary` or any iterable of records; `stats` (the `ResultStream`'s)
    adds wall time, rate, the effective concurrency, duplicates and an interruption note."""
    if not isinstance(summary, SweepSummary):
        records = summary
        summary = SweepSummary()
        summary.extend(records)
    parts: list[Table | Text] = [Text(title, style="bold underline"), headline(summary, stats)]
    if summary.count:
        parts.append(outcome_counts_table(summary))
    if any(h.count for h in summary.latency.values()):
        parts += [Text("latency per phase", style="bold"), latency_table(summary)]
    slowest = summary.slowest
    if slowest and summary.count > 1:
        parts += [Text("slowest successful targets", style="bold")]
        parts.append(_slowest_table(slowest))
    if summary.failing:
        shown = len(summary.failing)
        listed = shown + summary.failing_unlisted
        label = f"failing targets ({listed}" + (
            f", first {shown} shown)" if summary.failing_unlisted else ")"
        )
        parts += [Text(label, style="bold")]
        rows = sorted(summary.failing, key=lambda r: (r.outcome.value, r.target))
        parts.append(_failing_table(rows))
    if summary.internal_errors:
        parts.append(
            Text(
                f"{summary.internal_errors} internal error(s): a bug in echoprobe; the records "
                "carry a traceback hash, the log the traceback",
                style="bold red",
            )
        )
    console.print(Group(*parts))
    return summary


__all__ = [
    "SUMMARY_PHASES",
    "SweepSummary",
    "headline",
    "latency_table",
    "outcome_counts_table",
    "render_summary",
]
