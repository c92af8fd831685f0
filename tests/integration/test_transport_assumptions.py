"""Facts about the event loops that the asyncio driver relies on instead of re-doing them."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop


async def _nodelay_of_client_transport() -> int:
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        transport, _ = await asyncio.get_running_loop().create_connection(
            asyncio.Protocol, "127.0.0.1", port
        )
        try:
            sock = transport.get_extra_info("socket")
            return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        finally:
            transport.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_tcp_transports_come_with_nodelay(runner: object) -> None:
    # AssociationProtocol does not set TCP_NODELAY itself (one system call per association):
    # both loops already do, and Nagle's algorithm would add ~40 ms to every exchange.
    assert runner(_nodelay_of_client_transport()) == 1  # type: ignore[operator]


async def _source_seen_by_peer(source: str) -> str:
    from echoprobe.net.client import probe

    seen: list[str] = []

    def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        writer.close()  # not a DICOM peer: the probe ends at once

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await probe("127.0.0.1", port, local_address=(source, 0))
    finally:
        server.close()
        await server.wait_closed()
    return seen[0]


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_connects_from_a_chosen_source_address(runner: object) -> None:
    # The driver binds the source address itself (the port is chosen at connect time, with
    # IP_BIND_ADDRESS_NO_PORT on Linux): the peer must see that address.
    assert runner(_source_seen_by_peer("127.0.0.2")) == "127.0.0.2"  # type: ignore[operator]
