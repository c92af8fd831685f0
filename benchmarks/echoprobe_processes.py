"""`echoprobe scp` and `echoprobe load` as child processes, watched through /proc.

Used by `benchmarks.hostile_clients` and `benchmarks.soak`.

Rules:
- The commands run exactly as a user runs them (`python -m echoprobe scp …`), with the
  package from `src` (default: the installed one), so a measurement can be made of another
  source tree (e.g. `git archive HEAD` unpacked) without touching the working one.
- Every child is bounded twice: its own `--duration`, and a hard wait after which we send it
  SIGINT and then SIGKILL, by its own PID only.
- Standard error is kept in a file so that nothing the child writes can block it; what it
  wrote is measured (lines, bytes, "Traceback" lines) after the fact.
- Memory and descriptors come from /proc/<pid>/status (VmRSS, VmHWM) and /proc/<pid>/fd.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from benchmarks.common import PYTHON, ROOT

_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_COUNTERS = re.compile(r"counters: (.*)$", re.MULTILINE)


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def proc_status_kb(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class StderrFacts:
    """What a child wrote on standard error."""

    lines: int
    bytes: int
    tracebacks: int  # "Traceback (most recent call last)" lines
    first_error: str  # the last line of the first traceback, or ""


def stderr_facts(path: Path) -> StderrFacts:
    try:
        data = path.read_bytes()
    except OSError:
        return StderrFacts(0, 0, 0, "")
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    first = ""
    if tracebacks:
        for line in lines[tracebacks[0] + 1 :]:
            if line and not line.startswith((" ", "Traceback")):
                first = line.strip()[:160]
                break
    return StderrFacts(len(lines), len(data), len(tracebacks), first)


class Child:
    """One `python -m echoprobe …` child; stdout and stderr go to files in `workdir`."""

    def __init__(
        self, name: str, argv: list[str], workdir: Path, *, src: Path | None, nice: int = 0
    ) -> None:
        self.name = name
        self.argv = [PYTHON, "-m", "echoprobe", *argv]
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        self.src = src
        self.nice = nice
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.proc.pid

    def start(self) -> Self:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=_env(self.src),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None,  # noqa: PLW1509
            )
        return self

    def stdout(self) -> str:
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if it is still running after `timeout` seconds."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGINT (a clean stop: counters printed), then SIGKILL after `grace`; own PID only."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        code = self.wait(grace)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = self.wait(grace)
        return code

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ScpChild(Child):
    """`echoprobe scp --listen 127.0.0.1:0 …`; knows its port once it has printed it."""

    def __init__(
        self, workdir: Path, extra: list[str], *, duration: float, src: Path | None, nice: int = 0
    ) -> None:
        argv = ["scp", "--listen", "127.0.0.1:0", "--duration", f"{duration:g}", *extra]
        super().__init__("scp", argv, workdir, src=src, nice=nice)
        self.port = 0

    def start(self, ready_timeout: float = 30.0) -> Self:
        super().start()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.stdout())
            if match:
                self.port = int(match.group(2))
                return self
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"echoprobe scp did not start: {self.stderr_path.read_text()[-500:]}")

    def counters(self) -> dict[str, int]:
        """The counters it printed when it stopped (`name=value` pairs), or {}."""
        match = _COUNTERS.search(self.stdout())
        if not match:
            return {}
        out: dict[str, int] = {}
        for pair in match.group(1).split():
            key, _, value = pair.partition("=")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out


def load_child(
    workdir: Path,
    port: int,
    *,
    rate: float,
    duration: float,
    total_deadline: float,
    src: Path | None,
    nice: int = 0,
    name: str = "load",
) -> Child:
    """`echoprobe load 127.0.0.1 PORT --rate R --duration S --json …` (open loop)."""
    argv = [
        "load", "127.0.0.1", str(port), "--rate", f"{rate:g}", "--duration", f"{duration:g}",
        "--timeout", f"{total_deadline:g}", "--drain", f"{total_deadline + 1:g}",
        "--no-live", "-q", "--json", str(workdir / f"{name}.json"),
    ]  # fmt: skip
    return Child(name, argv, workdir, src=src, nice=nice)


__all__ = [
    "Child",
    "ScpChild",
    "StderrFacts",
    "load_child",
    "open_fds",
    "proc_status_kb",
    "stderr_facts",
]
