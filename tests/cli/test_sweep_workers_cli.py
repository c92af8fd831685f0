"""`echoprobe sweep --workers N` through subprocesses: records, exit codes, SIGINT, a dead worker.

The peers are our `EchoSCP`s, one per 127.0.8.x address, each in its own thread of the test
process (stopped by the fixture, and by themselves after a bounded time). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from echoprobe.net.server import Faults
from tests.support.servers import ThreadedEchoSCP

ECHOPROBE = [sys.executable, "-m", "echoprobe"]
FAST = ["-to", "3", "-ta", "3", "-td", "5", "--release-timeout", "3", "--no-progress"]
HOSTS = [f"127.0.8.{i}" for i in range(1, 7)]


def _fleet(delay: float) -> list[ThreadedEchoSCP]:
    return [ThreadedEchoSCP(host=h, faults=Faults(delay={"echo": delay})).start() for h in HOSTS]


@pytest.fixture
def quick() -> Iterator[list[ThreadedEchoSCP]]:
    scps = _fleet(0.05)
    yield scps
    for scp in scps:
        scp.stop()


@pytest.fixture
def slow() -> Iterator[list[ThreadedEchoSCP]]:
    scps = _fleet(0.4)
    yield scps
    for scp in scps:
        scp.stop()


def _targets(scps: list[ThreadedEchoSCP], per_address: int) -> list[str]:
    return [
        f"AE{k}@{h}:{scp.port}"
        for scp, h in zip(scps, HOSTS, strict=True)
        for k in range(per_address)
    ]


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for_records(path: Path, count: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} records in {path} after {seconds} s")


def _workers_of(pid: int) -> list[int]:
    """The sweep's worker processes (its children running multiprocessing's spawn_main, not
    its resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(child))
    return found


def test_two_workers_one_record_per_target(quick: list[ThreadedEchoSCP], tmp_path: Path) -> None:
    targets = _targets(quick, 3)
    out = tmp_path / "sweep.jsonl"
    done = subprocess.run(
        [*ECHOPROBE, "sweep", "--workers", "2", "--per-host", "1", *FAST, "-o", str(out), *targets],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    records = _records(out)
    assert Counter(r["target"] for r in records) == Counter(targets)
    assert {r["outcome"] for r in records} == {"success"}
    assert [scp.counters.peak_associations for scp in quick] == [1] * len(HOSTS)
    assert f"{len(targets)}" in done.stderr  # the summary counts them all


def test_sigint_loses_no_record(slow: list[ThreadedEchoSCP], tmp_path: Path) -> None:
    targets = _targets(slow, 8)  # 8 x 0.4 s per address at --per-host 1: seconds left to stop
    out = tmp_path / "sweep.jsonl"
    process = subprocess.Popen(
        [*ECHOPROBE, "sweep", "--workers", "2", *FAST, "-o", str(out), *targets],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_records(out, 2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 130, err
    records = _records(out)
    assert Counter(r["target"] for r in records) == Counter(targets)
    outcomes = Counter(r["outcome"] for r in records)
    assert set(outcomes) <= {"success", "cancelled", "not_started"}
    assert outcomes["cancelled"] + outcomes["not_started"] > 0


def test_a_killed_worker_is_reported(slow: list[ThreadedEchoSCP], tmp_path: Path) -> None:
    targets = _targets(slow, 6)
    out = tmp_path / "sweep.jsonl"
    process = subprocess.Popen(
        [*ECHOPROBE, "sweep", "--workers", "2", *FAST, "-o", str(out), *targets],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_records(out, 1)
        workers = _workers_of(process.pid)
        assert workers
        os.kill(workers[0], signal.SIGKILL)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 3, err  # internal_error records were written
    assert "died" in err
    records = _records(out)
    assert Counter(r["target"] for r in records) == Counter(targets)
    died = [r for r in records if r["outcome"] == "internal_error"]
    assert died
    assert all("died" in r["error"] for r in died)
