"""The end-of-sweep summary: counts by outcome, latency percentiles per phase, the slowest
targets, and the administrator's view (by department, peers that need attention).

    summary = SweepSummary(timeouts=timeouts)
    async for record in results:
        summary.add(record)
    render_summary(summary, Console(stderr=True), stats=results.stats)

Rules:
- Memory is bounded whatever the number of records (histograms, a top-N heap, the first N
  failures of each outcome); `render_summary` also accepts a plain iterable of records.
- The headline never contradicts the outcome table: "succeeded" counts `success` only; an echo
  that succeeded before a release problem is counted apart; targets a stopped sweep never
  finished (`cancelled`, `not_started`) are "not checked", not "failed".
- A rare outcome is never hidden behind a common one: failures are listed one per outcome,
  rarest first, before a second of any outcome.
- Nothing here reads a clock or does I/O beyond printing on the console it is given.
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
from echoprobe.options import Timeouts
from echoprobe.report.admin import AdminView, human_outcome, render_attention, render_groups
from echoprobe.report.table import outcome_text
from echoprobe.results import PHASES, Outcome, ProbeResult

if TYPE_CHECKING:
    from echoprobe.fleet.sweep import SweepStats

SUMMARY_PHASES = (*PHASES, "total")
# Records that never measured a whole probe: they have no place in the "total" percentiles.
_UNMEASURED = frozenset(
    {Outcome.INVALID_TARGET, Outcome.NOT_STARTED, Outcome.CANCELLED, Outcome.INTERNAL_ERROR}
)
_STOPPED = frozenset({Outcome.CANCELLED, Outcome.NOT_STARTED})


@dataclass(slots=True)
class SweepSummary:
    """Accumulates records (`add`) into what `render_summary` shows.

    `timeouts` words the advice ("no A-ASSOCIATE answer in 30 s"); `group_by` picks the tag
    the records are grouped by (default: each record's first tag)."""

    keep_failing: int = 10
    keep_slowest: int = 5
    timeouts: Timeouts | None = None
    group_by: str | None = None
    count: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    latency: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {phase: LatencyHistogram() for phase in SUMMARY_PHASES}
    )
    failing_count: int = 0  # every record whose echo did not succeed, stopped ones included
    admin: AdminView = field(default_factory=AdminView)
    _failing: dict[str, list[ProbeResult]] = field(default_factory=dict)  # first N per outcome
    _slowest: list[tuple[float, int, ProbeResult]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.admin.timeouts = self.timeouts
        self.admin.group_by = self.group_by
        self.admin.keep_per_label = self.keep_failing

    def add(self, result: ProbeResult) -> None:
        self.count += 1
        self.by_outcome[result.outcome.value] += 1
        self.admin.add(result)
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
            return
        self.failing_count += 1
        # Targets the sweep never finished (stopped) are counted, not listed one by one.
        if result.outcome not in _STOPPED:
            kept = self._failing.setdefault(result.outcome.value, [])
            if len(kept) < self.keep_failing:
                kept.append(result)

    @property
    def succeeded(self) -> int:
        """Targets whose outcome is `success` (what the outcome table calls success)."""
        return self.by_outcome.get(Outcome.SUCCESS.value, 0)

    @property
    def release_trouble(self) -> int:
        """Targets whose echoes succeeded but whose release timed out or failed."""
        return self.by_outcome.get(Outcome.RELEASE_TIMEOUT.value, 0) + self.by_outcome.get(
            Outcome.RELEASE_FAILED.value, 0
        )

    @property
    def stopped(self) -> int:
        """Targets a stopped sweep never finished (`cancelled`, `not_started`)."""
        return sum(self.by_outcome.get(o.value, 0) for o in _STOPPED)

    @property
    def failed(self) -> int:
        """Targets that were checked and failed (stopped ones are not among them)."""
        return self.failing_count - self.stopped

    @property
    def failing(self) -> list[ProbeResult]:
        """Up to `keep_failing` failed targets: one per outcome, rarest outcome first, then a
        second of each, and so on; so that no outcome is hidden behind a commoner one."""
        kinds = sorted(self._failing, key=lambda o: (self.by_outcome[o], o))
        chosen: list[ProbeResult] = []
        depth = 0
        while len(chosen) < self.keep_failing and any(depth < len(self._failing[k]) for k in kinds):
            for kind in kinds:
                if depth < len(self._failing[kind]) and len(chosen) < self.keep_failing:
                    chosen.append(self._failing[kind][depth])
            depth += 1
        return chosen

    @property
    def failing_unlisted(self) -> int:
        """Failed targets (not stopped ones) that `failing` leaves out."""
        return self.failed - len(self.failing)

    def extend(self, results: Iterable[ProbeResult]) -> None:
        for result in results:
            self.add(result)

    @property
    def successes(self) -> int:
        """Targets whose every C-ECHO returned 0000H (release trouble included): what
        `--min-success` and the exit code count."""
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
    table.add_column("meaning")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for outcome, n in sorted(summary.by_outcome.items(), key=lambda kv: (-kv[1], kv[0])):
        share = f"{100.0 * n / summary.count:.1f}%" if summary.count else ""
        table.add_row(outcome_text(outcome), human_outcome(outcome), str(n), share)
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
    """ "N targets: S succeeded, R succeeded but the release failed, F failed, X not checked
    (sweep stopped) in T s (R/s)": each count is a sum of rows of the outcome table."""
    text = Text()
    text.append(f"{summary.count} target{'s' if summary.count != 1 else ''}: ", style="bold")
    text.append(f"{summary.succeeded} succeeded", style="green")
    if summary.release_trouble:
        text.append(f", {summary.release_trouble} echoed but did not release", style="yellow")
    text.append(", ")
    text.append(f"{summary.failed} failed", style="red" if summary.failed else "")
    if summary.stopped:
        text.append(f", {summary.stopped} not checked (sweep stopped)", style="yellow")
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
    if summary.admin.grouped:
        parts.append(render_groups(summary.admin, title="by department / tag"))
    if summary.admin.attention_count:
        parts.append(render_attention(summary.admin, console.width, limit=summary.keep_failing))
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
