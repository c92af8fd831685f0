"""W3: sweep a fleet of N peers on distinct loopback addresses, 5 % refusing, 5 % silent.

Peer i listens on `common.fleet_address(i)` (127.0.1.1 … 127.0.40.250 for 10,000), all on one
port number, in the SCP process: the well-behaved ones on one `EchoSCP` with many hosts, the
silent ones (TCP accepted, A-ASSOCIATE-RQ never answered) on another with
`Faults(silent_at="associate")`; the refusing ones have no listener at all. The ACSE (and
connect) timeout is 2 s, so a sweep cannot finish faster than ~2 s and the bar is timeout + 2 s.

echoprobe sweeps all N, with the library's `sweep()` (when it exists) and, as a baseline for
its overhead, with bare `probe()` calls from a pool of tasks. DCMTK (`echoscu` processes) and
pynetdicom (threads) sweep a prefix of the same fleet with the same proportions, and their wall
time is extrapolated linearly to N, labelled as such in every table.
"""

from __future__ import annotations

from benchmarks import availability
from benchmarks.cells import Budget, Variant, cpu_seconds, run_interleaved
from benchmarks.common import JSON, ScpProcess, log, summarize
from benchmarks.settings import Settings


def variants(settings: Settings, port: int) -> list[Variant]:
    timeout = settings.w3_timeout
    n, subset = settings.w3_peers, settings.w3_subset
    base = {"port": port, "timeout": timeout, "duration": 120}
    out = [
        Variant(
            "echoprobe",
            f"echoprobe (uvloop), {n} peers, concurrency {settings.w3_concurrency}",
            {
                **base,
                "kind": "fleet_echoprobe",
                "peers": n,
                "concurrency": settings.w3_concurrency,
            },
            timeout + 10,
        )
    ]
    out.append(
        Variant(
            "echoprobe_probe_pool",
            f"echoprobe (uvloop), {n} peers, concurrency {settings.w3_concurrency}",
            {
                **base,
                "kind": "fleet_echoprobe",
                "via": "probe_pool",
                "peers": n,
                "concurrency": settings.w3_concurrency,
            },
            timeout + 10,
        )
    )
    sub = {**base, "peers": subset, "concurrency": settings.w3_subset_concurrency}
    if availability.dcmtk():
        out.append(
            Variant(
                "dcmtk",
                f"DCMTK echoscu processes, {subset} peers, {sub['concurrency']} at once",
                {**sub, "kind": "fleet_dcmtk", "timeout": int(timeout)},
                subset / 20 + timeout * 3,
            )
        )
    if availability.pynetdicom():
        out.append(
            Variant(
                "pynetdicom",
                f"pynetdicom 3.0.4 threads, {subset} peers, {sub['concurrency']} at once",
                {**sub, "kind": "fleet_pynetdicom"},
                subset / 50 + timeout * 3,
            )
        )
    return out


def summarise(settings: Settings, key: str, cell: JSON) -> JSON:
    good = [r for r in cell["runs"] if r.get("ok")]
    peers = int(cell["spec"]["peers"])
    scale = settings.w3_peers / peers
    walls = [r["wall_s"] for r in good]
    out: JSON = {
        "label": cell["label"],
        "peers_measured": peers,
        "extrapolated": scale != 1,
        "scale": scale,
        "failed_runs": cell["failed_runs"],
        "mismatched": [r.get("mismatched") for r in good],
        "outcomes": [r.get("outcomes") or {"ok": r["done"], **r["errors"]} for r in good],
        "via": good[0].get("via") if good else None,
        "unexpected": [r.get("unexpected") for r in good if r.get("unexpected")],
        "others_cpu0_pct": cell.get("others_cpu0_pct"),
        "others_cpu1_pct": cell.get("others_cpu1_pct"),
    }
    for name, values in (
        ("wall_s", walls),
        ("wall_s_at_n", [w * scale for w in walls]),
        ("cpu_s", [cpu_seconds(r) for r in good]),
        ("cpu_s_at_n", [cpu_seconds(r) * scale for r in good]),
        ("rss_mb", [r["maxrss_kb"] / 1024 for r in good if "children_cpu_s" not in r]),
        ("scp_cpu_pct", [100 * r["scp_cpu_s"] / r["wall_s"] for r in good if r.get("scp_cpu_s")]),
    ):
        s = summarize(values)
        out[name] = None if s is None else s.as_json()
    return out


def run(settings: Settings, budget: Budget) -> JSON:
    log(
        f"W3: fleet of {settings.w3_peers} peers (5 % refuse, 5 % silent), "
        f"{settings.w3_timeout:g} s timeout, {settings.w3_reps} interleaved reps"
    )
    with ScpProcess(
        ["--fleet", str(settings.w3_peers), "--idle-timeout", "10"],
        max_seconds=max(budget.left, 30),
        ready_timeout=120,
    ) as scp:
        port = int(scp.ready["fleet_port"])
        cells = run_interleaved(variants(settings, port), settings.w3_reps, scp, budget, "W3")
    return {
        "peers": settings.w3_peers,
        "timeout_s": settings.w3_timeout,
        "cells": {key: summarise(settings, key, cell) for key, cell in cells.items()},
        "scp": scp.final,
    }
