"""The `echoprobe` commands spell the same thing the same way, and say their defaults."""

from __future__ import annotations

import argparse

import pytest

from echoprobe.cli.echoprobe import build_parser
from echoprobe.options import Timeouts

DEADLINES = ("--connect-timeout", "--acse-timeout", "--dimse-timeout", "--release-timeout")


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise AssertionError("no subcommands")


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    for action in parser._actions:
        if flag in action.option_strings:
            return action
    raise AssertionError(f"{parser.prog} has no {flag}")


@pytest.mark.parametrize("command", ["sweep", "load"])
def test_every_deadline_option_has_help_and_its_default(command: str) -> None:
    parser = _subparser(command)
    for flag in (*DEADLINES, "--timeout"):
        action = _option(parser, flag)
        assert "default" in (action.help or ""), (command, flag)
    assert "-to" in _option(parser, "--connect-timeout").option_strings
    timeout_help = _option(parser, "--timeout").help or ""
    assert "absolute deadline" in timeout_help


def test_sweep_defaults_are_the_librarys() -> None:
    args = _subparser("sweep").parse_args(["127.0.0.1"])
    library = Timeouts()
    assert (args.connect_timeout, args.acse_timeout, args.dimse_timeout) == (
        library.connect,
        library.acse,
        library.dimse,
    )
    assert (args.release_timeout, args.timeout) == (library.release, library.total)


def test_sweep_names_match_the_other_commands_and_old_spellings_still_work() -> None:
    sweep = _subparser("sweep")
    assert sweep.parse_args(["h", "--repeat", "3"]).repeat == 3
    assert sweep.parse_args(["h", "-r", "4"]).repeat == 4  # hidden old spelling
    assert sweep.parse_args(["h", "--no-progress"]).no_progress
    assert sweep.parse_args(["h", "--no-live"]).no_progress  # hidden, `load`'s old name
    usage = sweep.format_help()
    assert "--no-live" not in usage
    assert "-r N" not in usage


def test_demo_names_match_and_old_spellings_still_work() -> None:
    demo = _subparser("demo")
    assert demo.parse_args(["--phase-timeout", "1.5"]).phase_timeout == 1.5
    assert demo.parse_args(["--timeout", "1.5"]).phase_timeout == 1.5  # hidden old spelling
    assert demo.parse_args(["--no-live"]).no_progress
    assert demo.parse_args([]).phase_timeout == 2.0
    text = demo.format_help()
    assert "--no-progress" in text
    assert "--timeout" not in text
    assert "--no-live" not in text


def test_fail_on_timeout_is_documented_and_means_every_timeout() -> None:
    sweep = _subparser("sweep")
    assert "'timeout'" in (_option(sweep, "--fail-on").help or "")
    fail_on = sweep.parse_args(["h", "--fail-on", "timeout"]).fail_on
    assert {"connect_timeout", "acse_timeout", "dimse_timeout", "deadline_exceeded"} <= fail_on
    assert "connection_refused" not in fail_on
