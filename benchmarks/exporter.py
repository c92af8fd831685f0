"""`python -m benchmarks.exporter`: `echoprobe exporter` beside `prometheus-blackbox-exporter`.

    .venv/bin/python -m benchmarks.exporter --targets 2000 --interval 15 --duration 60
    .venv/bin/python -m benchmarks.exporter --scenario all          # 2,000/15 s and 10,000/60 s
    .venv/bin/python -m benchmarks.exporter --quick                  # CI smoke, < 30 s

Method (see benchmarks/README.md, "Exporter"):
- A simulated fleet of N peers (`benchmarks.scp_server --fleet N`: one port, peer i on its own
  127.0.x.y, 5 % refusing, 5 % silent), pinned to CPU 1.
- Both exporters run at once, unpinned, each in its own process started here: ours with a
  `dicom_echo` module (2 s timeout), blackbox_exporter 0.23 with a `tcp_connect` module (2 s).
- A driver (this process) plays Prometheus: N targets every T seconds, spread evenly, each
  request sent to both exporters at the same instant with `X-Prometheus-Scrape-Timeout-Seconds`,
  for `--duration` seconds; in-flight requests are bounded, and the tail after the duration is
  bounded by the request timeout.
- Per exporter: probes/s answered, CPU-ms per probe (utime + stime from /proc/PID/stat over the
  driven window ÷ answers), peak RSS (VmHWM), scrape latency p50/p99, probe failures (answer 200
  with probe_success 0: the refusing and silent peers) and errors (no 200 answer in time).
- "Beyond the association": bare `probe()` calls on the same schedule, in a process of their
  own beside the exporters (`_baseline`), give the CPU of the associations alone; it is
  subtracted from our exporter's CPU per probe.

Rules: loopback only; every process started here is stopped by its own PID in a `finally`; every
loop is bounded by a count and a duration.
"""

# ruff: noqa: RUF001  (the tables print en dashes and multiplication signs)

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from benchmarks.common import (
    JSON,
    PYTHON,
    ROOT,
    ScpProcess,
    fleet_address,
    fleet_kind,
    log,
    proc_cpu_seconds,
    raise_nofile,
)

BLACKBOX = Path("/usr/bin/prometheus-blackbox-exporter")
PROBE_TIMEOUT_S: Final = 2.0  # both modules; the scrape timeout header says 2.5 s
SCRAPE_TIMEOUT_S: Final = 2.5
MAX_IN_FLIGHT: Final = 1024  # requests per exporter at once (the driver's bound)
SCENARIOS: Final = {"2k": (2000, 15.0), "10k": (10000, 60.0)}
QUICK: Final = (200, 5.0, 12.0)  # targets, interval, duration: the smoke
GOAL_CPU_MS: Final = 1.0  # exporter CPU per probe beyond the association
GOAL_RSS_MB: Final = 80.0  # at 2,000 targets

OUR_CONFIG = f"""\
allowed_targets: ["127.0.0.0/8"]
limits:
  max_concurrent_probes: 512
  per_host: 1
modules:
  dicom_echo:
    prober: dicom
    timeout: {int(PROBE_TIMEOUT_S * 1000)}ms
    dicom:
      calling_ae: ECHOPROBE
      called_ae: ANY-SCP
"""
BLACKBOX_CONFIG = f"""\
modules:
  tcp:
    prober: tcp
    timeout: {PROBE_TIMEOUT_S:g}s
"""


# --- processes ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Exporter:
    name: str
    argv: list[str]
    port: int
    module: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-500:]}")
            address = ("127.0.0.1", self.port)
            with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout:g} s")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)  # our own child, by its PID
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def peak_rss_mb(self) -> float | None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None


def our_exporter(tmp: Path) -> Exporter:
    config = tmp / "echoprobe-exporter.yml"
    config.write_text(OUR_CONFIG)
    port = _free_port()
    argv = [
        PYTHON,
        "-m",
        "echoprobe",
        "exporter",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return Exporter("echoprobe exporter", argv, port, "dicom_echo", tmp / "echoprobe.log")


def blackbox_exporter(tmp: Path) -> Exporter:
    config = tmp / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG)
    port = _free_port()
    argv = [
        str(BLACKBOX),
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return Exporter("blackbox_exporter tcp", argv, port, "tcp", tmp / "blackbox.log")


# --- the driver ---------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    answers: int = 0
    failures: int = 0  # answered, probe_success 0
    errors: Counter[str] = field(default_factory=Counter)


def _probe_success(body: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(body):
        if family.name == "probe_success" and family.samples:
            return float(family.samples[0].value)
    return None


async def _scrape(
    session: Any, exporter: Exporter, target: str, tally: Tally, gate: asyncio.Semaphore
) -> None:
    import aiohttp

    url = f"http://127.0.0.1:{exporter.port}/probe"
    params = {"target": target, "module": exporter.module}
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{SCRAPE_TIMEOUT_S:g}"}
    async with gate:
        start = time.perf_counter()
        try:
            async with session.get(url, params=params, headers=headers) as response:
                body = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.errors[type(exc).__name__] += 1
            return
        elapsed = time.perf_counter() - start
    if status != 200:
        tally.errors[f"HTTP {status}"] += 1
        return
    tally.answers += 1
    tally.latencies.append(elapsed)
    if _probe_success(body) != 1.0:
        tally.failures += 1


async def drive(
    exporters: list[Exporter], targets: list[str], interval: float, duration: float
) -> tuple[dict[str, Tally], float]:
    """Every target every `interval` s, spread evenly, to every exporter; for `duration` s."""
    import aiohttp

    tallies = {e.name: Tally() for e in exporters}
    gates = {e.name: asyncio.Semaphore(MAX_IN_FLIGHT) for e in exporters}
    step = interval / len(targets)
    total = int(duration / step)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S + 2.0)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic()
        for k in range(total):
            delay = start + k * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            target = targets[k % len(targets)]
            for exporter in exporters:
                coro = _scrape(
                    session, exporter, target, tallies[exporter.name], gates[exporter.name]
                )
                task = asyncio.create_task(coro)
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=SCRAPE_TIMEOUT_S + 5.0)
        elapsed = time.monotonic() - start
        for task in list(tasks):
            task.cancel()
    return tallies, elapsed


