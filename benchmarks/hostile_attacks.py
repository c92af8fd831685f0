"""Hostile requestors for `benchmarks.hostile_clients`: one coroutine per attack of issue #15.

Rules:
- Raw asyncio streams and hand-built bytes (`tests.support.hostile_wire`, which builds the
  valid PDUs with the project's own encoder); nothing here uses echoprobe's client.
- Every attack ends at `until` (a loop.time()), whatever the SCP does: every wait is bounded,
  every loop checks the clock, and the number of connections at once is fixed per attack.
- Loopback only: the SCP's address is given by the caller and is always 127.0.0.1.
- An attack counts what it did (`AttackStats`); it never raises for the SCP's behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.support.hostile_wire import (
    ABORT_BY_USER,
    EMPTY_PDATA,
    HUGE_LENGTH_PDATA_HEADER,
    RELEASE_RQ,
    associate_rq,
    echo_rq,
    padded_associate_rq,
    read_pdus,
)

HOST = "127.0.0.1"
_IO_TIMEOUT = 1.0  # the longest one read, connect or drain waits inside an attack
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


@dataclass(slots=True)
class AttackStats:
    """What an attack did (mutable while it runs, read once at the end)."""

    connections: int = 0
    bytes_offered: int = 0
    closed_by_scp: int = 0  # the SCP closed or reset a connection we meant to keep
    connect_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "bytes_offered": self.bytes_offered,
            "closed_by_scp": self.closed_by_scp,
            "connect_errors": self.connect_errors,
        }


@dataclass(frozen=True, slots=True)
class Scale:
    """How hard the attacks push; `--quick` uses a smaller one."""

    flood_workers: int = 16
    slot_holders: int = 40  # more than the SCP's --max-associations 32
    half_sent: int = 300
    slowloris: int = 200
    idle: int = 1000
    huge_workers: int = 4
    churn_workers: int = 16


Attack = Callable[[int, float, AttackStats, Scale], Awaitable[None]]


def _left(until: float) -> float:
    return until - asyncio.get_running_loop().time()


async def _open(
    port: int, stats: AttackStats
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        async with asyncio.timeout(_IO_TIMEOUT):
            pair = await asyncio.open_connection(HOST, port)
    except (OSError, TimeoutError):
        stats.connect_errors += 1
        await asyncio.sleep(0.05)
        return None
    stats.connections += 1
    return pair


def _send(writer: asyncio.StreamWriter, data: bytes, stats: AttackStats) -> bool:
    if writer.is_closing():
        return False
    try:
        writer.write(data)
    except (ConnectionError, RuntimeError):
        return False
    stats.bytes_offered += len(data)
    return True


def _drop(writer: asyncio.StreamWriter) -> None:
    """Close at once, without waiting for anything (RST if data is unread)."""
    if not writer.transport.is_closing():
        writer.transport.abort()


async def _drain(writer: asyncio.StreamWriter) -> bool:
    """True when the data went out; False when the peer is gone or not reading (timeout)."""
    try:
        async with asyncio.timeout(_IO_TIMEOUT):
            await writer.drain()
    except (ConnectionError, TimeoutError):
        return False
    return True


async def _workers(count: int, one: Callable[[], Awaitable[None]], until: float) -> None:
    """`count` tasks each repeating `one()` until `until`."""

    async def worker() -> None:
        while _left(until) > 0:
            await one()

    async with asyncio.timeout(max(_left(until), 0) + 2 * _IO_TIMEOUT + 1):
        await asyncio.gather(*(worker() for _ in range(count)))


async def _hold(count: int, keep: Callable[[], Awaitable[None]], until: float) -> None:
    """`count` long-lived connections (`keep()` returns when the SCP drops one: reconnect)."""
    await _workers(count, keep, until)


async def _cancel_at(until: float, coro: Awaitable[None]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(_left(until), 0)):
            await coro


# -- several PDUs in one write, as floods ------------------------------------------------------


def _one_write_flood(payload: bytes, *, read_first: bool) -> Attack:
    async def attack(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
        rq = associate_rq()

        async def one() -> None:
            pair = await _open(port, stats)
            if pair is None:
                return
            reader, writer = pair
            try:
                if read_first:  # associate, then the pair of PDUs in one write
                    _send(writer, rq, stats)
                    if not await read_pdus(reader, 1, _IO_TIMEOUT):
                        return
                _send(writer, payload, stats)
                await read_pdus(reader, 8, 0.2 if not read_first else _IO_TIMEOUT)
            finally:
                _drop(writer)

        await _workers(scale.flood_workers, one, until)

    return attack


rq_abort_flood = _one_write_flood(associate_rq() + ABORT_BY_USER, read_first=False)
echo_release_flood = _one_write_flood(echo_rq() + RELEASE_RQ, read_first=True)
stray_byte_flood = _one_write_flood(associate_rq() + b"\x00", read_first=False)


# -- a requestor that pipelines and never reads ------------------------------------------------


async def pipeline_no_read(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    batch = b"".join(echo_rq(1 + i) for i in range(1024))
    pair = await _open(port, stats)
    if pair is None:
        return
    reader, writer = pair
    try:
        _send(writer, associate_rq(), stats)
        if not await read_pdus(reader, 1, _IO_TIMEOUT):
            return
        while _left(until) > 0 and stats.bytes_offered < (4 << 30):
            if not _send(writer, batch, stats):
                stats.closed_by_scp += 1
                return
            await _drain(writer)  # a timeout means the SCP stopped reading: keep pushing
    finally:
        _drop(writer)


# -- slot holders: associate, then crawl -------------------------------------------------------


def _slot_holder(chunks: Callable[[], list[bytes]], every: float) -> Attack:
    async def attack(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
        rq = associate_rq()

        async def keep() -> None:
            pair = await _open(port, stats)
            if pair is None:
                return
            reader, writer = pair
            try:
                _send(writer, rq, stats)
                if not await read_pdus(reader, 1, _IO_TIMEOUT):
                    await asyncio.sleep(0.2)  # rejected or dropped: retry a little later
                    return
                for chunk in chunks():
                    await asyncio.sleep(every)
                    if _left(until) <= 0:
                        return
                    if reader.at_eof() or not _send(writer, chunk, stats):
                        stats.closed_by_scp += 1
                        return
            finally:
                _drop(writer)

        await _hold(scale.slot_holders, keep, until)

    return attack


trickle_1_byte = _slot_holder(lambda: [echo_rq()[i : i + 1] for i in range(80)] * 100, 1.0)
empty_pdata = _slot_holder(lambda: [EMPTY_PDATA] * 10_000, 1.0)


# -- resources held before any association -----------------------------------------------------


async def half_sent_1mib(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    payload = padded_associate_rq(1 << 20)[:-1]

    async def keep() -> None:
        pair = await _open(port, stats)
        if pair is None:
            return
        reader, writer = pair
        try:
            _send(writer, payload, stats)
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(max(_left(until), 0)):
                    await reader.read(1)  # until the SCP drops us, or the end
            if _left(until) > 0:
                stats.closed_by_scp += 1
        finally:
            _drop(writer)

    await _hold(scale.half_sent, keep, until)


async def slowloris(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    """The A-ASSOCIATE-RQ itself, one byte a second."""
    rq = associate_rq()

    async def keep() -> None:
        pair = await _open(port, stats)
        if pair is None:
            return
        reader, writer = pair
        try:
            for i in range(len(rq)):
                if _left(until) <= 0:
                    return
                if reader.at_eof() or not _send(writer, rq[i : i + 1], stats):
                    stats.closed_by_scp += 1
                    return
                await asyncio.sleep(1.0)
        finally:
            _drop(writer)

    await _hold(scale.slowloris, keep, until)


async def idle(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    """Connections that send nothing at all."""

    async def keep() -> None:
        pair = await _open(port, stats)
        if pair is None:
            return
        reader, writer = pair
        try:
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(max(_left(until), 0)):
                    await reader.read(1)
            if _left(until) > 0:
                stats.closed_by_scp += 1
        finally:
            _drop(writer)

    await _hold(scale.idle, keep, until)


async def huge_length(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    """After the association, a P-DATA-TF declaring 0xFFFFFFFF bytes, then a fast stream."""
    rq = associate_rq()
    filler = b"\x00" * 65536

    async def one() -> None:
        pair = await _open(port, stats)
        if pair is None:
            return
        reader, writer = pair
        try:
            _send(writer, rq, stats)
            if not await read_pdus(reader, 1, _IO_TIMEOUT):
                return
            _send(writer, HUGE_LENGTH_PDATA_HEADER, stats)
            for _ in range(16 << 10):  # at most 1 GiB per connection
                if _left(until) <= 0 or reader.at_eof():  # the SCP aborted and closed
                    break
                if not _send(writer, filler, stats) or not await _drain(writer):
                    break
            if reader.at_eof() or writer.is_closing():
                stats.closed_by_scp += 1
        finally:
            _drop(writer)

    await _workers(scale.huge_workers, one, until)


async def rst_churn(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    """Connect, maybe send part of a request, reset."""
    rq = associate_rq()
    count = 0

    async def one() -> None:
        nonlocal count
        pair = await _open(port, stats)
        if pair is None:
            return
        _, writer = pair
        count += 1
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
        if count % 2:
            _send(writer, rq[: 1 + count % len(rq)], stats)
            await _drain(writer)
        _drop(writer)

    await _workers(scale.churn_workers, one, until)


async def nothing(port: int, until: float, stats: AttackStats, scale: Scale) -> None:
    await asyncio.sleep(max(_left(until), 0))


async def run_attack(attack: Attack, port: int, seconds: float, scale: Scale) -> AttackStats:
    """Run `attack` for `seconds` (plus at most a few seconds to wind down)."""
    stats = AttackStats()
    until = asyncio.get_running_loop().time() + seconds
    await _cancel_at(until + 3 * _IO_TIMEOUT, attack(port, until, stats, scale))
    return stats


__all__ = [
    "Attack",
    "AttackStats",
    "Scale",
    "echo_release_flood",
    "empty_pdata",
    "half_sent_1mib",
    "huge_length",
    "idle",
    "nothing",
    "pipeline_no_read",
    "rq_abort_flood",
    "rst_churn",
    "run_attack",
    "slowloris",
    "stray_byte_flood",
    "trickle_1_byte",
]
