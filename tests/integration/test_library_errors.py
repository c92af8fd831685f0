"""The library's exceptions caught the way asyncio code catches socket errors, on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import echoprobe
from tests.conftest import ScpFactory
from tests.support.servers import free_port

EXAMPLES = Path(__file__).parents[2] / "examples"
QUICK = echoprobe.Timeouts(connect=5.0, acse=0.3, dimse=0.3, release=0.3, total=10.0)


async def test_a_silent_peer_is_caught_by_except_timeout_error(scp_factory: ScpFactory) -> None:
    silent = scp_factory(faults=echoprobe.Faults(silent_at="associate"))
    with pytest.raises(TimeoutError) as caught:  # what asyncio code writes for a socket
        await echoprobe.echo("127.0.0.1", silent.port, timeouts=QUICK)
    assert isinstance(caught.value, echoprobe.AssociationTimeout)
    assert caught.value.outcome == "acse_timeout"


async def test_a_closed_port_is_caught_by_except_connection_refused_error() -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError) as caught:
        await echoprobe.echo("127.0.0.1", port, timeouts=QUICK)
    assert isinstance(caught.value, echoprobe.ConnectionRefused)
    assert caught.value.outcome == "connection_refused"


async def test_probe_records_the_same_outcomes(scp_factory: ScpFactory) -> None:
    silent = scp_factory(faults=echoprobe.Faults(silent_at="echo"))
    record = await echoprobe.probe("127.0.0.1", silent.port, timeouts=QUICK)
    assert (record.outcome, record.phase) == ("dimse_timeout", "echo")


async def test_status_0110_is_named_processing_failure(scp_factory: ScpFactory) -> None:
    failing = scp_factory(faults=echoprobe.Faults(status=0x0110, error_comment="disk full"))
    with pytest.raises(echoprobe.EchoStatusError, match="Processing failure") as caught:
        await echoprobe.echo("127.0.0.1", failing.port, timeouts=QUICK)
    assert "unknown" not in str(caught.value)


def test_the_sweep_example_runs_on_its_own_fleet() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "sweep_to_jsonl.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stderr  # the demo fleet has failing peers
    assert len(lines) == 5
    assert "5 targets:" in done.stderr
    assert "success 1" in done.stderr
