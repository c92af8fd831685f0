"""`run_load(workers=N)`: N generator processes, one live view, one exactly merged report.

Rules:
- Processes start with the 'spawn' method (no inherited event loop, locks or file
  descriptors); each runs its own event loop (uvloop when installed) and its own `run_load`.
- The load is split between them: concurrency and association counts as evenly as integers
  allow (a worker whose share is zero is not started), rate and ramp levels divided by N
  (a closed-loop worker keeps at least one association open, so a ramp from 1 with N workers
  starts at N), source addresses dealt round-robin, seeds made distinct.
- Parent and worker talk over one pipe each: the worker says `ready`, the parent says `go` when
  every worker is ready (so they begin together, or at `start_at`), ticks and the final report
  come back pickled; `stop` (the parent's stop event, e.g. Ctrl-C) is forwarded to every worker.
  Workers ignore SIGINT: the terminal's Ctrl-C reaches the whole process group, and the parent
  alone decides how to stop.
- A worker that dies (killed, crashed, or gone silent past the stop grace) is named in the
  report's `missing`, with what it had reported so far; the run is then not `ok`. The parent
  never waits unboundedly: a worker still running `_KILL_AFTER` seconds after a stop request,
  or when the parent is cancelled, is terminated.
- The live view and the live metrics see every worker: ticks are combined index by index, with
  the ticks' latency histograms merged exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from echoprobe.fleet.histogram import LatencyHistogram
from echoprobe.fleet.load_merge import merge_histograms, merge_reports, merge_ticks
from echoprobe.fleet.load_model import HISTOGRAMS, LoadProgress, LoadReport
from echoprobe.fleet.load_ports import PortFacts
from echoprobe.fleet.load_schedule import Ramp
from echoprobe.options import Timeouts

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from echoprobe.fleet.load_metrics import LoadMetrics

logger = logging.getLogger(__name__)

READY_TIMEOUT: Final = 60.0  # seconds a worker may take to start (imports on a busy machine)
_KILL_AFTER: Final = 10.0  # seconds after a stop request before a worker is terminated
_JOIN_TIMEOUT: Final = 5.0
TIMEOUT_FIELDS: Final = ("connect", "tls", "acse", "dimse", "release", "socket", "total")


def usable_cores(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The cores this process may use (`--workers auto`): the CPUs it may run on, bounded by
    its cgroup v2 CPU quota (a container's CPU limit does not shrink its CPU affinity)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path(cpu_max).read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota readable: the affinity alone
    return max(1, cores)


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` integers that differ by at most one, the larger ones first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def worker_shares(
    workers: int,
    *,
    concurrency: int | None,
    rate: float | None,
    associations: int | None,
    ramp: Ramp | None,
    source_addresses: Sequence[str],
    max_in_flight: int | None,
    seed: int | None,
) -> list[dict[str, Any]]:
    """The `run_load` arguments of each worker that gets a share of the load."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    n = workers
    if concurrency is not None:
        n = min(n, concurrency)
    if associations is not None:
        n = min(n, associations)
    if ramp is not None and concurrency is not None:  # each worker runs at least one
        n = min(workers, max(1, int(max(ramp.start, ramp.end))))
        if associations is not None:
            n = min(n, associations)
    conc: list[int | None] = [None] * n
    if concurrency is not None:  # (with a ramp, the ramp's levels rule: at least one each)
        conc = [max(1, c) for c in split_evenly(concurrency, n)]
    counts = split_evenly(associations, n) if associations is not None else [None] * n
    flights = split_evenly(max_in_flight, n) if max_in_flight is not None else [None] * n
    shares = []
    for i in range(n):
        sources = list(source_addresses[i::n]) if len(source_addresses) >= n else []
        if source_addresses and not sources:  # fewer addresses than workers: one each, shared
            sources = [source_addresses[i % len(source_addresses)]]
        shares.append(
            {
                "concurrency": conc[i],
                "rate": None if rate is None else rate / n,
                "associations": counts[i],
                "ramp": None if ramp is None else Ramp(ramp.start / n, ramp.end / n),
                "source_addresses": sources or None,
                "max_in_flight": None if flights[i] is None else max(1, flights[i] or 0),
                "seed": None if seed is None else seed + i,
            }
        )
    return shares


# --- the worker process -----------------------------------------------------------------------


