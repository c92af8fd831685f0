"""Our echoscu command-line layer against DCMTK's ``/usr/bin/echoscu``, side by side.

Every vector here stops before the network: our parser must return an ``Exit`` for it,
which is checked *before* DCMTK runs, and DCMTK runs inside ``unshare -n`` when that works
(a namespace with no usable network), with 127.0.0.1 as the only peer ever named.

Outputs are compared byte for byte (exit code, stdout, stderr) after replacing the rcsid
line and the program name in ``--arguments`` lines. The installed binary is DCMTK 3.6.7;
where 3.6.8 differs (``-pts`` 39..45, ``+pg``/``+pm``/``+pb``, the SNI options, the TLS
evaluation order) the vectors are kept out of the byte comparison and checked against the
contract (docs/echoscu-behavior.md §12) instead. The ``-h`` text is our own wording, so only
its structure is compared: headings, option spellings, columns, value syntax and ranges.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from echoprobe.cli.echoscu_options import (
    RCSID,
    EchoscuConfig,
    Exit,
    parse_echoscu,
)

DCMTK = Path("/usr/bin/echoscu")
IN_CI = os.environ.get("CI") == "true"
PEER = "127.0.0.1"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not DCMTK.exists() and not IN_CI, reason="DCMTK echoscu (/usr/bin/echoscu) not installed"
    ),
]

_RCSID_LINE = re.compile(r"^\$dcmtk: echoscu v[0-9.]+ [0-9-]+ \$$", re.MULTILINE)
_CALLING = re.compile(r"calling '[^']*' with")

Result = tuple[int, str, str]


@pytest.fixture(scope="module", autouse=True)
def _dcmtk_present() -> None:
    if not DCMTK.exists():
        pytest.fail("DCMTK echoscu (/usr/bin/echoscu) is required under CI")


@cache
def _isolation() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10, check=False)
    return (unshare, "-n") if probe.returncode == 0 else ()


def normalise(text: str) -> str:
    text = _RCSID_LINE.sub("<rcsid>", text).replace(RCSID, "<rcsid>")
    return _CALLING.sub("calling '<prog>' with", text)


def run_dcmtk(argv: list[str], cwd: Path) -> Result:
    env = {"LC_ALL": "C", "LANG": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [*_isolation(), str(DCMTK), *argv],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=30,
        check=False,
    )
    out = done.stdout.decode("utf-8", "surrogateescape")
    err = done.stderr.decode("utf-8", "surrogateescape")
    return done.returncode, normalise(out), normalise(err)


def run_ours(argv: list[str]) -> Result:
    result = parse_echoscu(argv, str(DCMTK))
    assert isinstance(result, Exit), f"would reach the network: {argv}"
    out, err = io.StringIO(), io.StringIO()
    code = result.emit(stdout=out, stderr=err)
    return code, normalise(out.getvalue()), normalise(err.getvalue())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Command files and -lc configurations the vectors refer to as {dir}/name."""
    root = tmp_path_factory.mktemp("cli-files")
    texts = {
        "empty.args": "",
        "quotes.args": "--arguments '' \"a b\" 'it\"s' @x\n-pts\t3x",
        "crlf.args": "--arguments -aet ''\r\n127.0.0.1\t\t 99999 -pts 0\n",
        "quoted-options.args": '--arguments "-q" "" 127.0.0.1 70000',
        "value-error.args": "-aet 'TWO WORDS' -pts 0\n127.0.0.1 1\n",
        "pattern.cfg": (
            "log4cplus.rootLogger = INFO, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStdErr = true\n"
            "log4cplus.appender.c.layout = log4cplus::PatternLayout\n"
            "log4cplus.appender.c.layout.ConversionPattern = "
            "[%p|%5P|%-6p|%c|%c{1}|%.3m|%%] %m%n\n"
        ),
        "stdout.cfg": (
            "# SimpleLayout on stdout\n"
            "log4cplus.rootLogger = INFO, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStdErr = false\n"
        ),
        "fatal.cfg": (
            "log4cplus.rootLogger = FATAL, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStdErr = 1\n"
        ),
        "threshold.cfg": (
            "log4cplus.rootLogger = INFO, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStdErr = true\n"
            "log4cplus.appender.c.Threshold = WARN\n"
        ),
        "bad-pattern.cfg": (
            "log4cplus.rootLogger = BOGUS, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStdErr = true\n"
            "log4cplus.appender.c.layout = log4cplus::PatternLayout\n"
            "log4cplus.appender.c.layout.ConversionPattern = %z%.x<%m>%n\n"
        ),
        "bad-factory.cfg": (
            "log4cplus.rootLogger = INFO, c, nope\nlog4cplus.appender.c = ConsoleAppender\n"
        ),
        "no-line-split.cfg": (
            "log4cplus.rootLogger = DEBUG, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStdErr = true\n"
            "log4cplus.appender.c.layout = log4cplus::PatternLayout\n"
            "log4cplus.appender.c.layout.ConversionPattern = %P: %m%n\n"
            "log4cplus.appender.c.layout.FormatEachLine = false\n"
        ),
        "misspelt.cfg": (
            "log4cplus.rootLogger = INFO, c\n"
            "log4cplus.appender.c = log4cplus::ConsoleAppender\n"
            "log4cplus.appender.c.logToStderr = true\n"
        ),
        "comments-only.cfg": "# nothing\n\n   \n",
        "no-valid.cfg": "foo = bar\n",
        "no-root.cfg": "log4cplus.appender.c = log4cplus::NullAppender\n",
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    return root


def vector(*argv: str) -> list[str]:
    return list(argv)


# (id, argv); "{dir}" is replaced by the directory of the `files` fixture.
SAME = [
    ("unknown-long", vector("--foo", PEER, "1")),
    ("unknown-short", vector("-x")),
    ("unknown-plus-before-help", vector("+x", "-h")),
    ("unknown-after-help", vector("-h", "-x")),
    ("unknown-after-version", vector("--version", "-x")),
    ("unknown-double-dash", vector("--")),
    ("missing-value-aet", vector("-aet")),
    ("missing-value-tls", vector("+tls", "k")),
    ("missing-value-ll-last", vector(PEER, "1", "-ll")),
    ("cipher-list-missing-value", vector("+cc", "-pts")),
    ("value-swallows-params", vector("-v", "+tls", PEER, "1")),
    ("value-swallows-option", vector("-aet", "-v")),
    ("missing-peer", vector("-v")),
    ("missing-port", vector(PEER)),
    ("too-many", vector(PEER, "1", "2")),
    ("too-many-quiet", vector("-q", PEER, "1", "2")),
    ("dash-and-at-are-params", vector("-", "@")),
    ("signed-numbers-are-params", vector("-5", "+0")),
    ("port-empty", vector(PEER, "")),
    ("port-not-a-number", vector(PEER, "abc")),
    ("port-zero-quiet", vector("-q", PEER, "0")),
    ("port-hex", vector(PEER, "0x10")),
    ("port-negative-wraps", vector(PEER, "-5")),
    ("port-overflow", vector(PEER, "65536")),
    ("port-huge", vector(PEER, "99999999999999999999")),
    ("port-tab", vector(PEER, "\t70000")),
    ("port-before-log-options", vector("-ll", "bogus", PEER, "0")),
    ("ll-with-verbose", vector("-v", "-ll", "info", PEER, "1")),
    ("ll-with-quiet-is-printed", vector("-q", "-ll", "x", PEER, "1")),
    ("ll-invalid", vector("-ll", "x", PEER, "1")),
    ("ll-empty", vector("-ll", "", PEER, "1")),
    ("ll-mixed-case", vector("-ll", "Info", "-pts", "0", PEER, "1")),
    ("ll-off-silences", vector("-ll", "off", "-pts", "0", PEER, "1")),
    ("ll-all", vector("-ll", "ALL", "-ll", "bogus", PEER, "1")),
    ("lc-missing", vector("-lc", "/nonexistent/log.cfg", PEER, "1")),
    ("lc-directory", vector("-lc", "{dir}", PEER, "1")),
    ("lc-empty-name", vector("-lc", "", PEER, "1")),
    ("lc-with-ll", vector("-ll", "info", "-lc", "x", PEER, "1")),
    ("lc-with-debug", vector("-d", "-lc", "x", PEER, "1")),
    ("lc-comments-only", vector("-lc", "{dir}/comments-only.cfg", PEER, "1")),
    ("lc-no-valid", vector("-lc", "{dir}/no-valid.cfg", PEER, "1")),
    ("lc-no-root", vector("-lc", "{dir}/no-root.cfg", PEER, "1")),
    ("lc-pattern", vector("-lc", "{dir}/pattern.cfg", "--arguments", "-pts", "0", PEER, "1")),
    ("lc-stdout", vector("-lc", "{dir}/stdout.cfg", "--arguments", "-pts", "0", PEER, "1")),
    ("lc-fatal", vector("-lc", "{dir}/fatal.cfg", "--arguments", "-pts", "0", PEER, "1")),
    ("lc-threshold", vector("-lc", "{dir}/threshold.cfg", "--arguments", "-ppc", "0", PEER, "1")),
    (
        "lc-bad-pattern",
        vector("-lc", "{dir}/bad-pattern.cfg", "--arguments", "-td", "0", PEER, "1"),
    ),
    (
        "lc-bad-factory",
        vector("-lc", "{dir}/bad-factory.cfg", "--arguments", "-ta", "0", PEER, "1"),
    ),
    (
        "lc-no-line-split",
        vector("-lc", "{dir}/no-line-split.cfg", "--arguments", "-to", "0", PEER, "1"),
    ),
    (
        "lc-bad-pattern-without-arguments",
        vector("-lc", "{dir}/bad-pattern.cfg", "-pdu", "1", PEER, "1"),
    ),
    ("arguments-with-quiet", vector("--arguments", "-q", "-pts", "0", PEER, "104")),
    ("arguments-raw-bytes", vector("--arguments", "-aet", "\udcff\u00e9", "-pts", "0", PEER, "1")),
    (
        "arguments-number-forms",
        vector("--arguments", "-pts", " +2x", "-to", "0x2", "-ta", "010", "-td", " -0", PEER, "1"),
    ),
    (
        "arguments-empty-values",
        vector("-aet", "", "-aec", "", "--arguments", "-pts", "0", PEER, "1"),
    ),
    ("arguments-twice", vector("--arguments", "--arguments", "-q", PEER, "0")),
    ("quiet-then-verbose", vector("-q", "-v", "-pts", "0", PEER, "1")),
    ("verbose-then-quiet", vector("-v", "-q", "-pts", "0", PEER, "1")),
    ("debug-then-verbose-arguments", vector("-d", "-v", "--arguments", "-pts", "0", PEER, "1")),
    ("to-zero", vector("-to", "0", PEER, "1")),
    ("to-negative", vector("-ts", "-1x", "-to", "-1", PEER, "1")),
    ("to-hex-without-digits", vector("-to", "0x", PEER, "1")),
    ("to-octal-stop", vector("-to", "08", PEER, "1")),
    ("to-huge-negative", vector("-to", "-99999999999999999999", PEER, "1")),
    ("ts-minus-two", vector("-ts", "-2", PEER, "1")),
    ("ta-zero", vector("-ta", "0", PEER, "1")),
    ("td-minus-zero", vector("-td", " -0", PEER, "1")),
    ("pdu-underflow", vector("-pdu", "4095", PEER, "1")),
    ("pdu-overflow", vector("-pdu", "131073", PEER, "1")),
    ("repeat-zero", vector("--repeat", "0", PEER, "1")),
    ("repeat-negative", vector("--repeat", "-1", PEER, "1")),
    ("pts-zero", vector("-pts", "0", PEER, "1")),
    ("pts-empty", vector("-pts", "", PEER, "1")),
    ("pts-plus-only", vector("-pts", "+", PEER, "1")),
    ("pts-blank-minus", vector("-pts", " -5", PEER, "1")),
    ("pts-tab-minus-wraps", vector("-pts", "\t-5", PEER, "1")),
    ("pts-huge", vector("-pts", "99999999999999999999", PEER, "1")),
    ("ppc-zero", vector("-ppc", "0", PEER, "1")),
    ("ppc-overflow", vector("-ppc", "129", PEER, "1")),
    ("ppc-hex", vector("-ppc", "0x10", PEER, "1")),
    ("order-pdu-before-pts-and-ppc", vector("-ppc", "0", "-pts", "0", "-pdu", "1", PEER, "1")),
    ("quiet-value-error", vector("-q", "+cs", "x", PEER, "1")),
    ("tls-use-passwd", vector("+pw", "x", PEER, "1")),
    ("tls-std-passwd", vector("+ps", PEER, "1")),
    ("tls-null-passwd", vector("-pw", PEER, "1")),
    ("tls-anonymous-use-passwd", vector("+tla", "+pw", "x", PEER, "1")),
    ("tls-disabled-again", vector("+tls", "k", "c", "-tls", "+pw", "x", PEER, "1")),
    ("tls-pem", vector("-pem", PEER, "1")),
    ("tls-der", vector("-der", PEER, "1")),
    ("tls-seed", vector("+rs", "f", PEER, "1")),
    ("tls-write-seed", vector("+ws", PEER, "1")),
    ("tls-write-seed-needs-seed", vector("+tla", "+ws", PEER, "1")),
    ("tls-write-seed-file-needs-seed", vector("+tla", "+wf", "f", PEER, "1")),
    ("tls-require-peer", vector("-rc", PEER, "1")),
    ("tls-ignore-peer", vector("-ic", PEER, "1")),
    ("tls-profile-nd-and-bcp195", vector("+px", "+py", PEER, "1")),
    ("tls-profile-ex", vector("+pz", PEER, "1")),
    ("tls-profile-aes-typo", vector("+pa", PEER, "1")),
    ("tls-profile-null", vector("+pn", PEER, "1")),
    ("tls-cert-file", vector("+cf", "x", PEER, "1")),
    ("tls-cert-dir", vector("+cd", "x", PEER, "1")),
    ("tls-crl-file", vector("+crl", "x", PEER, "1")),
    ("tls-cipher", vector("+cs", "x", PEER, "1")),
    ("tls-cipher-with-ex", vector("+tla", "+pz", "+cs", "X", PEER, "1")),
    ("tls-cipher-ex-not-last", vector("+tla", "+pz", "+pn", "+cs", "A", "-ppc", "0", PEER, "1")),
    ("tls-ppc-before-tls", vector("-tls", "+tls", "k", "c", "+pw", "x", "-ppc", "200", PEER, "1")),
    (
        "tls-all-valid-then-value-error",
        vector(
            *("+tla", "-der", "-pem", "+rs", "s", "+ws", "+wf", "w", "-ic", "-rc", "+py"),
            *("+px", "+pz", "+pa", "+pn", "+cs", "A", "-pts", "0", PEER, "1"),
        ),
    ),
    ("cmdfile-empty-with-help", vector("@{dir}/empty.args", "@{dir}/empty.args", "-x")),
    ("cmdfile-quotes-too-many", vector("--arguments", "@{dir}/quotes.args")),
    ("cmdfile-crlf", vector("@{dir}/crlf.args")),
    ("cmdfile-quoted-options", vector("@{dir}/quoted-options.args")),
    ("cmdfile-value-error", vector("--arguments", "@{dir}/value-error.args")),
    ("cmdfile-missing", vector("@/nonexistent/cmd.args", PEER, "1")),
    ("cmdfile-before-unknown", vector("-x", "@/nonexistent/cmd.args")),
    ("cmdfile-at-alone", vector("--arguments", "-pts", "0", "@", "1")),
    ("verify-cert-skips-port", vector("+vc", "/nonexistent.pem", "-pts", "0")),
    ("root-cert-skips-count", vector("+rc", "x", PEER, "1", "2", "3", "-ppc", "0")),
]


def _expand(argv: list[str], files: Path) -> list[str]:
    return [arg.replace("{dir}", str(files)) for arg in argv]


@pytest.mark.parametrize("argv", [argv for _, argv in SAME], ids=[name for name, _ in SAME])
def test_same_output_as_dcmtk(argv: list[str], files: Path) -> None:
    args = _expand(argv, files)
    ours = run_ours(args)  # first: asserts that nothing would reach the network
    assert ours == run_dcmtk(args, files)


def test_there_are_enough_vectors() -> None:
    assert len(SAME) >= 40


def test_misspelt_console_option_is_reported(files: Path) -> None:
    # log4cplus reads "logToStdErr" only; both send the line to stdout, we also say why.
    args = _expand(
        vector("-lc", "{dir}/misspelt.cfg", "--arguments", "-pts", "0", PEER, "1"), files
    )
    ours, dcmtk = run_ours(args), run_dcmtk(args, files)
    assert ours[:2] == dcmtk[:2]
    warning = "log4cplus:WARN unsupported setting ignored: appender.c.logToStderr"
    assert ours[2].startswith(warning)
    assert ours[2].split("\n", 1)[1] == dcmtk[2]


# -- 3.6.8 behaviour, checked against the contract ----------------------------------------


def test_propose_ts_range_is_3_6_8(files: Path) -> None:
    for count in ("39", "45"):
        result = parse_echoscu(["-pts", count, PEER, "1"], "echoscu")
        assert isinstance(result, EchoscuConfig)
        assert result.num_ts == int(count)
    assert run_ours(["-pts", "46", PEER, "1"])[2].endswith(
        "error: Invalid value for option --propose-ts (overflow: 46)\n"
    )
    # The installed 3.6.7 still stops at 38 (contract §12).
    assert run_dcmtk(["-pts", "39", PEER, "1"], files)[2].endswith("(overflow: 39)\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["+pg"], "--profile-8996 only allowed with --enable-tls or --anonymous-tls"),
        (["+pm"], "--profile-8996-mod only allowed with --enable-tls or --anonymous-tls"),
        (["+pb"], "--profile-basic only allowed with --enable-tls or --anonymous-tls"),
        (["--request-sni", "s", "--no-sni"], "--no-sni not allowed with --request-sni"),
        (["+tls", "k", "c", "+tla", "+pw", "x"], "--use-passwd only allowed with --enable-tls"),
        (
            ["+crv", "+cf", "x"],
            "--enable-crl-vfy only allowed with --enable-tls or --anonymous-tls",
        ),
    ],
)
def test_options_new_in_3_6_8(argv: list[str], message: str, files: Path) -> None:
    code, out, err = run_ours([*argv, PEER, "1"])
    assert (code, out) == (1, "")
    assert err == f"<rcsid>\n\nechoscu: DICOM verification (C-ECHO) SCU\nerror: {message}\n"
    spelling = argv[0]
    if spelling in ("+pg", "+pm", "+pb", "--request-sni"):
        # Unknown to the installed 3.6.7 build (contract §11, §12).
        assert run_dcmtk([*argv, PEER, "1"], files)[2].endswith(
            f"error: Unknown option {spelling}\n"
        )


