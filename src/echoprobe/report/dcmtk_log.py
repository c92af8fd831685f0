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
* Only cheap imports here: the ``echoscu`` start-up time counts. Everything ``-lc`` needs is
  imported when an ``-lc`` file is given, not before.

This module holds the logger and re-exports the names callers use; the parts live by
responsibility in `dcmtk_levels` (levels, line output, `LogSetup`), `dcmtk_config` (reading
the ``-lc`` file: `load_log_config`, `LogConfigError`), `dcmtk_tree` (the logger tree a file
builds), `dcmtk_layout` (layouts) and `dcmtk_appenders` (appenders). None of those imports
this module.
"""

from __future__ import annotations

import sys
import time

from echoprobe.report.dcmtk_levels import (
    DCMDATA,
    DCMNET,
    DCMTLS,
    NOT_SET,
    ROOT,
    Level,
    LogConfig,
    LogRecord,
    LogSetup,
    parse_level,
    render_default,
    write_text,
)

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from echoprobe.report.dcmtk_appenders import Appender
    from echoprobe.report.dcmtk_layout import Event
    from echoprobe.report.dcmtk_tree import Node

__all__ = [
    "DCMDATA",
    "DCMNET",
    "DCMTLS",
    "ROOT",
    "DcmtkLogger",
    "Level",
    "LogRecord",
    "LogSetup",
    "parse_level",
    "render_default",
    "write_text",
]


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
        level: int = Level.WARN,
        *,
        stream: TextIO | None = None,
        app_logger: str = "dcmtk.apps",
    ) -> None:
        self._app = app_logger
        self._fast = True
        self._root_level: int = level
        self._default_stream = stream
        self._nodes: dict[str, Node] = {}
        self._levels: dict[str, int] = {}
        self._chains: dict[str, list[Appender]] = {}
        self._owned: list[Appender] = []  # every appender built, attached or not
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

    def is_enabled(self, level: int, *, logger: str | None = None) -> bool:
        """Would a message at ``level`` be logged? Lets callers skip building debug text."""
        if self._fast:
            return level >= self._root_level
        return level >= self._effective_level(logger or self._app)

    @property
    def quiet(self) -> bool:
        """DCMTK's quiet mode: the root logger drops ERROR messages."""
        return self._root_level > Level.ERROR

    # -- logging -----------------------------------------------------------------------

    def log(self, level: int, message: str, *, logger: str | None = None) -> None:
        """Log ``message`` (may hold newlines: each line gets the prefix)."""
        if self._fast:
            if level >= self._root_level:
                stream = self._default_stream or sys.stderr
                write_text(stream, render_default(level, message))
            return
        name = logger or self._app
        if level >= self._effective_level(name):
            self._call_appenders(_event(level, name, message))

    def forced_log(self, level: int, message: str, *, logger: str = ROOT) -> None:
        """Log regardless of logger levels (log4cplus forcedLog; thresholds still apply)."""
        if self._fast:
            write_text(self._default_stream or sys.stderr, render_default(level, message))
            return
        self._call_appenders(_event(level, logger, message))

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
            if node is not None and node.level != NOT_SET:
                level = node.level
                break
            probe = probe.rpartition(".")[0]
            if not probe:
                break
        self._levels[name] = level
        return level

    def _chain(self, name: str) -> list[Appender]:
        cached = self._chains.get(name)
        if cached is not None:
            return cached
        chain: list[Appender] = []
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

    def _call_appenders(self, event: Event) -> None:
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
        from echoprobe.report.dcmtk_tree import build_tree  # noqa: PLC0415 - with -lc only

        tree = build_tree(config, stdout, stderr)
        self._nodes = tree.nodes
        self._owned = tree.appenders
        self._fast = False
        self._root_level = tree.root_level
        self._loglog_quiet = bool(tree.quiet_mode)
        for kind, text in tree.loglog:
            self._loglog(kind, text)
        # DCMTK sets LogLog quiet after configuring, from the resulting root level.
        self._loglog_quiet = bool(tree.quiet_mode) or tree.root_level > Level.ERROR


def _event(level: int, logger: str, message: str) -> Event:
    # Configured (-lc) loggers only, so dcmtk_layout is loaded by then.
    from echoprobe.report.dcmtk_layout import Event  # noqa: PLC0415

    return Event(level, logger, message, time.time())
