"""`sweep --report FILE.html`: self-contained, grouped, escaped (no network)."""

from __future__ import annotations

import re

from echoprobe.report.summary import SweepSummary
from echoprobe.report.sweep_html import render_sweep_html
from echoprobe.results import Outcome, ProbeResult


def record(n: int, outcome: Outcome, total: float = 5.0, **fields: object) -> ProbeResult:
    return ProbeResult(
        target=f"PACS@127.0.4.{n}:104", host=f"127.0.4.{n}", port=104, called_ae="PACS",
        calling_ae="ECHOSCU", outcome=outcome, timings_ms={"connect": 1.0, "total": total},
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_report_is_self_contained_grouped_and_escaped() -> None:
    summary = SweepSummary(group_by="department")
    for n in range(1, 40):
        summary.add(record(n, Outcome.SUCCESS, total=float(n), tags=("department=CT",)))
    summary.add(
        record(
            50,
            Outcome.ECHO_FAILED_STATUS,
            tags=("department=<MR>",),
            detail={"status": 0x0110, "error_comment": "<script>alert(1)</script>"},
            phase="echo",
        )
    )
    summary.add(record(51, Outcome.NOT_STARTED))
    page = render_sweep_html(summary)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page  # peer text is escaped, and the page has none of its own
    assert "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=", page)  # nothing fetched from anywhere
    assert "http" not in page
    for heading in ("Outcomes", "By department / tag", "Peers that need attention",
                    "Latency per phase", "Time per target"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert "&lt;MR&gt;" in page
    assert "Processing failure" in page
    assert "not checked (stopped)" in page
    assert page.count('class="bar"') <= 24