def test_sni_options_need_no_tls() -> None:
    result = parse_echoscu(["--no-sni", "--request-sni", "pacs", PEER, "1"], "echoscu")
    assert isinstance(result, Exit)  # the conflict, not a TLS dependency
    result = parse_echoscu(["--request-sni", "pacs", PEER, "1"], "echoscu")
    assert isinstance(result, EchoscuConfig)
    assert result.tls.server_name == "pacs"


# -- structure of -h, --version and +cc ---------------------------------------------------

NEW_IN_3_6_8 = {"+pg", "+pm", "+pb", "--no-sni", "--request-sni"}
_OPTION_LINE = re.compile(r"^ +(?:([-+][A-Za-z]+) +)?(--[a-z0-9-]+)(?: {2,}(.*))?$")


def _help_structure(text: str) -> tuple[list[str], list[tuple[str, str, int, str]]]:
    headings: list[str] = []
    options: list[tuple[str, str, int, str]] = []
    for line in text.split("\n")[9:]:
        if line.endswith(":") and not line.lstrip().startswith(("-", "+", "[")):
            headings.append(line)
            continue
        match = _OPTION_LINE.match(line)
        if match:
            short, long, rest = match.group(1) or "", match.group(2), match.group(3) or ""
            value = rest if rest.startswith("[") else ""
            options.append((short, long, line.index(long), value.rstrip()))
    return headings, options


