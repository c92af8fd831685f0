"""`echo()` and `probe()` over real loopback sockets: every way a peer can answer, classified.

Every test runs twice, with the fast path and with the association procedure alone.
Peers: our `EchoSCP` with `Faults` (in a thread with its own loop) for the failures a real SCP
shows, and the raw-bytes `FakeSCP` (an independent codec) for hostile bytes, trickles, floods
and for watching what we send. Timeouts are short (0.5-1.5 s) and every timing assertion allows
`SLACK` seconds over the configured value: deadlines are absolute per phase, so no trickle or
stream of bytes may stretch them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from echoprobe.errors import (
    AssociationAborted,
    AssociationRejected,
    AssociationTimeout,
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    DeadlineExceeded,
    DIMSEError,
    DIMSETimeout,
    EchoStatusError,
    NoAcceptedContext,
    PDUTooLarge,
    PeerRequestedRelease,
    ProbeError,
    ProtocolError,
    TimeoutError_,
)
from echoprobe.net import blocking, fastpath
from echoprobe.net.association import AssociationOutcome, run_association
from echoprobe.net.client import echo, probe
from echoprobe.net.server import Faults
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.results import EchoResult, Outcome, ProbeResult
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.negotiation import build_request
from tests.support.fake_scp import (
    A_ABORT,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    Abort,
    Accept,
    Close,
    EchoReply,
    FakeSCP,
    FullBacklog,
    ReadEcho,
    ReadPDU,
    Received,
    Reject,
    Release,
    Reset,
    Respond,
    Send,
    Serve,
    Stall,
    Step,
    Trickle,
    a_abort,
    a_release_rp,
    a_release_rq,
    c_echo_rsp,
    p_data_tf,
    parse_associate_rq,
    pdu,
    pdv,
    unused_port,
)
from tests.support.servers import (
    ThreadedEchoSCP,
    has_ipv6_loopback,
    reset_peak_rss,
    rss_bytes,
)

ScpFactory = Callable[..., ThreadedEchoSCP]

LOCAL = "127.0.0.1"
SLACK = 0.5  # seconds a timeout may overrun its configured value
FAST = Timeouts(connect=1.0, acse=1.0, dimse=1.0, release=1.0)
QUICK_FAIL = 0.5  # a refusal "at once": well under any configured timeout
BOTH_LOOPS = pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"], indirect=True)

# PS3.8 Table 9-21: every defined (source, reason) pair of A-ASSOCIATE-RJ.
REJECT_REASONS = [(1, 1), (1, 2), (1, 3), (1, 7), (2, 1), (2, 2), (3, 1), (3, 2)]


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, params=["fast-path", "procedure-only"])
def _association_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scenario twice: with the fast path (the default) and with the procedure alone,
    which the fast path hands everything unusual to and must never disagree with."""
    monkeypatch.setattr(fastpath, "ENABLED", request.param == "fast-path")


async def timed_failure(
    call: Awaitable[object], expected: type[ProbeError]
) -> tuple[ProbeError, float]:
    """Await `call`, which must raise `expected`; return the error and the seconds it took."""
    start = time.perf_counter()
    with pytest.raises(expected) as info:
        await call
    return info.value, time.perf_counter() - start


def assert_within(elapsed: float, value: float, slack: float = SLACK) -> None:
    # uvloop's clock counts whole milliseconds: a timer may fire up to ~1 ms early.
    assert value - 0.01 <= elapsed <= value + slack, f"took {elapsed:.3f} s for a {value} s timeout"


async def wait_until(predicate: Callable[[], bool], within: float = 2.0) -> bool:
    end = time.monotonic() + within
    while not predicate():
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(0.01)
    return True


def pdu_types(received: Sequence[Received]) -> list[int]:
    return [r.pdu_type for r in received]


def aborts(scp: FakeSCP) -> list[tuple[int, int]]:
    """(source, reason) of every A-ABORT the fake SCP received."""
    return [(r.raw[8], r.raw[9]) for r in scp.received if r.pdu_type == A_ABORT]


def assert_probe(result: ProbeResult, outcome: Outcome, phase: str | None = None) -> None:
    assert result.outcome is outcome, (result.outcome, result.error, result.detail)
    if phase is not None:
        assert result.phase == phase
    assert "total" in result.timings_ms


def blocking_echo(
    host: str, port: int, options: AssociationOptions, timeouts: Timeouts
) -> AssociationOutcome:
    """One association on the blocking-socket driver (the `echoscu` start-up path)."""
    request = build_request(
        calling_ae=options.calling_ae,
        called_ae=options.called_ae,
        num_contexts=options.contexts,
        transfer_syntaxes=options.transfer_syntaxes,
        max_pdu=options.max_pdu,
    )
    sock = blocking.connect(host, port, timeouts.connect)
    conn = ULConnection(Role.REQUESTOR, max_receive_pdu=options.max_pdu)
    now = blocking.clock()
    conn.start_connect(encode_pdu(request), now)
    conn.connection_made(now)
    flow = run_association(conn, request, options, timeouts, blocking.clock)
    return blocking.drive(sock, conn, flow)


# --- success -------------------------------------------------------------------------------------


@BOTH_LOOPS
async def test_success_single_echo(loop_kind: str, scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    result = await echo(LOCAL, scp.port, timeouts=FAST)
    assert isinstance(result, EchoResult)
    assert result.ok
    assert result.status == 0
    assert [(r.message_id, r.status) for r in result.replies] == [(1, 0)]
    assert result.release == "released"
    assert result.peer.context_id == 1
    assert result.peer.transfer_syntax == "1.2.840.10008.1.2"
    assert result.peer.implementation_class_uid
    assert {"connect", "associate", "echo", "release", "total"} <= set(result.timings_ms)
    assert await wait_until(lambda: scp.counters.releases == 1)
    assert (scp.counters.associations, scp.counters.echoes) == (1, 1)

    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.SUCCESS)
    assert record.status == 0
    assert record.echoes == 1
    assert record.error is None
    assert record.peer is not None
    assert record.peer.address == f"{LOCAL}:{scp.port}"


