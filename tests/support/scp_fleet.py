"""A fleet of misbehaving Verification SCPs on distinct loopback addresses, for sweep tests.

    async with scp_fleet({"healthy": 3, "silent": 2, "refuse": 1}) as fleet:
        fleet.targets["healthy"]        # ["127.0.1.1:40001", ...]

or, as a process (for CLI tests; prints the targets as one JSON line once listening):

    python tests/support/scp_fleet.py --kinds healthy=3,silent=2 --lifetime 30

Rules: only 127.0.0.0/8 (each peer its own address, 127.0.1.1 upwards, an ephemeral port
each); every peer is our `EchoSCP` with `Faults`; "refuse" peers are addresses with a port
that was bound and closed (nothing listens). The process stops by itself after `--lifetime`
seconds, or when its stdin closes, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import socket
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from echoprobe.net.server import EchoSCP, Faults

KINDS: dict[str, Faults | None] = {
    "healthy": Faults(),
    "silent": Faults(silent_at="associate"),
    "reject": Faults(reject=(1, 1, 3)),  # rejected-permanent, service user, calling AE unknown
    "reject_transient": Faults(reject=(2, 3, 2)),  # rejected-transient, local limit exceeded
    "abort": Faults(abort_at="associate"),
    "status": Faults(status=0x0110, error_comment="failed on purpose"),
    "close": Faults(close_at="connect"),
    "nocontext": Faults(reject_contexts=True),
    "slow": Faults(delay={"associate": 0.3}),
    "refuse": None,  # no listener at all
}
FIRST_ADDRESS = ipaddress.IPv4Address("127.0.1.1")


def fleet_addresses(count: int, first: str = str(FIRST_ADDRESS)) -> list[str]:
    """`count` consecutive loopback addresses from `first`, skipping .0 and .255 hosts."""
    out: list[str] = []
    address = ipaddress.IPv4Address(first)
    for _ in range(count * 2 + 4):  # bounded: at most two skips per 254 addresses
        if len(out) == count:
            break
        if address not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError("the fleet ran out of loopback addresses")
        if address.packed[3] not in (0, 255):
            out.append(str(address))
        address += 1
    return out


def closed_port(host: str) -> int:
    """A port on `host` that was just bound and closed: a connection to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Fleet:
    targets: dict[str, list[str]] = field(default_factory=dict)  # kind → ["host:port", ...]
    scps: list[EchoSCP] = field(default_factory=list)

    def all_targets(self) -> list[str]:
        return [t for kind in self.targets.values() for t in kind]


@contextlib.asynccontextmanager
async def scp_fleet(
    kinds: Mapping[str, int], *, first: str = str(FIRST_ADDRESS), idle_timeout: float = 20.0
) -> AsyncIterator[Fleet]:
    """Start the peers (in this loop); close them all on exit."""
    total = sum(kinds.values())
    addresses = iter(fleet_addresses(total, first))
    fleet = Fleet()
    try:
        for kind, count in kinds.items():
            if kind not in KINDS:
                raise ValueError(f"unknown peer kind {kind!r}; known: {', '.join(KINDS)}")
            hosts = [next(addresses) for _ in range(count)]
            faults = KINDS[kind]
            if faults is None:
                fleet.targets[kind] = [f"{h}:{closed_port(h)}" for h in hosts]
                continue
            if not hosts:
                fleet.targets[kind] = []
                continue
            scp = EchoSCP(host=hosts, port=0, faults=faults, idle_timeout=idle_timeout)
            await scp.start()
            fleet.scps.append(scp)
            fleet.targets[kind] = [f"{h}:{p}" for h, p in scp.addresses]
        yield fleet
    finally:
        for scp in fleet.scps:
            await scp.close()


def _parse_kinds(text: str) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        kinds[name.strip()] = int(count or 1)
    return kinds


async def _serve(kinds: dict[str, int], first: str, lifetime: float, idle: float) -> None:
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with scp_fleet(kinds, first=first, idle_timeout=idle) as fleet:
        print(json.dumps(fleet.targets), flush=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(lifetime):
                await stdin_closed.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kinds", default="healthy=1", help="kind=count,... of " + ",".join(KINDS))
    parser.add_argument("--first", default=str(FIRST_ADDRESS), help="first loopback address")
    parser.add_argument("--lifetime", type=float, default=30.0, help="stop after this (s)")
    parser.add_argument("--idle-timeout", type=float, default=20.0)
    args = parser.parse_args()
    if ipaddress.IPv4Address(args.first) not in ipaddress.IPv4Network("127.0.0.0/8"):
        parser.error("only loopback addresses (127.0.0.0/8)")
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(_parse_kinds(args.kinds), args.first, args.lifetime, args.idle_timeout))


if __name__ == "__main__":
    main()
