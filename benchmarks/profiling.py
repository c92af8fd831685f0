"""Where echoprobe's client spends its CPU: cProfile in the worker, or py-spy around it.

py-spy is optional (`uv pip install py-spy`, not a project dependency); it samples native
frames too (uvloop, libc system calls), which cProfile cannot see.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.common import CLIENT_CPU, JSON, PYTHON, ROOT, ScpProcess, pinned, run_worker

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<where>[^:)]*)(?::\d+)?\)$")


def py_spy_path() -> str | None:
    local = ROOT / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['name']} ({Path(match['where']).name})"


def summarize_collapsed(text: str, top: int) -> str:
    """Self and inclusive shares of py-spy's collapsed stacks ("a;b;c count" lines)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if total == 0:
        return "no samples"
    lines = [f"{total} samples", "", "self (where the CPU is):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive, echoprobe and uvloop frames:"]
    keep = [
        (name, n)
        for name, n in inclusive.most_common()
        if re.search(
            r"\((aio|client|association|connection|codec|framing|negotiation|"
            r"command_set|echo|fragment|pdu|events|results)\.py\)",
            name,
        )
        or "uv__" in name
        or name.startswith(("connect ", "write ", "read ", "close ", "socket "))
    ]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in keep[:top]]
    return "\n".join(lines)


def _spec(workload: str, concurrency: int, seconds: float, scp: ScpProcess) -> JSON:
    base: JSON = {"scp_pid": scp.pid, "targets": scp.listeners}
    if workload == "w2":
        repeat = int(seconds * 4000)
        return {
            **base,
            "kind": "echoprobe",
            "concurrency": 1,
            "count": 1,
            "duration": 120,
            "repeat": repeat,
        }
    if workload.startswith("w3"):
        return {
            **base,
            "kind": "fleet_echoprobe",
            "port": scp.ready["fleet_port"],
            "peers": FLEET_PEERS,
            "concurrency": concurrency,
            "timeout": 2.0,
            "duration": 120,
            "via": "probe_pool" if workload == "w3-probe" else "sweep",
        }
    return {
        **base,
        "kind": "echoprobe",
        "concurrency": concurrency,
        "count": 10_000_000,
        "duration": seconds,
    }


FLEET_PEERS = 10_000
WORKLOADS = ("w1", "w2", "w3", "w3-probe")


def profile(
    workload: str, concurrency: int, seconds: float, top: int, use_py_spy: bool
) -> tuple[JSON, str]:
    """(worker result, profile summary) for echoprobe's client in `workload`:
    w1 (associations at `concurrency`), w2 (echoes in one association), w3 (a 10,000-peer
    sweep with `sweep()`), w3-probe (the same with bare `probe()` calls)."""
    layout = (
        ["--fleet", str(FLEET_PEERS)]
        if workload.startswith("w3")
        else ["--addresses", "4", "--ports", "2"]
    )
    with ScpProcess(layout, max_seconds=seconds + 150, ready_timeout=120) as scp:
        spec = _spec(workload, concurrency, seconds, scp)
        spy = py_spy_path() if use_py_spy else None
        if spy is None:
            result = run_worker({**spec, "profile": top}, timeout=seconds * 3 + 90)
            return result, str(result.get("profile", result.get("error")))
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "stacks.txt"
            argv = pinned(
                CLIENT_CPU,
                [
                    spy,
                    "record",
                    "--native",
                    "--format",
                    "raw",
                    "--rate",
                    "1000",
                    "-o",
                    str(raw),
                    "--",
                    PYTHON,
                    "-m",
                    "benchmarks.worker",
                    json.dumps(spec),
                ],
            )
            done = subprocess.run(
                argv,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=seconds * 3 + 90,
                check=False,
            )
            result = {"ok": False, "error": done.stderr[-500:]}
            for line in reversed(done.stdout.splitlines()):
                if line.startswith("{"):
                    result = json.loads(line)
                    break
            text = raw.read_text() if raw.exists() else ""
        note = "py-spy --native, whole worker process (imports and warm-up included)\n"
        return result, note + summarize_collapsed(text, top)
