"""Hostile clients against `echoprobe scp`, with a healthy client alongside (issue #15).

    .venv/bin/python -m benchmarks.hostile_clients [--attack NAME[,NAME]] [--seconds S] [--quick]
        [--rate 40] [--src DIR] [--json FILE]

For each attack, one at a time: a fresh `echoprobe scp` process (its stderr kept in a file,
its RSS read from /proc), a healthy `echoprobe load --rate 40` process (open loop, a 5 s
deadline per association), and the attack itself from this process (raw sockets, hand-built
PDUs: `benchmarks.hostile_attacks`), all for `--seconds`. One row per attack: the healthy
client's success rate and whole-association p50/p99 (successful associations, timed from their
intended start, so stalls are not hidden), the SCP's peak RSS, what it wrote on stderr
(lines, bytes, tracebacks) and its counters, checked against the issue's bars: success ≥ 99 %,
p99 ≤ 500 ms, SCP RSS ≤ 150 MB, no traceback.

`--src DIR` runs both commands from another source tree, e.g. the last commit:
`git archive HEAD src | tar -x -C /tmp/head` then `--src /tmp/head/src`. The exit status is
0 when every row meets the bars, 1 otherwise (a measurement, not a test: it does not fail CI).
Loopback only; every process and every attack is bounded in time.
"""

# ruff: noqa: RUF001  (the table prints en dashes)

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import uvloop

from benchmarks import hostile_attacks as attacks
from benchmarks.common import log, raise_nofile
from benchmarks.echoprobe_processes import ScpChild, load_child, proc_status_kb, stderr_facts

SUCCESS_BAR: Final = 0.99
P99_BAR_MS: Final = 500.0
RSS_BAR_MB: Final = 150.0
SLOTS: Final = ["--max-associations", "32"]  # the setting for the slot-holding rows
HEALTHY_DEADLINE_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Row:
    """One attack: what it is, and the extra `echoprobe scp` options it is measured with."""

    name: str
    what: str
    attack: attacks.Attack
    scp_options: tuple[str, ...] = ()


ROWS: Final = (
    Row("baseline", "no attack (reference)", attacks.nothing),
    Row("rq-abort-flood", "A-ASSOCIATE-RQ + A-ABORT in one write, flood", attacks.rq_abort_flood),
    Row("echo-release", "C-ECHO-RQ + A-RELEASE-RQ in one write, flood", attacks.echo_release_flood),
    Row("stray-byte", "A-ASSOCIATE-RQ + a stray byte (00H), flood", attacks.stray_byte_flood),
    Row("pipeline-no-read", "pipelined C-ECHO-RQs, answers never read", attacks.pipeline_no_read),
    Row("trickle", "40 associations trickling 1 byte/s", attacks.trickle_1_byte, tuple(SLOTS)),
    Row("empty-pdata", "40 associations sending empty P-DATA-TF", attacks.empty_pdata,
        tuple(SLOTS)),
    Row("half-sent-1mib", "300 × all but the last byte of a 1 MiB RQ", attacks.half_sent_1mib),
    Row("slowloris", "200 × A-ASSOCIATE-RQ at 1 byte/s", attacks.slowloris),
    Row("idle", "1,000 connections sending nothing", attacks.idle),
    Row("huge-length", "P-DATA-TF declaring 0xFFFFFFFF bytes, then a stream", attacks.huge_length),
    Row("rst-churn", "connect (+ part of an RQ), then RST", attacks.rst_churn),
)  # fmt: skip
BY_NAME: Final = {row.name: row for row in ROWS}
QUICK_SCALE: Final = attacks.Scale(
    flood_workers=8, slot_holders=40, half_sent=60, slowloris=50, idle=200, huge_workers=2,
    churn_workers=8,
)  # fmt: skip


