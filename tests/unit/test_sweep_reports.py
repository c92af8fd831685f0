"""Histogram, limits, and the sweep's writers, table and summary (no network)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from echoprobe._values import replace
from echoprobe.cli.cmd_sweep import ProgressView, probe_bound
from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.limits import HostLimiter, RateLimiter, effective_concurrency
from echoprobe.options import Timeouts
from echoprobe.report.admin import explain, human_outcome
from echoprobe.report.csv_out import COLUMNS, CsvWriter
from echoprobe.report.jsonl import JsonlWriter, record_dict
from echoprobe.report.summary import SweepSummary, render_summary
from echoprobe.report.table import render_table, results_table, sort_results
from echoprobe.results import Outcome, PeerInfo, ProbeResult


def record(
    target: str,
    outcome: Outcome = Outcome.SUCCESS,
    total: float = 5.0,
    **fields: object,
) -> ProbeResult:
    host, _, port = target.rpartition("@")[2].rpartition(":")
    timings = {"resolve": 0.01, "connect": 1.0, "total": total}
    if outcome is Outcome.SUCCESS:
        timings |= {"associate": 1.0, "echo": 0.5, "release": 0.2}
    return ProbeResult(
        target=target,
        host=host,
        port=int(port),
        called_ae="ANY-SCP",
        calling_ae="ECHOSCU",
        outcome=outcome,
        status=0 if outcome is Outcome.SUCCESS else None,
        timings_ms=timings,
        **fields,  # type: ignore[arg-type]
    )


# --- histogram ---------------------------------------------------------------------------------


def test_histogram_percentiles_are_within_precision() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(2, 1.5) for _ in range(5000)]
    h = LatencyHistogram()
    h.extend(values)
    ordered = sorted(values)
    for q in (1, 25, 50, 90, 99, 99.9):
        exact = ordered[max(0, math.ceil(q * len(ordered) / 100 - 1e-9) - 1)]
        got = h.percentile(q)
        assert got is not None
        assert abs(got - exact) <= exact * 0.011
    assert h.percentile(0) == min(values)
    assert h.percentile(100) == max(values)
    assert h.count == 5000
    assert h.mean == pytest.approx(sum(values) / 5000)
    assert len(h._buckets) < 2000


def test_histogram_edges() -> None:
    h = LatencyHistogram()
    assert h.percentile(50) is None
    assert h.mean is None
    h.record(0.0)
    h.record(0.0)
    assert h.percentile(50) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        h.record(-1)
    with pytest.raises(ValueError, match="non-negative"):
        h.record(float("nan"))
    with pytest.raises(ValueError, match="percentile"):
        h.percentile(101)
    other = LatencyHistogram()
    other.record(10.0)
    h.merge(other)
    assert (h.count, h.min, h.max) == (3, 0.0, 10.0)
    with pytest.raises(ValueError, match="precision"):
        h.merge(LatencyHistogram(precision=0.05))


# --- limits ------------------------------------------------------------------------------------


def test_effective_concurrency_caps_at_the_open_file_limit() -> None:
    limit = effective_concurrency(10, raise_limit=False)
    assert limit.effective == 10
    assert not limit.capped
    huge = effective_concurrency(10**9, raise_limit=False, reserve=100)
    if huge.nofile_soft is not None:
        assert huge.effective == max(1, huge.nofile_soft - 100)
        assert "capped from 1000000000" in huge.describe()
    with pytest.raises(ValueError, match="at least 1"):
        effective_concurrency(0)


def test_host_limiter_bounds_and_forgets() -> None:
    limiter = HostLimiter(2)
    for _ in range(2):
        assert not limiter.full("127.0.5.1")
        limiter.acquire("127.0.5.1")
    assert limiter.full("127.0.5.1")
    assert limiter.busy("127.0.5.1") == 2
    assert not limiter.full("127.0.5.2")  # per host
    with pytest.raises(RuntimeError, match="no free slot"):
        limiter.acquire("127.0.5.1")
    limiter.release("127.0.5.1")
    assert not limiter.full("127.0.5.1")
    limiter.release("127.0.5.1")
    assert limiter.busy("127.0.5.1") == 0
    assert limiter._taken == {}  # idle hosts are forgotten
    unlimited = HostLimiter(0)
    for _ in range(100):
        unlimited.acquire("x")
    assert unlimited.limit is None
    assert not unlimited.full("x")
    unlimited.release("x")


async def test_rate_limiter_spaces_starts() -> None:
    limiter = RateLimiter(100, jitter=0.5, rng=random.Random(1))
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(11):
        await limiter.wait()
        times.append(loop.time())
    assert times[-1] - times[0] >= 10 * 0.01 * 0.5 - 0.002
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="jitter"):
        RateLimiter(1, jitter=1.5)


# --- writers -----------------------------------------------------------------------------------


def test_jsonl_writer_flushes_each_record(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = JsonlWriter(path)
    writer.write(record("127.0.0.1:104"))
    assert path.read_text().count("\n") == 1  # on disk before close
    writer.write(record("127.0.0.2:104", Outcome.CONNECTION_REFUSED, error="refused"))
    writer.close()
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["success", "connection_refused"]
    assert list(lines[1]["timings_ms"]) == [
        "resolve",
        "connect",
        "tls",
        "associate",
        "echo",
        "release",
        "total",
    ]
    assert lines[1]["timings_ms"]["echo"] is None
    assert writer.count == 2


def test_record_dict_keeps_extra_timings() -> None:
    base = record("127.0.0.1:104")
    data = record_dict(replace(base, timings_ms={"total": 1.0, "queue": 2.0}))
    assert data["timings_ms"]["queue"] == 2.0


def test_jsonl_writer_on_a_stream_does_not_close_it() -> None:
    stream = io.StringIO()
    with JsonlWriter(stream) as writer:
        writer.write(record("127.0.0.1:104"))
    assert not stream.closed
    assert json.loads(stream.getvalue())["target"] == "127.0.0.1:104"


def test_csv_writer(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    peer = PeerInfo(address="127.0.0.1:104", implementation_version_name="=HYPERLINK(1)")
    with CsvWriter(path) as writer:
        assert path.read_text().strip() == ",".join(COLUMNS)
        writer.write(record("127.0.0.1:104", peer=peer, tags=("a", "b")))
        writer.write(
            record(
                "127.0.0.2:104",
                Outcome.REJECTED_PERMANENT,
                detail={"result": 1, "source": 1, "reason": 3},
                error="@rejected",
            )
        )
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert rows[0]["implementation_version_name"] == "'=HYPERLINK(1)"  # not a formula
    assert rows[0]["tags"] == "a;b"
    assert rows[0]["status"] == "0"
    assert rows[0]["echo_ms"] == "0.5"
    assert rows[1]["error"] == "'@rejected"
    assert json.loads(rows[1]["detail"]) == {"result": 1, "source": 1, "reason": 3}
    assert rows[1]["echo_ms"] == ""


# --- table and summary -------------------------------------------------------------------------


def test_table_orders_and_limits() -> None:
    rows = [
        record("127.0.5.10:104"),
        record("127.0.5.9:104", Outcome.ACSE_TIMEOUT, total=1000.0, error="associate timeout"),
        record("name.example:104"),
        record("PACS@127.0.5.9:11112"),
    ]
    assert [r.target for r in sort_results(rows)] == [
        "127.0.5.9:104",
        "PACS@127.0.5.9:11112",
        "127.0.5.10:104",
        "name.example:104",
    ]
    assert sort_results(rows, "outcome")[0].outcome is Outcome.ACSE_TIMEOUT
    assert results_table(rows).row_count == 4
    assert results_table(rows, max_rows=2).row_count == 3
    console = Console(file=io.StringIO(), width=200, no_color=True)
    render_table(rows, console, title="fleet")
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "acse_timeout" in text
    assert "associate timeout" in text
    assert "1,000" in text


def test_summary_counts_and_lists() -> None:
    summary = SweepSummary(keep_failing=2, keep_slowest=2)
    records = [
        record("127.0.5.1:104", total=5.0),
        record("127.0.5.2:104", total=50.0),
        record("127.0.5.3:104", total=7.0),
        record("127.0.5.4:104", Outcome.CANCELLED, total=3.0),
        record("127.0.5.5:104", Outcome.CONNECTION_REFUSED, error="refused"),
        record("127.0.5.6:104", Outcome.DNS_ERROR, error="no name"),
        record("127.0.5.7:104", Outcome.ACSE_TIMEOUT, error="slow"),
        record("127.0.5.8:104", Outcome.RELEASE_TIMEOUT, total=9.0),
    ]
    summary.extend(records)
    assert summary.count == 8
    assert summary.successes == 4  # release trouble still means the echo succeeded
    assert (summary.succeeded, summary.release_trouble) == (3, 1)
    assert (summary.failed, summary.stopped) == (3, 1)
    assert summary.failing_count == 4
    assert len(summary.failing) == 2
    assert summary.failing_unlisted == 1
    assert [r.target for r in summary.slowest] == ["127.0.5.2:104", "127.0.5.8:104"]
    assert summary.success_ratio == 0.5
    assert summary.latency["total"].count == 7  # the cancelled probe is not a latency
    assert summary.latency["echo"].count == 3
    console = Console(file=io.StringIO(), width=160, no_color=True)
    render_summary(summary, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    # each number of the headline is a row (or a sum of rows) of the outcome table below it
    assert (
        "8 targets: 3 succeeded, 1 echoed but did not release, 3 failed, "
        "1 not checked (sweep stopped)" in text
    )
    assert re.search(r"success +OK +3", text), text
    assert "Connection refused" in text
    assert "p99" in text
    again = render_summary(iter(records), Console(file=io.StringIO()))
    assert again.count == 8


def test_a_rare_outcome_is_listed_before_the_commoner_ones() -> None:
    """Nine refused devices and one silent one: the silent one is in the list of ten."""
    summary = SweepSummary(keep_failing=10)
    for n in range(1, 20):
        summary.add(record(f"127.0.6.{n}:104", Outcome.CONNECTION_REFUSED))
    summary.add(record("127.0.6.99:104", Outcome.ACSE_TIMEOUT))
    failing = summary.failing
    assert len(failing) == 10
    assert failing[0].outcome is Outcome.ACSE_TIMEOUT
    attention = summary.admin.attention(limit=10)
    assert Outcome.ACSE_TIMEOUT in {r.outcome for r in attention}
    console = Console(file=io.StringIO(), width=100, no_color=True)
    render_summary(summary, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "127.0.6.99:104" in text
    assert "Peers that need attention (20 of 20; 10 shown" in text


def test_a_stopped_sweep_is_not_counted_as_failed() -> None:
    summary = SweepSummary()
    summary.add(record("127.0.7.1:104", Outcome.CONNECTION_REFUSED))
    for n in range(2, 6):
        summary.add(record(f"127.0.7.{n}:104", Outcome.NOT_STARTED))
    summary.add(record("127.0.7.9:104", Outcome.CANCELLED))
    console = Console(file=io.StringIO(), width=120, no_color=True)
    render_summary(summary, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "6 targets: 0 succeeded, 1 failed, 5 not checked (sweep stopped)" in text
    assert "Peers that need attention (1 of 6)" in text


def test_long_reject_text_stays_on_one_line() -> None:
    rejected = record(
        "PACS@127.0.8.1:104",
        Outcome.REJECTED_PERMANENT,
        error="association rejected: " + "rejected-permanent, service-user, " * 8,
        detail={"result": 1, "source": 1, "reason": 7},
    )
    failing = record(
        "ARCH@127.0.8.2:104",
        Outcome.ECHO_FAILED_STATUS,
        detail={"status": 0x0110, "error_comment": "database unavailable " * 10},
    )
    summary = SweepSummary()
    summary.extend([rejected, failing])
    console = Console(file=io.StringIO(), width=100, no_color=True)
    render_summary(summary, console)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    row = [line for line in lines if line.lstrip().startswith("PACS@127.0.8.1")]
    assert len(row) == 1
    assert "unknown called AE title: fix the inventory" in row[0]
    status_row = [line for line in lines if line.lstrip().startswith("ARCH@127.0.8.2")]
    assert "Processing failure" in status_row[0]
    assert all(len(line) <= 100 for line in lines)
    # no continuation lines: the comment appears only on the row itself
    comment_lines = [line for line in lines if "database unavail" in line]
    assert comment_lines == status_row


def test_groups_by_department_tag() -> None:
    summary = SweepSummary(group_by="department")
    summary.add(record("127.0.9.1:104", tags=("department=CT", "site=north")))
    summary.add(record("127.0.9.2:104", Outcome.CONNECTION_REFUSED, tags=("department=CT",)))
    summary.add(record("127.0.9.3:104", tags=("department:MR",)))
    summary.add(record("127.0.9.4:104"))
    assert set(summary.admin.groups) == {"CT", "MR", "(no tag)"}
    assert summary.admin.groups["CT"].failed == 1
    console = Console(file=io.StringIO(), width=120, no_color=True)
    render_summary(summary, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"CT +2 +1 +1", text), text
    assert text.index(" CT ") < text.index(" MR ") < text.index("(no tag)")


def test_every_outcome_has_plain_words_and_advice() -> None:
    for outcome in Outcome:
        assert human_outcome(outcome) != outcome.value, outcome
        advice = explain(record("127.0.9.9:104", outcome, error="x"))
        assert advice
        assert "\n" not in advice
        assert len(advice) <= 60


def test_progress_says_what_bounds_the_long_tail() -> None:
    stats = SimpleNamespace(
        emitted=998, total_hint=1000, finished=False, elapsed=10.0, in_flight=2,
        stopping=False, by_outcome={"success": 998},
    )  # fmt: skip
    view = ProgressView(lambda: stats, 1000, bound=12.0)  # type: ignore[arg-type,return-value]
    console = Console(file=io.StringIO(), width=120, no_color=True)
    console.print(view)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "ETA" not in text
    assert "waiting for the last 2, each done within 12s" in text
    stats.emitted, stats.in_flight = 500, 256
    console = Console(file=io.StringIO(), width=120, no_color=True)
    console.print(view)
    assert "ETA 10s" in console.file.getvalue()  # type: ignore[attr-defined]
    assert probe_bound(Timeouts(), 1) == 60.0
    assert probe_bound(Timeouts(total=None), 2) == 10 + 30 + 2 * 30 + 10


def test_empty_summary() -> None:
    console = Console(file=io.StringIO(), width=100, no_color=True)
    summary = render_summary([], console)
    assert summary.success_ratio is None
    assert "0 targets" in console.file.getvalue()  # type: ignore[attr-defined]
