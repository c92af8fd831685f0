"""`sweep --compare`: what failed since the last sweep, what recovered (no network)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from echoprobe.report.compare import (
    Comparison,
    ComparisonFileError,
    load_previous,
    render_comparison,
)
from echoprobe.results import Outcome, ProbeResult


def record(target: str, outcome: Outcome) -> ProbeResult:
    return ProbeResult(
        target=target, host="127.0.0.1", port=104, called_ae="PACS", calling_ae="ECHOSCU",
        outcome=outcome,
    )  # fmt: skip


def write(path: Path, rows: list[tuple[str, str]], junk: int = 0) -> Path:
    lines = [json.dumps({"target": t, "outcome": o, "phase": None}) for t, o in rows]
    path.write_text("\n".join([*lines, *(["{not json"] * junk)]) + "\n", encoding="utf-8")
    return path


def test_failed_since_recovered_changed_new_and_gone(tmp_path: Path) -> None:
    previous = load_previous(
        write(
            tmp_path / "monday.jsonl",
            [
                ("A", "success"),
                ("B", "success"),
                ("C", "connection_refused"),
                ("D", "acse_timeout"),
                ("E", "release_timeout"),
                ("F", "success"),
                ("G", "success"),
            ],
            junk=2,
        )
    )
    assert previous.skipped == 2
    comparison = Comparison(previous)
    for target, outcome in [
        ("A", Outcome.SUCCESS),
        ("B", Outcome.ACSE_TIMEOUT),  # failed since
        ("C", Outcome.SUCCESS),  # recovered
        ("D", Outcome.REJECTED_PERMANENT),  # failing differently
        ("E", Outcome.SUCCESS),  # release trouble was already "working"
        ("G", Outcome.NOT_STARTED),  # a stopped sweep: not compared, not gone
        ("H", Outcome.SUCCESS),  # new
    ]:
        comparison.add(record(target, outcome))
    assert [c.target for c in comparison.failed.rows] == ["B"]
    assert [c.target for c in comparison.recovered.rows] == ["C"]
    assert [(c.before, c.after) for c in comparison.changed.rows] == [
        ("acse_timeout", "rejected_permanent")
    ]
    assert [c.target for c in comparison.new.rows] == ["H"]
    assert comparison.gone == ["F"]
    assert (comparison.still_working, comparison.still_failing) == (2, 1)
    console = Console(file=io.StringIO(), width=300, no_color=True)  # one headline line
    console.print(render_comparison(comparison))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "1 failed since, 1 recovered, 1 still failing, 2 still working, 1 new" in text
    assert "Failed since last time (1)" in text
    assert "No DICOM answer" in text
    assert "Not checked this time: F" in text


def test_an_unreadable_or_empty_previous_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComparisonFileError, match="cannot read"):
        load_previous(tmp_path / "missing.jsonl")
    (tmp_path / "table.txt").write_text("target outcome\nA success\n", encoding="utf-8")
    with pytest.raises(ComparisonFileError, match="no sweep records"):
        load_previous(tmp_path / "table.txt")


def test_long_lists_are_bounded(tmp_path: Path) -> None:
    rows = [(f"T{n}", "success") for n in range(100)]
    comparison = Comparison(load_previous(write(tmp_path / "p.jsonl", rows)), keep=5)
    for n in range(100):
        comparison.add(record(f"T{n}", Outcome.CONNECTION_REFUSED))
    assert comparison.failed.count == 100
    assert len(comparison.failed.rows) == 5
    console = Console(file=io.StringIO(), width=120, no_color=True)
    console.print(render_comparison(comparison))
    assert "Failed since last time (100, 5 shown)" in console.file.getvalue()  # type: ignore[attr-defined]
