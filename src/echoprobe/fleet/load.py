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
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import logging
import math
import os
import random
import re
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter, process_time
from typing import TYPE_CHECKING, Any, Final, Literal

from echoprobe.errors import NetworkError, ProbeError
from echoprobe.fleet.collector import relaxed_collector
from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.limits import effective_concurrency
from echoprobe.net.addresses import format_address, strip_brackets
from echoprobe.net.association import EchoTally
from echoprobe.net.client import DEFAULT_TIMEOUTS, resolve_host, run_echo
from echoprobe.net.errors_map import map_resolve_error
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.results import Outcome

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig

logger = logging.getLogger(__name__)

Arrivals = Literal["constant", "poisson"]
Mode = Literal["concurrency", "rate"]

HISTOGRAMS: Final = ("connect", "associate", "echo", "release", "association", "start_lag")
"""Histogram names: four phases (echo: each C-ECHO round trip), the whole association (from
its intended start), and, in open loop, how late associations started."""

TIME_WAIT_SECONDS: Final = 60  # Linux's TCP_TIMEWAIT_LEN: not tunable
CPU_BOTTLENECK: Final = 0.90  # of one core: above this the generator limits the result
MAX_REASONS: Final = 64  # distinct failure texts kept; the rest are counted as "(other)"
BACKLOG_LIMIT: Final = 1_000_000  # open-loop arrivals waiting for a free slot
STOP_GRACE: Final = 2.0  # seconds in-flight associations get after a stop request
ARRIVAL_TICK: Final = 0.001  # open loop: the shortest wait between launches (uvloop's clock)
_CONTROL_PERIOD: Final = 0.05  # seconds between ramp adjustments of the worker pool
_TIMEOUT_OUTCOMES: Final = frozenset(
    {
        Outcome.CONNECT_TIMEOUT,
        Outcome.ACSE_TIMEOUT,
        Outcome.DIMSE_TIMEOUT,
        Outcome.RELEASE_TIMEOUT,
        Outcome.DEADLINE_EXCEEDED,
        Outcome.TIMEOUT,
        Outcome.TLS_HANDSHAKE_TIMEOUT,
    }
)
_REJECT_OUTCOMES: Final = frozenset({Outcome.REJECTED_TRANSIENT, Outcome.REJECTED_PERMANENT})
_NO_PORT_ERRNOS: Final = (errno.EADDRNOTAVAIL, errno.EADDRINUSE)
_NO_PORT_TEXTS: Final = tuple(os.strerror(code) for code in _NO_PORT_ERRNOS)


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ramp:
    """From `start` to `end` (associations at once, or per second), linearly over the measured
    part of the run (its duration, or else its number of associations)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError("ramp levels must be positive numbers")


def parse_ramp(text: str, default_start: float | None = None) -> Ramp:
    """`END` (from `default_start`) or `START:END`, e.g. "1:64" or "100:5000"."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"not a ramp: {text!r} (use END or START:END)") from None
    if len(values) == 1 and default_start is not None:
        return Ramp(default_start, values[0])
    if len(values) == 2:
        return Ramp(values[0], values[1])
    raise ValueError(f"not a ramp: {text!r} (use END or START:END)")


def parse_source_addresses(specs: str | Iterable[str], *, limit: int = 65536) -> list[str]:
    """Local addresses from specs like "127.0.0.2", "127.0.0.2-127.0.0.40", "127.0.0.2-40"
    (last octet), "127.0.1.0/28" (its hosts), or comma-separated lists of these."""
    if isinstance(specs, str):
        specs = [specs]
    out: list[str] = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            try:
                out.extend(_expand_source(part, limit - len(out)))
            except ValueError as exc:
                raise ValueError(f"bad source address {part!r}: {exc}") from None
            if len(out) > limit:
                raise ValueError(f"more than {limit} source addresses")
    if not out:
        raise ValueError("no source address given")
    return list(dict.fromkeys(out))


def _expand_source(part: str, room: int) -> list[str]:
    if "/" in part:
        net = ipaddress.ip_network(part, strict=False)
        if net.num_addresses > room + 2:
            raise ValueError("too many addresses")
        hosts = list(net.hosts()) or [net.network_address]
        return [h.compressed for h in hosts]
    if "-" in part:
        first_text, last_text = part.split("-", 1)
        first = ipaddress.ip_address(first_text.strip())
        last_text = last_text.strip()
        if last_text.isdigit() and first.version == 4:
            prefix = first.compressed.rsplit(".", 1)[0]
            last = ipaddress.ip_address(f"{prefix}.{last_text}")
        else:
            last = ipaddress.ip_address(last_text)
        if last.version != first.version or int(last) < int(first):
            raise ValueError("the range's end comes before its start")
        if int(last) - int(first) + 1 > room:
            raise ValueError("too many addresses")
        return [ipaddress.ip_address(n).compressed for n in range(int(first), int(last) + 1)]
    return [ipaddress.ip_address(part).compressed]


