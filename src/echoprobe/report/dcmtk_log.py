"""DCMTK-style log output: oflog (DCMTK's log4cplus) semantics without the ``logging`` module.

Rules, as DCMTK 3.6.8 behaves (oflog/libsrc/{oflog,patlay,config,property,fileap}.cc):

* Levels are log4cplus levels; a line shows the first letter of its level:
  ``F: E: W: I: D: T:``.
* A message is split at every newline and each line is formatted on its own
  (PatternLayout "FormatEachLine", on by default), so a message that ends in a newline
  produces one more line holding only the prefix, e.g. ``I: ``.
* Without ``-lc`` there is one console appender on stderr with the pattern ``%P: %m%n``
  and the root level chosen on the command line.
* ``-lc FILE`` reads a log4cplus property file. Supported: ``rootLogger``, ``logger.*``,
  ``additivity.*``, the Console, File, RollingFile and Null appenders, Simple and Pattern
  layouts, ``Threshold``, ``${var}`` substitution (``appname``, ``hostname``, ``pid``,
  ``date``, ``time``, then the environment). Anything else is reported on stderr as a
  ``log4cplus:WARN`` line and ignored, so nobody mistakes it for working.
* Only cheap imports here: the ``echoscu`` start-up time counts.
"""

from __future__ import annotations

import os
import sys
import time
from enum import IntEnum

from echoprobe._values import value

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO, TextIO

__all__ = [
    "DCMDATA",
    "DCMNET",
    "DCMTLS",
    "ROOT",
    "DcmtkLogger",
    "Level",
    "LogConfig",
    "LogConfigError",
    "LogRecord",
    "LogSetup",
    "load_log_config",
    "parse_level",
    "render_default",
    "write_text",
]

# DCMTK's logger names, kept so that existing -lc files address the same loggers.
ROOT = "root"
DCMNET = "dcmtk.dcmnet"
DCMDATA = "dcmtk.dcmdata"
DCMTLS = "dcmtk.dcmtls"


class Level(IntEnum):
    """log4cplus log levels (``ALL`` is an alias of ``TRACE`` there too)."""

    TRACE = 0
    DEBUG = 10000
    INFO = 20000
    WARN = 30000
    ERROR = 40000
    FATAL = 50000
    OFF = 60000


_LEVEL_NAMES: dict[int, str] = {
    Level.TRACE: "TRACE",
    Level.DEBUG: "DEBUG",
    Level.INFO: "INFO",
    Level.WARN: "WARN",
    Level.ERROR: "ERROR",
    Level.FATAL: "FATAL",
    Level.OFF: "OFF",
}
_LEVELS_BY_NAME: dict[str, Level] = {name: Level(value) for value, name in _LEVEL_NAMES.items()}
_LEVELS_BY_NAME["ALL"] = Level.TRACE
_PREFIX: dict[int, str] = {value: name[0] + ": " for value, name in _LEVEL_NAMES.items()}

# log4cplus's NOT_SET_LOG_LEVEL: "inherit" for a logger, "no threshold" for an appender.
_NOT_SET = -1
_DEFAULT_PATTERN = "%P: %m%n"
_FS_ENCODING = sys.getfilesystemencoding()
_START = time.time()


def _ascii_upper(text: str) -> str:
    # log4cplus upper-cases with the C locale; str.upper() would also map non-ASCII letters.
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def parse_level(text: str) -> Level | None:
    """Level for a log4cplus level name (case-insensitive, ``ALL`` = ``TRACE``), else None."""
    return _LEVELS_BY_NAME.get(_ascii_upper(text))


