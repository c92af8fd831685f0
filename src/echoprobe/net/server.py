"""`EchoSCP`: a fast Verification SCP on the same protocol core (acceptor role).

It answers A-ASSOCIATE-RQ (accepting Verification with the transfer syntaxes it supports),
C-ECHO-RQ, A-RELEASE-RQ and A-ABORT, and can misbehave on purpose (`Faults`), per listening
address or per called AE title, so that clients, ours and others, can be tested against every
failure a real peer shows.

Rules:
- One `asyncio.Protocol` per connection, no task and no timer per association: one ticker per
  SCP enforces every ARTIM deadline (PS3.8 §9.1.5) and the idle bound, so a silent client
  cannot hold a connection forever and the hot path allocates no timer handle.
- The protocol core (`ULConnection`) decides every transition; this driver moves bytes, calls
  its primitives and, for fault injection only, withholds, delays or trickles what it sends.
- Answers that depend only on the request bytes (A-ASSOCIATE-AC, C-ECHO-RSP) are encoded once
  and reused: the SCP must never be the bottleneck of a benchmark (measured in the README).
- `max_associations` counts established associations; one more A-ASSOCIATE-RQ gets
  A-ASSOCIATE-RJ transient, service-provider (presentation), local-limit-exceeded (Table 9-21).
- `close()` stops listening, aborts every open association (A-ABORT, source 0) and closes
  every connection.

Hostile clients (a test SCP is the target of every load test, and is embedded in services):
- Every PDU of a read is processed in order; an answer is given only while the state still
  takes it (`ULConnection.allows`): an A-ASSOCIATE-RQ and an A-ABORT in one read end the
  association without an answer.
- Writes are back-pressured: a client that does not read its answers is not read either, so
  what is buffered for it stays bounded (the transport's high-water mark plus one read).
- Only whole PDUs count as activity for `idle_timeout`; a PDU, once begun, must be whole within
  `pdu_timeout`; a connection lives at most `max_lifetime`. A trickling client cannot hold a
  slot by sending a byte now and then.
- When every association slot (`max_associations`) is taken, a new request reclaims the slot of
  an association that has stopped making progress (in the middle of a PDU for `STALLED` s, or
  between PDUs for `reclaim_idle` s), the one stalled the longest; if there is none, the
  request waits up to `admission_wait` s, first come first served, for a slot that frees or
  can be reclaimed, and only then gets A-ASSOCIATE-RJ (2, 3, 2). So clients that hold slots
  without using them, or churn through them, cannot lock healthy ones out.
- Connections that are not yet associated may together buffer at most `max_pending_bytes` of
  unfinished PDUs; the one that would pass the cap is dropped.
- Every drop is counted in `SCPCounters` and logged once per kind (then at DEBUG level); no
  exception escapes a protocol callback (one is counted as `internal_errors`, logged once with
  its traceback, and its connection aborted).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache, partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, cast

from echoprobe._values import replace
from echoprobe.dimse.echo import canonical_echo_request, echo_response_command, parse_echo_request
from echoprobe.dimse.fragment import Reassembler, fragment_command
from echoprobe.errors import DIMSEError, RemoteProtocolError
from echoprobe.net.addresses import format_address, strip_brackets
from echoprobe.ul.codec import RELEASE_RP_BYTES, RELEASE_RQ_BYTES, encode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.constants import ContextResult
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
from echoprobe.ul.negotiation import (
    PDV_OVERHEAD,
    AcceptorPolicy,
    answer_request,
    check_request,
    effective_send_pdu,
)
from echoprobe.ul.pdu import Abort, AssociateRJ, ae_text

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

PHASES: Final = ("connect", "associate", "echo", "release")
"""Where a fault can strike: right after the TCP accept ("connect"), on the A-ASSOCIATE-RQ
("associate"), on each C-ECHO-RQ ("echo"), on the A-RELEASE-RQ ("release")."""

_A_RELEASE_RQ_TYPE: Final = 0x05
_AC_CACHE_MAX: Final = 512  # distinct A-ASSOCIATE-RQs remembered (each ≤ _AC_CACHE_RQ_MAX)
_AC_CACHE_RQ_MAX: Final = 4096
_SHARED_PORT_ATTEMPTS: Final = 20  # port 0 on many addresses: new ports to try when one is taken
# A slot whose association has been in the middle of a PDU this long with no whole PDU since
# its last is reclaimable when a request waits (a healthy client's PDU arrives in
# milliseconds; a trickler's never does).
STALLED: Final = 0.2
# After our A-ABORT for a protocol violation, what the peer may still send while we wait for
# its close (PS3.8 Sta13) before the connection is reset.
_DISCARD_AFTER_ABORT: Final = 64 << 10


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour on purpose. The defaults everywhere make a well-behaved SCP.

    At a phase (see `PHASES`), the first fault that applies wins, in this order: `abort_at`,
    `close_at`, `silent_at`, then `delay` (after which the SCP answers normally).

    - `reject`: A-ASSOCIATE-RJ (result, source, reason) instead of the AC (PS3.8 Table 9-21).
    - `abort_at`: send A-ABORT (`abort_source`, `abort_reason`, Table 9-26) instead of
      answering, then wait (ARTIM) for the peer to close.
    - `close_at`: close the TCP connection instead of answering (FIN, no A-RELEASE/A-ABORT).
    - `silent_at`: from that phase on, send nothing at all; the peer's A-ABORT or close is
      still read, and the idle timeout ends the connection.
    - `delay`: phase → seconds to wait before answering (input is held meanwhile).
    - `trickle`: send every answer one byte at a time, this many seconds apart.
    - `status`, `error_comment`: the C-ECHO-RSP's Status (0000H = success) and Error Comment.
    - `no_release_response`: never answer the A-RELEASE-RQ (the same as `silent_at="release"`).
    - `release_collision`: on A-RELEASE-RQ, send our own A-RELEASE-RQ first (see `_collide`).
    - `reject_contexts`: accept the association but reject every presentation context
      (result 3, abstract-syntax-not-supported).
    """

    reject: tuple[int, int, int] | None = None
    abort_at: str | None = None
    abort_source: int = 0
    abort_reason: int = 0
    close_at: str | None = None
    silent_at: str | None = None
    delay: Mapping[str, float] = field(default_factory=dict)
    trickle: float = 0.0
    status: int = 0x0000
    error_comment: str | None = None
    no_release_response: bool = False
    release_collision: bool = False
    reject_contexts: bool = False

    def __post_init__(self) -> None:
        for name in ("abort_at", "close_at", "silent_at"):
            phase = getattr(self, name)
            if phase is not None and phase not in PHASES:
                raise ValueError(f"Faults.{name} must be one of {', '.join(PHASES)}, not {phase!r}")
        for phase, seconds in self.delay.items():
            if phase not in PHASES:
                raise ValueError(f"Faults.delay phase must be one of {', '.join(PHASES)}")
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(f"Faults.delay[{phase!r}] must be a finite number ≥ 0")
        if self.reject is not None and (
            len(self.reject) != 3 or not all(0 <= v <= 255 for v in self.reject)
        ):
            raise ValueError("Faults.reject must be three bytes (result, source, reason)")
        if not (0 <= self.abort_source <= 255 and 0 <= self.abort_reason <= 255):
            raise ValueError("Faults.abort_source and abort_reason must be bytes")
        if not 0 <= self.status <= 0xFFFF:
            raise ValueError("Faults.status must be 0..0xFFFF")
        if not (self.trickle >= 0 and math.isfinite(self.trickle)):
            raise ValueError("Faults.trickle must be a finite number ≥ 0")

    @property
    def healthy(self) -> bool:
        """True when nothing is injected."""
        return self == _NO_FAULTS

    def describe(self) -> str:
        """A short human summary, e.g. "reject 1,1,7" or "delay echo 2s, status 0x0110"."""
        parts: list[str] = []
        if self.reject is not None:
            parts.append("reject {},{},{}".format(*self.reject))
        if self.abort_at is not None:
            parts.append(f"A-ABORT ({self.abort_source},{self.abort_reason}) at {self.abort_at}")
        if self.close_at is not None:
            parts.append(f"close at {self.close_at}")
        if self.silent_at is not None:
            parts.append(f"silent from {self.silent_at}")
        parts.extend(f"delay {phase} {seconds:g}s" for phase, seconds in self.delay.items())
        if self.trickle:
            parts.append(f"trickle {self.trickle:g}s/byte")
        if self.status:
            parts.append(f"status 0x{self.status:04X}")
        if self.error_comment:
            parts.append(f"error comment {self.error_comment!r}")
        if self.no_release_response:
            parts.append("no release response")
        if self.release_collision:
            parts.append("release collision")
        if self.reject_contexts:
            parts.append("reject all presentation contexts")
        return ", ".join(parts) if parts else "none"


