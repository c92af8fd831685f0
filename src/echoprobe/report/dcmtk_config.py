"""DCMTK's ``-lc`` log configuration: what the command line asked for (`LogSetup`), and the
log4cplus property file read, checked and ``${var}``-expanded as DCMTK does.

Rules of this module (DCMTK 3.6.8, oflog/libsrc/{property,config}.cc):

* A file DCMTK refuses raises `LogConfigError` with DCMTK's message; problems DCMTK only
  reports are kept as ``loglog`` (kind, text) pairs for the logger to print.
* ``${var}`` substitution looks in the properties first (``appname``, ``hostname``, ``pid``,
  ``date``, ``time`` included), then the environment; it is bounded in count and length where
  DCMTK would loop forever.
* The text helpers (`tokenize`, `parse_bool`, `parse_int`, `atoi`) are log4cplus's, quirks
  included, and are shared with the layouts and the logger.
* Builds on `dcmtk_levels` only; only cheap imports.
"""

from __future__ import annotations

import os
import time

from echoprobe.report.dcmtk_levels import FS_ENCODING, NOT_SET, Level, LogConfig, parse_level

__all__ = [
    "LogConfig",
    "LogConfigError",
    "atoi",
    "hostname",
    "load_log_config",
    "parse_bool",
    "parse_int",
    "tokenize",
]


class LogConfigError(Exception):
    """A ``-lc`` file that DCMTK refuses; ``str(exc)`` is DCMTK's message."""


_C_SPACE = " \t\n\v\f\r"
# DCMTK loops forever on "a=${a}" or "a=x${a}"; we stop after this many substitutions per
# value and this many passes over all properties.
_MAX_SUBSTITUTIONS = 1000
_MAX_PASSES = 50
_MAX_EXPANDED_LENGTH = 64 * 1024  # and "a=x${a}" would otherwise grow without bound


def _read_properties(data: bytes) -> dict[str, str]:
    props: dict[str, str] = {}
    text = data.decode(FS_ENCODING, "surrogateescape")
    for raw in text.split("\n"):
        line = raw.lstrip(_C_SPACE)
        if not line or line[0] == "#":
            continue
        if line[-1] == "\r":
            line = line[:-1]
        key, sep, value = line.partition("=")
        if sep:
            props[key.rstrip(_C_SPACE)] = value.strip(_C_SPACE)
    return props


def _substitute(
    value: str, props: dict[str, str], loglog: list[tuple[str, str]]
) -> tuple[str, bool]:
    # fRecursiveExpansion | fShadowEnvironment: properties first, then the environment;
    # an unresolved or empty variable is left as it is.
    pattern = value
    changed = False
    pos = 0
    for _ in range(_MAX_SUBSTITUTIONS):
        start = pattern.find("${", pos)
        if start < 0 or len(pattern) > _MAX_EXPANDED_LENGTH:
            return pattern, changed
        end = pattern.find("}", start)
        if end < 0:
            loglog.append(
                (
                    "ERROR",
                    f'"{pattern}" has no closing brace. Opening brace at position {start}.',
                )
            )
            return value, False
        key = pattern[start + 2 : end]
        replacement = props.get(key, "") or os.environ.get(key, "")
        if replacement:
            pattern = pattern[:start] + replacement + pattern[end + 1 :]
            changed = True
        else:
            pos = end + 1
    return pattern, changed


def _expand_variables(props: dict[str, str], loglog: list[tuple[str, str]]) -> None:
    for _ in range(_MAX_PASSES):
        changed = False
        for key in sorted(props):
            value = props.get(key, "")
            new_key, key_changed = _substitute(key, props, loglog)
            if key_changed:
                props.pop(key, None)
                props[new_key] = value
            new_value, value_changed = _substitute(value, props, loglog)
            if value_changed:
                props[new_key] = new_value
            changed = changed or key_changed or value_changed
        if not changed:
            return


def load_log_config(path: str, program: str, option: str = "--log-config") -> LogConfig:
    """Load a log4cplus property file as DCMTK's ``-lc`` does, with its checks and messages.

    ``program`` is argv[0]; its base name becomes ``${appname}``.
    Raises LogConfigError carrying DCMTK's message.
    """
    if not path or not os.path.exists(path) or os.path.isdir(path):
        raise LogConfigError(f"Specified {option} file does not exist")
    if not os.access(path, os.R_OK):
        raise LogConfigError(f"Specified {option} file cannot be read")
    loglog: list[tuple[str, str]] = []
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        loglog.append(("ERROR", f"could not open file {path}"))
        data = b""
    props = _read_properties(data)
    if not props:
        raise LogConfigError(f"Specified {option} file does not contain any settings")
    if not any(key.startswith("log4cplus.") for key in props):
        raise LogConfigError(f"Specified {option} file does not contain any valid settings")
    if "log4cplus.rootLogger" not in props:
        raise LogConfigError(f"Specified {option} file does not set up log4cplus.rootLogger")
    now = time.localtime()
    props["appname"] = os.path.basename(program)
    props["hostname"] = hostname()
    props["pid"] = str(os.getpid())
    props["date"] = time.strftime("%Y%m%d", now)
    props["time"] = time.strftime("%H%M%S", now)
    _expand_variables(props, loglog)
    subset = sorted(
        (key[len("log4cplus.") :], value)
        for key, value in props.items()
        if key.startswith("log4cplus.")
    )
    return LogConfig(
        path=path,
        properties=tuple(subset),
        root_level=_root_level(dict(subset).get("rootLogger", "")),
        loglog=tuple(loglog),
    )


def _root_level(config: str) -> int:
    """The root logger's level once a file's ``rootLogger`` setting is applied."""
    tokens = tokenize(config)
    if not tokens:
        return Level.INFO  # rejected string: oflog's start-up level stays
    level = None if tokens[0] == "INHERITED" else parse_level(tokens[0])
    # log4cplus really stores NOT_SET on the root (RootLogger's guard is not virtual),
    # which then enables every level.
    return NOT_SET if level is None else level


def hostname() -> str:
    try:
        return os.uname().nodename
    except AttributeError:  # pragma: no cover - Windows
        return os.environ.get("COMPUTERNAME", "")


def parse_bool(text: str) -> bool | None:
    words = text.split()
    if len(words) != 1:
        return None
    word = words[0].lower()
    if word == "true":
        return True
    if word == "false":
        return False
    number = parse_int(word)
    return None if number is None else number != 0


def parse_int(text: str) -> int | None:
    stripped = text.strip(_C_SPACE)
    body = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    if not body or not all("0" <= c <= "9" for c in body):
        return None
    return int(stripped)


def atoi(text: str) -> int:
    stripped = text.lstrip(_C_SPACE)
    sign = -1 if stripped[:1] == "-" else 1
    if stripped[:1] in ("+", "-"):
        stripped = stripped[1:]
    digits = ""
    for c in stripped:
        if not "0" <= c <= "9":
            break
        digits += c
    return sign * int(digits) if digits else 0


def tokenize(config: str) -> list[str]:
    # log4cplus: drop blanks, split at commas, collapse runs, no trailing empty token.
    text = config.replace(" ", "")
    tokens: list[str] = []
    first = 0
    i = 0
    while i < len(text):
        if text[i] == ",":
            tokens.append(text[first:i])
            while i + 1 < len(text) and text[i + 1] == ",":
                i += 1
            first = i + 1
        i += 1
    if first != len(text):
        tokens.append(text[first:])
    return tokens
