"""log4cplus layouts as DCMTK uses them: PatternLayout (its parser, conversion characters,
padding and error messages) and SimpleLayout.

Rules of this module (DCMTK 3.6.8, oflog/libsrc/{patlay,layout}.cc):

* The pattern parser has log4cplus's states and messages; a bad pattern is reported as a
  ``loglog`` line and rendered as log4cplus renders it, never refused.
* "FormatEachLine" (on by default) formats each line of a message on its own.
* Conversions that need data we do not have (source locations, NDC/MDC) render empty, as
  `EMPTY_CONVERTERS` lists; costly ones (``%H``, ``%t``) import what they need when used.
* Builds on `dcmtk_levels` and `dcmtk_config`.
"""

from __future__ import annotations

import os
import time

from echoprobe.report.dcmtk_config import atoi, hostname
from echoprobe.report.dcmtk_levels import LEVEL_NAMES, STARTED

__all__ = ["EMPTY_CONVERTERS", "Converter", "Event", "Layout", "PatternLayout", "SimpleLayout"]


class Event:
    __slots__ = ("level", "logger", "message", "stamp")

    def __init__(self, level: int, logger: str, message: str, stamp: float) -> None:
        self.level = level
        self.logger = logger
        self.message = message
        self.stamp = stamp


class Converter:
    __slots__ = ("kind", "left", "max_len", "min_len", "option")

    def __init__(self, kind: str, min_len: int, max_len: int, left: bool, option: str) -> None:
        self.kind = kind
        self.min_len = min_len
        self.max_len = max_len
        self.left = left
        self.option = option

    def render(self, event: Event) -> str:
        text = _convert(self.kind, self.option, event)
        if len(text) > self.max_len:
            return text[len(text) - self.max_len :]  # log4cplus keeps the tail
        if len(text) < self.min_len:
            pad = " " * (self.min_len - len(text))
            return text + pad if self.left else pad + text
        return text


# Conversion characters that need data we do not have (source locations, NDC/MDC).
EMPTY_CONVERTERS = {"b": "", "F": "", "L": "", "l": ":", "M": "", "x": "", "X": ""}


def _convert(kind: str, option: str, event: Event) -> str:
    if kind == "m":
        return event.message
    if kind == "n":
        return "\n"
    if kind == "P":
        return LEVEL_NAMES[event.level][0]
    if kind == "p":
        return LEVEL_NAMES[event.level]
    if kind == "c":
        return _logger_tail(event.logger, atoi(option) if option else 0)
    if kind in ("d", "D"):
        return _format_time(option or "%Y-%m-%d %H:%M:%S", event.stamp, kind == "d")
    if kind == "i":
        return str(os.getpid())
    if kind == "t":
        import _thread  # noqa: PLC0415 - builtin, only needed for %t

        return str(_thread.get_ident())
    if kind == "T":
        import _thread  # noqa: PLC0415 - builtin, only needed for %T

        return str(_thread.get_native_id())
    if kind == "r":
        return str(int((event.stamp - STARTED) * 1000))
    if kind == "h":
        return hostname()
    if kind == "H":
        import socket  # noqa: PLC0415 - costly; only for %H

        return socket.getfqdn()
    return EMPTY_CONVERTERS.get(kind, "")


def _logger_tail(name: str, precision: int) -> str:
    if precision <= 0:
        return name
    parts = name.split(".")
    return name if precision >= len(parts) else ".".join(parts[-precision:])


def _format_time(fmt: str, stamp: float, gmt: bool) -> str:
    micros = int((stamp % 1) * 1_000_000)
    fmt = (
        fmt.replace("%%", "\0")
        .replace("%q", f"{micros // 1000:03d}")
        .replace("%Q", f"{micros // 1000:03d}.{micros % 1000:03d}")
        .replace("%s", str(int(stamp)))
        .replace("\0", "%%")
    )
    return time.strftime(fmt, time.gmtime(stamp) if gmt else time.localtime(stamp))


