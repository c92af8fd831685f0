"""`EchoSCP` against hostile and broken requestors (issue #15): raw sockets, hand-built PDUs.

Each test states what must hold after the SCP's hardening, in PS3.8 terms: several PDUs in one
read are each answered in order; a stray byte or an empty P-DATA-TF (§9.3.5: one or more PDV
items) is an invalid PDU, answered with A-ABORT (source 2, service provider) and a close; a
requestor that never reads is no longer read from (the SCP's write buffer stays bounded); a
requestor that trickles cannot hold an association slot beyond the configured bound; many
half-sent 1 MiB requests cannot make the SCP buffer hundreds of megabytes. Nothing a peer sends
may raise out of a protocol callback (no exception reaches the loop's handler or the log).

Tests run against an in-process `EchoSCP` on the test's own loop, with the hardening's bounds
set short in one place (`HARDENING`). Loopback only; every read and every loop is bounded in
time and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from echoprobe.dimse.echo import parse_echo_response
from echoprobe.net.client import probe
from echoprobe.net.server import EchoSCP
from echoprobe.options import Timeouts
from echoprobe.results import Outcome
from tests.support.hostile_wire import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_RELEASE_RP,
    ABORT_BY_USER,
    EMPTY_PDATA,
    HUGE_LENGTH_PDATA_HEADER,
    P_DATA_TF,
    RELEASE_RQ,
    Conversation,
    WirePDU,
    associate_rq,
    echo_rq,
    padded_associate_rq,
    read_pdus,
    read_until_closed,
    send_and_read,
)
from tests.support.servers import rss_bytes

HOST = "127.0.0.1"
ARTIM = 1.0  # the SCP's ARTIM timer in these tests: how long it waits for a peer to close
READ_LIMIT = 4.0  # how long a test waits for the SCP to answer and close
HEALTHY = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=2.0, total=4.0)

# The hardening's settings, by `EchoSCP`'s names (adjust here if they change): a connection
# lives at most LIFETIME_S; a PDU must be whole PDU_TIMEOUT_S after its first byte.
LIFETIME_S = 3.0
PDU_TIMEOUT_S = 1.0
HARDENING: dict[str, Any] = {"max_lifetime": LIFETIME_S, "pdu_timeout": PDU_TIMEOUT_S}
WRITE_BUFFER_BOUND = 4 << 20  # what the SCP may hold unsent for a peer that never reads
HALF_SENT_PEERS = 64  # connections, each sending all but the last byte of a 1 MiB request
TOTAL_BUFFERED_BOUND = 16 << 20  # what all of them together may make the SCP buffer


def _hardened_options(**options: Any) -> dict[str, Any]:
    """`options` plus the short `HARDENING` bounds."""
    return {**HARDENING, **options}


# -- what the SCP holds: the only place that reaches inside it ----------------------------------


def _connections(scp: EchoSCP) -> list[Any]:
    return list(getattr(scp, "_open", ()))


def _write_buffered(scp: EchoSCP) -> int:
    """Bytes the SCP's transports hold, written by the SCP but not yet taken by the kernel."""
    total = 0
    for proto in _connections(scp):
        transport = getattr(proto, "_transport", None)
        if transport is not None and not transport.is_closing():
            total += transport.get_write_buffer_size()
    return total


def _input_buffered(scp: EchoSCP) -> int:
    """Bytes the SCP has received and keeps while waiting for the rest of a PDU."""
    total = 0
    for proto in _connections(scp):
        conn = getattr(proto, "_conn", None)
        framer = getattr(conn, "_framer", None)
        total += int(getattr(framer, "buffered", 0))
    return total


# -- an SCP on the test's loop that records every exception -------------------------------------


@dataclass
class Watched:
    scp: EchoSCP
    loop_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.scp.port


