"""The output formats: `nagios` (also Icinga, Naemon, Checkmk's classic checks), `checkmk`
(local-check lines), `zabbix-lld` (low-level discovery) and `json` (for Zabbix item
preprocessing and scripts).

Rules:
- `nagios`: the guidelines' plugin output. Line one is `DICOM STATE - text | perfdata`, the
  details follow one per line (the "long output"). `|` in any text would start performance
  data, so it becomes `/`.
- `checkmk`: one local-check line per peer, `STATE "SERVICE NAME" METRICS TEXT`, metrics
  `name=value;warn;crit;min;max` joined by `|` (`-` when none), values in seconds without a
  unit; warn/crit only when the threshold is a plain upper limit (Checkmk's levels cannot say
  `@5:10`), since the state is computed here anyway. Details go into the text as literal `\\n`,
  which Checkmk shows as long output. A `"` in a service name becomes `'`.
- `zabbix-lld`: `{"data": [{"{#TARGET}": ..., ...}]}` with one object per valid inventory
  entry; discovery probes nothing. `{#TARGET}` is the same string as `target` in `json`.
- `json`: one document, `{"state", "exit_code", "text", "counts", "elapsed", "peers": [...]}`
  with one object per peer; times in seconds (null when not measured).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from echoprobe.fleet.targets import InvalidTarget, Target, TargetItem
from echoprobe.monitoring.plugin.fleet import FleetVerdict
from echoprobe.monitoring.plugin.perfdata import PerfValue, render_perfdata
from echoprobe.monitoring.plugin.single import PHASE_METRICS, PeerVerdict
from echoprobe.monitoring.plugin.states import State

FORMATS = ("nagios", "checkmk", "zabbix-lld", "json")
PREFIX = "DICOM"


def _plain(text: str) -> str:
    return text.replace("|", "/")


def status_line(state: State, text: str) -> str:
    """`DICOM STATE - text`, without performance data."""
    return f"{PREFIX} {state} - {_plain(text)}"


def nagios(
    state: State, text: str, perfdata: Sequence[PerfValue], details: Iterable[str] = ()
) -> str:
    """The plugin output: status line with performance data, then the long output."""
    first = status_line(state, text)
    if perfdata:
        first = f"{first} | {render_perfdata(perfdata)}"
    return "\n".join([first, *(_plain(line) for line in details)]) + "\n"


def nagios_peer(verdict: PeerVerdict) -> str:
    return nagios(verdict.state, verdict.text, verdict.perfdata, verdict.details)


def nagios_fleet(verdict: FleetVerdict) -> str:
    return nagios(verdict.state, verdict.text, verdict.perfdata, verdict.details)


# --- Checkmk local checks --------------------------------------------------------------------


def _checkmk_number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _checkmk_metric(value: PerfValue) -> str | None:
    if value.value is None:
        return None
    warn = value.warning.upper_bound if value.warning is not None else None
    crit = value.critical.upper_bound if value.critical is not None else None
    fields = [
        _checkmk_number(value.value),
        "" if warn is None else _checkmk_number(warn),
        "" if crit is None else _checkmk_number(crit),
        "" if value.minimum is None else _checkmk_number(value.minimum),
        "" if value.maximum is None else _checkmk_number(value.maximum),
    ]
    while fields and fields[-1] == "":
        fields.pop()
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in value.label)
    return f"{name}={';'.join(fields)}"


def checkmk_line(verdict: PeerVerdict, service_prefix: str = "DICOM ") -> str:
    """One local-check line for one peer."""
    service = f"{service_prefix}{verdict.label}".replace('"', "'")
    metrics = [m for m in (_checkmk_metric(v) for v in verdict.perfdata) if m is not None]
    text = "\\n".join([verdict.text, *verdict.details]).replace("\n", " ")
    return f'{int(verdict.state)} "{service}" {"|".join(metrics) or "-"} {text}'


def checkmk(verdicts: Iterable[PeerVerdict], service_prefix: str = "DICOM ") -> str:
    lines = [checkmk_line(v, service_prefix) for v in verdicts]
    return "".join(f"{line}\n" for line in lines)


# --- Zabbix ----------------------------------------------------------------------------------


def zabbix_lld(items: Iterable[TargetItem], called_ae: str) -> tuple[str, list[InvalidTarget]]:
    """The discovery document for the valid entries, and the invalid ones (for a warning).
    Entries that are the same target are listed once."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    invalid: list[InvalidTarget] = []
    for item in items:
        if not isinstance(item, Target):
            invalid.append(item)
            continue
        label = item.label(called_ae)
        if label in seen:
            continue
        seen.add(label)
        rows.append(
            {
                "{#TARGET}": label,
                "{#NAME}": item.name or label,
                "{#HOST}": item.host,
                "{#PORT}": str(item.port),
                "{#CALLED_AE}": item.called_ae or called_ae,
                "{#TAGS}": ",".join(item.tags),
            }
        )
    return json.dumps({"data": rows}, indent=None, ensure_ascii=False) + "\n", invalid


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000.0, 6)


def peer_object(verdict: PeerVerdict) -> dict[str, Any]:
    """One peer in the `json` format."""
    result = verdict.result
    timings = result.timings_ms
    peer = result.peer
    return {
        "target": result.target,
        "name": result.name,
        "host": result.host,
        "port": result.port,
        "called_ae": result.called_ae,
        "calling_ae": result.calling_ae,
        "state": str(verdict.state),
        "state_code": int(verdict.state),
        "outcome": result.outcome.value,
        "text": verdict.text,
        "details": list(verdict.details),
        "time": _seconds(timings.get("total")),
        **{name: _seconds(timings.get(name)) for name in PHASE_METRICS},
        "echoes": result.echoes,
        "status": result.status,
        "error": result.error,
        "implementation_class_uid": None if peer is None else peer.implementation_class_uid,
        "implementation_version_name": None if peer is None else peer.implementation_version_name,
        "tls_protocol": None if peer is None else peer.tls_protocol,
        "tags": list(result.tags),
    }


def single_counts(state: State) -> dict[str, int]:
    """The `counts` of a one-peer check, with the keys of a fleet's."""
    states = (State.OK, State.WARNING, State.CRITICAL, State.UNKNOWN)
    return {
        "peers": 1,
        **{s.name.lower(): int(state is s) for s in states},
        "failing": int(state is not State.OK),
    }


def json_document(
    state: State,
    text: str,
    peers: Sequence[PeerVerdict],
    counts: dict[str, int],
    elapsed_s: float,
) -> str:
    document = {
        "state": str(state),
        "exit_code": int(state),
        "text": text,
        "counts": counts,
        "elapsed": round(elapsed_s, 6),
        "peers": [peer_object(v) for v in peers],
    }
    return json.dumps(document, ensure_ascii=False) + "\n"


def json_fleet(verdict: FleetVerdict) -> str:
    return json_document(
        verdict.state, verdict.text, verdict.peers, verdict.counts, verdict.elapsed_s
    )
