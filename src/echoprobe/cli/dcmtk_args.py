"""DCMTK's command-line conventions (OFCommandLine / OFConsoleApplication), re-implemented.

Rules, as DCMTK 3.6.8 behaves (ofstd/libsrc/ofcmdln.cc, ofconapp.cc):

* ``@file`` arguments are replaced by the words of the file before anything else; files do
  not nest. Words split at blanks, tabs, CR and LF; ``'...'`` or ``"..."`` quote, the other
  quote is literal inside, ``''`` is an empty argument, an unclosed quote is accepted.
* An argument is an option when it has at least two characters, starts with ``-`` or ``+``
  and its second character is not a digit; anything else is a parameter.
* Options are recorded under their long name; their values are the next N arguments,
  taken verbatim. Parsing stops at the first unknown option or missing value.
* The last occurrence of an option wins. In a rightmost-wins group ("option block") the
  members are examined in evaluation order and a member counts only when it appears to the
  right of the previous match, so the rightmost one ends up applied.
* Numbers follow C's ``sscanf``: ``%lu`` for unsigned values, ``%li`` for signed ones.
* Errors are a four-line block on stderr: rcsid, empty line, ``name: description``,
  ``error: message``.

Everything here is pure: no printing, no exits. The option table is data (``Option``,
``Group``, ``Param``); only an option's meaning needs code.
"""

from __future__ import annotations

import os
import sys

from echoprobe._values import value

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Final

__all__ = [
    "LONG_MAX",
    "LONG_MIN",
    "ULONG_MAX",
    "CommandLineError",
    "Group",
    "Option",
    "OptionTable",
    "Param",
    "ParseStatus",
    "ParsedArgs",
    "arguments_message",
    "error_block",
    "expand_command_files",
    "is_option",
    "param_unsigned",
    "scan_signed",
    "scan_unsigned",
    "value_signed",
    "value_unsigned",
]

# The C types of a 64-bit Linux build (OFCmdUnsignedInt / OFCmdSignedInt are long).
ULONG_MAX = 2**64 - 1
LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)

_C_SPACE = " \t\n\v\f\r"
_DIGITS = "0123456789"
_HEX_DIGITS = "0123456789abcdefABCDEF"
_OCT_DIGITS = "01234567"
_FS_ENCODING = sys.getfilesystemencoding()