RunOne = Callable[..., Awaitable[LoadReport]]
"""`run_load` itself, handed down by the caller (pickled by name for 'spawn'), so that this
module does not import the module that imports it."""


def worker_main(
    index: int,
    conn: Connection,
    host: str,
    port: int,
    kwargs: dict[str, Any],
    *,
    run_one: RunOne,
    live: bool,
) -> None:
    """A worker process's entry point (top-level: 'spawn' imports it by name)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards stop requests
    logging.basicConfig(format=f"echoprobe load worker {index}: %(levelname)s: %(message)s")
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_worker_run(conn, host, port, kwargs, run_one, live=live))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (the measured fast loop), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _worker_run(
    conn: Connection,
    host: str,
    port: int,
    kwargs: dict[str, Any],
    run_one: RunOne,
    *,
    live: bool,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    go: asyncio.Future[float | None] = loop.create_future()

    def readable() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "go" and not go.done():
                    go.set_result(message[1])
                elif message[0] == "stop":
                    stop.set()
        except (EOFError, OSError):  # the parent is gone: stop, nobody reads the report
            loop.remove_reader(conn.fileno())
            stop.set()
        if stop.is_set() and not go.done():
            go.set_result(None)

    def on_tick(progress: LoadProgress) -> None:
        slim = progress if live else replace(progress, histograms=None)
        conn.send(("tick", slim))

    loop.add_reader(conn.fileno(), readable)
    conn.send(("ready", os.getpid()))
    start_at = await go  # a stop request before the start: an empty, interrupted report
    timeouts = Timeouts(**kwargs.pop("timeouts"))
    try:
        report = await run_one(
            host,
            port,
            **kwargs,
            timeouts=timeouts,
            start_at=None if start_at is None else datetime.fromtimestamp(start_at).astimezone(),
            on_tick=on_tick,
            stop=stop,
        )
    except Exception as exc:  # reported to the parent, which names this worker as missing
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("report", report))


# --- the parent -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    pid: int | None = None
    ready: bool = False
    done: bool = False
    report: LoadReport | None = None
    error: str | None = None
    pending: deque[LoadProgress] = field(default_factory=deque)
    tick_latencies: list[LatencyHistogram | None] = field(default_factory=list)
    last: LoadProgress | None = None

    @property
    def label(self) -> str:
        return f"worker {self.index} (pid {self.pid or self.process.pid})"


class _Pool:
    def __init__(
        self,
        workers: list[_Worker],
        on_tick: Callable[[LoadProgress], None] | None,
        metrics: LoadMetrics | None,
    ) -> None:
        self.workers = workers
        self.on_tick = on_tick
        self.metrics = metrics
        self.changed = asyncio.Event()

    def readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):  # the worker is gone (its end of the pipe closed)
            self._finished(worker)
        except Exception as exc:  # an unreadable message: the worker is not trusted further
            logger.error("%s sent an unreadable message: %s", worker.label, exc)
            worker.error = f"unreadable message: {exc}"
            self._finished(worker)
        self.emit()
        self.changed.set()

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready, worker.pid = True, int(message[1])
        elif kind == "tick":
            progress: LoadProgress = message[1]
            worker.pending.append(progress)
            worker.tick_latencies.append(progress.tick_latency)
            worker.last = progress
            if self.metrics is not None:
                self.metrics.update(worker.index, progress)
        elif kind == "report":
            worker.report = message[1]
            if self.metrics is not None:
                self.metrics.finish(worker.index, message[1])
        elif kind == "error":
            worker.error = str(message[1])

    def _finished(self, worker: _Worker) -> None:
        if not worker.done:
            worker.done = True
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(worker.conn.fileno())
            if self.metrics is not None and worker.report is None:
                self.metrics.lost(worker.index)

    def emit(self) -> None:
        """Combine the ticks every running worker has sent (a finished one adds what it left)."""
        while True:
            running = [w for w in self.workers if not w.done]
            if any(not w.pending for w in running):
                return
            ready = [w for w in self.workers if w.pending]
            if not ready:
                return
            combined = combine_progress([w.pending.popleft() for w in ready])
            if self.on_tick is not None:
                try:
                    self.on_tick(combined)
                except Exception:
                    logger.exception("on_tick failed; no more progress callbacks")
                    self.on_tick = None

    def stop(self) -> None:
        for worker in self.workers:
            if not worker.done:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(("stop",))

    def go(self, start_at: float | None) -> None:
        for worker in self.workers:
            if worker.ready and not worker.done:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(("go", start_at))

    async def wait(self, predicate: Callable[[], bool], seconds: float | None) -> bool:
        """Wait until `predicate()` (True) or `seconds` pass (False)."""
        clock = asyncio.get_running_loop().time
        deadline = None if seconds is None else clock() + seconds
        while not predicate():
            self.changed.clear()
            wait = 0.5 if deadline is None else min(0.5, deadline - clock())
            if wait <= 0:
                return predicate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.changed.wait()
            self._reap()
        return True

    def _reap(self) -> None:
        """A worker whose process ended without closing its pipe cleanly is finished too."""
        for worker in self.workers:
            if not worker.done and not worker.process.is_alive():
                self.readable(worker)  # reads what it left, then sees the end of the pipe
                self._finished(worker)


def combine_progress(parts: Sequence[LoadProgress]) -> LoadProgress:
    """One progress record of workers that ran side by side (histograms merged exactly)."""
    latencies = [p.tick_latency for p in parts]
    latency = (
        merge_histograms(h for h in latencies if h is not None)
        if all(h is not None for h in latencies)
        else None
    )
    outcomes: Counter[str] = Counter()
    for p in parts:
        outcomes.update(p.outcomes)
    stages = {p.stage for p in parts}
    stage = "measuring" if "measuring" in stages else "warmup" if "warmup" in stages else "draining"
    histograms: dict[str, LatencyHistogram] | None = None
    if all(p.histograms is not None for p in parts):
        names = {n for p in parts for n in (p.histograms or {})}
        histograms = {
            n: merge_histograms(h for p in parts if (h := (p.histograms or {}).get(n)) is not None)
            for n in sorted(names)
        }
    first = parts[0]
    planned = [p.planned for p in parts]
    return LoadProgress(
        tick=merge_ticks([p.tick for p in parts], latency),
        elapsed=max(p.elapsed for p in parts),
        stage=stage,
        mode=first.mode,
        level=round(sum(p.level for p in parts), 3),
        planned=None if None in planned else sum(p or 0 for p in planned),
        duration=first.duration,
        warmup=first.warmup,
        started=sum(p.started for p in parts),
        succeeded=sum(p.succeeded for p in parts),
        failed=sum(p.failed for p in parts),
        in_flight=sum(p.in_flight for p in parts),
        echoes=sum(p.echoes for p in parts),
        outcomes=dict(outcomes),
        tick_latency=latency,
        histograms=histograms,
        cpu_seconds=sum(p.cpu_seconds for p in parts),
    )


async def run_workers(
    host: str,
    port: int,
    *,
    workers: int,
    shared: dict[str, Any],
    shares: list[dict[str, Any]],
    config: dict[str, Any],
    run_one: RunOne,
    start_at: datetime | None = None,
    on_tick: Callable[[LoadProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    metrics: LoadMetrics | None = None,
    on_started: Callable[[list[int]], None] | None = None,
) -> LoadReport:
    """Run `shares` (one `run_one` argument set each, plus `shared`) in worker processes and
    merge their reports. `run_one` is `run_load`, run by each worker with workers=1.
    `on_started` receives the workers' process ids once all are ready."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    kwargs_shared = dict(shared)
    timeouts: Timeouts = kwargs_shared.pop("timeouts")
    kwargs_shared["timeouts"] = {name: getattr(timeouts, name) for name in TIMEOUT_FIELDS}
    live_histograms = metrics is not None
    pool_workers: list[_Worker] = []
    pool = _Pool(pool_workers, on_tick, metrics)
    try:
        for index, share in enumerate(shares):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=worker_main,
                args=(index, child_end, host, port, {**kwargs_shared, **share}),
                kwargs={"run_one": run_one, "live": live_histograms},
                name=f"echoprobe-load-{index}",
                daemon=True,
            )
            process.start()
            child_end.close()
            worker = _Worker(index, process, parent_end)
            pool_workers.append(worker)
            loop.add_reader(parent_end.fileno(), pool.readable, worker)
        if metrics is not None:
            metrics.expect(len(pool_workers))
        all_up = await pool.wait(
            lambda: (
                all(w.ready or w.done for w in pool_workers) or (stop is not None and stop.is_set())
            ),
            READY_TIMEOUT,
        )
        if not all_up:
            for w in pool_workers:
                if not w.ready:
                    w.error = f"not ready after {READY_TIMEOUT:g} s"
                    w.process.terminate()
        if stop is not None and stop.is_set():
            pool.stop()
        pool.go(None if start_at is None else start_at.timestamp())
        if on_started is not None:
            on_started([w.pid for w in pool_workers if w.pid is not None])
        stop_waiter = None
        if stop is not None:
            stop_waiter = loop.create_task(stop.wait())
            stop_waiter.add_done_callback(lambda t: None if t.cancelled() else pool.stop())

        def all_done() -> bool:
            return all(w.done for w in pool_workers)

        try:
            await pool.wait(lambda: all_done() or (stop is not None and stop.is_set()), None)
            if not all_done():  # stopped: the workers' own grace period, then terminated
                await pool.wait(all_done, _KILL_AFTER)
        finally:
            if stop_waiter is not None:
                stop_waiter.cancel()
    finally:
        await _shut_down(pool_workers)
    pool.emit()
    return _merge(pool_workers, config)