_NO_FAULTS: Final = Faults()


@dataclass(slots=True)
class SCPCounters:
    """What an `EchoSCP` did. Plain integers, readable at any time."""

    connections: int = 0  # TCP connections accepted
    associations: int = 0  # A-ASSOCIATE-AC sent
    rejected: int = 0  # A-ASSOCIATE-RJ sent (any reason, the busy ones included)
    rejected_busy: int = 0  # ... of which because of max_associations
    echoes: int = 0  # C-ECHO-RSP sent
    echo_failures: int = 0  # ... of which with a non-success status
    releases: int = 0  # A-RELEASE-RP sent
    release_collisions: int = 0  # A-RELEASE-RQ sent by us on purpose (release collision)
    aborts_received: int = 0
    aborts_sent: int = 0
    closed_by_fault: int = 0  # connections closed instead of answering (close_at)
    silenced: int = 0  # connections on which the SCP went silent on purpose
    timeouts: int = 0  # connections closed by the idle bound or the ARTIM timer
    protocol_errors: int = 0  # the peer broke PS3.8/PS3.7 (we aborted)
    peak_associations: int = 0  # most associations established at the same time
    dropped_slow_pdu: int = 0  # a PDU not whole within pdu_timeout of its first byte
    dropped_lifetime: int = 0  # connections older than max_lifetime
    dropped_buffer_cap: int = 0  # unassociated connections past max_pending_bytes together
    reclaimed_idle: int = 0  # idle associations aborted to make room for a new one
    write_pauses: int = 0  # times a client's unread answers stopped us reading it
    internal_errors: int = 0  # a bug, caught at the protocol callback (logged once)
    contexts_rejected: int = 0  # presentation contexts refused in the A-ASSOCIATE-ACs sent
    closed_unreleased: int = 0  # associations whose connection closed with no release/abort

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        """`name=value` pairs, the zero ones left out except the first three."""
        items = self.as_dict().items()
        keep = ("connections", "associations", "echoes")
        return " ".join(f"{k}={v}" for k, v in items if v or k in keep)