class CommandLineError(Exception):
    """A command-line error; ``message`` is the text after ``error: ``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------------------
# Option table
# --------------------------------------------------------------------------------------


@value
class Option:
    """One option: spellings, number of values and help text."""

    long: str
    short: str = ""
    values: int = 0
    value_help: str = ""  # first help line when the option takes values, e.g. "[n]umber: ..."
    help: str = ""  # may contain newlines
    exclusive: bool = False  # like -h/--version: skips the parameter-count check


@value
class Group:
    """A group (``subgroup=False``) or subgroup heading in the option list."""

    title: str
    subgroup: bool = False
    long_width: int = 0  # column widths for this group; 0: the table's defaults
    short_width: int = 0


@value
class Param:
    """A mandatory parameter."""

    name: str
    help: str


class ParseStatus:
    """How a parse ended (ofcmdln.cc's E_ParseStatus). Plain strings, not an ``Enum``:
    importing ``enum`` costs ``echoscu`` about 3 ms of its start-up."""

    NORMAL: Final = "normal"
    NO_ARGUMENTS: Final = "no arguments"
    EXCLUSIVE: Final = "exclusive option"
    UNKNOWN_OPTION: Final = "unknown option"
    MISSING_VALUE: Final = "missing value"
    MISSING_PARAMETER: Final = "missing parameter"
    TOO_MANY_PARAMETERS: Final = "too many parameters"


def is_option(arg: str) -> bool:
    """DCMTK's test: ``-``/``+``, at least two characters, second one not a digit."""
    return len(arg) >= 2 and arg[0] in "+-" and arg[1] not in _DIGITS


class OptionTable:
    """The options, groups and parameters of a program, in help-text order."""

    __slots__ = ("_lookup", "entries", "long_width", "param_width", "params", "short_width")

    def __init__(
        self,
        entries: Iterable[Option | Group],
        params: Iterable[Param],
        *,
        long_width: int,
        short_width: int,
        param_width: int,
    ) -> None:
        self.entries = tuple(entries)
        self.params = tuple(params)
        self.long_width = long_width
        self.short_width = short_width
        self.param_width = param_width
        lookup: dict[str, Option] = {}
        for entry in self.entries:
            if isinstance(entry, Option):
                # DCMTK searches in table order and takes the first match.
                lookup.setdefault(entry.long, entry)
                if entry.short:
                    lookup.setdefault(entry.short, entry)
        self._lookup = lookup

    def option(self, spelling: str) -> Option | None:
        """The option spelled ``spelling`` (long or short name), if any."""
        return self._lookup.get(spelling)

    def options(self) -> tuple[Option, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, Option))

    def parse(self, args: Sequence[str], program: str) -> ParsedArgs:
        """Tokenise already expanded arguments (argv without argv[0])."""
        out: list[str] = []
        option_positions: list[int] = []
        param_positions: list[int] = []
        exclusive = False

        def done(status: str, message: str) -> ParsedArgs:
            return ParsedArgs(
                program=program,
                args=tuple(out),
                option_positions=tuple(option_positions),
                param_positions=tuple(param_positions),
                exclusive=exclusive,
                status=status,
                message=message,
            )

        index = 0
        total = len(args)
        while index < total:
            arg = args[index]
            if not is_option(arg):
                param_positions.append(len(out))
                out.append(arg)
                index += 1
                continue
            option = self._lookup.get(arg)
            if option is None:
                out.append(arg)
                return done(ParseStatus.UNKNOWN_OPTION, f"Unknown option {arg}")
            option_positions.append(len(out))
            out.append(option.long)
            exclusive = exclusive or option.exclusive
            if option.values >= total - index:
                return done(ParseStatus.MISSING_VALUE, f"Missing value for option {option.long}")
            out.extend(args[index + 1 : index + 1 + option.values])
            index += 1 + option.values
        if not out:
            return done(ParseStatus.NO_ARGUMENTS, "")
        if exclusive:
            return done(ParseStatus.EXCLUSIVE, "")
        count = len(param_positions)
        if count < len(self.params):
            return done(
                ParseStatus.MISSING_PARAMETER, f"Missing parameter {self.params[count].name}"
            )
        if count > len(self.params):
            return done(ParseStatus.TOO_MANY_PARAMETERS, "Too many parameters")
        return done(ParseStatus.NORMAL, "")

    # -- help text (OFCommandLine::getSyntaxString/getParamString/getOptionString) -------

    def usage(self, header: str, name: str) -> str:
        """The ``-h`` text: header, usage line, parameters, then options by group."""
        syntax = (" [options]" if self.entries else "") + "".join(
            f" {param.name}" for param in self.params
        )
        text = f"{header}usage: {name}{syntax}\n"
        params = self._param_text()
        if params:
            text += "\n" + params
        options = self._option_text()
        if options:
            text += "\n" + options
        return text + "\n"

    def _param_text(self) -> str:
        width = max([self.param_width, *(len(param.name) for param in self.params)])
        lines = ["parameters:\n"] if self.params else []
        for param in self.params:
            help_text = param.help.replace("\n", "\n" + " " * (2 + width + 2))
            lines.append(f"  {param.name.ljust(width)}  {help_text}\n")
        return "".join(lines)

    def _option_text(self) -> str:
        out: list[str] = []
        short_size, long_size = self.short_width, self.long_width
        indent = 0
        new_group = True
        entries = self.entries
        for position, entry in enumerate(entries):
            if isinstance(entry, Group):
                new_group = True
                long_size = entry.long_width or self.long_width
                short_size = entry.short_width or self.short_width
                if entry.subgroup:
                    out.append(f"  {entry.title}\n")
                    indent = 4
                else:
                    out.append(f"{entry.title}\n")
                    indent = 2
                continue
            if new_group:
                # Columns widen to the longest spelling up to the next (sub)group heading.
                for follower in entries[position:]:
                    if isinstance(follower, Group):
                        break
                    short_size = max(short_size, len(follower.short))
                    long_size = max(long_size, len(follower.long))
                new_group = False
            line = " " * indent
            if short_size > 0:
                line += entry.short.ljust(short_size) + "  "
            line += entry.long.ljust(long_size) + "  "
            if entry.value_help:
                line += entry.value_help + "\n" + " " * (indent + short_size + long_size + 2)
                if short_size > 0:
                    line += "  "
            continuation = "\n" + " " * (indent + short_size + long_size + 4)
            line += entry.help.replace("\n", continuation)
            out.append(line + "\n")
        return "".join(out)


