"""Interoperability with DCMTK 3.6.7: our `echo()` against `storescp`, DCMTK `echoscu` against
our `EchoSCP`. Loopback only; DCMTK processes are bounded by `subprocess` timeouts (echoscu) or
stopped by PID at teardown (storescp)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.servers import (
    DCMTK_ENV,
    SubprocessServer,
    ThreadedEchoSCP,
    run_async,
    wait_for,
)

from echoprobe.errors import AssociationRejected
from echoprobe.net.client import echo, probe
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from echoprobe.results import Outcome

pytestmark = pytest.mark.interop

ScpFactory = Callable[..., ThreadedEchoSCP]
StorescpFactory = Callable[..., SubprocessServer]

ECHOSCU = Path("/usr/bin/echoscu")
LOCAL = "127.0.0.1"
TIMEOUTS = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=2.0)
RUN_LIMIT = 30.0  # seconds; subprocess.run kills a hung echoscu (its own child) after this

# DCMTK's wording of A-ASSOCIATE-RJ fields (PS3.8 Table 9-21), as `echoscu` prints them.
RESULT_TEXT = {1: "Rejected Permanent", 2: "Rejected Transient"}
SOURCE_TEXT = {
    1: "Service User",
    2: "Service Provider (ACSE Related)",
    3: "Service Provider (Presentation Related)",
}
REASON_TEXT = {
    (1, 1): "No Reason",
    (1, 2): "App Context Name Not Supported",
    (1, 3): "Calling AE Title Not Recognized",
    (1, 7): "Called AE Title Not Recognized",
    (2, 1): "No Reason",
    (2, 2): "Protocol Version Not Supported",
    (3, 1): "Temporary Congestion",
    (3, 2): "Local Limit Exceeded",
}


def run_echoscu(*args: str) -> tuple[int, list[str]]:
    """Run DCMTK echoscu; return its exit code and its output lines (stdout then stderr)."""
    proc = subprocess.run(
        [str(ECHOSCU), *args],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        env={**os.environ, **DCMTK_ENV},
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


def expected_verbose(echoes: int, max_send_pdv: int = 16372) -> list[str]:
    lines = ["I: Requesting Association", f"I: Association Accepted (Max Send PDV: {max_send_pdv})"]
    for message_id in range(1, echoes + 1):
        lines += [
            f"I: Sending Echo Request (MsgID {message_id})",
            "I: Received Echo Response (Success)",
        ]
    return [*lines, "I: Releasing Association"]


# --- our echo() against DCMTK storescp -----------------------------------------------------------


@pytest.mark.parametrize("repeat", [1, 1000])
async def test_echo_against_storescp(storescp_factory: StorescpFactory, repeat: int) -> None:
    server = storescp_factory(aet="STORESCP")
    result = await echo(LOCAL, server.port, called_ae="STORESCP", repeat=repeat, timeouts=TIMEOUTS)
    assert result.ok, server.log()
    assert [r.message_id for r in result.replies] == list(range(1, repeat + 1))
    assert result.release == "released"
    assert (result.peer.implementation_version_name or "").startswith("OFFIS_DCMTK")
    assert result.peer.transfer_syntax == "1.2.840.10008.1.2"

    record = await probe(LOCAL, server.port, called_ae="STORESCP", repeat=repeat, timeouts=TIMEOUTS)
    assert record.outcome is Outcome.SUCCESS, record
    assert record.echoes == repeat


async def test_verbose_storescp_logs_our_echoes(storescp_factory: StorescpFactory) -> None:
    server = storescp_factory("-v", aet="STORESCP")
    result = await echo(LOCAL, server.port, called_ae="STORESCP", repeat=3, timeouts=TIMEOUTS)
    assert result.ok
    assert wait_for(lambda: "Association Release" in server.log(), timeout=5.0), server.log()
    lines = server.log().splitlines()
    # Our Maximum Length is 16384, so DCMTK may send PDVs of 16384 - 12 bytes.
    assert lines == [
        "I: Association Received",
        "I: Association Acknowledged (Max Send PDV: 16372)",
        "I: Received Echo Request (MsgID 1)",
        "I: Received Echo Request (MsgID 2)",
        "I: Received Echo Request (MsgID 3)",
        "I: Association Release",
    ]


# --- DCMTK echoscu against our EchoSCP -----------------------------------------------------------


@pytest.mark.parametrize("repeat", [1, 1000])
def test_echoscu_against_echo_scp(scp_factory: ScpFactory, repeat: int) -> None:
    scp = scp_factory()
    extra = ["--repeat", str(repeat)] if repeat > 1 else []
    code, lines = run_echoscu("-v", *extra, LOCAL, str(scp.port))
    assert code == 0, lines
    assert lines == expected_verbose(repeat)
    assert wait_for(lambda: scp.counters.releases == 1)
    assert (scp.counters.associations, scp.counters.echoes) == (1, repeat)


def test_echoscu_against_echo_scp_on_localhost(scp_factory: ScpFactory) -> None:
    scp = scp_factory(host="127.0.0.1")
    code, lines = run_echoscu("-v", "-aet", "DCMTKSCU", "-aec", "ECHOPROBE", LOCAL, str(scp.port))
    assert code == 0, lines
    assert "I: Received Echo Response (Success)" in lines


@pytest.mark.parametrize("result_code", [1, 2])
@pytest.mark.parametrize(("source", "reason"), list(REASON_TEXT))
def test_echoscu_prints_the_reject_reason(
    scp_factory: ScpFactory, result_code: int, source: int, reason: int
) -> None:
    scp = scp_factory(faults=Faults(reject=(result_code, source, reason)))
    code, lines = run_echoscu("-v", LOCAL, str(scp.port))
    assert code == 1, lines
    assert lines == [
        "I: Requesting Association",
        "F: Association Rejected:",
        f"F: Result: {RESULT_TEXT[result_code]}, Source: {SOURCE_TEXT[source]}",
        f"F: Reason: {REASON_TEXT[(source, reason)]}",
    ]


def test_echoscu_rejected_for_an_unknown_called_ae(scp_factory: ScpFactory) -> None:
    """Not a fault: the SCP's own AE title policy (PS3.8 Table 9-21, 1/1/7)."""
    scp = scp_factory(ae_titles=["ECHOPROBE"])
    code, lines = run_echoscu("-aec", "SOMEONE", LOCAL, str(scp.port))
    assert code == 1, lines
    assert "F: Reason: Called AE Title Not Recognized" in lines
    code, lines = run_echoscu("-aec", "ECHOPROBE", LOCAL, str(scp.port))
    assert code == 0, lines