@asynccontextmanager
async def watched_scp(**options: Any) -> AsyncIterator[Watched]:
    """`EchoSCP` on 127.0.0.1, with the loop's exception handler recording instead of logging."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    options.setdefault("artim_timeout", ARTIM)
    watched = Watched(EchoSCP(HOST, 0, **options))

    def record(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        watched.loop_errors.append(context)

    loop.set_exception_handler(record)
    try:
        async with watched.scp:
            yield watched
    finally:
        loop.set_exception_handler(previous)


def _described(errors: list[dict[str, Any]]) -> list[str]:
    return [f"{e.get('message')}: {e.get('exception')!r}" for e in errors]


def assert_clean(watched: Watched, caplog: pytest.LogCaptureFixture) -> None:
    """No exception reached the loop, and nothing was logged at ERROR or above."""
    assert not watched.loop_errors, _described(watched.loop_errors)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def assert_provider_abort(conv: Conversation) -> WirePDU:
    """The SCP's last PDU is an A-ABORT from the service provider (source 2), then it closed."""
    assert conv.pdus, "the SCP sent nothing"
    last = conv.pdus[-1]
    assert last.pdu_type == A_ABORT, f"last PDU type 0x{last.pdu_type:02x}, not A-ABORT"
    assert last.abort_source == 2, f"A-ABORT source {last.abort_source}, not 2 (provider)"
    assert conv.closed, "the SCP did not close the connection"
    return last


def _echo_status(pdu: WirePDU, message_id: int) -> int:
    """The Status of the C-ECHO-RSP in a one-PDV P-DATA-TF."""
    assert pdu.pdu_type == P_DATA_TF
    (pdv_length,) = struct.unpack_from(">L", pdu.body, 0)
    command = pdu.body[6 : 4 + pdv_length]
    return parse_echo_response(command, message_id).status


