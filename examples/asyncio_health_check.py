"""A DICOM health check inside an asyncio service.

Every few seconds the service probes its PACS with a C-ECHO and keeps the latest verdict, the
way a readiness endpoint would. `probe()` never raises for the peer's failure: the record says
what happened (`outcome`, the peer's own reject/abort reason or status, per-phase timings).

Run it against any Verification SCP, e.g. `uv run echoprobe scp --listen 127.0.0.1:11112`:

    uv run python examples/asyncio_health_check.py 127.0.0.1 11112 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio

import echoprobe


async def health_loop(host: str, port: int, called_ae: str, rounds: int, every: float) -> int:
    timeouts = echoprobe.Timeouts(connect=2, acse=5, dimse=5, release=2, total=10)
    healthy = 0
    for round_no in range(1, rounds + 1):  # a real service would loop until shutdown
        record = await echoprobe.probe(host, port, called_ae=called_ae, timeouts=timeouts)
        if record.ok:
            healthy += 1
            peer = record.peer.implementation_version_name if record.peer else "?"
            total = record.timings_ms["total"]
            print(f"[{round_no}] {called_ae}@{host}:{port} healthy in {total:.1f} ms ({peer})")
        else:
            print(f"[{round_no}] {called_ae}@{host}:{port} {record.outcome}: {record.error}")
        if round_no < rounds:
            await asyncio.sleep(every)
    return 0 if healthy == rounds else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("port", nargs="?", type=int, default=11112)
    parser.add_argument("--called-ae", default="ANY-SCP")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=float, default=1.0)
    args = parser.parse_args()
    job = health_loop(args.host, args.port, args.called_ae, args.rounds, args.every)
    try:
        import uvloop  # noqa: PLC0415 - optional: the fast loop when it is installed
    except ImportError:
        return asyncio.run(job)
    return uvloop.run(job)


if __name__ == "__main__":
    raise SystemExit(main())
