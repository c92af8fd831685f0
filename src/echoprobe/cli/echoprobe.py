"""`echoprobe`: the command for fleets and load — `sweep`, `load`, `scp`, `demo`,
`check` (a monitoring plugin), `exporter` (Prometheus) and `inventory`.

Each subcommand lives in its own module `cli/cmd_<name>.py`, exposing
`register(subparsers)`, which adds its parser and sets `func` to a callable taking the parsed
namespace and returning the exit code. Exit codes are documented in `cli/exit_codes.py`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from echoprobe import __version__

SUBCOMMANDS = ("sweep", "load", "merge", "scp", "demo", "check", "exporter", "inventory")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line (and where to find the help) instead of
    the whole usage text: exit 2, as every usage error of the `echoprobe` commands."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="echoprobe",
        description="High-concurrency DICOM Verification (C-ECHO): sweep fleets, load-test "
        "SCPs, run a test SCP.",
    )
    parser.add_argument("--version", action="version", version=f"echoprobe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"echoprobe.cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"echoprobe.cli.cmd_{name}":
                raise
            continue  # a subcommand not built yet
        module.register(sub)
    return parser


def _tune_garbage_collector() -> None:
    # Measured on 10,000-peer sweeps: 16 % of the time went to the cyclic collector scanning
    # long-lived objects after every 700 allocations. Freezing what start-up created and
    # collecting the young generation less often keeps that down; nothing here relies on
    # prompt collection of cycles.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _tune_garbage_collector()
    code: int = args.func(args)
    return code


def run() -> None:
    sys.exit(main())