@value
class ParsedArgs:
    """The expanded argument list as DCMTK keeps it: options under their long names."""

    program: str
    args: tuple[str, ...]
    option_positions: tuple[int, ...]  # indexes into args
    param_positions: tuple[int, ...]  # indexes into args
    exclusive: bool
    status: str  # a `ParseStatus`
    message: str  # the error text for error statuses, else ""

    @property
    def ok(self) -> bool:
        return self.status in (ParseStatus.NORMAL, ParseStatus.EXCLUSIVE)

    def has(self, long: str) -> bool:
        return any(self.args[pos] == long for pos in self.option_positions)

    def find(self, long: str) -> int | None:
        """Position of the rightmost occurrence of option ``long``."""
        for pos in reversed(self.option_positions):
            if self.args[pos] == long:
                return pos
        return None

    def find_all(self, long: str) -> tuple[int, ...]:
        """Positions of every occurrence, left to right (cumulative options)."""
        return tuple(pos for pos in self.option_positions if self.args[pos] == long)

    def value(self, position: int, index: int = 0) -> str:
        """Value ``index`` of the option at ``position``."""
        return self.args[position + 1 + index]

    def values_of(self, long: str) -> tuple[str, ...]:
        """The first value of every occurrence of ``long``, left to right."""
        return tuple(self.value(pos) for pos in self.find_all(long))

    def block(self, members: Sequence[str]) -> list[tuple[str, int]]:
        """Members of a rightmost-wins group that DCMTK acts on, in evaluation order.

        ``members`` are long names in the order the program checks them; the last entry
        returned is the one that wins.
        """
        found: list[tuple[str, int]] = []
        limit = -1
        for long in members:
            pos = self.find(long)
            if pos is not None and pos > limit:
                found.append((long, pos))
                limit = pos
        return found

    @property
    def param_count(self) -> int:
        return len(self.param_positions)

    def param(self, number: int) -> str:
        """Parameter ``number`` (1-based)."""
        return self.args[self.param_positions[number - 1]]


# --------------------------------------------------------------------------------------
# Command files
# --------------------------------------------------------------------------------------


def expand_command_files(argv: Sequence[str]) -> list[str]:
    """Replace every ``@file`` argument by the words of the file (one level only).

    Raises CommandLineError("Cannot open command file '<name>'").
    """
    expanded: list[str] = []
    for arg in argv:
        if len(arg) < 2 or arg[0] != "@":
            expanded.append(arg)
            continue
        name = arg[1:]
        try:
            if os.path.isdir(name):
                data = b""  # a C++ ifstream opens a directory and reads nothing
            else:
                with open(name, "rb") as handle:
                    data = handle.read()
        except OSError:
            raise CommandLineError(f"Cannot open command file '{name}'") from None
        expanded.extend(split_command_file(data.decode(_FS_ENCODING, "surrogateescape")))
    return expanded


def split_command_file(text: str) -> list[str]:
    """Words of a command file, with DCMTK's quoting rules."""
    words: list[str] = []
    value = ""
    quote = ""
    for char in text:
        if char in "\"'":
            if quote == char:
                words.append(value)  # closing quote: also yields empty words
                value = ""
                quote = ""
            elif not quote:
                quote = char
            else:
                value += char
        elif char in " \t\n\r":
            if quote:
                value += char
            elif value:
                words.append(value)
                value = ""
        else:
            value += char
    if value:
        words.append(value)
    return words


# --------------------------------------------------------------------------------------
# Numbers (glibc sscanf "%lu" and "%li")
# --------------------------------------------------------------------------------------


def _take(text: str, start: int, digits: str) -> str:
    end = start
    while end < len(text) and text[end] in digits:
        end += 1
    return text[start:end]


