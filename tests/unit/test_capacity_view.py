"""The capacity curve as an SCP engineer reads it: one line per step, the capacity marked."""

from __future__ import annotations

import io

from rich.console import Console

from echoprobe.fleet.capacity import CapacityReport, CapacityStep
from echoprobe.report.load_report import _short_reason, capacity_table

REJECTED = (
    "rejected (6,880 of 11,459): rejected_transient: association rejected: Rejected "
    "Transient, Service Provider (Presentation Related), Local Limit Exceeded"
)


def _step(level: float, ok: bool, rate: float, cpu: float = 0.2) -> CapacityStep:
    return CapacityStep(
        level=level,
        ok=ok,
        reason=None if ok else REJECTED,
        assoc_per_s=rate,
        echoes_per_s=rate,
        p50=20.0,
        p99=25.0,
        attempted=100,
        succeeded=100 if ok else 40,
        failed=0 if ok else 60,
        outcomes={},
        cpu_fraction=cpu,
    )


def test_failed_steps_are_one_short_line() -> None:
    assert _short_reason(REJECTED) == "rejected 60% (rejected_transient)"
    assert _short_reason("timed out (5 of 10): dimse_timeout: x") == "timed out 50% (dimse_timeout)"
    assert _short_reason("no association completed") == "no association completed"


def test_the_capacity_row_is_marked() -> None:
    steps = [_step(32, True, 1400), _step(50, True, 2200), _step(51, False, 2250, cpu=0.95)]
    report = CapacityReport(
        mode="concurrency",
        capacity=50,
        first_failure=51,
        stop_reason=REJECTED,
        steps=steps,
        config={},
        best=steps[1],
        at_capacity=None,
        series=[],
        warnings=[],
    )
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(capacity_table(report))
    text = out.getvalue()
    assert "held  ◀ capacity" in text
    assert "rejected 60% (rejected_transient)" in text
    assert "Presentation Related" not in text  # the peer's words come once, under the table