@pytest.mark.parametrize(
    ("faults", "exit_code", "line"),
    [
        (Faults(reject_contexts=True), 1, "F: No Acceptable Presentation Contexts"),
        (Faults(abort_at="echo"), 0, "I: Peer Aborted Association"),
        (Faults(status=0x0211), 0, "I: Received Echo Response (Unknown Status: 0x211)"),
    ],
    ids=["no-context", "abort-at-echo", "status-0211"],
)
def test_echoscu_against_echo_scp_faults(
    scp_factory: ScpFactory, faults: Faults, exit_code: int, line: str
) -> None:
    scp = scp_factory(faults=faults)
    code, lines = run_echoscu("-v", "-ta", "2", "-td", "2", LOCAL, str(scp.port))
    assert code == exit_code, lines
    assert line in lines


def test_our_echo_and_echoscu_agree_on_a_reject(scp_factory: ScpFactory) -> None:
    """Both clients report the same three raw bytes for the same A-ASSOCIATE-RJ."""
    scp = scp_factory(faults=Faults(reject=(2, 3, 2)))
    with pytest.raises(AssociationRejected) as info:
        run_async(echo(LOCAL, scp.port, timeouts=TIMEOUTS))
    assert (info.value.result, info.value.source, info.value.reason) == (2, 3, 2)
    code, lines = run_echoscu(LOCAL, str(scp.port))
    assert code == 1
    assert "F: Result: Rejected Transient, Source: Service Provider (Presentation Related)" in lines
    assert "F: Reason: Local Limit Exceeded" in lines
