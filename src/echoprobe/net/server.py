"""`EchoSCP`: a fast Verification SCP on the same protocol core (acceptor role).

It answers A-ASSOCIATE-RQ (accepting Verification with the transfer syntaxes it supports),
C-ECHO-RQ, A-RELEASE-RQ and A-ABORT, and can misbehave on purpose (`Faults`) so that clients,
ours and others, can be tested against every failure a real peer shows.

Rules: one `asyncio.Protocol` per connection, no task per association; every connection is
bounded by the ARTIM timer and an idle timeout, so a silent client cannot hold it forever;
`close()` stops listening and closes every open connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import cast

from echoprobe.dimse.echo import echo_response_command, parse_echo_request
from echoprobe.dimse.fragment import Reassembler, fragment_command
from echoprobe.errors import DIMSEError, RemoteProtocolError
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.events import (
    NEED_DATA,
    AbortReceived,
    ARTIMExpired,
    AssociationRequested,
    ConnectionClosed,
    DataReceived,
    ProtocolViolation,
    ReleaseConfirmed,
    ReleaseRequested,
)
from echoprobe.ul.negotiation import AcceptorPolicy, answer_request, check_request
from echoprobe.ul.pdu import Abort, AssociateRJ, ae_text


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour on purpose. `None`/0/False everywhere is a well-behaved SCP.

    Phases are "connect" (right after accepting the TCP connection), "associate" (on the
    A-ASSOCIATE-RQ), "echo" (on each C-ECHO-RQ) and "release" (on the A-RELEASE-RQ).
    """

    reject: tuple[int, int, int] | None = None  # A-ASSOCIATE-RJ (result, source, reason)
    abort_at: str | None = None  # send A-ABORT (source 2, reason 0) instead of answering
    close_at: str | None = None  # close the TCP connection instead of answering
    silent_at: str | None = None  # never answer (until the idle timeout)
    delay: dict[str, float] = field(default_factory=dict)  # phase → seconds before answering
    trickle: float = 0.0  # send answers one byte at a time, this many seconds apart
    status: int = 0x0000  # C-ECHO-RSP status
    error_comment: str | None = None
    reject_contexts: bool = False  # accept the association but no presentation context
    release_collision: bool = False  # answer A-RELEASE-RQ with our own A-RELEASE-RQ first


@dataclass(slots=True)
class SCPCounters:
    connections: int = 0
    associations: int = 0
    rejected: int = 0
    echoes: int = 0
    releases: int = 0
    aborts_received: int = 0
    aborts_sent: int = 0
    protocol_errors: int = 0


