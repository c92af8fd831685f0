"""Interleaved repetitions of client variants against one SCP, summarised per variant.

Repetition r runs every variant once, in the same order (A B C … A B C …), so slow drifts of
the machine (other load, thermal) spread over all variants instead of biasing one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import JSON, ScpProcess, log, run_worker, summarize


@dataclass(slots=True)
class Budget:
    """The run's wall-clock budget; workloads skip what no longer fits."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)


@dataclass(frozen=True, slots=True)
class Variant:
    key: str  # stable id in the JSON
    label: str  # row label in the tables
    spec: JSON  # worker spec, without targets and scp_pid
    seconds: float  # expected length of one measurement (for the worker's timeout)
    per: str = "done"  # what a rate counts: "done" (associations) or "echoes"


def cpu_seconds(run: JSON) -> float:
    """Client CPU of a run: the worker's own, or its echoscu children's for DCMTK."""
    if "children_cpu_s" in run:
        return float(run["children_cpu_s"])
    return float(run["cpu_s"])


def others_pct(run: JSON) -> tuple[float, float] | None:
    """% of CPU 0 and CPU 1 used by processes other than our client and our SCP (noise)."""
    busy = run.get("cpu_busy_s") or {}
    wall = run.get("wall_s") or 0.0
    if "0" not in busy or "1" not in busy or wall <= 0:
        return None
    client = cpu_seconds(run)
    scp = run.get("scp_cpu_s") or 0.0
    return (
        max(0.0, 100 * (busy["0"] - client) / wall),
        max(0.0, 100 * (busy["1"] - scp) / wall),
    )


def aggregate(variant: Variant, runs: list[JSON]) -> JSON:
    good = [r for r in runs if r.get("ok") and r.get(variant.per)]
    rates = [r[variant.per] / r["wall_s"] for r in good]
    cpu_us = [cpu_seconds(r) / r[variant.per] * 1e6 for r in good]
    rss_mb = [r["maxrss_kb"] / 1024 for r in good if "children_cpu_s" not in r]
    scp_pct = [100 * r["scp_cpu_s"] / r["wall_s"] for r in good if r.get("scp_cpu_s") is not None]
    errors: dict[str, int] = {}
    for r in good:
        for name, n in r.get("errors", {}).items():
            errors[name] = errors.get(name, 0) + n
    out: JSON = {
        "label": variant.label,
        "spec": variant.spec,
        "per": variant.per,
        "runs": runs,
        "failed_runs": [r.get("error") for r in runs if not r.get("ok")],
        "errors": errors,
    }
    noise = [n for n in (others_pct(r) for r in good) if n is not None]
    for name, values in (
        ("others_cpu0_pct", [n[0] for n in noise]),
        ("others_cpu1_pct", [n[1] for n in noise]),
        ("rate", rates),
        ("cpu_us", cpu_us),
        ("rss_mb", rss_mb),
        ("scp_cpu_pct", scp_pct),
    ):
        s = summarize(values)
        out[name] = None if s is None else s.as_json()
    return out


def run_interleaved(
    variants: list[Variant], reps: int, scp: ScpProcess, budget: Budget, tag: str
) -> dict[str, JSON]:
    runs: dict[str, list[JSON]] = {v.key: [] for v in variants}
    for rep in range(reps):
        for variant in variants:
            if budget.left < variant.seconds + 5:
                log(f"  {tag}: budget spent, skipping {variant.label} rep {rep + 1}")
                continue
            spec: dict[str, Any] = {
                **variant.spec,
                "targets": scp.listeners,
                "scp_pid": scp.pid,
            }
            result = run_worker(spec, timeout=variant.seconds * 3 + 60)
            runs[variant.key].append(result)
            if result.get("ok"):
                n, wall = result.get(variant.per, 0), result["wall_s"]
                log(
                    f"  {tag} rep {rep + 1}: {variant.label}: {n:,} {variant.per} in "
                    f"{wall:.2f} s = {n / wall if wall else 0:,.0f}/s"
                )
            else:
                log(f"  {tag} rep {rep + 1}: {variant.label}: FAILED {result.get('error')}")
    return {v.key: aggregate(v, runs[v.key]) for v in variants}
