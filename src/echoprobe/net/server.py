"""`EchoSCP`: a fast Verification SCP on the same protocol core (acceptor role).

It answers A-ASSOCIATE-RQ (accepting Verification with the transfer syntaxes it supports),
C-ECHO-RQ, A-RELEASE-RQ and A-ABORT, and can misbehave on purpose (`Faults`), per listening
address or per called AE title, so that clients, ours and others, can be tested against every
failure a real peer shows.

This module owns the SCP as a whole: binding, life cycle, the ticker, admission and slot
reclaim, TLS options. The values are in `scp_values`, one connection's protocol in
`scp_connection`; the names others import from here (`EchoSCP`, `Faults`, `SCPCounters`,
`PHASES`, `AddressKey`, and `_Listener`, `_SCPProtocol` for the fuzz harness) stay here.

Rules:
- One ticker per SCP calls every connection's `tick` (ARTIM, PS3.8 §9.1.5, the idle and
  lifetime bounds); connections own no timer of their own except a fault's delay or trickle.
- `max_associations` counts established associations; one more A-ASSOCIATE-RQ gets
  A-ASSOCIATE-RJ transient, service-provider (presentation), local-limit-exceeded (Table 9-21).
- When every association slot (`max_associations`) is taken, a new request reclaims the slot of
  an association that has stopped making progress (in the middle of a PDU for `STALLED` s, or
  between PDUs for `reclaim_idle` s), the one stalled the longest; if there is none, the
  request waits up to `admission_wait` s, first come first served, for a slot that frees or
  can be reclaimed, and only then gets A-ASSOCIATE-RJ (2, 3, 2). So clients that hold slots
  without using them, or churn through them, cannot lock healthy ones out.
- Binding is all or nothing; port 0 on many hosts (`same_port`) is one port shared by all.
- `close()` stops listening, aborts every open association (A-ABORT, source 0) and closes
  every connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from echoprobe._values import replace
from echoprobe.net.addresses import format_address, strip_brackets
from echoprobe.net.scp_connection import SCPConnection
from echoprobe.net.scp_values import (
    NO_FAULTS,
    PHASES,
    AddressKey,
    AddressTable,
    Answer,
    Faults,
    Listener,
    SCPCounters,
    by_address,
    normalize_host,
    normalize_table,
)
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.constants import ContextResult
from echoprobe.ul.events import AssociationRequested
from echoprobe.ul.negotiation import (
    PDV_OVERHEAD,
    AcceptorPolicy,
    answer_request,
    effective_send_pdu,
)

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig

log = logging.getLogger(__name__)

# Kept under their old names: the fuzz harness and tests reach the connection through here.
_Listener = Listener
_SCPProtocol = SCPConnection

_SHARED_PORT_ATTEMPTS: Final = 20  # port 0 on many addresses: new ports to try when one is taken
_HANDSHAKE_GRACE: Final = 1.0  # seconds past the handshake timeout before a TLS wait is failed
# A slot whose association has been in the middle of a PDU this long with no whole PDU since
# its last is reclaimable when a request waits (a healthy client's PDU arrives in
# milliseconds; a trickler's never does).
STALLED: Final = 0.2


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
        host: the address(es) to listen on, each with `port`.
        port: their port; 0 picks a free one (shared by every host with `same_port`).
        listen: (host, port) pairs instead of `host` and `port`.
        same_port: port 0 means one port number for every host (default True).
        ae_titles: called AE titles answered (empty: any); others get A-ASSOCIATE-RJ 1,1,7.
        calling_ae_titles: calling AE titles accepted (empty: any); others get 1,1,3.
        transfer_syntaxes: accepted for Verification, in order of preference (default:
            Implicit VR LE, Explicit VR LE, Explicit VR BE).
        max_pdu: our Maximum Length (default 16384; 0: no limit).
        faults: misbehaviour of every listener (`Faults`; default none).
        faults_by_address: faults per listening address (keys as above).
        faults_by_ae: faults per called AE title, from the A-ASSOCIATE-RQ on.
        ae_titles_by_address: called AE titles per listening address.
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
        backlog: the listening sockets' backlog (default 4096).
        reuse_port: SO_REUSEPORT, for several SCP processes on the same addresses.
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
        self.faults = faults or NO_FAULTS
        self._faults_by_address = normalize_table(faults_by_address)
        self._faults_by_ae = {name.strip(" "): f for name, f in (faults_by_ae or {}).items()}
        self._ae_titles_by_address = {
            key: frozenset(names) for key, names in normalize_table(ae_titles_by_address).items()
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
        self._listeners: list[Listener] = []
        self._open: set[SCPConnection] = set()
        self._associated = 0
        self._association_set: set[SCPConnection] = set()
        self._pending_bytes = 0  # unfinished-PDU bytes held for unassociated connections
        # Requests waiting for a slot, oldest first: (give up at, connection, request).
        self._waiting: deque[tuple[float, SCPConnection, AssociationRequested]] = deque()
        self._logged: set[str] = set()  # drop kinds already logged at WARNING
        # TLS connections whose handshake has not completed → when it must have ended.
        self._handshaking: dict[weakref.ref[SCPConnection], float] = {}
        self._ac_cache: dict[tuple[bytes, bool], Answer] = {}
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
        found = by_address(self._faults_by_address, normalize_host(host), port)
        return self.faults if found is None else found

    # -- life cycle

    # Under TLS, connection_made comes after the handshake, and neither asyncio nor uvloop
    # tells the protocol (or anyone) when a handshake fails. A connection still waiting is a
    # failure once it is freed (at once on uvloop; plain asyncio keeps it in a cycle until the
    # next garbage collection) or once its handshake timeout has passed, whichever is first.

    def _handshake_started(self, connection: SCPConnection) -> None:
        deadline = self._loop_or_raise().time() + self.artim_timeout + _HANDSHAKE_GRACE
        self._handshaking[weakref.ref(connection, self._handshake_failed)] = deadline

    def _handshake_failed(self, ref: weakref.ref[SCPConnection]) -> None:
        if self._handshaking.pop(ref, None) is None:
            return
        self.counters.tls_handshake_failures += 1
        if "tls_handshake_failures" not in self._logged:
            self._logged.add("tls_handshake_failures")
            log.warning(
                "a TLS client failed or did not finish the handshake (counted as "
                "tls_handshake_failures; logged once)"
            )

    def _handshakes_overdue(self, now: float) -> None:
        for ref in [ref for ref, deadline in self._handshaking.items() if deadline <= now]:
            self._handshake_failed(ref)

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("EchoSCP.start() has not been called")
        return self._loop

    def _listener_for(self, host: str, port: int) -> Listener:
        key_host = normalize_host(host)
        titles = by_address(self._ae_titles_by_address, key_host, port)
        policy = self.policy if titles is None else replace(self.policy, ae_titles=titles)
        faults = self.faults_for(host, port)
        return Listener(host=key_host, port=port, faults=faults, policy=policy)

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
            listener = Listener(host=host, port=wanted)

            def factory(listener: Listener = listener) -> asyncio.Protocol:
                connection = SCPConnection(self, listener)
                if self._tls_options:
                    self._handshake_started(connection)
                return connection

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
        victim: SCPConnection | None = None
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
        if self._handshaking:
            self._handshakes_overdue(now)
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

    def _answer(self, event: AssociationRequested, reject_contexts: bool) -> Answer:
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
        return Answer(encode_pdu(ac), accepted, max_fragment, rejected)


__all__ = ["PHASES", "AddressKey", "AddressTable", "EchoSCP", "Faults", "SCPCounters"]
