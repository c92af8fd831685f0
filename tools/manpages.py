"""Generate the man pages and shell completions from the commands' own option tables.

    python tools/manpages.py            # (re)write share/ from the parsers
    python tools/manpages.py --check    # exit 1 when share/ is out of date (CI, tests)

Rules:
- The option tables are the only source: `echoscu`'s DCMTK-style `OptionTable`, and the
  argparse parsers of `echoprobe` (every subcommand) and `check_dicom`. Nothing is written by
  hand here but the short prose each page opens with, so a new option appears in the man page
  and in the completions the next time this runs.
- Output goes to `share/` in the layout the wheel installs (hatch `shared-data`):
  `share/man/man1/*.1`, `share/bash-completion/completions/*`, `share/zsh/site-functions/_*`,
  `share/fish/vendor_completions.d/*.fish`; so `man echoscu` and tab completion work after
  `pip install`.
- Deterministic: no dates, no paths, no version of the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from echoprobe import __version__
from echoprobe.cli.cmd_check import build_parser as build_check_parser
from echoprobe.cli.dcmtk_args import Group, Option
from echoprobe.cli.echoprobe import build_parser as build_echoprobe_parser
from echoprobe.cli.echoscu_options import TABLE as ECHOSCU_TABLE

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "echoprobe " + __version__


@dataclass(frozen=True, slots=True)
class Flag:
    """One option as the completions need it."""

    spellings: tuple[str, ...]
    takes_value: bool
    help: str
    choices: tuple[str, ...] = ()
    file: bool = False


# --- roff ---------------------------------------------------------------------------------------


def esc(text: str) -> str:
    """Text safe in roff: backslashes, leading dots/quotes, and hyphens of option names."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        lines.append("\\&" + line if line[:1] in (".", "'") else line)
    return "\n".join(lines)


def header(name: str, summary: str) -> list[str]:
    title = esc(name.upper())
    return [
        f'.TH {title} 1 "" "{SOURCE}" "User Commands"',
        ".SH NAME",
        f"{esc(name)} \\- {esc(summary)}",
    ]


def argparse_options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        yield action


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        meta = action.metavar
        return " " + (" ".join(meta) if isinstance(meta, tuple) else str(meta))
    if action.choices:
        return " {" + ",".join(str(c) for c in action.choices) + "}"
    return " " + action.dest.upper()


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(default)" in text:
        text = text % {"default": action.default}
    return text.replace("%%", "%")


def argparse_section(parser: argparse.ArgumentParser) -> list[str]:
    """OPTIONS of one argparse parser, by argument group."""
    out: list[str] = []
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)
        ]
        if not actions:
            continue
        title = group.title or "options"
        out.append(f".SS {esc(title)}")
        for action in actions:
            meta = _metavar(action)
            if action.option_strings:
                names = ", ".join(f"\\fB{esc(s)}\\fR{esc(meta)}" for s in action.option_strings)
            else:
                meta_name = action.metavar if isinstance(action.metavar, str) else action.dest
                names = f"\\fI{esc(meta_name)}\\fR"
            out += [".TP", names, esc(_help(action)) or "\\&"]
    return out


