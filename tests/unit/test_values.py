"""`@value` / `@record` (echoprobe._values) and `bounded_cache` (echoprobe._memo): the start-up
path's replacements for dataclasses and functools.lru_cache behave as those do where we use them."""

from __future__ import annotations

import copy
import pickle

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
