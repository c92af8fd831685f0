"""YAML read with line numbers, for configuration files whose every error names `file:line`.

Rules: the document is composed (`yaml.compose`, the safe loader), never constructed whole, so
an alias bomb is not expanded; callers walk the nodes by their own schema through `Node`, whose
accessors raise `ConfigError` naming the node's line. A file larger than `MAX_BYTES` is refused
before it is parsed. Duplicate mapping keys are errors (YAML says they are; PyYAML keeps the last).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Final

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from echoprobe.errors import EchoprobeError

MAX_BYTES: Final = 1 << 20  # a configuration file, not a data set

# Go's time.ParseDuration units (and Prometheus' "d"): "500ms", "5s", "1m30s", "1.5h".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


class ConfigError(EchoprobeError, ValueError):
    """A configuration file is unusable; `problems` are its `file:line: message` lines."""

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def parse_duration(text: str) -> float:
    """Seconds of a Go-style duration ("0", "500ms", "1m30s"); ValueError when malformed."""
    text = text.strip()
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text) or not math.isfinite(total):
        raise ValueError(f"invalid duration {text!r} (use e.g. 500ms, 5s, 1m30s)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of `seconds` ("5s", "1m30s", "500ms")."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return out + (f"{rest:g}s" if rest or not out else "")


class Node:
    """A YAML node and the file it came from; every accessor checks the node's type."""

    __slots__ = ("file", "node")

    def __init__(self, node: yaml.Node, file: str) -> None:
        self.node = node
        self.file = file

    @property
    def where(self) -> str:
        return f"{self.file}:{self.node.start_mark.line + 1}"

    def error(self, message: str) -> ConfigError:
        return ConfigError([f"{self.where}: {message}"])

    def is_null(self) -> bool:
        return isinstance(self.node, ScalarNode) and self.node.tag == "tag:yaml.org,2002:null"

    def mapping(self, what: str) -> dict[str, tuple[Node, Node]]:
        """key text → (key node, value node); an empty document or `null` is an empty mapping."""
        if self.is_null():
            return {}
        if not isinstance(self.node, MappingNode):
            raise self.error(f"{what} must be a mapping")
        items: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in self.node.value:
            key = Node(key_node, self.file)
            if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise key.error(f"keys of {what} must be strings")
            if key_node.value in items:
                raise key.error(f"duplicate key {key_node.value!r} in {what}")
            items[key_node.value] = (key, Node(value_node, self.file))
        return items

    def sequence(self, what: str) -> list[Node]:
        if not isinstance(self.node, SequenceNode):
            raise self.error(f"{what} must be a list")
        return [Node(item, self.file) for item in self.node.value]

    def _scalar(self, what: str) -> object:
        if not isinstance(self.node, ScalarNode):
            raise self.error(f"{what} must be a single value, not a list or mapping")
        try:
            return SafeConstructor().construct_object(self.node)
        except (ConstructorError, ValueError) as exc:
            raise self.error(f"{what}: {exc}") from exc

    def text(self, what: str) -> str:
        value = self._scalar(what)
        if not isinstance(value, str):
            raise self.error(f"{what} must be a string")
        return value

    def integer(self, what: str, low: int, high: int) -> int:
        value = self._scalar(what)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{what} must be an integer")
        if not low <= value <= high:
            raise self.error(f"{what} must be between {low} and {high}, not {value}")
        return value

    def boolean(self, what: str) -> bool:
        value = self._scalar(what)
        if not isinstance(value, bool):
            raise self.error(f"{what} must be true or false")
        return value

    def duration(self, what: str) -> float:
        value = self._scalar(what)
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            return 0.0
        if not isinstance(value, str):
            raise self.error(f"{what} must be a duration with a unit, e.g. 5s or 500ms")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(f"{what}: {exc}") from exc


def load_document(path: str | Path) -> Node:
    """The root node of the YAML file at `path`; `ConfigError` when unreadable or not YAML."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from exc
    if len(data) > MAX_BYTES:
        raise ConfigError([f"{name}: larger than {MAX_BYTES} bytes"])
    return parse_document(data, name)


def parse_document(data: bytes | str, name: str) -> Node:
    try:
        root = yaml.compose(data, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{name}{line}: invalid YAML: {exc.problem or exc}"]) from exc
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{name}: invalid YAML: {exc}"]) from exc
    if root is None:
        root = ScalarNode("tag:yaml.org,2002:null", "")
        root.start_mark = yaml.Mark(name, 0, 0, 0, "", 0)
    return Node(root, name)
