"""A TCP proxy on loopback that misbehaves on purpose: network faults between a client and an SCP.

    async with FaultyProxy(("127.0.0.1", scp.port), Fault(Mode.TRICKLE, interval=0.2)) as proxy:
        await probe("127.0.0.1", proxy.port)

Modes (`Mode`), applied to the bytes flowing in `Fault.direction` ("down": SCP → client, the
default; "up": client → SCP; "both"):
- PASS: every byte forwarded once, in order, as it comes (duplicate-free pass-through);
- DELAY: each chunk forwarded `delay` seconds after it arrived, order kept;
- TRICKLE: one byte every `interval` seconds;
- TRUNCATE: the first `after` bytes forwarded, then both connections closed (FIN);
- RESET: the first `after` bytes forwarded, then the client's connection reset (RST);
- BLACKHOLE: connections accepted, nothing forwarded or answered, nothing closed.

Rules of this module:
- Loopback only: it listens on 127.0.0.1 and connects only to the upstream address it is given.
- Bounded: the proxy closes every connection and stops listening after `lifetime` seconds, at
  `close()`, or when the `async with` block ends, whichever comes first; every task it starts
  is cancelled and awaited then.
- It counts what it did (`accepted`, `forwarded`), so a test can check that a fault struck.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Final, Self

_LISTEN_HOST: Final = "127.0.0.1"
_CHUNK: Final = 65536
_RST: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class Mode(Enum):
    PASS = "pass"
    DELAY = "delay"
    TRICKLE = "trickle"
    TRUNCATE = "truncate"
    RESET = "reset"
    BLACKHOLE = "blackhole"


@dataclass(frozen=True, slots=True)
class Fault:
    """What the proxy does to the bytes going `direction` ("down", "up" or "both")."""

    mode: Mode = Mode.PASS
    delay: float = 0.0  # DELAY: seconds each chunk is held
    interval: float = 0.0  # TRICKLE: seconds between bytes
    after: int = 0  # TRUNCATE, RESET: bytes forwarded first
    direction: str = "down"

    def __post_init__(self) -> None:
        if self.direction not in ("down", "up", "both"):
            raise ValueError("Fault.direction must be 'down', 'up' or 'both'")
        if self.delay < 0 or self.interval < 0 or self.after < 0:
            raise ValueError("Fault.delay, interval and after must be ≥ 0")

    def applies(self, direction: str) -> bool:
        return self.direction in (direction, "both")


class FaultyProxy:
    """Listens on 127.0.0.1 (ephemeral port) and forwards to `upstream`, with one `Fault`."""

    def __init__(
        self, upstream: tuple[str, int], fault: Fault | None = None, *, lifetime: float = 60.0
    ) -> None:
        host = upstream[0]
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise ValueError("FaultyProxy forwards to loopback addresses only")
        self.upstream = upstream
        self.fault = fault or Fault()
        self.lifetime = lifetime
        self.accepted = 0
        self.forwarded = {"down": 0, "up": 0}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FaultyProxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        return _LISTEN_HOST, self.port

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, _LISTEN_HOST, 0)
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self.lifetime, self._expire)
        return self

    def _expire(self) -> None:
        task = asyncio.get_running_loop().create_task(self.close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop listening, drop every connection, and wait (bounded) for each to end."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._closing.set()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        if pending:
            # Our pumps may sleep (delay, trickle): cancel them; the connection handlers then
            # end by themselves (cancelling those would make asyncio's streams log an error).
            for task in pending:
                if task in self._pumps:
                    task.cancel()
            await asyncio.wait(pending, timeout=2.0)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- one connection

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if self.fault.mode is Mode.BLACKHOLE:
                await self._swallow(reader)
                return
            try:
                async with asyncio.timeout(5.0):
                    up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except (OSError, TimeoutError):
                return
            self._writers.add(up_writer)
            down = asyncio.create_task(self._pump(up_reader, writer, "down", client=writer))
            up = asyncio.create_task(self._pump(reader, up_writer, "up", client=writer))
            self._tasks.update((down, up))
            self._pumps.update((down, up))
            try:
                await asyncio.wait((down, up))  # never raises for a pump's end or cancellation
            finally:
                for t in (down, up):
                    self._tasks.discard(t)
                    self._pumps.discard(t)
                    t.cancel()
                up_writer.transport.abort()
                self._writers.discard(up_writer)
        finally:
            if not writer.transport.is_closing():
                writer.close()
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(_CHUNK):
                pass
        await self._closing.wait()  # never close first: the proxy's end closes it

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        direction: str,
        *,
        client: asyncio.StreamWriter,
    ) -> None:
        fault = self.fault if self.fault.applies(direction) else Fault()
        sent = 0
        try:
            while True:
                data = await src.read(_CHUNK)
                if not data:
                    if dst.can_write_eof() and not dst.transport.is_closing():
                        dst.write_eof()
                    return
                if fault.mode in (Mode.TRUNCATE, Mode.RESET):
                    keep = data[: max(fault.after - sent, 0)]
                    if keep:
                        dst.write(keep)
                        sent += len(keep)
                        self.forwarded[direction] += len(keep)
                    if sent >= fault.after:
                        await dst.drain()
                        self._cut(client, reset=fault.mode is Mode.RESET)
                        return
                    continue
                if fault.mode is Mode.DELAY:
                    await asyncio.sleep(fault.delay)
                if fault.mode is Mode.TRICKLE:
                    for i in range(len(data)):
                        dst.write(data[i : i + 1])
                        self.forwarded[direction] += 1
                        await asyncio.sleep(fault.interval)
                else:
                    dst.write(data)
                    self.forwarded[direction] += len(data)
                await dst.drain()
        except ConnectionError:
            return

    def _cut(self, client: asyncio.StreamWriter, *, reset: bool) -> None:
        if reset:
            sock = client.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
            client.transport.abort()
        else:
            client.close()


__all__ = ["Fault", "FaultyProxy", "Mode"]