async def test_success_1000_echoes_in_one_association(scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    result = await echo(LOCAL, scp.port, repeat=1000, timeouts=FAST)
    assert result.ok
    assert len(result.replies) == 1000
    assert [r.message_id for r in result.replies] == list(range(1, 1001))
    assert await wait_until(lambda: scp.counters.releases == 1)
    assert scp.counters.connections == 1
    assert scp.counters.associations == 1
    assert scp.counters.echoes == 1000

    record = await probe(LOCAL, scp.port, repeat=1000, timeouts=FAST)
    assert_probe(record, Outcome.SUCCESS)
    assert record.echoes == 1000


async def test_success_1000_echoes_seen_on_the_wire() -> None:
    """The independent fake SCP sees one association, Message IDs 1..1000, then the release."""
    with FakeSCP([ReadPDU(), Accept(), Serve(max_messages=1001)]) as scp:
        result = await echo(LOCAL, scp.port, repeat=1000, timeouts=FAST)
    assert result.ok
    assert len(result.replies) == 1000
    assert result.release == "released"
    assert scp.accepted == 1
    assert not scp.failures
    assert [r.message_id for r in scp.echo_requests] == list(range(1, 1001))
    types = pdu_types(scp.received)
    assert types[0] == A_ASSOCIATE_RQ
    assert types[-1] == A_RELEASE_RQ
    assert types.count(P_DATA_TF) == 1000


async def test_success_when_answers_are_delayed_or_trickled(scp_factory: ScpFactory) -> None:
    delayed = scp_factory(faults=Faults(delay={"associate": 0.2, "echo": 0.2, "release": 0.2}))
    result = await echo(LOCAL, delayed.port, timeouts=FAST)
    assert result.ok
    assert result.release == "released"
    trickled = scp_factory(faults=Faults(trickle=0.001))  # every answer one byte per ms
    result = await echo(LOCAL, trickled.port, timeouts=Timeouts(acse=1.5, dimse=1.5, release=1.5))
    assert result.ok
    assert result.release == "released"


async def test_release_collision_completes(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(release_collision=True))
    result = await echo(LOCAL, scp.port, timeouts=FAST)
    assert result.ok
    assert result.release == "collision"
    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.SUCCESS)


def test_success_on_the_blocking_driver(echo_scp: ThreadedEchoSCP) -> None:
    outcome = blocking_echo(LOCAL, echo_scp.port, AssociationOptions(repeat=1000), FAST)
    assert [r.status for r in outcome.replies] == [0] * 1000
    assert outcome.release == "released"


@pytest.mark.parametrize(
    "options",
    [
        {"max_pdu": 0},  # we accept any PDU size (memory is still capped)
        {"max_pdu": 4096, "repeat": 3},
        {"contexts": 128},
        {"transfer_syntaxes": ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")},
        {"calling_ae": "A" * 16, "called_ae": "B" * 16},
        {"release": False},
    ],
    ids=["max-pdu-0", "max-pdu-4096", "128-contexts", "explicit-vr", "16-char-aes", "abort"],
)
async def test_success_with_request_options(
    scp_factory: ScpFactory, options: dict[str, Any]
) -> None:
    scp = scp_factory()
    result = await echo(LOCAL, scp.port, timeouts=FAST, **options)
    assert result.ok
    assert len(result.replies) == options.get("repeat", 1)
    assert result.release == ("aborted" if options.get("release") is False else "released")
    with FakeSCP([ReadPDU(), Accept(), Serve()]) as fake:
        result = await echo(LOCAL, fake.port, timeouts=FAST, **options)
    assert result.ok
    rq = fake.associate_rq
    assert rq is not None
    assert len(parse_associate_rq(rq).contexts) == options.get("contexts", 1)


# --- A-ASSOCIATE-RJ ------------------------------------------------------------------------------


@pytest.mark.parametrize("result_code", [1, 2])
@pytest.mark.parametrize(("source", "reason"), REJECT_REASONS)
async def test_reject_is_classified_with_raw_values(
    scp_factory: ScpFactory, result_code: int, source: int, reason: int
) -> None:
    scp = scp_factory(faults=Faults(reject=(result_code, source, reason)))
    error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), AssociationRejected)
    assert isinstance(error, AssociationRejected)
    assert (error.result, error.source, error.reason) == (result_code, source, reason)
    expected = Outcome.REJECTED_TRANSIENT if result_code == 2 else Outcome.REJECTED_PERMANENT
    assert error.outcome == expected.value
    assert error.phase == "associate"
    assert elapsed < QUICK_FAIL

    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, expected, "associate")
    assert (record.detail["result"], record.detail["source"], record.detail["reason"]) == (
        result_code,
        source,
        reason,
    )
    assert scp.counters.rejected == 2


async def test_reject_by_called_ae_title(scp_factory: ScpFactory) -> None:
    scp = scp_factory(ae_titles=["ONLYME"])
    error, _ = await timed_failure(
        echo(LOCAL, scp.port, called_ae="SOMEONE", timeouts=FAST), AssociationRejected
    )
    assert isinstance(error, AssociationRejected)
    assert (error.result, error.source, error.reason) == (1, 1, 7)
    result = await echo(LOCAL, scp.port, called_ae="ONLYME", timeouts=FAST)
    assert result.ok


async def test_reject_from_the_raw_peer() -> None:
    with FakeSCP([ReadPDU(), Reject(2, 3, 2), Stall()]) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=FAST), AssociationRejected
        )
    assert isinstance(error, AssociationRejected)
    assert (error.result, error.source, error.reason) == (2, 3, 2)
    assert error.outcome == "rejected_transient"
    assert elapsed < QUICK_FAIL
    assert pdu_types(scp.received) == [A_ASSOCIATE_RQ]  # nothing after the RJ (AE-4: close)


