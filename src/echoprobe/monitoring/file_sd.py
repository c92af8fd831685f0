"""Sweep inventory → Prometheus `file_sd` target groups for the exporter.

Rules:
- Pure: targets in, groups and problems out; no file, clock or network I/O here (the command
  `echoprobe inventory file-sd` reads the inventory and writes the file).
- A group is `{"targets": ["CALLED_AE@host:port", ...], "labels": {...}}`, the shape Prometheus's
  file-based service discovery reads. Every target is written in full (`host:port`, the
  called AE title when the row has one, IPv6 literals in brackets) so that the exporter's
  `/probe?target=` parses it back to the same peer.
- Labels: `name` (the row's name, when it has one), `tags` (the row's tags joined by `,`, when it
  has any) and `__param_module` (the exporter module: `tls_module` for rows with `tls`).
  A tag `KEY=VALUE` also becomes a label `KEY="VALUE"`, its name made valid for Prometheus the
  way Prometheus's own discoveries do it (other characters become `_`); a key that cannot be a
  label name of ours (reserved `__` prefix, one of the fixed labels, `job`, `instance`) makes
  the row invalid.
- `group_by="tag"` puts targets whose labels are all equal in one group (so a fleet without
  names is a handful of groups, one per tag set and module); `group_by="none"` writes one
  group per target. Neither loses a label.
- A row's own calling AE title and timeouts cannot travel through `file_sd`: in the exporter
  they are module settings. Such rows are still written, and listed in `ignored_settings`.
- A target listed twice with the same module is written once (the first row wins) and listed in
  `duplicates`; an invalid row is listed in `invalid` with its file:line and reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from echoprobe.fleet.targets import InvalidTarget, Target, TargetItem

GroupBy = Literal["tag", "none"]
GROUP_BY: Final = ("tag", "none")
DEFAULT_MODULE: Final = "dicom_echo"
DEFAULT_TLS_MODULE: Final = "dicom_tls"

# Prometheus data model: label names match [a-zA-Z_][a-zA-Z0-9_]*; `__` is reserved.
_LABEL_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NOT_LABEL_CHAR: Final = re.compile(r"[^A-Za-z0-9_]")
_MODULE_LABEL: Final = "__param_module"
RESERVED_LABELS: Final = frozenset({"name", "tags", "job", "instance", "target", "module"})

Labels = tuple[tuple[str, str], ...]  # (name, value) pairs in a fixed order: hashable


@dataclass(frozen=True, slots=True)
class FileSDOptions:
    module: str = DEFAULT_MODULE
    tls_module: str = DEFAULT_TLS_MODULE
    group_by: GroupBy = "tag"

    def __post_init__(self) -> None:
        if self.group_by not in GROUP_BY:
            raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)}")
        for what, module in (("module", self.module), ("tls_module", self.tls_module)):
            if not module or any(c.isspace() for c in module):
                raise ValueError(f"{what} must be a non-empty name without white space")


@dataclass(frozen=True, slots=True)
class TargetGroup:
    targets: tuple[str, ...]
    labels: Labels

    def as_json(self) -> dict[str, object]:
        return {"targets": list(self.targets), "labels": dict(self.labels)}


@dataclass(frozen=True, slots=True)
class Duplicate:
    target: str
    module: str
    source: str | None
    first_source: str | None


@dataclass(frozen=True, slots=True)
class FileSD:
    """What an inventory became: the groups, and what could not be written as it was."""

    groups: tuple[TargetGroup, ...]
    invalid: tuple[InvalidTarget, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    ignored_settings: tuple[str, ...] = ()  # sources of rows whose calling AE/timeouts are moot

    @property
    def target_count(self) -> int:
        return sum(len(group.targets) for group in self.groups)

    def as_json(self) -> list[dict[str, object]]:
        return [group.as_json() for group in self.groups]


def sanitize_label_name(key: str) -> str:
    """A tag key as a Prometheus label name: other characters → `_`, no leading digit."""
    name = _NOT_LABEL_CHAR.sub("_", key.strip())
    if name[:1].isdigit():
        name = "_" + name
    return name


def is_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name))


def target_address(target: Target) -> str:
    """The `/probe?target=` value: `CALLED_AE@host:port`, or `host:port` without an AE."""
    return f"{target.called_ae}@{target.address}" if target.called_ae else target.address


def target_labels(target: Target, options: FileSDOptions) -> Labels:
    """The labels of one target's group; raises ValueError for an unusable `KEY=VALUE` tag."""
    labels: dict[str, str] = {}
    if target.name:
        labels["name"] = target.name
    if target.tags:
        labels["tags"] = ",".join(target.tags)
    for tag in target.tags:
        key, sep, value = tag.partition("=")
        if not sep:
            continue
        name = sanitize_label_name(key)
        if not name or not is_label_name(name):
            raise ValueError(f"tag {tag!r}: {key!r} cannot be a label name")
        if name.startswith("__") or name in RESERVED_LABELS:
            raise ValueError(f"tag {tag!r}: the label name {name!r} is reserved")
        if name in labels and labels[name] != value.strip():
            raise ValueError(f"tag {tag!r}: label {name!r} is given twice")
        labels[name] = value.strip()
    labels[_MODULE_LABEL] = options.tls_module if target.tls else options.module
    return tuple(labels.items())


def _has_row_settings(target: Target) -> bool:
    return target.calling_ae is not None or bool(target.timeouts)


def build_file_sd(items: Iterable[TargetItem], options: FileSDOptions | None = None) -> FileSD:
    """Group an inventory's targets for `file_sd`; order follows the inventory."""
    options = options or FileSDOptions()
    invalid: list[InvalidTarget] = []
    duplicates: list[Duplicate] = []
    ignored: list[str] = []
    seen: dict[tuple[str, str], str | None] = {}  # (target, module) → source of its first row
    groups: dict[Labels, list[str]] = {}
    singles: list[TargetGroup] = []
    for item in items:
        if isinstance(item, InvalidTarget):
            invalid.append(item)
            continue
        try:
            labels = target_labels(item, options)
        except ValueError as exc:
            invalid.append(InvalidTarget(item.spec or item.address, str(exc), item.source))
            continue
        address = target_address(item)
        module = dict(labels)[_MODULE_LABEL]
        key = (_dedup_key(address), module)
        if key in seen:
            duplicates.append(Duplicate(address, module, item.source, seen[key]))
            continue
        seen[key] = item.source
        if _has_row_settings(item):
            ignored.append(item.source or address)
        if options.group_by == "none":
            singles.append(TargetGroup((address,), labels))
        else:
            groups.setdefault(labels, []).append(address)
    built = (
        tuple(singles)
        if options.group_by == "none"
        else tuple(TargetGroup(tuple(addresses), labels) for labels, addresses in groups.items())
    )
    return FileSD(built, tuple(invalid), tuple(duplicates), tuple(ignored))


def _dedup_key(address: str) -> str:
    # Host names are case-insensitive (and a trailing dot changes nothing); AE titles are not.
    ae, at, rest = address.rpartition("@")
    host, colon, port = rest.rpartition(":")
    return f"{ae}{at}{host.lower().rstrip('.')}{colon}{port}"


__all__ = [
    "DEFAULT_MODULE",
    "DEFAULT_TLS_MODULE",
    "GROUP_BY",
    "Duplicate",
    "FileSD",
    "FileSDOptions",
    "GroupBy",
    "TargetGroup",
    "build_file_sd",
    "is_label_name",
    "sanitize_label_name",
    "target_address",
    "target_labels",
]
