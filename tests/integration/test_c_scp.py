"""The benchmarks' C reference SCP (`benchmarks/c_scp.c`) answers echoscu, ours and DCMTK's, and
reports what it served; `benchmarks/syscalls.py` counts system calls per echo from strace."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from benchmarks import c_scp, syscalls

from tests.conftest import IN_CI

ECHOSCU = [sys.executable, "-m", "echoprobe.cli.echoscu"]


@pytest.fixture
def reference_scp() -> c_scp.CScpProcess:
    if not c_scp.available():
        if IN_CI:
            pytest.fail("gcc is missing (CI=true: the benchmarks need it)")
        pytest.skip("gcc is missing")
    return c_scp.CScpProcess(max_seconds=60)


def test_it_serves_our_echoscu_and_dcmtks(reference_scp: c_scp.CScpProcess) -> None:
    with reference_scp as scp:
        port = str(scp.listeners[0][1])
        ours = subprocess.run(
            [*ECHOSCU, "--repeat", "5", "127.0.0.1", port],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert ours.returncode == 0, ours.stderr
        dcmtk = shutil.which("echoscu", path="/usr/bin")
        if dcmtk is not None:
            theirs = subprocess.run(
                [dcmtk, "--repeat", "3", "127.0.0.1", port],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert theirs.returncode == 0, theirs.stderr
    counters = scp.final["counters"]
    expected = 5 + (3 if dcmtk is not None else 0)
    assert counters["echoes"] == expected
    assert counters["releases"] == counters["associations"] == (2 if dcmtk is not None else 1)


def test_system_calls_per_echo(reference_scp: c_scp.CScpProcess) -> None:
    if not syscalls.available():
        pytest.skip("strace is missing")
    with reference_scp as scp:
        target = ["127.0.0.1", str(scp.listeners[0][1])]
        counted = syscalls.per_echo(ECHOSCU, target, syscalls.environment(nodelay=False))
    per_echo = counted["per_echo"]
    assert isinstance(per_echo, dict)
    # One write and one read per C-ECHO on a plain socket (no poll, no timeout changes).
    assert per_echo.get("sendto") == 1.0
    assert per_echo.get("recvfrom") == 1.0
    assert isinstance(counted["total"], float)
    assert counted["total"] <= 2.1


def test_the_usual_echo_loads_no_state_machine(reference_scp: c_scp.CScpProcess) -> None:
    """echoscu's start-up path: a successful echo imports neither the association procedure,
    the UL state machine, `socket.py` nor `typing` (each costs start-up time)."""
    with reference_scp as scp:
        code = (
            "import sys\n"
            "from echoprobe.cli import echoscu\n"
            "try:\n"
            f"    echoscu.main(['echoscu', '127.0.0.1', '{scp.listeners[0][1]}'])\n"
            "except SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "heavy = {'echoprobe.net.association', 'echoprobe.ul.connection', 'echoprobe.ul.fsm',\n"
            "         'socket', 'selectors', 'typing', 're', 'asyncio', 'ssl'}\n"
            "print(sorted(heavy & set(sys.modules)))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    assert done.stdout.strip().splitlines()[-1] == "[]"
