"""Sweep a fleet of DICOM peers and write one JSON line per peer, as each probe finishes.

`sweep()` gives exactly one record per target whatever happens (success, reject, abort, refused,
silent, bad input...), streams them as they come, and never raises for a peer's failure. Ctrl-C
stops it cleanly: probes in flight are aborted and recorded as `cancelled`, the rest as
`not_started`, so the output always has one line per target.

    uv run python examples/sweep_to_jsonl.py PACS@pacs.example CT1@ct1.example:11112 > sweep.jsonl
    uv run python examples/sweep_to_jsonl.py --targets inventory.csv > sweep.jsonl

With no targets it starts a few test SCPs of its own on 127.0.1.x (one healthy, one that
rejects us, one that stays silent) plus an address nobody listens on, and sweeps those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable

import echoprobe


@contextlib.asynccontextmanager
async def demo_fleet() -> AsyncIterator[list[str]]:
    """Three local SCPs and a closed port, all on loopback addresses of their own."""
    healthy = echoprobe.EchoSCP(host="127.0.1.1", port=0)
    rejecting = echoprobe.EchoSCP(host="127.0.1.2", port=0, ae_titles=["ONLY-THIS"])
    silent = echoprobe.EchoSCP(
        host="127.0.1.3", port=0, faults=echoprobe.Faults(silent_at="associate")
    )
    async with healthy, rejecting, silent:
        yield [
            f"PACS@127.0.1.1:{healthy.port}",
            f"PACS@127.0.1.2:{rejecting.port}",
            f"PACS@127.0.1.3:{silent.port}",
            "PACS@127.0.1.4:1",  # nothing listens: connection refused
            "PACS@not a host",  # malformed: an invalid_target record, not a crash
        ]


Inputs = Iterable[str | echoprobe.Target | echoprobe.InvalidTarget]


async def sweep_to_jsonl(targets: Inputs) -> Counter[str]:
    """Sweep `targets`, print one JSON line per record; the count of each outcome."""
    timeouts = echoprobe.Timeouts(connect=3, acse=2, dimse=5, release=2, total=15)
    outcomes: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    async with echoprobe.sweep(targets, concurrency=256, timeouts=timeouts) as results:
        loop.add_signal_handler(signal.SIGINT, results.stop)  # Ctrl-C: stop, keep every record
        async for record in results:
            # flush per line: a reader following the output sees each peer as it finishes
            print(json.dumps(record.to_dict(), default=str), flush=True)
            outcomes[str(record.outcome)] += 1
        loop.remove_signal_handler(signal.SIGINT)
    summary = ", ".join(f"{outcome} {count}" for outcome, count in outcomes.most_common())
    print(f"{sum(outcomes.values())} targets: {summary}", file=sys.stderr)
    return outcomes


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("targets", nargs="*", help="[CALLED_AE@]host[:port]")
    parser.add_argument("--targets", dest="file", help="an inventory (CSV, JSONL, YAML, lines)")
    args = parser.parse_args()
    if args.file:
        try:
            inventory = echoprobe.load_targets(args.file)
        except echoprobe.TargetFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        outcomes = await sweep_to_jsonl(inventory)
    elif args.targets:
        outcomes = await sweep_to_jsonl(args.targets)
    else:
        async with demo_fleet() as targets:
            outcomes = await sweep_to_jsonl(targets)
    return 0 if set(outcomes) <= {"success"} else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