async def _associated(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection with an established association (the A-ASSOCIATE-AC read)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(associate_rq())
    pdus = await read_pdus(reader, 1, READ_LIMIT)
    assert [p.pdu_type for p in pdus] == [A_ASSOCIATE_AC]
    return reader, writer


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


# -- several PDUs in one read -------------------------------------------------------------------


async def test_associate_rq_and_abort_in_one_write(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        for _ in range(3):  # the second and later take the SCP's cached-request path
            conv = await send_and_read(
                HOST, watched.port, associate_rq() + ABORT_BY_USER, within=READ_LIMIT
            )
            assert conv.closed, "the SCP kept the connection after the A-ABORT"
            assert A_ABORT not in conv.types, "an A-ABORT is not answered with an A-ABORT"
            assert set(conv.types) <= {A_ASSOCIATE_AC}
        await asyncio.sleep(0.1)
        assert watched.scp.counters.aborts_received == 3
        assert watched.scp.open_connections == 0
    assert_clean(watched, caplog)


async def test_associate_echo_release_in_one_write(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        for message_id in (1, 2, 3):
            payload = associate_rq() + echo_rq(message_id) + RELEASE_RQ
            conv = await send_and_read(HOST, watched.port, payload, within=READ_LIMIT)
            assert conv.types == (A_ASSOCIATE_AC, P_DATA_TF, A_RELEASE_RP)
            assert _echo_status(conv.pdus[1], message_id) == 0x0000
    assert_clean(watched, caplog)


async def test_echo_and_release_in_one_write(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        for _ in range(2):
            reader, writer = await _associated(watched.port)
            try:
                writer.write(echo_rq(7) + RELEASE_RQ)
                pdus = await read_pdus(reader, 2, READ_LIMIT)
                assert [p.pdu_type for p in pdus] == [P_DATA_TF, A_RELEASE_RP]
                assert _echo_status(pdus[0], 7) == 0x0000
            finally:
                _abort(writer)
        assert watched.scp.counters.echoes == 2
        assert watched.scp.counters.releases == 2
    assert_clean(watched, caplog)


@pytest.mark.parametrize("stray", [b"\x00", b"\xff", b"\x08"], ids=["0x00", "0xff", "0x08"])
@pytest.mark.parametrize("after", ["associate-rq", "echo-rq", "release-rq"])
async def test_pdu_and_stray_byte_is_aborted(
    caplog: pytest.LogCaptureFixture, stray: bytes, after: str
) -> None:
    """A byte that cannot start a PDU (types 01H-07H only) right behind a valid PDU: AA-8 or
    the framing check, A-ABORT source 2 reason 1 (unrecognized-PDU), then close."""
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        if after == "associate-rq":
            conv = await send_and_read(
                HOST, watched.port, associate_rq() + stray, within=READ_LIMIT
            )
        else:
            reader, writer = await _associated(watched.port)
            try:
                writer.write((echo_rq() if after == "echo-rq" else RELEASE_RQ) + stray)
                conv = await read_until_closed(reader, READ_LIMIT)
            finally:
                _abort(writer)
        last = assert_provider_abort(conv)
        assert last.abort_reason in (1, 2, 5, 6), f"A-ABORT reason {last.abort_reason}"
    assert_clean(watched, caplog)


async def test_pdu_and_half_a_header_then_close(caplog: pytest.LogCaptureFixture) -> None:
    """A valid PDU, then the first bytes of another, then the peer closes: the close is
    handled as the end of input (AA-4), with nothing raised."""
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        conv = await send_and_read(
            HOST, watched.port, associate_rq() + b"\x04\x00", within=READ_LIMIT,
            close_after_send=True,
        )  # fmt: skip
        assert conv.closed
    assert_clean(watched, caplog)


# -- invalid PDUs ---------------------------------------------------------------------------


async def test_empty_pdata_tf_is_an_invalid_pdu(caplog: pytest.LogCaptureFixture) -> None:
    """PS3.8 §9.3.5: a P-DATA-TF holds one or more PDV items; none is an invalid PDU, answered
    with A-ABORT (service provider; reason 5 unexpected- or 6 invalid-PDU-parameter)."""
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        reader, writer = await _associated(watched.port)
        try:
            writer.write(EMPTY_PDATA)
            conv = await read_until_closed(reader, READ_LIMIT)
        finally:
            _abort(writer)
        last = assert_provider_abort(conv)
        assert last.abort_reason in (5, 6), f"A-ABORT reason {last.abort_reason}"
    assert_clean(watched, caplog)


async def test_huge_declared_length_is_refused_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A P-DATA-TF header declaring 0xFFFFFFFF bytes: refused when the header is complete,
    before any of the body is waited for or buffered."""
    caplog.set_level(logging.WARNING)
    async with watched_scp() as watched:
        reader, writer = await _associated(watched.port)
        try:
            writer.write(HUGE_LENGTH_PDATA_HEADER + b"\x00" * 4096)
            conv = await read_until_closed(reader, READ_LIMIT)
        finally:
            _abort(writer)
        assert_provider_abort(conv)
        assert _input_buffered(watched.scp) == 0
    assert_clean(watched, caplog)


# -- resources a peer can make the SCP hold -----------------------------------------------------


async def test_pipelining_peer_that_never_reads_is_not_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """C-ECHO-RQs sent as fast as possible, answers never read: the SCP must stop reading
    (pause) once its answers back up, so what it holds unsent stays bounded and the sender
    is blocked by TCP flow control, instead of the SCP's memory growing with the stream."""
    caplog.set_level(logging.WARNING)
    batch = b"".join(echo_rq(1 + i % 0xFFFF) for i in range(512))
    async with watched_scp() as watched:
        _, writer = await _associated(watched.port)
        worst = 0
        blocked = False
        try:
            end = time.monotonic() + 5.0
            for _ in range(20_000):  # at most ~800 MB offered; in practice bounded by time
                if time.monotonic() >= end:
                    break
                writer.write(batch)
                try:
                    await asyncio.wait_for(writer.drain(), timeout=1.0)
                except TimeoutError:
                    blocked = True
                worst = max(worst, _write_buffered(watched.scp))
                if blocked:
                    break
            await asyncio.sleep(0.2)
            worst = max(worst, _write_buffered(watched.scp))
        finally:
            _abort(writer)
        assert worst <= WRITE_BUFFER_BOUND, f"{worst:,} bytes held unsent by the SCP"
        assert blocked, "the SCP kept reading a peer that never reads its answers"
    assert_clean(watched, caplog)


@pytest.mark.parametrize("how", ["trickle-1-byte", "empty-pdata"])
async def test_slow_peers_cannot_hold_association_slots(
    caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """With `max_associations` 2, two requestors that associate and then send a byte of a
    C-ECHO-RQ every 0.4 s (or an empty P-DATA-TF) hold both slots; the SCP must free them
    within its bound (association lifetime / minimum progress), so a healthy requestor then
    succeeds."""
    caplog.set_level(logging.WARNING)
    async with watched_scp(**_hardened_options(max_associations=2)) as watched:
        holders = [await _associated(watched.port) for _ in range(2)]
        slow = echo_rq() if how == "trickle-1-byte" else EMPTY_PDATA * 64

        async def trickle(writer: asyncio.StreamWriter) -> None:
            for i in range(len(slow) if how == "trickle-1-byte" else 64):
                if writer.is_closing():
                    return
                chunk = slow[i : i + 1] if how == "trickle-1-byte" else EMPTY_PDATA
                with contextlib.suppress(ConnectionError):
                    writer.write(chunk)
                await asyncio.sleep(0.4)

        tasks = [asyncio.create_task(trickle(w)) for _, w in holders]
        try:
            await asyncio.sleep(0.3)
            first = await probe(HOST, watched.port, timeouts=HEALTHY)
            # Both slots are held: refused, unless a holder has already stalled long enough
            # (0.2 s in the middle of a PDU) for its slot to be reclaimed for this request.
            assert first.outcome in (Outcome.REJECTED_TRANSIENT, Outcome.SUCCESS)
            deadline = time.monotonic() + LIFETIME_S + 6.0
            result = first
            while time.monotonic() < deadline and not result.ok:
                await asyncio.sleep(0.5)
                result = await probe(HOST, watched.port, timeouts=HEALTHY)
            assert result.ok, f"slots still held after {LIFETIME_S + 6:g} s: {result.outcome}"
        finally:
            for task in tasks:
                task.cancel()
            for _, writer in holders:
                _abort(writer)
            await asyncio.gather(*tasks, return_exceptions=True)
    assert_clean(watched, caplog)


async def test_half_sent_large_requests_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """Many connections each send all but the last byte of a 1 MiB A-ASSOCIATE-RQ: the SCP
    must not hold them all (338 MB for 300 of them today)."""
    caplog.set_level(logging.WARNING)
    payload = padded_associate_rq(1 << 20)[:-1]
    async with watched_scp(artim_timeout=10.0) as watched:
        before = rss_bytes()
        writers: list[asyncio.StreamWriter] = []
        try:
            for _ in range(HALF_SENT_PEERS):
                _, writer = await asyncio.open_connection(HOST, watched.port)
                writer.write(payload)
                writers.append(writer)
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(8.0):
                    for writer in writers:
                        await writer.drain()
            await asyncio.sleep(0.2)
            held = _input_buffered(watched.scp)
            grown = rss_bytes() - before
        finally:
            for writer in writers:
                _abort(writer)
        assert held <= TOTAL_BUFFERED_BOUND, f"{held:,} bytes of half-sent requests buffered"
        # The same in the process's memory (generous: the client side lives here too).
        assert grown <= 4 * TOTAL_BUFFERED_BOUND, f"RSS grew by {grown:,} bytes"
    assert_clean(watched, caplog)


async def test_connect_reset_churn_leaves_the_scp_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connections reset (RST) right after connecting, or mid-request: nothing raised, nothing
    left open, and the SCP still serves."""
    caplog.set_level(logging.WARNING)
    linger = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
    async with watched_scp() as watched:
        rq = associate_rq()
        for i in range(200):
            _, writer = await asyncio.open_connection(HOST, watched.port)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            if i % 2:
                writer.write(rq[: 1 + i % len(rq)])
                await writer.drain()
            writer.transport.abort()
        result = await probe(HOST, watched.port, timeouts=HEALTHY)
        assert result.ok, result.outcome
        for _ in range(60):  # up to 3 s for the SCP to see the last resets
            if not watched.scp.open_connections:
                break
            await asyncio.sleep(0.05)
        assert watched.scp.open_connections == 0
    assert_clean(watched, caplog)
