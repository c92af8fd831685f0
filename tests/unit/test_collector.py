"""`relaxed_collector()`: raised while engines run, restored by the last one, never fighting
the application's own setting."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from echoprobe.fleet.collector import ENGINE_GC_THRESHOLD, relaxed_collector


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_raised_inside_and_restored_after() -> None:
    with relaxed_collector():
        assert gc.get_threshold() == (ENGINE_GC_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_engines_share_one_raise() -> None:
    first, second = relaxed_collector(), relaxed_collector()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start ends first
    assert gc.get_threshold()[0] == ENGINE_GC_THRESHOLD  # the second still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_an_application_setting_is_left_alone() -> None:
    gc.set_threshold(50_000, 10, 10)
    with relaxed_collector():
        assert gc.get_threshold() == (50_000, 10, 10)  # already higher: not lowered
    assert gc.get_threshold() == (50_000, 10, 10)
    gc.set_threshold(700, 10, 10)
    with relaxed_collector():
        gc.set_threshold(1_000, 5, 5)  # the application changes it meanwhile
    assert gc.get_threshold() == (1_000, 5, 5)


def test_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), relaxed_collector():
        raise RuntimeError("engine failed")
    assert gc.get_threshold() == (700, 10, 10)
