"""Run the per-peer interop suite and write the published matrix.

    python -m tests.interop.matrix                      # writes docs/interop-matrix.md
    python -m tests.interop.matrix --output /tmp/m.md -- -x

The rows come from the tests' `@matrix(...)` marks (tests/interop/conftest.py writes the
table when the session ends). The exit code is pytest's: a failed case fails the run, and the
page still says which case failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = ROOT / "docs" / "interop-matrix.md"
SUITE_LIMIT = 300  # seconds; the suite takes well under a minute


def suite_files() -> list[str]:
    """The per-peer interop tests: tests/interop/test_*_interop.py that carry matrix rows."""
    return sorted(
        str(path.relative_to(ROOT))
        for path in HERE.glob("test_*_interop.py")
        if "@matrix(" in path.read_text(encoding="utf-8")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.interop.matrix")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    env = {**os.environ, "ECHOPROBE_INTEROP_MATRIX": str(args.output.resolve())}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, *suite_files(), *args.pytest_args],
        cwd=ROOT,
        env=env,
        timeout=SUITE_LIMIT,
        check=False,
    )
    print(f"matrix written to {args.output}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
