"""`LatencyHistogram`: the relative-error promise, merging, buckets and the JSON form.

(The sweep's own checks of the basics are in `test_sweep_reports.py`; these cover what the
load generator relies on: many percentiles at once, buckets for plotting, mergeability.)
"""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echoprobe.fleet.histogram import SUMMARY_PERCENTILES, LatencyHistogram

QS = (1.0, 25.0, 50.0, 90.0, 99.0, 99.9)


def exact(values: list[float], q: float) -> float:
    """Nearest-rank percentile, the definition the histogram approximates."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(min_value=0.002, max_value=1e6, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    )
)
def test_percentiles_are_within_the_stated_relative_error(values: list[float]) -> None:
    h = LatencyHistogram()
    h.extend(values)
    bound = h.relative_error * (1 + 1e-9)
    got = h.percentiles(QS)
    for q in QS:
        want = exact(values, q)
        assert got[q] == h.percentile(q)
        assert abs(got[q] - want) <= bound * want + 1e-12, (q, got[q], want)  # type: ignore[operator]


def test_extremes_are_exact_and_relative_error_is_half_a_bucket() -> None:
    h = LatencyHistogram(precision=0.02)
    h.extend([0.5, 3.0, 70.0])
    assert h.percentiles([0, 100]) == {0: 0.5, 100: 70.0}
    assert h.relative_error == pytest.approx(math.sqrt(1.02) - 1)
    assert LatencyHistogram().percentiles() == dict.fromkeys(SUMMARY_PERCENTILES)


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(1.0, 1.2) for _ in range(5000)]
    whole = LatencyHistogram()
    whole.extend(values)
    parts = [LatencyHistogram() for _ in range(4)]
    for index, value in enumerate(values):
        parts[index % 4].record(value)
    merged = LatencyHistogram()
    for part in parts:
        merged.merge(part)
    assert merged.count == whole.count
    assert merged.min == whole.min
    assert merged.max == whole.max
    assert merged.buckets() == whole.buckets()
    assert merged.percentiles() == whole.percentiles()


def test_memory_is_bounded() -> None:
    h = LatencyHistogram()
    rng = random.Random(1)
    for _ in range(50_000):
        h.record(rng.uniform(0.001, 86_400_000.0))  # 1 µs … 1 day
    assert len(h.buckets()) < 2_500
    assert sum(n for _, _, n in h.buckets()) == 50_000


def test_buckets_cover_their_values() -> None:
    h = LatencyHistogram()
    h.extend([0.0, 0.0005, 1.0, 1.004, 2.0, 2.0])
    rows = h.buckets()
    assert rows[0] == (0.0, 0.001, 2)  # at or below the floor
    assert sum(n for *_, n in rows) == 6
    for low, high, _ in rows[1:]:
        assert high == pytest.approx(low * 1.01)
    assert any(low <= 2.0 < high and n == 2 for low, high, n in rows)


def test_copy_is_independent() -> None:
    h = LatencyHistogram()
    h.extend([1.0, 2.0])
    twin = h.copy()
    twin.record(500.0)
    assert h.count == 2
    assert h.max == 2.0
    assert twin.count == 3


def test_to_dict_is_json_ready() -> None:
    h = LatencyHistogram()
    h.extend([1.0, 2.0, 3.0, 4.0])
    data = h.to_dict(buckets=True)
    assert list(data) == [
        "count",
        "min",
        "mean",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "relative_error",
        "buckets",
    ]
    assert data["count"] == 4
    assert data["max"] == 4.0
    assert data["mean"] == 2.5
    assert json.loads(json.dumps(data))["buckets"][0][2] == 1
    assert "buckets" not in h.to_dict()


@given(
    st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=1, max_size=200),
    st.sampled_from([0.01, 0.05, 0.001]),
)
@settings(max_examples=60, deadline=None)
def test_from_buckets_rebuilds_what_buckets_wrote(values: list[float], precision: float) -> None:
    original = LatencyHistogram(precision)
    original.extend(values)
    # As a report's JSON carries them: bounds rounded to a few digits.
    rows = [(round(low, 9), round(high, 9), n) for low, high, n in original.buckets()]
    rebuilt = LatencyHistogram.from_buckets(
        rows,
        precision=precision,
        total=original.total,
        minimum=original.min,
        maximum=original.max,
    )
    assert rebuilt.buckets() == original.buckets()
    assert rebuilt.count == original.count
    assert rebuilt.percentiles() == original.percentiles()


def test_from_buckets_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        LatencyHistogram.from_buckets([(1.0, 1.01, -1)], precision=0.01)