def _normalize_host(host: str) -> str:
    host = strip_brackets(host)
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


AddressKey = tuple[str, int] | str
"""A listening address a per-address setting applies to: (host, port), (host, 0) for every
port of that host, or the host alone."""

AddressTable = Mapping[str, T] | Mapping[tuple[str, int], T] | Mapping[AddressKey, T]


def _by_address(table: Mapping[AddressKey, T], host: str, port: int) -> T | None:
    """The entry of `table` for a listener on (host, port): exact port first, then any port."""
    for key in ((host, port), (host, 0), host):
        if key in table:
            return table[key]
    return None


def _normalize_table(table: AddressTable[T] | None) -> dict[AddressKey, T]:
    out: dict[AddressKey, T] = {}
    items: Iterable[tuple[AddressKey, T]] = table.items() if table else ()
    for key, value in items:
        if isinstance(key, str):
            out[_normalize_host(key)] = value
        else:
            out[(_normalize_host(key[0]), int(key[1]))] = value
    return out


class _Answer(NamedTuple):
    """What an A-ASSOCIATE-RQ gets, computed once per distinct request."""

    ac: bytes  # the A-ASSOCIATE-AC
    accepted: frozenset[int]  # accepted presentation context IDs
    max_fragment: int  # the largest command fragment the requestor's Maximum Length allows
    rejected: int  # presentation contexts refused


@dataclass(slots=True)
class _Listener:
    """One listening socket and what a connection to it gets."""

    host: str
    port: int
    faults: Faults = _NO_FAULTS
    policy: AcceptorPolicy = field(default_factory=AcceptorPolicy)
    # Whole A-ASSOCIATE-RQ bytes → the answer, for requests this listener has accepted.
    accepted: dict[bytes, _Answer] = field(default_factory=dict)


@lru_cache(maxsize=1024)
def _echo_rsp_pdus(
    message_id: int, status: int, comment: str | None, context_id: int, max_fragment: int
) -> bytes:
    return fragment_command(
        echo_response_command(message_id, status, comment), context_id, max_fragment
    )


