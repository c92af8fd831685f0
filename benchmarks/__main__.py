"""`python -m benchmarks run [--quick] [--only W1,W2,...] [--json FILE] [--markdown FILE]`.

Also `python -m benchmarks profile [--concurrency C] [--seconds S] [--py-spy]`: echoprobe's
client (W1's workload) under cProfile, or sampled by py-spy; the top functions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    availability,
    profiling,
    report,
    w1_associations,
    w2_repeat,
    w3_fleet,
    w4_scaling,
    w5_startup,
)
from benchmarks.cells import Budget
from benchmarks.common import JSON, log
from benchmarks.settings import FULL, QUICK, Settings

WORKLOADS = ("W1", "W2", "W3", "W4", "W5")
QUICK_BUDGET_S = 50.0  # CI's smoke must finish within 60 s, start-up of `uv run` included
FULL_BUDGET_S = 600.0


def _cmd(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout or done.stderr).strip()


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def _busy(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over `seconds` (from /proc/stat): others' load right now."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 == total0:
        return None
    return round(100 * (1 - (idle1 - idle0) / (total1 - total0)), 1)


def machine() -> JSON:
    model = "unknown"
    for line in _cmd(["lscpu"]).splitlines():
        if line.lower().startswith("model name"):
            model = line.split(":", 1)[1].strip()
    dcmtk = "not installed"
    if availability.dcmtk():
        dcmtk = _cmd([str(availability.DCMTK_ECHOSCU), "--version"]).splitlines()[0]
        dcmtk = dcmtk.strip("$ ").removeprefix("dcmtk: ")
    return {
        "date": _cmd(["date"]),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dcmtk": dcmtk,
        "pynetdicom": _version("pynetdicom"),
        "uvloop": _version("uvloop"),
    }


def run(args: argparse.Namespace) -> int:
    settings: Settings = QUICK if args.quick else FULL
    only = [w.strip().upper() for w in args.only.split(",")] if args.only else list(WORKLOADS)
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        log(f"unknown workload(s): {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
        return 2
    budget = Budget(QUICK_BUDGET_S if args.quick else FULL_BUDGET_S)
    meta = {**machine(), "quick": settings.quick, "load_start": _load(), "busy_start": _busy()}
    log(f"benchmarks: {'quick' if args.quick else 'full'} run of {', '.join(only)}; load {_load()}")
    results: JSON = {"meta": meta}
    steps: dict[str, Callable[[], JSON]] = {
        "W1": lambda: w1_associations.run(settings, budget),
        "W2": lambda: w2_repeat.run(settings, budget),
        "W3": lambda: w3_fleet.run(settings, budget),
        "W4": lambda: w4_scaling.run(settings, budget),
        "W5": lambda: w5_startup.run(settings.w5_reps, budget),
    }
    for name in only:
        if budget.left < 5:
            log(f"{name}: skipped, the run's time budget is spent")
            continue
        t0 = time.monotonic()
        try:
            results[name] = steps[name]()
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # keep the other workloads
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results[name]["load_after"] = _load()
        results[name]["seconds"] = round(time.monotonic() - t0, 1)
        log(f"{name}: {results[name]['seconds']} s; load {_load()}")
    meta["load_end"] = _load()
    meta["busy_end"] = _busy()
    meta["wall_s"] = time.monotonic() - budget.start
    results["bars"] = report.bars(results)
    text = report.markdown(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    broken = _broken(results)
    for item in broken:
        log(f"measurement failed: {item}")
    return 1 if broken else 0


def _broken(results: JSON) -> list[str]:
    """Measurements whose process failed (a crash, not a slow figure): the smoke's only check."""
    out: list[str] = []
    for name in WORKLOADS:
        workload = results.get(name) or {}
        if workload.get("error"):
            out.append(f"{name}: {workload['error']}")
        for key, cell in (workload.get("cells") or {}).items():
            out += [f"{name} {key}: {error}" for error in cell.get("failed_runs", [])]
    return out


def profile(args: argparse.Namespace) -> int:
    """echoprobe's client at one concurrency under cProfile or py-spy; the top functions."""
    result, text = profiling.profile(
        args.workload, args.concurrency, args.seconds, args.top, args.py_spy
    )
    if not result.get("ok"):
        log(f"profile failed: {result.get('error')}")
        return 1
    if args.workload == "w2":
        total = int(result["echoes"])
    else:
        total = int(result["done"]) + sum(int(n) for n in result.get("errors", {}).values())
    unit = "echoes" if args.workload == "w2" else "associations"
    print(
        f"{args.workload}: {total:,} {unit} in {result['wall_s']:.2f} s "
        f"({result['cpu_s'] / max(total, 1) * 1e6:.0f} client CPU-us each, profiler included)"
    )
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the workloads side by side")
    p_run.add_argument("--quick", action="store_true", help="CI smoke: ≤ 60 s in total")
    p_run.add_argument("--only", help="comma-separated workloads, e.g. W1,W4")
    p_run.add_argument("--json", help="write the results as JSON to this file")
    p_run.add_argument("--markdown", help="write the markdown tables to this file")
    p_prof = sub.add_parser("profile", help="cProfile echoprobe's client (W1 workload)")
    p_prof.add_argument("--workload", choices=profiling.WORKLOADS, default="w1")
    p_prof.add_argument("--concurrency", type=int, default=64)
    p_prof.add_argument("--seconds", type=float, default=3.0)
    p_prof.add_argument("--top", type=int, default=30)
    p_prof.add_argument("--py-spy", action="store_true", help="sample with py-spy (if installed)")
    args = parser.parse_args(argv)
    if args.command == "profile":
        if not 1 <= args.concurrency <= 8192 or not 0 < args.seconds <= 60:
            parser.error("--concurrency must be 1..8192 and --seconds 0..60")
        return profile(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
