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

This module holds the logger (the logger tree, and building it from an ``-lc`` file) and
re-exports the names callers use; the parts live by responsibility in `dcmtk_levels` (levels,
line output), `dcmtk_config` (the ``-lc`` file), `dcmtk_layout` (layouts) and
`dcmtk_appenders` (appenders). None of those imports this module.
"""

from __future__ import annotations

import sys
import time

from echoprobe.report.dcmtk_appenders import (
    APPENDER_KEYS,
    COMMON_KEYS,
    KNOWN_APPENDERS,
    LAYOUT_KEYS,
    MIN_ROLLING_SIZE,
    UNSUPPORTED_APPENDERS,
    Appender,
    ConsoleAppender,
    FileAppender,
    NullAppender,
    RollingFileAppender,
)
from echoprobe.report.dcmtk_config import (
    LogConfig,
    LogConfigError,
    LogSetup,
    atoi,
    load_log_config,
    parse_bool,
    parse_int,
    tokenize,
)
from echoprobe.report.dcmtk_layout import (
    EMPTY_CONVERTERS,
    Converter,
    Event,
    Layout,
    PatternLayout,
    SimpleLayout,
)
from echoprobe.report.dcmtk_levels import (
    DCMDATA,
    DCMNET,
    DCMTLS,
    NOT_SET,
    ROOT,
    Level,
    LogRecord,
    ascii_upper,
    parse_level,
    render_default,
    write_text,
)

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

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

_DEFAULT_PATTERN = "%P: %m%n"


class _Node:
    __slots__ = ("additive", "appenders", "level")

    def __init__(self, level: int) -> None:
        self.level = level
        self.appenders: list[Appender] = []
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
        level: int = Level.WARN,
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
            self._call_appenders(Event(level, name, message, time.time()))

    def forced_log(self, level: int, message: str, *, logger: str = ROOT) -> None:
        """Log regardless of logger levels (log4cplus forcedLog; thresholds still apply)."""
        if self._fast:
            write_text(self._default_stream or sys.stderr, render_default(level, message))
            return
        self._call_appenders(Event(level, logger, message, time.time()))

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
        props = dict(config.properties)
        loglog: list[tuple[str, str]] = list(config.loglog)
        quiet_mode = parse_bool(props["quietMode"]) if "quietMode" in props else None
        self._loglog_quiet = bool(quiet_mode)
        # The state before the file is applied: oflog's start-up console appender, INFO.
        root = _Node(Level.INFO)
        root.appenders.append(
            ConsoleAppender(
                "", PatternLayout(_DEFAULT_PATTERN, True, loglog), NOT_SET, True, stderr
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
                value = parse_bool(props[key])
                if value is not None:
                    self._nodes.setdefault(
                        key[len("additivity.") :], _Node(NOT_SET)
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
    ) -> dict[str, Appender]:
        built: dict[str, Appender] = {}
        for key in sorted(props):
            if not key.startswith("appender."):
                continue
            name = key[len("appender.") :]
            if "." in name:
                continue
            factory = props[key]
            if factory in UNSUPPORTED_APPENDERS:
                loglog.append(("WARN", f"unsupported appender ignored: {factory} ({name})"))
                continue
            if factory not in KNOWN_APPENDERS:
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
    ) -> Appender | None:
        allowed = COMMON_KEYS | LAYOUT_KEYS | APPENDER_KEYS[factory]
        for key in sorted(sub):
            if key not in allowed and not key.startswith("layout.NDCMaxDepth"):
                hint = " (log4cplus spells it logToStdErr)" if key.lower() == "logtostderr" else ""
                loglog.append(("WARN", f"unsupported setting ignored: appender.{name}.{key}{hint}"))
        layout = self._make_layout(name, sub, loglog)
        threshold = NOT_SET
        # A failed layout aborts log4cplus's Appender constructor before Threshold is read.
        if layout is None:
            layout = SimpleLayout()
        elif "Threshold" in sub:
            parsed = parse_level(sub["Threshold"])
            threshold = NOT_SET if parsed is None else parsed
        flush_value = parse_bool(sub["ImmediateFlush"]) if "ImmediateFlush" in sub else None
        if factory == "log4cplus::ConsoleAppender":
            to_stderr = bool(parse_bool(sub.get("logToStdErr", "false")))
            return ConsoleAppender(
                name, layout, threshold, to_stderr, stderr if to_stderr else stdout
            )
        if factory == "log4cplus::NullAppender":
            return NullAppender(name, layout, threshold)
        path = sub.get("File", "")
        if not path:
            loglog.append(("ERROR", "Invalid filename"))
            return NullAppender(name, layout, threshold)
        rolling = factory == "log4cplus::RollingFileAppender"
        append_value = parse_bool(sub["Append"]) if "Append" in sub else None
        append = rolling if append_value is None else append_value
        flush = True if flush_value is None else flush_value
        if not rolling:
            return FileAppender(
                name, layout, threshold, path=path, append=append, flush=flush, loglog=loglog
            )
        max_size = 10 * 1024 * 1024
        size_text = ascii_upper(sub.get("MaxFileSize", ""))
        if size_text:
            max_size = atoi(size_text)
            if max_size != 0:
                if len(size_text) > 2 and size_text.endswith("MB"):
                    max_size *= 1024 * 1024
                elif len(size_text) > 2 and size_text.endswith("KB"):
                    max_size *= 1024
            max_size = max(max_size, MIN_ROLLING_SIZE)
        backups = parse_int(sub["MaxBackupIndex"]) if "MaxBackupIndex" in sub else None
        return RollingFileAppender(
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
    ) -> Layout | None:
        factory = sub.get("layout")
        if factory is None or factory == "log4cplus::SimpleLayout":
            return SimpleLayout()
        if factory == "log4cplus::TTCCLayout":
            loglog.append(
                ("WARN", f"unsupported layout ignored: {factory} ({name}), using SimpleLayout")
            )
            return SimpleLayout()
        if factory != "log4cplus::PatternLayout":
            loglog.append(("ERROR", f'Cannot find LayoutFactory: "{factory}"'))
            return SimpleLayout()
        each_line = True
        if "layout.FormatEachLine" in sub:
            parsed = parse_bool(sub["layout.FormatEachLine"])
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
        layout = PatternLayout(pattern, each_line, loglog)
        for item in layout.items:
            if isinstance(item, Converter) and item.kind in EMPTY_CONVERTERS:
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
        appenders: dict[str, Appender],
        loglog: list[tuple[str, str]],
    ) -> None:
        tokens = tokenize(config)
        if not tokens:
            loglog.append(
                (
                    "ERROR",
                    "PropertyConfigurator::configureLogger()- Invalid config string"
                    f'(Logger = {name}): "{config}"',
                )
            )
            return
        node = self._nodes.setdefault(name, _Node(NOT_SET))
        level = None if tokens[0] == "INHERITED" else parse_level(tokens[0])
        node.level = NOT_SET if level is None else level
        node.appenders = []
        for token in tokens[1:]:
            appender = appenders.get(token)
            if appender is None:
                loglog.append(
                    ("ERROR", f"PropertyConfigurator::configureLogger()- Invalid appender: {token}")
                )
                continue
            node.appenders.append(appender)
