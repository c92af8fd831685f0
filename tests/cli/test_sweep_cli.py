"""`echoprobe sweep` through subprocesses: outputs, exit codes, SIGINT/SIGTERM.

The peers run in a helper process (`tests/support/scp_fleet.py`) on 127.0.3.x loopback
addresses; it stops by itself after a bounded time and is otherwise stopped through its own
Popen object. Every wait here is bounded.
"""

from __future__ import annotations

import csv
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from echoprobe.report.csv_out import COLUMNS

SCP_FLEET = Path(__file__).resolve().parent.parent / "support" / "scp_fleet.py"
KINDS = "healthy=6,refuse=2,silent=60,reject=1,abort=1,status=1"
FAST = ["-to", "2", "-ta", "0.5", "-td", "0.5", "--release-timeout", "0.5"]
Fleet = dict[str, list[str]]


def _read_line(stream: Any, seconds: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=seconds)
    except queue.Empty:
        raise AssertionError("the SCP fleet did not start in time") from None


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCP_FLEET),
            "--kinds",
            KINDS,
            "--first",
            "127.0.3.1",
            "--lifetime",
            "90",
            "--idle-timeout",
            "30",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(proc.stdout, 15)
        assert line, "the SCP fleet exited before listening"
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the fleet stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "echoprobe", "sweep", *args]


