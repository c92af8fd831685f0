"""Run one harness under atheris: `python -m fuzz.harness TARGET [libFuzzer options] [corpus]`.

echoprobe and the harness are imported inside `atheris.instrument_imports()`, so that their
bytecode carries the coverage counters libFuzzer steers by; nothing of theirs may have been
imported before (the `fuzz` package's `__init__` imports nothing).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]

from fuzz import TARGETS, quiet


def load(target: str) -> Callable[[bytes], None]:
    """The `check` function of `fuzz/fuzz_<target>.py`."""
    if target not in TARGETS:
        raise SystemExit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    module = importlib.import_module(f"fuzz.fuzz_{target}")
    check: Callable[[bytes], None] = module.check
    return check


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m fuzz.harness TARGET [libFuzzer options] [corpus]")
    quiet()
    target = argv[1]
    with atheris.instrument_imports(include=["echoprobe", "fuzz"]):
        check = load(target)
    sys.setrecursionlimit(1000)  # a deep recursion is a finding, found early
    atheris.Setup([argv[0], *argv[2:]], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