def scan_unsigned(text: str) -> int | None:
    """``sscanf(text, "%lu")``: None when nothing converts.

    Leading white space and one sign are skipped, trailing junk is ignored, a negative
    value wraps modulo 2**64 and an out-of-range magnitude gives ULONG_MAX.
    """
    pos = len(text) - len(text.lstrip(_C_SPACE))
    negative = False
    if pos < len(text) and text[pos] in "+-":
        negative = text[pos] == "-"
        pos += 1
    digits = _take(text, pos, _DIGITS)
    if not digits:
        return None
    magnitude = int(digits)
    if magnitude > ULONG_MAX:
        return ULONG_MAX
    return (-magnitude) % (ULONG_MAX + 1) if negative else magnitude


def scan_signed(text: str) -> int | None:
    """``sscanf(text, "%li")``: decimal, ``0x`` hexadecimal or leading-zero octal.

    Out-of-range values clamp to LONG_MIN/LONG_MAX; trailing junk is ignored; ``0x``
    without hex digits reads as 0 (glibc).
    """
    pos = len(text) - len(text.lstrip(_C_SPACE))
    negative = False
    if pos < len(text) and text[pos] in "+-":
        negative = text[pos] == "-"
        pos += 1
    if text[pos : pos + 2] in ("0x", "0X"):
        digits = _take(text, pos + 2, _HEX_DIGITS)
        magnitude = int(digits, 16) if digits else 0
    elif text[pos : pos + 1] == "0":
        magnitude = int(_take(text, pos, _OCT_DIGITS), 8)
    else:
        digits = _take(text, pos, _DIGITS)
        if not digits:
            return None
        magnitude = int(digits)
    value = -magnitude if negative else magnitude
    return max(LONG_MIN, min(LONG_MAX, value))


def _value_error(option: str, raw: str, detail: str = "") -> CommandLineError:
    # DCMTK appends the value only when it is not empty.
    if not raw:
        return CommandLineError(f"Invalid value for option {option}")
    return CommandLineError(f"Invalid value for option {option} ({detail}{raw})")


def value_unsigned(option: str, raw: str, low: int | None = None, high: int | None = None) -> int:
    """An unsigned option value with DCMTK's checks (getValueAndCheckMin/MinMax)."""
    value = scan_unsigned(raw)
    # DCMTK rejects a minus sign after leading blanks (not after tabs) for options only.
    if value is None or raw.lstrip(" ")[:1] == "-":
        raise _value_error(option, raw)
    if low is not None and value < low:
        raise _value_error(option, raw, "underflow: ")
    if high is not None and value > high:
        raise _value_error(option, raw, "overflow: ")
    return value


def value_signed(option: str, raw: str, low: int | None = None, high: int | None = None) -> int:
    """A signed option value with DCMTK's checks."""
    value = scan_signed(raw)
    if value is None:
        raise _value_error(option, raw)
    if low is not None and value < low:
        raise _value_error(option, raw, "underflow: ")
    if high is not None and value > high:
        raise _value_error(option, raw, "overflow: ")
    return value


def param_unsigned(raw: str, low: int, high: int) -> int:
    """An unsigned parameter (getParamAndCheckMinMax): negatives wrap, no sign check."""
    value = scan_unsigned(raw)
    if value is None:
        raise CommandLineError(f"Invalid parameter value {raw}")
    if value < low:
        raise CommandLineError(f"Invalid parameter value {raw} (underflow)")
    if value > high:
        raise CommandLineError(f"Invalid parameter value {raw} (overflow)")
    return value


# --------------------------------------------------------------------------------------
# Output texts
# --------------------------------------------------------------------------------------


def error_block(header: str, message: str) -> str:
    """DCMTK's error output: the program header followed by ``error: <message>``."""
    return f"{header}error: {message}\n"


def arguments_message(parsed: ParsedArgs) -> str:
    """The ``--arguments`` message (logged at forced INFO; it ends in a newline).

    Empty arguments count but are not printed; every printed one is followed by a blank.
    """
    shown = "".join(f"'{arg}' " for arg in parsed.args if arg)
    return f"calling '{parsed.program}' with {len(parsed.args)} arguments: {shown}\n"