def test_help_structure_matches(files: Path) -> None:
    ours = run_ours(["-h"])
    dcmtk = run_dcmtk(["-h"], files)
    assert (ours[0], ours[2]) == (dcmtk[0], dcmtk[2]) == (0, "")
    assert run_ours([]) == ours
    assert run_dcmtk([], files) == dcmtk  # no arguments at all: usage, exit 0
    ours_lines, dcmtk_lines = ours[1].split("\n"), dcmtk[1].split("\n")
    # rcsid, blank, name: description, usage line, blank, "parameters:" heading
    assert ours_lines[:6] == dcmtk_lines[:6]
    assert [line.split()[0] for line in ours_lines[6:8]] == ["peer", "port"]
    assert [line.index(line.split()[1]) for line in ours_lines[6:8]] == [
        line.index(line.split()[1]) for line in dcmtk_lines[6:8]
    ]
    assert ours_lines[-2:] == dcmtk_lines[-2:] == ["", ""]
    our_headings, our_options = _help_structure(ours[1])
    their_headings, their_options = _help_structure(dcmtk[1])
    assert [h for h in our_headings if h != "  server name indication:"] == their_headings
    kept = [o for o in our_options if o[0] not in NEW_IN_3_6_8 and o[1] not in NEW_IN_3_6_8]
    assert [o[:3] for o in kept] == [o[:3] for o in their_options]  # spellings and columns
    for ours_option, their_option in zip(kept, their_options, strict=True):
        if ours_option[1] == "--propose-ts":
            assert (ours_option[3], their_option[3]) == (
                "[n]umber: integer (1..45)",
                "[n]umber: integer (1..38)",
            )
        else:
            assert ours_option[3] == their_option[3], ours_option[1]


