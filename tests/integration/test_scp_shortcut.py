"""`EchoSCP`'s shortcut for the usual conversation, and every way out of it, over loopback.

A healthy listener answers a request it has accepted before, canonical C-ECHO-RQs and
A-RELEASE-RQ from cached bytes; anything else must first bring its `ULConnection` to the same
state. These tests prime the shortcut with one ordinary association, then talk raw bytes to it
and leave the shortcut at each stage, checking what comes back on the wire.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from echoprobe.dimse.echo import echo_request_pdus, echo_response_command
from echoprobe.dimse.fragment import fragment_command
from echoprobe.net.client import echo
from echoprobe.net.procedure import request_for
from echoprobe.net.server import EchoSCP
from echoprobe.options import AssociationOptions
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.pdu import ReleaseRP, ReleaseRQ

HOST = "127.0.0.1"
REQUEST = request_for(AssociationOptions())[1]
RELEASE_RQ = encode_pdu(ReleaseRQ())
RELEASE_RP = encode_pdu(ReleaseRP())
WAIT = 3.0


def echo_rq(message_id: int = 1) -> bytes:
    return echo_request_pdus(message_id, 1, 16372)


def echo_rsp(message_id: int = 1) -> bytes:
    return fragment_command(echo_response_command(message_id), 1, 16372)


async def read_pdu(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readexactly(6), WAIT)
    (length,) = struct.unpack(">L", head[2:])
    return head + await asyncio.wait_for(reader.readexactly(length), WAIT)


async def primed(**options: object) -> EchoSCP:
    scp = await EchoSCP(HOST, 0, **options).start()  # type: ignore[arg-type]
    await echo(HOST, scp.port)  # the listener now knows our request
    assert scp._listeners[0].accepted, "the ordinary association did not prime the shortcut"
    return scp


async def associate(
    scp: EchoSCP, *, split: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, scp.port)
    if split:
        writer.write(REQUEST[:7])
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(REQUEST[7:])
    else:
        writer.write(REQUEST)
    ac = await read_pdu(reader)
    assert ac[0] == 0x02
    return reader, writer


async def finish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(RELEASE_RQ)
    assert await read_pdu(reader) == RELEASE_RP
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("split_request", [False, True], ids=["whole", "split-request"])
async def test_the_usual_conversation_and_a_split_request(split_request: bool) -> None:
    scp = await primed()
    try:
        reader, writer = await associate(scp, split=split_request)
        for message_id in (1, 2):
            writer.write(echo_rq(message_id))
            assert await read_pdu(reader) == echo_rsp(message_id)
        await finish(reader, writer)
        counters = scp.counters
        assert (counters.associations, counters.echoes, counters.releases) == (2, 3, 2)
    finally:
        await scp.close()


async def test_leaving_while_associated_split_echo_and_two_pdus_in_one_read() -> None:
    scp = await primed()
    try:
        reader, writer = await associate(scp)
        rq = echo_rq(1)
        writer.write(rq[:20])
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(rq[20:])
        assert await read_pdu(reader) == echo_rsp(1)
        writer.write(echo_rq(2) + RELEASE_RQ)  # now through the state machine
        assert await read_pdu(reader) == echo_rsp(2)
        assert await read_pdu(reader) == RELEASE_RP
        writer.close()
        await writer.wait_closed()
    finally:
        await scp.close()


async def test_a_bad_pdu_after_the_shortcut_is_aborted() -> None:
    scp = await primed(artim_timeout=0.3)  # after AA-8 the SCP waits that long for our close
    try:
        reader, writer = await associate(scp)
        writer.write(b"\x09\x00\x00\x00\x00\x00")
        abort = await read_pdu(reader)
        assert abort[0] == 0x07
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
    finally:
        await scp.close()


async def test_idle_client_after_the_shortcut_is_aborted() -> None:
    scp = await primed(idle_timeout=0.3)
    try:
        reader, writer = await associate(scp)
        abort = await read_pdu(reader)  # A-ABORT, source 0, from the idle bound
        assert abort[:6] == b"\x07\x00\x00\x00\x00\x04"
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
    finally:
        await scp.close()


@pytest.mark.parametrize("then_send", [b"", b"echo"], ids=["silent", "data-after-release"])
async def test_client_that_stays_after_the_release_is_closed_by_artim(then_send: bytes) -> None:
    scp = await primed(artim_timeout=0.3)
    try:
        reader, writer = await associate(scp)
        writer.write(RELEASE_RQ)
        assert await read_pdu(reader) == RELEASE_RP
        if then_send:
            writer.write(echo_rq(2))  # ignored in Sta13 (AA-6)
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        assert loop.time() - start < 2.0
        writer.close()
    finally:
        await scp.close()


async def test_association_limit_holds_with_the_shortcut() -> None:
    scp = await primed(max_associations=1)
    try:
        reader, writer = await associate(scp)
        second_reader, second_writer = await asyncio.open_connection(HOST, scp.port)
        second_writer.write(REQUEST)
        rejected = await read_pdu(second_reader)
        assert rejected == b"\x03\x00\x00\x00\x00\x04\x00\x02\x03\x02"  # transient, local limit
        second_writer.close()
        await finish(reader, writer)
    finally:
        await scp.close()


async def test_close_aborts_an_association_in_the_shortcut() -> None:
    scp = await primed()
    reader, writer = await associate(scp)
    await scp.close()
    abort = await read_pdu(reader)
    assert abort[0] == 0x07
    writer.close()