@pytest.mark.parametrize(
    "values",
    [(3, 1, 1), (0, 1, 1), (1, 4, 1), (1, 1, 4), (2, 3, 9)],
    ids=lambda v: "{}-{}-{}".format(*v),
)
async def test_reject_with_undefined_values_is_a_protocol_error(
    values: tuple[int, int, int],
) -> None:
    """Values outside PS3.8 Table 9-21 keep their raw bytes but are classified protocol_error
    (robustness requirements §2.7), never rejected_permanent/transient."""
    with FakeSCP([ReadPDU(), Reject(*values), Stall()]) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=FAST), AssociationRejected
        )
    assert isinstance(error, AssociationRejected)
    assert (error.result, error.source, error.reason) == values
    assert error.outcome == "protocol_error"
    assert elapsed < QUICK_FAIL
    with FakeSCP([ReadPDU(), Reject(*values), Stall()]) as scp:
        record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.PROTOCOL_ERROR, "associate")
    assert (record.detail["result"], record.detail["source"], record.detail["reason"]) == values


# --- A-ABORT from the peer -----------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["associate", "echo"])
async def test_peer_abort_fails_the_echo(scp_factory: ScpFactory, phase: str) -> None:
    scp = scp_factory(faults=Faults(abort_at=phase, abort_source=2, abort_reason=1))
    error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), AssociationAborted)
    assert isinstance(error, AssociationAborted)
    assert (error.source, error.reason) == (2, 1)
    assert error.phase == phase
    assert error.outcome == "aborted_by_peer"
    assert elapsed < QUICK_FAIL
    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.ABORTED_BY_PEER, phase)
    assert (record.detail["source"], record.detail["reason"]) == (2, 1)


async def test_peer_abort_at_release_keeps_the_echo_verdict(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(abort_at="release"))
    result = await echo(LOCAL, scp.port, timeouts=FAST)
    assert result.ok
    assert result.release == "peer_aborted"
    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.RELEASE_FAILED)
    assert record.outcome.echo_succeeded
    assert record.status == 0
    assert record.detail["release"] == "peer_aborted"


@pytest.mark.parametrize(
    ("steps", "phase"),
    [
        ([ReadPDU(), Abort(0, 0), Stall()], "associate"),
        ([ReadPDU(), Accept(), ReadEcho(), Abort(2, 6), Stall()], "echo"),
    ],
    ids=["associate", "echo"],
)
async def test_peer_abort_from_the_raw_peer(steps: list[Step], phase: str) -> None:
    with FakeSCP(steps) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=FAST), AssociationAborted
        )
    assert isinstance(error, AssociationAborted)
    assert error.phase == phase
    assert (error.source, error.reason) == ((0, 0) if phase == "associate" else (2, 6))
    assert elapsed < QUICK_FAIL
    assert aborts(scp) == []  # an A-ABORT is never answered with one


async def test_peer_abort_at_release_from_the_raw_peer() -> None:
    with FakeSCP([ReadPDU(), Accept(), Serve(release="abort")]) as scp:
        result = await echo(LOCAL, scp.port, timeouts=FAST)
    assert result.ok
    assert result.release == "peer_aborted"


# --- the peer closes the connection --------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "reported"), [("connect", "associate"), ("associate", "associate"), ("echo", "echo")]
)
async def test_peer_close_fails_the_echo(
    scp_factory: ScpFactory, phase: str, reported: str
) -> None:
    scp = scp_factory(faults=Faults(close_at=phase))
    error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), ConnectionLost)
    assert error.phase == reported
    assert error.outcome == "connection_lost"
    assert elapsed < QUICK_FAIL
    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.CONNECTION_LOST, reported)


async def test_peer_close_at_release_keeps_the_echo_verdict(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(close_at="release"))
    result = await echo(LOCAL, scp.port, timeouts=FAST)
    assert result.ok
    assert result.release == "connection_closed"
    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.RELEASE_FAILED)
    assert record.detail["release"] == "connection_closed"


@pytest.mark.parametrize(
    ("steps", "phase", "mid_pdu"),
    [
        ([ReadPDU(), Reset()], "associate", False),
        ([ReadPDU(), Send(pdu(0x02, bytes(100))[:40]), Close()], "associate", True),
        ([ReadPDU(), Accept(), ReadEcho(), Reset()], "echo", False),
        (
            [ReadPDU(), Accept(), ReadEcho(), Send(p_data_tf(pdv(1, 3, bytes(20)))[:15]), Close()],
            "echo",
            True,
        ),
    ],
    ids=["reset-associate", "half-pdu-associate", "reset-echo", "half-pdu-echo"],
)
async def test_peer_reset_or_half_pdu_close(steps: list[Step], phase: str, mid_pdu: bool) -> None:
    with FakeSCP(steps) as scp:
        error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), ConnectionLost)
    assert isinstance(error, ConnectionLost)
    assert error.phase == phase
    assert error.mid_pdu is mid_pdu
    assert elapsed < QUICK_FAIL


async def test_peer_reset_at_release_keeps_the_echo_verdict() -> None:
    with FakeSCP([ReadPDU(), Accept(), Serve(release="reset")]) as scp:
        result = await echo(LOCAL, scp.port, timeouts=FAST)
    assert result.ok
    assert result.release == "connection_closed"


