"""Threshold ranges: the guidelines' table, errors, and the alert rule as a property."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echoprobe.monitoring.plugin.ranges import Range, RangeError, Thresholds, parse_range
from echoprobe.monitoring.plugin.states import State, worst

# The guidelines' examples: (range, values that alert, values that do not).
TABLE = [
    ("10", [-1, 10.5, 11], [0, 5, 10]),
    ("10:", [-1, 9.99], [10, 11, 1e9]),
    ("~:10", [10.01, 11], [-1e9, 0, 10]),
    ("10:20", [9, 21], [10, 15, 20]),
    ("@10:20", [10, 15, 20], [9, 21]),
    ("0.5", [0.51, -0.1], [0, 0.5]),
    ("-5:-1", [0, -6], [-5, -3, -1]),
    ("@~:3", [-100, 3], [3.01]),
    ("1e1", [10.1], [10]),
]


@pytest.mark.parametrize(("text", "alerting", "quiet"), TABLE)
def test_guidelines_table(text: str, alerting: list[float], quiet: list[float]) -> None:
    threshold = parse_range(text)
    assert threshold.text == text
    for value in alerting:
        assert threshold.alerts(value), (text, value)
    for value in quiet:
        assert not threshold.alerts(value), (text, value)


def test_parsed_bounds() -> None:
    assert parse_range("10") == Range(0.0, 10.0, False, "10")
    assert parse_range("10:") == Range(10.0, math.inf, False, "10:")
    assert parse_range("~:10") == Range(-math.inf, 10.0, False, "~:10")
    assert parse_range("@5:10") == Range(5.0, 10.0, True, "@5:10")
    assert parse_range(":7") == Range(0.0, 7.0, False, ":7")


@pytest.mark.parametrize(
    "bad", ["", "@", "abc", "10:5", "1:2:3", "nan", "inf", "~", "5:x", "@@1", "1,5"]
)
def test_bad_ranges(bad: str) -> None:
    with pytest.raises(RangeError):
        parse_range(bad)


def test_upper_bound_only_for_plain_limits() -> None:
    assert parse_range("3").upper_bound == 3.0
    assert parse_range("0:3").upper_bound == 3.0
    assert parse_range("1:3").upper_bound is None
    assert parse_range("@0:3").upper_bound is None
    assert parse_range("3:").upper_bound is None


def test_thresholds_critical_wins() -> None:
    both = Thresholds(parse_range("1"), parse_range("3"))
    assert both.state(0.5) is State.OK
    assert both.state(2) is State.WARNING
    assert both.state(4) is State.CRITICAL
    assert both.triggered(4) is both.critical
    assert Thresholds().state(1e9) is State.OK


def test_worst_order() -> None:
    assert worst() is State.OK
    assert worst(State.OK, State.UNKNOWN) is State.UNKNOWN
    assert worst(State.UNKNOWN, State.WARNING) is State.WARNING
    assert worst(State.WARNING, State.CRITICAL, State.UNKNOWN) is State.CRITICAL


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(finite, finite, st.booleans(), finite)
def test_alert_rule(a: float, b: float, inside: bool, value: float) -> None:
    start, end = min(a, b), max(a, b)
    threshold = parse_range(f"{'@' if inside else ''}{start!r}:{end!r}")
    within = start <= value <= end
    assert threshold.alerts(value) == (within if inside else not within)
