"""`echoprobe load` through subprocesses: summaries, JSON and HTML outputs, exit codes, SIGINT.

The SCP is our `EchoSCP` in a thread of the test process (loopback, stops at teardown); every
run is bounded by its own arguments and by a subprocess timeout.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from echoprobe.net.server import Faults
from tests.conftest import ScpFactory

FAST = ["-to", "2", "-ta", "2", "-td", "2", "--release-timeout", "2"]


def load(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "echoprobe", "load", *args, "--no-live"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class _Checker(HTMLParser):
    """Collects tags and every URL-like attribute; fails on unbalanced structure."""

    VOID = frozenset({"meta", "br", "img", "link", "input", "hr", "circle", "rect", "line", "path"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: dict[str, int] = {}
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") or (value and "url(" in value):
                self.urls.append(f"{name}={value}")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack, tag
        assert self.stack[-1] == tag, (self.stack[-5:], tag)
        self.stack.pop()


def check_html(path: Path) -> _Checker:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "<script", "@import", "//cdn"):
        assert forbidden not in text, forbidden
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == []
    assert checker.urls == []
    return checker


def test_closed_loop_run_writes_json_and_html(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory()
    out_json, out_html = tmp_path / "load.json", tmp_path / "load.html"
    proc = load(
        "127.0.0.1",
        str(scp.port),
        "-c",
        "4",
        "-n",
        "300",
        "--repeat",
        "2",
        "--interval",
        "0.1",
        "--json",
        str(out_json),
        "--report",
        str(out_html),
        *FAST,
    )
    assert proc.returncode == 0, proc.stderr
    assert "300 measured: 300 succeeded" in proc.stdout
    assert "whole association" in proc.stdout
    assert "associations/s" in proc.stdout
    data: dict[str, Any] = json.loads(out_json.read_text())
    assert data["kind"] == "load"
    assert data["ok"] is True
    assert data["succeeded"] == 300
    assert data["echoes"] == 600
    assert data["latency_ms"]["echo"]["count"] == 600
    assert sum(n for *_, n in data["latency_ms"]["association"]["buckets"]) == 300
    assert data["series"]
    assert data["cpu"]["seconds"] > 0
    assert {"p50", "p90", "p99", "p99.9", "max"} <= set(data["latency_ms"]["connect"])
    html = check_html(out_html)
    assert html.tags.get("svg", 0) >= 4  # throughput, latency, level, histogram


def test_open_loop_poisson_run(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.01}))
    out_json = tmp_path / "open.json"
    proc = load(
        "127.0.0.1",
        str(scp.port),
        "--rate",
        "150",
        "--arrivals",
        "poisson",
        "--seed",
        "3",
        "--duration",
        "0.8",
        "--warmup",
        "0.2",
        "--json",
        str(out_json),
        *FAST,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out_json.read_text())
    assert data["config"]["mode"] == "rate"
    assert data["config"]["arrivals"] == "poisson"
    assert data["latency_ms"]["start_lag"]["count"] == data["succeeded"]
    assert data["latency_ms"]["echo"]["p50"] >= 9.0
    assert "start lag" in proc.stdout


def test_failures_exit_1_with_reasons(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory(faults=Faults(reject=(2, 3, 1)))
    out_html = tmp_path / "fail.html"
    proc = load("127.0.0.1", str(scp.port), "-c", "2", "-n", "20", "--report", str(out_html))
    assert proc.returncode == 1, proc.stderr
    assert "rejected_transient" in proc.stdout
    assert "Temporary Congestion" in proc.stdout
    assert "Temporary Congestion" in out_html.read_text()
    check_html(out_html)


def test_find_capacity(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory(max_associations=3)
    out_json, out_html = tmp_path / "cap.json", tmp_path / "cap.html"
    proc = load(
        "127.0.0.1",
        str(scp.port),
        "--find-capacity",
        "--max-level",
        "16",
        "--step-duration",
        "0.3",
        "--json",
        str(out_json),
        "--report",
        str(out_html),
        *FAST,
    )
    assert proc.returncode == 0, proc.stderr
    assert "capacity: 3 at once" in proc.stdout
    data = json.loads(out_json.read_text())
    assert data["kind"] == "capacity"
    assert data["capacity"] == 3
    assert data["first_failure"] == 4
    assert "Local Limit Exceeded" in data["stop_reason"]
    assert check_html(out_html).tags.get("svg", 0) >= 4


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    cases = [
        ["127.0.0.1", "104", "-c", "4"],  # unbounded
        ["127.0.0.1", "104", "-n", "4"],  # no shape
        ["127.0.0.1", "104", "-c", "4", "--rate", "5", "-n", "4"],  # both shapes
        ["127.0.0.1", "104", "-c", "4", "-n", "4", "--ramp", "x"],
        ["127.0.0.1", "104", "-c", "4", "-n", "4", "--source-address", "nope"],
        ["127.0.0.1", "104", "-c", "4", "-n", "4", "--json", str(tmp_path / "no" / "x.json")],
        ["127.0.0.1", "0", "-c", "4", "-n", "4"],
    ]
    for args in cases:
        proc = load(*args, timeout=30)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "error" in proc.stderr


def test_sigint_stops_writes_and_exits_130(scp_factory: ScpFactory, tmp_path: Path) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.005}))
    out_json = tmp_path / "int.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "echoprobe",
            "load",
            "127.0.0.1",
            str(scp.port),
            "-c",
            "4",
            "--duration",
            "30",
            "--json",
            str(out_json),
            "--no-live",
            *FAST,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 130, err
    assert "interrupted" in out
    data = json.loads(out_json.read_text())
    assert data["interrupted"] is True
    assert data["succeeded"] > 0


def test_tls_options(scp_factory: ScpFactory, tmp_path: Path) -> None:
    from echoprobe.net.tls import PeerVerification, TLSConfig
    from tests.support.tls_certs import shared_kit

    kit = shared_kit()
    server = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    scp = scp_factory(tls=server)
    out_json = tmp_path / "tls.json"
    proc = load(
        "127.0.0.1",
        str(scp.port),
        "-c",
        "2",
        "-n",
        "10",
        "+tla",
        "+cf",
        kit.ca,
        "--json",
        str(out_json),
        *FAST,
    )
    assert proc.returncode == 0, proc.stderr
    assert "TLS" in proc.stdout
    assert json.loads(out_json.read_text())["config"]["tls"]
    proc = load("127.0.0.1", str(scp.port), "-c", "2", "-n", "10", "+cf", kit.ca)
    assert proc.returncode == 2
    assert "+tls" in proc.stderr


def test_a_closed_port_stops_the_run_at_once() -> None:
    """Nothing listens: the run stops after a handful of refused connections, says so, and
    does not blame the generator."""
    from tests.support.servers import free_port

    port = free_port()  # bound and released: nothing listens there
    started = time.monotonic()
    done = load("127.0.0.1", str(port), "-c", "8", "--duration", "30")
    assert time.monotonic() - started < 15.0
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert f"nothing listens on 127.0.0.1:{port}" in output
    assert "bottleneck" not in output