# --- C-ECHO status -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [0x0110, 0x0122, 0x0211, 0xA700, 0xFFFF])
async def test_non_success_status(scp_factory: ScpFactory, status: int) -> None:
    scp = scp_factory(faults=Faults(status=status, error_comment="not today"))
    error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), EchoStatusError)
    assert isinstance(error, EchoStatusError)
    assert error.status == status
    assert error.error_comment == "not today"
    assert error.outcome == "echo_failed_status"
    assert error.phase == "echo"
    partial: EchoResult = error.result  # type: ignore[attr-defined]
    assert [(r.message_id, r.status) for r in partial.replies] == [(1, status)]
    assert partial.release == "released"
    assert elapsed < QUICK_FAIL

    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.ECHO_FAILED_STATUS)
    assert record.status == status
    assert record.echoes == 1
    assert record.detail["status"] == status
    assert record.detail["error_comment"] == "not today"
    assert f"0x{status:04X}" in (record.error or "")


async def test_non_success_status_among_many_echoes() -> None:
    replies = [ReadPDU(), Accept()]
    for index in range(3):
        replies += [ReadEcho(), Respond(EchoReply(status=0x0122 if index == 1 else 0))]
    with FakeSCP([*replies, Release()]) as scp:
        record = await probe(LOCAL, scp.port, repeat=3, timeouts=FAST)
    assert_probe(record, Outcome.ECHO_FAILED_STATUS)
    assert record.echoes == 3
    assert record.detail["status"] == 0x0122


# --- negotiation ---------------------------------------------------------------------------------


async def test_no_accepted_context_aborts(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(reject_contexts=True))
    error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), NoAcceptedContext)
    assert error.outcome == "no_accepted_context"
    assert error.phase == "associate"
    assert elapsed < QUICK_FAIL
    assert await wait_until(lambda: scp.counters.aborts_received == 1)
    assert scp.counters.echoes == 0
    record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.NO_ACCEPTED_CONTEXT, "associate")


@pytest.mark.parametrize("context_result", [1, 2, 3, 4])
async def test_no_accepted_context_from_the_raw_peer(context_result: int) -> None:
    with FakeSCP([ReadPDU(), Accept(default_result=context_result), Stall()]) as scp:
        error, _ = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), NoAcceptedContext)
        assert await wait_until(lambda: not scp.running)
    assert isinstance(error, NoAcceptedContext)
    assert aborts(scp) == [(0, 0)]  # A-ABORT, service user
    assert scp.echo_requests == []


# --- silent peers: each phase's timeout ----------------------------------------------------------


SILENT_CASES = {
    # id: (silent_at, timeouts, the timeout that must fire, error, outcome, phase reported)
    "connect-acse": (
        "connect",
        Timeouts(acse=1.0),
        AssociationTimeout,
        Outcome.ACSE_TIMEOUT,
        "associate",
    ),
    "associate-acse": (
        "associate",
        Timeouts(acse=1.0),
        AssociationTimeout,
        Outcome.ACSE_TIMEOUT,
        "associate",
    ),
    "echo-dimse": ("echo", Timeouts(dimse=1.0), DIMSETimeout, Outcome.DIMSE_TIMEOUT, "echo"),
    "associate-total": (
        "associate",
        Timeouts(acse=9.0, total=1.0),
        DeadlineExceeded,
        Outcome.DEADLINE_EXCEEDED,
        "associate",
    ),
    "echo-total": (
        "echo",
        Timeouts(dimse=9.0, total=1.0),
        DeadlineExceeded,
        Outcome.DEADLINE_EXCEEDED,
        "echo",
    ),
}


@pytest.mark.parametrize("case", list(SILENT_CASES))
async def test_silent_peer_times_out_on_time(scp_factory: ScpFactory, case: str) -> None:
    silent_at, timeouts, error_type, outcome, phase = SILENT_CASES[case]
    value = 1.0  # every case above configures the timeout that must fire to 1 s
    scp = scp_factory(faults=Faults(silent_at=silent_at))
    # echo() and probe() concurrently, each on its own association.
    (error, elapsed), record = await asyncio.gather(
        timed_failure(echo(LOCAL, scp.port, timeouts=timeouts), error_type),
        probe(LOCAL, scp.port, timeouts=timeouts),
    )
    assert type(error) is error_type
    assert error.outcome == outcome.value
    assert error.phase == phase
    assert_within(elapsed, value)
    assert_probe(record, outcome, phase)
    assert_within(record.timings_ms["total"] / 1000.0, value)


@BOTH_LOOPS
async def test_silent_release_times_out_on_time(loop_kind: str, scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(silent_at="release"))
    timeouts = Timeouts(release=1.0)
    start = time.perf_counter()
    result, record = await asyncio.gather(
        echo(LOCAL, scp.port, timeouts=timeouts), probe(LOCAL, scp.port, timeouts=timeouts)
    )
    assert_within(time.perf_counter() - start, 1.0)
    assert result.ok
    assert result.release == "release_timeout"
    assert_within(result.timings_ms["release"] / 1000.0, 1.0)
    assert_probe(record, Outcome.RELEASE_TIMEOUT)
    assert record.outcome.echo_succeeded
    assert await wait_until(lambda: scp.counters.aborts_received == 2)  # we aborted (AA-1)


@BOTH_LOOPS
async def test_dimse_timeout_sends_abort(loop_kind: str) -> None:
    with FakeSCP([ReadPDU(), Accept(), ReadEcho(), Stall()], close_on_abort=False) as scp:
        _error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=Timeouts(dimse=0.5)), DIMSETimeout
        )
        assert await wait_until(lambda: not scp.running)
    assert_within(elapsed, 0.5)
    assert aborts(scp) == [(0, 0)]
    assert pdu_types(scp.received)[-1] == A_ABORT


def test_silent_peer_on_the_blocking_driver(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(silent_at="echo"))
    start = time.perf_counter()
    with pytest.raises(DIMSETimeout):
        blocking_echo(LOCAL, scp.port, AssociationOptions(), Timeouts(dimse=1.0))
    assert_within(time.perf_counter() - start, 1.0)