def write_text(stream: TextIO, text: str) -> None:
    """Write ``text`` and flush, reproducing argv bytes exactly where the stream allows it.

    Command-line arguments arrive decoded with the file-system encoding and
    ``surrogateescape``; encoding them back the same way writes the bytes the user typed,
    as DCMTK does, instead of stderr's default backslash escapes.
    """
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        stream.flush()
        return
    try:
        data = text.encode(_FS_ENCODING, "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode(_FS_ENCODING, "backslashreplace")
    stream.flush()
    buffer.write(data)
    buffer.flush()


def render_default(level: Level, message: str) -> str:
    """The text the default setup writes for one message: ``%P: %m%n`` for every line."""
    prefix = _PREFIX[level]
    return "".join(prefix + line + "\n" for line in message.split("\n"))


@value
class LogRecord:
    """A log call kept for later, e.g. the ``--arguments`` line before logging is set up."""

    level: Level
    message: str
    logger: str = ROOT
    forced: bool = False  # log4cplus forcedLog: bypasses the logger level, not thresholds


class LogConfigError(Exception):
    """A ``-lc`` file that DCMTK refuses; ``str(exc)`` is DCMTK's message."""


@value
class LogConfig:
    """A loaded ``-lc`` file: ``log4cplus.`` settings after ``${var}`` expansion."""

    path: str
    properties: tuple[tuple[str, str], ...]  # prefix "log4cplus." removed, sorted by key
    loglog: tuple[tuple[str, str], ...] = ()  # (kind, text) internal messages from loading


@value
class LogSetup:
    """What the command line asked for: a root level, or a configuration file."""

    level: Level = Level.WARN
    config: LogConfig | None = None

    @property
    def quiet(self) -> bool:
        """DCMTK's quiet mode: the root logger would drop ERROR messages."""
        return _root_level_of(self) > Level.ERROR


# --------------------------------------------------------------------------------------
# Property files (oflog/libsrc/property.cc, config.cc)
# --------------------------------------------------------------------------------------

_C_SPACE = " \t\n\v\f\r"
# DCMTK loops forever on "a=${a}" or "a=x${a}"; we stop after this many substitutions per
# value and this many passes over all properties.
_MAX_SUBSTITUTIONS = 1000
_MAX_PASSES = 50
_MAX_EXPANDED_LENGTH = 64 * 1024  # and "a=x${a}" would otherwise grow without bound


def _read_properties(data: bytes) -> dict[str, str]:
    props: dict[str, str] = {}
    text = data.decode(_FS_ENCODING, "surrogateescape")
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
    props["hostname"] = _hostname()
    props["pid"] = str(os.getpid())
    props["date"] = time.strftime("%Y%m%d", now)
    props["time"] = time.strftime("%H%M%S", now)
    _expand_variables(props, loglog)
    subset = sorted(
        (key[len("log4cplus.") :], value)
        for key, value in props.items()
        if key.startswith("log4cplus.")
    )
    return LogConfig(path=path, properties=tuple(subset), loglog=tuple(loglog))


def _hostname() -> str:
    try:
        return os.uname().nodename
    except AttributeError:  # pragma: no cover - Windows
        return os.environ.get("COMPUTERNAME", "")


def _parse_bool(text: str) -> bool | None:
    words = text.split()
    if len(words) != 1:
        return None
    word = words[0].lower()
    if word == "true":
        return True
    if word == "false":
        return False
    number = _parse_int(word)
    return None if number is None else number != 0


def _parse_int(text: str) -> int | None:
    stripped = text.strip(_C_SPACE)
    body = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    if not body or not all("0" <= c <= "9" for c in body):
        return None
    return int(stripped)


def _atoi(text: str) -> int:
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


def _root_level_of(setup: LogSetup) -> int:
    if setup.config is None:
        return setup.level
    props = dict(setup.config.properties)
    tokens = _tokenize(props.get("rootLogger", ""))
    if not tokens:
        return Level.INFO  # rejected string: oflog's start-up level stays
    level = None if tokens[0] == "INHERITED" else parse_level(tokens[0])
    # log4cplus really stores NOT_SET on the root (RootLogger's guard is not virtual),
    # which then enables every level.
    return _NOT_SET if level is None else level


def _tokenize(config: str) -> list[str]:
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


# --------------------------------------------------------------------------------------
# Layouts (oflog/libsrc/patlay.cc, layout.cc)
# --------------------------------------------------------------------------------------


class _Event:
    __slots__ = ("level", "logger", "message", "stamp")

    def __init__(self, level: Level, logger: str, message: str, stamp: float) -> None:
        self.level = level
        self.logger = logger
        self.message = message
        self.stamp = stamp


class _Converter:
    __slots__ = ("kind", "left", "max_len", "min_len", "option")

    def __init__(self, kind: str, min_len: int, max_len: int, left: bool, option: str) -> None:
        self.kind = kind
        self.min_len = min_len
        self.max_len = max_len
        self.left = left
        self.option = option

    def render(self, event: _Event) -> str:
        text = _convert(self.kind, self.option, event)
        if len(text) > self.max_len:
            return text[len(text) - self.max_len :]  # log4cplus keeps the tail
        if len(text) < self.min_len:
            pad = " " * (self.min_len - len(text))
            return text + pad if self.left else pad + text
        return text


# Conversion characters that need data we do not have (source locations, NDC/MDC).
_EMPTY_CONVERTERS = {"b": "", "F": "", "L": "", "l": ":", "M": "", "x": "", "X": ""}


def _convert(kind: str, option: str, event: _Event) -> str:
    if kind == "m":
        return event.message
    if kind == "n":
        return "\n"
    if kind == "P":
        return _LEVEL_NAMES[event.level][0]
    if kind == "p":
        return _LEVEL_NAMES[event.level]
    if kind == "c":
        return _logger_tail(event.logger, _atoi(option) if option else 0)
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
        return str(int((event.stamp - _START) * 1000))
    if kind == "h":
        return _hostname()
    if kind == "H":
        import socket  # noqa: PLC0415 - costly; only for %H

        return socket.getfqdn()
    return _EMPTY_CONVERTERS.get(kind, "")


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


class _PatternLayout:
    """log4cplus PatternLayout: the same parser states, messages and padding rules."""

    __slots__ = ("each_line", "items")

    def __init__(self, pattern: str, each_line: bool, loglog: list[tuple[str, str]]) -> None:
        self.each_line = each_line
        self.items: list[str | _Converter] = _parse_pattern(pattern, loglog)
        if not self.items:
            loglog.append(("WARN", "PatternLayout pattern is empty.  Using default..."))
            self.items = [_Converter("m", -1, 0x7FFFFFFF, False, "")]

    def format(self, event: _Event) -> str:
        if self.each_line and "\n" in event.message:
            return "".join(
                self._format_one(_Event(event.level, event.logger, line, event.stamp))
                for line in event.message.split("\n")
            )
        return self._format_one(event)

    def _format_one(self, event: _Event) -> str:
        return "".join(item if isinstance(item, str) else item.render(event) for item in self.items)


def _parse_pattern(pattern: str, loglog: list[tuple[str, str]]) -> list[str | _Converter]:
    literal_state, converter_state, min_state, dot_state, max_state = range(5)
    items: list[str | _Converter] = []
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
            items.append(_Converter(char, min_len, max_len, left, opt))
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


class _SimpleLayout:
    __slots__ = ()

    def format(self, event: _Event) -> str:
        return f"{_LEVEL_NAMES[event.level]} - {event.message}\n"


_Layout = _PatternLayout | _SimpleLayout


# --------------------------------------------------------------------------------------
# Appenders (oflog/libsrc/appender.cc, consap.cc, fileap.cc)
# --------------------------------------------------------------------------------------


class _Appender:
    __slots__ = ("layout", "name", "threshold")

    def __init__(self, name: str, layout: _Layout, threshold: int) -> None:
        self.name = name
        self.layout = layout
        self.threshold = threshold

    def append(self, event: _Event) -> None:
        if event.level >= self.threshold:
            self.write(self.layout.format(event))

    def write(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class _ConsoleAppender(_Appender):
    __slots__ = ("stream", "to_stderr")

    def __init__(
        self,
        name: str,
        layout: _Layout,
        threshold: int,
        to_stderr: bool,
        stream: TextIO | None,
    ) -> None:
        super().__init__(name, layout, threshold)
        self.to_stderr = to_stderr
        self.stream = stream  # None: whatever sys.stderr/sys.stdout is at write time

    def write(self, text: str) -> None:
        stream = self.stream
        if stream is None:
            stream = sys.stderr if self.to_stderr else sys.stdout
        write_text(stream, text)


class _NullAppender(_Appender):
    __slots__ = ()

    def write(self, text: str) -> None:
        return None


class _FileAppender(_Appender):
    __slots__ = ("flush", "handle", "path")

    def __init__(
        self,
        name: str,
        layout: _Layout,
        threshold: int,
        *,
        path: str,
        append: bool,
        flush: bool,
        loglog: list[tuple[str, str]],
    ) -> None:
        super().__init__(name, layout, threshold)
        self.path = path
        self.flush = flush
        self.handle = self._open(append, loglog)

    def _open(self, append: bool, loglog: list[tuple[str, str]]) -> BinaryIO | None:
        try:
            return open(self.path, "ab" if append else "wb")
        except OSError:
            loglog.append(("ERROR", f"Unable to open file: {self.path}"))
            return None

    def write(self, text: str) -> None:
        handle = self.handle
        if handle is None:
            return
        try:
            data = text.encode(_FS_ENCODING, "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode(_FS_ENCODING, "backslashreplace")
        handle.write(data)
        if self.flush:
            handle.flush()
        self.after_write()

    def after_write(self) -> None:
        return None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _ignore_os_error(action: Callable[..., object], *args: str) -> None:
    try:
        action(*args)
    except OSError:
        return


_MIN_ROLLING_SIZE = 200 * 1024
_MAX_ROLLING_BACKUPS = 10000  # bounds the rename loop; DCMTK has no bound


class _RollingFileAppender(_FileAppender):
    __slots__ = ("max_backups", "max_size")

    def __init__(
        self,
        name: str,
        layout: _Layout,
        threshold: int,
        *,
        path: str,
        append: bool,
        flush: bool,
        max_size: int,
        max_backups: int,
        loglog: list[tuple[str, str]],
    ) -> None:
        super().__init__(
            name, layout, threshold, path=path, append=append, flush=flush, loglog=loglog
        )
        self.max_size = max_size
        self.max_backups = min(max(max_backups, 1), _MAX_ROLLING_BACKUPS)

    def after_write(self) -> None:
        handle = self.handle
        if handle is None or handle.tell() <= self.max_size:
            return
        handle.close()
        self.handle = None
        # Failed renames are skipped, as log4cplus only reports them.
        _ignore_os_error(os.remove, f"{self.path}.{self.max_backups}")
        for index in range(self.max_backups - 1, 0, -1):
            _ignore_os_error(os.replace, f"{self.path}.{index}", f"{self.path}.{index + 1}")
        _ignore_os_error(os.replace, self.path, f"{self.path}.1")
        self.handle = self._open(False, [])


# --------------------------------------------------------------------------------------
# The logger
# --------------------------------------------------------------------------------------

_KNOWN_APPENDERS = {
    "log4cplus::ConsoleAppender",
    "log4cplus::NullAppender",
    "log4cplus::FileAppender",
    "log4cplus::RollingFileAppender",
}
# Registered by DCMTK but not implemented here: reported, then skipped.
_UNSUPPORTED_APPENDERS = {
    "log4cplus::DailyRollingFileAppender",
    "log4cplus::SocketAppender",
    "log4cplus::SysLogAppender",
    "log4cplus::AsyncAppender",
    "log4cplus::Log4jUdpAppender",
    "log4cplus::NTEventLogAppender",
    "log4cplus::Win32ConsoleAppender",
    "log4cplus::Win32DebugAppender",
}
_COMMON_KEYS = {"layout", "Threshold", "ImmediateFlush"}
_LAYOUT_KEYS = {"layout.ConversionPattern", "layout.Pattern", "layout.FormatEachLine"}
_APPENDER_KEYS = {
    "log4cplus::ConsoleAppender": {"logToStdErr"},
    "log4cplus::NullAppender": set(),
    "log4cplus::FileAppender": {"File", "Append"},
    "log4cplus::RollingFileAppender": {"File", "Append", "MaxFileSize", "MaxBackupIndex"},
}


class _Node:
    __slots__ = ("additive", "appenders", "level")

    def __init__(self, level: int) -> None:
        self.level = level
        self.appenders: list[_Appender] = []
        self.additive = True


class DcmtkLogger:
    """DCMTK-style logger: ``F:``…``T:`` lines, or what an ``-lc`` file configures.

    ``logger`` arguments are DCMTK logger names (``dcmtk.apps.echoscu``, ``dcmtk.dcmnet``…);
    they only matter with ``-lc`` files that configure loggers below the root.
    """

    __slots__ = (
        "_app",
        "_chains",
        "_default_stream",
        "_fast",
        "_levels",
        "_loglog_quiet",
        "_nodes",
        "_owned",
        "_root_level",
        "_warned_no_appender",
    )

    def __init__(
        self,
        level: Level = Level.WARN,
        *,
        stream: TextIO | None = None,
        app_logger: str = "dcmtk.apps",
    ) -> None:
        self._app = app_logger
        self._fast = True
        self._root_level: int = level
        self._default_stream = stream
        self._nodes: dict[str, _Node] = {}
        self._levels: dict[str, int] = {}
        self._chains: dict[str, list[_Appender]] = {}
        self._owned: list[_Appender] = []  # every appender built, attached or not
        self._loglog_quiet = level > Level.ERROR
        self._warned_no_appender = False

    @classmethod
    def from_setup(
        cls,
        setup: LogSetup,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        app_logger: str = "dcmtk.apps",
    ) -> DcmtkLogger:
        """Build the logger the command line asked for (streams default to sys.std*)."""
        logger = cls(setup.level, stream=stderr, app_logger=app_logger)
        if setup.config is not None:
            logger._configure(setup.config, stdout, stderr)
        return logger

    # -- queries -----------------------------------------------------------------------

    def is_enabled(self, level: Level, *, logger: str | None = None) -> bool:
        """Would a message at ``level`` be logged? Lets callers skip building debug text."""
        if self._fast:
            return level >= self._root_level
        return level >= self._effective_level(logger or self._app)

    @property
    def quiet(self) -> bool:
        """DCMTK's quiet mode: the root logger drops ERROR messages."""
        return self._root_level > Level.ERROR

    # -- logging -----------------------------------------------------------------------

    def log(self, level: Level, message: str, *, logger: str | None = None) -> None:
        """Log ``message`` (may hold newlines: each line gets the prefix)."""
        if self._fast:
            if level >= self._root_level:
                stream = self._default_stream or sys.stderr
                write_text(stream, render_default(level, message))
            return
        name = logger or self._app
        if level >= self._effective_level(name):
            self._call_appenders(_Event(level, name, message, time.time()))

    def forced_log(self, level: Level, message: str, *, logger: str = ROOT) -> None:
        """Log regardless of logger levels (log4cplus forcedLog; thresholds still apply)."""
        if self._fast:
            write_text(self._default_stream or sys.stderr, render_default(level, message))
            return
        self._call_appenders(_Event(level, logger, message, time.time()))

    def emit(self, record: LogRecord) -> None:
        """Log a record kept from before the logger existed."""
        if record.forced:
            self.forced_log(record.level, record.message, logger=record.logger)
        else:
            self.log(record.level, record.message, logger=record.logger)

    def fatal(self, message: str, *, logger: str | None = None) -> None:
        self.log(Level.FATAL, message, logger=logger)

    def error(self, message: str, *, logger: str | None = None) -> None:
        self.log(Level.ERROR, message, logger=logger)

    def warn(self, message: str, *, logger: str | None = None) -> None:
        self.log(Level.WARN, message, logger=logger)

    def info(self, message: str, *, logger: str | None = None) -> None:
        self.log(Level.INFO, message, logger=logger)

    def debug(self, message: str, *, logger: str | None = None) -> None:
        self.log(Level.DEBUG, message, logger=logger)

    def trace(self, message: str, *, logger: str | None = None) -> None:
        self.log(Level.TRACE, message, logger=logger)

    def close(self) -> None:
        """Close file appenders (console output needs no closing)."""
        for appender in self._owned:
            appender.close()

    # -- internals ---------------------------------------------------------------------

    def _effective_level(self, name: str) -> int:
        cached = self._levels.get(name)
        if cached is not None:
            return cached
        level = self._root_level
        probe = name
        for _ in range(name.count(".") + 1):
            node = self._nodes.get(probe)
            if node is not None and node.level != _NOT_SET:
                level = node.level
                break
            probe = probe.rpartition(".")[0]
            if not probe:
                break
        self._levels[name] = level
        return level

    def _chain(self, name: str) -> list[_Appender]:
        cached = self._chains.get(name)
        if cached is not None:
            return cached
        chain: list[_Appender] = []
        probe = name
        for _ in range(name.count(".") + 2):
            if not probe:
                probe = ROOT
            node = self._nodes.get(probe)
            if node is not None:
                chain.extend(node.appenders)
                if not node.additive:
                    break
            if probe == ROOT:
                break
            probe = probe.rpartition(".")[0]
        self._chains[name] = chain
        return chain

    def _call_appenders(self, event: _Event) -> None:
        chain = self._chain(event.logger)
        if not chain:
            if not self._warned_no_appender:
                self._warned_no_appender = True
                self._loglog("ERROR", f"No appenders could be found for logger ({event.logger}).")
                self._loglog("ERROR", "Please initialize the log4cplus system properly.")
            return
        for appender in chain:
            appender.append(event)

    def _loglog(self, kind: str, text: str) -> None:
        if self._loglog_quiet:
            return
        write_text(self._default_stream or sys.stderr, f"log4cplus:{kind} {text}\n")

    def _configure(self, config: LogConfig, stdout: TextIO | None, stderr: TextIO | None) -> None:
        props = dict(config.properties)
        loglog: list[tuple[str, str]] = list(config.loglog)
        quiet_mode = _parse_bool(props["quietMode"]) if "quietMode" in props else None
        self._loglog_quiet = bool(quiet_mode)
        # The state before the file is applied: oflog's start-up console appender, INFO.
        root = _Node(Level.INFO)
        root.appenders.append(
            _ConsoleAppender(
                "", _PatternLayout(_DEFAULT_PATTERN, True, loglog), _NOT_SET, True, stderr
            )
        )
        self._nodes = {ROOT: root}
        appenders = self._build_appenders(props, stdout, stderr, loglog)
        self._owned = list(appenders.values())
        if "rootLogger" in props:
            self._configure_logger(ROOT, props["rootLogger"], appenders, loglog)
        for key in sorted(props):
            if key.startswith("logger."):
                self._configure_logger(key[len("logger.") :], props[key], appenders, loglog)
        for key in sorted(props):
            if key.startswith("additivity."):
                value = _parse_bool(props[key])
                if value is not None:
                    self._nodes.setdefault(
                        key[len("additivity.") :], _Node(_NOT_SET)
                    ).additive = value
        self._fast = False
        self._root_level = root.level
        for kind, text in loglog:
            self._loglog(kind, text)
        # DCMTK sets LogLog quiet after configuring, from the resulting root level.
        self._loglog_quiet = bool(quiet_mode) or root.level > Level.ERROR

    def _build_appenders(
        self,
        props: dict[str, str],
        stdout: TextIO | None,
        stderr: TextIO | None,
        loglog: list[tuple[str, str]],
    ) -> dict[str, _Appender]:
        built: dict[str, _Appender] = {}
        for key in sorted(props):
            if not key.startswith("appender."):
                continue
            name = key[len("appender.") :]
            if "." in name:
                continue
            factory = props[key]
            if factory in _UNSUPPORTED_APPENDERS:
                loglog.append(("WARN", f"unsupported appender ignored: {factory} ({name})"))
                continue
            if factory not in _KNOWN_APPENDERS:
                loglog.append(
                    (
                        "ERROR",
                        "PropertyConfigurator::configureAppenders()"
                        f"- Cannot find AppenderFactory: {factory}",
                    )
                )
                continue
            sub = {k[len(key) + 1 :]: v for k, v in props.items() if k.startswith(key + ".")}
            appender = self._make_appender(
                name, factory, sub, stdout=stdout, stderr=stderr, loglog=loglog
            )
            if appender is not None:
                built[name] = appender
        return built

    def _make_appender(
        self,
        name: str,
        factory: str,
        sub: dict[str, str],
        *,
        stdout: TextIO | None,
        stderr: TextIO | None,
        loglog: list[tuple[str, str]],
    ) -> _Appender | None:
        allowed = _COMMON_KEYS | _LAYOUT_KEYS | _APPENDER_KEYS[factory]
        for key in sorted(sub):
            if key not in allowed and not key.startswith("layout.NDCMaxDepth"):
                hint = " (log4cplus spells it logToStdErr)" if key.lower() == "logtostderr" else ""
                loglog.append(("WARN", f"unsupported setting ignored: appender.{name}.{key}{hint}"))
        layout = self._make_layout(name, sub, loglog)
        threshold = _NOT_SET
        # A failed layout aborts log4cplus's Appender constructor before Threshold is read.
        if layout is None:
            layout = _SimpleLayout()
        elif "Threshold" in sub:
            parsed = parse_level(sub["Threshold"])
            threshold = _NOT_SET if parsed is None else parsed
        flush_value = _parse_bool(sub["ImmediateFlush"]) if "ImmediateFlush" in sub else None
        if factory == "log4cplus::ConsoleAppender":
            to_stderr = bool(_parse_bool(sub.get("logToStdErr", "false")))
            return _ConsoleAppender(
                name, layout, threshold, to_stderr, stderr if to_stderr else stdout
            )
        if factory == "log4cplus::NullAppender":
            return _NullAppender(name, layout, threshold)
        path = sub.get("File", "")
        if not path:
            loglog.append(("ERROR", "Invalid filename"))
            return _NullAppender(name, layout, threshold)
        rolling = factory == "log4cplus::RollingFileAppender"
        append_value = _parse_bool(sub["Append"]) if "Append" in sub else None
        append = rolling if append_value is None else append_value
        flush = True if flush_value is None else flush_value
        if not rolling:
            return _FileAppender(
                name, layout, threshold, path=path, append=append, flush=flush, loglog=loglog
            )
        max_size = 10 * 1024 * 1024
        size_text = _ascii_upper(sub.get("MaxFileSize", ""))
        if size_text:
            max_size = _atoi(size_text)
            if max_size != 0:
                if len(size_text) > 2 and size_text.endswith("MB"):
                    max_size *= 1024 * 1024
                elif len(size_text) > 2 and size_text.endswith("KB"):
                    max_size *= 1024
            max_size = max(max_size, _MIN_ROLLING_SIZE)
        backups = _parse_int(sub["MaxBackupIndex"]) if "MaxBackupIndex" in sub else None
        return _RollingFileAppender(
            name,
            layout,
            threshold,
            path=path,
            append=append,
            flush=flush,
            max_size=max_size,
            max_backups=1 if backups is None else backups,
            loglog=loglog,
        )

    @staticmethod
    def _make_layout(
        name: str, sub: dict[str, str], loglog: list[tuple[str, str]]
    ) -> _Layout | None:
        factory = sub.get("layout")
        if factory is None or factory == "log4cplus::SimpleLayout":
            return _SimpleLayout()
        if factory == "log4cplus::TTCCLayout":
            loglog.append(
                ("WARN", f"unsupported layout ignored: {factory} ({name}), using SimpleLayout")
            )
            return _SimpleLayout()
        if factory != "log4cplus::PatternLayout":
            loglog.append(("ERROR", f'Cannot find LayoutFactory: "{factory}"'))
            return _SimpleLayout()
        each_line = True
        if "layout.FormatEachLine" in sub:
            parsed = _parse_bool(sub["layout.FormatEachLine"])
            each_line = True if parsed is None else parsed
        if "layout.Pattern" in sub:
            loglog.append(
                (
                    "WARN",
                    'PatternLayout- the "Pattern" property has been deprecated.'
                    '  Use "ConversionPattern" instead.',
                )
            )
        pattern = sub.get("layout.ConversionPattern", sub.get("layout.Pattern"))
        if pattern is None:
            loglog.append(("ERROR", "ConversionPattern not specified in properties"))
            loglog.append(
                (
                    "ERROR",
                    "Error while creating Layout: ConversionPattern not specified in properties",
                )
            )
            return None
        layout = _PatternLayout(pattern, each_line, loglog)
        for item in layout.items:
            if isinstance(item, _Converter) and item.kind in _EMPTY_CONVERTERS:
                loglog.append(
                    (
                        "WARN",
                        f"conversion %{item.kind} in appender {name} has no data here"
                        " (no source locations, NDC or MDC); it renders empty",
                    )
                )
        return layout

    def _configure_logger(
        self,
        name: str,
        config: str,
        appenders: dict[str, _Appender],
        loglog: list[tuple[str, str]],
    ) -> None:
        tokens = _tokenize(config)
        if not tokens:
            loglog.append(
                (
                    "ERROR",
                    "PropertyConfigurator::configureLogger()- Invalid config string"
                    f'(Logger = {name}): "{config}"',
                )
            )
            return
        node = self._nodes.setdefault(name, _Node(_NOT_SET))
        level = None if tokens[0] == "INHERITED" else parse_level(tokens[0])
        node.level = _NOT_SET if level is None else level
        node.appenders = []
        for token in tokens[1:]:
            appender = appenders.get(token)
            if appender is None:
                loglog.append(
                    ("ERROR", f"PropertyConfigurator::configureLogger()- Invalid appender: {token}")
                )
                continue
            node.appenders.append(appender)
