"""The administrator's view of a sweep: plain-word outcomes, advice, groups by department.

    view = AdminView(timeouts=timeouts)
    for record in records:
        view.add(record)
    console.print(render_groups(view), render_attention(view, console.width))

Used by `echoprobe sweep` (at the end of its summary) and `echoprobe demo`.

Rules:
- Memory is bounded whatever the number of records: per group, counters and a latency
  histogram; per kind of trouble, the first `keep_per_label` records and a count. The groups
  are as many as the inventory's departments (or tags) and no more.
- The attention list never hides a rare kind of trouble behind a common one: rows are taken
  one kind at a time, round-robin, so ten refused devices cannot push the only silent one out.
- Every cell is one line: advice is short and peer-chosen text (reject reasons, error
  comments) is cut with "…", never wrapped; nothing is interpreted as rich markup.
- Nothing here does I/O beyond what the caller prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from rich import box
from rich.table import Table
from rich.text import Text

from echoprobe.dimse.status import status_text
from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult
from echoprobe.ul.constants import ABORT_REASON_TEXT, REJECT_REASON_TEXT

SLOW_MS: Final = 500.0  # a successful echo slower than this is reported as slow
ADVICE_WIDTH: Final = 60  # characters of advice per row: one line at 100 columns
UNGROUPED: Final = "(no tag)"

# outcome → (plain words, style), in the order a PACS team would look at them
OUTCOME_WORDS: Final[dict[Outcome, tuple[str, str]]] = {
    Outcome.CONNECTION_REFUSED: ("Connection refused", "red"),
    Outcome.CONNECT_TIMEOUT: ("No TCP answer", "red"),
    Outcome.DNS_ERROR: ("Unknown host name", "red"),
    Outcome.TLS_ERROR: ("TLS failed", "red"),
    Outcome.TLS_VERIFY_FAILED: ("TLS certificate rejected", "red"),
    Outcome.TLS_HANDSHAKE_TIMEOUT: ("No TLS answer", "red"),
    Outcome.ACSE_TIMEOUT: ("No DICOM answer", "red"),
    Outcome.REJECTED_PERMANENT: ("Association rejected", "red"),
    Outcome.NO_ACCEPTED_CONTEXT: ("Verification refused", "red"),
    Outcome.ECHO_FAILED_STATUS: ("Echo failed", "red"),
    Outcome.ABORTED_BY_PEER: ("Aborted by peer", "red"),
    Outcome.CONNECTION_LOST: ("Connection dropped", "red"),
    Outcome.DIMSE_TIMEOUT: ("No echo response", "red"),
    Outcome.DEADLINE_EXCEEDED: ("Too slow overall", "red"),
    Outcome.TIMEOUT: ("Timed out", "red"),
    Outcome.PROTOCOL_ERROR: ("Protocol error", "red"),
    Outcome.INVALID_TARGET: ("Bad inventory entry", "red"),
    Outcome.INTERNAL_ERROR: ("echoprobe bug", "bold red"),
    Outcome.REJECTED_TRANSIENT: ("Busy, try later", "yellow"),
    Outcome.RELEASE_TIMEOUT: ("OK, no release reply", "yellow"),
    Outcome.RELEASE_FAILED: ("OK, release failed", "yellow"),
    Outcome.CANCELLED: ("Stopped while checking", "dim"),
    Outcome.NOT_STARTED: ("Not checked (stopped)", "dim"),
    Outcome.SUCCESS: ("OK", "green"),
}
SLOW: Final = ("Slow", "yellow")
_ORDER: Final = [*list(OUTCOME_WORDS.values())[:-1], SLOW, OUTCOME_WORDS[Outcome.SUCCESS]]
_RANK: Final = {words: rank for rank, words in enumerate(_ORDER)}
_STOPPED: Final = frozenset({Outcome.CANCELLED, Outcome.NOT_STARTED})

# PS3.8 Table 9-21 (source, reason) → what an administrator does about it
_REJECT_ADVICE: Final = {
    (1, 7): "unknown called AE title: fix the inventory",
    (1, 3): "our AE {calling} unknown: add it on the peer",
    (1, 2): "application context not supported",
    (3, 2): "local limit exceeded: too many associations",
    (3, 1): "temporary congestion",
}


def human_outcome(outcome: Outcome | str) -> str:
    """The plain words for an outcome ("connection_refused" → "Connection refused")."""
    try:
        return OUTCOME_WORDS[Outcome(outcome)][0]
    except (ValueError, KeyError):
        return str(outcome)


def label(record: ProbeResult, slow_ms: float = SLOW_MS) -> tuple[str, str]:
    """(plain words, style) of a record; slow successes are labelled as such."""
    if record.outcome is Outcome.SUCCESS and record.timings_ms.get("total", 0.0) >= slow_ms:
        return SLOW
    return OUTCOME_WORDS.get(record.outcome, (record.outcome.value, "red"))


def needs_attention(record: ProbeResult, slow_ms: float = SLOW_MS) -> bool:
    """Anything but a prompt success (stopped targets are counted, not listed)."""
    return record.outcome not in _STOPPED and label(record, slow_ms) != ("OK", "green")


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: float | None) -> str:
    return "the limit" if value is None else f"{value:g} s"


def explain(
    record: ProbeResult, timeouts: Timeouts | None = None, width: int = ADVICE_WIDTH
) -> str:
    """The peer's own words, and what to check, for one record, in one short line."""
    detail = record.detail
    outcome = record.outcome
    t = timeouts or Timeouts()
    text: str
    if outcome is Outcome.SUCCESS:
        text = f"answered in {record.timings_ms.get('total', 0.0) / 1000:.1f} s"
    elif outcome is Outcome.CONNECTION_REFUSED:
        text = "no listener: device off or service down"
    elif outcome is Outcome.CONNECT_TIMEOUT:
        text = "no TCP reply: host down or firewalled"
    elif outcome is Outcome.DNS_ERROR:
        text = "the name does not resolve: check the inventory or DNS"
    elif outcome in (Outcome.REJECTED_PERMANENT, Outcome.REJECTED_TRANSIENT):
        key = (int(detail.get("source", 0)), int(detail.get("reason", 0)))
        advice = _REJECT_ADVICE.get(key)
        text = (
            advice.format(calling=record.calling_ae)
            if advice
            else REJECT_REASON_TEXT.get(key, f"rejected, reason {key[1]}")
        )
    elif outcome is Outcome.ACSE_TIMEOUT:
        text = f"port open, no A-ASSOCIATE answer in {_seconds(t.acse)}"
    elif outcome is Outcome.DIMSE_TIMEOUT:
        text = f"associated, no C-ECHO answer in {_seconds(t.dimse)}"
    elif outcome is Outcome.DEADLINE_EXCEEDED:
        text = f"slow in every phase: not done in {_seconds(t.total)}"
    elif outcome is Outcome.ABORTED_BY_PEER:
        if detail.get("source") == 0:
            text = "A-ABORT by the peer's application"
        else:
            reason = ABORT_REASON_TEXT.get(int(detail.get("reason", 0)), "?")
            text = f"A-ABORT: provider, {reason}"
    elif outcome is Outcome.ECHO_FAILED_STATUS:
        status = int(detail.get("status", record.status or 0))
        comment = detail.get("error_comment")
        text = f"0x{status:04X} {status_text(status)}" + (f": {comment}" if comment else "")
    elif outcome is Outcome.NO_ACCEPTED_CONTEXT:
        text = "Verification SOP class not enabled"
    elif outcome is Outcome.RELEASE_TIMEOUT:
        text = "echo OK; A-RELEASE never answered"
    elif outcome is Outcome.RELEASE_FAILED:
        text = f"echo OK; release: {detail.get('release', 'failed')}"
    elif outcome is Outcome.CONNECTION_LOST:
        text = f"TCP closed during {record.phase or 'the association'}, no A-ABORT"
    elif outcome in (Outcome.TLS_VERIFY_FAILED, Outcome.TLS_ERROR):
        text = f"TLS: {record.error or 'handshake failed'}"
    elif outcome is Outcome.INVALID_TARGET:
        text = str(record.error or "not a target")
    else:
        text = record.error or outcome.value
    return _cut(text, width)


