"""A trio service that health-checks a DICOM peer with C-ECHO at a fixed interval.

    python examples/trio_health_check.py [HOST] [PORT]        (defaults: 127.0.0.1 11112)

Any Verification SCP will do as the peer, e.g. DCMTK's `storescp 11112`. The checker runs as
a task in the service's nursery and hands each `ProbeResult` to a reporter task over a memory
channel; `probe()` never raises for the peer's failure, so a refused connection or a silent
peer is just another record. The loop is bounded (`ROUNDS`) so the example ends by itself;
the exit status is 0 when every round was healthy, 1 otherwise.
"""

from __future__ import annotations

import sys

import trio

import echoprobe
from echoprobe import ProbeResult, Timeouts

ROUNDS = 3
INTERVAL = 2.0  # seconds between the starts of two checks
# Tight bounds suit a health check: a peer that needs more than this is not healthy.
TIMEOUTS = Timeouts(connect=2.0, acse=2.0, dimse=2.0, release=2.0, total=5.0)


async def check_periodically(
    host: str, port: int, results: trio.MemorySendChannel[ProbeResult]
) -> None:
    async with results:
        for _ in range(ROUNDS):
            started = trio.current_time()
            result = await echoprobe.probe(host, port, called_ae="ANY-SCP", timeouts=TIMEOUTS)
            await results.send(result)
            await trio.sleep_until(started + INTERVAL)


async def report(results: trio.MemoryReceiveChannel[ProbeResult]) -> int:
    healthy = number = 0
    async with results:
        async for result in results:
            number += 1
            total = result.timings_ms.get("total", 0.0)
            if result.ok:
                healthy += 1
                peer = result.peer.implementation_version_name if result.peer else None
                print(
                    f"check {number}/{ROUNDS}: {result.target} healthy in {total:.1f} ms ({peer})"
                )
            else:
                print(
                    f"check {number}/{ROUNDS}: {result.target} UNHEALTHY: {result.outcome}"
                    f" in phase {result.phase} after {total:.1f} ms: {result.error}"
                )
    return healthy


async def main(host: str, port: int) -> int:
    send, receive = trio.open_memory_channel[ProbeResult](0)
    healthy = 0

    async def run_reporter() -> None:
        nonlocal healthy
        healthy = await report(receive)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(check_periodically, host, port, send)
        nursery.start_soon(run_reporter)
    return 0 if healthy == ROUNDS else 1


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 11112
    sys.exit(trio.run(main, host, port))
