"""DCMTK's log levels and line output: log4cplus levels, DCMTK's logger names, the default
``%P: %m%n`` rendering, the byte-exact write of a log line, and `LogSetup` (what the command
line asked for: a level, or an ``-lc`` file, as `LogConfig`).

Rules of this module (DCMTK 3.6.8, oflog/libsrc/oflog.cc):

* Levels are log4cplus levels; a line shows the first letter of its level:
  ``F: E: W: I: D: T:``. A message is split at every newline and each line gets the prefix,
  so a message that ends in a newline produces one more line holding only the prefix.
* Text is written with the file-system encoding and ``surrogateescape``: argv bytes come out
  as the user typed them, as DCMTK writes them.
* Only cheap imports (the ``echoscu`` start-up time counts); no other ``report.dcmtk_*``
  module is imported here: the others build on this one.
"""

from __future__ import annotations

import sys
import time

from echoprobe._values import value

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final, TextIO

__all__ = [
    "DCMDATA",
    "DCMNET",
    "DCMTLS",
    "FS_ENCODING",
    "LEVEL_NAMES",
    "NOT_SET",
    "ROOT",
    "STARTED",
    "Level",
    "LogConfig",
    "LogRecord",
    "LogSetup",
    "ascii_upper",
    "parse_level",
    "render_default",
    "write_text",
]

# DCMTK's logger names, kept so that existing -lc files address the same loggers.
ROOT = "root"
DCMNET = "dcmtk.dcmnet"
DCMDATA = "dcmtk.dcmdata"
DCMTLS = "dcmtk.dcmtls"


class Level:
    """log4cplus log levels (``ALL`` is an alias of ``TRACE`` there too).

    Plain ``int`` constants, as log4cplus's and Python's ``logging`` levels are: an ``IntEnum``
    would import ``enum``, about 3 ms of ``echoscu``'s start-up. ``LEVEL_NAMES`` names them.
    """

    TRACE: Final = 0
    DEBUG: Final = 10000
    INFO: Final = 20000
    WARN: Final = 30000
    ERROR: Final = 40000
    FATAL: Final = 50000
    OFF: Final = 60000


LEVEL_NAMES: dict[int, str] = {
    Level.TRACE: "TRACE",
    Level.DEBUG: "DEBUG",
    Level.INFO: "INFO",
    Level.WARN: "WARN",
    Level.ERROR: "ERROR",
    Level.FATAL: "FATAL",
    Level.OFF: "OFF",
}
_LEVELS_BY_NAME: dict[str, int] = {name: value for value, name in LEVEL_NAMES.items()}
_LEVELS_BY_NAME["ALL"] = Level.TRACE
_PREFIX: dict[int, str] = {value: name[0] + ": " for value, name in LEVEL_NAMES.items()}

# log4cplus's NOT_SET_LOG_LEVEL: "inherit" for a logger, "no threshold" for an appender.
NOT_SET = -1
FS_ENCODING = sys.getfilesystemencoding()
# When logging started (%r: milliseconds since then). Here, because the layouts are loaded
# only once an -lc file asks for them.
STARTED = time.time()


def ascii_upper(text: str) -> str:
    # log4cplus upper-cases with the C locale; str.upper() would also map non-ASCII letters.
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def parse_level(text: str) -> int | None:
    """Level for a log4cplus level name (case-insensitive, ``ALL`` = ``TRACE``), else None."""
    return _LEVELS_BY_NAME.get(ascii_upper(text))


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
        data = text.encode(FS_ENCODING, "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode(FS_ENCODING, "backslashreplace")
    stream.flush()
    buffer.write(data)
    buffer.flush()


def render_default(level: int, message: str) -> str:
    """The text the default setup writes for one message: ``%P: %m%n`` for every line."""
    prefix = _PREFIX[level]
    return "".join(prefix + line + "\n" for line in message.split("\n"))


@value
class LogRecord:
    """A log call kept for later, e.g. the ``--arguments`` line before logging is set up."""

    level: int  # a `Level`
    message: str
    logger: str = ROOT
    forced: bool = False  # log4cplus forcedLog: bypasses the logger level, not thresholds


@value
class LogConfig:
    """A loaded ``-lc`` file (`dcmtk_config.load_log_config` reads it): ``log4cplus.``
    settings after ``${var}`` expansion, and the root level they set."""

    path: str
    properties: tuple[tuple[str, str], ...]  # prefix "log4cplus." removed, sorted by key
    root_level: int
    loglog: tuple[tuple[str, str], ...] = ()  # (kind, text) internal messages from loading


@value
class LogSetup:
    """What the command line asked for: a root level, or an ``-lc`` configuration file."""

    level: int = Level.WARN
    config: LogConfig | None = None

    @property
    def quiet(self) -> bool:
        """DCMTK's quiet mode: the root logger would drop ERROR messages."""
        level = self.level if self.config is None else self.config.root_level
        return level > Level.ERROR
