"""`echoprobe load --workers/--start-at` and `echoprobe merge` through subprocesses.

The SCP is our `EchoSCP` in a thread of the test process (loopback, stops at teardown); every
run is bounded by its own arguments and by a subprocess timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from echoprobe.fleet.load_merge import merge_histograms, report_from_dict
from tests.conftest import ScpFactory
from tests.support.servers import free_port

FAST = ["-to", "2", "-ta", "2", "-td", "2", "--release-timeout", "2"]


def echoprobe(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "echoprobe", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_workers_complete_exactly_n_in_one_report(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory()
    out = tmp_path / "w2.json"
    done = echoprobe(
        "load",
        "127.0.0.1",
        str(scp.port),
        "-c",
        "4",
        "-n",
        "250",
        "--workers",
        "2",
        "--no-live",
        "--json",
        str(out),
        *FAST,
    )
    assert done.returncode == 0, done.stderr
    data = _json(out)
    assert data["attempted"] == data["succeeded"] == 250
    assert data["processes"] == 2
    assert sorted(p["succeeded"] for p in data["parts"]) == [125, 125]
    assert data["latency_ms"]["association"]["count"] == 250
    assert "by source" in done.stdout
    assert "2 worker processes" in done.stdout


def test_merge_adds_counts_and_merges_histograms_exactly(
    scp_factory: ScpFactory, tmp_path: Path
) -> None:
    scp = scp_factory()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path, n in ((a, "120"), (b, "80")):
        done = echoprobe(
            "load",
            "127.0.0.1",
            str(scp.port),
            "-c",
            "2",
            "-n",
            n,
            "-q",
            "--no-live",
            "--json",
            str(path),
            *FAST,
        )
        assert done.returncode == 0, done.stderr
    merged_path, html = tmp_path / "m.json", tmp_path / "m.html"
    done = echoprobe("merge", str(a), str(b), "--json", str(merged_path), "--report", str(html))
    assert done.returncode == 0, done.stderr
    merged = _json(merged_path)
    one, two = report_from_dict(_json(a)), report_from_dict(_json(b))
    assert merged["attempted"] == merged["succeeded"] == one.succeeded + two.succeeded == 200
    assert merged["outcomes"] == {}
    for name in ("association", "connect", "echo"):
        expected = merge_histograms([one.histograms[name], two.histograms[name]])
        got = report_from_dict(merged).histograms[name]
        assert got.buckets() == expected.buckets()  # bucket by bucket
        assert got.count == 200
        assert got.percentile(99) == expected.percentile(99)
    assert [p["source"] for p in merged["parts"]] == [str(a), str(b)]
    assert [p["succeeded"] for p in merged["parts"]] == [120, 80]
    assert merged["config"]["associations"] == 200
    assert "by source" in done.stdout
    assert "By source" in html.read_text()
    # a merge of merges keeps adding exactly, and names every original input
    again = tmp_path / "again.json"
    done = echoprobe("merge", str(merged_path), str(a), "-q", "--json", str(again))
    assert done.returncode == 0, done.stderr
    assert _json(again)["succeeded"] == 320
    assert len(_json(again)["parts"]) == 3


def test_merge_refuses_what_is_not_a_load_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "capacity"}')
    done = echoprobe("merge", str(bad))
    assert done.returncode == 2
    assert "not a load report" in done.stderr
    done = echoprobe("merge", str(tmp_path / "absent.json"))
    assert done.returncode == 2


def test_start_at_delays_the_start(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory()
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    out = tmp_path / "s.json"
    done = echoprobe(
        "load",
        "127.0.0.1",
        str(scp.port),
        "-c",
        "2",
        "-n",
        "20",
        "--workers",
        "2",
        "-q",
        "--no-live",
        "--start-at",
        start.isoformat(),
        "--json",
        str(out),
        *FAST,
    )
    assert done.returncode == 0, done.stderr
    data = _json(out)
    assert datetime.fromisoformat(data["started_at"]) >= start
    assert data["config"]["start_at"] == start.isoformat()
    assert data["succeeded"] == 20


def test_scale_out_usage_errors() -> None:
    for bad in (
        ["--workers", "0"],
        ["--workers", "many"],
        ["--start-at", "2026-12-04T17:00:00"],  # no time zone
        ["--start-at", "tomorrow"],
        ["--metrics-listen", "9464"],
        ["--find-capacity", "--workers", "2"],
    ):
        done = echoprobe("load", "127.0.0.1", "11112", "-c", "1", "-n", "1", *bad)
        assert done.returncode == 2, (bad, done.stderr)


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
            if key == name:
                return float(sample.value)
    return None


def test_ctrl_c_stops_every_worker_and_keeps_their_records(
    scp_factory: ScpFactory, tmp_path: Path
) -> None:
    scp = scp_factory()
    out = tmp_path / "int.json"
    metrics_port = free_port()
    argv = [
        sys.executable, "-m", "echoprobe", "load", "127.0.0.1", str(scp.port), "-c", "2",
        "--duration", "60", "--workers", "2", "--interval", "0.2", "--no-live", "-q",
        "--metrics-listen", f"127.0.0.1:{metrics_port}", "--json", str(out), *FAST,
    ]  # fmt: skip
    # Its own process group, as a terminal's: Ctrl-C reaches the parent and its workers.
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both workers running and counting
            running = _metric(metrics_port, "echoprobe_load_workers,state=running")
            done = _metric(metrics_port, "echoprobe_load_associations_total,outcome=success")
            if running == 2 and done:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 130, err
    data = _json(out)
    assert data["interrupted"]
    assert data["missing"] == []
    assert len(data["parts"]) == 2
    assert data["succeeded"] > 0
    assert data["succeeded"] == sum(p["succeeded"] for p in data["parts"])
