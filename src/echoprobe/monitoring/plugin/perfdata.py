"""Performance data of the Monitoring Plugins Development Guidelines.

Grammar: `'label'=value[UOM];[warn];[crit];[min];[max]`, items separated by one space.

Rules:
- A label holds any character but `=` and `'`; it is quoted when it holds anything besides
  letters, digits, `_`, `-`, `.`, `/`, `:` or `@` (the guidelines require quotes for spaces, and
  graphers split unquoted labels on other characters). `=` and `'` are replaced by `_`.
- `value` is a number or `U` (undetermined); `min` and `max` are plain numbers in the value's
  unit; `warn` and `crit` are threshold ranges, written as the user gave them.
- Seconds are printed with six decimals, as `check_tcp` does; counts as integers.
  Trailing empty fields are dropped (the guidelines allow it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from echoprobe.monitoring.plugin.ranges import Range

UNITS = ("", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c")
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_.:/@-]+\Z")


@dataclass(frozen=True, slots=True)
class PerfValue:
    """One performance-data item; `value` None renders as `U`."""

    label: str
    value: float | None
    unit: str = ""
    warning: Range | None = None
    critical: Range | None = None
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of the guidelines' {UNITS}")
        if not self.label:
            raise ValueError("a performance-data label cannot be empty")

    def render(self) -> str:
        fields = [
            "U" if self.value is None else f"{self._number(self.value)}{self.unit}",
            "" if self.warning is None else self.warning.text,
            "" if self.critical is None else self.critical.text,
            "" if self.minimum is None else self._number(self.minimum),
            "" if self.maximum is None else self._number(self.maximum),
        ]
        while fields and fields[-1] == "":
            fields.pop()
        return f"{quote_label(self.label)}={';'.join(fields)}"

    def _number(self, number: float) -> str:
        if self.unit == "s":
            return f"{number:.6f}"
        if float(number).is_integer():
            return str(int(number))
        return f"{number:.6f}".rstrip("0").rstrip(".")


def quote_label(label: str) -> str:
    """The label as the grammar wants it (quoted when needed, `=` and `'` replaced)."""
    clean = label.replace("=", "_").replace("'", "_")
    return clean if _PLAIN_LABEL.match(clean) else f"'{clean}'"


def render_perfdata(values: Iterable[PerfValue]) -> str:
    """Items separated by single spaces."""
    return " ".join(v.render() for v in values)


def seconds(
    label: str,
    milliseconds: float | None,
    *,
    thresholds: tuple[Range | None, Range | None] = (None, None),
    maximum: float | None = None,
) -> PerfValue:
    """A duration measured in milliseconds, as seconds (`s`, minimum 0)."""
    value = None if milliseconds is None else milliseconds / 1000.0
    warning, critical = thresholds
    return PerfValue(label, value, "s", warning, critical, 0.0, maximum)
