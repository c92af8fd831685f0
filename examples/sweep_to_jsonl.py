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
import signal
import sys
from collections.abc import AsyncIterator, Iterable

from rich.console import Console

import echoprobe
from echoprobe.fleet.sweep import SweepInput
from echoprobe.fleet.targets import load_targets
from echoprobe.report.jsonl import JsonlWriter
from echoprobe.report.summary import SweepSummary, render_summary


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


async def sweep_to_jsonl(targets: Iterable[SweepInput]) -> SweepSummary:
    timeouts = echoprobe.Timeouts(connect=3, acse=2, dimse=5, release=2, total=15)
    summary = SweepSummary()
    loop = asyncio.get_running_loop()
    async with echoprobe.sweep(targets, concurrency=256, timeouts=timeouts) as results:
        loop.add_signal_handler(signal.SIGINT, results.stop)  # Ctrl-C: stop, keep every record
        with JsonlWriter(sys.stdout) as out:  # one line per record, flushed as it comes
            async for record in results:
                out.write(record)
                summary.add(record)
        loop.remove_signal_handler(signal.SIGINT)
        render_summary(summary, Console(stderr=True), stats=results.stats)
    return summary


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("targets", nargs="*", help="[CALLED_AE@]host[:port]")
    parser.add_argument("--targets", dest="file", help="an inventory (CSV, JSONL, YAML, lines)")
    args = parser.parse_args()
    if args.file:
        summary = await sweep_to_jsonl(load_targets(args.file))
    elif args.targets:
        summary = await sweep_to_jsonl(args.targets)
    else:
        async with demo_fleet() as targets:
            summary = await sweep_to_jsonl(targets)
    return 0 if summary.failing_count == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
