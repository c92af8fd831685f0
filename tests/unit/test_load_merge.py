"""Exact merging of load reports: JSON round trips keep every bucket, merges add them."""

from __future__ import annotations

import json
import random

import pytest

from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load_merge import (
    ReportFormatError,
    histogram_from_dict,
    merge_histograms,
    merge_ticks,
)
from echoprobe.fleet.load_model import TickStats


def _histogram(values: list[float]) -> LatencyHistogram:
    hist = LatencyHistogram()
    hist.extend(values)
    return hist


def _round_trip(hist: LatencyHistogram) -> LatencyHistogram:
    return histogram_from_dict(json.loads(json.dumps(hist.to_dict(buckets=True))))


def test_json_round_trip_keeps_every_bucket() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(0, 2) for _ in range(5000)] + [0.0, 0.0005, 1e-9, 86_400_000.0]
    hist = _histogram(values)
    back = _round_trip(hist)
    assert back.buckets() == hist.buckets()
    assert (back.count, back.min, back.max) == (hist.count, hist.min, hist.max)
    assert back.mean == pytest.approx(hist.mean)
    for q in (1, 50, 90, 99, 99.9):
        assert back.percentile(q) == hist.percentile(q)


def test_merged_parts_equal_one_histogram_of_everything() -> None:
    rng = random.Random(9)
    values = [rng.expovariate(0.5) for _ in range(3000)]
    parts = [_histogram(values[i::3]) for i in range(3)]
    merged = merge_histograms(_round_trip(p) for p in parts)
    whole = _histogram(values)
    assert merged.buckets() == whole.buckets()
    assert merged.count == whole.count == 3000
    assert merged.percentiles() == whole.percentiles()


def test_a_histogram_without_buckets_is_refused() -> None:
    with pytest.raises(ReportFormatError):
        histogram_from_dict({"count": 1, "min": 1.0, "max": 1.0, "mean": 1.0})
    with pytest.raises(ReportFormatError):
        histogram_from_dict({"count": 2, "buckets": [[1.0, 1.01, 1]]})
    with pytest.raises(ReportFormatError):
        histogram_from_dict({"count": 1, "buckets": [["x", 1.01, 1]]})


def test_ticks_merge_counts_and_exact_percentiles() -> None:
    a_values, b_values = [1.0] * 90, [100.0] * 10
    a = TickStats(
        t=1.0,
        seconds=1.0,
        warmup=False,
        level=2,
        started=90,
        succeeded=90,
        failures={"x": 1},
        cpu=0.5,
    )
    b = TickStats(
        t=1.01,
        seconds=1.0,
        warmup=False,
        level=2,
        started=10,
        succeeded=10,
        failures={"x": 2, "y": 1},
        cpu=0.25,
    )
    exact = merge_ticks([a, b], merge_histograms([_histogram(a_values), _histogram(b_values)]))
    assert (exact.started, exact.succeeded, exact.level, exact.cpu) == (100, 100, 4, 0.75)
    assert exact.failures == {"x": 3, "y": 1}
    assert exact.p50 == pytest.approx(1.0, rel=0.01)
    assert exact.p99 == pytest.approx(100.0, rel=0.01)
    bound = merge_ticks([a, b])  # no histograms: the worst part, an upper bound
    assert bound.p99 is None