def shown_target(record: ProbeResult) -> str:
    """The target as a person finds it again: an inventory entry that is not a target is
    named by its FILE:LINE (its text may be a whole mangled row)."""
    source = record.detail.get("source")
    if record.outcome is Outcome.INVALID_TARGET and source:
        return str(source)
    return record.target


def group_of(record: ProbeResult, key: str | None = None) -> str:
    """The record's group: with `key`, the value of its tag "key=value" (or "key:value");
    without, its first tag (an inventory's department). `UNGROUPED` when it has none."""
    if key is None:
        if not record.tags:
            return UNGROUPED
        name, found, value = record.tags[0].partition("=")
        return value.strip() or UNGROUPED if found and name.strip() else record.tags[0]
    for tag in record.tags:
        for separator in ("=", ":"):
            name, found, value = tag.partition(separator)
            if found and name.strip().lower() == key.lower():
                return value.strip() or UNGROUPED
    return UNGROUPED


@dataclass(slots=True)
class GroupCounts:
    """One group's tally: peers, OK, warnings (busy, slow, release trouble), failed."""

    peers: int = 0
    ok: int = 0
    warning: int = 0
    failed: int = 0
    stopped: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


@dataclass(slots=True)
class AdminView:
    """Accumulates records (`add`) into the groups and the attention list."""

    timeouts: Timeouts | None = None
    group_by: str | None = None
    slow_ms: float = SLOW_MS
    keep_per_label: int = 10
    count: int = 0
    groups: dict[str, GroupCounts] = field(default_factory=dict)
    labels: Counter[tuple[str, str]] = field(default_factory=Counter)
    attention_count: int = 0
    _kept: dict[tuple[str, str], list[ProbeResult]] = field(default_factory=dict)

    def add(self, record: ProbeResult) -> None:
        self.count += 1
        words = label(record, self.slow_ms)
        self.labels[words] += 1
        group = self.groups.setdefault(group_of(record, self.group_by), GroupCounts())
        group.peers += 1
        if record.outcome in _STOPPED:
            group.stopped += 1
        elif words == ("OK", "green"):
            group.ok += 1
        elif words[1] == "yellow":
            group.warning += 1
        else:
            group.failed += 1
        total = record.timings_ms.get("total")
        if record.outcome.echo_succeeded and total is not None:
            group.latency.record(max(float(total), 0.0))
        if needs_attention(record, self.slow_ms):
            self.attention_count += 1
            kept = self._kept.setdefault(words, [])
            if len(kept) < self.keep_per_label:
                kept.append(record)

    @property
    def grouped(self) -> bool:
        """Whether grouping says anything (some record carries a tag)."""
        return any(name != UNGROUPED for name in self.groups)

    def attention(self, limit: int | None = None) -> list[ProbeResult]:
        """The records to show, worst kind first; with `limit`, round-robin over the kinds
        so that every kind of trouble appears before a second row of any kind."""
        kinds = sorted(self._kept, key=lambda words: _RANK.get(words, len(_RANK)))
        if limit is None:
            return [record for words in kinds for record in self._kept[words]]
        chosen: list[ProbeResult] = []
        depth = 0
        while len(chosen) < limit and any(depth < len(self._kept[w]) for w in kinds):
            for words in kinds:
                if depth < len(self._kept[words]) and len(chosen) < limit:
                    chosen.append(self._kept[words][depth])
            depth += 1
        order = {words: rank for rank, words in enumerate(kinds)}
        chosen.sort(key=lambda r: order[label(r, self.slow_ms)])
        return chosen


