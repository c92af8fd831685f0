"""W4: echoprobe's associations/s, client CPU-µs per association and peak RSS vs concurrency.

Each level runs in a fresh client process, so its peak RSS (`ru_maxrss`) is that level's own.
Level 64 is run here too, so the 8192-vs-64 ratio compares figures from the same run.
"""

from __future__ import annotations

from benchmarks.cells import Budget, Variant, run_interleaved
from benchmarks.common import JSON, ScpProcess, log
from benchmarks.settings import Settings


def variants(settings: Settings) -> list[Variant]:
    seconds = settings.w4_seconds
    return [
        Variant(
            f"c{c}",
            f"concurrency {c}",
            {"kind": "echoprobe", "concurrency": c, "count": 10_000_000, "duration": seconds},
            seconds + c / 2000,
        )
        for c in settings.w4_levels
    ]


def run(settings: Settings, budget: Budget) -> JSON:
    log(f"W4: echoprobe scaling over {settings.w4_levels}, {settings.w4_reps} interleaved reps")
    with ScpProcess(
        ["--addresses", str(settings.scp_addresses), "--ports", str(settings.scp_ports)],
        max_seconds=max(budget.left, 30),
    ) as scp:
        cells = run_interleaved(variants(settings), settings.w4_reps, scp, budget, "W4")
    return {"levels": list(settings.w4_levels), "cells": cells, "scp": scp.final}
