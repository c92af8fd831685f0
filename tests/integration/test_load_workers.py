"""`run_load(workers=N)` and live metrics against our `EchoSCP` (its own thread) on loopback.

The bars: N processes complete exactly `-n` associations in one report whose histograms hold
every association; live metrics rise while the run goes on and end equal to the report; a
killed worker is named in the report, never hidden. Each run here is bounded to a few seconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import ssl
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from echoprobe.fleet.load import run_load
from echoprobe.fleet.load_metrics import LoadMetrics, serve_metrics
from echoprobe.fleet.load_schedule import Ramp
from echoprobe.fleet.load_workers import split_evenly, usable_cores, worker_shares
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from tests.conftest import ScpFactory

FAST = Timeouts(connect=2, acse=2, dimse=2, release=2)


def test_shares_split_the_load_exactly() -> None:
    assert split_evenly(7, 3) == [3, 2, 2]
    shares = worker_shares(
        4,
        concurrency=6,
        rate=None,
        associations=10,
        ramp=None,
        source_addresses=["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"],
        max_in_flight=None,
        seed=1,
    )
    assert [s["concurrency"] for s in shares] == [2, 2, 1, 1]
    assert sum(s["associations"] for s in shares) == 10
    assert shares[0]["source_addresses"] == ["127.0.0.2", "127.0.0.6"]
    assert len({s["seed"] for s in shares}) == 4
    # fewer units of load than workers: fewer workers
    assert (
        len(
            worker_shares(
                8,
                concurrency=2,
                rate=None,
                associations=None,
                ramp=None,
                source_addresses=[],
                max_in_flight=None,
                seed=None,
            )
        )
        == 2
    )
    rated = worker_shares(
        2,
        concurrency=None,
        rate=100.0,
        associations=None,
        ramp=Ramp(10, 100),
        source_addresses=[],
        max_in_flight=None,
        seed=None,
    )
    assert [s["rate"] for s in rated] == [50.0, 50.0]
    assert rated[0]["ramp"] == Ramp(5, 50)


async def test_two_workers_complete_exactly_n_associations(scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    ticks: list[int] = []
    report = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=4,
        associations=301,
        workers=2,
        tick=0.2,
        timeouts=FAST,
        on_tick=lambda p: ticks.append(p.succeeded),
    )
    assert report.ok, (report.reasons, report.missing)
    assert report.attempted == report.succeeded == 301
    assert report.processes == 2
    assert sorted(p["succeeded"] for p in report.parts) == [150, 151]
    assert report.histograms["association"].count == 301
    assert report.histograms["echo"].count == 301
    assert report.config["workers"] == 2
    assert report.config["associations"] == 301
    assert ticks
    assert ticks[-1] == 301  # the live view's last tick is the whole run
    assert sum(t.succeeded for t in report.series) >= 301  # (warm-up: none here)
    assert report.cpu_seconds > 0


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
            values[key] = sample.value
    return values


async def test_metrics_are_scraped_while_running(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.005}))
    metrics = LoadMetrics()
    server = serve_metrics(metrics, "127.0.0.1", 0)
    try:
        run = asyncio.create_task(
            run_load(
                "127.0.0.1",
                scp.port,
                concurrency=4,
                duration=2.0,
                workers=2,
                tick=0.1,
                timeouts=FAST,
                metrics=metrics,
            )
        )
        seen: list[float] = []
        success = "echoprobe_load_associations_total,outcome=success"
        for _ in range(100):  # bounded: the run ends within a few seconds
            if run.done():
                break
            values = await asyncio.to_thread(_scrape, server.port)
            seen.append(values.get(success, 0.0))
            await asyncio.sleep(0.15)
        report = await run
        final = await asyncio.to_thread(_scrape, server.port)
    finally:
        server.close()
    assert report.ok, (report.reasons, report.missing)
    rising = sorted(set(seen))
    assert len(rising) >= 2, seen  # seen rising while the run went on
    assert seen == sorted(seen)  # a counter never goes down
    assert final[success] == report.succeeded
    assert final["echoprobe_load_association_duration_seconds_count"] == report.succeeded
    assert final["echoprobe_load_phase_duration_seconds_count,phase=echo"] == report.succeeded
    assert final["echoprobe_load_in_flight"] == 0
    assert final["echoprobe_load_generator_cpu_seconds_total"] > 0
    assert final["echoprobe_load_workers,state=finished"] == 2


async def test_metrics_of_one_process(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(reject=(1, 1, 7)))
    metrics = LoadMetrics()
    report = await run_load(
        "127.0.0.1", scp.port, concurrency=2, associations=20, timeouts=FAST, metrics=metrics
    )
    assert metrics.associations() == {"rejected_permanent": 20, "success": 0}
    assert report.failed == 20


async def test_a_killed_worker_is_reported(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.005}))
    ticked = asyncio.Event()
    run = asyncio.create_task(
        run_load(
            "127.0.0.1",
            scp.port,
            concurrency=2,
            duration=2.0,
            workers=2,
            tick=0.1,
            timeouts=FAST,
            on_tick=lambda p: ticked.set(),
        )
    )
    async with asyncio.timeout(60):
        await ticked.wait()
    victims = [p for p in multiprocessing.active_children() if p.name == "echoprobe-load-1"]
    assert len(victims) == 1
    assert victims[0].pid is not None
    os.kill(victims[0].pid, signal.SIGKILL)
    async with asyncio.timeout(60):
        report = await run
    assert not report.ok
    assert len(report.missing) == 1
    assert "worker 1" in report.missing[0]
    assert "SIGKILL" in report.missing[0]
    assert any("gave no report" in w for w in report.warnings)
    died = [p for p in report.parts if p["status"] == "died"]
    assert len(died) == 1
    assert report.processes == 2
    assert report.succeeded > 0  # the surviving worker's associations are all there
    assert report.succeeded == sum(p["succeeded"] for p in report.parts if p is not died[0])


async def test_stop_reaches_every_worker(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.01}))
    stop = asyncio.Event()
    ticked = asyncio.Event()
    run = asyncio.create_task(
        run_load(
            "127.0.0.1",
            scp.port,
            concurrency=2,
            duration=30,
            workers=2,
            tick=0.1,
            timeouts=FAST,
            stop=stop,
            on_tick=lambda p: ticked.set(),
        )
    )
    async with asyncio.timeout(60):
        await ticked.wait()
    stop.set()
    async with asyncio.timeout(20):
        report = await run
    assert report.interrupted
    assert not report.missing
    assert len(report.parts) == 2
    assert report.wall_seconds < 10


def test_auto_workers_follow_the_cgroup_cpu_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert usable_cores(str(cpu_max)) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert usable_cores(str(cpu_max)) == len(os.sched_getaffinity(0))
    assert usable_cores(str(tmp_path / "absent")) == len(os.sched_getaffinity(0))


async def test_tls_load_with_workers(scp_factory: ScpFactory) -> None:
    from echoprobe.net.tls import PeerVerification, TLSConfig
    from tests.support.tls_certs import shared_kit

    kit = shared_kit()
    server = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    scp = scp_factory(tls=server)
    report = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=2,
        associations=20,
        workers=2,
        tls=TLSConfig(ca_files=(kit.ca,)),
        timeouts=FAST,
    )
    assert report.ok, (report.reasons, report.missing)
    assert report.succeeded == 20
    assert "RFC 8996" in (report.config["tls"] or "")
    with pytest.raises(ValueError, match="TLSConfig"):
        await run_load(
            "127.0.0.1",
            scp.port,
            concurrency=2,
            associations=2,
            workers=2,
            tls=ssl.create_default_context(),
        )


def test_a_ramp_is_split_and_every_worker_keeps_one_open() -> None:
    shares = worker_shares(
        2,
        concurrency=1,
        rate=None,
        associations=None,
        ramp=Ramp(1, 64),
        source_addresses=[],
        max_in_flight=None,
        seed=None,
    )
    assert [(s["concurrency"], s["ramp"]) for s in shares] == [
        (1, Ramp(0.5, 32)),
        (1, Ramp(0.5, 32)),
    ]
