"""DCMTK command-line conventions: tokens, command files, numbers, messages, help layout."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echoprobe.cli.dcmtk_args import (
    LONG_MAX,
    LONG_MIN,
    ULONG_MAX,
    CommandLineError,
    Group,
    Option,
    OptionTable,
    Param,
    ParsedArgs,
    ParseStatus,
    arguments_message,
    error_block,
    expand_command_files,
    is_option,
    param_unsigned,
    scan_signed,
    scan_unsigned,
    split_command_file,
    value_signed,
    value_unsigned,
)

TABLE = OptionTable(
    (
        Group("general options:", long_width=10, short_width=6),
        Option("--help", "-h", help="help text", exclusive=True),
        Option("--verbose", "-v", help="talk"),
        Option("--quiet", "-q", help="hush"),
        Option("--name", "-n", 1, "[n]ame: string", "a name\nsecond line"),
        Option("--pair", "+p", 2, "[a], [b]: string", "two values"),
        Group("more:"),
        Group("sub group:", subgroup=True),
        Option("--a-rather-long-option", help="widens the column"),
        Option("--x", "-x"),
    ),
    (Param("peer", "the peer"), Param("port", "the port")),
    long_width=10,
    short_width=4,
    param_width=12,
)


def parse(*args: str) -> ParsedArgs:
    return TABLE.parse(list(args), "prog")


# -- tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("-", False),
        ("+", False),
        ("@", False),
        ("", False),
        ("-5", False),
        ("+1", False),
        ("-0x", False),
        ("--", True),
        ("-x", True),
        ("+x", True),
        ("-aet", True),
        ("++", True),
        ("x-", False),
    ],
)
def test_option_or_parameter(arg: str, expected: bool) -> None:
    assert is_option(arg) is expected


def test_short_options_are_stored_under_long_names() -> None:
    parsed = parse("-v", "host", "-n", "N", "104")
    assert parsed.status == ParseStatus.NORMAL
    assert parsed.args == ("--verbose", "host", "--name", "N", "104")
    assert (parsed.param(1), parsed.param(2)) == ("host", "104")


def test_values_are_taken_verbatim_even_when_they_look_like_options() -> None:
    parsed = parse("-n", "-v", "+p", "h", "1")
    # +p swallows the two parameters: they become its values.
    assert parsed.status == ParseStatus.MISSING_PARAMETER
    assert parsed.message == "Missing parameter peer"
    assert parsed.args == ("--name", "-v", "--pair", "h", "1")
    assert not parsed.has("--verbose")


def test_unknown_option_keeps_raw_spelling_and_stops() -> None:
    parsed = parse("-v", "-zz", "--nonsense")
    assert parsed.status == ParseStatus.UNKNOWN_OPTION
    assert parsed.message == "Unknown option -zz"
    assert parse("+z").message == "Unknown option +z"
    assert parse("--").message == "Unknown option --"


def test_missing_value_uses_long_name() -> None:
    assert parse("h", "1", "-n").message == "Missing value for option --name"
    assert parse("+p", "only-one").message == "Missing value for option --pair"
    assert parse("+p", "a", "b").status == ParseStatus.MISSING_PARAMETER


def test_unknown_option_even_with_exclusive_option() -> None:
    assert parse("-h", "-zz").status == ParseStatus.UNKNOWN_OPTION
    assert parse("-zz", "-h").status == ParseStatus.UNKNOWN_OPTION


def test_parameter_count() -> None:
    assert parse().status == ParseStatus.NO_ARGUMENTS
    assert parse("h").message == "Missing parameter port"
    assert parse("-v").message == "Missing parameter peer"
    assert parse("a", "b", "c").message == "Too many parameters"
    assert parse("a", "b", "c", "-h").status == ParseStatus.EXCLUSIVE
    assert parse("-h").status == ParseStatus.EXCLUSIVE
    assert parse("", "").status == ParseStatus.NORMAL  # empty words are parameters


def test_last_occurrence_wins() -> None:
    parsed = parse("-n", "FIRST", "-n", "SECOND", "h", "1")
    position = parsed.find("--name")
    assert position is not None
    assert parsed.value(position) == "SECOND"
    assert parsed.values_of("--name") == ("FIRST", "SECOND")
    assert parsed.find("--quiet") is None


@pytest.mark.parametrize(
    ("args", "winner"),
    [
        (("-q", "-v"), "--verbose"),
        (("-v", "-q"), "--quiet"),
        (("-v", "-q", "-v"), "--verbose"),
        (("-q",), "--quiet"),
    ],
)
def test_rightmost_wins_block(args: tuple[str, ...], winner: str) -> None:
    found = parse(*args, "h", "1").block(("--verbose", "--quiet"))
    assert found[-1][0] == winner


def test_block_reports_members_in_evaluation_order() -> None:
    # Both present: the first member in evaluation order is acted on first (DCMTK
    # reports its error), the rightmost one is acted on last.
    found = parse("-q", "-v", "h", "1").block(("--quiet", "--verbose"))
    assert [name for name, _ in found] == ["--quiet", "--verbose"]
    found = parse("-v", "-q", "h", "1").block(("--quiet", "--verbose"))
    assert [name for name, _ in found] == ["--quiet"]


# -- command files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a b\tc\r\nd", ["a", "b", "c", "d"]),
        ("  a   b  ", ["a", "b"]),
        ("'a b' \"c d\"", ["a b", "c d"]),
        ("'it\"s' \"don't\"", ['it"s', "don't"]),
        ("'' \"\" x", ["", "", "x"]),
        ("a'b c'd", ["ab c", "d"]),  # a closing quote ends the word
        ("'unterminated word", ["unterminated word"]),
        ("'", []),
        ("'a\nb'", ["a\nb"]),
        ("@nested", ["@nested"]),
        ("", []),
    ],
)
def test_command_file_words(text: str, words: list[str]) -> None:
    assert split_command_file(text) == words


def test_command_file_expansion(tmp_path: Path) -> None:
    inner = tmp_path / "inner.args"
    inner.write_text("-v")
    outer = tmp_path / "outer.args"
    outer.write_text(f"-n 'two words' @{inner} ''\n")
    expanded = expand_command_files(["first", f"@{outer}", "@", "last"])
    # No nesting: @inner stays a literal word; "@" alone is a parameter.
    assert expanded == ["first", "-n", "two words", f"@{inner}", "", "@", "last"]


def test_command_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.args"
    with pytest.raises(CommandLineError) as info:
        expand_command_files(["-v", f"@{missing}"])
    assert info.value.message == f"Cannot open command file '{missing}'"
    # A directory opens and reads as nothing, like a C++ ifstream.
    assert expand_command_files([f"@{tmp_path}", "x"]) == ["x"]


def test_command_file_bytes_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "raw.args"
    path.write_bytes(b"-aet \xff\xfe")
    (word,) = expand_command_files([f"@{path}"])[1:]
    assert word.encode(sys.getfilesystemencoding(), "surrogateescape") == b"\xff\xfe"


# -- numbers -------------------------------------------------------------------------

# Expected values were produced by glibc's sscanf on the development machine.
SCANF_CASES = [
    ("", None, None),
    (" ", None, None),
    ("0x", 0, 0),
    ("0xg", 0, 0),
    ("0x1g", 0, 1),
    ("0X1F", 0, 31),
    ("-0x10", 0, -16),
    ("08", 8, 0),
    ("0", 0, 0),
    ("-", None, None),
    ("+", None, None),
    ("+-1", None, None),
    (" +5", 5, 5),
    ("\t-5", 18446744073709551611, -5),
    ("\v7", 7, 7),
    ("-5", 18446744073709551611, -5),
    ("99999999999999999999", ULONG_MAX, LONG_MAX),
    ("-99999999999999999999", ULONG_MAX, LONG_MIN),
    ("18446744073709551615", ULONG_MAX, LONG_MAX),
    ("18446744073709551616", ULONG_MAX, LONG_MAX),
    ("9223372036854775808", 9223372036854775808, LONG_MAX),
    ("-9223372036854775809", 9223372036854775807, LONG_MIN),
    ("0b1", 0, 0),
    ("077", 77, 63),
    ("1e3", 1, 1),
    ("  -0", 0, 0),
    ("- 5", None, None),
    ("104abc", 104, 104),
    ("\u0661\u0662", None, None),  # non-ASCII digits do not count
]


@pytest.mark.parametrize(("text", "unsigned", "signed"), SCANF_CASES)
def test_scanf_semantics(text: str, unsigned: int | None, signed: int | None) -> None:
    assert scan_unsigned(text) == unsigned
    assert scan_signed(text) == signed


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


LIBC = _libc()


@pytest.mark.skipif(LIBC is None, reason="needs glibc's sscanf as the oracle")
@given(st.text(alphabet=" \t+-0123456789xXabcfg\n", max_size=24))
def test_scanf_matches_libc(text: str) -> None:
    assert LIBC is not None
    raw = text.encode()
    unsigned = ctypes.c_ulong(0)
    signed = ctypes.c_long(0)
    got_u = LIBC.sscanf(raw, b"%lu", ctypes.byref(unsigned))
    got_s = LIBC.sscanf(raw, b"%li", ctypes.byref(signed))
    assert scan_unsigned(text) == (unsigned.value if got_u == 1 else None)
    assert scan_signed(text) == (signed.value if got_s == 1 else None)


def test_unsigned_option_values() -> None:
    assert value_unsigned("--n", "5", 1, 10) == 5
    assert value_unsigned("--n", " +7x", 1, 10) == 7
    with pytest.raises(CommandLineError, match=r"^Invalid value for option --n \(-1\)$"):
        value_unsigned("--n", "-1", 1)
    with pytest.raises(CommandLineError, match=r"^Invalid value for option --n \(  -1\)$"):
        value_unsigned("--n", "  -1", 1)
    # A tab is not a blank for DCMTK's minus check: the value wraps and overflows.
    with pytest.raises(CommandLineError, match=r"\(overflow: \t-1\)$"):
        value_unsigned("--n", "\t-1", 1, 10)
    with pytest.raises(CommandLineError, match=r"^Invalid value for option --n \(abc\)$"):
        value_unsigned("--n", "abc")
    with pytest.raises(CommandLineError, match=r"^Invalid value for option --n$"):
        value_unsigned("--n", "")
    with pytest.raises(CommandLineError, match=r"\(underflow: 0x10\)$"):
        value_unsigned("--n", "0x10", 1)
    with pytest.raises(CommandLineError, match=r"\(overflow: 11\)$"):
        value_unsigned("--n", "11", 1, 10)


def test_signed_option_values() -> None:
    assert value_signed("--t", "0x2", 1) == 2
    assert value_signed("--t", "010", 1) == 8
    assert value_signed("--t", "-1", -1) == -1
    with pytest.raises(CommandLineError, match=r"\(underflow: -2\)$"):
        value_signed("--t", "-2", -1)
    with pytest.raises(CommandLineError, match=r"\(underflow:  -0\)$"):
        value_signed("--t", " -0", 1)
    with pytest.raises(CommandLineError, match=r"^Invalid value for option --t \(x\)$"):
        value_signed("--t", "x", 1)


def test_parameter_values() -> None:
    assert param_unsigned("104abc", 1, 65535) == 104
    cases = {
        "abc": "Invalid parameter value abc",
        "": "Invalid parameter value ",
        "0": "Invalid parameter value 0 (underflow)",
        "0x10": "Invalid parameter value 0x10 (underflow)",
        "65536": "Invalid parameter value 65536 (overflow)",
        "-5": "Invalid parameter value -5 (overflow)",
    }
    for raw, message in cases.items():
        with pytest.raises(CommandLineError) as info:
            param_unsigned(raw, 1, 65535)
        assert info.value.message == message


# -- messages and help -------------------------------------------------------------------


def test_error_block() -> None:
    header = "$rcsid$\n\nprog: what it does\n"
    assert error_block(header, "Too many parameters") == (
        "$rcsid$\n\nprog: what it does\nerror: Too many parameters\n"
    )


def test_arguments_message_counts_but_hides_empty_arguments() -> None:
    parsed = TABLE.parse(["-v", "-n", "", "h", "1"], "/usr/bin/prog")
    assert arguments_message(parsed) == (
        "calling '/usr/bin/prog' with 5 arguments: '--verbose' '--name' 'h' '1' \n"
    )


def test_usage_layout() -> None:
    text = TABLE.usage("HEADER\n", "prog")
    assert text == (
        "HEADER\n"
        "usage: prog [options] peer port\n"
        "\n"
        "parameters:\n"
        "  peer          the peer\n"
        "  port          the port\n"
        "\n"
        "general options:\n"
        "  -h      --help      help text\n"
        "  -v      --verbose   talk\n"
        "  -q      --quiet     hush\n"
        "  -n      --name      [n]ame: string\n"
        "                      a name\n"
        "                      second line\n"
        "  +p      --pair      [a], [b]: string\n"
        "                      two values\n"
        "more:\n"
        "  sub group:\n"
        "          --a-rather-long-option  widens the column\n"
        "    -x    --x                     \n"
        "\n"
    )


def test_option_lookup() -> None:
    assert TABLE.option("-n") is TABLE.option("--name")
    assert TABLE.option("--nope") is None
    assert len(TABLE.options()) == 7