def echoscu_page() -> str:
    lines = header("echoscu", "DICOM verification (C-ECHO) SCU, a drop-in for DCMTK's")
    lines += [
        ".SH SYNOPSIS",
        "\\fBechoscu\\fR [\\fIoptions\\fR] \\fIpeer\\fR \\fIport\\fR",
        ".SH DESCRIPTION",
        esc(
            "echoscu sends C-ECHO requests to a DICOM peer (a Verification SCP) and reports "
            "the result. It takes DCMTK 3.6.8's options, prints its log lines and returns its "
            "exit codes, so scripts written for DCMTK's echoscu keep working; it is part of "
            "echoprobe, whose `echoprobe sweep` verifies many peers at once."
        ),
        ".SH PARAMETERS",
    ]
    for param in ECHOSCU_TABLE.params:
        lines += [".TP", f"\\fI{esc(param.name)}\\fR", esc(param.help)]
    lines.append(".SH OPTIONS")
    for entry in ECHOSCU_TABLE.entries:
        if isinstance(entry, Group):
            title = entry.title.rstrip(":")
            lines.append(
                f".SS {esc(title)}" if not entry.subgroup else f".PP\n\\fI{esc(title)}\\fR"
            )
            continue
        names = ", ".join(f"\\fB{esc(s)}\\fR" for s in (entry.short, entry.long) if s)
        body = "\n".join(part for part in (entry.value_help, entry.help) if part)
        lines += [".TP", names, esc(body).replace("\n", "\n.br\n") or "\\&"]
    lines += [
        ".SH EXIT STATUS",
        esc(
            "As DCMTK's echoscu: 0 when every C-ECHO succeeded; otherwise the DCMTK exit code "
            "for the failure (see docs/echoscu-behavior.md)."
        ),
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBDCMDICTPATH\\fR",
        esc("the data dictionary, as DCMTK reads it (only for -d dumps)."),
        ".SH SEE ALSO",
        "\\fBechoprobe\\fR(1), \\fBcheck_dicom\\fR(1), \\fBstorescp\\fR(1)",
    ]
    return "\n".join(lines) + "\n"


def echoprobe_page() -> str:
    parser = build_echoprobe_parser()
    lines = header("echoprobe", "high-concurrency DICOM Verification (C-ECHO)")
    lines += [
        ".SH SYNOPSIS",
        "\\fBechoprobe\\fR \\fIcommand\\fR [\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        esc(parser.description or ""),
        ".SH COMMANDS",
    ]
    for name, sub in subcommands(parser):
        lines += [".TP", f"\\fB{esc(name)}\\fR", esc(sub.description or "")]
    for name, sub in subcommands(parser):
        lines.append(f".SH ECHOPROBE {esc(name.upper())}")
        lines += [".nf", esc(sub.format_usage().strip()), ".fi"]
        lines += argparse_section(sub)
        if sub.epilog:
            lines += [".PP", ".nf", esc(sub.epilog.rstrip()), ".fi"]
    lines += [".SH SEE ALSO", "\\fBechoscu\\fR(1), \\fBcheck_dicom\\fR(1)"]
    return "\n".join(lines) + "\n"


def check_page() -> str:
    parser = build_check_parser("check_dicom")
    lines = header("check_dicom", "monitoring plugin: verify a DICOM peer with C-ECHO")
    lines += [
        ".SH SYNOPSIS",
        ".nf",
        esc(parser.format_usage().strip()),
        ".fi",
        ".SH DESCRIPTION",
        esc(parser.description or ""),
        ".SH OPTIONS",
        *argparse_section(parser),
    ]
    if parser.epilog:
        lines += [".PP", ".nf", esc(parser.epilog.rstrip()), ".fi"]
    lines += [".SH SEE ALSO", "\\fBechoprobe\\fR(1), \\fBechoscu\\fR(1)"]
    return "\n".join(lines) + "\n"


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of each subcommand; `check` hands its arguments to check_dicom's own
    parser, which is the one documented (and completed) for it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = []
            for name, entry in action.choices.items():
                sub = entry
                if not isinstance(entry, argparse.ArgumentParser):
                    sub = build_check_parser(f"{parser.prog} {name}")
                found.append((str(name), sub))
            return found
    return []


# --- completions --------------------------------------------------------------------------------

_FILE_WORDS = ("FILE", "DIR", "PATH", "KEY", "CERT", "CA")


def argparse_flags(parser: argparse.ArgumentParser) -> list[Flag]:
    flags = []
    for action in argparse_options(parser):
        if not action.option_strings:
            continue
        meta = _metavar(action).strip().upper()
        flags.append(
            Flag(
                spellings=tuple(action.option_strings),
                takes_value=action.nargs != 0,
                help=_help(action).split("\n")[0][:70],
                choices=tuple(str(c) for c in action.choices or ()),
                file=any(word in meta for word in _FILE_WORDS),
            )
        )
    return flags