def test_version_structure_matches(files: Path) -> None:
    ours, dcmtk = run_ours(["--version"]), run_dcmtk(["--version"], files)
    assert (ours[0], ours[2]) == (dcmtk[0], dcmtk[2]) == (0, "")
    ours_lines, dcmtk_lines = ours[1].split("\n"), dcmtk[1].split("\n")
    assert ours_lines[:4] == dcmtk_lines[:4]
    for index, prefix in enumerate(("Host type: ", "Character encoding: ", "Build options: "), 4):
        assert ours_lines[index].startswith(prefix)
        assert dcmtk_lines[index].startswith(prefix)
    assert ours_lines[7:9] == dcmtk_lines[7:9] == ["", "External libraries used:"]
    assert all(line.startswith("- ") for line in ours_lines[9:-1])
    assert any(line.startswith("- OpenSSL ") for line in ours_lines)
    assert any(line.startswith("- OpenSSL ") for line in dcmtk_lines)
    assert ours_lines[-1] == dcmtk_lines[-1] == ""


def test_cipher_list_structure_matches(files: Path) -> None:
    ours, dcmtk = run_ours(["+cc", PEER]), run_dcmtk(["+cc", PEER], files)
    assert (ours[0], ours[2]) == (dcmtk[0], dcmtk[2]) == (0, "")
    ours_lines, dcmtk_lines = ours[1].split("\n"), dcmtk[1].split("\n")
    assert ours_lines[:4] == dcmtk_lines[:4]
    assert ours_lines[7:9] == dcmtk_lines[7:9] == ["", "Supported TLS ciphersuites are:"]
    our_suites = {line for line in ours_lines[9:] if line}
    their_suites = {line for line in dcmtk_lines[9:] if line}
    assert our_suites
    assert all(re.fullmatch(r"  TLS_[A-Z0-9_]+", line) for line in our_suites)
    # The suites `+cs` accepts that this OpenSSL offers, by DCMTK's (IANA) names: all that
    # 3.6.7 lists, plus the AES-CCM suites 3.6.8 (the reference) added to its table.
    assert their_suites <= our_suites
    assert all("_CCM" in line for line in our_suites - their_suites)