# --- ports and TIME_WAIT ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortFacts:
    """What limits new connections from this machine to one SCP address (Linux values)."""

    port_range: tuple[int, int] | None
    tw_reuse: int | None  # net.ipv4.tcp_tw_reuse: 1 = on, 2 = loopback only (the default)
    loopback: bool  # the SCP's address is a loopback address
    source_addresses: int  # local addresses used (0: the kernel chooses)

    @property
    def ports(self) -> int | None:
        if self.port_range is None:
            return None
        return self.port_range[1] - self.port_range[0] + 1

    @property
    def reuses_time_wait(self) -> bool:
        """The kernel may reuse a TIME_WAIT port for a new outgoing connection here (only
        when it picks the port at connect(): not after a bind() to a source address)."""
        if self.source_addresses or self.tw_reuse is None:
            return False
        return self.tw_reuse == 1 or (self.tw_reuse == 2 and self.loopback)

    @property
    def sustainable_rate(self) -> float | None:
        """New connections per second this machine can keep up without running out of local
        ports (None: not limited here, or unknown)."""
        if self.ports is None or self.reuses_time_wait:
            return None
        return self.ports * max(1, self.source_addresses) / TIME_WAIT_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return {
            "port_range": list(self.port_range) if self.port_range else None,
            "ports": self.ports,
            "tw_reuse": self.tw_reuse,
            "loopback": self.loopback,
            "source_addresses": self.source_addresses,
            "time_wait_seconds": TIME_WAIT_SECONDS,
            "sustainable_rate": self.sustainable_rate,
        }


def _read_int_file(path: str) -> list[int] | None:
    try:
        return [int(v) for v in Path(path).read_text().split()]
    except (OSError, ValueError):
        return None


def port_facts(host: str, source_addresses: int) -> PortFacts:
    values = _read_int_file("/proc/sys/net/ipv4/ip_local_port_range")
    reuse = _read_int_file("/proc/sys/net/ipv4/tcp_tw_reuse")
    try:
        loopback = ipaddress.ip_address(strip_brackets(host)).is_loopback
    except ValueError:
        loopback = False
    return PortFacts(
        port_range=(values[0], values[1]) if values and len(values) == 2 else None,
        tw_reuse=reuse[0] if reuse else None,
        loopback=loopback,
        source_addresses=source_addresses,
    )


def count_time_wait(host: str, port: int) -> int | None:
    """Sockets in TIME_WAIT towards host:port, from /proc/net/tcp{,6} (None: unknown)."""
    try:
        ip = ipaddress.ip_address(strip_brackets(host))
    except ValueError:
        return None
    if ip.version == 4:
        wanted = f"{int.from_bytes(ip.packed, 'little'):08X}:{port:04X}"
        path = "/proc/net/tcp"
    else:
        words = [ip.packed[i : i + 4] for i in range(0, 16, 4)]
        wanted = "".join(f"{int.from_bytes(w, 'little'):08X}" for w in words) + f":{port:04X}"
        path = "/proc/net/tcp6"
    try:
        with open(path, encoding="ascii") as table:
            next(table, None)
            return sum(
                1
                for line in table
                if (cols := line.split(maxsplit=4))[3] == "06" and cols[2] == wanted
            )
    except (OSError, IndexError):
        return None


def explain_ports(facts: PortFacts, address: str) -> str:
    """Why many short connections to one SCP address run out of local ports, and what helps."""
    span = (
        f"ports {facts.port_range[0]}-{facts.port_range[1]} ({facts.ports:,})"
        if facts.port_range and facts.ports
        else "the ephemeral port range"
    )
    per_source = f"{facts.ports / TIME_WAIT_SECONDS:,.0f}" if facts.ports else "a few hundred"
    return (
        f"Each connection this machine closes first stays in TIME_WAIT for {TIME_WAIT_SECONDS} s "
        f"and keeps its local port. With {span}, one local address can open about "
        f"{per_source} new connections per second to {address}, sustained; past that, "
        f"connect() fails with '{_NO_PORT_TEXTS[0]}' (or bind() with '{_NO_PORT_TEXTS[1]}'). "
        "Spread the load: --source-address with a range of local addresses (e.g. "
        "127.0.0.2-127.0.0.40 on loopback), an SCP listening on several ports or addresses, "
        "or several generator machines; widening net.ipv4.ip_local_port_range helps a little."
    )


# --- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TickStats:
    """One interval of the time series (counts by completion time)."""

    t: float  # seconds since the run began, at the end of the interval
    seconds: float  # the interval's length
    warmup: bool  # the interval ended before the measured part began
    level: float  # concurrency or rate in force at its end
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    echoes: int = 0  # C-ECHO responses received with status 0000H
    in_flight: int = 0
    cpu: float = 0.0  # the generator's CPU seconds per wall second (1.0 = one core)
    p50: float | None = None  # whole-association latency (ms) of the successes that ended
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    failures: dict[str, int] = field(default_factory=dict)
    draining: bool = False  # no association was started any more (the run's tail)

    @property
    def assoc_per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0

    @property
    def echoes_per_s(self) -> float:
        return self.echoes / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors_per_s(self) -> float:
        return self.failed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 4),
            "seconds": round(self.seconds, 4),
            "warmup": self.warmup,
            "draining": self.draining,
            "level": self.level,
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "echoes": self.echoes,
            "in_flight": self.in_flight,
            "assoc_per_s": round(self.assoc_per_s, 2),
            "echoes_per_s": round(self.echoes_per_s, 2),
            "errors_per_s": round(self.errors_per_s, 2),
            "cpu": round(self.cpu, 4),
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "max": self.max,
            "failures": dict(self.failures),
        }


@dataclass(slots=True)
class LoadProgress:
    """What `on_tick` receives once per tick."""

    tick: TickStats
    elapsed: float
    stage: str  # "warmup", "measuring", "draining"
    mode: Mode
    level: float
    planned: int | None  # measured associations asked for
    duration: float | None
    warmup: float
    started: int  # measured associations started
    succeeded: int
    failed: int
    in_flight: int
    echoes: int
    outcomes: dict[str, int]


