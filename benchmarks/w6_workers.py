"""W6: `echoprobe load --workers N` against the C-speed reference SCP; CPU per association.

    .venv/bin/python -m benchmarks.w6_workers                       # workers 1 and 2, 3 reps
    .venv/bin/python -m benchmarks.w6_workers --workers 1,2,4,8 --seconds 10 --json w6.json

Each cell is one `echoprobe load` command (closed loop, `-c` split between the workers,
`--duration` measured seconds after a warm-up) against `benchmarks/c_scp.c`, pinned to the
SCP's CPU; the generator is not pinned, so its workers may use every core (on a 2-core machine
they share the SCP's). Cells are interleaved (1, 2, 1, 2, ...) so that drifting background load
hits every variant alike.

Figures per cell, from the merged JSON report and the command's rusage:
- associations/s over the measured window, p50 / p99 of the whole association;
- CPU-µs per association in the workers (their own `process_time`, warm-up included);
- CPU-µs per association of the whole command (parent, workers, start-up and report: rusage of
  the reaped command), which shows what the scale-out itself costs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.c_scp import CScpProcess, available
from benchmarks.common import JSON, PYTHON, ROOT, fmt_num, fmt_summary, log, summarize


def one_cell(port: int, workers: int, concurrency: int, seconds: float, warmup: float) -> JSON:
    """One `echoprobe load` run; its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "w6.json"
        argv = [
            PYTHON, "-m", "echoprobe", "load", "127.0.0.1", str(port),
            "-c", str(concurrency), "--duration", str(seconds), "--warmup", str(warmup),
            "--workers", str(workers), "--no-live", "-q", "--json", str(out),
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=seconds + warmup + 120,
            check=False,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"echoprobe load failed ({done.returncode}): {done.stderr}")
        report = json.loads(out.read_text())
    command_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ran = report["succeeded"] + report["failed"] + report["cancelled"]
    ran += report["warmup_associations"]
    latency = report["latency_ms"].get("association", {})
    return {
        "workers": workers,
        "processes": report["processes"],
        "assoc_per_s": report["assoc_per_s"],
        "succeeded": report["succeeded"],
        "failed": report["failed"],
        "worker_cpu_us": report["cpu"]["us_per_association"],
        "command_cpu_us": command_cpu / ran * 1e6 if ran else None,
        "cpu_fraction": report["cpu"]["fraction"],
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
    }


def run(levels: list[int], reps: int, concurrency: int, seconds: float, warmup: float) -> JSON:
    cells: dict[int, list[JSON]] = {w: [] for w in levels}
    budget = (seconds + warmup + 10) * len(levels) * reps + 60
    with CScpProcess(max_seconds=budget) as scp:
        port = scp.listeners[0][1]
        for rep in range(reps):
            for workers in levels:
                cell = one_cell(port, workers, concurrency, seconds, warmup)
                log(
                    f"W6 rep {rep + 1}/{reps} workers {workers}: "
                    f"{fmt_num(cell['assoc_per_s'])} assoc/s, "
                    f"{fmt_num(cell['worker_cpu_us'])} µs/assoc in workers, "
                    f"{fmt_num(cell['command_cpu_us'])} µs/assoc whole command"
                )
                cells[workers].append(cell)
    return {
        "levels": levels,
        "concurrency": concurrency,
        "seconds": seconds,
        "warmup": warmup,
        "cells": {str(w): c for w, c in cells.items()},
        "scp": scp.final,
    }


def markdown(result: JSON) -> str:
    rows = [
        "| workers | associations/s | µs CPU/assoc in workers | µs CPU/assoc whole command "
        "| generator CPU (cores) | p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for workers, cells in result["cells"].items():

        def figure(key: str, cells: list[JSON] = cells) -> str:
            return fmt_summary(summarize([c[key] for c in cells if c[key] is not None]))

        rows.append(
            f"| {workers} | {figure('assoc_per_s')} | {figure('worker_cpu_us')} | "
            f"{figure('command_cpu_us')} | {figure('cpu_fraction')} | "
            f"{figure('p50_ms')} / {figure('p99_ms')} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.w6_workers", description=__doc__)
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("-c", "--concurrency", type=int, default=64, help="default 64")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured s (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up s (default 1)")
    parser.add_argument("--json", help="write the cells as JSON to this file")
    args = parser.parse_args(argv)
    if not available():
        log("W6 needs gcc to build benchmarks/c_scp.c")
        return 2
    levels = [int(w) for w in args.workers.split(",")]
    result = run(levels, args.reps, args.concurrency, args.seconds, args.warmup)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
