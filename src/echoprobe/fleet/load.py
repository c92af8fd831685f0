"""`run_load()`: drive one SCP hard and measure it; `find_capacity()`: find where it gives way.

    report = await run_load("127.0.0.1", 11112, concurrency=64, duration=10)
    report = await run_load("127.0.0.1", 11112, rate=2000, arrivals="poisson", duration=10)
    capacity = await find_capacity("127.0.0.1", 11112, p99_bound_ms=50)

Rules:
- Every run is bounded: `associations` (measured ones) or `duration` (measured seconds, after
  `warmup`) is required; what is in flight at the end finishes within its own timeouts, and
  whatever is left after `drain_timeout` is cancelled (A-ABORT) and counted `cancelled`.
- Closed loop (`concurrency`): C workers, each starting its next association when the last
  one ends. Open loop (`rate`): associations start on a schedule (constant or Poisson
  arrivals) whatever the SCP does, and latency is measured from the *intended* start, so a
  slow SCP cannot hide its stalls by slowing the generator down (no coordinated omission). An
  arrival that finds `max_in_flight` associations open waits in a bounded backlog (its
  waiting counts in its latency); one still waiting at the end is counted `not_started`.
- Measurement: per-phase histograms (connect, associate, each echo, release, the whole
  association; in open loop also `start_lag`, intended → actual start), a time series per
  `tick` (throughput, errors, latency percentiles, in flight, own CPU), outcomes counted with
  the peer's own words (reject result/source/reason, abort source/reason). Only successful
  associations enter the latency histograms; warm-up associations enter none of the totals.
- The generator measures its own CPU time (`time.process_time`: the whole process, so an SCP
  running in the same process counts too) and warns when it, not the SCP, is the bottleneck.
- Ports: every connection we close first sits in TIME_WAIT (60 s) holding its local port
  (docs/robustness.md §4.3). Connect errors that mean "no local port left" are detected and
  explained; `source_addresses` spreads connections over several local addresses.
- asyncio only (uvloop recommended); nothing here prints.
- Layout: this module holds `run_load` (arguments, the report) and re-exports the public
  names of its neighbours: `load_engine` (the closed and open loops of one process),
  `load_schedule` (ramps, source addresses), `load_ports` (ports and
  TIME_WAIT), `load_model` (the report), `load_merge` (exact merging), `load_workers`
  (`workers=N`: processes), `load_metrics` (live Prometheus figures); `find_capacity` lives
  in `capacity`, built on `run_load` (the import goes one way).
- With `workers` > 1 the processes are started with 'spawn': a script calling `run_load`
  must guard its entry point with `if __name__ == "__main__":` (multiprocessing's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from time import process_time
from typing import TYPE_CHECKING, Final, Literal

from echoprobe.fleet.collector import relaxed_collector
from echoprobe.fleet.limits import effective_concurrency
from echoprobe.fleet.load_engine import LoadEngine
from echoprobe.fleet.load_model import (
    HISTOGRAMS,
    Arrivals,
    LoadProgress,
    LoadReport,
    Mode,
    TickStats,
    loadavg,
    tls_text,
)
from echoprobe.fleet.load_ports import (
    PortFacts,
    count_time_wait,
    explain_ports,
    port_facts,
)
from echoprobe.fleet.load_schedule import Ramp, parse_ramp, parse_source_addresses
from echoprobe.fleet.load_workers import run_workers, usable_cores, worker_shares
from echoprobe.net.addresses import strip_brackets
from echoprobe.net.budget import DEFAULT_TIMEOUTS
from echoprobe.net.client import resolve_host, run_echo
from echoprobe.net.errors_map import map_resolve_error
from echoprobe.options import AssociationOptions, Timeouts

if TYPE_CHECKING:
    import ssl

    from echoprobe.fleet.load_metrics import LoadMetrics
    from echoprobe.net.tls import TLSConfig

MAX_WORKERS: Final = 1024  # generator processes on one machine
MAX_START_DELAY: Final = 86_400  # seconds: a start time further ahead is a mistake


# --- entry points -----------------------------------------------------------------------------


async def _resolve(host: str, port: int, limit: float | None) -> tuple[str, int]:
    """The first address of `host` and its family (client.resolve_host's rules)."""
    candidates = await resolve_host(asyncio.get_running_loop(), host, port, limit)
    if not candidates:
        raise map_resolve_error(host, OSError("no address"))
    family, sockaddr = candidates[0]
    return str(sockaddr[0]), int(family)


def _check_sources(sources: Sequence[str], family: int) -> list[str]:
    out = []
    for text in sources:
        ip = ipaddress.ip_address(strip_brackets(text))
        if (ip.version == 6) != (family == socket.AF_INET6):
            raise ValueError(
                f"source address {text} is not of the SCP address's family (IPv{ip.version})"
            )
        out.append(ip.compressed)
    return out


async def run_load(
    host: str,
    port: int,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    arrivals: Arrivals = "constant",
    repeat: int = 1,
    associations: int | None = None,
    duration: float | None = None,
    ramp: Ramp | tuple[float, float] | None = None,
    warmup: float = 0.0,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    max_pdu: int = 16384,
    source_addresses: Sequence[str] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
    max_in_flight: int | None = None,
    tick: float = 1.0,
    drain_timeout: float = 30.0,
    seed: int | None = None,
    on_tick: Callable[[LoadProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    workers: int | Literal["auto"] = 1,
    start_at: datetime | None = None,
    metrics: LoadMetrics | None = None,
) -> LoadReport:
    """Load one SCP (see the module's rules). Exactly one of `concurrency` (closed loop) and
    `rate` (open loop, associations/s) is required, and at least one of `associations` and
    `duration`. `ramp` overrides the level: from `ramp.start` to `ramp.end`. Setting `stop`
    ends the run early (in flight: up to 2 s to finish, then cancelled); the report says
    `interrupted`. `workers` > 1 (or "auto": the usable cores) splits the load between as many
    processes and merges their reports exactly (load_workers.py); `start_at` (an aware time,
    at most a day ahead) delays the start, warm-up and ramp included, to that moment; `metrics`
    receives the live figures (load_metrics.py). Raises `ValueError` for bad arguments,
    `DNSError` when `host` has no address, `TLSConfigError` when `tls` cannot be set up; never
    for the SCP's failures, which are counted."""
    if (concurrency is None) == (rate is None):
        raise ValueError("give exactly one of concurrency (closed loop) and rate (open loop)")
    if associations is None and duration is None:
        raise ValueError("a load run must be bounded: give associations and/or duration")
    if associations is not None and associations < 1:
        raise ValueError("associations must be at least 1")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ValueError("duration must be a positive number of seconds")
    if not (warmup >= 0 and math.isfinite(warmup)):
        raise ValueError("warmup must be ≥ 0 seconds")
    if arrivals not in ("constant", "poisson"):
        raise ValueError("arrivals must be 'constant' or 'poisson'")
    if not (tick > 0 and drain_timeout > 0):
        raise ValueError("tick and drain_timeout must be positive")
    processes = usable_cores() if workers == "auto" else workers
    if not (isinstance(processes, int) and 1 <= processes <= MAX_WORKERS):
        raise ValueError(f"workers must be 'auto' or 1 to {MAX_WORKERS}")
    if start_at is not None:
        if start_at.tzinfo is None:
            raise ValueError("start_at needs a time zone (e.g. 2026-12-04T17:00:00Z)")
        ahead = (start_at - datetime.now(UTC)).total_seconds()
        if ahead > MAX_START_DELAY:
            raise ValueError(f"start_at is more than {MAX_START_DELAY // 3600} hours ahead")
    mode: Mode = "concurrency" if concurrency is not None else "rate"
    level = float(concurrency if concurrency is not None else rate)  # type: ignore[arg-type]
    if not (level > 0 and math.isfinite(level)):
        raise ValueError(f"{mode} must be positive")
    if isinstance(ramp, tuple):
        ramp = Ramp(*ramp)
    options = AssociationOptions(
        calling_ae=calling_ae, called_ae=called_ae, max_pdu=max_pdu, repeat=repeat
    )
    needed = max(level, ramp.start, ramp.end) if ramp else level
    cap = effective_concurrency(max(1, math.ceil(needed if mode == "concurrency" else 1)))
    fd_room = (cap.nofile_soft - cap.reserve) if cap.nofile_soft is not None else 1_000_000
    if max_in_flight is None:
        max_in_flight = max(1, fd_room)
    max_in_flight = max(1, min(max_in_flight, fd_room))
    warnings: list[str] = []
    if mode == "concurrency" and needed > max_in_flight:
        warnings.append(
            f"concurrency capped at {max_in_flight:,} (open-file limit {cap.nofile_soft})"
        )

    build = getattr(tls, "client_context", None)
    if build is not None:
        build()  # a bad key or certificate fails here, once (TLSConfigError), not per association
    address, family = await _resolve(host, port, timeouts.connect)
    sources = _check_sources(source_addresses or (), family)
    config = {
        "host": host,
        "address": address,
        "port": port,
        "mode": mode,
        "concurrency": concurrency,
        "rate": rate,
        "arrivals": arrivals if mode == "rate" else None,
        "repeat": repeat,
        "associations": associations,
        "duration": duration,
        "ramp": [ramp.start, ramp.end] if ramp else None,
        "warmup": warmup,
        "calling_ae": calling_ae,
        "called_ae": called_ae,
        "max_pdu": max_pdu,
        "timeouts": {
            name: getattr(timeouts, name)
            for name in ("connect", "tls", "acse", "dimse", "release", "socket", "total")
        },
        "source_addresses": sources,
        "tls": tls_text(tls),
        "max_in_flight": max_in_flight,
        "tick": tick,
        "seed": seed,
        "workers": processes,
        "start_at": None if start_at is None else start_at.isoformat(),
        "machine": {"cpus": os.cpu_count(), "loadavg": loadavg(), "python": _python()},
    }
    if processes > 1:
        if tls is not None and not hasattr(tls, "client_context"):
            raise ValueError("with workers, give TLS as a TLSConfig (an SSLContext cannot be sent)")
        shares = worker_shares(
            processes,
            concurrency=concurrency,
            rate=rate,
            associations=associations,
            ramp=ramp,
            source_addresses=sources,
            max_in_flight=max_in_flight,
            seed=seed,
        )
        shared = {
            "arrivals": arrivals,
            "repeat": repeat,
            "duration": duration,
            "warmup": warmup,
            "timeouts": timeouts,
            "calling_ae": calling_ae,
            "called_ae": called_ae,
            "max_pdu": max_pdu,
            "tls": tls,
            "tick": tick,
            "drain_timeout": drain_timeout,
        }
        report = await run_workers(
            host,
            port,
            workers=processes,
            shared=shared,
            shares=shares,
            config=config,
            run_one=run_load,
            start_at=start_at,
            on_tick=on_tick,
            stop=stop,
            metrics=metrics,
        )
        report.warnings[:0] = warnings
        return report
    if metrics is not None:
        metrics.expect(1)
        on_tick = _feeding(metrics, on_tick)
    late = await _wait_until(start_at, stop) if start_at is not None else 0.0
    if late > 1.0:
        warnings.append(f"started {late:.1f} s after the start time asked for")
    engine = LoadEngine(
        address,
        port,
        mode=mode,
        level=level,
        arrivals=arrivals,
        options=options,
        timeouts=timeouts,
        planned=associations,
        duration=duration,
        ramp=ramp,
        warmup=warmup,
        sources=sources,
        max_in_flight=max_in_flight,
        tick=tick,
        drain_timeout=drain_timeout,
        seed=seed,
        on_tick=on_tick,
        stop=stop,
        tls=tls,
        run_echo=run_echo,  # looked up here, at call time: tests may replace it
    )
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    cpu0 = process_time()
    with relaxed_collector():
        wall, window, interrupted = await engine.run()
    cpu_seconds = process_time() - cpu0
    measured = [t for t in engine.series if not t.warmup] or engine.series
    span = sum(t.seconds for t in measured)
    cpu_fraction = sum(t.cpu * t.seconds for t in measured) / span if span > 0 else 0.0
    cpu_peak = max((t.cpu for t in measured if t.seconds >= 0.5 * tick), default=cpu_fraction)
    facts = engine.facts
    busy = engine.succeeded + engine.failed > 0 and window > 0
    time_wait = count_time_wait(address, port) if busy else None
    warnings.extend(engine.warnings(window, cpu_fraction, time_wait))
    report = LoadReport(
        config=config,
        started_at=started_at,
        wall_seconds=wall,
        window_seconds=window,
        attempted=engine.issued,
        succeeded=engine.succeeded,
        failed=engine.failed,
        not_started=engine.not_started,
        cancelled=engine.cancelled,
        echoes=engine.echo_mark_end - engine.echo_mark_start,
        echo_window_seconds=engine.echo_window,
        outcomes=dict(engine.outcomes.most_common()),
        reasons=dict(engine.reasons.most_common()),
        histograms=engine.hist,
        series=engine.series,
        cpu_seconds=cpu_seconds,
        cpu_fraction=cpu_fraction,
        cpu_peak=cpu_peak,
        ports=facts,
        time_wait_at_end=time_wait,
        port_errors=engine.port_errors,
        warnings=warnings,
        warmup_associations=engine.warmup_started,
        interrupted=interrupted,
        echoes_total=engine.counter.total,
    )
    if metrics is not None:
        metrics.finish(0, report)
    return report


def _feeding(
    metrics: LoadMetrics, on_tick: Callable[[LoadProgress], None] | None
) -> Callable[[LoadProgress], None]:
    def fed(progress: LoadProgress) -> None:
        metrics.update(0, progress)
        if on_tick is not None:
            on_tick(progress)

    return fed


async def _wait_until(start_at: datetime, stop: asyncio.Event | None) -> float:
    """Sleep until `start_at` (or a stop request); how late the start is, in seconds."""
    delay = (start_at - datetime.now(UTC)).total_seconds()
    if delay > 0:
        waiter = stop.wait() if stop is not None else asyncio.sleep(delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await waiter
    return max(0.0, (datetime.now(UTC) - start_at).total_seconds())


def _python() -> str:
    import platform  # noqa: PLC0415 - only for the report's header

    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return f"{platform.python_implementation()} {platform.python_version()}, loop {loop}"


__all__ = [
    "HISTOGRAMS",
    "Arrivals",
    "LoadProgress",
    "LoadReport",
    "Mode",
    "PortFacts",
    "Ramp",
    "TickStats",
    "count_time_wait",
    "explain_ports",
    "parse_ramp",
    "parse_source_addresses",
    "port_facts",
    "run_load",
]
