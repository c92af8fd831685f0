"""Stopping early is silent: cancelling `echo()`, `probe()`, `sweep()` and `run_load()` at any
moment leaves nothing for the event loop to complain about.

An embedding service cancels probes all the time (a health check's own deadline, shutdown).
Each test cancels the caller at many moments, from before the connect to the middle of the
release, against an SCP in another thread whose answers are slightly delayed (so that
associations are caught in every phase), and then asserts that the loop's exception handler
was never called: no "Fatal error on transport", no `InvalidStateError` from a protocol
callback, no "Future exception was never retrieved" (garbage is collected before the check, so
an unretrieved failure would be reported by then).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from echoprobe.fleet.load import run_load
from echoprobe.fleet.sweep import sweep
from echoprobe.net.client import echo, probe
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from tests.conftest import ScpFactory

HOSTS = [f"127.0.70.{i}" for i in range(1, 41)]
SLOW = Faults(delay={"associate": 0.002, "echo": 0.002, "release": 0.002})
TIMEOUTS = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=2.0, total=5.0)
# Cancellation moments (seconds after the start): before the connect, during each phase.
MOMENTS = [0.0, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.007, 0.01, 0.02, 0.05]


async def _cancel_at(make: Callable[[], Awaitable[Any]], moment: float) -> None:
    task = asyncio.ensure_future(make())
    await asyncio.sleep(moment)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _quietly(runs: Callable[[], Awaitable[None]]) -> list[dict[str, Any]]:
    """Run `runs` with the loop's exception handler recording; what it recorded."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        await runs()
        await asyncio.sleep(0.05)  # late callbacks (connection_lost, data after the cancel)
        gc.collect()  # an unretrieved future failure is reported when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    return seen


def _described(seen: list[dict[str, Any]]) -> str:
    return "; ".join(f"{c.get('message')}: {c.get('exception')!r}" for c in seen[:5])


async def test_cancelled_echo_and_probe_are_silent(scp_factory: ScpFactory) -> None:
    scp = scp_factory(host=HOSTS[:4], faults=SLOW)

    async def runs() -> None:
        for round_ in range(3):
            for moment in MOMENTS:
                host = HOSTS[round_ % 4]
                await _cancel_at(partial(echo, host, scp.port, timeouts=TIMEOUTS), moment)
                await _cancel_at(partial(probe, host, scp.port, timeouts=TIMEOUTS), moment)

    seen = await _quietly(runs)
    assert not seen, _described(seen)


async def test_cancelled_sweep_is_silent_and_aborts_what_is_in_flight(
    scp_factory: ScpFactory,
) -> None:
    scp = scp_factory(host=HOSTS, faults=SLOW)
    targets = [f"AE{i}@{HOSTS[i % len(HOSTS)]}:{scp.port}" for i in range(600)]
    records: list[int] = []

    async def one_sweep() -> None:
        count = 0
        try:
            async with sweep(targets, concurrency=200, per_host=8, timeouts=TIMEOUTS) as results:
                async for _ in results:
                    count += 1
        finally:
            records.append(count)

    async def runs() -> None:
        for moment in (0.0, 0.005, 0.02, 0.05, 0.1, 0.2):
            await _cancel_at(one_sweep, moment)

    seen = await _quietly(runs)
    assert not seen, _described(seen)
    assert len(records) == 6


async def test_cancelled_load_is_silent(scp_factory: ScpFactory) -> None:
    scp = scp_factory(host=HOSTS[:2], faults=SLOW)

    async def runs() -> None:
        for moment in (0.0, 0.01, 0.05, 0.2):
            await _cancel_at(
                lambda: run_load(
                    HOSTS[0], scp.port, concurrency=32, duration=5.0, timeouts=TIMEOUTS
                ),
                moment,
            )

    seen = await _quietly(runs)
    assert not seen, _described(seen)


@pytest.mark.parametrize("moment", [0.001, 0.003])
async def test_a_cancelled_probe_aborts_the_association(
    scp_factory: ScpFactory, moment: float
) -> None:
    """What the peer sees: an association cancelled after it was accepted ends with A-ABORT
    (or never began), never left open until the SCP's idle timer."""
    scp = scp_factory(host=HOSTS[:1], faults=Faults(delay={"echo": 0.5}))
    await _cancel_at(lambda: echo(HOSTS[0], scp.port, timeouts=TIMEOUTS), moment)
    for _ in range(100):
        if scp.scp is not None and scp.scp.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert scp.scp is not None
    assert scp.scp.open_connections == 0
