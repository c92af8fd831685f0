"""`sweep_workers()` against our `EchoSCP` (one per address, each in its own thread) on loopback.

The bars: N processes give exactly one record per target; a peer address never sees two
associations at once under `per_host=1` (each SCP's `peak_associations`); a killed worker's
targets are recorded as `internal_error` "worker N died", never missing. Bounded to seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Iterator

import pytest

from echoprobe.fleet.sweep_workers import sweep_workers
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult
from tests.support.servers import ThreadedEchoSCP

FAST = Timeouts(connect=3, acse=3, dimse=5, release=3, total=15)
HOSTS = [f"127.0.7.{i}" for i in range(1, 9)]


@pytest.fixture
def fleet() -> Iterator[list[ThreadedEchoSCP]]:
    """An SCP per address; each holds every C-ECHO a little, so overlaps would show."""
    scps = [
        ThreadedEchoSCP(host=host, faults=Faults(delay={"echo": 0.05})).start() for host in HOSTS
    ]
    yield scps
    for scp in scps:
        scp.stop()


def _targets(scps: list[ThreadedEchoSCP], per_address: int) -> list[str]:
    # Distinct called AE titles: distinct targets on one address (no duplicates).
    return [
        f"AE{k}@{host}:{scp.port}"
        for scp, host in zip(scps, HOSTS, strict=True)
        for k in range(per_address)
    ]


async def test_one_record_per_target_and_per_host_holds(fleet: list[ThreadedEchoSCP]) -> None:
    targets = _targets(fleet, 4)
    inputs = [*targets, targets[0], "127.0.0.1:99999"]  # a duplicate, an invalid one
    async with sweep_workers(
        inputs, workers=2, concurrency=16, per_host=1, timeouts=FAST
    ) as results:
        records = [record async for record in results]
    assert Counter(r.target for r in records if r.ok) == Counter(targets)
    assert [r.outcome for r in records if not r.ok] == [Outcome.INVALID_TARGET]
    assert results.stats.duplicates == 1
    assert results.stats.finished
    assert results.stats.emitted == len(targets) + 1
    assert [scp.counters.peak_associations for scp in fleet] == [1] * len(HOSTS)


async def test_stop_records_every_target(fleet: list[ThreadedEchoSCP]) -> None:
    targets = _targets(fleet, 6)
    records: list[ProbeResult] = []
    async with sweep_workers(
        targets, workers=2, concurrency=8, per_host=1, timeouts=FAST
    ) as results:
        async for record in results:
            records.append(record)
            if len(records) == 3:
                results.stop()
    assert Counter(r.target for r in records) == Counter(targets)
    outcomes = {r.outcome for r in records}
    assert outcomes <= {Outcome.SUCCESS, Outcome.CANCELLED, Outcome.NOT_STARTED}
    assert outcomes & {Outcome.CANCELLED, Outcome.NOT_STARTED}


async def test_a_killed_worker_is_reported(
    fleet: list[ThreadedEchoSCP], caplog: pytest.LogCaptureFixture
) -> None:
    slow = ThreadedEchoSCP(host="127.0.7.20", faults=Faults(delay={"echo": 0.5})).start()
    try:
        targets = [f"AE{k}@127.0.7.20:{slow.port}" for k in range(10)]
        records: list[ProbeResult] = []
        async with sweep_workers(
            targets, workers=2, concurrency=4, per_host=1, timeouts=FAST
        ) as results:
            async for record in results:
                records.append(record)
                if len(records) == 1:  # one address: the worker that holds them all dies
                    for process in multiprocessing.active_children():
                        if process.name.startswith("echoprobe-sweep-") and process.pid:
                            os.kill(process.pid, signal.SIGKILL)
    finally:
        slow.stop()
    assert Counter(r.target for r in records) == Counter(targets)
    died = [r for r in records if r.outcome is Outcome.INTERNAL_ERROR]
    assert died
    assert all(r.error is not None and "died" in r.error for r in died)
    assert "died" in caplog.text
