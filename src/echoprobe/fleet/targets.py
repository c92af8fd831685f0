"""Targets of a sweep: the `[CALLED_AE@]host[:port]` spec and inventory files.

Rules:
- A spec is `[CALLED_AE@]host[:port]`; IPv6 literals go in brackets when a port follows
  (`[::1]:11112`), a bare `::1` is a host on the default port 104 (PS3.8 §9.1, the registered
  DICOM port). The AE title is the text before the last `@` (host names cannot hold one).
- AE titles follow PS3.5 Table 6.2-1 (AE VR): at most 16 characters of the default repertoire,
  no backslash, no control characters, leading/trailing spaces not significant, not all spaces.
- Inventory files are read as streams, line by line, whatever their size (YAML is the exception:
  a YAML document is parsed whole). A line longer than `MAX_LINE` is cut off and reported.
- Nothing in a file can crash a sweep: a malformed line, row or entry becomes an
  `InvalidTarget` (which the sweep turns into an `invalid_target` record) carrying the file and
  line it came from. Only a file that cannot be read at all, or a CSV without a `host`/`target`
  column, raises `TargetFileError` (a usage error).
- Nothing here does network I/O: host names are checked for syntax, never resolved.

Formats (`load_targets(path, fmt="auto")`; "auto" goes by the extension, then by the first
non-blank line):
- plain lines (`.txt`, anything else): one spec per line; `#` starts a comment; blank lines skip.
- CSV (`.csv`): a header row naming columns among `host`, `port`, `called_ae`, `calling_ae`,
  `name`, `tags` (separated by `;` or `|`), `tls` (true/false/yes/no/1/0), `connect_timeout`,
  `acse_timeout`, `dimse_timeout`, `release_timeout`, `timeout` (seconds); a `target` column
  may hold a spec instead of `host`/`port`/`called_ae`. Unknown columns are ignored (logged once).
- JSON Lines (`.jsonl`, `.ndjson`): one object per line with the same keys (`tags` a list or a
  string), or a JSON string holding a spec.
- YAML (`.yaml`, `.yml`): a list, or a mapping with a `targets` list, whose entries are specs or
  mappings with the same keys.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import logging
import math
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, Final

from echoprobe._values import replace
from echoprobe.errors import EchoprobeError
from echoprobe.options import Timeouts

logger = logging.getLogger(__name__)

DEFAULT_PORT: Final = 104  # PS3.8 §9.1: the registered DICOM upper layer port
MAX_LINE: Final = 64 * 1024  # longer lines are reported, not parsed
_SHOWN: Final = 200  # characters of an invalid line kept in its record
FORMATS: Final = ("auto", "lines", "csv", "jsonl", "yaml")

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"", "0", "false", "no", "n", "off"})
_TIMEOUT_KEYS: Final = {
    "connect_timeout": "connect",
    "acse_timeout": "acse",
    "dimse_timeout": "dimse",
    "release_timeout": "release",
    "timeout": "total",
}
_REPR = reprlib.Repr()
_REPR.maxstring = _SHOWN
_REPR.maxother = _SHOWN
KNOWN_KEYS: Final = frozenset(
    {"target", "host", "port", "called_ae", "calling_ae", "name", "tags", "tls", *_TIMEOUT_KEYS}
)


class TargetSyntaxError(EchoprobeError, ValueError):
    """A target spec or inventory entry is malformed (becomes an `invalid_target` record)."""


class TargetFileError(EchoprobeError, OSError):
    """An inventory file cannot be read at all (a usage error, not a record)."""


@dataclass(frozen=True, slots=True)
class TimeoutOverrides:
    """Per-target timeouts (seconds) that replace the sweep's own; None keeps the sweep's."""

    connect: float | None = None
    acse: float | None = None
    dimse: float | None = None
    release: float | None = None
    total: float | None = None

    def apply(self, base: Timeouts) -> Timeouts:
        if (
            self.connect is None
            and self.acse is None
            and self.dimse is None
            and self.release is None
            and self.total is None
        ):
            return base  # the common case, once per target: no dataclasses.fields() walk
        changes = {f.name: getattr(self, f.name) for f in fields(self)}
        present = {k: v for k, v in changes.items() if v is not None}
        return replace(base, **present) if present else base

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


@dataclass(frozen=True, slots=True)
class Target:
    """One peer to verify. `None` AE titles mean "the sweep's default"."""

    host: str  # a name or an IP literal, without brackets
    port: int = DEFAULT_PORT
    called_ae: str | None = None
    calling_ae: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()
    tls: bool = False
    timeouts: TimeoutOverrides = TimeoutOverrides()
    spec: str | None = None  # as the user wrote it, when it was a spec
    source: str | None = None  # "inventory.csv:12", for messages

    @property
    def address(self) -> str:
        """`host:port`, IPv6 literals in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def label(self, called_ae: str | None = None) -> str:
        """The `target` string of this target's record: its spec, or `AE@host:port`."""
        if self.spec:
            return self.spec
        ae = self.called_ae or called_ae
        return f"{ae}@{self.address}" if ae else self.address

    def key(
        self, called_ae: str, calling_ae: str
    ) -> tuple[str, int, str, str, bool, TimeoutOverrides]:
        """Two targets with the same key are duplicates (probed and reported once)."""
        return (
            self.host.lower().rstrip("."),
            self.port,
            self.called_ae or called_ae,
            self.calling_ae or calling_ae,
            self.tls,
            self.timeouts,
        )