@dataclass(slots=True)
class LoadReport:
    """Everything a load run measured (warm-up excluded from every total)."""

    config: dict[str, Any]
    started_at: str
    wall_seconds: float
    window_seconds: float  # from the end of warm-up to the last measured completion
    attempted: int
    succeeded: int
    failed: int
    not_started: int
    cancelled: int
    echoes: int  # C-ECHO responses (0000H) received in `echo_window_seconds`
    echo_window_seconds: float  # the measured window (or, if no measured association ended,
    # from the end of warm-up to the end of the run: long associations still count)
    outcomes: dict[str, int]
    reasons: dict[str, int]
    histograms: dict[str, LatencyHistogram]
    series: list[TickStats]
    cpu_seconds: float
    cpu_fraction: float  # over the measured ticks (1.0 = one core)
    cpu_peak: float
    ports: PortFacts
    time_wait_at_end: int | None
    port_errors: int
    warnings: list[str]
    warmup_associations: int
    interrupted: bool = False
    echoes_total: int = 0  # every C-ECHO response (0000H) received, warm-up included

    @property
    def assoc_per_s(self) -> float:
        return self.succeeded / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def echoes_per_s(self) -> float:
        seconds = self.echo_window_seconds
        return self.echoes / seconds if seconds > 0 else 0.0

    @property
    def errors_per_s(self) -> float:
        bad = self.failed + self.cancelled
        return bad / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """The run completed and every measured association succeeded."""
        return (
            not self.interrupted
            and self.attempted > 0
            and self.succeeded == self.attempted
            and not self.not_started
        )

    @property
    def cpu_us_per_association(self) -> float | None:
        """The generator's CPU per association run (warm-up included, as is its CPU time)."""
        ran = self.succeeded + self.failed + self.cancelled + self.warmup_associations
        return self.cpu_seconds / ran * 1e6 if ran else None

    @property
    def cpu_us_per_echo(self) -> float | None:
        """The generator's CPU per C-ECHO received (meaningful with a large repeat)."""
        return self.cpu_seconds / self.echoes_total * 1e6 if self.echoes_total else None

    @property
    def generator_bound(self) -> bool:
        return self.cpu_fraction > CPU_BOTTLENECK

    def percentile(self, name: str, q: float) -> float | None:
        return self.histograms[name].percentile(q)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "started_at": self.started_at,
            "wall_seconds": round(self.wall_seconds, 4),
            "window_seconds": round(self.window_seconds, 4),
            "echo_window_seconds": round(self.echo_window_seconds, 4),
            "ok": self.ok,
            "interrupted": self.interrupted,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "not_started": self.not_started,
            "cancelled": self.cancelled,
            "warmup_associations": self.warmup_associations,
            "echoes": self.echoes,
            "echoes_total": self.echoes_total,
            "assoc_per_s": round(self.assoc_per_s, 2),
            "echoes_per_s": round(self.echoes_per_s, 2),
            "errors_per_s": round(self.errors_per_s, 2),
            "outcomes": dict(self.outcomes),
            "reasons": dict(self.reasons),
            "latency_ms": {
                name: h.to_dict(buckets=True) for name, h in self.histograms.items() if h.count
            },
            "series": [t.to_dict() for t in self.series],
            "cpu": {
                "seconds": round(self.cpu_seconds, 4),
                "fraction": round(self.cpu_fraction, 4),
                "peak": round(self.cpu_peak, 4),
                "us_per_association": (
                    None if (us := self.cpu_us_per_association) is None else round(us, 1)
                ),
                "us_per_echo": (
                    None if (us_echo := self.cpu_us_per_echo) is None else round(us_echo, 2)
                ),
                "bottleneck_threshold": CPU_BOTTLENECK,
                "generator_bound": self.generator_bound,
            },
            "ports": {
                **self.ports.to_dict(),
                "time_wait_at_end": self.time_wait_at_end,
                "port_errors": self.port_errors,
            },
            "warnings": list(self.warnings),
        }


# --- the engine -------------------------------------------------------------------------------