HALF_THEN_STALL = Trickle(head=5, head_pause=5.0)  # 5 bytes, then nothing for 5 s


@pytest.mark.parametrize(
    ("steps", "error_type"),
    [
        ([ReadPDU(), Accept(trickle=HALF_THEN_STALL)], AssociationTimeout),
        (
            [ReadPDU(), Accept(), ReadEcho(), Respond(EchoReply(trickle=HALF_THEN_STALL))],
            DIMSETimeout,
        ),
    ],
    ids=["associate", "echo"],
)
async def test_socket_timeout_bounds_a_half_read_pdu(
    steps: list[Step], error_type: type[TimeoutError_]
) -> None:
    """`Timeouts.socket` (DCMTK's -ts) bounds each wait inside a PDU, under a longer phase."""
    timeouts = Timeouts(acse=9.0, dimse=9.0, socket=0.5)
    with FakeSCP(steps) as scp:
        error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=timeouts), error_type)
        assert await wait_until(lambda: not scp.running)  # it has read what we sent
    assert isinstance(error, error_type)
    assert error.timer == "socket"
    assert error.mid_pdu
    assert_within(elapsed, 0.5)
    assert aborts(scp) == [(0, 0)]


@pytest.mark.parametrize(
    ("silent_at", "timeouts", "error_type"),
    [
        ("associate", Timeouts(acse=None, socket=0.5), AssociationTimeout),
        ("echo", Timeouts(dimse=None, socket=0.5), DIMSETimeout),
    ],
    ids=["associate", "echo"],
)
async def test_socket_timeout_bounds_a_phase_without_timeout(
    scp_factory: ScpFactory, silent_at: str, timeouts: Timeouts, error_type: type[TimeoutError_]
) -> None:
    scp = scp_factory(faults=Faults(silent_at=silent_at))
    error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=timeouts), error_type)
    assert isinstance(error, error_type)
    assert error.timer == "socket"
    assert not error.mid_pdu
    assert_within(elapsed, 0.5)


# --- slow and endless peers cannot stretch a deadline --------------------------------------------


# One byte every 0.5 s, offset by 0.25 s so that no byte lands on the 1.5 s deadline itself: a
# byte arriving just after our A-ABORT and close would make our kernel reset the connection, and
# the peer could lose the A-ABORT we want it to see.
SLOWLORIS = Trickle(head=1, head_pause=0.25, chunk=1, interval=0.5)


@pytest.mark.parametrize("socket_timeout", [None, 1.0], ids=["no-socket-timeout", "socket-1s"])
async def test_slowloris_cannot_stretch_the_acse_timeout(socket_timeout: float | None) -> None:
    timeouts = Timeouts(acse=1.5, socket=socket_timeout)
    with FakeSCP([ReadPDU(), Accept(trickle=SLOWLORIS)]) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=timeouts), AssociationTimeout
        )
        assert await wait_until(lambda: not scp.running)  # it has read what we sent
    assert isinstance(error, AssociationTimeout)
    assert error.timer == "phase"
    assert error.mid_pdu
    assert_within(elapsed, 1.5)
    assert aborts(scp) == [(0, 0)]  # our A-ABORT arrived while the peer was trickling


async def test_slowloris_cannot_stretch_the_dimse_timeout() -> None:
    steps = [ReadPDU(), Accept(), ReadEcho(), Respond(EchoReply(trickle=SLOWLORIS))]
    with FakeSCP(steps) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=Timeouts(dimse=1.5)), DIMSETimeout
        )
        assert await wait_until(lambda: not scp.running)  # it has read what we sent
    assert isinstance(error, DIMSETimeout)
    assert error.mid_pdu
    assert_within(elapsed, 1.5)
    assert aborts(scp) == [(0, 0)]


def test_slowloris_on_the_blocking_driver() -> None:
    with FakeSCP([ReadPDU(), Accept(trickle=SLOWLORIS)]) as scp:
        start = time.perf_counter()
        with pytest.raises(AssociationTimeout):
            blocking_echo(LOCAL, scp.port, AssociationOptions(), Timeouts(acse=1.5, socket=1.0))
        assert_within(time.perf_counter() - start, 1.5)


def _empty_pdvs(count: int) -> bytes:
    """`count` P-DATA-TF PDUs, each one empty command PDV (legal, but no progress)."""
    return p_data_tf(pdv(1, 0x01, b"")) * count


async def test_endless_empty_pdvs_cannot_stretch_the_dimse_timeout() -> None:
    one = len(_empty_pdvs(1))
    stream = Send(_empty_pdvs(1000), trickle=Trickle(chunk=one, interval=0.01))
    with FakeSCP([ReadPDU(), Accept(), ReadEcho(), stream]) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=Timeouts(dimse=1.0)), DIMSETimeout
        )
        # The stream (10 s of it) stops because we closed. Whether the peer still reads our
        # A-ABORT depends on a reset racing it (the next PDU lands on our closed socket).
        assert await wait_until(lambda: not scp.running, within=1.0)
    assert isinstance(error, DIMSETimeout)
    assert_within(elapsed, 1.0)
    assert len(scp.received) >= 2  # the RQ and the C-ECHO-RQ, and nothing but an A-ABORT after
    assert pdu_types(scp.received)[2:] in ([], [A_ABORT])


async def test_flood_of_empty_pdvs_is_refused() -> None:
    """Faster than the timeout: the bound on PDVs per command ends it (protocol_error)."""
    with FakeSCP([ReadPDU(), Accept(), ReadEcho(), Send(_empty_pdvs(20_000)), Stall()]) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=Timeouts(dimse=5.0)), DIMSEError
        )
    assert error.outcome == "protocol_error"
    assert error.phase == "echo"
    assert elapsed < 2.0


