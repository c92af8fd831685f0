"""Which service state each probe outcome gives (`--ok-on`, `--warn-on`, `--crit-on`,
`--unknown-on`, `--refuse`).

Defaults (documented in docs/monitoring-plugins.md):
- `success` → OK, then the `-w` / `-c` response-time thresholds may raise it.
- `release_timeout`, `release_failed` → WARNING: every C-ECHO was answered with 0000H, only the
  A-RELEASE went wrong (the thresholds still apply on top).
- `invalid_target`, `not_started`, `internal_error` → UNKNOWN: nothing is known about the peer
  (a bad inventory row, the check's own deadline came first, a bug of ours).
- everything else → CRITICAL: refused, name not resolved, silent past the deadline, rejected,
  aborted, a failure status, a protocol error, TLS trouble. `dns_error` is CRITICAL because
  `check_tcp` makes it so ("Invalid hostname, address or socket"), and so is a timeout
  ("Socket timeout after N seconds").

An outcome named in two of the options is a usage error: a state mapping must not depend on
the order of the options.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from echoprobe.monitoring.plugin.states import State
from echoprobe.results import Outcome

DEFAULT_STATES: Mapping[Outcome, State] = MappingProxyType(
    {
        Outcome.SUCCESS: State.OK,
        Outcome.RELEASE_TIMEOUT: State.WARNING,
        Outcome.RELEASE_FAILED: State.WARNING,
        Outcome.INVALID_TARGET: State.UNKNOWN,
        Outcome.NOT_STARTED: State.UNKNOWN,
        Outcome.INTERNAL_ERROR: State.UNKNOWN,
    }
)
DEFAULT_STATE = State.CRITICAL  # any outcome not in DEFAULT_STATES


def parse_outcomes(text: str) -> frozenset[Outcome]:
    """`connection_refused,release_timeout` → outcomes; `ValueError` names the unknown ones."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError("give at least one outcome")
    known = {o.value: o for o in Outcome}
    unknown = sorted(n for n in names if n not in known)
    if unknown:
        raise ValueError(
            f"unknown outcome(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return frozenset(known[n] for n in names)


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    """Outcome → state: the defaults with the user's overrides on top."""

    overrides: Mapping[Outcome, State] = field(default_factory=dict)

    def state_of(self, outcome: Outcome) -> State:
        override = self.overrides.get(outcome)
        if override is not None:
            return override
        return DEFAULT_STATES.get(outcome, DEFAULT_STATE)

    @classmethod
    def build(cls, choices: Iterable[tuple[State, Iterable[Outcome]]]) -> OutcomePolicy:
        """From (state, outcomes) pairs; `ValueError` when an outcome gets two states."""
        overrides: dict[Outcome, State] = {}
        for state, outcomes in choices:
            for outcome in outcomes:
                previous = overrides.get(outcome)
                if previous is not None and previous is not state:
                    raise ValueError(
                        f"outcome {outcome.value} is mapped to both {previous} and {state}"
                    )
                overrides[outcome] = state
        return cls(MappingProxyType(overrides))