class _Engine:
    def __init__(
        self,
        address: str,
        port: int,
        *,
        mode: Mode,
        level: float,
        arrivals: Arrivals,
        options: AssociationOptions,
        timeouts: Timeouts,
        planned: int | None,
        duration: float | None,
        ramp: Ramp | None,
        warmup: float,
        sources: list[str],
        max_in_flight: int,
        tick: float,
        drain_timeout: float,
        seed: int | None,
        on_tick: Callable[[LoadProgress], None] | None,
        stop: asyncio.Event | None,
        tls: TLSConfig | ssl.SSLContext | None,
    ) -> None:
        self.address = address
        self.tls = tls
        self.port = port
        self.mode: Mode = mode
        self.base_level = level
        self.arrivals = arrivals
        self.options = options
        self.timeouts = timeouts
        self.planned = planned
        self.duration = duration
        self.ramp = ramp
        self.warmup = warmup
        self.max_in_flight = max_in_flight
        self.tick = tick
        self.drain_timeout = drain_timeout
        self.rng = random.Random(seed)
        self.on_tick = on_tick
        self.stop_event = stop
        self._sources: Iterator[tuple[str, int] | None] = (
            itertools.cycle([(s, 0) for s in sources]) if sources else itertools.repeat(None)
        )
        self.facts = port_facts(address, len(sources))

        self.hist = {name: LatencyHistogram() for name in HISTOGRAMS}
        self.h_connect = self.hist["connect"]
        self.h_associate = self.hist["associate"]
        self.h_echo = self.hist["echo"]
        self.h_release = self.hist["release"]
        self.h_whole = self.hist["association"]
        self.h_lag = self.hist["start_lag"]
        self.counter = EchoTally()  # successful echoes so far, for the time series
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.internal_logged = False
        self.port_errors = 0

        self.t0 = 0.0
        self.tick_since = 0.0
        self.tick_cpu = 0.0
        self.measure_from = 0.0
        self.end_at: float | None = None
        self.issued = 0  # measured associations started (or queued, in open loop)
        self.warmup_started = 0
        self.in_flight = 0
        # Open loop: tasks created for an arrival that have not run yet. The drain waits for
        # them too: one cancelled before its first step would otherwise vanish uncounted.
        self.launched = 0
        self.succeeded = 0
        self.failed = 0
        self.cancelled = 0
        self.not_started = 0
        self.echo_mark_start = 0  # echoes received before the measured part began
        self.echo_mark_end = -1  # ... when the last measured association ended (-1: none)
        self.tick_echoes = 0
        self.echo_window = 0.0
        self.last_done = 0.0
        self.issuing = True
        self.stopping = False
        self.workers = 0
        self.retire = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.unmeasured: set[asyncio.Task[Any]] = set()  # running a warm-up association
        self.backlog: deque[float] = deque()
        self.idle = asyncio.Event()

        # per-tick accumulators
        self.t_started = 0
        self.t_succeeded = 0
        self.t_failed = 0
        self.t_failures: Counter[str] = Counter()
        self.t_hist = LatencyHistogram()
        self.series: list[TickStats] = []

    # -- levels and tickets

    def level_at(self, now: float) -> float:
        ramp = self.ramp
        if ramp is None:
            return self.base_level
        if now <= self.measure_from:
            return ramp.start
        if self.duration is not None:
            fraction = (now - self.measure_from) / self.duration
        elif self.planned:
            fraction = self.issued / self.planned
        else:
            fraction = 1.0
        return ramp.start + (ramp.end - ramp.start) * min(1.0, fraction)

    def _take(self, when: float) -> bool:
        """May an association intended to start at `when` start? Counts it if measured."""
        if self.stopping or not self.issuing:
            return False
        if when < self.measure_from:
            self.warmup_started += 1
            return True
        if (self.end_at is not None and when >= self.end_at) or (
            self.planned is not None and self.issued >= self.planned
        ):
            self.issuing = False
            return False
        self.issued += 1
        return True

    # -- one association

    async def _one(self, intended: float, *, launched: bool = False) -> None:
        if launched:
            self.launched -= 1
        self.in_flight += 1
        self.t_started += 1
        measured = intended >= self.measure_from
        task = None if measured else asyncio.current_task()
        if task is not None:
            self.unmeasured.add(task)
        timings: dict[str, float] = {}
        start = perf_counter()
        try:
            outcome = await run_echo(
                self.address,
                self.port,
                self.options,
                self.timeouts,
                tally=self.counter,
                timings=timings,
                local_address=next(self._sources),
                tls=self.tls,
            )
        except ProbeError as exc:
            self._failure(str(exc.outcome), str(exc), measured, exc)
        except asyncio.CancelledError:
            self._failure(Outcome.CANCELLED.value, "cancelled at the end of the run", measured)
            raise
        except Exception as exc:  # a bug of ours (or a LocalProtocolError): counted, logged once
            if not self.internal_logged:
                self.internal_logged = True
                logger.error("internal error in an association", exc_info=exc)
            self._failure(Outcome.INTERNAL_ERROR.value, f"{type(exc).__name__}: {exc}", measured)
        else:
            end = perf_counter()
            replies = outcome.replies
            failing = None
            for reply in replies:
                if reply.status != 0:
                    failing = reply
                    break
            if failing is not None:
                text = f"C-ECHO status 0x{failing.status:04X}"
                if failing.error_comment:
                    text += f" ({failing.error_comment})"
                self._failure(Outcome.ECHO_FAILED_STATUS.value, text, measured)
            elif outcome.release not in ("released", "collision"):
                kind = (
                    Outcome.RELEASE_TIMEOUT
                    if outcome.release == "release_timeout"
                    else Outcome.RELEASE_FAILED
                )
                self._failure(kind.value, str(outcome.release_error or outcome.release), measured)
            else:
                whole = (end - intended) * 1000.0
                self.t_succeeded += 1
                self.t_hist.record(whole)
                if measured:
                    self.succeeded += 1
                    self.last_done = end
                    self.echo_mark_end = self.counter.total
                    self.h_whole.record(whole)
                    value = timings.get("connect")
                    if value is not None:
                        self.h_connect.record(value)
                    value = timings.get("associate")
                    if value is not None:
                        self.h_associate.record(value)
                    value = timings.get("release")
                    if value is not None:
                        self.h_release.record(value)
                    record = self.h_echo.record
                    for reply in replies:
                        record(reply.rtt_ms)
                    if self.mode == "rate":
                        self.h_lag.record((start - intended) * 1000.0)
        finally:
            if task is not None:
                self.unmeasured.discard(task)
            self.in_flight -= 1
            if self.backlog and not self.stopping:
                self._launch(self.backlog.popleft())
            elif self.in_flight == 0 and not self.issuing:
                self.idle.set()

    def _failure(
        self, outcome: str, reason: str, measured: bool, exc: BaseException | None = None
    ) -> None:
        self.t_failed += 1
        self.t_failures[outcome] += 1
        if (
            exc is not None
            and isinstance(exc, NetworkError)
            and exc.phase == "connect"
            and exc.os_errno in _NO_PORT_ERRNOS
        ):
            self.port_errors += 1
            reason = "no local port available (TIME_WAIT): " + reason
        if not measured:
            return
        if outcome == Outcome.CANCELLED:
            self.cancelled += 1
        else:
            self.failed += 1
        self.last_done = perf_counter()
        self.echo_mark_end = self.counter.total
        self.outcomes[outcome] += 1
        key = f"{outcome}: {reason}"
        if key in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[key] += 1
        else:
            self.reasons["(other reasons)"] += 1

    # -- closed loop

    def _spawn_workers(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            self.workers += 1
            task = loop.create_task(self._worker())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _worker(self) -> None:
        try:
            while True:
                if self.retire > 0:
                    self.retire -= 1
                    return
                now = perf_counter()
                if not self._take(now):
                    return
                await self._one(now)
        finally:
            self.workers -= 1
            if self.workers == 0 and self.in_flight == 0 and not self.issuing:
                self.idle.set()

    def _adjust_workers(self, now: float) -> None:
        if not self.issuing or self.stopping:
            return
        target = max(1, min(self.max_in_flight, round(self.level_at(now))))
        active = self.workers - self.retire
        if target > active:
            take_back = min(self.retire, target - active)
            self.retire -= take_back
            self._spawn_workers(target - active - take_back)
        elif target < active:
            self.retire += active - target

    # -- open loop

    def _launch(self, intended: float) -> None:
        if self.in_flight >= self.max_in_flight:
            if len(self.backlog) < BACKLOG_LIMIT:
                self.backlog.append(intended)
            else:
                self.not_started += intended >= self.measure_from
            return
        self.launched += 1
        task = asyncio.get_running_loop().create_task(self._one(intended, launched=True))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _arrive(self) -> None:
        poisson = self.arrivals == "poisson"
        expovariate = self.rng.expovariate
        next_at = self.t0
        try:
            while True:
                now = perf_counter()
                while next_at <= now:
                    if not self._take(next_at):
                        return
                    self._launch(next_at)
                    rate = self.level_at(next_at)
                    next_at += expovariate(rate) if poisson else 1.0 / rate
                # Never less than the loop's timer resolution: a shorter sleep returns at once
                # and the loop spins until the arrival (measured: 98 % of a core at 3,000/s,
                # which also made the generator look saturated). Arrivals due meanwhile start
                # together; their lag is part of their latency (from the intended start).
                await asyncio.sleep(max(next_at - perf_counter(), ARRIVAL_TICK))
        finally:
            self.issuing = False
            if self.in_flight == 0 and not self.backlog:
                self.idle.set()

    # -- ticks

    def _snapshot(self, now: float, cpu_before: float, cpu_now: float, since: float) -> None:
        seconds = now - since
        pct = self.t_hist.percentiles((50.0, 90.0, 99.0))
        tick = TickStats(
            t=now - self.t0,
            seconds=seconds,
            warmup=now <= self.measure_from,
            level=round(self.level_at(now), 3),
            started=self.t_started,
            succeeded=self.t_succeeded,
            failed=self.t_failed,
            echoes=self.counter.total - self.tick_echoes,
            in_flight=self.in_flight,
            cpu=(cpu_now - cpu_before) / seconds if seconds > 0 else 0.0,
            p50=pct[50.0],
            p90=pct[90.0],
            p99=pct[99.0],
            max=self.t_hist.max,
            failures=dict(self.t_failures),
            draining=not self.issuing and now > self.measure_from,
        )
        self.series.append(tick)
        self.t_started = self.t_succeeded = self.t_failed = 0
        self.tick_echoes = self.counter.total
        self.t_failures = Counter()
        self.t_hist = LatencyHistogram()
        if self.on_tick is not None:
            stage = (
                "warmup"
                if now < self.measure_from
                else ("measuring" if self.issuing else "draining")
            )
            progress = LoadProgress(
                tick=tick,
                elapsed=now - self.t0,
                stage=stage,
                mode=self.mode,
                level=tick.level,
                planned=self.planned,
                duration=self.duration,
                warmup=self.warmup,
                started=self.issued,
                succeeded=self.succeeded,
                failed=self.failed,
                in_flight=self.in_flight,
                echoes=self.counter.total - self.echo_mark_start,
                outcomes=dict(self.outcomes),
            )
            try:
                self.on_tick(progress)
            except Exception:
                logger.exception("on_tick failed; no more progress callbacks")
                self.on_tick = None

    def _tick_now(self, now: float) -> None:
        cpu_now = process_time()
        self._snapshot(now, self.tick_cpu, cpu_now, self.tick_since)
        self.tick_since, self.tick_cpu = now, cpu_now

    async def _ticker(self) -> None:
        next_tick = self.t0 + self.tick
        ramping = self.mode == "concurrency" and self.ramp is not None
        while True:
            now = perf_counter()
            wake = min(next_tick, now + _CONTROL_PERIOD) if ramping else next_tick
            await asyncio.sleep(max(0.0, wake - now))
            now = perf_counter()
            if ramping:
                self._adjust_workers(now)
            if now >= next_tick:
                self._tick_now(now)
                next_tick += self.tick
                if next_tick <= now:  # a stalled loop: skip the missed ticks
                    next_tick = now + self.tick

    async def run(self) -> tuple[float, float, bool]:
        """Run to the end; returns (wall seconds, window seconds, interrupted)."""
        loop = asyncio.get_running_loop()
        self.t0 = perf_counter()
        self.measure_from = self.t0 + self.warmup
        self.end_at = None if self.duration is None else self.measure_from + self.duration
        self.last_done = self.measure_from
        self.tick_since, self.tick_cpu = self.t0, process_time()
        marker = loop.call_later(self.warmup, self._mark_start) if self.warmup > 0 else None
        ticker = loop.create_task(self._ticker())
        stop_waiter: asyncio.Task[Any] | None = None
        if self.stop_event is not None:
            stop_waiter = loop.create_task(self.stop_event.wait())
            stop_waiter.add_done_callback(
                lambda task: None if task.cancelled() else self._stop_now()
            )
        arrivals: asyncio.Task[None] | None = None
        try:
            if self.mode == "concurrency":
                first = max(1, min(self.max_in_flight, round(self.level_at(self.t0))))
                self._spawn_workers(first)
            else:
                arrivals = loop.create_task(self._arrive())
            await self._drain(arrivals)
        finally:
            ticker.cancel()
            if marker is not None:
                marker.cancel()
            if stop_waiter is not None:
                stop_waiter.cancel()
            if arrivals is not None:
                arrivals.cancel()
            await self._cancel_all()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        end = perf_counter()
        if end - self.tick_since > 0.001:  # the last, partial interval
            self._tick_now(end)
        window = max(0.0, self.last_done - self.measure_from)
        if self.echo_mark_end < 0:  # no measured association ended: the echoes up to now
            self.echo_mark_end = self.counter.total
            self.echo_window = max(0.0, end - self.measure_from)
        else:
            self.echo_window = window
        return end - self.t0, window, self.stopping

    def _mark_start(self) -> None:
        self.echo_mark_start = self.counter.total

    def _stop_now(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.issuing = False
            if self.in_flight == 0:
                self.idle.set()

    async def _drain(self, arrivals: asyncio.Task[None] | None) -> None:
        # First wait for the end of issuing (bounded by the run's bounds), then for the
        # associations in flight (bounded by drain_timeout).
        while self.issuing:
            await asyncio.sleep(0.02 if arrivals is None else 0.05)
            if self.end_at is not None and perf_counter() >= self.end_at:
                self.issuing = False  # even if every worker is still busy
            if arrivals is not None and arrivals.done():
                arrivals.result()  # re-raise a bug in the scheduler
                break
        if self.backlog:
            self.not_started += sum(1 for t in self.backlog if t >= self.measure_from)
            self.backlog.clear()
        # Warm-up associations still running (long ones: large repeat) count for nothing:
        # aborted now rather than waited for.
        for task in list(self.unmeasured):
            task.cancel()
        closed = self.mode == "concurrency"
        clock = asyncio.get_running_loop().time
        deadline = clock() + self.drain_timeout
        stop_deadline = math.inf  # a stop request leaves the associations in flight 2 s
        while self.in_flight or self.launched or (closed and self.workers):
            now = clock()
            if self.stopping and stop_deadline == math.inf:
                stop_deadline = now + STOP_GRACE
            limit = min(deadline, stop_deadline)
            if now >= limit:
                break
            self.idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(limit - now, 0.1)):
                    await self.idle.wait()

    async def _cancel_all(self) -> None:
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def warnings(self, window: float, cpu_fraction: float, time_wait: int | None) -> list[str]:
        out: list[str] = []
        address = format_address(self.address, self.port)
        if cpu_fraction > CPU_BOTTLENECK:
            out.append(
                f"the load generator used {cpu_fraction:.0%} of one CPU core: it, not the SCP, "
                "is probably the bottleneck, so these figures are a lower bound of what the "
                "SCP can do (run several generator processes or machines)"
            )
        if self.mode == "rate":
            lag = self.h_lag.percentile(99)
            if lag is not None and lag > 10.0:
                out.append(
                    f"associations started late (p99 {lag:.1f} ms after their intended time): "
                    "the generator or the in-flight limit could not keep the offered rate; "
                    "latencies include that wait"
                )
        if self.issued == 0 and not self.stopping:
            out.append(
                "no association started in the measured part of the run: each lasted longer "
                "than the warm-up and the duration; for long associations (large --repeat) "
                "bound the run with --associations"
            )
        if self.not_started:
            out.append(
                f"{self.not_started:,} arrivals never started (more than {self.max_in_flight:,} "
                "associations in flight): the SCP did not keep up with the offered rate"
            )
        facts = self.facts
        if self.port_errors:
            out.append(
                f"{self.port_errors:,} connections failed for lack of a local port. "
                + explain_ports(facts, address)
            )
        else:
            opened = self.succeeded + self.failed + self.warmup_started
            rate = opened / window if window > 0 else 0.0
            sustainable = facts.sustainable_rate
            if sustainable is not None and rate > 0.8 * sustainable:
                out.append(
                    f"{rate:,.0f} new connections/s is near what this machine can sustain to "
                    f"one SCP address ({sustainable:,.0f}/s with "
                    f"{max(1, facts.source_addresses)} local address(es))"
                    + (f", {time_wait:,} sockets in TIME_WAIT now" if time_wait else "")
                    + ". "
                    + explain_ports(facts, address)
                )
        return out


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
) -> LoadReport:
    """Load one SCP (see the module's rules). Exactly one of `concurrency` (closed loop) and
    `rate` (open loop, associations/s) is required, and at least one of `associations` and
    `duration`. `ramp` overrides the level: from `ramp.start` to `ramp.end`. Setting `stop`
    ends the run early (in flight: up to 2 s to finish, then cancelled); the report says
    `interrupted`. Raises `ValueError` for bad arguments, `DNSError` when `host` has no
    address, `TLSConfigError` when `tls` cannot be set up; never for the SCP's failures, which
    are counted."""
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
    engine = _Engine(
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
        "tls": _tls_text(tls),
        "max_in_flight": max_in_flight,
        "tick": tick,
        "seed": seed,
        "machine": {"cpus": os.cpu_count(), "loadavg": _loadavg(), "python": _python()},
    }
    return LoadReport(
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


def _tls_text(tls: object) -> str | None:
    """How the report names the TLS settings (None: plain TCP)."""
    if tls is None:
        return None
    profile = getattr(tls, "profile", None)
    if profile is not None:
        return f"{profile.title} ({profile.value})"
    return "a caller's ssl.SSLContext"


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _python() -> str:
    import platform  # noqa: PLC0415 - only for the report's header

    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return f"{platform.python_implementation()} {platform.python_version()}, loop {loop}"


# --- capacity ---------------------------------------------------------------------------------


@dataclass(slots=True)
class CapacityStep:
    """One level tried by `find_capacity` and what it showed."""

    level: float
    ok: bool
    reason: str | None  # why the step failed (None when it passed)
    assoc_per_s: float
    echoes_per_s: float
    p50: float | None
    p99: float | None
    attempted: int
    succeeded: int
    failed: int
    outcomes: dict[str, int]
    cpu_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "ok": self.ok,
            "reason": self.reason,
            "assoc_per_s": round(self.assoc_per_s, 2),
            "echoes_per_s": round(self.echoes_per_s, 2),
            "p50": self.p50,
            "p99": self.p99,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "outcomes": dict(self.outcomes),
            "cpu_fraction": round(self.cpu_fraction, 4),
        }


