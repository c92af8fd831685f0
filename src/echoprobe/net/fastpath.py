"""The usual association in a few byte comparisons; the general procedure takes over otherwise.

Nearly every association of a sweep or a load test is the same conversation: our
A-ASSOCIATE-RQ; an A-ASSOCIATE-AC (decoded and validated once per distinct byte string); each
C-ECHO-RQ answered by the canonical success C-ECHO-RSP, byte for byte; A-RELEASE-RQ and -RP;
every PDU arriving whole, alone in its read. `FastAssociation` recognises exactly that and skips
the framer, the state machine, the event objects and the generator, which were about two thirds
of the client's CPU per association (benchmarks/README.md).

Anything else (a read with part of a PDU or more than one, any other PDU, a deadline, an EOF, a
lost connection, cancellation) makes it build the general procedure (`run_association` on an
`AssociationProtocol`) and replay into it every read so far, with the times they arrived. The
procedure must then want to have sent exactly the bytes already sent (checked), and carries on
from there. So `run_association` stays the one definition of behaviour: this is a shortcut
through it, ending with the outcome the procedure would have returned, and the tests run the same
scenarios with and without it.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from struct import Struct
from time import perf_counter
from typing import TYPE_CHECKING, Any

from echoprobe.dimse.echo import echo_request_pdus, message_id_for, success_response_pdu
from echoprobe.errors import EchoprobeError
from echoprobe.net.aio import AbortableProtocol, AssociationProtocol, mark_retrieved
from echoprobe.net.association import AssociationOutcome, EchoTally
from echoprobe.net.procedure import request_for, start_procedure
from echoprobe.reply import EchoReply
from echoprobe.ul.codec import RELEASE_RP_BYTES, RELEASE_RQ_BYTES
from echoprobe.ul.framing import FrameLimits
from echoprobe.ul.negotiation import Negotiated, usual_accept
from echoprobe.ul.pdu import AssociateRQ

if TYPE_CHECKING:
    from echoprobe.options import AssociationOptions, Timeouts

# Tests switch this off to compare the general procedure alone with the two together.
ENABLED = True

_LE16 = Struct("<H")  # Message IDs
_MAX_AC_BODY = FrameLimits().max_associate_ac
# Below this advertised Maximum Length the framer would refuse even the canonical answer.
_SMALLEST_FAST_MAX_PDU = 256
# A timer that fires this close to the deadline counts as on time (uvloop counts milliseconds).
_EARLY = 0.001

_CONNECTING, _ASSOCIATE, _ECHO, _RELEASE, _DONE = range(5)


def usable(options: AssociationOptions, timeouts: Timeouts) -> bool:
    """Whether the fast path can stand for the procedure: it ends with A-RELEASE, advertises
    room for the canonical answer, and no per-read socket timeout is in play (it applies only
    within a PDU, where the fast path never waits, or in a phase without a timeout)."""
    return (
        ENABLED
        and options.release
        and (options.max_pdu == 0 or options.max_pdu >= _SMALLEST_FAST_MAX_PDU)
        and (
            timeouts.socket is None
            or (
                timeouts.acse is not None
                and timeouts.dimse is not None
                and timeouts.release is not None
            )
        )
    )


class Plan:
    """Per option set: the request, its bytes, and each A-ASSOCIATE-AC already seen."""

    __slots__ = ("_accepts", "request", "request_bytes")

    _MAX_ACCEPTS = 64

    def __init__(self, request: AssociateRQ, request_bytes: bytes) -> None:
        self.request = request
        self.request_bytes = request_bytes
        self._accepts: dict[bytes, Negotiated] = {}

    def accept(self, data: bytes) -> Negotiated | None:
        """What the procedure would negotiate from `data` if it is exactly one acceptable
        A-ASSOCIATE-AC; None for anything the general procedure must see."""
        negotiated = self._accepts.get(data)
        if negotiated is not None:
            return negotiated
        found = usual_accept(self.request, data, _MAX_AC_BODY)
        if found is None:
            return None
        negotiated = found[1]
        if len(self._accepts) >= self._MAX_ACCEPTS:
            self._accepts.clear()
        self._accepts[data] = negotiated
        return negotiated


@lru_cache(maxsize=256)
def plan_for(options: AssociationOptions) -> Plan:
    return Plan(*request_for(options))


class _ReplayClock:
    """The procedure's clock: the recorded arrival times while replaying, then the real one."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now: float | None = None

    def __call__(self) -> float:
        now = self.now
        return perf_counter() if now is None else now


