"""Exit codes of the `echoprobe` command (the `echoscu` drop-in keeps DCMTK's own).

0   every target succeeded (every C-ECHO returned 0000H)
1   at least one target failed (or `--fail-on` / `--min-success` said so)
2   usage error (bad arguments, unreadable target file)
3   internal error (a bug: a record with outcome internal_error was written)
130 interrupted by SIGINT (Ctrl-C); 143 terminated by SIGTERM
141 the reader of the records went away (stdout closed, e.g. `| head`): a quiet stop, the
    status a program killed by SIGPIPE has
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
SOME_FAILED: Final = 1
USAGE: Final = 2
INTERNAL: Final = 3
INTERRUPTED: Final = 130
TERMINATED: Final = 143
OUTPUT_CLOSED: Final = 141