_DIGITS = "0123456789"


class PatternLayout:
    """log4cplus PatternLayout: the same parser states, messages and padding rules."""

    __slots__ = ("each_line", "items")

    def __init__(self, pattern: str, each_line: bool, loglog: list[tuple[str, str]]) -> None:
        self.each_line = each_line
        self.items: list[str | Converter] = _parse_pattern(pattern, loglog)
        if not self.items:
            loglog.append(("WARN", "PatternLayout pattern is empty.  Using default..."))
            self.items = [Converter("m", -1, 0x7FFFFFFF, False, "")]

    def format(self, event: Event) -> str:
        if self.each_line and "\n" in event.message:
            return "".join(
                self._format_one(Event(event.level, event.logger, line, event.stamp))
                for line in event.message.split("\n")
            )
        return self._format_one(event)

    def _format_one(self, event: Event) -> str:
        return "".join(item if isinstance(item, str) else item.render(event) for item in self.items)


def _parse_pattern(pattern: str, loglog: list[tuple[str, str]]) -> list[str | Converter]:
    literal_state, converter_state, min_state, dot_state, max_state = range(5)
    items: list[str | Converter] = []
    state = literal_state
    literal = ""
    min_len, max_len, left = -1, 0x7FFFFFFF, False
    pos = 0
    end = len(pattern)

    def option() -> str:
        nonlocal pos
        if pos < end and pattern[pos] == "{":
            close = pattern.find("}", pos)
            if close >= 0:
                text = pattern[pos + 1 : close]
                pos = close + 1
                return text
            loglog.append(
                (
                    "ERROR",
                    f"No matching '}}' found in conversion pattern string \"{pattern}\"",
                )
            )
            pos = end
        return ""

    def finalize(char: str) -> None:
        nonlocal literal, state, min_len, max_len, left
        if char in "mnPpcdDitTrhHbFLlMxX":
            opt = option() if char in "cdDX" else ""
            items.append(Converter(char, min_len, max_len, left, opt))
        else:
            loglog.append(
                ("ERROR", f"Unexpected char [{char}] at position {pos} in conversion pattern.")
            )
            items.append(literal)
        literal = ""
        state = literal_state
        min_len, max_len, left = -1, 0x7FFFFFFF, False

    while pos < end:
        char = pattern[pos]
        pos += 1
        if state == literal_state:
            if pos == end:
                literal += char
            elif char == "%":
                if pattern[pos] == "%":
                    literal += char
                    pos += 1
                else:
                    if literal:
                        items.append(literal)
                    literal = char
                    state = converter_state
                    min_len, max_len, left = -1, 0x7FFFFFFF, False
            else:
                literal += char
        elif state == converter_state:
            literal += char
            if char == "-":
                left = True
            elif char == ".":
                state = dot_state
            elif char in _DIGITS:
                min_len = int(char)
                state = min_state
            else:
                finalize(char)
        elif state == min_state:
            literal += char
            if char in _DIGITS:
                min_len = min_len * 10 + int(char)
            elif char == ".":
                state = dot_state
            else:
                finalize(char)
        elif state == dot_state:
            literal += char
            if char in _DIGITS:
                max_len = int(char)
                state = max_state
            else:
                loglog.append(
                    (
                        "ERROR",
                        f"Error occurred in position {pos}.\n"
                        f' Was expecting digit, instead got char "{char}".',
                    )
                )
                state = literal_state
        else:  # max_state
            literal += char
            if char in _DIGITS:
                max_len = max_len * 10 + int(char)
            else:
                finalize(char)
    if literal:
        items.append(literal)
    return items


class SimpleLayout:
    __slots__ = ()

    def format(self, event: Event) -> str:
        return f"{LEVEL_NAMES[event.level]} - {event.message}\n"


Layout = PatternLayout | SimpleLayout