@dataclass(frozen=True, slots=True)
class InvalidTarget:
    """An input that is not a usable target: its text, why, and where it came from."""

    text: str
    reason: str
    source: str | None = None


TargetItem = Target | InvalidTarget


# --- single values ----------------------------------------------------------------------------


def check_ae_title(value: str, what: str = "AE title") -> str:
    """A valid AE title with insignificant spaces removed (PS3.5 Table 6.2-1, AE VR)."""
    title = value.strip(" ")
    if not title:
        raise TargetSyntaxError(f"empty {what}")
    if len(title) > 16:
        raise TargetSyntaxError(f"{what} {title!r} is longer than 16 characters")
    if any(c == "\\" or not " " <= c <= "~" for c in title):
        raise TargetSyntaxError(f"{what} {title!r} has a character outside the AE repertoire")
    return title


def check_host(value: str) -> str:
    """An IP literal (brackets removed) or a syntactically valid host name."""
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            if ipaddress.ip_address(host).version != 6:
                raise TargetSyntaxError(f"only IPv6 literals go in brackets: {value!r}")
        except ValueError as exc:
            raise TargetSyntaxError(f"invalid IPv6 literal {value!r}") from exc
        return host
    if not host:
        raise TargetSyntaxError("empty host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise TargetSyntaxError(f"invalid host name {value!r}")
    if name.replace(".", "").isdigit():
        raise TargetSyntaxError(f"invalid IPv4 address {value!r}")
    return host


def check_port(value: object) -> int:
    if isinstance(value, bool):
        raise TargetSyntaxError(f"invalid port {value!r}")
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 5:
        port = int(value.strip())
    else:
        raise TargetSyntaxError(f"invalid port {value!r}")
    if not 1 <= port <= 65535:
        raise TargetSyntaxError(f"port {port} is outside 1..65535")
    return port


def _check_timeout(key: str, value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise TargetSyntaxError(f"{key} must be a number of seconds, not {value!r}")
    try:
        seconds = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise TargetSyntaxError(f"{key} must be a positive number of seconds, not {value!r}")
    return seconds


def _check_tls(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TargetSyntaxError(f"tls must be true or false, not {value!r}")


def _check_tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts: Iterable[object] = re.split(r"[;|]", value)
    elif isinstance(value, list | tuple):
        parts = value
    else:
        raise TargetSyntaxError(f"tags must be a list or a string, not {value!r}")
    tags = []
    for part in parts:
        if not isinstance(part, str | int | float) or isinstance(part, bool):
            raise TargetSyntaxError(f"a tag must be a string, not {part!r}")
        text = str(part).strip()
        if text:
            tags.append(text)
    return tuple(tags)


def _text(key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise TargetSyntaxError(f"{key} must be a string, not {value!r}")
    text = str(value).strip()
    return text or None


# --- specs and entries ------------------------------------------------------------------------


def parse_target(spec: str, *, source: str | None = None) -> Target:
    """`[CALLED_AE@]host[:port]` → `Target`; raises `TargetSyntaxError`.

    `parse_target("PACS@[::1]:11112")` is host "::1", port 11112, called AE "PACS".
    """
    text = spec.strip()
    if not text:
        raise TargetSyntaxError("empty target")
    if any(c.isspace() for c in text):
        raise TargetSyntaxError(f"a target cannot contain white space: {text!r}")
    ae_part, at, rest = text.rpartition("@")
    called_ae = check_ae_title(ae_part, "called AE title") if at else None
    port = DEFAULT_PORT
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise TargetSyntaxError(f"unclosed '[' in {text!r}")
        host = check_host(rest[: close + 1])
        tail = rest[close + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise TargetSyntaxError(f"unexpected {tail!r} after the address in {text!r}")
            port = check_port(tail[1:])
    elif rest.count(":") > 1:  # a bare IPv6 literal: no port possible
        host = check_host(rest)
    else:
        name, colon, port_text = rest.partition(":")
        host = check_host(name)
        if colon:
            port = check_port(port_text)
    return Target(host=host, port=port, called_ae=called_ae, spec=text, source=source)


def target_from_mapping(entry: Mapping[str, object], *, source: str | None = None) -> Target:
    """An inventory entry (CSV row, JSON object, YAML mapping) → `Target`.

    Keys are those of `KNOWN_KEYS`; unknown keys are ignored (the caller warns)."""
    spec = _text("target", entry.get("target"))
    host_value = entry.get("host")
    host_text = None if host_value is None else str(host_value).strip()
    if spec and host_text:
        raise TargetSyntaxError("give either 'target' or 'host', not both")
    if spec:
        target = parse_target(spec, source=source)
        if entry.get("port") not in (None, ""):
            raise TargetSyntaxError("'port' cannot be combined with 'target'")
    elif host_text:
        port_value = entry.get("port")
        port = DEFAULT_PORT if port_value in (None, "") else check_port(port_value)
        target = Target(host=check_host(host_text), port=port, source=source)
    else:
        raise TargetSyntaxError("no 'host' (or 'target') given")
    called = _text("called_ae", entry.get("called_ae"))
    if called is not None:
        if spec and target.called_ae is not None:
            raise TargetSyntaxError("the called AE title is given twice")
        target = replace(target, called_ae=check_ae_title(called, "called AE title"))
    calling = _text("calling_ae", entry.get("calling_ae"))
    overrides = {
        field_name: _check_timeout(key, entry.get(key)) for key, field_name in _TIMEOUT_KEYS.items()
    }
    return replace(
        target,
        calling_ae=None if calling is None else check_ae_title(calling, "calling AE title"),
        name=_text("name", entry.get("name")),
        tags=_check_tags(entry.get("tags")),
        tls=_check_tls(entry.get("tls")),
        timeouts=TimeoutOverrides(**overrides),
    )


def coerce_target(item: object, *, source: str | None = None) -> TargetItem:
    """Anything a caller may pass to `sweep()` → a `Target` or an `InvalidTarget`; never raises."""
    if isinstance(item, Target | InvalidTarget):
        return item
    try:
        if isinstance(item, str):
            return parse_target(item, source=source)
        if isinstance(item, Mapping):
            return target_from_mapping(item, source=source)
    except TargetSyntaxError as exc:
        return InvalidTarget(_shown(item), str(exc), source)
    return InvalidTarget(_shown(item), f"not a target: {type(item).__name__}", source)


def _shown(item: object) -> str:
    # reprlib, not json.dumps: a YAML alias bomb must not be expanded to be shown
    text = item if isinstance(item, str) else _REPR.repr(item)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


# --- streams of lines -------------------------------------------------------------------------


def bounded_lines(stream: IO[str], limit: int = MAX_LINE) -> Iterator[str | None]:
    """The stream's lines; a line longer than `limit` is skipped whole and yields None."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            while True:  # drop the rest of the over-long line, a bounded chunk at a time
                more = stream.readline(limit)
                if not more or more.endswith("\n"):
                    break
            yield None
            continue
        yield line


def _too_long(source: str) -> InvalidTarget:
    return InvalidTarget("", f"line longer than {MAX_LINE} characters", source)


def iter_lines_targets(lines: Iterable[str | None], name: str = "<lines>") -> Iterator[TargetItem]:
    """Plain lines of specs; `#` starts a comment."""
    for number, line in enumerate(lines, 1):
        source = f"{name}:{number}"
        if line is None:
            yield _too_long(source)
            continue
        text = line.split("#", 1)[0].strip()
        if text:
            yield coerce_target(text, source=source)


def iter_jsonl_targets(lines: Iterable[str | None], name: str = "<jsonl>") -> Iterator[TargetItem]:
    """JSON Lines: an object (or a spec string) per line; blank lines and `#` lines skip."""
    warned: set[str] = set()
    for number, line in enumerate(lines, 1):
        source = f"{name}:{number}"
        if line is None:
            yield _too_long(source)
            continue
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            yield InvalidTarget(_shown(text), f"invalid JSON: {exc}", source)
            continue
        if isinstance(value, dict):
            _warn_unknown(value, warned, name)
        yield coerce_target(value, source=source)


def iter_csv_targets(lines: Iterable[str | None], name: str = "<csv>") -> Iterator[TargetItem]:
    """CSV with a header row (see the module's rules). The header is read before this returns:
    `TargetFileError` when it has neither `host` nor `target`; every later problem is an
    `InvalidTarget` with its file and line.

    Each line is one row, parsed on its own (strictly): an inventory has no field spanning
    lines, so an unterminated quote is that row's error and the rows after it are read."""
    numbered = enumerate(lines, 1)
    header: list[str] | None = None
    for line_no, line in numbered:
        if line is None:
            raise TargetFileError(f"{name}:{line_no}: the CSV header line is too long")
        row = _csv_row(line)
        if isinstance(row, str):
            raise TargetFileError(f"{name}:{line_no}: unreadable CSV header: {row}")
        if row and any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#"):
            header = [cell.strip().lower() for cell in row]
            break
    if header is None:
        return iter(())
    if "host" not in header and "target" not in header:
        raise TargetFileError(f"{name}: the CSV header needs a 'host' or 'target' column")
    unknown = [h for h in header if h and h not in KNOWN_KEYS]
    if unknown:
        logger.warning("%s: ignoring unknown CSV column(s): %s", name, ", ".join(unknown))
    return _csv_rows(numbered, header, name)


def _csv_row(line: str) -> list[str] | str:
    """One line's cells, or what is wrong with it."""
    try:
        return next(csv.reader([line.rstrip("\r\n")], strict=True), [])
    except csv.Error as exc:
        return f"invalid CSV row: {exc}"


def _csv_rows(
    numbered: Iterator[tuple[int, str | None]], header: list[str], name: str
) -> Iterator[TargetItem]:
    for line_no, line in numbered:
        source = f"{name}:{line_no}"
        if line is None:
            yield _too_long(source)
            continue
        text = line.strip()
        row = _csv_row(line)
        if isinstance(row, str):
            yield InvalidTarget(_shown(text), row, source)
            continue
        if not row or not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(header):
            yield InvalidTarget(
                _shown(text), f"{len(row)} fields for a header of {len(header)} columns", source
            )
            continue
        entry = {key: cell for key, cell in zip(header, row, strict=False) if key}
        if not _usable(entry):
            yield InvalidTarget(_shown(text), "no 'host' (or 'target') given", source)
            continue
        item = coerce_target(entry, source=source)
        # Shown as the row the user wrote, not as the mapping it was read into.
        yield replace(item, text=_shown(text)) if isinstance(item, InvalidTarget) else item


def _usable(entry: Mapping[str, str]) -> bool:
    return bool(entry.get("host", "").strip() or entry.get("target", "").strip())


def iter_yaml_targets(text: str, name: str = "<yaml>") -> Iterator[TargetItem]:
    """A YAML list of specs or mappings (or a mapping with a `targets` list). The document is
    parsed before this returns: `TargetFileError` when it is not YAML or not such a list."""
    import yaml  # noqa: PLC0415 - only YAML inventories pay for it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TargetFileError(f"{name}: invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise TargetFileError(f"{name}: YAML nested too deeply") from exc
    if document is None:
        return iter(())
    if isinstance(document, dict) and "targets" in document:
        document = document["targets"]
    if not isinstance(document, list):
        raise TargetFileError(f"{name}: expected a list of targets (or a 'targets:' list)")
    return _yaml_entries(document, name)


def _yaml_entries(document: list[Any], name: str) -> Iterator[TargetItem]:
    warned: set[str] = set()
    for number, entry in enumerate(document, 1):
        source = f"{name}[{number}]"
        if isinstance(entry, dict):
            if not all(isinstance(k, str) for k in entry):
                yield InvalidTarget(_shown(entry), "keys must be strings", source)
                continue
            _warn_unknown(entry, warned, name)
        numeric = isinstance(entry, int | float) and not isinstance(entry, bool)
        yield coerce_target(str(entry) if numeric else entry, source=source)


def _warn_unknown(entry: Mapping[str, object], warned: set[str], name: str) -> None:
    for key in entry:
        if key not in KNOWN_KEYS and key not in warned:
            warned.add(key)
            logger.warning("%s: ignoring unknown key %r", name, key)


# --- files ------------------------------------------------------------------------------------


def detect_format(path: str | Path, first_line: str | None) -> str:
    """The format ("lines", "csv", "jsonl", "yaml"): by extension, else by the first line."""
    suffix = Path(str(path)).suffix.lower()
    by_suffix = {
        ".csv": "csv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
        ".yaml": "yaml",
        ".yml": "yaml",
        ".txt": "lines",
        ".list": "lines",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    line = (first_line or "").strip()
    if line.startswith(("{", '"')):
        return "jsonl"
    if line.startswith(("- ", "---", "targets:")):
        return "yaml"
    cells = [c.strip().lower() for c in line.split(",")]
    if len(cells) > 1 and ("host" in cells or "target" in cells):
        return "csv"
    return "lines"


def load_targets(
    path: str | Path, fmt: str = "auto", *, stream: IO[str] | None = None
) -> Iterator[TargetItem]:
    """Open an inventory and return a lazy stream of its targets.

    The file is opened (and a CSV header or a YAML document checked) before this returns, so
    `TargetFileError` comes at once; the rest is read as the sweep consumes it. `path` "-" (with
    `stream`, e.g. `sys.stdin`) reads an already open text stream."""
    if fmt not in FORMATS:
        raise TargetFileError(f"unknown target file format {fmt!r} (one of {', '.join(FORMATS)})")
    name = str(path)
    handle: IO[str]
    if stream is not None:
        handle = stream
    else:
        try:
            handle = open(path, encoding="utf-8-sig", errors="replace", newline="")  # noqa: SIM115
        except OSError as exc:
            raise TargetFileError(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        lines = bounded_lines(handle)
        first: str | None = None
        buffered: list[str | None] = []
        if fmt == "auto":
            for line in lines:
                buffered.append(line)
                if line is not None and line.strip():
                    first = line
                    break
            fmt = detect_format(path, first)
        all_lines = _chain(buffered, lines)
        if fmt == "yaml":
            text = "".join(line for line in all_lines if line is not None)
            items: Iterator[TargetItem] = iter_yaml_targets(text, name)
        elif fmt == "csv":
            items = iter_csv_targets(all_lines, name)
        elif fmt == "jsonl":
            items = iter_jsonl_targets(all_lines, name)
        else:
            items = iter_lines_targets(all_lines, name)
    except (OSError, UnicodeError) as exc:
        if stream is None:
            handle.close()
        if isinstance(exc, TargetFileError):
            raise
        raise TargetFileError(f"cannot read {name}: {exc}") from exc
    except BaseException:
        if stream is None:
            handle.close()
        raise
    return _closing(items, handle if stream is None else None, name)


def _chain(first: Iterable[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


def _closing(
    items: Iterator[TargetItem], handle: IO[str] | None, name: str
) -> Iterator[TargetItem]:
    try:
        yield from items
    except OSError as exc:  # the file went away mid-read: report it, don't crash
        yield InvalidTarget("", f"reading stopped: {exc}", name)
    finally:
        if handle is not None:
            handle.close()


def count_targets_hint(path: str | Path) -> int | None:
    """The number of targets in a file, counted cheaply for progress and ETA: its lines that
    are neither blank nor `#` comments, less a CSV header; None for YAML (entries are not
    lines) or an unreadable file. Exact for well-formed files."""
    count = 0
    first: bytes | None = None
    try:
        with open(path, "rb") as f:
            for line in f:
                text = line.strip()
                if text and not text.startswith(b"#"):
                    count += 1
                    if first is None:
                        first = text[:MAX_LINE]
    except OSError:
        return None
    fmt = detect_format(path, None if first is None else first.decode("utf-8", "replace"))
    if fmt == "yaml":
        return None
    if fmt == "csv" and count:
        count -= 1  # the header row
    return count


__all__ = [
    "DEFAULT_PORT",
    "FORMATS",
    "InvalidTarget",
    "Target",
    "TargetFileError",
    "TargetItem",
    "TargetSyntaxError",
    "TimeoutOverrides",
    "check_ae_title",
    "check_host",
    "check_port",
    "coerce_target",
    "count_targets_hint",
    "detect_format",
    "iter_csv_targets",
    "iter_jsonl_targets",
    "iter_lines_targets",
    "iter_yaml_targets",
    "load_targets",
    "parse_target",
]