@lru_cache(maxsize=256)
def _echo_rq_message_id(command: bytes) -> int:
    return parse_echo_request(command)


# Associated states (PS3.8 Table 9-1): a close in any of them ends an unreleased association.
_ASSOCIATED_STATES: Final = frozenset(
    (State.STA6, State.STA7, State.STA8, State.STA9, State.STA10, State.STA11, State.STA12)
)

# The shortcut's stages (see `_SCPProtocol._shortcut`).
_AWAIT_RQ, _ASSOCIATED, _RELEASED = range(3)
_LISTENER_CACHE_MAX = 64


class _SCPProtocol(asyncio.Protocol):
    """One connection. A healthy listener's usual conversation (a request seen before, each
    in one read; canonical C-ECHO-RQs; A-RELEASE-RQ) is answered by `_shortcut` from cached
    bytes; anything else first brings the `ULConnection` to the same state through its own
    primitives (`_leave_shortcut`), and the state machine takes it from there."""

    __slots__ = (
        "_ac_bytes",
        "_accepted_ids",
        "_associated",
        "_collide",
        "_conn",
        "_discard_left",
        "_end_at",
        "_ending",
        "_fast",
        "_fast_stage",
        "_faults",
        "_faulty",
        "_held",
        "_hold_timer",
        "_idle_at",
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
        "_silent",
        "_started_at",
        "_transport",
        "_trickle_buf",
        "_trickle_timer",
        "_unreleased",
        "_waited",
    )

    def __init__(self, scp: EchoSCP, listener: _Listener) -> None:
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
        self._faulty = listener.faults is not _NO_FAULTS and not listener.faults.healthy
        self._collide = self._faults.release_collision
        self._reassembler: Reassembler | None = None
        self._max_fragment = 16372
        self._associated = False
        self._silent = False
        self._ending = False  # after a fault's A-ABORT or FIN: input is ignored
        self._end_at = math.inf
        self._idle_at = math.inf
        self._idle_timeout = scp.idle_timeout
        self._held: list[bytes] | None = None  # input held back during a delay
        self._hold_timer: asyncio.TimerHandle | None = None
        self._trickle_buf: bytearray | None = None
        self._trickle_timer: asyncio.TimerHandle | None = None
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
        scp.counters.connections += 1
        scp._open.add(self)
        now = self._loop.time()
        self._started_at = now
        self._idle_at = now + scp.idle_timeout
        self._conn.connection_made(now)
        if self._faulty:
            self._act("connect", _nothing)

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
                _echo_rsp_pdus(
                    message_id, f.status, f.error_comment, context_id, self._max_fragment
                )
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

    def _act(self, phase: str, answer: Callable[[], None]) -> None:
        """Answer now, later, never, or misbehave instead, as the faults say for `phase`."""
        if not self._faulty:
            answer()
            return
        f = self._faults
        counters = self._scp.counters
        if f.abort_at == phase:
            counters.aborts_sent += 1
            self._write(encode_pdu(Abort(f.abort_source, f.abort_reason)))
            self._end()
            return
        if f.close_at == phase:
            counters.closed_by_fault += 1
            self._end(half_close=True)
            return
        if f.silent_at == phase or (phase == "release" and f.no_release_response):
            counters.silenced += 1
            self._silent = True
            return
        seconds = f.delay.get(phase, 0.0)
        if seconds > 0:
            self._held = []
            self._idle_at = math.inf
            self._hold_timer = self._loop.call_later(seconds, self._resume, answer)
            return
        answer()

    def _resume(self, answer: Callable[[], None]) -> None:
        """The end of a delay: answer, then process what arrived meanwhile, in order."""
        self._hold_timer = None
        held, self._held = self._held or [], None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._idle_at = self._loop.time() + self._scp.idle_timeout
        answer()
        self._pump()  # events queued behind the delayed one, then the answer goes out
        for index, chunk in enumerate(held):
            if self._held is not None:  # delayed again: keep the rest for later
                self._held.extend(held[index:])
                return
            if chunk:
                self.data_received(chunk)
            elif not self.eof_received():
                transport.close()

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
            message_id = _echo_rq_message_id(command)
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
            _echo_rsp_pdus(message_id, f.status, f.error_comment, context_id, self._max_fragment)
        )

    def _answer_release(self) -> None:
        if not self._conn.allows(Event.EVT14):
            return  # an A-ABORT or a bad PDU came behind the A-RELEASE-RQ
        self._scp.counters.releases += 1
        self._conn.respond_release(self._loop.time())

    def _collide_if_release(self, data: bytes, now: float) -> None:
        """Release collision on purpose (PS3.8 §7.2.2, Table 9-10 Sta7/Sta10/Sta12).

        In Sta8 an acceptor may not send A-RELEASE-RQ, so the collision must start before the
        peer's A-RELEASE-RQ is processed: when one begins at a PDU boundary in Sta6, we issue
        our own A-RELEASE request first (AR-1, Sta7), as if it had crossed the peer's on the
        wire. The peer's RQ then gives AR-8 → Sta10; its RP gives AR-10 → Sta12; our RP
        (AR-4) ends the association. Every step is the table's.
        """
        if data[0] == _A_RELEASE_RQ_TYPE:
            self._collide = False
            self._scp.counters.release_collisions += 1
            self._conn.request_release()

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

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if self._silent or transport is None or transport.is_closing():
            return
        if self._faulty and self._faults.trickle > 0:
            if self._trickle_buf is None:
                self._trickle_buf = bytearray(data)
                self._trickle_step()
            else:
                self._trickle_buf += data
            return
        transport.write(data)

    def _trickle_step(self) -> None:
        self._trickle_timer = None
        buf = self._trickle_buf
        transport = self._transport
        if buf is None or transport is None or transport.is_closing():
            return
        transport.write(bytes(buf[:1]))
        del buf[:1]
        if buf:
            self._trickle_timer = self._loop.call_later(self._faults.trickle, self._trickle_step)
            return
        self._trickle_buf = None

    def _close(self) -> None:
        # The core asks to close only when the peer is gone or has been given up on (AA-2,
        # AA-3, AA-4): what is still being trickled is dropped.
        if self._transport is not None:
            self._transport.close()

    def _end(self, *, half_close: bool = False) -> None:
        """After a fault's A-ABORT or FIN: ignore input, close when the peer closes or when
        the ARTIM timeout passes (so that our last bytes are read, not reset)."""
        self._ending = True
        self._end_at = self._loop.time() + self._scp.artim_timeout
        transport = self._transport
        if half_close and transport is not None and not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

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


