"""The requestor's association procedure, written once for every driver.

`run_association()` is a generator: it drives a `ULConnection` through A-ASSOCIATE, the
C-ECHO exchanges and the release, and yields `Wait` requests; the driver answers each with
the bytes it read (`b""` on EOF) or a `TimedOut` value. The driver writes `Wait.send` before
waiting and, when the generator returns, flushes `conn.data_to_send()` and closes.

So deadlines, error classification and result building live here, once; a blocking-socket
driver (the `echoscu` start-up path) and the asyncio driver only move bytes.

Deadline rule: every wait is bounded by min(phase deadline, absolute deadline), and, when a
socket timeout is set, by that too inside a half-read PDU or in a phase without a timeout of its
own (it restarts with every read, like DCMTK's `-ts`). Phase
deadlines are fixed when the phase starts, so no amount of trickled bytes extends them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from echoprobe.dimse.echo import (
    EchoResponse,
    echo_request_pdus,
    message_id_for,
    parse_echo_response,
)
from echoprobe.dimse.fragment import Reassembler
from echoprobe.errors import (
    AssociationAborted,
    AssociationRejected,
    AssociationTimeout,
    ConnectionLost,
    DeadlineExceeded,
    DIMSEError,
    DIMSETimeout,
    PeerRequestedRelease,
    ProbeError,
    ProtocolError,
    ReleaseTimeout,
    RemoteProtocolError,
    SendImpossible,
    TimeoutError_,
)
from echoprobe.net.outcome import AssociationOutcome, Resume, TimedOut, Wait
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.reply import EchoReply
from echoprobe.ul.connection import ULConnection
from echoprobe.ul.events import (
    NEED_DATA,
    AbortReceived,
    ARTIMExpired,
    AssociationAccepted,
    ConnectionClosed,
    DataReceived,
    ProtocolViolation,
    ReleaseConfirmed,
    ReleaseRequested,
    ULEvent,
)
from echoprobe.ul.events import (
    AssociationRejected as RejectedEvent,
)
from echoprobe.ul.fsm import Event, State
from echoprobe.ul.negotiation import Negotiated, validate_accept
from echoprobe.ul.pdu import AssociateAC, AssociateRQ

# Not typing.TYPE_CHECKING: echoscu's start-up must not pay for importing typing.
TYPE_CHECKING = False

# AssociationOutcome, TimedOut and Wait live in `net.outcome` (a driver's usual path needs them
# without the state machine) and are re-exported here, where drivers have always found them.
__all__ = [
    "COLLISION_WAIT",
    "AssociationOutcome",
    "Driver",
    "EchoTally",
    "NullObserver",
    "Observer",
    "Resume",
    "TimedOut",
    "Wait",
    "run_association",
]


# How long the final A-RELEASE-RP of a release collision (PS3.8 Sta11, AR-3) is waited for.
COLLISION_WAIT = 0.5


Driver = Generator[Wait, "bytes | TimedOut", "AssociationOutcome"]


if TYPE_CHECKING:
    from typing import Protocol

    class Observer(Protocol):
        """Hooks for callers that report progress (echoscu's log lines). All optional in effect:
        `NullObserver` implements them as no-ops."""

        def association_accepted(
            self, accept: AssociateAC, raw: bytes, negotiated: Negotiated
        ) -> None: ...
        def association_failed_no_context(self, accept: AssociateAC, raw: bytes) -> None: ...
        def echo_sending(self, message_id: int) -> None: ...
        def echo_received(self, response: EchoResponse) -> None: ...
        def releasing(self) -> None: ...
        def aborting(self) -> None: ...


class NullObserver:
    def association_accepted(self, accept: AssociateAC, raw: bytes, negotiated: Negotiated) -> None:
        pass

    def association_failed_no_context(self, accept: AssociateAC, raw: bytes) -> None:
        pass

    def echo_sending(self, message_id: int) -> None:
        pass

    def echo_received(self, response: EchoResponse) -> None:
        pass

    def releasing(self) -> None:
        pass

    def aborting(self) -> None:
        pass


if not TYPE_CHECKING:
    Observer = NullObserver  # at run time a name to import; type checkers see the Protocol


class EchoTally:
    """A running count of C-ECHOs answered with status 0000H, shared by many associations
    (a load generator's live echoes/s); cheaper than an `Observer`, so the fast path keeps it."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0


class _Phase:
    """Deadlines of one phase, fixed at its start."""

    __slots__ = ("deadline", "name", "phase_deadline", "total_deadline")

    def __init__(
        self, name: str, start: float, timeout: float | None, total_deadline: float | None
    ) -> None:
        self.name = name
        self.total_deadline = total_deadline
        self.phase_deadline = None if timeout is None else start + timeout
        if self.phase_deadline is None:
            self.deadline = total_deadline
        elif total_deadline is None:
            self.deadline = self.phase_deadline
        else:
            self.deadline = min(self.phase_deadline, total_deadline)


_PHASE_TIMEOUT: dict[str, type[TimeoutError_]] = {
    "associate": AssociationTimeout,
    "echo": DIMSETimeout,
    "release": ReleaseTimeout,
}


def _timeout_error(phase: _Phase, which: TimedOut, mid_pdu: bool) -> TimeoutError_:
    if which is TimedOut.SOCKET:
        return _PHASE_TIMEOUT[phase.name](
            f"no data for the socket timeout while in phase {phase.name}",
            phase=phase.name,
            timer="socket",
            mid_pdu=mid_pdu,
        )
    if (
        phase.total_deadline is not None
        and phase.deadline == phase.total_deadline
        and (phase.phase_deadline is None or phase.total_deadline < phase.phase_deadline)
    ):
        return DeadlineExceeded(
            f"the association's deadline passed during phase {phase.name}",
            phase=phase.name,
            timer="total",
            mid_pdu=mid_pdu,
        )
    return _PHASE_TIMEOUT[phase.name](
        f"{phase.name} timeout", phase=phase.name, timer="phase", mid_pdu=mid_pdu
    )


def _next_event(
    conn: ULConnection, phase: _Phase, socket_timeout: float | None, clock: Callable[[], float]
) -> Generator[Wait, bytes | TimedOut, ULEvent]:
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        if conn.close_requested:
            # Nothing more can arrive on a connection the state machine has closed.
            return ConnectionClosed(expected=False, mid_pdu=conn.mid_pdu)
        # The per-read socket timeout bounds a half-read PDU, and the whole wait when the
        # phase has no timeout of its own (DCMTK's -ts: the header wait is -ta/-td's job).
        per_read = socket_timeout if (conn.mid_pdu or phase.phase_deadline is None) else None
        reply = yield Wait(conn.data_to_send(), phase.deadline, per_read)
        if isinstance(reply, TimedOut):
            raise _timeout_error(phase, reply, conn.mid_pdu)
        conn.receive_data(reply, clock())


def _raise_for(event: ULEvent, phase: str) -> ProbeError:
    """The error an unexpected event means in `phase`."""
    if isinstance(event, AbortReceived):
        return AssociationAborted(event.source, event.reason, phase=phase)
    if isinstance(event, ConnectionClosed):
        how = "in the middle of a PDU" if event.mid_pdu else "at a PDU boundary"
        return ConnectionLost(
            f"peer closed the connection {how} during {phase}", phase=phase, mid_pdu=event.mid_pdu
        )
    if isinstance(event, ProtocolViolation):
        return ProtocolError(event.error, phase=phase)
    if isinstance(event, ARTIMExpired):
        return ConnectionLost("ARTIM timer expired", phase=phase)
    return ProtocolError(
        RemoteProtocolError(f"unexpected {type(event).__name__}", abort_reason=2), phase=phase
    )


def _abort_and_linger(
    conn: ULConnection, options: AssociationOptions, clock: Callable[[], float]
) -> Generator[Wait, bytes | TimedOut, None]:
    """Send A-ABORT (if the state allows) and give the peer `abort_linger` s to close."""
    conn.abort(clock())
    if options.abort_linger <= 0:
        return
    deadline = clock() + options.abort_linger
    while not conn.close_requested:
        reply = yield Wait(conn.data_to_send(), deadline, None)
        if isinstance(reply, TimedOut) or not reply:
            return
        conn.receive_data(reply, clock())


def run_association(
    conn: ULConnection,
    request: AssociateRQ,
    options: AssociationOptions,
    timeouts: Timeouts,
    clock: Callable[[], float],
    *,
    total_deadline: float | None = None,
    observer: Observer | None = None,
    timings: dict[str, float] | None = None,
    tally: EchoTally | None = None,
    keep_replies: bool = True,
    resume: Resume | None = None,
) -> Driver:
    """Run A-ASSOCIATE, `options.repeat` C-ECHOs and the release on a connected `conn`
    (`start_connect` and `connection_made` already called: the RQ is in `data_to_send()`).

    `keep_replies=False` checks every C-ECHO-RSP but keeps no `EchoReply` (the outcome's
    `replies` stays empty): echoscu, whose `--repeat` may run for hours in flat memory.
    `resume`: a driver's usual path already exchanged that many C-ECHOs (fed only the
    A-ASSOCIATE-AC again); the procedure carries on from the next one."""
    obs: Observer = observer if observer is not None else NullObserver()
    timings = {} if timings is None else timings
    sock_to = timeouts.socket

    # --- A-ASSOCIATE (PS3.8 §7.1) -----------------------------------------------------
    start = clock()
    phase = _Phase("associate", start, timeouts.acse, total_deadline)
    try:
        event = yield from _next_event(conn, phase, sock_to, clock)
    except TimeoutError_:
        if not options.abort_on_failure:
            conn.close_requested = True  # DCMTK just closes when the answer never comes
        raise
    if isinstance(event, RejectedEvent):
        rj = event.reject
        raise AssociationRejected(rj.result, rj.source, rj.reason)
    if not isinstance(event, AssociationAccepted):
        raise _raise_for(event, "associate")
    try:
        negotiated = validate_accept(request, event.accept)
    except ProbeError:
        obs.association_failed_no_context(event.accept, event.raw)
        if options.abort_on_failure:
            yield from _abort_and_linger(conn, options, clock)
        else:
            conn.close_requested = True
        raise
    now = clock()
    timings["associate"] = (now - start) * 1000.0
    obs.association_accepted(event.accept, event.raw, negotiated)

    # --- C-ECHO exchanges (PS3.7 §9.3.5) ------------------------------------------------
    replies: list[EchoReply] = [] if resume is None else resume.replies
    resumed_at = None if resume is None else resume.at
    accepted_ids = frozenset(cid for cid, result in negotiated.context_results if result == 0)
    reassembler = Reassembler(accepted_ids)
    echo_start = now
    try:
        for index in range(0 if resume is None else resume.echoes, options.repeat):
            message_id = message_id_for(index)
            obs.echo_sending(message_id)
            if negotiated.max_send_pdu <= 12:
                raise SendImpossible(negotiated.max_send_pdu)
            if resumed_at is None:
                sent_at = clock()
            else:  # the first request after a hand-over went out when the last answer came
                sent_at, resumed_at = resumed_at, None
            if conn.state is State.STA6:
                conn.send_pdata(
                    echo_request_pdus(message_id, negotiated.context_id, negotiated.max_fragment)
                )
            # Otherwise the peer's A-ABORT, A-RELEASE-RQ, close or a bad PDU arrived in the same
            # read as the last answer: nothing can be sent, and the wait below reports it.
            phase = _Phase("echo", sent_at, timeouts.dimse, total_deadline)
            while True:
                event = yield from _next_event(conn, phase, sock_to, clock)
                if isinstance(event, DataReceived):
                    try:
                        command = reassembler.feed(event.pdvs)
                    except RemoteProtocolError as exc:
                        raise DIMSEError(str(exc), code=exc.field or "pdv") from exc
                    if command is not None:
                        break
                elif isinstance(event, ReleaseRequested):
                    raise PeerRequestedRelease(
                        "peer requested release during the echo", phase="echo"
                    )
                else:
                    raise _raise_for(event, "echo")
            response = parse_echo_response(command[1], message_id)
            received_at = clock()
            if keep_replies:
                replies.append(
                    EchoReply(
                        message_id,
                        response.status,
                        (received_at - sent_at) * 1000.0,
                        response.error_comment,
                    )
                )
            obs.echo_received(response)
            if tally is not None and response.status == 0:
                tally.total += 1
    except (DIMSEError, DIMSETimeout, PeerRequestedRelease, DeadlineExceeded) as exc:
        if isinstance(exc, TimeoutError_) and exc.timer == "socket" and not exc.mid_pdu:
            # DCMTK treats a socket timeout before any byte of the answer like a peer abort:
            # nothing is sent. The echoscu front end maps it; the wire stays silent.
            conn.close_requested = True
            raise
        yield from _abort_and_linger(conn, options, clock)
        raise
    except ProtocolError:
        # AA-8 already sent A-ABORT (source 2); give the peer the same chance to close.
        if options.abort_linger > 0:
            yield from _abort_and_linger(conn, options, clock)
        raise
    now = clock() if resumed_at is None else resumed_at  # no echo left after a hand-over
    timings["echo"] = (now - echo_start) * 1000.0

    # --- release (PS3.8 §7.2) or abort (§7.3) ------------------------------------------
    outcome = AssociationOutcome(negotiated, replies, timings)
    if not options.release:
        obs.aborting()
        yield from _abort_and_linger(conn, options, clock)
        outcome.release = "aborted"
        return outcome
    obs.releasing()
    if conn.state is State.STA6:
        conn.request_release()
    # Otherwise what the peer sent right after the last answer is queued: the loop reports it.
    phase = _Phase("release", now, timeouts.release, total_deadline)
    try:
        while True:
            event = yield from _next_event(conn, phase, sock_to, clock)
            if isinstance(event, ReleaseConfirmed):
                break
            if isinstance(event, ReleaseRequested) and event.collision:
                # Release collision, requestor side: Sta9 → AR-9 → Sta11 → await RP (AR-3).
                outcome.release = "collision"
                outcome.collision = True
                if conn.allows(Event.EVT14):  # not when an A-ABORT came in the same read
                    conn.respond_release(clock())
                # A peer that starts a collision answers our A-RELEASE-RP at once; one that
                # does not is not waited for past COLLISION_WAIT (DCMTK gives up at once).
                now = clock()
                left = COLLISION_WAIT if phase.deadline is None else phase.deadline - now
                phase = _Phase("release", now, max(min(COLLISION_WAIT, left), 0.0), total_deadline)
                continue
            if isinstance(event, ReleaseRequested):
                # The peer asked first (AR-2, Sta8), before our request went out: answer it
                # (AR-4, A-RELEASE-RP); the association is released and the peer closes.
                if conn.allows(Event.EVT14):  # not when an A-ABORT came in the same read
                    conn.respond_release(clock())
                    break
                continue  # the loop reports what ended it
            if isinstance(event, DataReceived):
                continue  # AR-6: data may still arrive before the RP; nothing expects it
            raise _raise_for(event, "release")
    except TimeoutError_ as exc:
        outcome.release = "release_timeout"
        outcome.release_error = exc
        if options.abort_on_failure:
            conn.abort(clock())
        else:
            conn.close_requested = True
    except ProbeError as exc:
        outcome.release = (
            "peer_aborted"
            if isinstance(exc, AssociationAborted)
            else ("connection_closed" if isinstance(exc, ConnectionLost) else "protocol_error")
        )
        outcome.release_error = exc
        conn.close_requested = True
    timings["release"] = (clock() - now) * 1000.0
    return outcome
