"""Threshold ranges of the Monitoring Plugins Development Guidelines ("Threshold and ranges").

Rules (the guidelines' table; a range says what does *not* alert):
- `[@]start:end`, both inclusive; `start` defaults to 0 and a missing `end` means infinity;
  `~` as `start` means negative infinity; `start` must not exceed `end`.
- `10` alerts when the value is < 0 or > 10; `10:` when < 10; `~:10` when > 10; `10:20` when
  < 10 or > 20; `@10:20` when 10 ≤ value ≤ 20 (the leading `@` inverts the test).
- Numbers are decimal (`0.5`, `-3`, `1e2`); NaN and infinities are refused, as is anything after
  the range.
- `Range.text` keeps the user's spelling, which is also what performance data carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from echoprobe.monitoring.plugin.states import State


class RangeError(ValueError):
    """A threshold range that the guidelines' syntax does not allow (a usage error)."""


@dataclass(frozen=True, slots=True)
class Range:
    """`[@]start:end`: alert outside [start, end], or inside it when `inside`."""

    start: float = 0.0
    end: float = math.inf
    inside: bool = False
    text: str = ""

    def alerts(self, value: float) -> bool:
        """True when `value` triggers this threshold."""
        within = self.start <= value <= self.end
        return within if self.inside else not within

    @property
    def upper_bound(self) -> float | None:
        """The `N` of a plain `N` / `0:N` range (an upper limit only), else None: the one
        shape that tools with numeric levels (Checkmk's local checks) can take as is."""
        if self.inside or self.start != 0.0 or math.isinf(self.end):
            return None
        return self.end


def _number(text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RangeError(f"not a number in range {whole!r}: {text!r}") from None
    if not math.isfinite(value):
        raise RangeError(f"range {whole!r} must use finite numbers")
    return value


def parse_range(text: str) -> Range:
    """Parse a threshold range (`10`, `10:`, `~:10`, `10:20`, `@10:20`); `RangeError` if bad."""
    whole = text.strip()
    body = whole
    inside = body.startswith("@")
    if inside:
        body = body[1:]
    if not body:
        raise RangeError(f"empty threshold range {text!r}")
    start_text, colon, end_text = body.partition(":")
    if not colon:
        start, end = 0.0, _number(body, whole)
    else:
        if ":" in end_text:
            raise RangeError(f"more than one ':' in range {whole!r}")
        if start_text == "~":
            start = -math.inf
        elif start_text == "":
            start = 0.0
        else:
            start = _number(start_text, whole)
        end = math.inf if end_text == "" else _number(end_text, whole)
    if start > end:
        raise RangeError(f"range {whole!r} starts after it ends")
    return Range(start=start, end=end, inside=inside, text=whole)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The `-w` / `-c` pair for one measured value."""

    warning: Range | None = None
    critical: Range | None = None

    def state(self, value: float) -> State:
        """CRITICAL when `-c` alerts, else WARNING when `-w` alerts, else OK."""
        if self.critical is not None and self.critical.alerts(value):
            return State.CRITICAL
        if self.warning is not None and self.warning.alerts(value):
            return State.WARNING
        return State.OK

    def triggered(self, value: float) -> Range | None:
        """The range that decided `state(value)`, if any."""
        if self.critical is not None and self.critical.alerts(value):
            return self.critical
        if self.warning is not None and self.warning.alerts(value):
            return self.warning
        return None