# --- the association baseline -------------------------------------------------------------------


async def _baseline(targets: list[str], interval: float, duration: float) -> JSON:
    """Bare `probe()` calls on the driver's schedule: what the associations alone cost."""
    from echoprobe.net.client import probe
    from echoprobe.options import Timeouts

    t = PROBE_TIMEOUT_S
    timeouts = Timeouts(connect=t, tls=t, acse=t, dimse=t, release=t, total=t)
    outcomes: Counter[str] = Counter()
    tasks: set[asyncio.Task[None]] = set()

    async def one(target: str) -> None:
        host, port = target.rsplit(":", 1)
        result = await probe(host, int(port), calling_ae="ECHOPROBE", timeouts=timeouts)
        outcomes[str(result.outcome)] += 1

    step = interval / len(targets)
    total = int(duration / step)
    cpu0 = time.process_time()
    start = time.monotonic()
    for k in range(total):
        delay = start + k * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(targets[k % len(targets)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=PROBE_TIMEOUT_S + 5.0)
    cpu = time.process_time() - cpu0
    done = sum(outcomes.values())
    return {"probes": done, "cpu_ms_per_probe": 1000 * cpu / done if done else None,
            "outcomes": dict(outcomes)}  # fmt: skip


class Baseline:
    """`_baseline` in its own process, run beside the exporters on the same schedule."""

    def __init__(self, spec_path: Path, targets: list[str], interval: float, duration: float):
        spec = {"targets": targets, "interval": interval, "duration": duration}
        spec_path.write_text(json.dumps(spec))
        argv = [PYTHON, "-m", "benchmarks.exporter", "_baseline", str(spec_path)]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )

    def result(self, timeout: float) -> JSON:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return {"error": "baseline timed out"}
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                result: JSON = json.loads(line)
                return result
        return {"error": f"baseline exit {self.proc.returncode}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, through its Popen (by its PID)
            self.proc.communicate(timeout=10)


# --- one scenario -------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def run_scenario(n: int, interval: float, duration: float, *, with_blackbox: bool) -> JSON:
    raise_nofile()
    log(f"scenario: {n} targets every {interval:g} s for {duration:g} s")
    with tempfile.TemporaryDirectory(prefix="echoprobe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        lifetime = duration + 120
        with ScpProcess(["--fleet", str(n), "--idle-timeout", "10"], max_seconds=lifetime) as scp:
            port = int(scp.ready["fleet_port"])
            targets = [f"{fleet_address(i)}:{port}" for i in range(n)]
            kinds = Counter(fleet_kind(i) for i in range(n))
            exporters = [our_exporter(tmp)]
            if with_blackbox:
                exporters.append(blackbox_exporter(tmp))
            beside: Baseline | None = None
            try:
                for exporter in exporters:
                    exporter.start()
                cpu0 = {e.name: proc_cpu_seconds(e.pid) for e in exporters}
                beside = Baseline(tmp / "baseline.json", targets, interval, duration)
                tallies, elapsed = asyncio.run(drive(exporters, targets, interval, duration))
                cpu1 = {e.name: proc_cpu_seconds(e.pid) for e in exporters}
                rss = {e.name: e.peak_rss_mb() for e in exporters}
                baseline = beside.result(timeout=duration + 60)
            finally:
                if beside is not None:
                    beside.stop()
                for exporter in exporters:
                    exporter.stop()
    rows = []
    for exporter in exporters:
        tally = tallies[exporter.name]
        before, after = cpu0[exporter.name], cpu1[exporter.name]
        cpu_s = None if before is None or after is None else after - before
        answers = tally.answers
        per_probe = None if cpu_s is None or not answers else 1000 * cpu_s / answers
        rows.append({
            "exporter": exporter.name,
            "requests": answers + sum(tally.errors.values()),
            "answers": answers,
            "probes_per_s": answers / duration,
            "cpu_s": cpu_s,
            "cpu_ms_per_probe": per_probe,
            "peak_rss_mb": rss[exporter.name],
            "latency_p50_ms": _ms(_percentile(tally.latencies, 0.50)),
            "latency_p99_ms": _ms(_percentile(tally.latencies, 0.99)),
            "probe_failures": tally.failures,
            "errors": dict(tally.errors),
        })  # fmt: skip
    ours = rows[0]
    base = baseline.get("cpu_ms_per_probe")
    beyond = (
        None
        if ours["cpu_ms_per_probe"] is None or base is None
        else ours["cpu_ms_per_probe"] - base
    )
    return {
        "targets": n,
        "interval_s": interval,
        "duration_s": duration,
        "driven_s": elapsed,
        "fleet": dict(kinds),
        "offered_per_s": n / interval,
        "exporters": rows,
        "baseline": baseline,
        "ours_cpu_ms_beyond_association": beyond,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds


# --- output -------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(results: list[JSON]) -> str:
    lines = [
        "| scenario | exporter | probes/s (offered) | CPU-ms/probe | peak RSS MB | "
        "latency p50 / p99 ms | probe failures | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        scenario = f"{r['targets']:,} every {r['interval_s']:g} s, {r['duration_s']:g} s"
        for row in r["exporters"]:
            errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "0"
            lines.append(
                f"| {scenario} | {row['exporter']} | {_f(row['probes_per_s'])} "
                f"({_f(r['offered_per_s'])}) | {_f(row['cpu_ms_per_probe'], 2)} | "
                f"{_f(row['peak_rss_mb'])} | {_f(row['latency_p50_ms'])} / "
                f"{_f(row['latency_p99_ms'])} | {row['probe_failures']:,} | {errors} |"
            )
    lines.append("")
    for r in results:
        ours = r["exporters"][0]
        others = r["exporters"][1:]
        base = r["baseline"].get("cpu_ms_per_probe")
        beyond = r["ours_cpu_ms_beyond_association"]
        rate_ok = all(
            (ours["probes_per_s"] or 0) >= 0.99 * (o["probes_per_s"] or 0) for o in others
        )
        rss = ours["peak_rss_mb"]
        lines.append(
            f"- {r['targets']:,} targets: bare `probe()` costs {_f(base, 2)} CPU-ms per "
            f"association, so the exporter adds {_f(beyond, 2)} ms per probe "
            f"(goal ≤ {GOAL_CPU_MS:g}: {_met(beyond, GOAL_CPU_MS)}); "
            f"peak RSS {_f(rss)} MB"
            + (
                f" (goal ≤ {GOAL_RSS_MB:g} MB at 2,000: {_met(rss, GOAL_RSS_MB)})"
                if r["targets"] <= 2000
                else ""
            )
            + (f"; probe rate ≥ blackbox's: {'yes' if rate_ok else 'no'}" if others else "")
            + "."
        )
    return "\n".join(lines) + "\n"


def _met(value: float | None, goal: float) -> str:
    return "met" if value is not None and value <= goal else "not met"


def machine() -> str:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, {model}, "
        f"Linux {platform.release()}; Python {platform.python_version()}; load average "
        + " / ".join(f"{v:.2f}" for v in os.getloadavg())
    )


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["_baseline"]:
        import uvloop

        spec = json.loads(Path(args_list[1]).read_text())
        result = uvloop.run(_baseline(spec["targets"], spec["interval"], spec["duration"]))
        print(json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exporter")
    parser.add_argument("--targets", type=int, help="N peers (default: the scenario's)")
    parser.add_argument("--interval", type=float, help="every target every T s")
    parser.add_argument("--duration", type=float, default=60.0, help="driven seconds (60)")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"],
                        help="2k: 2,000 every 15 s; 10k: 10,000 every 60 s; all: both")  # fmt: skip
    quick = "smoke: {} targets every {:g} s for {:g} s".format(*QUICK)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--no-blackbox", action="store_true", help="ours alone")
    parser.add_argument("--json", metavar="FILE", help="write the raw results here")
    args = parser.parse_args(args_list)
    if args.quick:
        plan = [QUICK]
    elif args.targets or args.interval:
        plan = [(args.targets or 2000, args.interval or 15.0, args.duration)]
    else:
        names = list(SCENARIOS) if args.scenario in (None, "all") else [args.scenario]
        plan = [(*SCENARIOS[name], args.duration) for name in names]
    for n, interval, duration in plan:
        if not (1 <= n <= 20000 and 0 < interval <= 600 and 0 < duration <= 900):
            parser.error("targets 1..20000, interval 0..600 s, duration 0..900 s")
    with_blackbox = not args.no_blackbox and BLACKBOX.exists()
    if not with_blackbox and not args.no_blackbox:
        log(f"{BLACKBOX} not found: measuring echoprobe exporter alone")
    about = machine()
    results = [run_scenario(n, i, d, with_blackbox=with_blackbox) for n, i, d in plan]
    print(f"Machine: {about}.\n")
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": about, "results": results}, indent=2))
    failed = any(not row["answers"] for r in results for row in r["exporters"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
