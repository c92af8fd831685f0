"""Soak: a long, bounded `echoprobe load` against `echoprobe scp`; does anything grow?

    .venv/bin/python -m benchmarks.soak [--minutes 10] [--rate 100] [--interval 5] [--src DIR]

Both run as the commands users run, in their own processes. Every `--interval` seconds the
resident set (VmRSS) and open descriptors of each are sampled from /proc. Growth is measured
after a warm-up (`--warmup`, default 10 % of the run, at least 30 s): the median of the samples
in the first minute after it against the median of the samples in the last minute, so one
garbage-collection step does not decide. The bar is ≤ 5 % growth for each process; the exit
status is 1 when a bar is missed or a process fails, 0 otherwise.

Bounded: the load has its `--duration` and a per-association deadline, the SCP its own
`--duration`; both are stopped by PID if they overrun. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from benchmarks.common import log
from benchmarks.echoprobe_processes import (
    ScpChild,
    load_child,
    open_fds,
    proc_status_kb,
    stderr_facts,
)

GROWTH_BAR = 0.05
_WINDOW_S = 60.0  # samples averaged at each end of the measured part


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the load started
    scp_rss_kb: int | None
    scp_fds: int | None
    load_rss_kb: int | None
    load_fds: int | None


@dataclass(frozen=True, slots=True)
class Growth:
    what: str
    after_warmup: float
    at_end: float

    @property
    def ratio(self) -> float:
        return (self.at_end - self.after_warmup) / self.after_warmup if self.after_warmup else 0.0

    @property
    def ok(self) -> bool:
        return self.ratio <= GROWTH_BAR


def _median(values: list[int]) -> float:
    return float(statistics.median(values)) if values else 0.0


def growth(samples: list[Sample], warmup: float, end: float) -> list[Growth]:
    early = [s for s in samples if warmup <= s.t < warmup + _WINDOW_S]
    late = [s for s in samples if s.t >= end - _WINDOW_S]
    out = []
    for key in ("scp_rss_kb", "scp_fds", "load_rss_kb", "load_fds"):
        a = [v for s in early if (v := getattr(s, key)) is not None]
        b = [v for s in late if (v := getattr(s, key)) is not None]
        out.append(Growth(key, _median(a), _median(b)))
    return out


def soak(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, object], bool]:
    seconds = args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else max(30.0, seconds * 0.1)
    src = Path(args.src).resolve() if args.src else None
    samples: list[Sample] = []
    with ScpChild(workdir, [], duration=seconds + 60, src=src, nice=args.nice) as scp:
        load = load_child(
            workdir, scp.port, rate=args.rate, duration=seconds, total_deadline=10.0,
            src=src, nice=args.nice,
        )  # fmt: skip
        with load:
            start = time.monotonic()
            hard_end = start + seconds + 60
            while load.wait(0) is None and time.monotonic() < hard_end:
                now = time.monotonic() - start
                samples.append(
                    Sample(
                        round(now, 1),
                        proc_status_kb(scp.pid, "VmRSS"),
                        open_fds(scp.pid),
                        proc_status_kb(load.pid, "VmRSS"),
                        open_fds(load.pid),
                    )
                )
                if len(samples) % max(1, int(60 / args.interval)) == 0:
                    last = samples[-1]
                    log(
                        f"soak: {now:5.0f} s  SCP {last.scp_rss_kb} kB {last.scp_fds} fds, "
                        f"load {last.load_rss_kb} kB {last.load_fds} fds"
                    )
                load.wait(args.interval)
            load_code = load.stop()
        scp_code = scp.stop()
        counters = scp.counters()
    try:
        report = json.loads((workdir / "load.json").read_text())
    except (OSError, ValueError):
        report = {}
    grew = growth(samples, warmup, seconds)
    latency = (report.get("latency_ms") or {}).get("association") or {}
    result: dict[str, object] = {
        "minutes": args.minutes,
        "rate": args.rate,
        "warmup_s": warmup,
        "load_exit": load_code,
        "scp_exit": scp_code,
        "attempted": report.get("attempted"),
        "succeeded": report.get("succeeded"),
        "outcomes": report.get("outcomes"),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        "scp_counters": counters,
        "scp_stderr": asdict(stderr_facts(scp.stderr_path)),
        "growth": [{**asdict(g), "ratio": round(g.ratio, 4), "ok": g.ok} for g in grew],
        "samples": [asdict(s) for s in samples],
    }
    ok = bool(report.get("ok")) and all(g.ok for g in grew) and load_code == 0
    return result, ok


def markdown(result: dict[str, object]) -> str:
    lines = [
        f"{result['minutes']} min at {result['rate']} associations/s (open loop), warm-up "
        f"{result['warmup_s']:.0f} s; {result['succeeded']} of {result['attempted']} "
        f"associations succeeded, whole-association p50 {_ms(result['p50_ms'])} / "
        f"p99 {_ms(result['p99_ms'])}",
        "",
        "| process | measure | after warm-up (median of 1 min) | at the end (median of 1 min) "
        "| growth | ≤ 5 % |",
        "|---|---|---|---|---|---|",
    ]
    for row in cast(list[dict[str, Any]], result["growth"]):
        who, _, measure = str(row["what"]).partition("_")
        unit = "RSS kB" if measure == "rss_kb" else "open fds"
        lines.append(
            f"| {'SCP' if who == 'scp' else 'load'} | {unit} | {row['after_warmup']:,.0f} "
            f"| {row['at_end']:,.0f} | {100 * row['ratio']:+.1f} % "
            f"| {'yes' if row['ok'] else 'NO'} |"
        )
    return "\n".join(lines)


def _ms(value: object) -> str:
    return f"{value:.2f} ms" if isinstance(value, float) else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=100.0, help="associations/s (open loop)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, help="seconds before growth is measured")
    parser.add_argument("--nice", type=int, default=10, help="niceness of both processes")
    parser.add_argument("--src", help="run echoprobe from this source tree (default: installed)")
    parser.add_argument("--json", help="write the result and every sample to this file")
    args = parser.parse_args(argv)
    if not (0.5 <= args.minutes <= 120 and 0 < args.rate <= 2000 and 1 <= args.interval <= 60):
        parser.error("--minutes 0.5..120, --rate 0..2000, --interval 1..60")
    if args.minutes * 60 < 2 * _WINDOW_S + 30:
        log("soak: shorter than 2.5 min: the two one-minute windows overlap the warm-up")
    with tempfile.TemporaryDirectory(prefix="echoprobe-soak-") as tmp:
        result, ok = soak(args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