def test_endless_empty_pdvs_on_the_blocking_driver() -> None:
    one = len(_empty_pdvs(1))
    stream = Send(_empty_pdvs(1000), trickle=Trickle(chunk=one, interval=0.01))
    with FakeSCP([ReadPDU(), Accept(), ReadEcho(), stream]) as scp:
        start = time.perf_counter()
        with pytest.raises(DIMSETimeout):
            blocking_echo(LOCAL, scp.port, AssociationOptions(), Timeouts(dimse=1.0))
        assert_within(time.perf_counter() - start, 1.0)


# --- hostile bytes -------------------------------------------------------------------------------


HUGE_HEADER_AC = struct.pack(">BBI", 0x02, 0, 0xFFFFFFFF)
HUGE_HEADER_PDATA = struct.pack(">BBI", 0x04, 0, 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("steps", "phase", "pdu_type"),
    [
        ([ReadPDU(), Send(HUGE_HEADER_AC), ReadPDU(), Stall()], "associate", 0x02),
        (
            [ReadPDU(), Accept(), ReadEcho(), Send(HUGE_HEADER_PDATA), ReadPDU(), Stall()],
            "echo",
            0x04,
        ),
    ],
    ids=["associate-ac", "echo-p-data"],
)
@pytest.mark.parametrize("max_pdu", [16384, 0], ids=["max-pdu-16384", "max-pdu-unlimited"])
async def test_huge_declared_length_is_refused_at_once(
    steps: list[Step], phase: str, pdu_type: int, max_pdu: int
) -> None:
    with FakeSCP(steps, close_on_abort=False) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, max_pdu=max_pdu, timeouts=Timeouts(acse=5.0, dimse=5.0)),
            ProtocolError,
        )
        assert await wait_until(lambda: not scp.running)
    assert isinstance(error, ProtocolError)
    assert error.outcome == "protocol_error"
    assert error.phase == phase
    assert isinstance(error.error, PDUTooLarge)
    assert error.pdu_type == pdu_type
    assert error.abort_reason == 6
    assert elapsed < QUICK_FAIL
    assert aborts(scp) == [(2, 6)]  # A-ABORT, service provider, invalid PDU parameter value


async def test_huge_declared_length_with_a_flood_keeps_memory_flat() -> None:
    flood = HUGE_HEADER_AC + b"\xaa" * (64 << 20)  # built before measuring: not our memory
    with FakeSCP([ReadPDU(), Send(flood)]) as scp:
        baseline = rss_bytes()
        peak_resettable = reset_peak_rss()
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=Timeouts(acse=5.0)), ProtocolError
        )
        await asyncio.sleep(0.2)  # let any late read land
        grown = rss_bytes("VmHWM" if peak_resettable else "VmRSS") - baseline
    assert isinstance(error, ProtocolError)
    assert isinstance(error.error, PDUTooLarge)
    assert elapsed < QUICK_FAIL
    assert grown < 16 << 20, f"RSS grew by {grown >> 20} MiB"


@pytest.mark.parametrize(
    ("steps", "phase"),
    [
        ([ReadPDU(), Send(pdu(0x09, bytes(4))), ReadPDU(), Stall()], "associate"),
        ([ReadPDU(), Send(b"HTTP/1.1 400 Bad Request\r\n\r\n"), ReadPDU(), Stall()], "associate"),
        ([ReadPDU(), Accept(), ReadEcho(), Send(pdu(0x00, bytes(4))), ReadPDU(), Stall()], "echo"),
    ],
    ids=["type-09-associate", "http-answer", "type-00-echo"],
)
async def test_unknown_pdu_type_is_a_protocol_error(steps: list[Step], phase: str) -> None:
    with FakeSCP(steps, close_on_abort=False) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, timeouts=Timeouts(acse=5.0, dimse=5.0)), ProtocolError
        )
        assert await wait_until(lambda: not scp.running)
    assert isinstance(error, ProtocolError)
    assert error.outcome == "protocol_error"
    assert error.phase == phase
    assert error.abort_reason == 1  # unrecognized PDU
    assert elapsed < QUICK_FAIL
    assert aborts(scp) == [(2, 1)]


# --- connecting ----------------------------------------------------------------------------------


async def test_connection_refused() -> None:
    holder, port = unused_port()
    with holder:
        error, elapsed = await timed_failure(echo(LOCAL, port, timeouts=FAST), ConnectionRefused)
        record = await probe(LOCAL, port, timeouts=FAST)
    assert error.outcome == "connection_refused"
    assert error.phase == "connect"
    assert elapsed < QUICK_FAIL
    assert_probe(record, Outcome.CONNECTION_REFUSED, "connect")


async def test_connect_timeout() -> None:
    with FullBacklog() as backlog:
        (error, elapsed), record = await asyncio.gather(
            timed_failure(
                echo(LOCAL, backlog.port, timeouts=Timeouts(connect=0.5)), ConnectTimeout
            ),
            probe(LOCAL, backlog.port, timeouts=Timeouts(connect=0.5)),
        )
    assert error.outcome == "connect_timeout"
    assert error.phase == "connect"
    assert_within(elapsed, 0.5)
    assert_probe(record, Outcome.CONNECT_TIMEOUT, "connect")


async def test_total_deadline_while_connecting() -> None:
    with FullBacklog() as backlog:
        error, elapsed = await timed_failure(
            echo(LOCAL, backlog.port, timeouts=Timeouts(connect=5.0, total=0.5)),
            DeadlineExceeded,
        )
    assert error.outcome == "deadline_exceeded"
    assert error.phase == "connect"
    assert_within(elapsed, 0.5)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this host")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
async def test_ipv6_loopback(scp_factory: ScpFactory, host: str) -> None:
    scp = scp_factory(host="::1")
    result = await echo(host, scp.port, timeouts=FAST)
    assert result.ok
    assert result.peer.address == f"[::1]:{scp.port}"
    record = await probe(host, scp.port, timeouts=FAST)
    assert_probe(record, Outcome.SUCCESS)
    assert record.target == f"ANY-SCP@[::1]:{scp.port}"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this host")
