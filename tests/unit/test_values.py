"""`@value` / `@record` (echoprobe._values) and `bounded_cache` (echoprobe._memo): the start-up
path's replacements for dataclasses and functools.lru_cache behave as those do where we use them."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from echoprobe._memo import bounded_cache
from echoprobe._values import FrozenInstanceError, field, fields_of, record, replace, value


@value
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record
class Counter:
    name: str
    count: int = 0


@value
class Checked:
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")


@value
class Empty:
    pass


@value
class Twin:  # the same shape as Point: the two share compiled code, never names or defaults
    a: str
    b: str = "b"
    c: list[int] = field(default_factory=lambda: [1])


def test_fields_defaults_and_factories() -> None:
    assert (Point(1).x, Point(1).y, Point(1).tags) == (1, 0, [])
    assert Point(1).tags is not Point(1).tags
    assert Point(x=2, y=3, tags=["a"]) == Point(2, 3, ["a"])
    assert fields_of(Point) == ("x", "y", "tags")
    assert (Twin("a").a, Twin("a").b, Twin("a").c) == ("a", "b", [1])
    assert Empty() == Empty()


def test_signature_errors_name_the_real_fields() -> None:
    with pytest.raises(TypeError, match="'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'z'"):
        Point(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)  # type: ignore[misc]
    assert Point.__init__.__qualname__ == "Point.__init__"
    assert Point.__init__.__code__.co_varnames[:4] == ("self", "x", "y", "tags")


def test_values_are_frozen_compared_and_hashed() -> None:
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 5  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del point.x
    with pytest.raises(AttributeError):
        point.other = 1  # type: ignore[attr-defined]
    assert Point(1, 2) == Point(1, 2) != Point(2, 1)
    assert hash(Checked(1, 2)) == hash(Checked(1, 2))
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"


def test_records_are_mutable_and_unhashable() -> None:
    counter = Counter("a")
    counter.count += 1
    assert counter == Counter("a", 1)
    with pytest.raises(TypeError):
        hash(counter)
    assert not hasattr(counter, "__dict__")


def test_post_init_runs_after_the_fields_are_set() -> None:
    assert Checked(1, 2).high == 2
    with pytest.raises(ValueError, match="low above high"):
        Checked(3, 2)


def test_replace_copies_with_changes() -> None:
    point = Point(1, 2, ["t"])
    assert replace(point, y=5) == Point(1, 5, ["t"])
    with pytest.raises(TypeError, match="no field"):
        replace(point, z=1)


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default after one with"):

        @value
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_values_and_records_pickle_and_copy() -> None:
    # ProbeResult and friends cross process boundaries (multiprocessing) and get copied.
    assert pickle.loads(pickle.dumps(Point(1, 2, ["a"]))) == Point(1, 2, ["a"])
    assert pickle.loads(pickle.dumps(Counter("a", 3))) == Counter("a", 3)
    deep = copy.deepcopy(Point(1, 2, ["a"]))
    assert deep == Point(1, 2, ["a"])
    assert copy.copy(Empty()) == Empty()


def test_bounded_cache_keeps_at_most_maxsize_results() -> None:
    calls: list[int] = []

    @bounded_cache(2)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    assert [square(2), square(2), square(3), square(2)] == [4, 4, 9, 4]
    assert calls == [2, 3]
    square(4)  # full: the oldest entry (2) goes
    square(2)
    assert calls == [2, 3, 4, 2]
    assert square.__name__ == "square"


def test_bounded_cache_does_not_keep_failures() -> None:
    calls: list[int] = []

    @bounded_cache(4)
    def fail_once(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise OSError("first call fails")
        return n

    with pytest.raises(OSError):
        fail_once(1)
    assert fail_once(1) == 1
    assert fail_once(1) == 1
    assert calls == [1, 1]
    with pytest.raises(ValueError):
        bounded_cache(0)


def test_echoscu_start_up_compiles_no_value_shape() -> None:
    """Every shape echoscu's imports build is pre-compiled in `_value_shapes` (start-up time):
    tools/value_shapes.py --check regenerates it in a fresh interpreter and compares."""
    tool = Path(__file__).resolve().parents[2] / "tools" / "value_shapes.py"
    done = subprocess.run(
        [sys.executable, str(tool), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_shape_not_pre_compiled_is_compiled_on_first_use() -> None:
    @value
    class Wide:  # 23 fields: no class on echoscu's path has this shape
        f0: int
        f1: int = 1
        f2: int = 2
        f3: int = 3
        f4: int = 4
        f5: int = 5
        f6: int = 6
        f7: int = 7
        f8: int = 8
        f9: int = 9
        f10: int = 10
        f11: int = 11
        f12: int = 12
        f13: int = 13
        f14: int = 14
        f15: int = 15
        f16: int = 16
        f17: int = 17
        f18: int = 18
        f19: int = 19
        f20: int = 20
        f21: int = 21
        f22: list[int] = field(default_factory=list)

    wide = Wide(0, f21=-1)
    assert (wide.f0, wide.f20, wide.f21, wide.f22) == (0, 20, -1, [])


def test_bounded_cache_is_safe_to_share_between_threads() -> None:
    @bounded_cache(8)
    def double(n: int) -> int:
        return 2 * n

    failures: list[BaseException] = []

    def hammer(offset: int) -> None:
        try:
            for i in range(20_000):
                assert double((i * 7 + offset) % 50) == 2 * ((i * 7 + offset) % 50)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: the unguarded eviction failed here
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not failures
