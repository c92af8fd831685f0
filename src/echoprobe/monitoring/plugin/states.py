"""Service states of the Monitoring Plugins Development Guidelines ("Plugin Return Codes").

The numeric value is the plugin's exit code. When many results fold into one (a fleet),
the worst wins in the order CRITICAL > WARNING > UNKNOWN > OK (monitoring-plugins'
`max_state_alt`): a failing peer must never hide behind one we could not check.
"""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    def __str__(self) -> str:
        return self.name

    @property
    def severity(self) -> int:
        """Rank for `worst()`: OK 0, UNKNOWN 1, WARNING 2, CRITICAL 3."""
        return _SEVERITY[self]

    @classmethod
    def parse(cls, text: str) -> State:
        """`ok`, `warn`/`warning`, `crit`/`critical`, `unknown` (any case) → a state."""
        key = text.strip().lower()
        try:
            return _NAMES[key]
        except KeyError:
            raise ValueError(f"not a state: {text!r} (ok, warn, crit or unknown)") from None


_SEVERITY = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}
_NAMES = {
    "ok": State.OK,
    "warn": State.WARNING,
    "warning": State.WARNING,
    "crit": State.CRITICAL,
    "critical": State.CRITICAL,
    "unknown": State.UNKNOWN,
}


def worst(*states: State) -> State:
    """The most severe of `states` (OK when there are none)."""
    return max(states, key=lambda s: s.severity, default=State.OK)
