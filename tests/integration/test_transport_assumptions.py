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
