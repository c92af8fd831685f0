"""`echoprobe scp` and `echoprobe demo` as a user runs them: subprocesses, their output, their
exit codes, SIGINT/SIGTERM. Loopback only; each child is bounded by `--duration` or a
subprocess timeout and, if still alive at the end of a test, stopped through its own Popen
object (by PID)."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from echoprobe.cli.cmd_scp import SpecError, parse_fault, parse_listen
from echoprobe.cli.echoprobe import main
from echoprobe.net.client import probe
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult

ECHOPROBE = [sys.executable, "-m", "echoprobe"]
ECHOSCU = Path("/usr/bin/echoscu")
TIMEOUTS = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=2.0)
ENV = {**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}


class Child:
    """A child process whose stdout is read line by line in a thread (bounded waits)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*ECHOPROBE, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(end - time.monotonic(), 0.01))
            except queue.Empty:
                break
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} in {self.seen}")

    def finish(self, timeout: float = 10.0) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return self.proc.returncode, "\n".join([*self.seen, *rest, out or ""]), err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its PID
            self.proc.wait(timeout=5)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()


def _probe(host: str, port: int, called_ae: str = "ANY-SCP") -> ProbeResult:
    return asyncio.run(probe(host, port, called_ae=called_ae, timeouts=TIMEOUTS))


# -- echoprobe scp ---------------------------------------------------------------------------


def test_scp_answers_and_stops_by_itself(children: list[Child]) -> None:
    child = Child(
        "scp",
        "--duration",
        "3",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.44.1-2:0",
        "--fault",
        "ae=BROKEN;status=0x0110;error-comment=Disk full",
        "--fault",
        "addr=127.0.44.2;reject=1,1,7",
    )
    children.append(child)
    started = time.monotonic()
    port = int(child.wait_line(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    assert child.wait_line(r"listening on 127\.0\.44\.2:(\d+)  \[faults: reject 1,1,7\]")
    assert _probe("127.0.0.1", port).outcome is Outcome.SUCCESS
    assert _probe("127.0.44.1", port).outcome is Outcome.SUCCESS
    broken = _probe("127.0.44.1", port, called_ae="BROKEN")
    assert broken.outcome is Outcome.ECHO_FAILED_STATUS
    assert broken.detail["error_comment"] == "Disk full"
    rejected = _probe("127.0.44.2", port)
    assert rejected.outcome is Outcome.REJECTED_PERMANENT
    assert rejected.detail["reason"] == 7
    if ECHOSCU.exists():
        dcmtk = subprocess.run(
            [str(ECHOSCU), "-v", "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert dcmtk.returncode == 0, dcmtk.stderr
        assert "I: Received Echo Response (Success)" in dcmtk.stderr
    code, out, err = child.finish(timeout=10)
    assert code == 0, err
    assert 2.5 < time.monotonic() - started < 15.0
    counters = re.search(r"stopped after 3 s; counters: (.*)", out)
    assert counters, out
    values = dict(item.split("=") for item in counters.group(1).split())
    echoes = 4 if ECHOSCU.exists() else 3  # the rejected association has none
    assert values["echoes"] == str(echoes)
    assert values["rejected"] == "1"
    assert values["echo_failures"] == "1"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_scp_stops_cleanly_on_a_signal(children: list[Child], signum: int, code: int) -> None:
    child = Child("scp", "--listen", "127.0.0.1:0", "--reject", "2,3,2")
    children.append(child)
    port = int(child.wait_line(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    assert child.wait_line(r"^faults: reject 2,3,2")
    record = _probe("127.0.0.1", port)
    assert record.outcome is Outcome.REJECTED_TRANSIENT
    child.proc.send_signal(signum)  # our own child
    exit_code, out, _ = child.finish(timeout=10)
    assert exit_code == code
    name = signal.Signals(signum).name
    assert re.search(rf"stopped by {name}; counters: connections=1 .*rejected=1", out), out


@pytest.mark.parametrize(
    "args",
    [
        ["--listen", "127.0.0.1"],
        ["--listen", "::1:104"],
        ["--listen", "127.0.0.9-127.0.0.1:104"],
        ["--listen", "127.0.0.1:70000"],
        ["--abort-at", "lunch"],
        ["--reject", "1,1"],
        ["--status", "0x10000"],
        ["--delay", "echo"],
        ["--fault", "host=1.2.3.4;reject=1,1,7"],
        ["--fault", "ae=X;frobnicate=1"],
        # a fault for an address it does not listen on would never apply
        ["--listen", "127.0.0.1:11112", "--fault", "addr=127.0.0.2;reject=1,1,7"],
        ["--listen", "127.0.0.1:11112", "--fault", "addr=127.0.0.1:104;reject=1,1,7"],
        ["--duration", "0"],
    ],
)
def test_scp_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (argument errors are found before anything listens)."""
    bounded = args if "--duration" in args else [*args, "--duration", "1"]
    try:
        code = main(["scp", *bounded])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_listen_specifications() -> None:
    assert parse_listen("127.0.0.1:11112") == [("127.0.0.1", 11112)]
    assert parse_listen("[::1]:104") == [("::1", 104)]
    assert parse_listen("11112") == [("127.0.0.1", 11112)]
    assert parse_listen("127.0.1.1-127.0.1.3:104") == [
        ("127.0.1.1", 104),
        ("127.0.1.2", 104),
        ("127.0.1.3", 104),
    ]
    assert parse_listen("127.0.1.254-127.0.2.1:104")[-1] == ("127.0.2.1", 104)
    assert len(parse_listen("127.0.1.1-250:104")) == 250
    assert parse_listen("127.0.0.1:11112-11113") == [("127.0.0.1", 11112), ("127.0.0.1", 11113)]
    with pytest.raises(SpecError):
        parse_listen("127.0.0.0-127.1.0.1:104")  # more than 65536 addresses


def test_fault_specifications() -> None:
    kind, where, faults = parse_fault(
        "addr=127.0.1.5:104;delay=echo=2;trickle=0.1;abort-at=release"
    )
    assert (kind, where) == ("addr", "127.0.1.5:104")
    assert faults == Faults(delay={"echo": 2.0}, trickle=0.1, abort_at="release")
    kind, where, faults = parse_fault("ae=BROKEN;no-release-response;abort-with=2,6")
    assert faults.no_release_response
    assert (faults.abort_source, faults.abort_reason) == (2, 6)


# -- echoprobe demo --------------------------------------------------------------------------


def test_demo_sweeps_the_simulated_hospital_and_exits_0() -> None:
    start = time.monotonic()
    proc = subprocess.run(
        [*ECHOPROBE, "demo"],
        capture_output=True,
        text=True,
        timeout=40,
        env=ENV,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "200 DICOM peers" in out
    assert "Peers that need attention (37 of 200)" in out, out
    # one line per peer: the advice is cut, never wrapped onto a line of its own
    rows = [line for line in out.splitlines() if "Echo failed " in line and "@" in line]
    assert len(rows) == 3, out
    assert all("0x" in line for line in rows), out
    assert "By department" in out
    assert re.search(r"Result: 170 of 200 peers answer C-ECHO, 30 do not", out), out
    assert "Self-check: all 200 peers were classified as simulated" in out
    for words in ("Connection refused", "No DICOM answer", "Association rejected", "Echo failed"):
        assert words in out
    assert elapsed < 15.0
