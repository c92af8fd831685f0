"""The echoscu command line: evaluation order, ranges, logging options, TLS rules, texts."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from echoprobe.cli.echoscu_options import (
    HEADER,
    MAX_PROPOSED_TS,
    RCSID,
    TABLE,
    CrlMode,
    EchoscuConfig,
    Exit,
    KeyFormat,
    PeerCertificate,
    TlsProfile,
    cipher_list_text,
    iana_cipher_name,
    parse_echoscu,
    usage_text,
    version_text,
)
from echoprobe.report.dcmtk_log import Level

PEER = ("127.0.0.1", "104")


def run(*argv: str) -> tuple[int, str, str]:
    result = parse_echoscu(list(argv), "/usr/bin/echoscu")
    assert isinstance(result, Exit), result
    out, err = io.StringIO(), io.StringIO()
    code = result.emit(stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def config(*argv: str) -> EchoscuConfig:
    result = parse_echoscu(list(argv), "echoscu")
    assert isinstance(result, EchoscuConfig), result
    return result


def error(message: str) -> tuple[int, str, str]:
    return 1, "", f"{HEADER}error: {message}\n"


# -- start of the run: usage, version, parse errors ---------------------------------------


def test_header_lines() -> None:
    assert RCSID.startswith("$echoprobe: echoscu v")
    assert RCSID.endswith(" 2026-11-28 $")
    assert f"{RCSID}\n\nechoscu: DICOM verification (C-ECHO) SCU\n" == HEADER


@pytest.mark.parametrize(
    "argv",
    [(), ("-h",), ("--help",), ("-h", "--version"), ("--version", "-h"), ("-h", "a", "b", "c")],
)
def test_usage_on_stdout(argv: tuple[str, ...]) -> None:
    assert run(*argv) == (0, usage_text(), "")


def test_usage_text_content() -> None:
    text = usage_text()
    lines = text.split("\n")
    assert lines[:5] == [
        RCSID,
        "",
        "echoscu: DICOM verification (C-ECHO) SCU",
        "usage: echoscu [options] peer port",
        "",
    ]
    assert text.endswith("\n\n")
    for option in TABLE.options():
        assert f" {option.long} " in text or text.count(option.long) >= 1
        if option.short:
            assert f" {option.short} " in text
    for fragment in (
        "(1..45)",
        "(1..128)",
        "(4096..131072)",
        "(default: 16384)",
        "(default: 60)",
        "(default: 30)",
        "(default: unlimited)",
        "(default: ECHOSCU)",
        "(default: ANY-SCP)",
        "(fatal, error, warn, info, debug, trace)",
    ):
        assert fragment in text


def test_every_documented_option_exists() -> None:
    spellings = {o.long for o in TABLE.options()} | {o.short for o in TABLE.options()}
    expected = [
        *("-h", "--help", "--version", "--arguments", "-q", "-v", "-d", "-ll", "-lc"),
        *("-aet", "-aec", "-pts", "-ppc", "-to", "-ts", "-ta", "-td", "-pdu", "--repeat"),
        *("--abort", "-tls", "+tls", "+tla", "+ps", "+pw", "-pw", "-pem", "-der", "+cf"),
        *("+cd", "+crl", "+crv", "+cra", "+pg", "+pm", "+py", "+px", "+pz", "+pb", "+pa"),
        *("+pn", "+cc", "+cs", "--no-sni", "--request-sni", "+rs", "+ws", "+wf", "-rc"),
        *("-ic", "+vc", "+rc"),
    ]
    assert set(expected) <= spellings
    assert len(TABLE.options()) == len(expected) - 1  # -h and --help are one option


def test_version() -> None:
    code, out, err = run("--version", "extra", "params")
    assert (code, err) == (0, "")
    assert out == version_text()
    lines = out.split("\n")
    assert lines[0:4] == [RCSID, "", "echoscu: DICOM verification (C-ECHO) SCU", ""]
    assert lines[4].startswith("Host type: ")
    assert lines[5].startswith("Character encoding: ")
    assert lines[6].startswith("Build options: ")
    assert lines[7:9] == ["", "External libraries used:"]
    assert lines[9] == f"- Python {sys.version.split()[0]}"
    assert lines[10].startswith("- OpenSSL")
    assert out.endswith("\n")


def test_list_ciphers() -> None:
    code, out, err = run("+cc", "127.0.0.1")
    assert (code, err) == (0, "")
    assert out == cipher_list_text()
    lines = out.split("\n")
    assert lines[7:9] == ["", "Supported TLS ciphersuites are:"]
    suites = [line for line in lines[9:] if line]
    assert suites
    assert all(line.startswith("  TLS_") and "-" not in line for line in suites)
    assert run("+cc", "--version")[1] == version_text()  # --version is looked at first


@pytest.mark.parametrize(
    ("openssl", "iana"),
    [
        ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
        ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        ("DHE-RSA-AES256-GCM-SHA384", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
        ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
        ("CAMELLIA256-SHA", "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
        ("DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        ("EDH-RSA-DES-CBC3-SHA", "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
        ("NULL-SHA", "TLS_RSA_WITH_NULL_SHA"),
        ("ECDHE-ECDSA-AES128-CCM8", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
        ("DHE-DSS-AES128-SHA", "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"),
        ("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
        ("WEIRD-THING-XYZ", "WEIRD-THING-XYZ"),
    ],
)
def test_iana_cipher_names(openssl: str, iana: str) -> None:
    assert iana_cipher_name(openssl) == iana


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--foo", *PEER), "Unknown option --foo"),
        (("-x",), "Unknown option -x"),
        (("-h", "-x"), "Unknown option -x"),
        (("--version", "+x"), "Unknown option +x"),
        (("-aet",), "Missing value for option --aetitle"),
        (("+tls", "k"), "Missing value for option --enable-tls"),
        (("127.0.0.1",), "Missing parameter port"),
        (("-v",), "Missing parameter peer"),
        (("-v", "+tls", *PEER), "Missing parameter peer"),
        (("a", "b", "c"), "Too many parameters"),
        (("-q", "a", "b", "c"), "Too many parameters"),
        (("-q", "--foo"), "Unknown option --foo"),
    ],
)
def test_parse_errors_are_printed_even_with_quiet(argv: tuple[str, ...], message: str) -> None:
    assert run(*argv) == error(message)


def test_command_file(tmp_path: Path) -> None:
    args = tmp_path / "cmd.args"
    args.write_text("--arguments -aet 'MY AE' -aec ''\n127.0.0.1 0\n")
    code, _, err = run(f"@{args}")
    assert err == (
        f"{HEADER}error: Invalid parameter value 0 (underflow)\n"
    )  # the port is checked before logging is set up
    assert code == 1
    empty = tmp_path / "empty.args"
    empty.write_text("   \n")
    assert run(f"@{empty}") == (0, usage_text(), "")
    missing = tmp_path / "nope"
    assert run(f"@{missing}", "-x") == error(f"Cannot open command file '{missing}'")


# -- the port ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("abc", "Invalid parameter value abc"),
        ("", "Invalid parameter value "),
        ("0", "Invalid parameter value 0 (underflow)"),
        ("0x10", "Invalid parameter value 0x10 (underflow)"),
        ("65536", "Invalid parameter value 65536 (overflow)"),
        ("-5", "Invalid parameter value -5 (overflow)"),
    ],
)
def test_port_errors_ignore_quiet(port: str, message: str) -> None:
    assert run("-q", "127.0.0.1", port) == error(message)


@pytest.mark.parametrize(("raw", "port"), [("104abc", 104), (" +11112", 11112), ("65535", 65535)])
def test_port_scanf(raw: str, port: int) -> None:
    assert config("127.0.0.1", raw).port == port


def test_port_is_checked_before_logging_options() -> None:
    assert run("-ll", "bogus", "127.0.0.1", "0") == error("Invalid parameter value 0 (underflow)")


# -- logging options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        ((), Level.WARN),
        (("-v",), Level.INFO),
        (("-d",), Level.DEBUG),
        (("-q",), Level.FATAL),
        (("-q", "-v"), Level.INFO),
        (("-v", "-q"), Level.FATAL),
        (("-d", "-v"), Level.INFO),
        (("-v", "-d"), Level.DEBUG),
        (("-ll", "trace"), Level.TRACE),
        (("-ll", "Info"), Level.INFO),
        (("-ll", "ALL"), Level.TRACE),
        (("-ll", "off"), Level.OFF),
        (("-ll", "bogus", "-ll", "error"), Level.ERROR),
    ],
)
def test_log_level(argv: tuple[str, ...], level: int) -> None:
    cfg = config(*argv, *PEER)
    assert cfg.log_level == level
    assert cfg.log_config is None
    assert cfg.quiet is (level > Level.ERROR)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("-v", "-ll", "info"), "--log-level not allowed with --verbose, --debug or --quiet"),
        (("-q", "-ll", "x"), "--log-level not allowed with --verbose, --debug or --quiet"),
        (("-ll", "x"), "Invalid log level for --log-level option"),
        (("-ll", ""), "Invalid log level for --log-level option"),
        (("-ll", "info "), "Invalid log level for --log-level option"),
        (("-lc", "/nonexistent"), "Specified --log-config file does not exist"),
        (("-lc", ""), "Specified --log-config file does not exist"),
        (("-ll", "info", "-lc", "x"), "--log-config not allowed with --log-level"),
        (("-q", "-lc", "x"), "--log-config not allowed with --verbose, --debug or --quiet"),
    ],
)
def test_log_option_errors_are_printed_even_with_quiet(argv: tuple[str, ...], message: str) -> None:
    assert run(*argv, *PEER) == error(message)


def test_log_config_directory_does_not_exist(tmp_path: Path) -> None:
    assert run("-lc", str(tmp_path), *PEER) == error("Specified --log-config file does not exist")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("# comment only\n\n", "does not contain any settings"),
        ("foo = bar\n", "does not contain any valid settings"),
        (
            "log4cplus.appender.A = log4cplus::NullAppender\n",
            "does not set up log4cplus.rootLogger",
        ),
    ],
)
def test_log_config_content_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "log.cfg"
    path.write_text(content)
    assert run("-lc", str(path), *PEER) == error(f"Specified --log-config file {message}")


def test_arguments_line_is_forced_and_comes_first() -> None:
    code, out, err = run("--arguments", "-q", "-aet", "", "-pts", "0", *PEER)
    assert (code, out) == (1, "")
    # -q silences the value error but not the forced INFO line; '' is counted, not shown.
    assert err == (
        "I: calling '/usr/bin/echoscu' with 8 arguments: '--arguments' '--quiet' "
        "'--aetitle' '--propose-ts' '0' '127.0.0.1' '104' \nI: \n"
    )
    code, out, err = run("-v", "--arguments", "-pts", "0", *PEER)
    assert err.startswith("I: calling '/usr/bin/echoscu' with 6 arguments: '--verbose' ")
    assert err.endswith(
        "I: \n" + f"{HEADER}error: Invalid value for option --propose-ts (underflow: 0)\n"
    )


def test_arguments_for_a_valid_command_line_is_logged_by_make_logger() -> None:
    cfg = config("--arguments", "-q", *PEER)
    err = io.StringIO()
    logger = cfg.make_logger(stderr=err)
    assert err.getvalue() == (
        "I: calling 'echoscu' with 4 arguments: '--arguments' '--quiet' '127.0.0.1' '104' \nI: \n"
    )
    assert logger.quiet


def test_log_config_routes_arguments_through_the_configured_layout(tmp_path: Path) -> None:
    path = tmp_path / "log.cfg"
    path.write_text(
        "log4cplus.rootLogger = FATAL, out\n"
        "log4cplus.appender.out = log4cplus::ConsoleAppender\n"
        "log4cplus.appender.out.layout = log4cplus::PatternLayout\n"
        "log4cplus.appender.out.layout.ConversionPattern = <%p> %m%n\n"
    )
    result = parse_echoscu(["-lc", str(path), "--arguments", "-pts", "0", *PEER], "prog")
    assert isinstance(result, Exit)
    assert result.stderr == ""  # FATAL root: quiet, the value error is silenced
    out, err = io.StringIO(), io.StringIO()
    assert result.emit(stdout=out, stderr=err) == 1
    # logToStdErr defaults to false: the console appender writes to stdout.
    assert out.getvalue().startswith("<INFO> calling 'prog' with 7 arguments: '--log-config' ")
    assert out.getvalue().endswith("'104' \n<INFO> \n")
    assert err.getvalue() == ""
    cfg = config("-lc", str(path), *PEER)
    assert cfg.log_config == str(path)
    assert cfg.quiet


# -- value errors: order, quiet, every range ---------------------------------------------


def test_value_errors_are_silenced_by_quiet_but_exit_1() -> None:
    assert run("-q", "-pts", "0", *PEER) == (1, "", "")
    assert run("-ll", "fatal", "-pdu", "1", *PEER) == (1, "", "")
    assert run("-q", "-pw", *PEER) == (1, "", "")


def test_first_error_in_evaluation_order_wins() -> None:
    argv = ("-ppc", "0", "-pts", "0", "--repeat", "0", "-pdu", "1", "-td", "0", "-ta", "0")
    assert run(*argv, "-ts", "-2", "-to", "0", *PEER) == error(
        "Invalid value for option --timeout (underflow: 0)"
    )
    assert run(*argv, "-ts", "-2", *PEER) == error(
        "Invalid value for option --socket-timeout (underflow: -2)"
    )
    assert run(*argv, *PEER) == error("Invalid value for option --acse-timeout (underflow: 0)")
    assert run(*argv[:-2], *PEER) == error(
        "Invalid value for option --dimse-timeout (underflow: 0)"
    )
    assert run(*argv[:-4], *PEER) == error("Invalid value for option --max-pdu (underflow: 1)")
    assert run(*argv[:-6], *PEER) == error("Invalid value for option --repeat (underflow: 0)")
    assert run(*argv[:-8], *PEER) == error("Invalid value for option --propose-ts (underflow: 0)")
    assert run("-pw", *argv[:-10], *PEER) == error(
        "Invalid value for option --propose-pc (underflow: 0)"
    )


@pytest.mark.parametrize(
    ("option", "bad", "message"),
    [
        ("-to", "0", "--timeout (underflow: 0)"),
        ("-to", "-1", "--timeout (underflow: -1)"),
        ("-to", "x", "--timeout (x)"),
        ("-ts", "-2", "--socket-timeout (underflow: -2)"),
        ("-ts", "", "--socket-timeout"),
        ("-ta", "0", "--acse-timeout (underflow: 0)"),
        ("-td", "0", "--dimse-timeout (underflow: 0)"),
        ("-td", " -0", "--dimse-timeout (underflow:  -0)"),
        ("-pdu", "4095", "--max-pdu (underflow: 4095)"),
        ("-pdu", "131073", "--max-pdu (overflow: 131073)"),
        ("-pdu", "-4096", "--max-pdu (-4096)"),
        ("--repeat", "0", "--repeat (underflow: 0)"),
        ("--repeat", "-1", "--repeat (-1)"),
        ("-pts", "0", "--propose-ts (underflow: 0)"),
        ("-pts", "46", "--propose-ts (overflow: 46)"),
        ("-pts", "", "--propose-ts"),
        ("-pts", "99999999999999999999", "--propose-ts (overflow: 99999999999999999999)"),
        ("-ppc", "0", "--propose-pc (underflow: 0)"),
        ("-ppc", "129", "--propose-pc (overflow: 129)"),
        ("-ppc", "0x10", "--propose-pc (underflow: 0x10)"),
    ],
)
def test_range_errors(option: str, bad: str, message: str) -> None:
    assert run(option, bad, *PEER) == error(f"Invalid value for option {message}")


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (("-to", "1"), "connect_timeout", 1),
        (("-to", "0x2"), "connect_timeout", 2),
        (("-to", "010"), "connect_timeout", 8),
        ((), "connect_timeout", None),
        (("-ts", "-1"), "socket_timeout", -1),
        (("-ts", "0"), "socket_timeout", 0),
        (("-ts", "5x"), "socket_timeout", 5),
        ((), "socket_timeout", 60),
        (("-ta", "02"), "acse_timeout", 2),
        ((), "acse_timeout", 30),
        (("-td", "1"), "dimse_timeout", 1),
        ((), "dimse_timeout", None),
        (("-pdu", "4096"), "max_pdu", 4096),
        (("-pdu", "131072"), "max_pdu", 131072),
        ((), "max_pdu", 16384),
        (("--repeat", "1"), "repeat", 1),
        (("--repeat", "18446744073709551615"), "repeat", 2**64 - 1),
        (("-pts", "1"), "num_ts", 1),
        (("-pts", "39"), "num_ts", 39),
        (("-pts", str(MAX_PROPOSED_TS)), "num_ts", 45),
        (("-pts", "2x"), "num_ts", 2),
        (("-ppc", "128"), "num_pc", 128),
        (("-aet", "FIRST", "-aet", "SECOND"), "calling_ae", "SECOND"),
        (("-aet", "-v"), "calling_ae", "-v"),
        (("-aet", ""), "calling_ae", ""),
        (("-aec", "PACS"), "called_ae", "PACS"),
        ((), "calling_ae", "ECHOSCU"),
        ((), "called_ae", "ANY-SCP"),
        (("--abort",), "abort", True),
        ((), "abort", False),
    ],
)
def test_valid_values(argv: tuple[str, ...], field: str, value: object) -> None:
    assert getattr(config(*argv, *PEER), field) == value


def test_huge_timeouts_wrap_like_dcmtk_casts() -> None:
    assert config("-to", str(2**32 + 3), *PEER).connect_timeout == 3
    assert config("-to", str(2**31), *PEER).connect_timeout is None
    assert config("-to", "99999999999999999999", *PEER).connect_timeout is None
    assert config("-ta", str(2**32), *PEER).acse_timeout is None
    assert config("-ts", str(2**31 + 5), *PEER).socket_timeout == -1


def test_odd_max_pdu_is_reduced_with_a_warning() -> None:
    cfg = config("-pdu", "16385", *PEER)
    assert cfg.max_pdu == 16384
    assert cfg.assoc_warnings == ("ASSOC: PDV receive length 16385 is odd (using 16384)",)
    assert config(*PEER).assoc_warnings == ()


def test_offline_certificate_checks_skip_the_port() -> None:
    cfg = config("+vc", "cert.pem", "-q")
    assert (cfg.verify_cert, cfg.is_root_cert) == ("cert.pem", None)
    cfg = config("+rc", "a.pem", "+rc", "b.pem", "h", "0", "extra")
    assert cfg.is_root_cert == "b.pem"
    assert run("+vc", "c.pem", "-pts", "0") == error(
        "Invalid value for option --propose-ts (underflow: 0)"
    )


# -- TLS -------------------------------------------------------------------------------

DEPENDENT = "only allowed with --enable-tls or --anonymous-tls"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("+ps",), "--std-passwd only allowed with --enable-tls"),
        (("+pw", "x"), "--use-passwd only allowed with --enable-tls"),
        (("-pw",), "--null-passwd only allowed with --enable-tls"),
        (("+tla", "+pw", "x"), "--use-passwd only allowed with --enable-tls"),
        (("+tls", "k", "c", "+tla", "-pw"), "--null-passwd only allowed with --enable-tls"),
        (("-pem",), f"--pem-keys {DEPENDENT}"),
        (("-der",), f"--der-keys {DEPENDENT}"),
        (("+crv",), f"--enable-crl-vfy {DEPENDENT}"),
        (("+cra",), f"--enable-crl-all {DEPENDENT}"),
        (("+crv", "+cf", "x"), f"--enable-crl-vfy {DEPENDENT}"),
        (("+rs", "f"), f"--seed {DEPENDENT}"),
        (("+ws",), f"--write-seed {DEPENDENT}"),
        (("+tla", "+ws"), "--write-seed only allowed with --seed"),
        (("+tla", "+wf", "w"), "--write-seed-file only allowed with --seed"),
        (("-rc",), f"--require-peer-cert {DEPENDENT}"),
        (("-ic",), f"--ignore-peer-cert {DEPENDENT}"),
        (("+pg",), f"--profile-8996 {DEPENDENT}"),
        (("+pm",), f"--profile-8996-mod {DEPENDENT}"),
        (("+py",), f"--profile-bcp195-nd {DEPENDENT}"),
        (("+px", "+py"), f"--profile-bcp195 {DEPENDENT}"),
        (("+pz",), f"--profile-bcp195-ex {DEPENDENT}"),
        (("+pb",), f"--profile-basic {DEPENDENT}"),
        (("+pa",), f"--profile-basic {DEPENDENT}"),  # upstream's message for +pa
        (("+pn",), f"--profile-null {DEPENDENT}"),
        (("+cf", "x"), f"--add-cert-file {DEPENDENT}"),
        (("+cd", "x"), f"--add-cert-dir {DEPENDENT}"),
        (("+crl", "x"), f"--add-crl-file {DEPENDENT}"),
        (("+cs", "x"), f"--cipher {DEPENDENT}"),
        (("+tla", "+pz", "+cs", "x"), "--cipher not allowed with --profile-bcp195-ex"),
        (("+tla", "+crv", "+cra"), "--enable-crl-all not allowed with --enable-crl-vfy"),
        (("+tla", "+cra", "+crv"), "--enable-crl-all not allowed with --enable-crl-vfy"),
        (("--request-sni", "s", "--no-sni"), "--no-sni not allowed with --request-sni"),
        (("+tls", "k", "c", "-tls", "+pw", "x"), "--use-passwd only allowed with --enable-tls"),
    ],
)
def test_tls_rules(argv: tuple[str, ...], message: str) -> None:
    assert run(*argv, *PEER) == error(message)
    assert run("-q", *argv, *PEER) == (1, "", "")


def test_tls_defaults() -> None:
    tls = config(*PEER).tls
    assert not tls.enabled
    assert tls.profile == TlsProfile.BCP195_RFC8996
    assert tls.key_format == KeyFormat.PEM
    assert tls.peer_certificate == PeerCertificate.REQUIRE
    assert tls.crl_mode == CrlMode.NONE
    assert tls.password is None
    assert tls.server_name is None


def test_tls_rightmost_wins_and_cumulative_options() -> None:
    tls = config(
        "+tla", "+tls", "key.pem", "cert.pem", "+pw", "one", "+pw", "two",
        "-der", "-pem", "-der",
        "+cf", "a.pem", "+cd", "dir1", "+cf", "b.pem", "+cd", "dir2", "+crl", "r.crl",
        "+crv", "+crv",
        "+pz", "+pn", "+py",
        "+cs", "TLS_X", "+cs", "TLS_Y",
        "--request-sni", "pacs.example",
        "+rs", "seed", "+wf", "out", "+ws",
        "-ic", "-rc", "-ic",
        *PEER,
    ).tls  # fmt: skip
    assert tls.enabled
    assert tls.authenticate
    assert (tls.key_file, tls.cert_file) == ("key.pem", "cert.pem")
    assert tls.password == "two"
    assert tls.key_format == KeyFormat.DER
    assert tls.ca_files == ("a.pem", "b.pem")
    assert tls.ca_dirs == ("dir1", "dir2")
    assert tls.crl_files == ("r.crl",)
    assert tls.crl_mode == CrlMode.LEAF
    assert tls.profile == TlsProfile.BCP195_ND
    assert tls.ciphers == ("TLS_X", "TLS_Y")
    assert tls.server_name == "pacs.example"
    assert tls.seed_file == "seed"
    assert tls.write_seed_file == "seed"  # +ws is rightmost: write back to the seed file
    assert tls.peer_certificate == PeerCertificate.IGNORE


def test_tls_mode_switches() -> None:
    assert not config("+tla", "-tls", *PEER).tls.enabled
    tls = config("+tls", "k", "c", "+tla", *PEER).tls
    assert tls.enabled
    assert not tls.authenticate
    tls = config("-tls", "+tls", "k", "c", "-pw", *PEER).tls
    assert tls.authenticate
    assert tls.password == ""
    assert config("+tla", "+pw", "x", "+tls", "k", "c", *PEER).tls.password == "x"
    assert config("+tla", "+cra", *PEER).tls.crl_mode == CrlMode.ALL
    assert config("+tla", "+pm", *PEER).tls.profile == TlsProfile.BCP195_RFC8996_MODIFIED
    assert config("+tla", "+pa", *PEER).tls.profile == TlsProfile.AES
    assert config("--no-sni", *PEER).tls.server_name is None  # needs no TLS, like DCMTK


# -- start-up cost ---------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import sys, echoprobe.cli.echoscu_options as m\n"
        "m.parse_echoscu(['-h'], 'echoscu')\n"
        "heavy = {'ssl', 'asyncio', 'logging', 'argparse', 'pydicom', 'socket', 'typing'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
