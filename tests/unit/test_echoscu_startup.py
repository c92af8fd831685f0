"""echoscu's start-up rules (module head of `echoprobe.cli.echoscu`): what a run imports, the
garbage collector left as it was for importers, output flushed before the fast exit."""

from __future__ import annotations

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


def test_an_echo_run_imports_no_heavy_module() -> None:
    """A whole (failing) echo: no asyncio, ssl, typing, re or dataclasses on the plain path."""
    code = (
        "import sys\n"
        "from echoprobe.cli import echoscu\n"
        "try:\n"
        "    echoscu.main(['echoscu', '-to', '1', '127.0.0.1', '1'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'ssl', 'asyncio', 'typing', 're', 'dataclasses', 'logging', 'argparse'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    assert _python(code).splitlines()[-1] == "[]"


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
