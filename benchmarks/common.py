"""Shared plumbing: CPU pinning, the SCP process, client worker processes, statistics.

Every measurement runs in its own client process (`benchmarks.worker`) pinned to CPU 0, so its
CPU time and peak RSS are its own; the SCP runs in another process (`benchmarks.scp_server`)
pinned to CPU 1. Processes are stopped by closing their stdin (they exit by themselves after a
bounded time in any case) and, only if that fails, by their own PID.
"""

# ruff: noqa: RUF001, RUF002  (the tables print en dashes and multiplication signs)

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLIENT_CPU = "0"
SCP_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

JSON = dict[str, Any]


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """`argv` run under `taskset -c cpu` when the machine has that CPU, else unpinned."""
    if (os.cpu_count() or 1) > int(cpu) and Path("/usr/bin/taskset").exists():
        return ["/usr/bin/taskset", "-c", cpu, *argv]
    return argv


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, from /proc (10 ms resolution)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_busy_seconds() -> dict[str, float]:
    """Busy (non-idle) seconds of each CPU since boot, from /proc/stat: {"0": …, "1": …}."""
    out: dict[str, float] = {}
    try:
        text = Path("/proc/stat").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values[:8]]
            out[name[3:]] = (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK
    return out


def raise_nofile() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: 8192 connections need as many descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- statistics


@dataclass(frozen=True, slots=True)
class Summary:
    median: float
    low: float
    high: float
    q1: float
    q3: float
    n: int

    def as_json(self) -> JSON:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "q1": self.q1,
            "q3": self.q3,
            "n": self.n,
        }


def summarize(values: list[float]) -> Summary | None:
    if not values:
        return None
    if len(values) == 1:
        v = values[0]
        return Summary(v, v, v, v, v, 1)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Summary(statistics.median(values), min(values), max(values), q1, q3, len(values))


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0 and abs(value) >= 10:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.{max(digits, 2)}f}"


def fmt_summary(s: Summary | None) -> str:
    """`median (min–max)`."""
    if s is None:
        return "–"
    if s.n == 1:
        return fmt_num(s.median)
    return f"{fmt_num(s.median)} ({fmt_num(s.low)}–{fmt_num(s.high)})"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    if r >= 100:
        return f"{r:,.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


# -- the SCP process


class ScpProcess:
    """`benchmarks.scp_server` in its own process, pinned to the SCP's CPU.

    Use as a context manager; the server prints one JSON line when ready and one when it
    stops (its counters and CPU time). It stops when its stdin closes or after `max_seconds`.
    """

    def __init__(self, args: list[str], *, max_seconds: float, ready_timeout: float = 60.0) -> None:
        self.args = args
        self.max_seconds = max_seconds
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.ready: JSON = {}
        self.final: JSON = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def listeners(self) -> list[tuple[str, int]]:
        return [(str(h), int(p)) for h, p in self.ready["listeners"]]

    def __enter__(self) -> ScpProcess:
        argv = pinned(
            SCP_CPU,
            [
                PYTHON,
                "-m",
                "benchmarks.scp_server",
                "--max-seconds",
                str(self.max_seconds),
                *self.args,
            ],
        )
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(deadline - time.monotonic(), 0.01)):
                    continue
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith("{"):
                    self.ready = json.loads(line)
                    return self
        self._stop()
        raise RuntimeError("the SCP process did not become ready")

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            out, _ = proc.communicate(input="", timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # our own child, by its PID
            out, _ = proc.communicate(timeout=10)
        for line in reversed((out or "").splitlines()):
            if line.startswith("{"):
                self.final = json.loads(line)
                break


# -- client worker processes


def run_worker(spec: JSON, *, timeout: float) -> JSON:
    """One measurement in a fresh client process pinned to the client CPU; its JSON result.

    A worker that overruns `timeout` is killed (subprocess kills its own child by PID) and the
    result says so instead of raising, so one bad cell does not lose the whole run.
    """
    argv = pinned(CLIENT_CPU, [PYTHON, "-m", "benchmarks.worker", json.dumps(spec)])
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"worker timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            result: JSON = json.loads(line)
            return result
    tail = (done.stderr or "").strip().splitlines()[-3:]
    return {"ok": False, "error": f"worker exit {done.returncode}: {' | '.join(tail)}"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the simulated fleet (W3): peer i's address and behaviour, shared by SCP and clients

FLEET_REFUSE_AT = 7  # i % 20 == 7: no listener (connection refused): 5 %
FLEET_SILENT_AT = 13  # i % 20 == 13: accepts TCP, never answers A-ASSOCIATE-RQ: 5 %


def fleet_address(index: int) -> str:
    """127.0.1.1, 127.0.1.2, … 250 per /24, so 10,000 peers span 127.0.1.x … 127.0.40.x."""
    if not 0 <= index < 250 * 250:
        raise ValueError("fleet index out of range")
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def fleet_kind(index: int) -> str:
    """Peer i is "refuse", "silent" or "ok"; a prefix of 20k peers keeps the proportions."""
    slot = index % 20
    if slot == FLEET_REFUSE_AT:
        return "refuse"
    if slot == FLEET_SILENT_AT:
        return "silent"
    return "ok"