def echoscu_flags() -> list[Flag]:
    flags = []
    for entry in ECHOSCU_TABLE.entries:
        if isinstance(entry, Option):
            flags.append(
                Flag(
                    spellings=tuple(s for s in (entry.short, entry.long) if s),
                    takes_value=entry.values > 0,
                    help=entry.help.split("\n")[0][:70],
                    file="[f]ilename" in entry.value_help or "directory" in entry.value_help,
                )
            )
    return flags


def _words(flags: Iterable[Flag]) -> str:
    return " ".join(s for f in flags for s in f.spellings)


def bash_script(program: str, top: list[Flag], subs: dict[str, list[Flag]]) -> str:
    """A bash completion: subcommands first, then that subcommand's options."""
    func = "_" + program.replace("-", "_")
    cases = []
    for name, flags in subs.items():
        files = " ".join(s for f in flags if f.file for s in f.spellings)
        cases.append(
            f"        {name})\n"
            f'            opts="{_words(flags)}"\n'
            f'            files="{files}"\n'
            "            ;;"
        )
    top_files = " ".join(s for f in top if f.file for s in f.spellings)
    commands = " ".join(subs)
    return f"""# bash completion for {program} (generated by tools/manpages.py from its options)
{func}() {{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur="${{COMP_WORDS[COMP_CWORD]}}"; prev="${{COMP_WORDS[COMP_CWORD-1]}}"
        words=("${{COMP_WORDS[@]}}"); cword=$COMP_CWORD
    fi
    local commands="{commands}" command="" opts="{_words(top)}" files="{top_files}" i
    for ((i = 1; i < cword; i++)); do
        case " $commands " in *" ${{words[i]}} "*) command="${{words[i]}}"; break ;; esac
    done
    case "$command" in
{chr(10).join(cases) if cases else "        *) ;;"}
    esac
    if [[ -n "$prev" && " $files " == *" $prev "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ -z "$command" && -n "$commands" && "$cur" != [-+]* ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F {func} {program}
"""


def _zsh_quote(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("'", "'\\''")
        .replace("[", "\\[")
        .replace("]", "\\]")
        .replace(":", "\\:")
    )


def _zsh_specs(flags: Iterable[Flag]) -> list[str]:
    specs = []
    for flag in flags:
        action = (
            ":value:_files"
            if flag.file
            else (
                f":value:({' '.join(flag.choices)})"
                if flag.choices
                else (":value: " if flag.takes_value else "")
            )
        )
        for spelling in flag.spellings:
            specs.append(f"'{spelling}[{_zsh_quote(flag.help)}]{action}'")
    return specs