@dataclass(slots=True)
class CapacityReport:
    """The result of `find_capacity`: the level found, why the next one failed, the curve."""

    mode: Mode
    capacity: float | None  # the highest level that passed (None: even the first failed)
    first_failure: float | None  # the lowest level that failed (None: none did)
    stop_reason: str  # why the search ended
    steps: list[CapacityStep]
    config: dict[str, Any]
    best: CapacityStep | None  # the passing step with the highest throughput
    at_capacity: LoadReport | None  # the full report of the capacity step
    series: list[TickStats]  # every step's ticks, one after another (t continues)
    warnings: list[str]
    interrupted: bool = False

    @property
    def found(self) -> bool:
        return self.capacity is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "capacity": self.capacity,
            "first_failure": self.first_failure,
            "stop_reason": self.stop_reason,
            "best": self.best.to_dict() if self.best else None,
            "steps": [s.to_dict() for s in self.steps],
            "config": self.config,
            "series": [t.to_dict() for t in self.series],
            "at_capacity": self.at_capacity.to_dict() if self.at_capacity else None,
            "warnings": list(self.warnings),
            "interrupted": self.interrupted,
        }


def judge_step(
    report: LoadReport,
    *,
    mode: Mode,
    level: float,
    p99_bound_ms: float | None,
    max_error_ratio: float,
    min_rate_ratio: float = 0.9,
) -> str | None:
    """Why this step shows the SCP past its capacity, or None when it held."""
    attempts = max(1, report.attempted)
    failures = report.failed + report.cancelled + report.not_started
    outcomes = report.outcomes

    def top_reason(kinds: frozenset[str]) -> str:
        for key in report.reasons:
            if key.split(":", 1)[0] in kinds:
                return key
        return ", ".join(sorted(k for k in outcomes if k in kinds))

    rejects = sum(outcomes.get(k, 0) for k in _REJECT_OUTCOMES)
    if rejects and rejects / attempts > max_error_ratio:
        return f"rejected ({rejects:,} of {attempts:,}): {top_reason(_REJECT_OUTCOMES)}"
    timeouts = sum(outcomes.get(k, 0) for k in _TIMEOUT_OUTCOMES)
    if timeouts and timeouts / attempts > max_error_ratio:
        return f"timed out ({timeouts:,} of {attempts:,}): {top_reason(_TIMEOUT_OUTCOMES)}"
    if failures and failures / attempts > max_error_ratio:
        everything = frozenset(outcomes)
        return f"failed ({failures:,} of {attempts:,}): {top_reason(everything)}"
    if report.succeeded == 0:
        return "no association completed"
    p99 = report.percentile("association", 99)
    if p99_bound_ms is not None and p99 is not None and p99 > p99_bound_ms:
        return f"p99 {p99:.1f} ms above the bound of {p99_bound_ms:g} ms"
    if mode == "rate" and report.assoc_per_s < min_rate_ratio * level:
        return f"throughput {report.assoc_per_s:,.0f}/s below the offered {level:,.0f}/s"
    return None


