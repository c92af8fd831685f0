"""Many peers' verdicts → one summary: `DICOM CRITICAL - 3 of 200 peers fail`.

Rules:
- Pure: verdicts in, a `FleetVerdict` out.
- The summary state is the worst peer state (CRITICAL > WARNING > UNKNOWN > OK), unless
  `--failing-warn` / `--failing-crit` are given: then it is those ranges applied to the number of
  peers that are not OK (so "warn from 1 failing peer, critical from 10" is `--failing-warn 0
  --failing-crit 9`, the guidelines' range syntax).
- Details: one line per peer that is not OK, the most severe first, then by label; `-v` adds
  the OK peers. Each line is `STATE: label - text`.
- Performance data: `peers`, `ok`, `warning`, `critical`, `unknown`, `failing` (counts, max =
  the number of peers), `time` (the whole check) and `slowest` (the slowest answering peer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from echoprobe.monitoring.plugin.perfdata import PerfValue, seconds
from echoprobe.monitoring.plugin.ranges import Thresholds
from echoprobe.monitoring.plugin.single import PeerVerdict
from echoprobe.monitoring.plugin.states import State, worst


@dataclass(frozen=True, slots=True)
class FleetVerdict:
    state: State
    text: str
    perfdata: tuple[PerfValue, ...]
    details: tuple[str, ...]
    peers: tuple[PeerVerdict, ...]
    counts: dict[str, int]
    elapsed_s: float


def summarize(
    peers: Sequence[PeerVerdict],
    *,
    elapsed_s: float,
    timeout: float,
    failing: Thresholds | None = None,
    verbose: int = 0,
    missing: int = 0,
) -> FleetVerdict:
    """The summary of a fleet check. `missing`: records the sweep owed but did not deliver
    before the hard deadline (a bug if ever non-zero); they count as UNKNOWN."""
    tally = Counter(v.state for v in peers)
    tally[State.UNKNOWN] += missing
    total = len(peers) + missing
    not_ok = total - tally[State.OK]
    if failing is not None and (failing.warning is not None or failing.critical is not None):
        state = failing.state(not_ok)
    else:
        state = worst(*(s for s, n in tally.items() if n))
    counts = {
        "peers": total,
        "ok": tally[State.OK],
        "warning": tally[State.WARNING],
        "critical": tally[State.CRITICAL],
        "unknown": tally[State.UNKNOWN],
        "failing": not_ok,
    }
    ordered = sorted(peers, key=lambda v: (-v.state.severity, v.label))
    details = [f"{v.state}: {v.label} - {v.text}" for v in ordered if v.state is not State.OK]
    if missing:
        details.append(f"UNKNOWN: {missing} peer(s) - no record before the hard deadline")
    if verbose >= 1:
        details.extend(f"OK: {v.label} - {v.text}" for v in ordered if v.state is State.OK)
    answered = [t for t in (v.time_s for v in peers if v.result.outcome.echo_succeeded) if t]
    perf = [
        PerfValue("peers", total, minimum=0),
        *(
            PerfValue(name, counts[name], minimum=0, maximum=total)
            for name in ("ok", "warning", "critical", "unknown")
        ),
        PerfValue(
            "failing",
            not_ok,
            warning=None if failing is None else failing.warning,
            critical=None if failing is None else failing.critical,
            minimum=0,
            maximum=total,
        ),
        seconds("time", elapsed_s * 1000.0, maximum=timeout),
        seconds("slowest", max(answered) * 1000.0 if answered else None),
    ]
    return FleetVerdict(
        state=state,
        text=_text(counts),
        perfdata=tuple(perf),
        details=tuple(details),
        peers=tuple(peers),
        counts=counts,
        elapsed_s=elapsed_s,
    )


def _text(counts: dict[str, int]) -> str:
    total = counts["peers"]
    if total == 0:
        return "no peers to check"
    of = f"of {total} {'peer' if total == 1 else 'peers'}"
    parts: list[str] = []
    for key, one, many in (
        ("critical", "fails", "fail"),
        ("warning", "warns", "warn"),
        ("unknown", "unknown", "unknown"),
    ):
        count = counts[key]
        if count:
            verb = one if count == 1 else many
            parts.append(f"{count} {of} {verb}" if not parts else f"{count} {verb}")
    if not parts:
        return f"{total} {of} answer C-ECHO"
    return ", ".join(parts)