def render_attention(view: AdminView, width: int = 100, limit: int | None = 20) -> Table:
    """ "Peers that need attention": target, group, plain-word result, advice; one line each."""
    rows = view.attention(limit)
    shown = (
        f"{len(rows)} shown, every kind of trouble first"
        if len(rows) < view.attention_count
        else ""
    )
    title = f"Peers that need attention ({view.attention_count} of {view.count}"
    title += f"; {shown})" if shown else ")"
    table = Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False
    )
    wide = width >= 110 and view.grouped
    # On a narrow console the advice gives way first, then the target; the result never.
    results = max((len(label(r, view.slow_ms)[0]) for r in rows), default=6)
    targets = max((len(shown_target(r)) for r in rows), default=6)
    table.add_column("Target", no_wrap=True, overflow="ellipsis", min_width=min(targets, 24))
    if wide:
        table.add_column("Group", no_wrap=True, overflow="ellipsis", max_width=18)
    table.add_column("Result", no_wrap=True, min_width=results)
    # Measured as wrappable (so that it is the column that gives way), rendered unwrapped.
    table.add_column("Peer's answer / what to check", overflow="ellipsis")
    for record in rows:
        words, style = label(record, view.slow_ms)
        cells: list[str | Text] = [Text(shown_target(record))]
        if wide:
            cells.append(Text(group_of(record, view.group_by)))
        advice = Text(explain(record, view.timeouts), no_wrap=True, overflow="ellipsis")
        cells += [Text(words, style=style), advice]
        table.add_row(*cells)
    return table


def render_groups(view: AdminView, *, title: str = "By department", sort: bool = True) -> Table:
    """One row per group: peers, OK, warnings, failed, not checked, median time; by name
    (records without a tag last) or, without `sort`, in the order groups were first seen."""
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("Group" if view.group_by else "Department", no_wrap=True)
    table.add_column("Peers", justify="right")
    table.add_column("OK", justify="right", style="green")
    table.add_column("Warning", justify="right", style="yellow")
    table.add_column("Failed", justify="right", style="red")
    stopped = any(group.stopped for group in view.groups.values())
    if stopped:
        table.add_column("Not checked", justify="right", style="dim")
    table.add_column("Median time", justify="right")
    names = list(view.groups)
    if sort:
        names.sort(key=lambda name: (name == UNGROUPED, name.lower()))
    for name in names:
        group = view.groups[name]
        median = group.latency.percentile(50) if group.latency.count else None
        cells: list[str | Text] = [
            Text(name),
            str(group.peers),
            str(group.ok),
            str(group.warning or ""),
            str(group.failed or ""),
        ]
        if stopped:
            cells.append(str(group.stopped or ""))
        cells.append("-" if median is None else f"{median:.0f} ms")
        table.add_row(*cells)
    return table


def render_outcomes(view: AdminView) -> Text:
    """ "12 Connection refused  3 Busy, try later  185 OK" in plain words, worst first."""
    text = Text()
    for (words, style), count in sorted(
        view.labels.items(), key=lambda kv: _RANK.get(kv[0], len(_RANK))
    ):
        if text:
            text.append("  ")
        text.append(f"{count} ", style=f"bold {style}")
        text.append(words, style=style)
    return text


__all__ = [
    "OUTCOME_WORDS",
    "SLOW_MS",
    "UNGROUPED",
    "AdminView",
    "GroupCounts",
    "explain",
    "group_of",
    "human_outcome",
    "label",
    "needs_attention",
    "render_attention",
    "render_groups",
    "render_outcomes",
    "shown_target",
]