def zsh_script(program: str, top: list[Flag], subs: dict[str, list[Flag]]) -> str:
    lines = [
        f"#compdef {program}",
        f"# zsh completion for {program} (generated by tools/manpages.py)",
    ]
    func = "_" + program.replace("-", "_")
    lines.append(f"{func}() {{")
    if not subs:
        lines.append("    _arguments -s \\")
        lines += [f"        {spec} \\" for spec in _zsh_specs(top)]
        lines.append("        '*:argument:_default'")
        lines.append("}")
    else:
        lines.append("    local curcontext=$curcontext state line")
        lines.append("    _arguments -C \\")
        lines += [f"        {spec} \\" for spec in _zsh_specs(top)]
        lines.append("        '1:command:->command' '*::argument:->argument'")
        lines.append("    case $state in")
        lines.append("    command)")
        lines.append(f"        _values command {' '.join(subs)} ;;")
        lines.append("    argument)")
        lines.append("        case $line[1] in")
        for name, flags in subs.items():
            lines.append(f"        {name})")
            lines.append("            _arguments \\")
            lines += [f"                {spec} \\" for spec in _zsh_specs(flags)]
            lines.append("                '*:argument:_default' ;;")
        lines.append("        esac ;;")
        lines.append("    esac")
        lines.append("}")
    lines.append(f'{func} "$@"')
    return "\n".join(lines) + "\n"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(program: str, top: list[Flag], subs: dict[str, list[Flag]]) -> str:
    lines = [f"# fish completion for {program} (generated by tools/manpages.py)"]
    names = " ".join(subs)

    def flag_lines(flags: Iterable[Flag], condition: str) -> None:
        for flag in flags:
            if any(s.startswith("+") for s in flag.spellings):
                continue  # fish has no syntax for DCMTK's "+" options
            parts = [f"complete -c {program}"]
            if condition:
                parts.append(f"-n {_fish_quote(condition)}")
            for spelling in flag.spellings:
                if spelling.startswith("--"):
                    parts.append(f"-l {spelling[2:]}")
                elif len(spelling) == 2:
                    parts.append(f"-s {spelling[1:]}")
                else:  # DCMTK's -aet, -to: old-style options
                    parts.append(f"-o {spelling[1:]}")
            if flag.takes_value:
                parts.append("-r -F" if flag.file else "-r")
                if flag.choices:
                    parts.append(f"-a {_fish_quote(' '.join(flag.choices))}")
            parts.append(f"-d {_fish_quote(flag.help)}")
            lines.append(" ".join(parts))

    if subs:
        lines.append(f"complete -c {program} -f")
        first = _fish_quote("not __fish_seen_subcommand_from " + names)
        for name in subs:
            lines.append(f"complete -c {program} -n {first} -a {name}")
        flag_lines(top, "not __fish_seen_subcommand_from " + names)
        for name, flags in subs.items():
            flag_lines(flags, f"__fish_seen_subcommand_from {name}")
    else:
        flag_lines(top, "")
    return "\n".join(lines) + "\n"


# --- driver -------------------------------------------------------------------------------------


def cli_reference() -> str:
    """docs/reference/cli.md: each command's help, as the command prints it."""
    parts = [
        "# Commands",
        "",
        "Generated by `tools/manpages.py` from the commands' own option tables (the same text",
        "as `--help` and the man pages `echoprobe(1)`, `echoscu(1)`, `check_dicom(1)`).",
        "",
    ]
    echoprobe = build_echoprobe_parser()
    for name, sub in subcommands(echoprobe):
        parts += [f"## echoprobe {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    parts += ["## echoscu", "", "```text", ECHOSCU_TABLE.usage("", "echoscu").strip(), "```", ""]
    check = build_check_parser("check_dicom")
    parts += ["## check_dicom", "", "```text", check.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def generated() -> dict[Path, str]:
    """Every generated file (relative to the project root) and its text."""
    echoprobe = build_echoprobe_parser()
    subs = {name: argparse_flags(sub) for name, sub in subcommands(echoprobe)}
    top = argparse_flags(echoprobe)
    check = argparse_flags(build_check_parser("check_dicom"))
    scu = echoscu_flags()
    files = {
        Path("man/man1/echoscu.1"): echoscu_page(),
        Path("man/man1/echoprobe.1"): echoprobe_page(),
        Path("man/man1/check_dicom.1"): check_page(),
    }
    for program, program_top, program_subs in (
        ("echoprobe", top, subs),
        ("echoscu", scu, {}),
        ("check_dicom", check, {}),
    ):
        files[Path("bash-completion/completions") / program] = bash_script(
            program, program_top, program_subs
        )
        files[Path("zsh/site-functions") / f"_{program}"] = zsh_script(
            program, program_top, program_subs
        )
        files[Path("fish/vendor_completions.d") / f"{program}.fish"] = fish_script(
            program, program_top, program_subs
        )
    found = {Path("share") / relative: text for relative, text in files.items()}
    found[Path("docs/reference/cli.md")] = cli_reference()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", type=Path, default=ROOT, help="the project root to write in")
    args = parser.parse_args(argv)
    stale = []
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps usage to the terminal: fix it
    try:
        files = generated()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    for relative, text in files.items():
        path = args.out / relative
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(relative))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date (run python tools/manpages.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
