"""echoscu's start-up rules (module head of `echoprobe.cli.echoscu`): what a run imports, the
garbage collector left as it was for importers, output flushed before the fast exit."""

from __future__ import annotations

import signal
import subprocess
import sys


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_importing_leaves_the_garbage_collector_as_it_was() -> None:
    code = (
        "import gc, sys\n"
        "import echoprobe.cli.echoscu\n"
        "on = gc.isenabled()\n"
        "del sys.modules['echoprobe.cli.echoscu']\n"
        "gc.disable()\n"
        "import echoprobe.cli.echoscu\n"
        "print(on, gc.isenabled())\n"
    )
    assert _python(code) == "True False"


# What echoscu's plain path must not import: each costs start-up time DCMTK does not pay
# (enum and functools together ~3 ms; see benchmarks/README.md, W5).
HEAVY = (
    "argparse",
    "asyncio",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "importlib",
    "logging",
    "re",
    "socket",
    "ssl",
    "types",
    "typing",
    "echoprobe.net.association",
    "echoprobe.results",
    "echoprobe.ul.connection",
    # loaded only when asked for: -lc files, and -d's association dumps
    "echoprobe.report.dcmtk_appenders",
    "echoprobe.report.dcmtk_config",
    "echoprobe.report.dcmtk_dump",
    "echoprobe.report.dcmtk_layout",
    "echoprobe.report.dcmtk_tree",
)


def heavy_modules_after(argv: list[str]) -> tuple[str, str]:
    """Run `echoscu argv` in a fresh interpreter: its exit code and the heavy modules it
    imported, as printed lines."""
    code = (
        "import sys\n"
        "from echoprobe.cli import echoscu\n"
        "try:\n"
        f"    echoscu.main({['echoscu', *argv]!r})\n"
        "except SystemExit as stop:\n"
        "    print('exit', stop.code)\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n"
    )
    exit_line, modules_line = _python(code).splitlines()[-2:]
    return exit_line, modules_line


def test_a_failed_echo_imports_no_heavy_module() -> None:
    assert heavy_modules_after(["-to", "1", "127.0.0.1", "1"]) == ("exit 1", "[]")


def test_the_fast_exit_flushes_and_keeps_the_exit_code() -> None:
    """`main()` on the process's own command line ends with `os._exit`: piped output must
    still arrive, and the exit code be DCMTK's."""
    version = subprocess.run(
        [sys.executable, "-m", "echoprobe.cli.echoscu", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0
    assert "echoscu" in version.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "echoprobe.cli.echoscu", "-to", "1", "127.0.0.1", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "Connection refused" in refused.stderr + refused.stdout


def test_a_reader_that_goes_away_ends_it_by_sigpipe_as_dcmtk() -> None:
    """`echoscu -d ... 2>&1 | head`: DCMTK dies by SIGPIPE (the shell says 141); so does ours,
    not with Python's BrokenPipeError and exit 1."""
    child = subprocess.Popen(
        [sys.executable, "-m", "echoprobe.cli.echoscu", "-d", "-to", "1", "127.0.0.1", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert child.stderr is not None
    child.stderr.close()  # before it writes its first debug line (start-up takes ~10 ms)
    assert child.wait(timeout=60) == -signal.SIGPIPE
