"""A rich table of sweep records (one row per target, one line per row).

    from echoprobe.report.table import render_table
    render_table(records, Console())

Rules: nothing here does I/O other than printing to the console it is given; rows are built
from `ProbeResult` values only, so the demo, the CLI and library users share one look.
Peer-chosen text is shown as plain text (never interpreted as rich markup).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from echoprobe.results import Outcome, ProbeResult

SortOrder = Literal["target", "outcome"] | None

# One colour per kind of ending, shared with the summary and the progress display.
OUTCOME_STYLE: dict[str, str] = {
    Outcome.SUCCESS: "green",
    Outcome.RELEASE_TIMEOUT: "green",
    Outcome.RELEASE_FAILED: "green",
    Outcome.ECHO_FAILED_STATUS: "yellow",
    Outcome.REJECTED_PERMANENT: "yellow",
    Outcome.REJECTED_TRANSIENT: "yellow",
    Outcome.NO_ACCEPTED_CONTEXT: "yellow",
    Outcome.ABORTED_BY_PEER: "yellow",
    Outcome.PROTOCOL_ERROR: "red",
    Outcome.CONNECTION_REFUSED: "red",
    Outcome.CONNECTION_LOST: "red",
    Outcome.DNS_ERROR: "red",
    Outcome.TLS_ERROR: "red",
    Outcome.TLS_VERIFY_FAILED: "red",
    Outcome.CONNECT_TIMEOUT: "magenta",
    Outcome.TLS_HANDSHAKE_TIMEOUT: "magenta",
    Outcome.ACSE_TIMEOUT: "magenta",
    Outcome.DIMSE_TIMEOUT: "magenta",
    Outcome.DEADLINE_EXCEEDED: "magenta",
    Outcome.TIMEOUT: "magenta",
    Outcome.CANCELLED: "dim",
    Outcome.NOT_STARTED: "dim",
    Outcome.INVALID_TARGET: "red",
    Outcome.INTERNAL_ERROR: "bold red",
}


_SHORT = {"associate": "assoc"}


def outcome_text(outcome: Outcome | str) -> Text:
    value = str(outcome)
    return Text(value, style=OUTCOME_STYLE.get(value, ""))


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def _address_key(result: ProbeResult) -> tuple[int, int, str, int, str]:
    try:
        ip = ipaddress.ip_address(result.host)
        return (ip.version, int(ip), "", result.port, result.target)
    except ValueError:
        return (9, 0, result.host.lower(), result.port, result.target)


def sort_results(results: Iterable[ProbeResult], order: SortOrder = "target") -> list[ProbeResult]:
    """Records by address (IPs numerically, then names), or failures first by outcome."""
    rows = list(results)
    if order == "target":
        rows.sort(key=_address_key)
    elif order == "outcome":
        rows.sort(key=lambda r: (r.outcome.echo_succeeded, r.outcome.value, _address_key(r)))
    return rows


def detail_text(result: ProbeResult, width: int = 60) -> str:
    """A one-line explanation: the error, else the release note, else ""."""
    text = result.error or ""
    comment = result.detail.get("error_comment")
    if result.outcome is Outcome.ECHO_FAILED_STATUS and comment and str(comment) not in text:
        text = f"{text}: {comment}" if text else str(comment)
    if not text and result.detail.get("release") not in (None, "released"):
        text = f"release: {result.detail['release']}"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(result: ProbeResult) -> str:
    """The target column: FILE:LINE for an inventory entry that is not a target (its text
    may be a whole mangled row, or a mapping), else the target and its inventory name."""
    source = result.detail.get("source")
    if result.outcome is Outcome.INVALID_TARGET and source:
        return str(source)
    return result.target if not result.name else f"{result.target} ({result.name})"


def results_table(
    results: Iterable[ProbeResult],
    *,
    title: str | None = None,
    order: SortOrder = "target",
    max_rows: int | None = None,
    phases: bool = True,
    peer: bool = True,
) -> Table:
    """A table with one row per record: target, outcome, status, times, peer, detail.

    `order`: "target" (by address), "outcome" (failures first) or None (as given);
    `max_rows`: show at most this many rows (a last row says how many were left out);
    `phases`: a column per phase (connect, assoc, echo) besides the total; `peer`: a column
    with the peer's implementation version name."""
    rows = sort_results(results, order)
    table = Table(
        title=title,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    # One line per record: on a narrow terminal `detail` gives way first (cut with "…",
    # never wrapped onto lines of its own), the facts stay whole.
    labels = [_label(r) for r in rows]
    table.add_column("target", no_wrap=True, min_width=min(max(map(len, labels), default=6), 40))
    outcomes = max((len(r.outcome.value) for r in rows), default=7)
    table.add_column("outcome", no_wrap=True, min_width=outcomes)
    table.add_column("status", justify="right", no_wrap=True, min_width=6)
    phase_keys = ("connect", "associate", "echo") if phases else ()
    for key in phase_keys:
        table.add_column(_SHORT.get(key, key), justify="right", no_wrap=True, min_width=5)
    table.add_column("total ms", justify="right", no_wrap=True, min_width=8)
    if peer:
        table.add_column("peer", no_wrap=True, max_width=16, overflow="ellipsis")
    # Measured as wrappable (so that it is the column that gives way), rendered unwrapped.
    table.add_column("detail", overflow="ellipsis")
    shown = rows if max_rows is None else rows[:max_rows]
    for r in shown:
        label = _label(r)
        t = r.timings_ms
        version = r.peer.implementation_version_name if r.peer is not None else None
        table.add_row(
            Text(label),
            outcome_text(r.outcome),
            "" if r.status is None else f"0x{r.status:04X}",
            *(_ms(t.get(key)) for key in phase_keys),
            _ms(t.get("total")),
            *([Text(version or "")] if peer else []),
            Text(detail_text(r, 200), no_wrap=True, overflow="ellipsis"),
        )
    if max_rows is not None and len(rows) > max_rows:
        more = Text(f"… {len(rows) - max_rows} more", style="dim")
        table.add_row(more, *[""] * (len(table.columns) - 1))
    return table


def render_table(
    results: Iterable[ProbeResult],
    console: Console,
    *,
    title: str | None = None,
    order: SortOrder = "target",
    max_rows: int | None = None,
    phases: bool | None = None,
    peer: bool | None = None,
) -> None:
    """Print `results_table(...)` on `console`; by default the per-phase and peer columns
    appear only when the console is wide enough for them."""
    if phases is None:
        phases = console.width >= 140
    if peer is None:
        peer = console.width >= 110
    table = results_table(
        results, title=title, order=order, max_rows=max_rows, phases=phases, peer=peer
    )
    console.print(table)


__all__ = [
    "OUTCOME_STYLE",
    "SortOrder",
    "detail_text",
    "outcome_text",
    "render_table",
    "results_table",
    "sort_results",
]
