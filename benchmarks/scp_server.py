"""The SCP under test, in its own process: `EchoSCP` on uvloop, stopping by itself.

Two layouts:
- `--addresses A --ports P`: A loopback addresses (127.0.0.1 … 127.0.0.A) times P ephemeral ports,
  so that many short connections do not exhaust the ephemeral ports of one destination;
- `--fleet N`: N simulated peers on 127.0.x.y (see `common.fleet_address`), one port number for
  all; 5 % have no listener (refused), 5 % accept TCP and never answer the A-ASSOCIATE-RQ.

Prints one JSON line when listening (`pid`, `listeners`) and one when it stops (`cpu_s`,
`wall_s`, counters). Stops when stdin closes or after `--max-seconds`, whichever is first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import uvloop

from benchmarks.common import fleet_address, fleet_kind, raise_nofile
from echoprobe.net.server import EchoSCP, Faults


async def serve(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stdin = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):
            stop.set()

    loop.add_reader(stdin, on_stdin)
    loop.call_later(args.max_seconds, stop.set)

    scps: list[EchoSCP] = []
    listeners: list[tuple[str, int]] = []

    async def start(hosts: str | list[str], port: int, faults: Faults | None = None) -> EchoSCP:
        scp = EchoSCP(
            hosts,
            port,
            faults=faults,
            idle_timeout=args.idle_timeout,
            artim_timeout=5.0,
            backlog=4096,
        )
        scps.append(scp)
        return await scp.start()

    if args.fleet:
        ok = [fleet_address(i) for i in range(args.fleet) if fleet_kind(i) == "ok"]
        silent = [fleet_address(i) for i in range(args.fleet) if fleet_kind(i) == "silent"]
        port = (await start(ok[0], 0)).port
        await start(ok[1:], port)
        if silent:
            await start(silent, port, Faults(silent_at="associate"))
        listeners = [(ok[0], port)]
        ready: dict[str, object] = {
            "pid": os.getpid(),
            "listeners": listeners,
            "fleet_port": port,
            "fleet_listeners": len(ok) + len(silent),
        }
    else:
        hosts = [f"127.0.0.{i}" for i in range(1, args.addresses + 1)]
        for _ in range(args.ports):
            listeners.extend((await start(hosts, 0)).addresses)
        ready = {"pid": os.getpid(), "listeners": listeners}
    print(json.dumps(ready), flush=True)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await stop.wait()
    loop.remove_reader(stdin)
    for scp in scps:
        try:
            async with asyncio.timeout(10):
                await scp.close()
        except TimeoutError:
            pass
    totals: dict[str, int] = {}
    for scp in scps:
        for name in scp.counters.__slots__:
            totals[name] = totals.get(name, 0) + getattr(scp.counters, name)
    return {
        "cpu_s": round(time.process_time() - cpu0, 3),
        "wall_s": round(time.monotonic() - wall0, 3),
        "counters": totals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scp_server")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--addresses", type=int, default=4)
    parser.add_argument("--ports", type=int, default=4)
    parser.add_argument("--fleet", type=int, default=0)
    parser.add_argument("--idle-timeout", type=float, default=10.0)
    args = parser.parse_args()
    if not 1 <= args.addresses <= 254 or not 1 <= args.ports <= 64:
        parser.error("--addresses must be 1..254 and --ports 1..64")
    if args.max_seconds > 3600:
        parser.error("--max-seconds is at most 3600")
    raise_nofile()
    final = uvloop.run(serve(args))
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()
