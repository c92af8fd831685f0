"""DCMTK's logger tree built from an ``-lc`` file: log4cplus's PropertyConfigurator.

Rules (DCMTK 3.6.8, oflog/libsrc/config.cc):

* Before the file is applied the root logger has oflog's start-up console appender on stderr
  (``%P: %m%n``) at INFO; ``rootLogger``, ``logger.*`` and ``additivity.*`` then change it.
* Appenders are built in key order, each checked for the settings it reads; an unknown or
  unsupported factory, setting or layout is reported as a ``log4cplus:`` line (kept in
  ``loglog``) and skipped, never silently accepted.
* Imported only when an ``-lc`` file is given: the appenders, layouts and property reader it
  needs are not part of ``echoscu``'s plain start-up. `DcmtkLogger` adopts the tree.
"""

from __future__ import annotations

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
from echoprobe.report.dcmtk_config import LogConfig, atoi, parse_bool, parse_int, tokenize
from echoprobe.report.dcmtk_layout import (
    EMPTY_CONVERTERS,
    Converter,
    Layout,
    PatternLayout,
    SimpleLayout,
)
from echoprobe.report.dcmtk_levels import NOT_SET, ROOT, Level, ascii_upper, parse_level

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["LoggerTree", "Node", "build_tree"]

_DEFAULT_PATTERN = "%P: %m%n"


class Node:
    """One logger of the tree: its level (``NOT_SET`` inherits), appenders, additivity."""

    __slots__ = ("additive", "appenders", "level")

    def __init__(self, level: int) -> None:
        self.level = level
        self.appenders: list[Appender] = []
        self.additive = True


class LoggerTree:
    """What an ``-lc`` file made: the loggers by name, every appender built (attached or
    not: all are closed at the end), and the file's ``log4cplus:`` messages in order."""

    __slots__ = ("appenders", "loglog", "nodes", "quiet_mode")

    def __init__(self, quiet_mode: bool | None) -> None:
        self.nodes: dict[str, Node] = {}
        self.appenders: list[Appender] = []
        self.loglog: list[tuple[str, str]] = []
        self.quiet_mode = quiet_mode  # log4cplus.quietMode, None when the file does not say

    @property
    def root_level(self) -> int:
        return self.nodes[ROOT].level


def build_tree(config: LogConfig, stdout: TextIO | None, stderr: TextIO | None) -> LoggerTree:
    """Apply ``config`` to oflog's start-up state, as DCMTK's PropertyConfigurator does."""
    props = dict(config.properties)
    tree = LoggerTree(parse_bool(props["quietMode"]) if "quietMode" in props else None)
    loglog = tree.loglog
    loglog.extend(config.loglog)
    root = Node(Level.INFO)
    root.appenders.append(
        ConsoleAppender("", PatternLayout(_DEFAULT_PATTERN, True, loglog), NOT_SET, True, stderr)
    )
    tree.nodes[ROOT] = root
    appenders = _build_appenders(props, stdout, stderr, loglog)
    tree.appenders = list(appenders.values())
    if "rootLogger" in props:
        _configure_logger(tree, ROOT, props["rootLogger"], appenders)
    for key in sorted(props):
        if key.startswith("logger."):
            _configure_logger(tree, key[len("logger.") :], props[key], appenders)
    for key in sorted(props):
        if key.startswith("additivity."):
            value = parse_bool(props[key])
            if value is not None:
                tree.nodes.setdefault(key[len("additivity.") :], Node(NOT_SET)).additive = value
    return tree


def _build_appenders(
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
        appender = _make_appender(name, factory, sub, stdout=stdout, stderr=stderr, loglog=loglog)
        if appender is not None:
            built[name] = appender
    return built


def _make_appender(
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
    layout = _make_layout(name, sub, loglog)
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
        return ConsoleAppender(name, layout, threshold, to_stderr, stderr if to_stderr else stdout)
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


def _make_layout(name: str, sub: dict[str, str], loglog: list[tuple[str, str]]) -> Layout | None:
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
            ("ERROR", "Error while creating Layout: ConversionPattern not specified in properties")
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
    tree: LoggerTree, name: str, config: str, appenders: dict[str, Appender]
) -> None:
    tokens = tokenize(config)
    if not tokens:
        tree.loglog.append(
            (
                "ERROR",
                "PropertyConfigurator::configureLogger()- Invalid config string"
                f'(Logger = {name}): "{config}"',
            )
        )
        return
    node = tree.nodes.setdefault(name, Node(NOT_SET))
    level = None if tokens[0] == "INHERITED" else parse_level(tokens[0])
    node.level = NOT_SET if level is None else level
    node.appenders = []
    for token in tokens[1:]:
        appender = appenders.get(token)
        if appender is None:
            tree.loglog.append(
                ("ERROR", f"PropertyConfigurator::configureLogger()- Invalid appender: {token}")
            )
            continue
        node.appenders.append(appender)
