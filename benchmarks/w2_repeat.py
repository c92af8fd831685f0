"""W2: C-ECHOs per second inside one association (`repeat=K`, `echoscu --repeat K`).

One association per measurement; the rate is K divided by the whole association's wall time
(connect, negotiate, K echoes, release), so K is large enough for the set-up to vanish.
DCMTK is run as shipped (Nagle on: each echo waits for the peer's delayed ACK, so K is small)
and with `TCP_NODELAY=1`.

A second table compares the commands themselves against the C reference SCP (which answers in
microseconds, so the clients' costs show): `.venv/bin/echoscu --repeat K` and DCMTK's
`echoscu --repeat K` with `TCP_NODELAY=1`, whole processes, interleaved, rate = K ÷ wall, with
the system calls per echo counted by `strace -c` (see `benchmarks/syscalls.py`).
"""

from __future__ import annotations

from benchmarks import availability, syscalls
from benchmarks.cells import Budget, Variant, run_interleaved
from benchmarks.common import JSON, ScpProcess, log, run_worker, summarize
from benchmarks.settings import Settings
from benchmarks.w5_startup import bytecode_cache_allowed, reference_scp, scp_name


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
    return {"cells": cells, "scp": scp.final, "commands": commands(settings, budget)}


def commands(settings: Settings, budget: Budget) -> JSON:
    """`echoscu --repeat K`, ours and DCMTK's (TCP_NODELAY=1), against the reference SCP."""
    repeat = settings.w2_repeat_fast
    ours = [str(availability.OUR_ECHOSCU)]
    dcmtk = [str(availability.DCMTK_ECHOSCU)]
    runs: list[tuple[str, list[str], dict[str, str]]] = []
    if availability.OUR_ECHOSCU.exists():
        runs.append(("ours", ours, {}))
    if availability.dcmtk():
        runs.append(("dcmtk_nodelay", dcmtk, {"TCP_NODELAY": "1"}))
    if not runs or budget.left < 20:
        return {"skipped": "no echoscu or no time left"}
    log(f"W2: echoscu --repeat {repeat} processes against the reference SCP")
    with reference_scp(max(budget.left, 30)) as scp:
        target = ["127.0.0.1", str(scp.listeners[0][1])]
        spec = {
            "kind": "startup",
            "variants": [
                {"name": name, "argv": [*argv, "--repeat", str(repeat), *target], "env": env}
                for name, argv, env in runs
            ],
            "reps": settings.w2_reps,
            "duration": max(budget.left - 10, 10),
            "scp_pid": scp.pid,
        }
        with bytecode_cache_allowed():
            result = run_worker(spec, timeout=max(budget.left, 30))
        counts = {
            name: syscalls.per_echo(argv, target, syscalls.environment(bool(env)))
            for name, argv, env in runs
            if syscalls.available()
        }
    out: JSON = {"repeat": repeat, "scp": scp_name(scp), "scp_final": scp.final, "variants": {}}
    if not result.get("ok"):
        out["error"] = result.get("error")
        return out
    for name, samples in result["samples"].items():
        good = [s for s in samples if s["rc"] == 0]
        rate = summarize([repeat / s["wall_s"] for s in good])
        cpu = summarize([s["cpu_s"] * 1e6 / repeat for s in good])
        out["variants"][name] = {
            "echoes_per_s": None if rate is None else rate.as_json(),
            "cpu_us_per_echo": None if cpu is None else cpu.as_json(),
            "syscalls": counts.get(name),
            "failures": len(samples) - len(good),
        }
        if rate is not None:
            log(f"  {name}: {rate.median:,.0f} echoes/s, syscalls {counts.get(name)}")
    return out