class FastAssociation(AbortableProtocol):
    """An `AssociationProtocol` stand-in that runs the usual conversation itself and hands any
    other to a real one (same `done`, `abort_now()`, `ssl_object()`)."""

    __slots__ = (
        "_ac",
        "_ac_at",
        "_deadline",
        "_echo_start",
        "_expect",
        "_inner",
        "_loop",
        "_made_at",
        "_message_id",
        "_negotiated",
        "_options",
        "_plan",
        "_release_start",
        "_replies",
        "_rsp_head",
        "_rsp_tail",
        "_sent_at",
        "_stage",
        "_tally",
        "_timeouts",
        "_timer",
        "_timer_at",
        "_timings",
        "_total_deadline",
        "_transport",
        "done",
    )

    def __init__(
        self,
        options: AssociationOptions,
        timeouts: Timeouts,
        loop: asyncio.AbstractEventLoop,
        timings: dict[str, float],
        total_deadline: float | None,
        *,
        tally: EchoTally | None = None,
    ) -> None:
        self._plan = plan_for(options)
        self._tally = tally
        self._options = options
        self._timeouts = timeouts
        self._loop = loop
        self._timings = timings
        self._total_deadline = total_deadline
        self._stage = _CONNECTING
        self._inner: AssociationProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # perf_counter time the armed timer stands for
        self._deadline: float | None = None
        self._made_at = 0.0
        self._ac = b""
        self._ac_at = 0.0
        self._negotiated: Negotiated | None = None
        self._replies: list[EchoReply] = []
        self._rsp_head = self._rsp_tail = self._expect = b""
        self._message_id = 0
        self._sent_at = self._echo_start = self._release_start = 0.0
        self.done: asyncio.Future[AssociationOutcome] = loop.create_future()

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] # uvloop's is no subclass
        now = perf_counter()
        self._made_at = now
        self._stage = _ASSOCIATE
        transport.write(self._plan.request_bytes)  # type: ignore[attr-defined]
        self._set_deadline(now, self._timeouts.acse)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is not None:
            inner.data_received(data)
            return
        stage = self._stage
        if stage == _ECHO:
            if data == self._expect:
                now = perf_counter()
                replies = self._replies
                replies.append(EchoReply(self._message_id, 0, (now - self._sent_at) * 1000.0))
                if self._tally is not None:
                    self._tally.total += 1
                if len(replies) < self._options.repeat:
                    self._send_echo(now)
                else:
                    self._timings["echo"] = (now - self._echo_start) * 1000.0
                    self._stage = _RELEASE
                    self._release_start = now
                    self._transport.write(RELEASE_RQ_BYTES)  # type: ignore[union-attr]
                    self._set_deadline(now, self._timeouts.release)
                return
        elif stage == _ASSOCIATE:
            negotiated = self._plan.accept(data)
            if negotiated is not None:
                now = perf_counter()
                self._ac, self._ac_at = data, now
                self._negotiated = negotiated
                self._timings["associate"] = (now - self._made_at) * 1000.0
                self._rsp_head, self._rsp_tail = success_response_pdu(negotiated.context_id)
                self._echo_start = now
                self._stage = _ECHO
                self._send_echo(now)
                return
        elif stage == _RELEASE and data == RELEASE_RP_BYTES:
            self._finish(perf_counter())
            return
        elif stage == _DONE:
            return  # after the release: the procedure would not read it either (Sta1)
        self._fall_back().data_received(data)

    def eof_received(self) -> bool:
        if self._stage == _DONE:
            return False
        return self._fall_back().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None and (self._stage == _DONE or self.done.done()):
            self._cancel_timer()
            return
        self._fall_back().connection_lost(exc)

    # -- what run_echo uses

    def ssl_object(self) -> Any:
        transport = self._transport
        return None if transport is None else transport.get_extra_info("ssl_object")

    def detach(self) -> None:
        """Cancellation while connecting (see `AssociationProtocol.detach`)."""
        if self._inner is not None:
            self._inner.detach()
            return
        self._cancel_timer()
        self._stage = _DONE
        if not self.done.done():
            self.done.cancel()
        mark_retrieved(self.done)

    def abort_now(self) -> None:
        """Cancellation: what the procedure does (A-ABORT if the state allows, then close)."""
        if self._inner is None:
            if self._stage == _DONE or (self.done.done() and not self.done.cancelled()):
                mark_retrieved(self.done)
                return
            if self._transport is None:  # never connected: nothing to abort or close
                self._cancel_timer()
                if not self.done.done():
                    self.done.cancel()
                return
        self._fall_back().abort_now()

    # -- the usual conversation

    def _send_echo(self, now: float) -> None:
        message_id = message_id_for(len(self._replies))
        negotiated = self._negotiated
        assert negotiated is not None  # set before the first echo
        packed = _LE16.pack(message_id)
        self._message_id = message_id
        self._expect = self._rsp_head + packed + self._rsp_tail
        self._sent_at = now
        self._transport.write(  # type: ignore[union-attr]
            echo_request_pdus(message_id, negotiated.context_id, negotiated.max_fragment)
        )
        self._set_deadline(now, self._timeouts.dimse)

    def _finish(self, now: float) -> None:
        self._timings["release"] = (now - self._release_start) * 1000.0
        self._stage = _DONE
        self._cancel_timer()
        self._transport.close()  # type: ignore[union-attr]
        assert self._negotiated is not None
        # The awaiting task may have been cancelled in this same loop iteration (its `done`
        # with it): the association still ended cleanly, and nobody wants the outcome.
        if not self.done.done():
            self.done.set_result(AssociationOutcome(self._negotiated, self._replies, self._timings))

    # -- deadlines: the phase's, as the procedure sets them; on expiry the procedure decides

    def _set_deadline(self, start: float, timeout: float | None) -> None:
        total = self._total_deadline
        if timeout is None:
            deadline = total
        else:
            deadline = start + timeout
            if total is not None and total < deadline:
                deadline = total
        self._deadline = deadline
        if deadline is None:
            return  # an armed timer finds no deadline and stands down
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # it fires first and re-arms for the later deadline
            self._timer.cancel()
        self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        loop = self._loop
        self._timer_at = deadline
        self._timer = loop.call_at(loop.time() + (deadline - perf_counter()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._inner is not None or self._stage == _DONE:
            return
        if perf_counter() < deadline - _EARLY:
            self._arm(deadline)
            return
        # The general driver arms the same deadline, already past: it reports the timeout.
        self._fall_back()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the hand-over

    def _fall_back(self) -> AssociationProtocol:
        inner = self._inner
        if inner is not None:
            return inner
        self._cancel_timer()
        if self._tally is not None:
            self._tally.total -= len(self._replies)  # the replay counts them again
        clock = _ReplayClock()
        conn, flow = start_procedure(
            self._options,
            self._timeouts,
            clock,
            self._made_at,
            self._total_deadline,
            observer=None,
            timings=self._timings,
            tally=self._tally,
        )
        inner = AssociationProtocol(conn, flow, self._loop, done=self.done)
        self._inner = inner
        transport = self._transport
        if transport is None:
            return inner  # not connected yet: the driver starts from its beginning
        sent: list[bytes] = []
        try:
            clock.now = self._made_at
            conn.connection_made(self._made_at)
            wait = flow.send(None)  # type: ignore[arg-type]
            sent.append(wait.send)
            for data, at in self._reads():
                clock.now = at
                wait = flow.send(data)
                sent.append(wait.send)
        except BaseException as exc:
            self._diverged(f"the procedure stopped during the replay: {exc!r}")
            return inner
        finally:
            clock.now = None
        if b"".join(sent) != self._sent_bytes():
            self._diverged("the procedure would have sent other bytes")
            return inner
        inner.adopt(transport, wait)
        return inner

    def _reads(self) -> list[tuple[bytes, float]]:
        """Every read the fast path consumed, rebuilt: the AC, then the answers in order, each
        at its arrival time (each request went out when the previous read arrived, so the
        arrivals are the AC's plus the round trips so far)."""
        if self._stage <= _ASSOCIATE:
            return []
        reads = [(self._ac, self._ac_at)]
        head, tail = self._rsp_head, self._rsp_tail
        at = self._ac_at
        for index, reply in enumerate(self._replies):
            at += reply.rtt_ms / 1000.0
            reads.append((head + _LE16.pack(message_id_for(index)) + tail, at))
        return reads

    def _sent_bytes(self) -> bytes:
        sent = [self._plan.request_bytes]
        negotiated = self._negotiated
        if self._stage >= _ECHO and negotiated is not None:
            echoes = len(self._replies) + (1 if self._stage == _ECHO else 0)
            for index in range(echoes):
                sent.append(
                    echo_request_pdus(
                        message_id_for(index), negotiated.context_id, negotiated.max_fragment
                    )
                )
        if self._stage >= _RELEASE:
            sent.append(RELEASE_RQ_BYTES)
        return b"".join(sent)

    def _diverged(self, what: str) -> None:
        # Cannot happen while the fast path only takes what the procedure takes the same way;
        # if it ever does, the association ends as an internal error, never silently.
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.abort()
        if not self.done.done():
            self.done.set_exception(EchoprobeError(f"internal error: fast path: {what}"))
