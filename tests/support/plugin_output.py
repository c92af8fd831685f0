"""Parse monitoring-plugin output back, by the Monitoring Plugins Development Guidelines.

    DICOM OK - text | 'label'=value[UOM];[warn];[crit];[min];[max] ...
    long output line
    ...

Used by the plugin's unit and CLI tests: whatever the check prints must parse with this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
RANGE = rf"@?(?:~|{NUMBER})?(?::(?:{NUMBER})?)?"
PERF_ITEM = re.compile(
    rf"(?P<label>'[^'=]+'|[^'= ]+)=(?P<value>{NUMBER}|U)(?P<uom>s|ms|us|%|B|KB|MB|TB|c)?"
    rf"(?:;(?P<warn>{RANGE})?(?:;(?P<crit>{RANGE})?"
    rf"(?:;(?P<min>{NUMBER})?(?:;(?P<max>{NUMBER})?)?)?)?)?"
)
STATUS = re.compile(r"DICOM (?P<state>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|\n]+?)\s*")


@dataclass(frozen=True)
class PluginOutput:
    state: str
    text: str
    perfdata: dict[str, dict[str, str | None]]
    long_output: list[str]


def parse_perfdata(text: str) -> dict[str, dict[str, str | None]]:
    """Items by label; AssertionError when any part breaks the grammar."""
    items: dict[str, dict[str, str | None]] = {}
    position = 0
    while position < len(text):
        match = PERF_ITEM.match(text, position)
        assert match, f"not performance data at {text[position:]!r}"
        item = match.groupdict()
        label = str(item["label"]).strip("'")
        assert label not in items, f"label {label!r} twice"
        items[label] = item
        position = match.end()
        if position < len(text):
            assert text[position] == " ", f"items must be separated by one space: {text!r}"
            position += 1
    return items


def parse_output(stdout: str) -> PluginOutput:
    """The whole output; AssertionError when it is not a plugin's."""
    lines = stdout.splitlines()
    assert lines, "no output"
    first, bar, perf = lines[0].partition(" | ")
    match = STATUS.fullmatch(first)
    assert match, f"not a status line: {lines[0]!r}"
    for line in lines[1:]:
        assert "|" not in line, f"a '|' in the long output starts performance data: {line!r}"
    return PluginOutput(
        state=match["state"],
        text=match["text"],
        perfdata=parse_perfdata(perf) if bar else {},
        long_output=lines[1:],
    )
