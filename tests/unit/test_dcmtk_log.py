"""DCMTK-style logging: prefixes, levels, and log4cplus property files (-lc)."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest

from echoprobe.report.dcmtk_config import LogConfigError, load_log_config
from echoprobe.report.dcmtk_levels import LEVEL_NAMES
from echoprobe.report.dcmtk_log import (
    DCMNET,
    ROOT,
    DcmtkLogger,
    Level,
    LogRecord,
    LogSetup,
    parse_level,
    render_default,
    write_text,
)

APP = "dcmtk.apps.echoscu"


# -- default set-up ---------------------------------------------------------------------


def test_every_line_gets_the_prefix() -> None:
    assert render_default(Level.DEBUG, "a\nb") == "D: a\nD: b\n"
    assert render_default(Level.INFO, "text\n") == "I: text\nI: \n"
    assert render_default(Level.FATAL, "") == "F: \n"
    levels = sorted(level for level in LEVEL_NAMES if level != Level.OFF)
    prefixes = [render_default(level, "x")[:3] for level in levels]
    assert prefixes == ["T: ", "D: ", "I: ", "W: ", "E: ", "F: "]


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("fatal", Level.FATAL),
        ("ERROR", Level.ERROR),
        ("Warn", Level.WARN),
        ("info", Level.INFO),
        ("debug", Level.DEBUG),
        ("trace", Level.TRACE),
        ("all", Level.TRACE),
        ("off", Level.OFF),
        ("warning", None),
        ("", None),
        (" info", None),
        ("\u0131nfo", None),  # dotless i: only ASCII is upper-cased
    ],
)
def test_parse_level(text: str, level: int | None) -> None:
    assert parse_level(text) == level


def test_default_logger_filters_by_level() -> None:
    err = io.StringIO()
    log = DcmtkLogger(Level.WARN, stream=err)
    assert log.is_enabled(Level.WARN)
    assert not log.is_enabled(Level.INFO)
    log.info("hidden")
    log.warn("shown")
    log.error("two\nlines")
    log.fatal("last")
    assert err.getvalue() == "W: shown\nE: two\nE: lines\nF: last\n"
    assert not log.quiet


def test_quiet_and_forced_log() -> None:
    err = io.StringIO()
    log = DcmtkLogger(Level.FATAL, stream=err)
    assert log.quiet
    log.error("hidden")
    log.forced_log(Level.INFO, "calling 'x' with 0 arguments: \n")
    assert err.getvalue() == "I: calling 'x' with 0 arguments: \nI: \n"


def test_trace_and_debug_levels() -> None:
    err = io.StringIO()
    log = DcmtkLogger(Level.TRACE, stream=err)
    log.trace("t")
    log.debug("d")
    log.emit(LogRecord(Level.INFO, "i", APP))
    assert err.getvalue() == "T: t\nD: d\nI: i\n"


def test_default_stream_is_looked_up_at_write_time(capsys: pytest.CaptureFixture[str]) -> None:
    log = DcmtkLogger.from_setup(LogSetup(Level.INFO))
    log.info("to stderr")
    assert capsys.readouterr().err == "I: to stderr\n"


def test_write_text_reproduces_argument_bytes() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    word = b"AE\xff".decode(sys.getfilesystemencoding(), "surrogateescape")
    write_text(stream, f"'{word}'\n")
    assert raw.getvalue() == b"'AE\xff'\n"


def test_setup_quiet() -> None:
    assert LogSetup(Level.FATAL).quiet
    assert LogSetup(Level.OFF).quiet
    assert not LogSetup(Level.ERROR).quiet


# -- property files ----------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "log.cfg"
    path.write_text(text)
    return str(path)


def build(tmp_path: Path, text: str) -> tuple[DcmtkLogger, io.StringIO, io.StringIO]:
    config = load_log_config(write_config(tmp_path, text), "/usr/bin/echoscu")
    out, err = io.StringIO(), io.StringIO()
    logger = DcmtkLogger.from_setup(LogSetup(config=config), stdout=out, stderr=err, app_logger=APP)
    return logger, out, err


CONSOLE = (
    "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
    "log4cplus.appender.c.logToStdErr = true\n"
    "log4cplus.appender.c.layout = log4cplus::PatternLayout\n"
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "does not contain any settings"),
        ("# only a comment\n   \n", "does not contain any settings"),
        ("no equals sign here\n", "does not contain any settings"),
        ("other.key = 1\n", "does not contain any valid settings"),
        (
            "log4cplus.appender.x = log4cplus::NullAppender\n",
            "does not set up log4cplus.rootLogger",
        ),
    ],
)
def test_config_file_errors(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(LogConfigError) as info:
        load_log_config(write_config(tmp_path, content), "echoscu")
    assert str(info.value) == f"Specified --log-config file {message}"


def test_missing_config_file(tmp_path: Path) -> None:
    for path in (str(tmp_path / "nope"), str(tmp_path), ""):
        with pytest.raises(LogConfigError, match=r"does not exist$"):
            load_log_config(path, "echoscu")


def test_property_syntax_and_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EP_TEST_VAR", "from-env")
    config = load_log_config(
        write_config(
            tmp_path,
            "  # comment\r\n"
            "log4cplus.rootLogger = INFO , c\r\n"
            "log4cplus.x.name = ${appname}\n"
            "log4cplus.x.env = ${EP_TEST_VAR}\n"
            "log4cplus.x.own = <${log4cplus.x.name}>\n"
            "log4cplus.x.missing = [${EP_NOT_SET_ANYWHERE}]\n"
            "log4cplus.x.loop = ${log4cplus.x.loop}\n"
            "log4cplus.x.grow = a${log4cplus.x.grow}\n"
            "log4cplus.x.open = ${unclosed\n"
            "log4cplus.x.eq = a=b\n",
        ),
        "/usr/local/bin/echoscu",
    )
    props = dict(config.properties)
    assert props["rootLogger"] == "INFO , c"
    assert props["x.name"] == "echoscu"
    assert props["x.env"] == "from-env"
    assert props["x.own"] == "<echoscu>"
    assert props["x.missing"] == "[${EP_NOT_SET_ANYWHERE}]"
    assert props["x.loop"] == "${log4cplus.x.loop}"  # terminates instead of looping
    assert props["x.grow"].startswith("aaa")
    assert props["x.eq"] == "a=b"
    assert props["x.open"] == "${unclosed"
    assert ("ERROR", '"${unclosed" has no closing brace. Opening brace at position 0.') in (
        config.loglog
    )


def test_pattern_layout_conversions(tmp_path: Path) -> None:
    log, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = TRACE, c\n"
        + CONSOLE
        + "log4cplus.appender.c.layout.ConversionPattern = "
        "[%p|%P|%5p|%-6p|%c|%c{1}|%c{2}|%.3m|%%|%i] %m%n\n",
    )
    log.info("hello", logger=APP)
    log.trace("x", logger=DCMNET)
    assert err.getvalue() == (
        f"[INFO|I| INFO|INFO  |dcmtk.apps.echoscu|echoscu|apps.echoscu|llo|%|{os.getpid()}] hello\n"
        f"[TRACE|T|TRACE|TRACE |dcmtk.dcmnet|dcmnet|dcmtk.dcmnet|x|%|{os.getpid()}] x\n"
    )


def test_date_and_thread_conversions(tmp_path: Path) -> None:
    log, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, c\n"
        + CONSOLE
        + "log4cplus.appender.c.layout.ConversionPattern = "
        "%D{%Y-%m-%d %H:%M:%S.%q} %d %t %r %m%n\n",
    )
    log.info("m")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+ \d+ m\n",
        err.getvalue(),
    )


def test_format_each_line_and_simple_layout(tmp_path: Path) -> None:
    log, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, c\n"
        + CONSOLE
        + "log4cplus.appender.c.layout.ConversionPattern = <%m>%n\n"
        "log4cplus.appender.c.layout.FormatEachLine = false\n",
    )
    log.info("a\nb")
    assert err.getvalue() == "<a\nb>\n"
    log, out, _ = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, s\nlog4cplus.appender.s = log4cplus::ConsoleAppender\n",
    )
    log.warn("a\nb")
    assert out.getvalue() == "WARN - a\nb\n"  # stdout unless logToStdErr; no line splitting


def test_pattern_errors_are_reported_like_log4cplus(tmp_path: Path) -> None:
    log, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, c\n"
        + CONSOLE
        + "log4cplus.appender.c.layout.ConversionPattern = %z%.x<%m>%n\n",
    )
    log.info("m")
    assert err.getvalue() == (
        "log4cplus:ERROR Unexpected char [z] at position 2 in conversion pattern.\n"
        "log4cplus:ERROR Error occurred in position 5.\n"
        ' Was expecting digit, instead got char "x".\n'
        "%z%.x<m>\n"
    )


def test_threshold_levels_and_hierarchy(tmp_path: Path) -> None:
    log, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, c\n"
        + CONSOLE
        + "log4cplus.appender.c.layout.ConversionPattern = %c %p %m%n\n"
        "log4cplus.appender.c.Threshold = debug\n"
        "log4cplus.logger.dcmtk.dcmnet = TRACE\n"
        "log4cplus.logger.dcmtk.apps = ERROR\n",
    )
    assert log.is_enabled(Level.DEBUG, logger="dcmtk.dcmnet.sub")
    assert not log.is_enabled(Level.WARN, logger=APP)
    assert log.is_enabled(Level.INFO, logger="other")
    log.trace("t", logger=DCMNET)  # enabled for the logger, dropped by the threshold
    log.debug("d", logger=DCMNET)
    log.warn("w", logger=APP)
    log.error("e", logger=APP)
    log.info("i", logger="other")
    log.forced_log(Level.INFO, "forced", logger=APP)
    assert err.getvalue() == (
        "dcmtk.dcmnet DEBUG d\ndcmtk.apps.echoscu ERROR e\nother INFO i\n"
        "dcmtk.apps.echoscu INFO forced\n"
    )
    assert not log.quiet


def test_additivity_and_logger_appenders(tmp_path: Path) -> None:
    log, out, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, c\n"
        + CONSOLE
        + "log4cplus.appender.c.layout.ConversionPattern = root:%m%n\n"
        "log4cplus.appender.o = log4cplus::ConsoleAppender\n"
        "log4cplus.appender.o.layout = log4cplus::PatternLayout\n"
        "log4cplus.appender.o.layout.ConversionPattern = net:%m%n\n"
        "log4cplus.logger.dcmtk.dcmnet = INHERITED, o\n"
        "log4cplus.additivity.dcmtk.dcmnet = false\n"
        "log4cplus.logger.dcmtk.dcmdata = WARN, o\n",
    )
    log.info("a", logger=DCMNET)
    log.warn("b", logger="dcmtk.dcmdata")
    log.info("c", logger="dcmtk.dcmdata")
    assert out.getvalue() == "net:a\nnet:b\n"
    assert err.getvalue() == "root:b\n"


def test_quiet_root_levels(tmp_path: Path) -> None:
    log, _, _ = build(tmp_path, "log4cplus.rootLogger = FATAL\n")
    assert log.quiet
    setup = LogSetup(
        config=load_log_config(write_config(tmp_path, "log4cplus.rootLogger = OFF\n"), "x")
    )
    assert setup.quiet
    # An unknown level really stores NOT_SET on the root, which enables everything.
    log, _, _ = build(tmp_path, "log4cplus.rootLogger = BOGUS, c\n" + CONSOLE)
    assert not log.quiet
    assert log.is_enabled(Level.TRACE)


def test_root_without_appenders_warns_once(tmp_path: Path) -> None:
    log, _, err = build(tmp_path, "log4cplus.rootLogger = INFO\n")
    log.info("a")
    log.info("b")
    assert err.getvalue() == (
        "log4cplus:ERROR No appenders could be found for logger (dcmtk.apps.echoscu).\n"
        "log4cplus:ERROR Please initialize the log4cplus system properly.\n"
    )


def test_unsupported_settings_are_reported(tmp_path: Path) -> None:
    _, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, c, d, missing\n"
        "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
        "log4cplus.appender.c.logToStderr = true\n"
        "log4cplus.appender.c.filters.1 = log4cplus::spi::DenyAllFilter\n"
        "log4cplus.appender.d = log4cplus::DailyRollingFileAppender\n"
        "log4cplus.appender.e = NoSuchAppender\n"
        "log4cplus.variable = 1\n",
    )
    text = err.getvalue()
    assert "log4cplus:WARN unsupported setting ignored: appender.c.filters.1\n" in text
    assert "appender.c.logToStderr (log4cplus spells it logToStdErr)" in text
    assert "unsupported appender ignored: log4cplus::DailyRollingFileAppender (d)" in text
    assert "Cannot find AppenderFactory: NoSuchAppender" in text
    assert "Invalid appender: missing" in text
    assert "variable" not in text  # unknown top-level keys are variables, as for DCMTK


def test_quiet_mode_property_silences_internal_messages(tmp_path: Path) -> None:
    _, _, err = build(
        tmp_path,
        "log4cplus.quietMode = true\nlog4cplus.rootLogger = INFO, x\n"
        "log4cplus.appender.a = log4cplus::NullAppender\nlog4cplus.appender.a.bogus = 1\n",
    )
    assert err.getvalue() == ""


def test_file_appender(tmp_path: Path) -> None:
    target = tmp_path / "out.log"
    target.write_text("old\n")
    text = (
        "log4cplus.rootLogger = INFO, f\n"
        "log4cplus.appender.f = log4cplus::FileAppender\n"
        f"log4cplus.appender.f.File = {target}\n"
        "log4cplus.appender.f.layout = log4cplus::PatternLayout\n"
        "log4cplus.appender.f.layout.ConversionPattern = %P: %m%n\n"
    )
    log, _, _ = build(tmp_path, text)
    log.info("new")
    log.close()
    assert target.read_text() == "I: new\n"  # Append defaults to false: truncated
    log, _, _ = build(tmp_path, text + "log4cplus.appender.f.Append = true\n")
    log.warn("more")
    log.close()
    assert target.read_text() == "I: new\nW: more\n"


def test_file_appender_errors(tmp_path: Path) -> None:
    log, _, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, f, g\n"
        "log4cplus.appender.f = log4cplus::FileAppender\n"
        f"log4cplus.appender.f.File = {tmp_path}/no/such/dir/x.log\n"
        "log4cplus.appender.g = log4cplus::FileAppender\n",
    )
    log.info("dropped")
    assert f"log4cplus:ERROR Unable to open file: {tmp_path}/no/such/dir/x.log\n" in err.getvalue()
    assert "log4cplus:ERROR Invalid filename\n" in err.getvalue()


def test_rolling_file_appender(tmp_path: Path) -> None:
    target = tmp_path / "roll.log"
    log, _, _ = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, r\n"
        "log4cplus.appender.r = log4cplus::RollingFileAppender\n"
        f"log4cplus.appender.r.File = {target}\n"
        "log4cplus.appender.r.MaxFileSize = 1KB\n"  # raised to the 200 KB minimum
        "log4cplus.appender.r.MaxBackupIndex = 2\n"
        "log4cplus.appender.r.layout = log4cplus::PatternLayout\n"
        "log4cplus.appender.r.layout.ConversionPattern = %m%n\n",
    )
    line = "x" * 1023
    for _ in range(250):  # 250 KB: one rollover at just over 200 KB
        log.info(line)
    log.close()
    assert (tmp_path / "roll.log.1").stat().st_size > 200 * 1024
    assert 0 < target.stat().st_size < 60 * 1024
    assert not (tmp_path / "roll.log.2").exists()


def test_null_appender_and_root_name(tmp_path: Path) -> None:
    log, out, err = build(
        tmp_path,
        "log4cplus.rootLogger = INFO, n\nlog4cplus.appender.n = log4cplus::NullAppender\n",
    )
    log.forced_log(Level.INFO, "nothing", logger=ROOT)
    assert (out.getvalue(), err.getvalue()) == ("", "")


def test_a_failed_request_write_is_reported_as_dcmtk_does() -> None:
    """echoscu: our A-ASSOCIATE-RQ could not be written (reset by a TLS server that wants a
    client certificate): DCMTK's `0006:031d … sendAssociationRQTCP`, not a peer abort."""
    from echoprobe.cli.echoscu import _association_failure
    from echoprobe.errors import ConnectionLost

    err = io.StringIO()
    log = DcmtkLogger(Level.INFO, stream=err)
    failure = ConnectionLost(
        "peer closed", phase="associate", write_error="Connection reset by peer"
    )
    assert _association_failure(log, failure, "127.0.0.1", 104) == 1
    assert err.getvalue() == (
        "F: Association Request Failed: 0006:031d TCP I/O Error (Connection reset by peer) "
        "occurred in routine: sendAssociationRQTCP\n"
    )
    err.truncate(0)
    err.seek(0)
    _association_failure(log, ConnectionLost("peer closed", phase="associate"), "h", 104)
    assert "0006:0317 Peer aborted Association" in err.getvalue()