async def _shut_down(workers: list[_Worker]) -> None:
    """Every worker process ends here: those done exit by themselves (joined), the others are
    terminated (named in the report), and any still alive after that is killed."""
    loop = asyncio.get_running_loop()
    for worker in workers:
        if not worker.done and worker.process.is_alive():
            worker.error = worker.error or "terminated: still running after the stop grace"
            worker.process.terminate()
    deadline = time.monotonic() + _JOIN_TIMEOUT
    for worker in workers:
        remaining = max(0.0, deadline - time.monotonic())
        await loop.run_in_executor(None, worker.process.join, remaining)
        if worker.process.is_alive():
            worker.process.kill()
            await loop.run_in_executor(None, worker.process.join, 1.0)
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(worker.conn.fileno())
        worker.done = True
        worker.conn.close()


def _death(worker: _Worker) -> str:
    code = worker.process.exitcode
    if worker.error:
        why = worker.error
    elif code is not None and code < 0:
        why = f"killed by {signal.Signals(-code).name}"
    else:
        why = f"exited with code {code}"
    return f"{worker.label} {why}"


def _merge(workers: list[_Worker], config: dict[str, Any]) -> LoadReport:
    reported = [w for w in workers if w.report is not None]
    lost = [w for w in workers if w.report is None]
    missing = [_death(w) for w in lost]
    extra = [_lost_part(w) for w in lost]
    if not reported:
        return _nothing(config, missing, extra)
    return merge_reports(
        [(w.label, w.report) for w in reported if w.report is not None],
        config=config,
        tick_latencies=[w.tick_latencies for w in reported],
        missing=missing,
        extra_parts=extra,
    )


