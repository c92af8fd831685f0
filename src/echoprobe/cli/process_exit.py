"""Ending a command's process as soon as its output is flushed.

`echoscu` (run in loops by scripts) and `check_dicom` (started by a monitoring server for every
check) are one process per task: the interpreter's teardown of every module they loaded is a
large share of their cost and tells nobody anything, so they end with `os._exit`. A stream that
cannot be flushed (closed, a broken pipe) leaves the ending to the interpreter, which reports
it as it always does. Only `os` and `sys` here: echoscu's start-up path imports this module.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: its import is part of echoscu's start-up cost
if TYPE_CHECKING:
    from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr, then end the process with `code`, skipping the teardown."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)
