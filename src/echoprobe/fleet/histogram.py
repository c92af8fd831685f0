"""A latency histogram with bounded memory and a bounded relative error.

Rules: values are milliseconds (any non-negative float); memory does not grow with the number
of values recorded (log-spaced buckets, at most a few thousand for 1 µs … 1 day); a percentile
is exact at the extremes (min, max) and within `precision` (relative) elsewhere. It never reads a
clock and does no I/O, so sweeps, load tests and summaries can all share it.

Why not keep every value: a sweep of 100 000 targets over 7 phases would keep 700 000 floats
for a summary of a dozen numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

# Values below this (ms) all land in bucket 0: a microsecond is below what a probe can resolve.
_FLOOR_MS = 0.001

SUMMARY_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
"""The percentiles a summary shows (besides min, mean and max)."""


@dataclass(slots=True)
class LatencyHistogram:
    """Record millisecond values; ask for percentiles, mean, min and max.

    >>> h = LatencyHistogram()
    >>> for v in (1.0, 2.0, 3.0, 100.0):
    ...     h.record(v)
    >>> h.count, h.min, h.max
    (4, 1.0, 100.0)
    >>> round(h.percentile(50), 1)
    2.0
    """

    precision: float = 0.01  # relative width of a bucket (1 %)
    count: int = 0
    total: float = 0.0
    min: float | None = None
    max: float | None = None
    _buckets: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.precision < 1:
            raise ValueError("precision must be between 0 and 1")

    def _index(self, value: float) -> int:
        if value <= _FLOOR_MS:
            return 0
        return 1 + int(math.log(value / _FLOOR_MS) / math.log1p(self.precision))

    def _value(self, index: int) -> float:
        """A representative value of a bucket: its geometric middle."""
        if index == 0:
            return _FLOOR_MS
        growth = 1.0 + self.precision
        return float(_FLOOR_MS * growth ** (index - 1) * math.sqrt(growth))

    def record(self, value: float) -> None:
        if math.isnan(value) or value < 0:  # NaN or negative: a caller's bug, not a latency
            raise ValueError(f"latency must be a non-negative number, not {value!r}")
        index = self._index(value)
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.total += value
        self.min = value if self.min is None or value < self.min else self.min
        self.max = value if self.max is None or value > self.max else self.max

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: LatencyHistogram) -> None:
        """Add another histogram's values (both must have the same precision)."""
        if other.precision != self.precision:
            raise ValueError("cannot merge histograms of different precision")
        for index, n in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0 ≤ q ≤ 100), or None when nothing was recorded.

        Nearest-rank on the buckets, clamped to the exact min and max."""
        if not 0 <= q <= 100:
            raise ValueError("percentile must be within 0..100")
        if not self.count or self.min is None or self.max is None:
            return None
        if q == 0:
            return self.min
        if q == 100:
            return self.max
        # Nearest rank; the epsilon keeps float noise (99.9 / 100 * 5000 = 4995.000…01) out.
        rank = max(1, math.ceil(q * self.count / 100.0 - 1e-9))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(max(self._value(index), self.min), self.max)
        return self.max  # unreachable: the buckets hold `count` values

    @property
    def relative_error(self) -> float:
        """The largest relative error of a percentile between min and max: half a bucket,
        since a bucket is reported by its geometric middle (sqrt(1 + precision) - 1)."""
        return math.sqrt(1.0 + self.precision) - 1.0

    def percentiles(self, qs: Iterable[float] = SUMMARY_PERCENTILES) -> dict[float, float | None]:
        """Several percentiles in one pass over the sorted buckets."""
        wanted = sorted(set(qs))
        out: dict[float, float | None] = {}
        if not self.count or self.min is None or self.max is None:
            return dict.fromkeys(wanted)
        lo, hi = self.min, self.max
        ranks = [(q, max(1, math.ceil(q / 100.0 * self.count))) for q in wanted]
        position = 0
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            while position < len(ranks) and seen >= ranks[position][1]:
                q = ranks[position][0]
                if q == 0:
                    out[q] = lo
                elif q == 100:
                    out[q] = hi
                else:
                    out[q] = min(max(self._value(index), lo), hi)
                position += 1
        for q, _ in ranks[position:]:
            out[q] = hi
        return out

    def buckets(self) -> list[tuple[float, float, int]]:
        """The non-empty buckets in order: (low ms, high ms, count); for plotting."""
        growth = 1.0 + self.precision
        rows = []
        for index in sorted(self._buckets):
            if index == 0:
                low, high = 0.0, _FLOOR_MS
            else:
                low = _FLOOR_MS * growth ** (index - 1)
                high = low * growth
            rows.append((low, high, self._buckets[index]))
        return rows

    @classmethod
    def from_buckets(
        cls,
        rows: Iterable[tuple[float, float, int]],
        *,
        precision: float,
        total: float = 0.0,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> LatencyHistogram:
        """The inverse of `buckets()`: a histogram of those rows (a report's JSON, say), with
        the sum, min and max that rows cannot carry. Each row's bucket is found from its
        geometric middle, half a bucket away from both bounds, so bounds rounded when they
        were written still land in the bucket they came from."""
        hist = cls(precision, total=total, min=minimum, max=maximum)
        for low, high, n in rows:
            if n < 0:
                raise ValueError(f"a bucket cannot hold {n} values")
            index = hist._index(math.sqrt(low * high) if low > 0 else 0.0)
            hist._buckets[index] = hist._buckets.get(index, 0) + n
            hist.count += n
        return hist

    def copy(self) -> LatencyHistogram:
        twin = LatencyHistogram(self.precision)
        twin.merge(self)
        return twin

    def to_dict(self, *, buckets: bool = False) -> dict[str, object]:
        """JSON-ready: count, min, mean, p50/p90/p99/p99.9, max (ms), the relative error, and
        with `buckets` every non-empty bucket as [low, high, count]."""
        pct = self.percentiles()
        data: dict[str, object] = {
            "count": self.count,
            "min": self.min,
            "mean": self.mean,
            **{_label(q): pct[q] for q in SUMMARY_PERCENTILES},
            "max": self.max,
            "relative_error": round(self.relative_error, 6),
        }
        if buckets:
            data["buckets"] = [[low, high, n] for low, high, n in self.buckets()]
        return data


def _label(q: float) -> str:
    """50.0 → "p50", 99.9 → "p99.9"."""
    return f"p{q:g}"


__all__ = ["SUMMARY_PERCENTILES", "LatencyHistogram"]