class _SCPProtocol(asyncio.Protocol):
    def __init__(self, scp: EchoSCP) -> None:
        self._scp = scp
        self._loop = scp._loop_or_raise()
        self._conn = ULConnection(
            Role.ACCEPTOR, max_receive_pdu=scp.policy.max_pdu, artim_timeout=scp.artim_timeout
        )
        self._transport: asyncio.Transport | None = None
        self._faults = scp.faults
        self._reassembler: Reassembler | None = None
        self._max_fragment = 16372
        self._timer: asyncio.TimerHandle | None = None
        self._stalled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._scp.counters.connections += 1
        self._scp._open.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn.connection_made(self._loop.time())
        self._rearm()
        if self._faults.close_at == "connect":
            transport.close()
        elif self._faults.silent_at == "connect":
            self._stalled = True

    def data_received(self, data: bytes) -> None:
        if self._stalled:
            return
        self._conn.receive_data(data, self._loop.time())
        self._pump()

    def eof_received(self) -> bool:
        self._conn.receive_data(b"", self._loop.time())
        self._pump()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._scp._open.discard(self)

    # -- the SCP's side of the dialogue

    def _pump(self) -> None:
        conn = self._conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, AssociationRequested):
                self._on_request(event)
            elif isinstance(event, DataReceived):
                self._on_data(event)
            elif isinstance(event, ReleaseRequested):
                self._on_release()
            elif isinstance(event, AbortReceived):
                self._scp.counters.aborts_received += 1
            elif isinstance(event, ProtocolViolation):
                self._scp.counters.protocol_errors += 1
            elif isinstance(event, ConnectionClosed | ARTIMExpired | ReleaseConfirmed):
                pass
            if self._stalled:
                break
        self._flush()

    def _act(self, phase: str, answer: Callable[[], None]) -> None:
        """Answer now, later, never, or misbehave instead, as the faults say for `phase`."""
        f = self._faults
        if f.abort_at == phase:
            self._send_raw(encode_pdu(Abort(2, 0)))
            self._scp.counters.aborts_sent += 1
            self._close_soon()
            return
        if f.close_at == phase:
            self._close_soon()
            return
        if f.silent_at == phase:
            self._stalled = True
            return
        delay = f.delay.get(phase, 0.0)
        if delay > 0:
            self._stalled = True

            def later() -> None:
                self._stalled = False
                answer()
                self._flush()

            self._loop.call_later(delay, later)
            return
        answer()

    def _on_request(self, event: AssociationRequested) -> None:
        rq = event.request
        scp = self._scp

        def answer() -> None:
            rj = check_request(rq, scp.policy)
            if rj is None and self._faults.reject is not None:
                rj = AssociateRJ(*self._faults.reject)
            if rj is not None:
                scp.counters.rejected += 1
                self._conn.reject(rj, self._loop.time())
                return
            ac = answer_request(rq, scp.policy)
            if self._faults.reject_contexts:
                ac = replace(
                    ac,
                    presentation_contexts=tuple(
                        replace(pc, result=3) for pc in ac.presentation_contexts
                    ),
                )
            accepted = frozenset(pc.context_id for pc in ac.presentation_contexts if pc.result == 0)
            self._reassembler = Reassembler(accepted)
            peer_max = rq.user_information.max_length
            self._max_fragment = 131060 if not peer_max or peer_max > 131072 else peer_max - 12
            scp.counters.associations += 1
            self._conn.accept(encode_pdu(ac))

        self._act("associate", answer)

    def _on_data(self, event: DataReceived) -> None:
        if self._reassembler is None:
            return
        try:
            complete = self._reassembler.feed(event.pdvs)
            if complete is None:
                return
            context_id, command = complete
            message_id = parse_echo_request(command)
        except (RemoteProtocolError, DIMSEError):
            self._scp.counters.protocol_errors += 1
            self._conn.abort(self._loop.time(), reason=0)
            return
        f = self._faults

        def answer() -> None:
            self._scp.counters.echoes += 1
            rsp = echo_response_command(message_id, f.status, f.error_comment)
            self._conn.send_pdata(fragment_command(rsp, context_id, self._max_fragment))

        self._act("echo", answer)

    def _on_release(self) -> None:
        def answer() -> None:
            self._scp.counters.releases += 1
            self._conn.respond_release(self._loop.time())

        self._act("release", answer)

    # -- plumbing

    def _send_raw(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        data = self._conn.data_to_send()
        if data:
            if self._faults.trickle > 0:
                self._trickle(data)
            else:
                transport.write(data)
        if self._conn.close_requested:
            transport.close()
        else:
            self._rearm()

    def _trickle(self, data: bytes) -> None:
        step = self._faults.trickle
        for index in range(len(data)):
            self._loop.call_later(step * index, self._send_raw, data[index : index + 1])

    def _close_soon(self) -> None:
        if self._transport is not None:
            self._loop.call_soon(self._transport.close)

    def _rearm(self) -> None:
        # One timer per connection: ARTIM when the core runs it, else the idle bound.
        if self._timer is not None:
            self._timer.cancel()
        when = self._conn.get_timer()
        if when is None:
            when = self._loop.time() + self._scp.idle_timeout
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self._conn.get_timer() is not None:
            self._conn.handle_timer(now)
            self._pump()
        if (
            self._transport is not None
            and not self._transport.is_closing()
            and (self._conn.get_timer() is None)
        ):
            self._transport.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class EchoSCP:
    """A Verification SCP: `async with EchoSCP(host="127.0.0.1", port=0) as scp: scp.port`.

    Several addresses may be given (`hosts`), each gets its own listener on the same port
    number (0 = one ephemeral port per address).
    """

    def __init__(
        self,
        host: str | Sequence[str] = "127.0.0.1",
        port: int = 0,
        *,
        ae_titles: Sequence[str] = (),
        calling_ae_titles: Sequence[str] = (),
        transfer_syntaxes: Sequence[str] | None = None,
        max_pdu: int = 16384,
        faults: Faults | None = None,
        max_associations: int | None = None,
        idle_timeout: float = 30.0,
        artim_timeout: float = 5.0,
        backlog: int = 4096,
    ) -> None:
        self.hosts = [host] if isinstance(host, str) else list(host)
        self.requested_port = port
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
        self.faults = faults or Faults()
        self.max_associations = max_associations
        self.idle_timeout = idle_timeout
        self.artim_timeout = artim_timeout
        self.backlog = backlog
        self.counters = SCPCounters()
        self._servers: list[asyncio.AbstractServer] = []
        self._open: set[_SCPProtocol] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None  # set by start()
        return self._loop

    def _factory(self) -> asyncio.Protocol:
        if self.max_associations is not None and len(self._open) >= self.max_associations:
            return _OverloadedProtocol(self)
        return _SCPProtocol(self)

    @property
    def port(self) -> int:
        """The port of the first listener."""
        return self.addresses[0][1]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        out = []
        for server in self._servers:
            for sock in cast(asyncio.Server, server).sockets:
                name = sock.getsockname()
                out.append((name[0], name[1]))
        return out

    async def start(self) -> EchoSCP:
        self._loop = asyncio.get_running_loop()
        for host in self.hosts:
            server = await self._loop.create_server(
                self._factory,
                host=host,
                port=self.requested_port,
                backlog=self.backlog,
                reuse_address=True,
            )
            self._servers.append(server)
        return self

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for proto in list(self._open):
            proto.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> EchoSCP:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _OverloadedProtocol(asyncio.Protocol):
    """Answers any request with A-ASSOCIATE-RJ transient, local-limit-exceeded (Table 9-21)."""

    def __init__(self, scp: EchoSCP) -> None:
        self._scp = scp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._scp.counters.rejected += 1
        self._transport.write(encode_pdu(AssociateRJ(2, 3, 2)))
        self._transport.close()


__all__ = ["EchoSCP", "Faults", "SCPCounters", "ae_text"]