async def test_ipv6_loopback_raw_peer() -> None:
    with FakeSCP([ReadPDU(), Accept(), Serve()], host="::1") as scp:
        result = await echo("::1", scp.port, timeouts=FAST)
    assert result.ok


async def test_localhost(scp_factory: ScpFactory) -> None:
    """`localhost` may resolve to ::1 first: a refused address must fall through to the next."""
    scp = scp_factory(host="127.0.0.1")
    result = await echo("localhost", scp.port, timeouts=FAST)
    assert result.ok
    assert result.peer.address == f"localhost:{scp.port}"
    record = await probe("localhost", scp.port, timeouts=FAST)
    assert_probe(record, Outcome.SUCCESS)
    if has_ipv6_loopback():
        both = scp_factory(host=["127.0.0.1", "::1"])
        assert (await echo("localhost", both.port, timeouts=FAST)).ok


# --- cancellation --------------------------------------------------------------------------------


CANCEL_POINTS = {
    # id: (scenario, how many PDUs the fake SCP has received when we cancel)
    "echo": ([ReadPDU(), Accept(), ReadEcho(), Stall()], 2),
    "release": ([ReadPDU(), Accept(), ReadEcho(), Respond(), Stall()], 3),
}


@BOTH_LOOPS
@pytest.mark.parametrize("point", list(CANCEL_POINTS))
async def test_cancel_mid_association_sends_abort_and_closes(loop_kind: str, point: str) -> None:
    steps, received = CANCEL_POINTS[point]
    with FakeSCP(steps, close_on_abort=False) as scp:
        task = asyncio.create_task(
            echo(LOCAL, scp.port, timeouts=Timeouts(acse=20.0, dimse=20.0, release=20.0))
        )
        assert await wait_until(lambda: len(scp.received) == received)
        cancelled_at = time.monotonic() - scp._start
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_until(lambda: not scp.running, within=1.0), scp.events
    assert aborts(scp) == [(0, 0)]
    abort = scp.received[-1]
    assert abort.pdu_type == A_ABORT
    assert abort.at - cancelled_at < 0.5
    assert scp.events[-1].endswith("ended: EOF"), scp.events  # and then we closed


async def test_cancel_while_associating_sends_abort() -> None:
    with FakeSCP([ReadPDU(), Stall()], close_on_abort=False) as scp:
        task = asyncio.create_task(echo(LOCAL, scp.port, timeouts=Timeouts(acse=20.0)))
        assert await wait_until(lambda: scp.associate_rq is not None)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_until(lambda: not scp.running, within=1.0), scp.events
    assert aborts(scp) == [(0, 0)]


async def test_timeout_around_echo_aborts_at_the_scp(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(silent_at="echo"))
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await echo(LOCAL, scp.port, timeouts=Timeouts(dimse=20.0))
    assert time.perf_counter() - start < 0.5 + SLACK
    assert await wait_until(lambda: scp.counters.aborts_received == 1, within=1.0)


# --- more hostile answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply_steps", "error_type", "code"),
    [
        ([Respond(EchoReply(message_id=7))], DIMSEError, "unexpected_message_id"),
        ([Respond(EchoReply(command_field=0x8001))], DIMSEError, "unexpected_command_field"),
        ([Send(pdu(A_RELEASE_RQ, bytes(4)))], ProbeError, None),
    ],
    ids=["wrong-message-id", "c-store-rsp", "release-rq-instead"],
)
async def test_wrong_answer_to_the_echo_aborts(
    reply_steps: list[Step], error_type: type[ProbeError], code: str | None
) -> None:
    steps = [ReadPDU(), Accept(), ReadEcho(), *reply_steps, Stall()]
    with FakeSCP(steps, close_on_abort=False) as scp:
        error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), error_type)
        assert await wait_until(lambda: not scp.running)
    assert error.outcome == "protocol_error"
    assert error.phase == "echo"
    if code is not None:
        assert isinstance(error, DIMSEError)
        assert error.code == code
    assert elapsed < QUICK_FAIL
    assert len(aborts(scp)) == 1


@pytest.mark.parametrize("max_length", [1, 12])
async def test_peer_max_pdu_too_small_to_send(max_length: int) -> None:
    with FakeSCP([ReadPDU(), Accept(max_length=max_length), Stall()]) as scp:
        error, elapsed = await timed_failure(echo(LOCAL, scp.port, timeouts=FAST), DIMSEError)
        assert await wait_until(lambda: not scp.running)
    assert error.outcome == "protocol_error"
    assert elapsed < QUICK_FAIL
    assert scp.echo_requests == []
    assert len(aborts(scp)) == 1


async def test_peer_max_pdu_unlimited_or_tiny_but_legal() -> None:
    for max_length in (0, 14, 0xFFFFFFFF):  # 0 = no limit; 14 = 2-byte fragments
        with FakeSCP([ReadPDU(), Accept(max_length=max_length), Serve()]) as scp:
            result = await echo(LOCAL, scp.port, timeouts=FAST)
        assert result.ok, max_length
        assert [r.message_id for r in scp.echo_requests] == [1]


# --- what arrives together with the last C-ECHO-RSP ------------------------------------------


def _rsp(message_id: int) -> bytes:
    return p_data_tf(pdv(1, 0x03, c_echo_rsp(message_id)))


TRAILERS = {
    # id: (bytes right behind the C-ECHO-RSP, the release as recorded, probe outcome)
    "release-rq": (a_release_rq(), "released", Outcome.SUCCESS),
    "abort": (a_abort(2, 0), "peer_aborted", Outcome.RELEASE_FAILED),
    "release-rp": (a_release_rp(), "protocol_error", Outcome.RELEASE_FAILED),
}


