"""W2: C-ECHOs per second inside one association (`repeat=K`, `echoscu --repeat K`).

One association per measurement; the rate is K divided by the whole association's wall time
(connect, negotiate, K echoes, release), so K is large enough for the set-up to vanish.
DCMTK is run as shipped (Nagle on: each echo waits for the peer's delayed ACK, so K is small)
and with `TCP_NODELAY=1`.
"""

from __future__ import annotations

from benchmarks import availability
from benchmarks.cells import Budget, Variant, run_interleaved
from benchmarks.common import JSON, ScpProcess, log
from benchmarks.settings import Settings


def variants(settings: Settings) -> list[Variant]:
    one = {"concurrency": 1, "count": 1, "duration": 120}
    fast, nagle, pyn = (
        settings.w2_repeat_fast,
        settings.w2_repeat_nagle,
        settings.w2_repeat_pynetdicom,
    )
    out = [
        Variant(
            "echoprobe",
            f"echoprobe (uvloop), repeat={fast}",
            {**one, "kind": "echoprobe", "repeat": fast},
            fast / 10_000,
            per="echoes",
        )
    ]
    if availability.dcmtk():
        out.append(
            Variant(
                "dcmtk_nodelay",
                f"DCMTK echoscu --repeat {fast}, TCP_NODELAY=1",
                {**one, "kind": "dcmtk", "repeat": fast, "nodelay": True},
                fast / 10_000,
                per="echoes",
            )
        )
        out.append(
            Variant(
                "dcmtk",
                f"DCMTK echoscu --repeat {nagle} (Nagle)",
                {**one, "kind": "dcmtk", "repeat": nagle},
                nagle / 20,
                per="echoes",
            )
        )
    if availability.pynetdicom():
        out.append(
            Variant(
                "pynetdicom",
                f"pynetdicom 3.0.4, {pyn} echoes",
                {**one, "kind": "pynetdicom", "repeat": pyn},
                pyn / 300,
                per="echoes",
            )
        )
    return out


def run(settings: Settings, budget: Budget) -> JSON:
    log(f"W2: echoes/s in one association, {settings.w2_reps} interleaved reps")
    with ScpProcess(["--addresses", "1", "--ports", "1"], max_seconds=max(budget.left, 30)) as scp:
        cells = run_interleaved(variants(settings), settings.w2_reps, scp, budget, "W2")
    return {"cells": cells, "scp": scp.final}
