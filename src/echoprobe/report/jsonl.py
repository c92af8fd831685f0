"""JSON Lines output: one record per line, written as it arrives.

Rules:
- One line per `ProbeResult`, keys as `ProbeResult.to_dict()` (a public contract), with
  `timings_ms` always holding every phase (`resolve`, `connect`, `tls`, `associate`, `echo`,
  `release`, `total`; null when the phase was not reached), so consumers get a fixed schema.
- Each line is flushed when written (a crash or Ctrl-C loses nothing already written); `close()`
  fsyncs a regular file. A line is written whole or not at all from our side: one `write()`.
- `-` (or None) means standard output, which is flushed but never closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from echoprobe.results import PHASES, ProbeResult

TIMING_KEYS = (*PHASES, "total")


def record_dict(result: ProbeResult) -> dict[str, Any]:
    """The JSON Lines record of `result`, with every timing key present."""
    data = result.to_dict()
    timings = data["timings_ms"]
    fixed: dict[str, Any] = {key: timings.get(key) for key in TIMING_KEYS}
    fixed.update((k, v) for k, v in timings.items() if k not in fixed)
    data["timings_ms"] = fixed
    return data


def record_json(result: ProbeResult) -> str:
    """One JSON Lines line (without its newline)."""
    return json.dumps(record_dict(result), ensure_ascii=False, separators=(",", ":"), default=str)


def open_output(path: str | Path | None) -> tuple[IO[str], bool]:
    """A text stream for `path` ("-"/None: stdout) and whether we own (must close) it."""
    if path is None or str(path) == "-":
        return sys.stdout, False
    return open(path, "w", encoding="utf-8", newline="\n"), True


def sync_to_disk(stream: IO[str]) -> None:
    """fsync a regular file (pipes, terminals and sockets are left alone)."""
    try:
        fd = stream.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)
    except (OSError, ValueError, AttributeError):  # closed, not a real file, or no fileno
        pass


class RecordWriter:
    """Base of the streaming writers: a text sink, flushed per record, fsynced at close."""

    def __init__(self, output: str | Path | IO[str] | None = None) -> None:
        if output is None or isinstance(output, str | Path):
            self.stream, self._owned = open_output(output)
        else:
            self.stream, self._owned = output, False
        self.count = 0
        self.closed = False

    def write(self, result: ProbeResult) -> None:
        raise NotImplementedError

    def _emit(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def flush(self) -> None:
        """Flush and fsync what was written (safe to call at any time, e.g. on a 2nd signal)."""
        if self.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
        sync_to_disk(self.stream)

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        if self._owned:
            self.stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class JsonlWriter(RecordWriter):
    """`with JsonlWriter("out.jsonl") as w: w.write(record)`."""

    def write(self, result: ProbeResult) -> None:
        self._emit(record_json(result) + "\n")
        self.count += 1


__all__ = [
    "TIMING_KEYS",
    "JsonlWriter",
    "RecordWriter",
    "open_output",
    "record_dict",
    "record_json",
    "sync_to_disk",
]
