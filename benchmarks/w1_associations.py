"""W1: associations per second, one C-ECHO each, at concurrency 1 and 64.

echoprobe (`echo()` on uvloop); the same association's bytes on a uvloop Protocol without any
DICOM logic, the limit echoprobe is measured against; pynetdicom in-process (one thread per
concurrent association, `maximum_associations` raised); DCMTK `echoscu` as one process per
association, with Nagle (its default) and with `TCP_NODELAY=1` in the environment. All against
the same SCP process, whose listeners (several addresses and ports) share the load round-robin.
"""

from __future__ import annotations

from benchmarks import availability
from benchmarks.cells import Budget, Variant, run_interleaved
from benchmarks.common import JSON, ScpProcess, log
from benchmarks.settings import Settings

CONCURRENCY = (1, 64)


def variants(settings: Settings) -> list[Variant]:
    seconds = settings.w1_seconds
    out: list[Variant] = []
    for c in CONCURRENCY:
        base = {"concurrency": c, "count": 10_000_000, "duration": seconds}
        out.append(
            Variant(f"echoprobe_c{c}", "echoprobe (uvloop)", {**base, "kind": "echoprobe"}, seconds)
        )
        out.append(
            Variant(
                f"raw_c{c}",
                "raw bytes on uvloop, no DICOM logic (the limit)",
                {**base, "kind": "raw"},
                seconds,
            )
        )
        if availability.pynetdicom():
            out.append(
                Variant(
                    f"pynetdicom_c{c}",
                    "pynetdicom 3.0.4, threads",
                    {**base, "kind": "pynetdicom"},
                    seconds,
                )
            )
        if availability.dcmtk():
            out.append(
                Variant(
                    f"dcmtk_c{c}", "DCMTK echoscu, processes", {**base, "kind": "dcmtk"}, seconds
                )
            )
            out.append(
                Variant(
                    f"dcmtk_nodelay_c{c}",
                    "DCMTK echoscu, processes, TCP_NODELAY=1",
                    {**base, "kind": "dcmtk", "nodelay": True},
                    seconds,
                )
            )
    return out


def run(settings: Settings, budget: Budget) -> JSON:
    todo = variants(settings)
    log(f"W1: associations/s at concurrency {CONCURRENCY}, {settings.w1_reps} interleaved reps")
    with ScpProcess(
        ["--addresses", str(settings.scp_addresses), "--ports", str(settings.scp_ports)],
        max_seconds=max(budget.left, 30),
    ) as scp:
        cells = run_interleaved(todo, settings.w1_reps, scp, budget, "W1")
    return {"cells": cells, "scp": scp.final}