@pytest.mark.parametrize("trailer", list(TRAILERS))
async def test_pdu_right_behind_the_last_response(trailer: str) -> None:
    """The peer's next PDU arrives in the same read as the answer: the echo verdict stands and
    the release is recorded from what the peer did (never an internal error)."""
    extra, release, outcome = TRAILERS[trailer]
    steps = [ReadPDU(), Accept(), ReadEcho(), Send(_rsp(1) + extra), Stall()]
    with FakeSCP(steps, close_on_abort=False) as scp:
        result = await echo(LOCAL, scp.port, timeouts=FAST)
        assert await wait_until(lambda: not scp.running)
    assert result.ok
    assert result.release == release
    sent_after = pdu_types(scp.received)[2:]
    if trailer == "release-rq":
        assert sent_after == [A_RELEASE_RP]  # we answered the peer's release (AR-4)
    elif trailer == "release-rp":
        assert aborts(scp) == [(2, 2)]  # unexpected PDU (AA-8)
    else:
        assert sent_after == []
    with FakeSCP(steps) as scp:
        record = await probe(LOCAL, scp.port, timeouts=FAST)
    assert_probe(record, outcome)
    assert record.detail["release"] == release


@pytest.mark.parametrize(
    ("trailer", "error_type"),
    [
        (a_release_rq(), PeerRequestedRelease),
        (a_abort(2, 0), AssociationAborted),
        (a_release_rp(), ProtocolError),
    ],
    ids=["release-rq", "abort", "release-rp"],
)
async def test_pdu_right_behind_a_response_before_the_next_echo(
    trailer: bytes, error_type: type[ProbeError]
) -> None:
    steps = [ReadPDU(), Accept(), ReadEcho(), Send(_rsp(1) + trailer), Stall()]
    with FakeSCP(steps) as scp:
        error, elapsed = await timed_failure(
            echo(LOCAL, scp.port, repeat=2, timeouts=FAST), error_type
        )
    assert error.phase == "echo"
    assert elapsed < QUICK_FAIL
    with FakeSCP(steps) as scp:
        record = await probe(LOCAL, scp.port, repeat=2, timeouts=FAST)
    assert record.outcome.value == error.outcome
    assert record.phase == "echo"


def test_pdu_right_behind_the_last_response_on_the_blocking_driver() -> None:
    steps = [ReadPDU(), Accept(), ReadEcho(), Send(_rsp(1) + a_abort(2, 0)), Stall()]
    with FakeSCP(steps) as scp:
        outcome = blocking_echo(LOCAL, scp.port, AssociationOptions(), FAST)
    assert [r.status for r in outcome.replies] == [0]
    assert outcome.release == "peer_aborted"


# --- nothing left behind -------------------------------------------------------------------------


def _open_sockets() -> set[str]:
    """This process's open sockets (the threaded SCPs' ends included), as "fd:socket:[inode]"."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing itself, or another thread)
        if target.startswith("socket:"):
            out.add(f"{fd}:{target}")
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_failures_leave_no_socket_or_task_behind(scp_factory: ScpFactory) -> None:
    scps = [
        scp_factory(faults=f)
        for f in (
            Faults(reject=(1, 1, 1)),
            Faults(abort_at="echo"),
            Faults(close_at="associate"),
            Faults(status=0x0110),
            Faults(silent_at="echo"),
            Faults(reject_contexts=True),
        )
    ]
    holder, refused_port = unused_port()
    with holder, FullBacklog() as backlog:
        await asyncio.sleep(0.1)
        baseline = _open_sockets()
        timeouts = Timeouts(connect=0.3, dimse=0.3)
        for _ in range(3):
            records = await asyncio.gather(
                *(probe(LOCAL, s.port, timeouts=timeouts) for s in scps),
                probe(LOCAL, refused_port, timeouts=timeouts),
                probe(LOCAL, backlog.port, timeouts=timeouts),
            )
            assert not any(r.ok for r in records)
            task = asyncio.create_task(echo(LOCAL, scps[4].port, timeouts=Timeouts(dimse=9.0)))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # The SCPs' ends live in this process too: give their close a moment.
        assert await wait_until(lambda: len(_open_sockets()) <= len(baseline)), (
            _open_sockets() - baseline
        )
        assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_release_collision_without_the_final_rp_is_not_waited_for() -> None:
    """The peer crosses our A-RELEASE-RQ with its own, then never sends its A-RELEASE-RP: we
    complete our side of the collision (Sta9 → AR-9 → Sta11) and give up promptly, not after
    the release timeout."""
    slow_release = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=20.0)
    with FakeSCP([ReadPDU(), Accept(), Serve(release="collision")]) as scp:
        started = time.monotonic()
        result = await echo(LOCAL, scp.port, timeouts=slow_release)
        took = time.monotonic() - started
    assert result.ok
    assert result.release == "release_timeout"
    assert took < 5.0


def test_a_failed_request_write_is_reported_as_a_write_failure() -> None:
    """When writing the A-ASSOCIATE-RQ itself fails (the peer has already reset or closed),
    the blocking driver says so (`write_error`), as DCMTK reports `sendAssociationRQTCP`,
    instead of reporting a peer that closed."""
    from echoprobe.errors import ConnectionLost
    from echoprobe.net.procedure import start_procedure

    ours, theirs = socket.socketpair()
    theirs.close()  # our first write fails: EPIPE
    conn, flow = start_procedure(
        AssociationOptions(), FAST, time.monotonic, time.monotonic(), None,
        observer=None, timings={},
    )  # fmt: skip
    conn.connection_made(time.monotonic())
    with pytest.raises(ConnectionLost) as info:
        blocking.drive(ours, conn, flow)
    assert info.value.phase == "associate"
    assert info.value.write_error == "Broken pipe"
