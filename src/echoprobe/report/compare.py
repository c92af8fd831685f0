"""What changed since the last sweep: `echoprobe sweep --compare PREVIOUS.jsonl`.

    previous = load_previous("monday.jsonl")
    comparison = Comparison(previous)
    for record in records:
        comparison.add(record)
    console.print(render_comparison(comparison))

Rules:
- Targets are matched by their `target` text (`CALLED_AE@host:port`), as both runs wrote it.
- "Working" means the echo succeeded (`success`, or a release problem after a good echo);
  targets a stopped sweep never finished (`cancelled`, `not_started`) are neither working
  nor failing, and are not compared.
- A previous file is read whole but kept small (target → outcome); lines that are not records
  are counted, not fatal. Each list keeps its first `keep` entries and counts the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from echoprobe.errors import EchoprobeError
from echoprobe.report.admin import human_outcome
from echoprobe.results import Outcome, ProbeResult

_STOPPED = frozenset({Outcome.CANCELLED.value, Outcome.NOT_STARTED.value})


class ComparisonFileError(EchoprobeError):
    """The previous sweep's file cannot be read (a usage error for the command)."""


@dataclass(frozen=True, slots=True)
class Previous:
    """The previous sweep: target → outcome, and how many lines were not records."""

    path: str
    outcomes: dict[str, str]
    skipped: int = 0


def _working(outcome: str) -> bool:
    try:
        return Outcome(outcome).echo_succeeded
    except ValueError:
        return False


def _records(lines: Iterator[str]) -> Iterator[tuple[str, str] | None]:
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            yield None
            continue
        if not isinstance(data, dict):
            yield None
            continue
        target, outcome = data.get("target"), data.get("outcome")
        yield (target, outcome) if isinstance(target, str) and isinstance(outcome, str) else None


def load_previous(path: str | Path) -> Previous:
    """Read a JSON Lines file written by `echoprobe sweep --format jsonl`."""
    outcomes: dict[str, str] = {}
    skipped = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for item in _records(handle):
                if item is None:
                    skipped += 1
                else:
                    outcomes[item[0]] = item[1]
    except OSError as exc:
        raise ComparisonFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not outcomes:
        raise ComparisonFileError(f"{path}: no sweep records (write them with --format jsonl)")
    return Previous(str(path), outcomes, skipped)


@dataclass(frozen=True, slots=True)
class Change:
    """One target whose verdict moved: its outcome before and now."""

    target: str
    before: str
    after: str


@dataclass(slots=True)
class _Kept:
    rows: list[Change] = field(default_factory=list)
    count: int = 0

    def add(self, change: Change, keep: int) -> None:
        self.count += 1
        if len(self.rows) < keep:
            self.rows.append(change)


@dataclass(slots=True)
class Comparison:
    """Accumulates this sweep's records (`add`) against the previous sweep's outcomes."""

    previous: Previous
    keep: int = 20
    failed: _Kept = field(default_factory=_Kept)  # worked before, fails now
    recovered: _Kept = field(default_factory=_Kept)  # failed before, works now
    changed: _Kept = field(default_factory=_Kept)  # failing both times, differently
    new: _Kept = field(default_factory=_Kept)  # not in the previous sweep
    still_failing: int = 0
    still_working: int = 0
    _seen: set[str] = field(default_factory=set)

    def add(self, record: ProbeResult) -> None:
        outcome = record.outcome.value
        if outcome in _STOPPED:
            self._seen.add(record.target)  # not compared, and not "gone" either
            return
        self._seen.add(record.target)
        before = self.previous.outcomes.get(record.target)
        if before is None:
            self.new.add(Change(record.target, "", outcome), self.keep)
            return
        if before in _STOPPED:
            return
        change = Change(record.target, before, outcome)
        if _working(before) and not _working(outcome):
            self.failed.add(change, self.keep)
        elif not _working(before) and _working(outcome):
            self.recovered.add(change, self.keep)
        elif not _working(outcome):
            self.still_failing += 1
            if before != outcome:
                self.changed.add(change, self.keep)
        else:
            self.still_working += 1

    @property
    def gone(self) -> list[str]:
        """Targets of the previous sweep that this one did not check."""
        return sorted(t for t in self.previous.outcomes if t not in self._seen)


def _table(title: str, kept: _Kept, style: str) -> Table:
    shown = f"{kept.count}" + (f", {len(kept.rows)} shown" if kept.count > len(kept.rows) else "")
    table = Table(
        title=f"{title} ({shown})",
        title_justify="left",
        title_style=f"bold {style}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("Target", no_wrap=True)
    table.add_column("Before", no_wrap=True)
    table.add_column("Now", no_wrap=True)
    for change in kept.rows:
        before = human_outcome(change.before) if change.before else "(not listed)"
        table.add_row(Text(change.target), before, Text(human_outcome(change.after), style=style))
    return table


def render_comparison(comparison: Comparison) -> Group:
    """The headline, then failed since last time, recovered, changed, new and gone targets."""
    gone = comparison.gone
    line = Text()
    line.append(f"compared with {comparison.previous.path}: ", style="bold")
    failed, recovered = comparison.failed.count, comparison.recovered.count
    line.append(f"{failed} failed since", style="red" if failed else "")
    line.append(", ")
    line.append(f"{recovered} recovered", style="green" if recovered else "")
    line.append(
        f", {comparison.still_failing} still failing, {comparison.still_working} still working"
    )
    if comparison.new.count:
        line.append(f", {comparison.new.count} new")
    if gone:
        line.append(f", {len(gone)} not checked this time", style="yellow")
    if comparison.previous.skipped:
        line.append(f" ({comparison.previous.skipped} lines of the old file were not records)")
    parts: list[Table | Text] = [line]
    if comparison.failed.count:
        parts.append(_table("Failed since last time", comparison.failed, "red"))
    if comparison.recovered.count:
        parts.append(_table("Recovered", comparison.recovered, "green"))
    if comparison.changed.count:
        parts.append(_table("Failing differently", comparison.changed, "yellow"))
    if comparison.new.count:
        parts.append(_table("New targets", comparison.new, ""))
    if gone:
        more = f" … and {len(gone) - comparison.keep} more" if len(gone) > comparison.keep else ""
        parts.append(Text("Not checked this time: " + ", ".join(gone[: comparison.keep]) + more))
    return Group(*parts)


__all__ = [
    "Change",
    "Comparison",
    "ComparisonFileError",
    "Previous",
    "load_previous",
    "render_comparison",
]
