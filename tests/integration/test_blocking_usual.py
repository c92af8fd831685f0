"""The blocking driver's usual path (`blocking.drive_usual`) against the procedure alone.

Each scenario runs twice against the independent fake SCP: once through `blocking.drive` (the
association procedure on every read) and once through `drive_usual` (byte comparisons, falling
back to the procedure with a replay). Both must end the same way (outcome or error, phase,
replies), make the same observer calls, and put the same PDUs on the wire. Also: the kernel
timeouts of plain sockets fire (never early), and the usual path really is taken.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest

from echoprobe.errors import DIMSETimeout, ProbeError
from echoprobe.net import blocking
from echoprobe.net.association import (
    AssociationOutcome,
    Driver,
    Observer,
    Resume,
    run_association,
)
from echoprobe.net.procedure import request_for
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.ul.connection import Role, ULConnection
from tests.support.fake_scp import (
    Abort,
    Accept,
    Close,
    EchoReply,
    FakeSCP,
    ReadEcho,
    ReadPDU,
    Release,
    Reset,
    Respond,
    Serve,
    Sleep,
    Stall,
    Step,
    Trickle,
)
from tests.support.servers import ThreadedEchoSCP

LOCAL = "127.0.0.1"
SLACK = 0.5  # seconds a timeout may overrun its configured value


class Recorder:
    """An observer that writes down every call (what echoscu's log lines come from)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def association_accepted(self, accept: object, raw: bytes, negotiated: Any) -> None:
        self.calls.append(("accepted", raw, negotiated.context_id, negotiated.max_send_pdu))

    def association_failed_no_context(self, accept: object, raw: bytes) -> None:
        self.calls.append(("no_context", raw))

    def echo_sending(self, message_id: int) -> None:
        self.calls.append(("sending", message_id))

    def echo_received(self, response: Any) -> None:
        self.calls.append(("received", response.message_id, response.status))

    def releasing(self) -> None:
        self.calls.append(("releasing",))

    def aborting(self) -> None:
        self.calls.append(("aborting",))


def _run(
    port: int,
    options: AssociationOptions,
    timeouts: Timeouts,
    *,
    usual: bool,
    keep_replies: bool = True,
) -> tuple[AssociationOutcome | ProbeError, Recorder]:
    request, request_bytes = request_for(options)
    recorder = Recorder()

    def start_general(
        clock: Any, observer: Observer, resume: Resume | None = None
    ) -> tuple[ULConnection, Driver]:
        conn = ULConnection(Role.REQUESTOR, max_receive_pdu=options.max_pdu)
        now = clock()
        conn.start_connect(request_bytes, now)
        conn.connection_made(now)
        flow = run_association(
            conn,
            request,
            options,
            timeouts,
            clock,
            observer=observer,
            resume=resume,
            keep_replies=keep_replies,
        )
        return conn, flow

    sock = blocking.connect(LOCAL, port, timeouts.connect)
    try:
        if usual:
            outcome = blocking.drive_usual(
                sock,
                request,
                request_bytes,
                options,
                timeouts,
                recorder,
                start_general,
                keep_replies=keep_replies,
            )
        else:
            conn, flow = start_general(blocking.clock, recorder)
            outcome = blocking.drive(sock, conn, flow)
    except ProbeError as exc:
        return exc, recorder
    return outcome, recorder


def _summary(result: AssociationOutcome | ProbeError) -> tuple[Any, ...]:
    if isinstance(result, ProbeError):
        return ("error", type(result).__name__, result.phase, getattr(result, "timer", None))
    replies = [(r.message_id, r.status) for r in result.replies]
    return ("outcome", result.release, result.collision, replies, result.negotiated.context_id)


def _both(steps: Sequence[Step], options: AssociationOptions, timeouts: Timeouts) -> None:
    """Run the scenario through both drivers and assert that they agree."""
    seen = []
    for usual in (False, True):
        with FakeSCP(list(steps)) as scp:
            result, recorder = _run(scp.port, options, timeouts, usual=usual)
            time.sleep(0.05)  # let the SCP record the last PDU (A-ABORT or A-RELEASE-RQ)
        wire = [r.pdu_type for r in scp.received]
        seen.append((_summary(result), recorder.calls, wire))
    assert seen[0][0] == seen[1][0], "outcome"
    assert seen[0][1] == seen[1][1], "observer calls"
    assert seen[0][2] == seen[1][2], "PDUs on the wire"


FAST = Timeouts(connect=2.0, acse=1.0, dimse=1.0, release=1.0)
SOCKET = Timeouts(connect=2.0, acse=1.0, dimse=None, release=1.0, socket=0.4)
SPLIT = Trickle(head=7, head_pause=0.05)

ANSWERED_30: tuple[Step, ...] = tuple(step for _ in range(30) for step in (ReadEcho(), Respond()))

SCENARIOS: dict[str, tuple[list[Step], AssociationOptions]] = {
    "usual": ([ReadPDU(), Accept(), Serve()], AssociationOptions(repeat=3)),
    "ac-split": ([ReadPDU(), Accept(trickle=SPLIT), Serve()], AssociationOptions(repeat=2)),
    "rsp-split": (
        [ReadPDU(), Accept(), ReadEcho(), Respond(EchoReply(trickle=SPLIT)), Serve()],
        AssociationOptions(repeat=3),
    ),
    "rsp-status": (
        [ReadPDU(), Accept(), Serve(reply=EchoReply(status=0xA700))],
        AssociationOptions(repeat=2),
    ),
    "rsp-fragmented": (
        [ReadPDU(), Accept(), Serve(reply=EchoReply(fragment=20))],
        AssociationOptions(repeat=2),
    ),
    "wrong-message-id": (
        [ReadPDU(), Accept(), ReadEcho(), Respond(EchoReply(message_id=9)), Stall()],
        AssociationOptions(repeat=1),
    ),
    "context-rejected": ([ReadPDU(), Accept(default_result=3), Stall()], AssociationOptions()),
    "abort-after-ac": ([ReadPDU(), Accept(), ReadEcho(), Abort()], AssociationOptions()),
    "close-in-echo": ([ReadPDU(), Accept(), ReadEcho(), Close()], AssociationOptions()),
    "reset-in-echo": ([ReadPDU(), Accept(), ReadEcho(), Reset()], AssociationOptions()),
    "release-abort": (
        [ReadPDU(), Accept(), Serve(release="abort")],
        AssociationOptions(repeat=2),
    ),
    "release-collision": (
        [ReadPDU(), Accept(), Serve(release="collision")],
        AssociationOptions(repeat=1),
    ),
    "silent-in-echo": ([ReadPDU(), Accept(), ReadEcho(), Stall()], AssociationOptions()),
    "silent-at-release": (
        [ReadPDU(), Accept(), Serve(release="silence")],
        AssociationOptions(repeat=1),
    ),
    "late-answer": (
        [ReadPDU(), Accept(), ReadEcho(), Sleep(0.2), Respond(), Release()],
        AssociationOptions(),
    ),
    # Hand-overs after many usual echoes: the procedure resumes after them (no replay).
    "abort-after-30": (
        [ReadPDU(), Accept(), *ANSWERED_30, ReadEcho(), Abort()],
        AssociationOptions(repeat=40),
    ),
    "split-after-30": (
        [ReadPDU(), Accept(), *ANSWERED_30, ReadEcho(), Respond(EchoReply(trickle=SPLIT)), Serve()],
        AssociationOptions(repeat=40),
    ),
    "status-after-30": (
        [ReadPDU(), Accept(), *ANSWERED_30, ReadEcho(), Respond(EchoReply(status=0xA700)), Serve()],
        AssociationOptions(repeat=35),
    ),
    "collision-after-30": (
        [ReadPDU(), Accept(), *ANSWERED_30, Serve(release="collision")],
        AssociationOptions(repeat=30),
    ),
    "silent-after-30": (
        [ReadPDU(), Accept(), *ANSWERED_30, ReadEcho(), Stall()],
        AssociationOptions(repeat=40),
    ),
}


@pytest.mark.parametrize("timeouts", [FAST, SOCKET], ids=["phase-timeouts", "socket-timeout"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_usual_path_ends_as_the_procedure_does(name: str, timeouts: Timeouts) -> None:
    steps, options = SCENARIOS[name]
    _both(steps, options, timeouts)


def test_the_usual_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fall_back(*args: object) -> None:
        raise AssertionError("fell back")

    monkeypatch.setattr(blocking._Usual, "fall_back", no_fall_back)
    with FakeSCP([ReadPDU(), Accept(), Serve()]) as scp:
        outcome, recorder = _run(scp.port, AssociationOptions(repeat=50), FAST, usual=True)
    assert isinstance(outcome, AssociationOutcome)
    assert [r.message_id for r in outcome.replies] == list(range(1, 51))
    assert outcome.release == "released"
    assert recorder.calls[0][0] == "accepted"
    assert recorder.calls[-1] == ("releasing",)
    assert [r.message_id for r in scp.echo_requests] == list(range(1, 51))


@pytest.mark.parametrize("name", ["usual", "abort-after-30", "split-after-30", "status-after-30"])
def test_without_replies_only_the_replies_differ(name: str) -> None:
    """keep_replies=False (echoscu): the same ending, calls and wire, and no reply kept."""
    steps, options = SCENARIOS[name]
    for usual in (False, True):
        with FakeSCP(list(steps)) as scp:
            kept, kept_calls = _run(scp.port, options, FAST, usual=usual)
        with FakeSCP(list(steps)) as scp:
            bare, bare_calls = _run(scp.port, options, FAST, usual=usual, keep_replies=False)
        assert kept_calls.calls == bare_calls.calls
        if isinstance(kept, ProbeError):
            assert _summary(kept) == _summary(bare)
        else:
            assert isinstance(bare, AssociationOutcome)
            assert bare.replies == []
            assert (bare.release, bare.collision) == (kept.release, kept.collision)


class _LastEchoSnapshot:
    """An observer that keeps nothing per echo, and at the last answer measures what the
    blocking driver's code holds alive (tracemalloc, allocations made in `net/blocking.py`)."""

    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.received = 0
        self.held = -1

    def association_accepted(self, accept: object, raw: bytes, negotiated: Any) -> None:
        pass

    def association_failed_no_context(self, accept: object, raw: bytes) -> None:
        pass

    def echo_sending(self, message_id: int) -> None:
        pass

    def echo_received(self, response: Any) -> None:
        self.received += 1
        if self.received == self.repeat:
            ours = tracemalloc.Filter(True, blocking.__file__)
            traces = tracemalloc.take_snapshot().filter_traces([ours])
            self.held = sum(stat.size for stat in traces.statistics("filename"))

    def releasing(self) -> None:
        pass

    def aborting(self) -> None:
        pass


@pytest.mark.parametrize("keep_replies", [False, True], ids=["echoscu", "replies-kept"])
def test_a_long_usual_run_keeps_no_state_per_echo(
    echo_scp: ThreadedEchoSCP, keep_replies: bool
) -> None:
    """echoscu's `--repeat` runs for hours: without replies kept, what the usual path holds
    does not grow with the echoes done (and a hand-over replays none of them)."""

    def held(repeat: int) -> int:
        options = AssociationOptions(repeat=repeat)
        request, request_bytes = request_for(options)
        observer = _LastEchoSnapshot(repeat)

        def no_fall_back(*args: object) -> tuple[ULConnection, Driver]:
            raise AssertionError("fell back")

        sock = blocking.connect(LOCAL, echo_scp.port, FAST.connect)
        tracemalloc.start()
        try:
            outcome = blocking.drive_usual(
                sock,
                request,
                request_bytes,
                options,
                FAST,
                observer,
                no_fall_back,
                keep_replies=keep_replies,
            )
        finally:
            tracemalloc.stop()
        assert len(outcome.replies) == (repeat if keep_replies else 0)
        assert observer.received == repeat
        return observer.held

    few, many = held(10), held(2010)
    if keep_replies:
        assert many - few > 2000 * 50  # the test sees per-echo state when there is some
    else:
        assert many - few < 1000, (few, many)


@pytest.mark.parametrize("usual", [False, True], ids=["procedure", "usual-path"])
def test_kernel_timeouts_fire_and_never_early(usual: bool) -> None:
    """A DIMSE timeout on a plain socket (SO_RCVTIMEO) and the per-read socket timeout."""
    for timeouts, timer in (
        (Timeouts(connect=2.0, acse=1.0, dimse=0.3, release=1.0), "phase"),
        (Timeouts(connect=2.0, acse=1.0, dimse=None, release=1.0, socket=0.3), "socket"),
    ):
        with FakeSCP([ReadPDU(), Accept(), ReadEcho(), Stall()]) as scp:
            start = time.monotonic()
            result, _ = _run(scp.port, AssociationOptions(), timeouts, usual=usual)
            took = time.monotonic() - start
        assert isinstance(result, DIMSETimeout), result
        assert result.timer == timer
        assert 0.3 <= took < 0.3 + SLACK + 1.0
