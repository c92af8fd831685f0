"""One connection to an `EchoSCP` (acceptor role): the shortcut, the general path through
`ULConnection`, and the bounds that keep hostile clients in check; what `Faults` make it do
instead of answering is its base class, `scp_faults.FaultInjection`.

Rules:
- One `asyncio.Protocol` per connection, no task and no timer per association: the SCP's
  ticker calls `tick` to enforce every ARTIM deadline (PS3.8 §9.1.5) and the idle bound, so a
  silent client cannot hold a connection forever and the hot path allocates no timer handle.
- The protocol core (`ULConnection`) decides every transition; this driver moves bytes, calls
  its primitives and, for fault injection only, withholds, delays or trickles what it sends.
- A healthy listener's usual conversation is answered by `_shortcut` from cached bytes with
  no indirection; anything else brings the core to the same state first (`_leave_shortcut`).
- The SCP's shared state (counters, slots, pending bytes, the answer cache) is reached through
  `SCPShared`, which `EchoSCP` satisfies: this module never imports the server.

Hostile clients (a test SCP is the target of every load test, and is embedded in services):
- Every PDU of a read is processed in order; an answer is given only while the state still
  takes it (`ULConnection.allows`): an A-ASSOCIATE-RQ and an A-ABORT in one read end the
  association without an answer.
- Writes are back-pressured: a client that does not read its answers is not read either, so
  what is buffered for it stays bounded (the transport's high-water mark plus one read).
- Only whole PDUs count as activity for `idle_timeout`; a PDU, once begun, must be whole within
  `pdu_timeout`; a connection lives at most `max_lifetime`. A trickling client cannot hold a
  slot by sending a byte now and then.
- Connections that are not yet associated may together buffer at most `max_pending_bytes` of
  unfinished PDUs; the one that would pass the cap is dropped.
- Every drop is counted in `SCPCounters` and logged once per kind (then at DEBUG level); no
  exception escapes a protocol callback (one is counted as `internal_errors`, logged once with
  its traceback, and its connection aborted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections import deque
from typing import Final, Protocol, cast

from echoprobe.dimse.echo import canonical_echo_request
from echoprobe.dimse.fragment import Reassembler
from echoprobe.errors import DIMSEError, RemoteProtocolError
from echoprobe.net.scp_faults import FaultInjection, nothing
from echoprobe.net.scp_values import (
    NO_FAULTS,
    Answer,
    Faults,
    Listener,
    SCPCounters,
    echo_rq_message_id,
    echo_rsp_pdus,
)
from echoprobe.ul.codec import RELEASE_RP_BYTES, RELEASE_RQ_BYTES
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.events import (
    NEED_DATA,
    AbortReceived,
    AssociationRequested,
    DataReceived,
    ProtocolViolation,
    ReleaseConfirmed,
    ReleaseRequested,
)
from echoprobe.ul.fsm import Event, State
from echoprobe.ul.negotiation import check_request
from echoprobe.ul.pdu import AssociateRJ, ae_text

log = logging.getLogger(__name__)

_AC_CACHE_MAX: Final = 512  # distinct A-ASSOCIATE-RQs remembered (each ≤ _AC_CACHE_RQ_MAX)
_AC_CACHE_RQ_MAX: Final = 4096
# After our A-ABORT for a protocol violation, what the peer may still send while we wait for
# its close (PS3.8 Sta13) before the connection is reset.
_DISCARD_AFTER_ABORT: Final = 64 << 10


class SCPShared(Protocol):
    """What a connection reads and updates on its SCP (`EchoSCP` is one): settings, counters,
    the association slots and the requests waiting for one, the shared answer cache."""

    counters: SCPCounters
    max_pdu: int
    artim_timeout: float
    idle_timeout: float
    pdu_timeout: float
    max_lifetime: float | None
    max_associations: int | None
    admission_wait: float
    max_pending_bytes: int
    _faults_by_ae: dict[str, Faults]
    _open: set[SCPConnection]
    _associated: int
    _association_set: set[SCPConnection]
    _pending_bytes: int
    _waiting: deque[tuple[float, SCPConnection, AssociationRequested]]
    _logged: set[str]
    _ac_cache: dict[tuple[bytes, bool], Answer]
    _handshaking: dict[weakref.ref[SCPConnection], float]

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop: ...
    def _reclaim_slot(self, now: float) -> bool: ...
    def _admit(self, now: float) -> None: ...
    def _answer(self, event: AssociationRequested, reject_contexts: bool) -> Answer: ...


# Associated states (PS3.8 Table 9-1): a close in any of them ends an unreleased association.
_ASSOCIATED_STATES: Final = frozenset(
    (State.STA6, State.STA7, State.STA8, State.STA9, State.STA10, State.STA11, State.STA12)
)

# The shortcut's stages (see `SCPConnection._shortcut`).
_AWAIT_RQ, _ASSOCIATED, _RELEASED = range(3)
_LISTENER_CACHE_MAX = 64


class SCPConnection(FaultInjection):
    """One connection. A healthy listener's usual conversation (a request seen before, each
    in one read; canonical C-ECHO-RQs; A-RELEASE-RQ) is answered by `_shortcut` from cached
    bytes; anything else first brings the `ULConnection` to the same state through its own
    primitives (`_leave_shortcut`), and the state machine takes it from there."""

    __slots__ = (
        "__weakref__",  # TLS: a connection freed before connection_made failed its handshake
        "_ac_bytes",
        "_accepted_ids",
        "_associated",
        "_conn",
        "_discard_left",
        "_fast",
        "_fast_stage",
        "_idle_timeout",
        "_listener",
        "_loop",
        "_max_fragment",
        "_pdu_since",
        "_pending",
        "_reassembler",
        "_released_at",
        "_rq_raw",
        "_scp",
        "_started_at",
        "_transport",
        "_unreleased",
        "_waited",
    )

    _scp: SCPShared

    def __init__(self, scp: SCPShared, listener: Listener) -> None:
        self._scp = scp
        self._listener = listener
        self._loop = scp._loop_or_raise()
        # On demand: PDUs that arrive together are answered one by one, in order (an
        # A-ASSOCIATE-RQ pipelined with a C-ECHO-RQ is answered as DCMTK's SCPs answer it).
        self._conn = ULConnection(
            Role.ACCEPTOR,
            max_receive_pdu=scp.max_pdu,
            artim_timeout=scp.artim_timeout,
            on_demand=True,
        )
        self._transport: asyncio.Transport | None = None
        self._faults = listener.faults
        self._faulty = listener.faults is not NO_FAULTS and not listener.faults.healthy
        self._collide = self._faults.release_collision
        self._reassembler: Reassembler | None = None
        self._max_fragment = 16372
        self._associated = False
        self._silent = False
        self._ending = False  # after a fault's A-ABORT or FIN: input is ignored
        self._end_at = math.inf
        self._idle_at = math.inf
        self._idle_timeout = scp.idle_timeout
        self._held = None  # input held back during a delay
        self._hold_timer = None
        self._trickle_buf = None
        self._trickle_timer = None
        self._fast = not self._faulty and not scp._faults_by_ae
        self._fast_stage = _AWAIT_RQ
        self._rq_raw = self._ac_bytes = b""
        self._accepted_ids: frozenset[int] = frozenset()
        self._released_at = 0.0
        self._started_at = 0.0
        self._pdu_since: float | None = None  # when the unfinished PDU's first byte came
        self._pending = 0  # bytes of an unfinished PDU counted in the SCP's pending total
        self._waited = False  # its request has waited for a slot once already
        self._unreleased = False  # counted as closed while associated
        self._discard_left = -1  # after a protocol violation: bytes still read before a reset

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio and uvloop both set TCP_NODELAY on accepted TCP sockets already.
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        scp = self._scp
        if scp._handshaking:
            scp._handshaking.pop(weakref.ref(self), None)  # TLS: the handshake succeeded
        scp.counters.connections += 1
        scp._open.add(self)
        now = self._loop.time()
        self._started_at = now
        self._idle_at = now + scp.idle_timeout
        self._conn.connection_made(now)
        if self._faulty:
            self._act("connect", nothing)

    def data_received(self, data: bytes) -> None:
        if self._fast and self._shortcut(data):
            return
        try:
            self._receive(data)
        except Exception as exc:  # a bug: never a traceback per connection, never a lost loop
            self._internal_error(exc)

    def _receive(self, data: bytes) -> None:
        if self._discard_left >= 0:
            self._discard_left -= len(data)
            if self._discard_left < 0 and self._transport is not None:
                self._transport.abort()  # still streaming after our A-ABORT
            return
        if self._held is not None:
            self._held.append(data)
            return
        if self._ending:
            return
        now = self._loop.time()
        conn = self._conn
        if self._collide and conn.state is State.STA6 and not conn.mid_pdu:
            self._collide_if_release(data, now)
        conn.receive_data(data, now)
        if self._pump():
            self._idle_at = now + self._idle_timeout  # whole PDUs are activity; bytes are not
            self._pdu_since = now if conn.mid_pdu else None
        elif not conn.mid_pdu:
            self._pdu_since = None  # a PDU completed that the core answered by itself
        elif self._pdu_since is None:
            self._pdu_since = now
        self._count_pending()

    def eof_received(self) -> bool:
        try:
            return self._eof()
        except Exception as exc:
            self._internal_error(exc)
            return False

    def _eof(self) -> bool:
        if self._fast:
            if self._fast_stage == _RELEASED:
                # The usual end: the requestor closes after our A-RELEASE-RP (AR-5, Sta1).
                return False
            self._leave_shortcut()
        self._note_unreleased()
        if self._held is not None:
            self._held.append(b"")
            return True  # keep the transport until the delayed answer went out
        if self._ending:
            return False
        self._conn.receive_data(b"", self._loop.time())
        self._pump()
        return False

    def pause_writing(self) -> None:
        # The client is not reading our answers: stop reading its requests until it does.
        self._scp.counters.write_pauses += 1
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _internal_error(self, exc: Exception) -> None:
        scp = self._scp
        scp.counters.internal_errors += 1
        if "internal" not in scp._logged:
            scp._logged.add("internal")
            log.error("internal error on a connection (aborted; counted from now on)", exc_info=exc)
        else:
            log.debug("internal error on a connection: %r", exc)
        with contextlib.suppress(Exception):
            self._abort_and_close()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    def _count_pending(self) -> None:
        """Keep the SCP's total of unfinished-PDU bytes on unassociated connections, and drop
        this connection if it would take the total past `max_pending_bytes`."""
        held = 0 if self._associated else self._conn.buffered
        if held == self._pending:
            return
        scp = self._scp
        scp._pending_bytes += held - self._pending
        self._pending = held
        if held and scp._pending_bytes > scp.max_pending_bytes:
            self._drop("dropped_buffer_cap", "buffered request bytes past max_pending_bytes")

    def _note_unreleased(self) -> None:
        """Count an association whose connection ends with neither release nor abort (a
        client that just closes, as some storescu/findscu builds do)."""
        if self._unreleased:
            return
        if self._fast:
            associated = self._fast_stage == _ASSOCIATED
        else:
            associated = self._conn.state in _ASSOCIATED_STATES
        if associated and self._associated:
            self._unreleased = True
            self._scp.counters.closed_unreleased += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._note_unreleased()
        for timer in (self._hold_timer, self._trickle_timer):
            if timer is not None:
                timer.cancel()
        self._hold_timer = self._trickle_timer = None
        scp = self._scp
        scp._open.discard(self)
        if self._pending:
            scp._pending_bytes -= self._pending
            self._pending = 0
        if self._associated:
            self._associated = False
            scp._associated -= 1
            scp._association_set.discard(self)
            if scp._waiting:
                scp._admit(self._loop.time())

    # -- the usual conversation, from cached bytes

    def _shortcut(self, data: bytes) -> bool:
        """Answer `data` if it is the usual next PDU, whole; False hands it to the machinery."""
        stage = self._fast_stage
        transport = self._transport
        scp = self._scp
        if transport is None or transport.is_closing():
            return False
        if stage == _ASSOCIATED:
            now = self._loop.time()
            if data == RELEASE_RQ_BYTES:
                scp.counters.releases += 1
                transport.write(RELEASE_RP_BYTES)
                self._fast_stage = _RELEASED
                self._released_at = now
                return True
            request = canonical_echo_request(data)
            if request is None or request[0] not in self._accepted_ids:
                return self._leave_shortcut()
            context_id, message_id = request
            self._idle_at = now + self._idle_timeout
            f = self._faults
            scp.counters.echoes += 1
            transport.write(
                echo_rsp_pdus(message_id, f.status, f.error_comment, context_id, self._max_fragment)
            )
            return True
        if stage == _AWAIT_RQ:
            answer = self._listener.accepted.get(data)
            limit = scp.max_associations
            if answer is None or (limit is not None and scp._associated >= limit):
                return self._leave_shortcut()
            self._rq_raw = data
            self._idle_at = self._loop.time() + self._idle_timeout
            self._ac_bytes, self._accepted_ids, self._max_fragment, rejected = answer
            scp.counters.contexts_rejected += rejected
            self._reassembler = Reassembler(self._accepted_ids)
            self._count_association()
            transport.write(self._ac_bytes)
            self._fast_stage = _ASSOCIATED
            return True
        return self._leave_shortcut()  # after the release: the machinery ignores or aborts

    def _leave_shortcut(self) -> bool:
        """Bring the ULConnection to where the shortcut got (its bytes already written),
        through the state machine's own primitives; from now on it handles everything."""
        if not self._fast:
            return False
        self._fast = False
        conn = self._conn
        stage = self._fast_stage
        if stage >= _ASSOCIATED:
            conn.receive_data(self._rq_raw, self._loop.time())
            conn.next_event()  # the AssociationRequested the shortcut answered
            conn.accept(self._ac_bytes)
        if stage == _RELEASED:
            conn.receive_data(RELEASE_RQ_BYTES, self._released_at)
            conn.next_event()  # the ReleaseRequested the shortcut answered
            conn.respond_release(self._released_at)  # ARTIM runs from the real RP
        conn.data_to_send()  # written already
        return False

    def _count_association(self) -> None:
        scp = self._scp
        counters = scp.counters
        self._associated = True
        scp._associated += 1
        scp._association_set.add(self)
        counters.associations += 1
        counters.peak_associations = max(counters.peak_associations, scp._associated)

    # -- the SCP's side of the dialogue

    def _pump(self) -> bool:
        """Answer every event the connection has; True if there was any (a whole PDU came)."""
        conn = self._conn
        counters = self._scp.counters
        progressed = False
        while self._held is None and not self._ending:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            progressed = True
            kind = type(event)
            if kind is DataReceived:
                if not self._silent:
                    self._on_data(cast(DataReceived, event))
            elif kind is AssociationRequested:
                if not self._silent:
                    self._on_request(cast(AssociationRequested, event))
            elif kind is ReleaseRequested:
                if not self._silent and not cast(ReleaseRequested, event).collision:
                    self._act("release", self._answer_release)
            elif kind is ReleaseConfirmed:
                # Acceptor side of a release collision: AR-10 took us to Sta12, where the
                # A-RELEASE response (AR-4) is now allowed.
                if not self._silent and conn.state is State.STA12:
                    self._act("release", self._answer_release)
            elif kind is AbortReceived:
                counters.aborts_received += 1
            elif kind is ProtocolViolation:
                counters.protocol_errors += 1
                # Nothing more it sends is answered (A-ABORT sent, PS3.8 AA-8), not even what
                # came in the same read; its close is still awaited, but a peer that streams
                # on is cut off after _DISCARD_AFTER_ABORT bytes instead of read for ever.
                conn.stop_reading()
                self._discard_left = _DISCARD_AFTER_ABORT
        self._flush()
        return progressed

    def _on_request(self, event: AssociationRequested) -> None:
        scp = self._scp
        if scp._faults_by_ae:
            special = scp._faults_by_ae.get(ae_text(event.request.called_ae))
            if special is not None:
                self._faults = special
                self._faulty = not special.healthy
                self._collide = special.release_collision
        self._act("associate", lambda: self._answer_request(event))

    def _answer_request(self, event: AssociationRequested) -> None:
        scp = self._scp
        counters = scp.counters
        if not self._conn.allows(Event.EVT7):
            return  # the peer aborted or closed in the same read: nobody to answer
        rq = event.request
        rj = check_request(rq, self._listener.policy)
        f = self._faults
        if rj is None and f.reject is not None:
            rj = AssociateRJ(*f.reject)
        limit = scp.max_associations
        if rj is None and limit is not None and scp._associated >= limit:
            now = self._loop.time()
            scp._reclaim_slot(now)
            if scp._associated >= limit and not self._waited and scp.admission_wait > 0:
                self._waited = True  # wait in line for a slot (EchoSCP._admit)
                self._held = []
                self._idle_at = math.inf
                scp._waiting.append((now + scp.admission_wait, self, event))
                return
        if rj is None and limit is not None and scp._associated >= limit:
            counters.rejected_busy += 1
            rj = AssociateRJ(2, 3, 2)  # transient, presentation, local-limit-exceeded
        if rj is not None:
            counters.rejected += 1
            self._conn.reject(rj, self._loop.time())
            return
        key = (event.raw, f.reject_contexts)
        answer = scp._ac_cache.get(key)
        if answer is None:
            answer = scp._answer(event, f.reject_contexts)
            if len(event.raw) <= _AC_CACHE_RQ_MAX:
                if len(scp._ac_cache) >= _AC_CACHE_MAX:
                    scp._ac_cache.clear()
                scp._ac_cache[key] = answer
        ac_bytes, accepted, self._max_fragment, rejected = answer
        counters.contexts_rejected += rejected
        self._reassembler = Reassembler(accepted)
        self._count_association()
        self._conn.accept(ac_bytes)
        if not self._faulty and not scp._faults_by_ae and len(event.raw) <= _AC_CACHE_RQ_MAX:
            # Accepted as a healthy listener's: the next identical request takes the shortcut.
            remembered = self._listener.accepted
            if len(remembered) >= _LISTENER_CACHE_MAX:
                remembered.clear()
            remembered[event.raw] = answer

    def _on_data(self, event: DataReceived) -> None:
        reassembler = self._reassembler
        if reassembler is None:
            return
        try:
            complete = reassembler.feed(event.pdvs)
            if complete is None:
                return
            context_id, command = complete
            message_id = echo_rq_message_id(command)
        except (RemoteProtocolError, DIMSEError):
            self._scp.counters.protocol_errors += 1
            self._conn.abort(self._loop.time(), reason=0)
            return
        if not self._faulty:
            self._answer_echo(message_id, context_id)
        else:
            self._act("echo", lambda: self._answer_echo(message_id, context_id))

    def _answer_echo(self, message_id: int, context_id: int) -> None:
        if not self._conn.allows(Event.EVT9):
            return  # an A-ABORT, A-RELEASE-RP or bad PDU came behind the request
        f = self._faults
        counters = self._scp.counters
        counters.echoes += 1
        if f.status:
            counters.echo_failures += 1
        self._conn.send_pdata(
            echo_rsp_pdus(message_id, f.status, f.error_comment, context_id, self._max_fragment)
        )

    def _answer_release(self) -> None:
        if not self._conn.allows(Event.EVT14):
            return  # an A-ABORT or a bad PDU came behind the A-RELEASE-RQ
        self._scp.counters.releases += 1
        self._conn.respond_release(self._loop.time())

    # -- plumbing

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        conn = self._conn
        data = conn.data_to_send()
        if data:
            if self._faulty:
                self._write(data)
            else:
                transport.write(data)
        if conn.close_requested:
            self._close()

    def _close(self) -> None:
        # The core asks to close only when the peer is gone or has been given up on (AA-2,
        # AA-3, AA-4): what is still being trickled is dropped.
        if self._transport is not None:
            self._transport.close()

    def tick(self, now: float) -> None:
        """The SCP's ticker: ARTIM expiry (Evt18), the idle bound, the end of a fault."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._held is not None:
            return  # a delay on purpose is bounded by its own timer
        scp = self._scp
        if scp.max_lifetime is not None and now - self._started_at >= scp.max_lifetime:
            self._drop("dropped_lifetime", "connection older than max_lifetime")
            return
        if self._pdu_since is not None and now - self._pdu_since >= scp.pdu_timeout:
            self._drop("dropped_slow_pdu", "a PDU not whole within pdu_timeout")
            return
        if self._fast and self._fast_stage != _AWAIT_RQ:
            # The ULConnection has not seen the shortcut's PDUs: its timer is stale.
            ended = self._released_at + self._scp.artim_timeout
            if now < self._idle_at and (self._fast_stage == _ASSOCIATED or now < ended):
                return
            self._leave_shortcut()
        if self._ending:
            if now >= self._end_at:
                transport.close()
            return
        deadline = self._conn.get_timer()
        if deadline is not None and now >= deadline:
            self._scp.counters.timeouts += 1
            self._conn.handle_timer(now)  # AA-2: close
            self._pump()
            if not transport.is_closing():
                transport.close()
        elif now >= self._idle_at:
            self._scp.counters.timeouts += 1
            self._abort_and_close()

    def _drop(self, counter: str, why: str) -> None:
        """End a connection that broke one of the SCP's bounds: count, log once, abort."""
        scp = self._scp
        setattr(scp.counters, counter, getattr(scp.counters, counter) + 1)
        if counter not in scp._logged:
            scp._logged.add(counter)
            log.warning("dropping a client: %s (counted as %s; logged once)", why, counter)
        else:
            log.debug("dropping a client: %s", why)
        self._abort_and_close()

    def _abort_and_close(self) -> None:
        """A-ABORT (source 0) when associated, then close: shutdown and the idle bound."""
        self._leave_shortcut()
        conn = self._conn
        if conn.state not in (State.STA1, State.STA2, State.STA13) and not self._silent:
            conn.abort(self._loop.time())
            self._scp.counters.aborts_sent += 1
            data = conn.data_to_send()
            transport = self._transport
            if data and transport is not None and not transport.is_closing():
                transport.write(data)
        if self._transport is not None:
            self._transport.close()


__all__ = ["SCPConnection", "SCPShared"]
