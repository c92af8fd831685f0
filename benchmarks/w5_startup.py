"""W5: start-up. One `echoscu 127.0.0.1 PORT` echo as a fresh process: ours vs DCMTK's.

The SCP is the C reference (`benchmarks/c_scp.c`, built with gcc; the Python `EchoSCP` when gcc
is missing, and the result says which): a Python SCP's own latency would hide the clients'.
The measured processes run with the bytecode cache allowed (PYTHONDONTWRITEBYTECODE unset).

Ours is the venv's console script (`.venv/bin/echoscu`, no shim in front). DCMTK runs as
shipped (Nagle on) and with `TCP_NODELAY=1`. Wall time is spawn to reap; CPU is the child's
user + system time from `wait4`. Variants are interleaved, many repetitions.

Our package is byte-compiled first, as an installed wheel is: with PYTHONDONTWRITEBYTECODE set
(as in some CI and container environments) an editable install would otherwise recompile every
module on every run, which measures the compiler, not echoscu.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import availability, c_scp
from benchmarks.cells import Budget, others_pct
from benchmarks.common import JSON, ScpProcess, log, run_worker, summarize


def reference_scp(max_seconds: float) -> ScpProcess:
    """The C SCP when it can be built, else echoprobe's `EchoSCP` (see `scp_name`)."""
    if c_scp.available():
        return c_scp.CScpProcess(max_seconds=max_seconds)
    return ScpProcess(["--addresses", "1", "--ports", "1"], max_seconds=max_seconds)


def scp_name(scp: ScpProcess) -> str:
    return "C reference SCP" if isinstance(scp, c_scp.CScpProcess) else "echoprobe EchoSCP"


@contextmanager
def bytecode_cache_allowed() -> Iterator[None]:
    """Measured processes inherit the worker's environment: let them write and use the cache."""
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTHONDONTWRITEBYTECODE"] = saved


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A measured process's environment: bytecode cache allowed, TCP_NODELAY only if asked."""
    dropped = ("TCP_NODELAY", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(extra or {})
    return env


def _ours_works(port: int) -> str | None:
    """None when our echoscu completes an echo, else why not."""
    if not availability.OUR_ECHOSCU.exists():
        return f"{availability.OUR_ECHOSCU} does not exist"
    env = clean_env()
    try:
        done = subprocess.run(
            [str(availability.OUR_ECHOSCU), "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            timeout=15,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "did not finish within 15 s"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return f"exit status {done.returncode} {tail[0]}".strip()
    return None


def _byte_compile() -> None:
    package = Path(__file__).resolve().parent.parent / "src" / "echoprobe"
    if package.is_dir():
        compileall.compile_dir(str(package), quiet=1, workers=1)
    else:  # an installed package: its byte code came with it
        log(f"  W5: {package} not found; using echoprobe as installed ({sys.prefix})")


def run(reps: int, budget: Budget) -> JSON:
    log(f"W5: single-shot echoscu start-up, {reps} interleaved reps")
    _byte_compile()
    with reference_scp(max(budget.left, 30)) as scp:
        port = scp.listeners[0][1]
        variants: list[JSON] = []
        why_not = _ours_works(port)
        if why_not is None:
            variants.append(
                {"name": "ours", "argv": [str(availability.OUR_ECHOSCU), "127.0.0.1", str(port)]}
            )
        else:
            log(f"  W5: our echoscu is not available: {why_not}")
        if availability.dcmtk():
            dcmtk = [str(availability.DCMTK_ECHOSCU), "127.0.0.1", str(port)]
            variants.append({"name": "dcmtk", "argv": dcmtk})
            variants.append({"name": "dcmtk_nodelay", "argv": dcmtk, "env": {"TCP_NODELAY": "1"}})
        with bytecode_cache_allowed():
            result = run_worker(
                {
                    "kind": "startup",
                    "variants": variants,
                    "reps": reps,
                    "duration": 60,
                    "scp_pid": scp.pid,
                },
                timeout=120,
            )
    out: JSON = {"reps": reps, "ours_unavailable": why_not, "scp": scp_name(scp), "variants": {}}
    if not result.get("ok"):
        out["error"] = result.get("error")
        return out
    noise = others_pct(result)
    out["others_cpu_pct"] = None if noise is None else [round(n, 1) for n in noise]
    labels = {
        "ours": "echoprobe `echoscu` (.venv/bin/echoscu)",
        "dcmtk": "DCMTK echoscu 3.6.7",
        "dcmtk_nodelay": "DCMTK echoscu 3.6.7, TCP_NODELAY=1",
    }
    for name, samples in result["samples"].items():
        good = [s for s in samples if s["rc"] == 0]
        wall, cpu = (
            summarize([s["wall_s"] * 1000 for s in good]),
            summarize([s["cpu_s"] * 1000 for s in good]),
        )
        out["variants"][name] = {
            "label": labels.get(name, name),
            "wall_ms": None if wall is None else wall.as_json(),
            "cpu_ms": None if cpu is None else cpu.as_json(),
            "failures": len(samples) - len(good),
            "samples": samples,
        }
    return out