@dataclass(slots=True)
class Result:
    name: str
    what: str
    seconds: float
    healthy_attempted: int = 0
    healthy_succeeded: int = 0
    healthy_outcomes: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None
    scp_rss_start_mb: float | None = None
    scp_rss_peak_mb: float | None = None
    stderr_lines: int = 0
    stderr_bytes: int = 0
    tracebacks: int = 0
    first_error: str = ""
    scp_counters: dict[str, int] = field(default_factory=dict)
    attack: dict[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def success(self) -> float | None:
        if not self.healthy_attempted:
            return None
        return self.healthy_succeeded / self.healthy_attempted

    def misses(self) -> list[str]:
        """The bars this row misses."""
        out = []
        if self.error:
            out.append(self.error)
        if self.success is None or self.success < SUCCESS_BAR:
            out.append("success")
        if self.p99_ms is None or self.p99_ms > P99_BAR_MS:
            out.append("p99")
        if self.scp_rss_peak_mb is None or self.scp_rss_peak_mb > RSS_BAR_MB:
            out.append("RSS")
        if self.tracebacks:
            out.append("traceback")
        return out


async def _sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    """Peak VmRSS of `pid`, sampled every 0.2 s (VmHWM is read too, at the end)."""
    while not stop.is_set():
        kb = proc_status_kb(pid, "VmRSS")
        if kb is not None:
            peak[0] = max(peak[0], kb / 1024)
        try:
            async with asyncio.timeout(0.2):
                await stop.wait()
        except TimeoutError:
            pass


async def measure(
    row: Row,
    seconds: float,
    *,
    rate: float,
    scale: attacks.Scale,
    src: Path | None,
    workdir: Path,
    extra: list[str] = [],  # noqa: B006 - read only
) -> Result:
    result = Result(row.name, row.what, seconds)
    scp = ScpChild(workdir, [*row.scp_options, *extra], duration=seconds + 60, src=src)
    await asyncio.to_thread(scp.start)
    try:
        result.scp_rss_start_mb = (proc_status_kb(scp.pid, "VmRSS") or 0) / 1024
        load = load_child(
            workdir, scp.port, rate=rate, duration=seconds, total_deadline=HEALTHY_DEADLINE_S,
            src=src,
        ).start()  # fmt: skip
        peak = [0.0]
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(scp.pid, peak, stop))
        try:
            # The attack starts with the load (whose start-up takes ~1 s) and outlasts it.
            stats = await attacks.run_attack(row.attack, scp.port, seconds + 2.0, scale)
            code = await asyncio.to_thread(load.wait, HEALTHY_DEADLINE_S + 30)
            if code is None:
                load.stop()
                result.error = "the healthy load overran"
        finally:
            stop.set()
            await sampler
            load.stop()
        hwm = proc_status_kb(scp.pid, "VmHWM")
        result.scp_rss_peak_mb = max(peak[0], (hwm or 0) / 1024)
        result.attack = stats.as_dict()
    finally:
        await asyncio.to_thread(scp.stop)
    result.scp_counters = scp.counters()
    facts = stderr_facts(scp.stderr_path)
    result.stderr_lines, result.stderr_bytes = facts.lines, facts.bytes
    result.tracebacks, result.first_error = facts.tracebacks, facts.first_error
    _read_load(result, workdir / "load.json")
    return result


def _read_load(result: Result, path: Path) -> None:
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        result.error = result.error or "no load report"
        return
    result.healthy_attempted = int(report.get("attempted") or 0)
    result.healthy_succeeded = int(report.get("succeeded") or 0)
    result.healthy_outcomes = {str(k): int(v) for k, v in (report.get("outcomes") or {}).items()}
    whole = (report.get("latency_ms") or {}).get("association") or {}
    result.p50_ms, result.p99_ms = whole.get("p50"), whole.get("p99")


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(results: list[Result]) -> str:
    lines = [
        "| attack | healthy success | p50 ms | p99 ms | SCP RSS MB (start → peak) "
        "| SCP stderr lines / bytes | traceback | SCP counters | attack | misses |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        success = "–" if r.success is None else f"{100 * r.success:.1f} % of {r.healthy_attempted}"
        counters = " ".join(f"{k}={v}" for k, v in r.scp_counters.items())
        shown = " ".join(f"{k}={v}" for k, v in r.attack.items() if v)
        tb = f"yes ({r.tracebacks}: {r.first_error})" if r.tracebacks else "no"
        lines.append(
            f"| {r.name}: {r.what} | {success} | {_num(r.p50_ms, 2)} | {_num(r.p99_ms, 1)} "
            f"| {_num(r.scp_rss_start_mb)} → {_num(r.scp_rss_peak_mb)} "
            f"| {r.stderr_lines:,} / {r.stderr_bytes:,} | {tb} | {counters} | {shown} "
            f"| {', '.join(r.misses()) or 'none'} |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, rows: list[Row], src: Path | None) -> list[Result]:
    scale = QUICK_SCALE if args.quick else attacks.Scale()
    results = []
    for row in rows:
        log(f"hostile: {row.name} ({row.what}), {args.seconds:g} s")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"echoprobe-hostile-{row.name}-") as tmp:
            result = await measure(
                row,
                args.seconds,
                rate=args.rate,
                scale=scale,
                src=src,
                workdir=Path(tmp),
                extra=args.scp_arg,
            )
        results.append(result)
        success = None if result.success is None else 100 * result.success
        log(
            f"hostile: {row.name}: success {_num(success)} %, "
            f"p99 {_num(result.p99_ms)} ms, SCP peak {_num(result.scp_rss_peak_mb)} MB, "
            f"{result.tracebacks} tracebacks; {time.monotonic() - t0:.0f} s"
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile_clients")
    parser.add_argument(
        "--attack",
        action="append",
        default=[],
        help=f"one of: {', '.join(BY_NAME)} (repeatable, or comma-separated; default all)",
    )
    parser.add_argument("--seconds", type=float, help="length of each row (default 15; quick 5)")
    parser.add_argument("--quick", action="store_true", help="5 s rows, smaller attacks")
    parser.add_argument("--rate", type=float, default=40.0, help="healthy associations/s")
    parser.add_argument("--src", help="run echoprobe from this source tree (default: installed)")
    parser.add_argument("--json", help="write the rows as JSON to this file")
    parser.add_argument(
        "--scp-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more `echoprobe scp` argument for every row, e.g. --scp-arg=--admission-wait=1",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for item in args.attack for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    if args.seconds is None:
        args.seconds = 5.0 if args.quick else 15.0
    if not (1 <= args.seconds <= 120 and 0 < args.rate <= 1000):
        parser.error("--seconds 1..120, --rate 0..1000")
    raise_nofile()
    rows = [BY_NAME[n] for n in names] if names else list(ROWS)
    src = Path(args.src).resolve() if args.src else None
    results = uvloop.run(run(args, rows, src))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    print(markdown(results))
    return 0 if all(not r.misses() for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
