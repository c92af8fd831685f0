"""`sweep()` against a fleet of `EchoSCP`s on distinct loopback addresses (127.0.1.x only).

Every peer kind is classified; every target gets exactly one record however the sweep ends.
Names are never resolved here except through an injected resolver.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from echoprobe.fleet.sweep import ResultStream, SweepStats, sweep
from echoprobe.fleet.targets import Target, TimeoutOverrides, load_targets
from echoprobe.net.client import probe
from echoprobe.net.server import EchoSCP, Faults
from echoprobe.options import Timeouts
from echoprobe.results import PHASES, Outcome, ProbeResult
from tests.support.scp_fleet import closed_port, scp_fleet
from tests.support.servers import has_ipv6_loopback

FAST = Timeouts(connect=2.0, acse=0.5, dimse=0.5, release=0.5)

EXPECTED = {
    "healthy": Outcome.SUCCESS,
    "refuse": Outcome.CONNECTION_REFUSED,
    "silent": Outcome.ACSE_TIMEOUT,
    "reject": Outcome.REJECTED_PERMANENT,
    "reject_transient": Outcome.REJECTED_TRANSIENT,
    "abort": Outcome.ABORTED_BY_PEER,
    "status": Outcome.ECHO_FAILED_STATUS,
    "close": Outcome.CONNECTION_LOST,
    "nocontext": Outcome.NO_ACCEPTED_CONTEXT,
}


async def _collect(results: ResultStream) -> list[ProbeResult]:
    return [record async for record in results]


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def _by_target(records: list[ProbeResult]) -> dict[str, ProbeResult]:
    index = {r.target: r for r in records}
    assert len(index) == len(records), "a target got more than one record"
    return index


async def test_every_kind_of_peer_is_classified() -> None:
    kinds = dict.fromkeys(EXPECTED, 2)
    async with scp_fleet(kinds) as fleet:
        targets = fleet.all_targets()
        async with sweep(targets, concurrency=64, timeouts=FAST) as results:
            records = await _collect(results)
    index = _by_target(records)
    assert set(index) == set(targets)
    for kind, expected in EXPECTED.items():
        for target in fleet.targets[kind]:
            assert index[target].outcome is expected, (kind, index[target])
    stats = results.stats
    assert stats.emitted == stats.expected == len(targets)
    assert stats.in_flight == 0
    assert stats.finished
    assert stats.by_outcome == Counter({o.value: 2 for o in EXPECTED.values()})

    ok = index[fleet.targets["healthy"][0]]
    assert ok.status == 0
    assert ok.echoes == 1
    assert ok.peer is not None
    assert ok.peer.implementation_version_name
    assert ok.peer.address == ok.target
    assert list(ok.timings_ms) == ["resolve", "connect", "associate", "echo", "release", "total"]
    assert ok.timings_ms["total"] >= ok.timings_ms["connect"]
    rejected = index[fleet.targets["reject"][0]]
    assert rejected.detail == {"result": 1, "source": 1, "reason": 3}
    assert rejected.phase == "associate"
    transient = index[fleet.targets["reject_transient"][0]]
    assert transient.detail == {"result": 2, "source": 3, "reason": 2}
    aborted = index[fleet.targets["abort"][0]]
    assert {"source", "reason"} <= set(aborted.detail)
    failed = index[fleet.targets["status"][0]]
    assert failed.status == 0x0110
    assert failed.detail["error_comment"] == "failed on purpose"
    refused = index[fleet.targets["refuse"][0]]
    assert refused.phase == "connect"
    assert refused.peer is None
    silent = index[fleet.targets["silent"][0]]
    assert 400 <= silent.timings_ms["total"] < 2000
    for record in records:
        assert set(record.timings_ms) <= {*PHASES, "total"}
        assert record.called_ae == "ANY-SCP"
        assert record.calling_ae == "ECHOSCU"


async def test_names_go_through_the_injected_resolver_once() -> None:
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        await asyncio.sleep(0.01)
        if host == "dead.example":
            raise OSError("no such host (test resolver)")
        if host == "slow.example":
            await asyncio.sleep(10)
        return ["127.0.1.1"]

    async with scp_fleet({"healthy": 1}) as fleet:
        port = int(fleet.targets["healthy"][0].rsplit(":", 1)[1])
        targets = [
            f"A@alive.example:{port}",
            f"B@alive.example:{port}",
            f"C@ALIVE.example.:{port}",
            f"dead.example:{port}",
            f"X@dead.example:{port}",
            f"slow.example:{port}",
        ]
        timeouts = Timeouts(connect=0.3, acse=1, dimse=1, release=1)
        async with sweep(targets, timeouts=timeouts, resolver=resolver, per_host=0) as results:
            records = await _collect(results)
    index = _by_target(records)
    assert sorted(lookups) == ["alive.example", "dead.example", "slow.example"]
    for spec in targets[:3]:
        record = index[spec]
        assert record.outcome is Outcome.SUCCESS
        assert record.host in ("alive.example", "ALIVE.example.")
        assert record.peer is not None
        assert record.peer.address == f"127.0.1.1:{port}"
    for spec in targets[3:5]:
        assert index[spec].outcome is Outcome.DNS_ERROR
        assert index[spec].phase == "resolve"
        assert "no such host" in (index[spec].error or "")
    slow = index[targets[5]]
    assert slow.outcome is Outcome.DNS_ERROR
    assert "timed out" in (slow.error or "")
    assert results.stats.dns_lookups == 3


async def test_per_target_deadline_and_overrides() -> None:
    async with scp_fleet({"silent": 2}) as fleet:
        a, b = fleet.targets["silent"]
        host, port = b.rsplit(":", 1)
        overridden = Target(host=host, port=int(port), timeouts=TimeoutOverrides(total=0.3))
        lenient = Timeouts(connect=2, acse=5, dimse=5, release=5, total=0.4)
        started = time.perf_counter()
        async with sweep([a, overridden], timeouts=lenient) as results:
            records = await _collect(results)
        elapsed = time.perf_counter() - started
    assert [r.outcome for r in records] == [Outcome.DEADLINE_EXCEEDED] * 2
    assert elapsed < 2.0
    assert {r.target for r in records} == {a, f"ANY-SCP@{b}"}


async def test_stop_cancels_in_flight_and_records_the_rest() -> None:
    async with scp_fleet({"healthy": 5, "silent": 40}) as fleet:
        healthy, silent = fleet.targets["healthy"], fleet.targets["silent"]
        targets = healthy + silent
        slow = Timeouts(connect=2, acse=20, dimse=20, release=2)
        records: list[ProbeResult] = []
        started = time.perf_counter()
        async with sweep(iter(targets), concurrency=10, timeouts=slow) as results:
            async for record in results:
                records.append(record)
                if len(records) == len(healthy):
                    await _until(lambda: results.stats.in_flight == 10)  # at the silent peers
                    results.stop()
                    results.stop()  # twice is harmless
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.05)
        open_connections = sum(len(scp._open) for scp in fleet.scps)
    assert elapsed < 5.0
    index = _by_target(records)
    assert set(index) == set(targets)
    counts = Counter(r.outcome for r in records)
    assert counts[Outcome.SUCCESS] == 5
    assert counts[Outcome.CANCELLED] == 10
    assert counts[Outcome.NOT_STARTED] == 30
    assert open_connections == 0  # every cancelled association was closed
    assert results.stats.stopping
    assert results.stats.in_flight == 0
    cancelled = next(r for r in records if r.outcome is Outcome.CANCELLED)
    assert "total" in cancelled.timings_ms


async def test_stop_without_drain_ends_the_stream_early() -> None:
    async with scp_fleet({"silent": 4}) as fleet:
        source = iter(fleet.targets["silent"] * 1000)  # duplicates: a long, lazy source
        async with sweep(source, concurrency=4, timeouts=Timeouts(acse=20)) as results:
            records: list[ProbeResult] = []
            await _until(lambda: results.stats.in_flight == 4)
            results.stop(drain=False)
            records = await _collect(results)
    assert Counter(r.outcome for r in records) == Counter({Outcome.CANCELLED: 4})


async def test_leaving_the_block_early_closes_everything() -> None:
    async with scp_fleet({"silent": 8}) as fleet:
        async with sweep(fleet.targets["silent"], timeouts=Timeouts(acse=20)) as results:
            await _until(lambda: results.stats.in_flight == 8)
        await asyncio.sleep(0.05)
        assert sum(len(scp._open) for scp in fleet.scps) == 0
    assert results.stats.finished


async def test_internal_errors_are_records_not_crashes() -> None:
    async def flaky_probe(host: str, port: int = 104, **kw: Any) -> ProbeResult:
        if port == 2:
            raise RuntimeError("a bug in a probe")
        return await probe(host, port, **kw)

    async with scp_fleet({"refuse": 2}) as fleet:
        targets = [*fleet.targets["refuse"], "127.0.1.200:2"]
        async with sweep(targets, probe_fn=flaky_probe, timeouts=FAST) as results:
            records = await _collect(results)
    index = _by_target(records)
    bug = index["127.0.1.200:2"]
    assert bug.outcome is Outcome.INTERNAL_ERROR
    assert bug.detail["exception"] == "RuntimeError"
    assert len(bug.detail["traceback_hash"]) == 12
    assert "a bug in a probe" in (bug.error or "")
    assert results.stats.internal_errors == 1
    assert sum(r.outcome is Outcome.CONNECTION_REFUSED for r in records) == 2


async def test_workers_are_a_fixed_pool_and_the_source_is_streamed() -> None:
    host = "127.0.1.1"
    ports = [closed_port(host) for _ in range(4)]
    produced = 0
    taken_at_first_record: int | None = None
    max_tasks = 0

    def source() -> Iterator[str]:
        nonlocal produced
        for i in range(400):
            produced += 1
            yield f"AE{i}@{host}:{ports[i % 4]}"

    async with sweep(source(), concurrency=8, per_host=0, timeouts=FAST) as results:
        async for _ in results:
            if taken_at_first_record is None:
                taken_at_first_record = produced
            max_tasks = max(max_tasks, len(asyncio.all_tasks()))
    assert results.stats.emitted == 400
    assert results.stats.by_outcome == Counter({"connection_refused": 400})
    assert taken_at_first_record is not None
    assert taken_at_first_record < 60
    assert max_tasks <= 8 + 4  # workers + supervisor + this test's task (+ slack)


async def test_async_sources_and_inventory_files(tmp_path: Path) -> None:
    async with scp_fleet({"healthy": 2}) as fleet:
        first, second = fleet.targets["healthy"]
        h1, p1 = first.rsplit(":", 1)
        csv_path = tmp_path / "inventory.csv"
        csv_path.write_text(
            "host,port,called_ae,calling_ae,name,tags\n"
            f"{h1},{p1},ARCHIVE,TESTER,Main archive,archive;west\n"
            f"{h1},notaport,X,,,\n"
        )

        async def more() -> AsyncIterator[str]:
            yield f"CT@{second}"
            await asyncio.sleep(0)
            yield "not a target"

        async with sweep(load_targets(csv_path)) as results:
            from_file = await _collect(results)
        async with sweep(more()) as results:
            from_async = await _collect(results)
    archive = next(r for r in from_file if r.outcome is Outcome.SUCCESS)
    assert (archive.called_ae, archive.calling_ae, archive.name, archive.tags) == (
        "ARCHIVE",
        "TESTER",
        "Main archive",
        ("archive", "west"),
    )
    assert archive.target == f"ARCHIVE@{first}"
    invalid = next(r for r in from_file if r.outcome is Outcome.INVALID_TARGET)
    assert invalid.detail["source"] == f"{csv_path}:3"
    assert sorted(r.outcome.value for r in from_async) == ["invalid_target", "success"]


async def test_per_host_limit_and_rate() -> None:
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    starts: list[float] = []

    async def counting_probe(host: str, port: int = 104, **kw: Any) -> ProbeResult:
        active[host] += 1
        peak[host] = max(peak[host], active[host])
        starts.append(time.perf_counter())
        try:
            return await probe(host, port, **kw)
        finally:
            active[host] -= 1

    async with scp_fleet({"slow": 2}) as fleet:  # each association takes 0.3 s to accept
        targets = [f"AE{i}@{t}" for t in fleet.targets["slow"] for i in range(3)]
        async with sweep(targets, per_host=1, probe_fn=counting_probe) as results:
            records = await _collect(results)
        assert all(r.outcome is Outcome.SUCCESS for r in records)
        assert len(records) == 6
        assert max(peak.values()) == 1
        assert len(peak) == 2

        peak.clear()
        async with sweep(targets, per_host=2, probe_fn=counting_probe) as results:
            await _collect(results)
        assert max(peak.values()) == 2

        starts.clear()
        refused = [f"AE{i}@127.0.1.9:{closed_port('127.0.1.9')}" for i in range(11)]
        async with sweep(refused, per_host=0, rate=50, probe_fn=counting_probe) as results:
            await _collect(results)
    span = max(starts) - min(starts)
    assert span >= 10 * 0.02 * 0.9 - 0.005  # 10 gaps of 20 ms ± 10 % jitter


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_literal_target() -> None:
    async with EchoSCP(host="::1", port=0, faults=Faults()) as scp:
        spec = f"PACS@[::1]:{scp.port}"
        async with sweep([spec]) as results:
            (record,) = await _collect(results)
    assert record.outcome is Outcome.SUCCESS
    assert record.host == "::1"
    assert record.target == spec


async def test_nofile_cap_is_reported() -> None:
    async with sweep([], concurrency=10_000_000) as results:
        assert await _collect(results) == []
    stats: SweepStats = results.stats
    limit = stats.concurrency
    assert limit.requested == 10_000_000
    if limit.nofile_soft is not None:
        assert limit.effective == limit.nofile_soft - limit.reserve
        assert limit.capped
        assert "capped" in limit.describe()


async def test_a_busy_host_does_not_hold_workers_from_other_hosts() -> None:
    # Two workers, one host with five targets (each probe 0.2 s, one at a time), then five
    # other hosts: the other hosts must not wait behind the busy one's queue.
    finished: list[str] = []

    async def slow_on_one_host(host: str, port: int = 104, **kw: Any) -> ProbeResult:
        await asyncio.sleep(0.2 if host == "127.0.1.1" else 0.01)
        finished.append(host)
        return ProbeResult(
            target=kw.get("target") or host,
            host=host,
            port=port,
            called_ae=kw["called_ae"],
            calling_ae=kw["calling_ae"],
            outcome=Outcome.SUCCESS,
        )

    busy = [f"AE{i}@127.0.1.1:104" for i in range(5)]
    others = [f"127.0.1.{i}:104" for i in range(2, 7)]
    async with sweep(
        busy + others, concurrency=2, per_host=1, probe_fn=slow_on_one_host
    ) as results:
        records = await _collect(results)
    assert len(records) == 10
    assert all(r.outcome is Outcome.SUCCESS for r in records)
    # The other hosts are done before the busy host's second probe ends.
    assert finished.index("127.0.1.6") < [i for i, h in enumerate(finished) if h == "127.0.1.1"][1]
    assert finished.count("127.0.1.1") == 5


async def test_stop_gives_targets_waiting_for_their_host_a_record() -> None:
    async with scp_fleet({"silent": 1}) as fleet:
        target = fleet.targets["silent"][0]
        targets = [f"AE{i}@{target}" for i in range(6)]
        async with sweep(targets, per_host=1, timeouts=Timeouts(acse=20)) as results:
            await _until(lambda: results.stats.in_flight == 1 and results.stats.taken == 6)
            results.stop()
            records = await _collect(results)
    assert Counter(r.outcome for r in records) == Counter(
        {Outcome.CANCELLED: 1, Outcome.NOT_STARTED: 5}
    )


async def test_a_name_with_several_addresses_tries_the_next_after_a_refusal() -> None:
    async with scp_fleet({"healthy": 1}) as fleet:
        address, port = fleet.targets["healthy"][0].rsplit(":", 1)
        dead = "127.0.1.250"  # no listener there on that port

        async def resolver(host: str, _port: int) -> list[str]:
            return {"pacs.example": [dead, address], "gone.example": [dead, dead]}[host]

        targets = [f"pacs.example:{port}", f"gone.example:{port}"]
        async with sweep(targets, resolver=resolver, timeouts=FAST) as results:
            records = await _collect(results)
    index = {r.host: r for r in records}
    found = index["pacs.example"]
    assert found.outcome is Outcome.SUCCESS
    assert found.detail["addresses_tried"] == [dead, address]
    assert found.host == "pacs.example"
    assert found.timings_ms["total"] >= found.timings_ms["connect"]
    gone = index["gone.example"]
    assert gone.outcome is Outcome.CONNECTION_REFUSED
    assert gone.detail["addresses_tried"] == [dead, dead]
