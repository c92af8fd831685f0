"""`net.aio.Deadline`, the hot path's light asyncio.timeout(): same rules, checked here."""

from __future__ import annotations

import asyncio

import pytest

from echoprobe.net.aio import Deadline


async def test_expiry_becomes_timeout_error_and_leaves_no_cancellation() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), Deadline(loop, 0.05) as deadline:
        await asyncio.sleep(5)
    assert deadline.expired
    assert loop.time() - started < 1.0
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation left pending for the next await


async def test_no_expiry_no_effect() -> None:
    loop = asyncio.get_running_loop()
    with Deadline(loop, 5.0) as deadline:
        await asyncio.sleep(0.01)
    assert not deadline.expired
    with Deadline(loop, None) as unlimited:
        await asyncio.sleep(0)
    assert not unlimited.expired


async def test_outside_cancellation_is_not_turned_into_a_timeout() -> None:
    loop = asyncio.get_running_loop()

    async def guarded() -> None:
        with Deadline(loop, 5.0):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(guarded())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