def _lost_part(worker: _Worker) -> dict[str, Any]:
    last = worker.last
    return {
        "source": worker.label,
        "status": "died",
        "reason": _death(worker),
        "attempted": last.started if last else 0,
        "succeeded": last.succeeded if last else 0,
        "failed": last.failed if last else 0,
        "last_seen_seconds": round(last.elapsed, 3) if last else None,
    }


def _nothing(config: dict[str, Any], missing: list[str], extra: list[dict[str, Any]]) -> LoadReport:
    return LoadReport(
        config=config,
        started_at=datetime.now().astimezone().isoformat(timespec="seconds"),
        wall_seconds=0.0,
        window_seconds=0.0,
        attempted=0,
        succeeded=0,
        failed=0,
        not_started=0,
        cancelled=0,
        echoes=0,
        echo_window_seconds=0.0,
        outcomes={},
        reasons={},
        histograms={name: LatencyHistogram() for name in HISTOGRAMS},
        series=[],
        cpu_seconds=0.0,
        cpu_fraction=0.0,
        cpu_peak=0.0,
        ports=PortFacts(None, None, False, 0),
        time_wait_at_end=None,
        port_errors=0,
        warnings=[f"{m}: no report" for m in missing],
        warmup_associations=0,
        interrupted=True,
        processes=len(missing),
        parts=extra,
        missing=missing,
    )


__all__ = [
    "combine_progress",
    "run_workers",
    "split_evenly",
    "usable_cores",
    "worker_main",
    "worker_shares",
]
