"""Interoperability with pynetdicom 3.0.4 (a test-only peer): our `echo()` against a pynetdicom
`AE` SCP, pynetdicom's `associate()` + `send_c_echo()` against our `EchoSCP`. Loopback only;
every server is shut down at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pynetdicom
import pytest
from pynetdicom import AE, evt
from tests.support.servers import ThreadedEchoSCP, wait_for

from echoprobe.errors import AssociationRejected
from echoprobe.net.client import echo, probe
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from echoprobe.results import Outcome

ScpFactory = Callable[..., ThreadedEchoSCP]

LOCAL = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
TIMEOUTS = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=2.0)


# pynetdicom 3.0.4's threads race against a peer that answers within microseconds (measured
# against EchoSCP: about 1 association in 100-300 fails): its ACSE thread checks that the socket
# is still connected after its DUL thread may already have read an A-ASSOCIATE-RJ and closed it,
# and its reactor takes an instant C-ECHO-RSP for an unexpected request. Answering 10 ms later
# avoids both (0 failures in 200 associations each); pynetdicom against itself is slow enough.
PACE = {"associate": 0.01, "echo": 0.01}


def _client_ae() -> Any:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    return ae


@pytest.fixture(scope="module")
def pynetdicom_scp() -> Iterator[Callable[..., int]]:
    """`start(status=0x0000)` → the port of a pynetdicom Verification SCP on 127.0.0.1 (one per
    distinct configuration and module: pynetdicom's shutdown polls for half a second)."""
    servers: dict[tuple[int, bool], Any] = {}

    def start(status: int = 0x0000, require_called_aet: bool = False) -> int:
        key = (status, require_called_aet)
        if key in servers:
            return int(servers[key].server_address[1])
        ae = AE(ae_title="PYSCP")
        ae.add_supported_context(VERIFICATION)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
        ae.require_called_aet = require_called_aet

        def on_echo(event: Any) -> int:
            return status

        server = ae.start_server((LOCAL, 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, on_echo)])
        assert server is not None  # block=False returns the running server
        servers[key] = server
        return int(server.server_address[1])

    yield start
    for server in servers.values():
        server.shutdown()


# --- our echo() against a pynetdicom SCP ---------------------------------------------------------


@pytest.mark.parametrize("repeat", [1, 1000])
async def test_echo_against_pynetdicom(pynetdicom_scp: Callable[..., int], repeat: int) -> None:
    port = pynetdicom_scp()
    result = await echo(LOCAL, port, called_ae="PYSCP", repeat=repeat, timeouts=TIMEOUTS)
    assert result.ok
    assert result.release == "released"
    assert [r.message_id for r in result.replies] == list(range(1, repeat + 1))
    assert (result.peer.implementation_version_name or "").startswith("PYNETDICOM")
    assert result.peer.implementation_class_uid == pynetdicom.PYNETDICOM_IMPLEMENTATION_UID

    record = await probe(LOCAL, port, called_ae="PYSCP", timeouts=TIMEOUTS)
    assert record.outcome is Outcome.SUCCESS, record


async def test_status_from_pynetdicom(pynetdicom_scp: Callable[..., int]) -> None:
    port = pynetdicom_scp(status=0x0122)
    record = await probe(LOCAL, port, timeouts=TIMEOUTS)
    assert record.outcome is Outcome.ECHO_FAILED_STATUS
    assert record.status == 0x0122
    assert record.detail["release"] == "released"


async def test_pynetdicom_rejects_an_unknown_called_ae(pynetdicom_scp: Callable[..., int]) -> None:
    port = pynetdicom_scp(require_called_aet=True)
    with pytest.raises(AssociationRejected) as info:
        await echo(LOCAL, port, called_ae="SOMEONE", timeouts=TIMEOUTS)
    assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 7)
    assert info.value.outcome == "rejected_permanent"
    assert (await echo(LOCAL, port, called_ae="PYSCP", timeouts=TIMEOUTS)).ok


# --- pynetdicom's SCU against our EchoSCP --------------------------------------------------------


def test_pynetdicom_echoes_against_echo_scp(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay=PACE))
    assoc = _client_ae().associate(LOCAL, scp.port, ae_title="ECHOPROBE")
    try:
        assert assoc.is_established
        statuses = [assoc.send_c_echo() for _ in range(20)]
    finally:
        assoc.release()
    assert assoc.is_released
    assert [int(s.Status) for s in statuses] == [0] * 20
    assert wait_for(lambda: scp.counters.releases == 1)
    assert (scp.counters.associations, scp.counters.echoes) == (1, 20)


def test_pynetdicom_sees_our_status(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(status=0x0211, error_comment="not now", delay=PACE))
    assoc = _client_ae().associate(LOCAL, scp.port)
    try:
        assert assoc.is_established
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    assert int(status.Status) == 0x0211
    assert str(status.ErrorComment).strip() == "not now"


@pytest.mark.parametrize("reject", [(1, 1, 7), (2, 3, 1)])
def test_pynetdicom_sees_our_reject(scp_factory: ScpFactory, reject: tuple[int, int, int]) -> None:
    scp = scp_factory(faults=Faults(reject=reject, delay=PACE))
    assoc = _client_ae().associate(LOCAL, scp.port)
    assert assoc.is_rejected
    primitive = assoc.acceptor.primitive
    assert (primitive.result, primitive.result_source, primitive.diagnostic) == reject


def test_pynetdicom_sees_our_abort(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(abort_at="echo"))
    assoc = _client_ae().associate(LOCAL, scp.port)
    assert assoc.is_established
    status = assoc.send_c_echo()
    assert not status  # an empty Dataset: no response
    assert wait_for(lambda: assoc.is_aborted)