async def find_capacity(
    host: str,
    port: int,
    *,
    mode: Mode = "concurrency",
    start: float = 1,
    max_level: float | None = None,
    factor: float = 2.0,
    step_duration: float = 2.0,
    step_warmup: float = 0.3,
    p99_bound_ms: float | None = None,
    max_error_ratio: float = 0.0,
    refine: bool = True,
    max_steps: int = 40,
    settle: float = 0.2,
    repeat: int = 1,
    arrivals: Arrivals = "constant",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    source_addresses: Sequence[str] | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
    tick: float = 0.5,
    seed: int | None = None,
    on_tick: Callable[[LoadProgress], None] | None = None,
    on_step: Callable[[CapacityStep], None] | None = None,
    stop: asyncio.Event | None = None,
) -> CapacityReport:
    """Raise concurrency (or rate) step by step (times `factor`), until the SCP rejects, times out,
    fails, or its p99 exceeds `p99_bound_ms`; then, with `refine`, bisect between the last level
    that held and the first that did not. Each step is a bounded `run_load` of `step_duration`
    seconds after `step_warmup`; at most `max_steps` steps."""
    if mode not in ("concurrency", "rate"):
        raise ValueError("mode must be 'concurrency' or 'rate'")
    if not (start > 0 and factor > 1 and step_duration > 0):
        raise ValueError("start must be positive, factor > 1, step_duration > 0")
    if max_level is None:
        max_level = 4096 if mode == "concurrency" else 100_000
    if mode == "concurrency":
        start = max(1, round(start))
        max_level = max(start, int(max_level))
    steps: list[CapacityStep] = []
    series: list[TickStats] = []
    reports: dict[float, LoadReport] = {}
    warnings: list[str] = []
    warning_keys: set[str] = set()  # one warning of each kind, the first one
    offset = 0.0

    async def attempt(level: float) -> CapacityStep:
        nonlocal offset
        kwargs: dict[str, Any] = (
            {"concurrency": int(level)} if mode == "concurrency" else {"rate": level}
        )
        report = await run_load(
            host,
            port,
            **kwargs,
            arrivals=arrivals,
            repeat=repeat,
            duration=step_duration,
            warmup=step_warmup,
            timeouts=timeouts,
            calling_ae=calling_ae,
            called_ae=called_ae,
            source_addresses=source_addresses,
            tls=tls,
            tick=tick,
            seed=seed,
            on_tick=on_tick,
            stop=stop,
            drain_timeout=max(5.0, step_duration),
        )
        series.extend(replace(t, t=t.t + offset) for t in report.series)
        offset += report.wall_seconds + settle
        reason = judge_step(
            report,
            mode=mode,
            level=level,
            p99_bound_ms=p99_bound_ms,
            max_error_ratio=max_error_ratio,
        )
        if report.interrupted:
            reason = reason or "interrupted"
        for text in report.warnings:
            key = re.sub(r"[\d,.%]+", "#", text)
            if key not in warning_keys:
                warning_keys.add(key)
                warnings.append(text)
        step = CapacityStep(
            level=level,
            ok=reason is None,
            reason=reason,
            assoc_per_s=report.assoc_per_s,
            echoes_per_s=report.echoes_per_s,
            p50=report.percentile("association", 50),
            p99=report.percentile("association", 99),
            attempted=report.attempted,
            succeeded=report.succeeded,
            failed=report.failed + report.cancelled + report.not_started,
            outcomes=dict(report.outcomes),
            cpu_fraction=report.cpu_fraction,
        )
        steps.append(step)
        reports[level] = report
        if on_step is not None:
            on_step(step)
        if settle > 0:
            await asyncio.sleep(settle)  # let the SCP see the last connections close
        return step

    def interrupted() -> bool:
        return stop is not None and stop.is_set()

    good: float | None = None
    bad: float | None = None
    stop_reason = ""
    level = float(start)
    while len(steps) < max_steps and not interrupted():
        step = await attempt(level)
        if not step.ok:
            bad, stop_reason = level, step.reason or "failed"
            break
        good = level
        if level >= max_level:
            stop_reason = f"reached the highest level tried ({max_level:g}) without failing"
            break
        nxt = level * factor
        if mode == "concurrency":
            nxt = max(level + 1, round(nxt))
        level = min(float(nxt), float(max_level))
    if refine and good is not None and bad is not None:
        while len(steps) < max_steps and not interrupted():
            if mode == "concurrency":
                if bad - good <= 1:
                    break
                mid = float((int(good) + int(bad)) // 2)
            else:
                if bad / good <= 1.05:
                    break
                mid = round((good + bad) / 2, 1)
            step = await attempt(mid)
            if step.ok:
                good = mid
            else:
                bad, stop_reason = mid, step.reason or "failed"
    if interrupted():
        stop_reason = "interrupted"
    elif not stop_reason:
        stop_reason = f"stopped after {max_steps} steps"
    passing = [s for s in steps if s.ok]
    best = max(passing, key=lambda s: s.assoc_per_s, default=None)
    busy = [s for s in steps if s.cpu_fraction > CPU_BOTTLENECK]
    if busy:
        warnings = [w for w in warnings if not w.startswith("the load generator used")]
        worst = max(s.cpu_fraction for s in busy)
        warnings.insert(
            0,
            f"the load generator used more than {CPU_BOTTLENECK:.0%} of one CPU core in "
            f"{len(busy)} of {len(steps)} steps (up to {worst:.0%}, from "
            f"{mode} {min(s.level for s in busy):g}): from there on it, not the SCP, is "
            "probably the bottleneck, and the curve is a lower bound of the SCP's",
        )
    config = {
        "host": host,
        "port": port,
        "mode": mode,
        "start": start,
        "max_level": max_level,
        "factor": factor,
        "step_duration": step_duration,
        "step_warmup": step_warmup,
        "p99_bound_ms": p99_bound_ms,
        "max_error_ratio": max_error_ratio,
        "repeat": repeat,
        "arrivals": arrivals if mode == "rate" else None,
        "calling_ae": calling_ae,
        "called_ae": called_ae,
        "tls": _tls_text(tls),
        "machine": {"cpus": os.cpu_count(), "loadavg": _loadavg()},
    }
    return CapacityReport(
        mode=mode,
        capacity=good,
        first_failure=bad,
        stop_reason=stop_reason,
        steps=steps,
        config=config,
        best=best,
        at_capacity=reports.get(good) if good is not None else None,
        series=series,
        warnings=warnings,
        interrupted=interrupted(),
    )


__all__ = [
    "HISTOGRAMS",
    "Arrivals",
    "CapacityReport",
    "CapacityStep",
    "LoadProgress",
    "LoadReport",
    "Mode",
    "PortFacts",
    "Ramp",
    "TickStats",
    "count_time_wait",
    "explain_ports",
    "find_capacity",
    "judge_step",
    "parse_ramp",
    "parse_source_addresses",
    "port_facts",
    "run_load",
]
