"""CSV output: a header row, then one row per record as it arrives (flushed, fsynced at close).

Columns (`COLUMNS`, a public contract like the JSON Lines keys): the target and its AE titles,
`outcome`, `status` (integer, as in JSON), `phase`, `error`, `detail` (JSON), one
`<phase>_ms` column per phase plus `total_ms`, `echoes`, the peer's address, implementation
class UID and version name, max PDU, transfer syntax, TLS facts, `name` and `tags` (`;`-joined).

Text a peer chose (error comments, version names) could start with `=`, `+`, `@`: such cells
are prefixed with `'` so that a spreadsheet shows them instead of running them as formulas.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

from echoprobe.report.jsonl import TIMING_KEYS, RecordWriter
from echoprobe.results import ProbeResult

_PEER = (
    "address",
    "implementation_class_uid",
    "implementation_version_name",
    "max_pdu",
    "transfer_syntax",
    "tls_protocol",
    "tls_cipher",
    "tls_peer_not_after",
)
COLUMNS: tuple[str, ...] = (
    "target",
    "name",
    "host",
    "port",
    "called_ae",
    "calling_ae",
    "outcome",
    "status",
    "phase",
    "error",
    "detail",
    *(f"{key}_ms" for key in TIMING_KEYS),
    "echoes",
    *(f"peer_{key}" if key == "address" else key for key in _PEER),
    "tags",
)
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _cell(value: object) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def record_row(result: ProbeResult) -> list[str | int | float]:
    """The CSV row of `result`, in `COLUMNS` order."""
    peer = result.peer
    values: list[object] = [
        result.target,
        result.name,
        result.host,
        result.port,
        result.called_ae,
        result.calling_ae,
        result.outcome.value,
        result.status,
        result.phase,
        result.error,
        json.dumps(result.detail, ensure_ascii=False, default=str) if result.detail else None,
        *(result.timings_ms.get(key) for key in TIMING_KEYS),
        result.echoes,
        *(None if peer is None else getattr(peer, key) for key in _PEER),
        ";".join(result.tags),
    ]
    return [_cell(v) for v in values]


class CsvWriter(RecordWriter):
    """`with CsvWriter("out.csv") as w: w.write(record)` (the header is written at once)."""

    def __init__(self, output: str | Path | IO[str] | None = None) -> None:
        super().__init__(output)
        self._csv = csv.writer(self.stream, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self.stream.flush()

    def write(self, result: ProbeResult) -> None:
        self._csv.writerow(record_row(result))
        self.stream.flush()
        self.count += 1


__all__ = ["COLUMNS", "CsvWriter", "record_row"]