def _nothing() -> None:
    pass


def _idle_at(proto: _SCPProtocol) -> float:
    return proto._idle_at


def _tls_server_options(tls: TLSConfig | ssl.SSLContext, handshake: float) -> dict[str, Any]:
    """`create_server` arguments for DICOM over TLS (the context is built here, once)."""
    from echoprobe.net.aio import TLS_SHUTDOWN_TIMEOUT  # noqa: PLC0415 - only with TLS
    from echoprobe.net.tls import server_context_for  # noqa: PLC0415 - ssl only with TLS

    return {
        "ssl": server_context_for(tls),
        "ssl_handshake_timeout": handshake,
        "ssl_shutdown_timeout": TLS_SHUTDOWN_TIMEOUT,
    }


class _SharedPortTaken(Exception):
    """The port chosen for every address is taken on one of them: choose another."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class EchoSCP:
    """A Verification SCP: `async with EchoSCP("127.0.0.1", 0) as scp: scp.port`.

    Listening addresses are each `host` with `port` (several hosts allowed), or an explicit `listen`
    list of (host, port). With `same_port` (the default), port 0 means one ephemeral port
    number shared by every host, so that a simulated fleet is "every address, one port".

    Per-address settings (`faults_by_address`, `ae_titles_by_address`) are keyed by
    (host, port), (host, 0) for any port, or the host alone; `faults_by_ae` is keyed by the
    called AE title and, when it matches, replaces the address's faults from the
    A-ASSOCIATE-RQ on. Counters are in `counters`. `reuse_port` (SO_REUSEPORT) lets several
    SCP processes share the same addresses, for loads beyond one core. `tls` (a
    `net.tls.TLSConfig` with our key and certificate, and CA files plus `verify_peer` to check
    client certificates; or a ready-made server `ssl.SSLContext`) makes every listener DICOM
    over TLS; a handshake must finish within `artim_timeout`.

    Args:
        host, port, listen, same_port: where to listen (above); port 0 picks a free one.
        ae_titles, calling_ae_titles: called / calling AE titles accepted (empty: any);
            others get A-ASSOCIATE-RJ 1,1,7 / 1,1,3.
        transfer_syntaxes: accepted for Verification, in order of preference (default:
            Implicit VR LE, Explicit VR LE, Explicit VR BE).
        max_pdu: our Maximum Length (default 16384; 0: no limit).
        faults, faults_by_address, faults_by_ae, ae_titles_by_address: misbehaviour and
            titles per listener or called AE (`Faults`).
        max_associations: established associations at once (None: no limit); beyond it,
            A-ASSOCIATE-RJ 2,3,2 (transient, local-limit-exceeded).
        idle_timeout: close a connection with no whole PDU for this long (default 30 s).
        artim_timeout: PS3.8's ARTIM timer: the wait for a first request or for the peer's
            close (default 5 s).
        pdu_timeout: a PDU, once begun, must be whole within this (default 10 s).
        max_lifetime: close any connection older than this (default 600 s; None: no bound).
        reclaim_idle: when every slot is taken, a new request reclaims the slot of an
            association without a whole PDU for this long (default 0.5 s; None: never).
        admission_wait: a request finding every slot taken waits this long for one before
            it is refused (default 0: refused at once).
        max_pending_bytes: unfinished requests of connections not yet associated may hold
            this much together (default 16 MiB).
        backlog, reuse_port: the listening sockets' backlog and SO_REUSEPORT.
        tls: DICOM over TLS (above).

    Raises:
        ValueError: an argument out of range (no address, no transfer syntax, a negative
            limit, a non-positive timeout).
        OSError: from `start()` (or `async with`), when an address cannot be bound.
    """

    def __init__(
        self,
        host: str | Sequence[str] = "127.0.0.1",
        port: int = 0,
        *,
        listen: Sequence[tuple[str, int]] | None = None,
        same_port: bool = True,
        ae_titles: Sequence[str] = (),
        calling_ae_titles: Sequence[str] = (),
        transfer_syntaxes: Sequence[str] | None = None,
        max_pdu: int = 16384,
        faults: Faults | None = None,
        faults_by_address: AddressTable[Faults] | None = None,
        faults_by_ae: Mapping[str, Faults] | None = None,
        ae_titles_by_address: AddressTable[Sequence[str]] | None = None,
        max_associations: int | None = None,
        idle_timeout: float = 30.0,
        artim_timeout: float = 5.0,
        pdu_timeout: float = 10.0,
        max_lifetime: float | None = 600.0,
        reclaim_idle: float | None = 0.5,
        admission_wait: float = 0.0,
        max_pending_bytes: int = 16 << 20,
        backlog: int = 4096,
        reuse_port: bool = False,
        tls: TLSConfig | ssl.SSLContext | None = None,
    ) -> None:
        if listen is not None:
            self._requested = [(h, int(p)) for h, p in listen]
        else:
            hosts = [host] if isinstance(host, str) else list(host)
            self._requested = [(h, port) for h in hosts]
        if not self._requested:
            raise ValueError("EchoSCP needs at least one address to listen on")
        if transfer_syntaxes is not None and not transfer_syntaxes:
            raise ValueError("at least one transfer syntax must be supported")
        if max_associations is not None and max_associations < 0:
            raise ValueError("max_associations must be ≥ 0")
        if not 0 <= max_pdu <= 0xFFFFFFFF:
            raise ValueError("max_pdu must fit in 32 bits (0 = no limit)")
        if not (idle_timeout > 0 and artim_timeout > 0 and pdu_timeout > 0):
            raise ValueError("idle_timeout, artim_timeout and pdu_timeout must be positive")
        if max_lifetime is not None and not max_lifetime > 0:
            raise ValueError("max_lifetime must be positive (None: no bound)")
        if reclaim_idle is not None and not reclaim_idle >= 0:
            raise ValueError("reclaim_idle must be ≥ 0 (None: never reclaim)")
        if max_pending_bytes < 0:
            raise ValueError("max_pending_bytes must be ≥ 0")
        if not (admission_wait >= 0 and math.isfinite(admission_wait)):
            raise ValueError("admission_wait must be a finite number ≥ 0")
        self.same_port = same_port
        base = AcceptorPolicy()
        supported = (
            base.supported
            if transfer_syntaxes is None
            else ((base.supported[0][0], tuple(transfer_syntaxes)),)
        )
        self.policy = replace(
            base,
            supported=supported,
            ae_titles=frozenset(ae_titles),
            calling_ae_titles=frozenset(calling_ae_titles),
            max_pdu=max_pdu,
        )
        self.max_pdu = max_pdu
        self.faults = faults or _NO_FAULTS
        self._faults_by_address = _normalize_table(faults_by_address)
        self._faults_by_ae = {name.strip(" "): f for name, f in (faults_by_ae or {}).items()}
        self._ae_titles_by_address = {
            key: frozenset(names) for key, names in _normalize_table(ae_titles_by_address).items()
        }
        self.max_associations = max_associations
        self.idle_timeout = idle_timeout
        self.artim_timeout = artim_timeout
        self.pdu_timeout = pdu_timeout
        self.max_lifetime = max_lifetime
        self.reclaim_idle = reclaim_idle
        self.admission_wait = admission_wait
        self.max_pending_bytes = max_pending_bytes
        self.backlog = backlog
        self.reuse_port = reuse_port
        self.tls = tls
        self._tls_options = {} if tls is None else _tls_server_options(tls, artim_timeout)
        self.counters = SCPCounters()
        self._servers: list[asyncio.AbstractServer] = []
        self._listeners: list[_Listener] = []
        self._open: set[_SCPProtocol] = set()
        self._associated = 0
        self._association_set: set[_SCPProtocol] = set()
        self._pending_bytes = 0  # unfinished-PDU bytes held for unassociated connections
        # Requests waiting for a slot, oldest first: (give up at, connection, request).
        self._waiting: deque[tuple[float, _SCPProtocol, AssociationRequested]] = deque()
        self._logged: set[str] = set()  # drop kinds already logged at WARNING
        self._ac_cache: dict[tuple[bytes, bool], _Answer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._tick_every = min(0.25, artim_timeout / 4, idle_timeout / 4, pdu_timeout / 4)

    # -- public state

    @property
    def port(self) -> int:
        """The port of the first listener."""
        return self.addresses[0][1]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every listening (host, port), in the order given."""
        return [(listener.host, listener.port) for listener in self._listeners]

    @property
    def active_associations(self) -> int:
        return self._associated

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def faults_for(self, host: str, port: int) -> Faults:
        """The faults a connection to (host, port) starts with."""
        found = _by_address(self._faults_by_address, _normalize_host(host), port)
        return self.faults if found is None else found

    # -- life cycle

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("EchoSCP.start() has not been called")
        return self._loop

    def _listener_for(self, host: str, port: int) -> _Listener:
        key_host = _normalize_host(host)
        titles = _by_address(self._ae_titles_by_address, key_host, port)
        policy = self.policy if titles is None else replace(self.policy, ae_titles=titles)
        faults = self.faults_for(host, port)
        return _Listener(host=key_host, port=port, faults=faults, policy=policy)

    async def start(self) -> EchoSCP:
        """Bind every address, then start serving (all or nothing)."""
        if self._servers:
            raise RuntimeError("EchoSCP already started")
        self._loop = asyncio.get_running_loop()
        for attempt in range(_SHARED_PORT_ATTEMPTS):
            try:
                await self._bind_all()
                break
            except _SharedPortTaken as taken:
                await self._close_servers()
                if attempt == _SHARED_PORT_ATTEMPTS - 1:
                    raise taken.error from None
                log.debug("shared port taken on one address; trying another (%s)", taken.error)
            except OSError:
                await self._close_servers()
                raise
        for server in self._servers:
            await server.start_serving()
        self._ticker = self._loop.call_later(self._tick_every, self._tick)
        return self

    async def _bind_all(self) -> None:
        loop = self._loop_or_raise()
        shared = 0
        for host, port in self._requested:
            wanted = shared if (port == 0 and self.same_port) else port
            listener = _Listener(host=host, port=wanted)

            def factory(listener: _Listener = listener) -> asyncio.Protocol:
                return _SCPProtocol(self, listener)

            try:
                server = await loop.create_server(
                    factory,
                    host=strip_brackets(host),
                    port=wanted,
                    backlog=self.backlog,
                    reuse_address=True,
                    reuse_port=self.reuse_port or None,
                    start_serving=False,
                    **self._tls_options,
                )
            except OSError as exc:
                if port == 0 and shared and exc.errno == errno.EADDRINUSE:
                    raise _SharedPortTaken(exc) from exc
                raise
            self._servers.append(server)
            sockets = server.sockets
            bound = int(sockets[0].getsockname()[1]) if sockets else wanted
            if port == 0 and shared == 0:
                shared = bound
            resolved = self._listener_for(host, bound)
            listener.host, listener.port = resolved.host, resolved.port
            listener.faults, listener.policy = resolved.faults, resolved.policy
            self._listeners.append(listener)

    def _reclaim_slot(self, now: float) -> bool:
        """Every slot is taken: abort the association stalled the longest (in the middle of a
        PDU for `STALLED` s, or between PDUs for `reclaim_idle` s) and free its slot at once
        (its close follows). False if none is stalled."""
        if self.reclaim_idle is None or not self._association_set:
            return False
        victim: _SCPProtocol | None = None
        oldest = math.inf
        for proto in self._association_set:
            last = proto._idle_at - self.idle_timeout  # its last whole PDU
            quiet = now - last
            stalled = quiet >= self.reclaim_idle or (
                proto._pdu_since is not None and quiet >= STALLED
            )
            if stalled and last < oldest:
                victim, oldest = proto, last
        if victim is None:
            return False
        self._association_set.discard(victim)
        victim._associated = False
        self._associated -= 1
        victim._drop("reclaimed_idle", "every association slot taken; a stalled one reclaimed")
        return True

    def _admit(self, now: float) -> None:
        """Give free (or reclaimable) slots to waiting requests, oldest first; refuse those
        that waited `admission_wait` s in vain (A-ASSOCIATE-RJ 2, 3, 2)."""
        waiting = self._waiting
        limit = self.max_associations
        while waiting:
            give_up, proto, event = waiting[0]
            transport = proto._transport
            if transport is None or transport.is_closing():
                waiting.popleft()
                continue
            if (
                limit is not None
                and self._associated >= limit
                and now < give_up
                and not self._reclaim_slot(now)
            ):
                break
            waiting.popleft()
            # Accepted if a slot is free now, refused otherwise (it has waited once).
            proto._resume(partial(proto._answer_request, event))

    def _tick(self) -> None:
        loop = self._loop_or_raise()
        now = loop.time()
        for proto in list(self._open):
            proto.tick(now)
        if self._waiting:
            self._admit(now)
        self._ticker = loop.call_later(self._tick_every, self._tick)

    async def _close_servers(self) -> None:
        servers, self._servers = self._servers, []
        self._listeners.clear()
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()

    async def close(self) -> None:
        """Stop listening, abort open associations, close every connection."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for server in self._servers:
            server.close()
        self._waiting.clear()
        for proto in list(self._open):
            proto._abort_and_close()
        await self._close_servers()
        # Let connection_lost callbacks run, so that no timer outlives the SCP.
        for _ in range(3):
            if not self._open:
                break
            await asyncio.sleep(0)
        self._listeners.clear()

    async def __aenter__(self) -> EchoSCP:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def describe(self) -> list[str]:
        """Human lines: each listening address, with its faults when it has any."""
        lines = []
        for listener in self._listeners:
            text = format_address(listener.host, listener.port)
            if not listener.faults.healthy:
                text += f"  [faults: {listener.faults.describe()}]"
            lines.append(text)
        return lines

    # -- answers shared by every connection

    def _answer(self, event: AssociationRequested, reject_contexts: bool) -> _Answer:
        """The A-ASSOCIATE-AC for a request, and what it accepts."""
        rq = event.request
        ac = answer_request(rq, self.policy)
        if reject_contexts:
            ac = replace(
                ac,
                presentation_contexts=tuple(
                    replace(pc, result=ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
                    for pc in ac.presentation_contexts
                ),
            )
        accepted = frozenset(pc.context_id for pc in ac.presentation_contexts if pc.result == 0)
        peer_max = rq.user_information.max_length if rq.user_information else None
        max_fragment = max(effective_send_pdu(peer_max) - PDV_OVERHEAD, 2)
        rejected = len(ac.presentation_contexts) - len(accepted)
        return _Answer(encode_pdu(ac), accepted, max_fragment, rejected)


__all__ = ["PHASES", "AddressKey", "AddressTable", "EchoSCP", "Faults", "SCPCounters"]