def run_sweep(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sweep_cmd(*args),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_one_record_per_target(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "sweep.jsonl"
    kinds = ("healthy", "refuse", "reject", "abort", "status")
    targets = [t for kind in kinds for t in fleet[kind]]
    done = run_sweep(*targets, *FAST, "--format", "jsonl", "--output", str(out))
    assert done.returncode == 1, done.stderr
    records = read_jsonl(out)
    by_target = {r["target"]: r for r in records}
    assert len(records) == len(by_target) == len(targets)
    expected = {
        "healthy": "success",
        "refuse": "connection_refused",
        "reject": "rejected_permanent",
        "abort": "aborted_by_peer",
        "status": "echo_failed_status",
    }
    for kind, outcome in expected.items():
        for target in fleet[kind]:
            assert by_target[target]["outcome"] == outcome
    ok = by_target[fleet["healthy"][0]]
    assert set(ok) >= {
        "target",
        "host",
        "port",
        "called_ae",
        "calling_ae",
        "outcome",
        "status",
        "detail",
        "timings_ms",
        "peer",
    }
    assert list(ok["timings_ms"]) == [
        "resolve",
        "connect",
        "tls",
        "associate",
        "echo",
        "release",
        "total",
    ]
    assert ok["timings_ms"]["tls"] is None
    assert ok["status"] == 0
    assert ok["peer"]["implementation_class_uid"]
    assert by_target[fleet["status"][0]]["status"] == 0x0110
    assert "sweep summary" in done.stderr
    assert done.stdout == ""


def test_csv_to_stdout(fleet: Fleet) -> None:
    targets = fleet["healthy"][:2] + fleet["refuse"][:1]
    done = run_sweep(*targets, *FAST, "--format", "csv", "-q")
    assert done.returncode == 1, done.stderr
    rows = list(csv.reader(done.stdout.splitlines()))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 4
    outcome = rows[0].index("outcome")
    assert sorted(r[outcome] for r in rows[1:]) == ["connection_refused", "success", "success"]
    assert done.stderr == ""  # -q: no summary; not a terminal: no progress


def test_table_and_summary(fleet: Fleet, tmp_path: Path) -> None:
    inventory = tmp_path / "more.txt"
    inventory.write_text("bad target\n", encoding="utf-8")  # in a file: a record, not exit 2
    targets = [*fleet["healthy"], *fleet["reject"], "--targets", str(inventory)]
    done = run_sweep(*targets, *FAST)
    assert done.returncode == 1, done.stderr
    for target in fleet["healthy"]:
        assert target in done.stdout
    assert "rejected_permanent" in done.stdout
    assert "invalid_target" in done.stdout
    assert "\x1b[" not in done.stdout + done.stderr  # no colours, no live display off a TTY
    assert "8 targets: 6 succeeded, 2 failed" in done.stderr
    assert "latency per phase" in done.stderr
    table_file = tmp_path / "table.txt"
    again = run_sweep(*fleet["healthy"][:1], *FAST, "-o", str(table_file))
    assert again.returncode == 0, again.stderr
    assert "success" in table_file.read_text()


def test_all_healthy_exits_0_with_repeat(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "ok.jsonl"
    done = run_sweep(*fleet["healthy"], *FAST, "--repeat", "3", "-aet", "TESTER", "-o", str(out))
    assert done.returncode == 0, done.stderr
    records = read_jsonl(out)
    assert [r["outcome"] for r in records] == ["success"] * 6
    assert {r["echoes"] for r in records} == {3}
    assert {r["calling_ae"] for r in records} == {"TESTER"}


@pytest.mark.parametrize(
    ("kinds", "options", "code"),
    [
        (("healthy", "refuse"), (), 1),
        (("healthy", "refuse"), ("--fail-on", "rejected_permanent,aborted_by_peer"), 0),
        (("healthy", "reject"), ("--fail-on", "rejected_permanent"), 1),
        (("healthy", "refuse"), ("--fail-on", "any"), 1),
        (("healthy", "refuse"), ("--min-success", "0.7"), 0),  # 6 of 8 = 75 %
        (("healthy", "refuse"), ("--min-success", "80%"), 1),
        (("healthy", "refuse"), ("--min-success", "0.5", "--fail-on", "connection_refused"), 1),
    ],
)
def test_fail_on_and_min_success(
    fleet: Fleet, kinds: tuple[str, ...], options: tuple[str, ...], code: int
) -> None:
    targets = [t for kind in kinds for t in fleet[kind]]
    done = run_sweep(*targets, *FAST, "--format", "jsonl", "-q", *options)
    assert done.returncode == code, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("127.0.3.1:1", "--fail-on", "nonsense"),
        ("127.0.3.1:1", "--min-success", "2"),
        ("127.0.3.1:1", "--concurrency", "0"),
        ("127.0.3.1:1", "-ta", "-1"),
        ("127.0.3.1:1", "-aet", "A" * 17),
        ("--targets", "/nonexistent/inventory.csv"),
        ("127.0.3.1:1", "--output", "/nonexistent/dir/out.jsonl"),
        ("127.0.3.1:1", "--format", "xml"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    done = run_sweep(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "error" in done.stderr


def test_inventory_files_with_malformed_entries(fleet: Fleet, tmp_path: Path) -> None:
    healthy = fleet["healthy"]
    host0, port0 = healthy[0].rsplit(":", 1)
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        "host,port,called_ae,name,tags,timeout\n"
        f"{host0},{port0},ARCHIVE,Main archive,archive;west,5\n"
        f"{host0},not-a-port,X,,,\n"
        f"{host0},{port0},ARCHIVE,duplicate,,5\n"
    )
    yaml_file = tmp_path / "more.yaml"
    yaml_file.write_text(f"- {healthy[1]}\n- host: 127.0.3.1\n  port: [1]\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    out = tmp_path / "out.jsonl"
    done = run_sweep(
        "--targets",
        str(inventory),
        "--targets",
        str(yaml_file),
        "--targets",
        str(empty),
        *FAST,
        "-o",
        str(out),
    )
    assert done.returncode == 1, done.stderr
    records = read_jsonl(out)
    assert Counter(r["outcome"] for r in records) == Counter({"success": 2, "invalid_target": 2})
    archive = next(r for r in records if r["called_ae"] == "ARCHIVE")
    assert (archive["name"], archive["tags"]) == ("Main archive", ["archive", "west"])
    sources = sorted(r["detail"]["source"] for r in records if r["outcome"] == "invalid_target")
    assert sources == [f"{inventory}:3", f"{yaml_file}[2]"]
    assert "duplicate" in done.stderr
    nothing = run_sweep("--targets", str(empty))
    assert nothing.returncode == 2


def test_whole_target_deadline(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "deadline.jsonl"
    started = time.monotonic()
    done = run_sweep(*fleet["silent"][:3], "-ta", "20", "--timeout", "0.3", "-o", str(out))
    assert time.monotonic() - started < 10
    assert done.returncode == 1, done.stderr
    assert {r["outcome"] for r in read_jsonl(out)} == {"deadline_exceeded"}


def _wait_for_lines(path: Path, count: int, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {count} lines in time")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_sweep_loses_nothing(
    fleet: Fleet, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    out = tmp_path / "interrupted.jsonl"
    targets = fleet["healthy"] + fleet["silent"]
    proc = subprocess.Popen(
        sweep_cmd(*targets, "-c", "20", "-ta", "20", "--format", "jsonl", "-o", str(out)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_lines(out, len(fleet["healthy"]))
        time.sleep(0.1)  # let the workers reach the silent peers
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == code, stderr
    records = read_jsonl(out)
    assert len(records) == len({r["target"] for r in records}) == len(targets)
    counts = Counter(r["outcome"] for r in records)
    assert counts["success"] == len(fleet["healthy"])
    assert counts["cancelled"] >= 1
    assert counts["not_started"] >= 1
    assert counts["cancelled"] + counts["not_started"] == len(fleet["silent"])
    # The summary and nothing else: no notice, no traceback, no asyncio noise.
    assert stderr.startswith("sweep summary"), stderr
    for noise in ("Traceback", "Error", "never retrieved", "Fatal", "stopping"):
        assert noise not in stderr, stderr
    assert stdout == ""


def test_second_sigint_exits_at_once(fleet: Fleet, tmp_path: Path) -> None:
    """Targets from a producer that has not finished (stdin still open): the first SIGINT
    stops the probes, but the sweep still owes records for what the producer may send; the
    second quits at once, keeping every finished record and counting the targets without one.
    The event loop is never blocked by the open stdin (it is read in a thread)."""
    out = tmp_path / "twice.jsonl"
    targets = fleet["healthy"] + fleet["silent"]
    proc = subprocess.Popen(
        sweep_cmd("--targets", "-", "-c", "64", "-ta", "20", "--format", "jsonl", "-o", str(out)),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write("".join(f"{t}\n" for t in targets))
        proc.stdin.flush()  # and kept open: the producer has not finished
        _wait_for_lines(out, len(fleet["healthy"]))
        proc.send_signal(signal.SIGINT)
        # Two signals sent at once may arrive as one (standard signals do not queue); the
        # sweep waits for the producer meanwhile, so a pause changes nothing else.
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130, stderr
    records = read_jsonl(out)  # every line written is whole
    assert len(records) == len({r["target"] for r in records}) <= len(targets)
    assert sum(r["outcome"] == "success" for r in records) == len(fleet["healthy"])
    # Every finished record is kept, and the message counts the targets left without one.
    match = re.search(
        r"SIGINT again: quit at once; ([\d,]+) records kept, ([\d,]+) targets", stderr
    )
    assert match is not None, stderr
    kept, missing = (int(g.replace(",", "")) for g in match.groups())
    assert kept == len(records)
    assert kept + missing == len(targets)
    assert "Traceback" not in stderr


def test_closed_stdout_ends_quietly(fleet: Fleet) -> None:
    """`echoprobe sweep … | head -2`: the reader goes away; the sweep stops, says nothing and
    exits 141 (as a program killed by SIGPIPE)."""
    targets = fleet["healthy"] + fleet["silent"]
    proc = subprocess.Popen(
        sweep_cmd(*targets, "-c", "4", "-ta", "20", "--format", "jsonl"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        assert first.startswith(b"{")
        proc.stdout.close()  # as `head -1` does once it has its line
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 141, stderr
    assert stderr == ""


def test_exit_code_rules() -> None:
    from echoprobe.cli.cmd_sweep import decide_exit
    from echoprobe.report.summary import SweepSummary
    from echoprobe.results import Outcome, ProbeResult

    def summary_of(*outcomes: Outcome) -> SweepSummary:
        summary = SweepSummary()
        for i, outcome in enumerate(outcomes):
            summary.add(ProbeResult(f"h{i}:104", f"h{i}", 104, "A", "B", outcome))
        return summary

    ok = summary_of(Outcome.SUCCESS, Outcome.RELEASE_TIMEOUT)
    assert decide_exit(ok, fail_on=None, min_success=None) == 0
    bug = summary_of(Outcome.SUCCESS, Outcome.INTERNAL_ERROR)
    assert decide_exit(bug, fail_on=frozenset({"dns_error"}), min_success=0.0) == 3
    assert decide_exit(bug, fail_on=None, min_success=None, signum=signal.SIGINT) == 130
    assert decide_exit(ok, fail_on=None, min_success=None, signum=signal.SIGTERM) == 143
    mixed = summary_of(Outcome.SUCCESS, Outcome.CONNECTION_REFUSED)
    assert decide_exit(mixed, fail_on=None, min_success=None) == 1
    assert decide_exit(mixed, fail_on=frozenset({"dns_error"}), min_success=None) == 0
    assert decide_exit(mixed, fail_on=None, min_success=0.5) == 0
    assert decide_exit(mixed, fail_on=None, min_success=0.51) == 1


def test_usage_errors_are_one_line() -> None:
    """A usage error says what is wrong and where the help is, in one line, exit 2: a
    40-character AE title as much as a malformed target."""
    for args in (("-aet", "A" * 40, "127.0.0.1"), ("127.0.2.1:70000",)):
        done = subprocess.run(
            sweep_cmd(*args), capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("echoprobe sweep: error: ")
        assert "usage:" not in done.stderr


def test_metrics_listen_counts_every_record(fleet: Fleet, tmp_path: Path) -> None:
    """`--metrics-listen`: the final `echoprobe_sweep_targets_total` is the records written,
    by outcome, scraped while the metrics linger after the sweep."""
    import urllib.request

    from tests.support.servers import free_port

    port = free_port()
    out = tmp_path / "metrics.jsonl"
    targets = fleet["healthy"] + fleet["refuse"]
    listen = ["--metrics-listen", f"127.0.0.1:{port}", "--metrics-linger", "20"]
    proc = subprocess.Popen(
        sweep_cmd(*targets, "--format", "jsonl", "-o", str(out), *listen),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_lines(out, len(targets))
        text = ""
        for _ in range(100):  # the sweep has written everything; the metrics linger
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.05)
                continue
            if "echoprobe_sweep_targets_total" in text:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)  # ends the linger
        proc.communicate(timeout=30)
    records = read_jsonl(out)
    counts = Counter(r["outcome"] for r in records)
    for outcome, count in counts.items():
        assert f'echoprobe_sweep_targets_total{{outcome="{outcome}"}} {float(count)}' in text, text
    assert "echoprobe_sweep_probe_duration_seconds_bucket" in text
    assert "echoprobe_sweep_in_flight" in text
