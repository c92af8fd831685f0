"""`sweep_workers()`: one sweep run by N processes, its records merged as they arrive.

Rules:
- Processes start with the 'spawn' method (no inherited loop, locks or descriptors); each runs
  its own event loop (uvloop when installed) and the library `sweep()` on its share. Workers
  ignore SIGINT: the terminal's Ctrl-C reaches the whole process group, the parent decides.
- The parent reads the targets, drops duplicates (the key `sweep()` uses), resolves each name
  once and deals every target to a worker by its first address: one peer address always lands
  on one worker, so `per_host` holds across the whole sweep. Invalid inputs go to worker 0,
  which writes their `invalid_target` records as `sweep()` does.
- Two one-way pipes per worker, each read by a thread with blocking reads (an event loop's
  reader makes the descriptor non-blocking, which breaks a large message half-read). Targets
  and `stop` go down (a worker busy sending records never blocks the parent's feeding: no
  deadlock); records and counts come up and are handed to the parent's event loop.
- A second Ctrl-C that ends the parent at once closes the pipes: the workers stop by
  themselves.
- Exactly one record per target: the parent counts what each worker owes; when a worker dies
  (killed, crashed, or still running `KILL_AFTER` seconds after a stop), each target it owes
  gets an `internal_error` record "worker N died", and the death is logged.
- `concurrency` and `rate` are divided between the workers as evenly as integers allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from echoprobe.errors import DNSError
from echoprobe.fleet.limits import effective_concurrency
from echoprobe.fleet.load_workers import split_evenly, usable_cores
from echoprobe.fleet.sweep import (
    END_OF_RECORDS,
    RecordQueue,
    ResolveFn,
    Resolver,
    SweepInput,
    SweepStats,
    sweep,
)
from echoprobe.fleet.targets import InvalidTarget, Target, TargetItem, coerce_target
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, PeerInfo, ProbeResult

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from echoprobe.net.tls import TLSConfig

logger = logging.getLogger(__name__)

KILL_AFTER: Final = 10.0  # seconds after a stop request before a worker is terminated
_JOIN_TIMEOUT: Final = 5.0
_BATCH: Final = 64  # targets per message down a pipe
_END: Final = object()

__all__ = ["KILL_AFTER", "WorkerResultStream", "resolve_workers", "sweep_workers"]


# The project's frozen values refuse pickle's attribute setting: rebuild them by keyword.
def _rebuild(cls: type[Any], values: dict[str, Any]) -> Any:
    return cls(**values)


def _reduce(obj: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    cls = type(obj)
    return _rebuild, (cls, {name: getattr(obj, name) for name in cls.__slots__})


for _cls in (ProbeResult, PeerInfo, Timeouts):
    ForkingPickler.register(_cls, _reduce)


def resolve_workers(value: int | str) -> int:
    """`--workers N|auto` → a number of processes (auto: the usable cores)."""
    return usable_cores() if value == "auto" else int(value)


def _key(target: str, host: str, port: int) -> tuple[str, str, int]:
    return (target, host, port)


# --- the worker process -----------------------------------------------------------------------


def worker_main(index: int, down: Connection, up: Connection, kwargs: dict[str, Any]) -> None:
    """A worker process's entry point (top-level: 'spawn' imports it by name)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards stop requests
    logging.basicConfig(format=f"echoprobe sweep worker {index}: %(levelname)s: %(message)s")
    from echoprobe.fleet.load_workers import _loop_factory  # noqa: PLC0415

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_worker_run(down, up, kwargs))


async def _worker_run(down: Connection, up: Connection, kwargs: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[object] = asyncio.Queue()
    streams: list[Any] = []
    stops: list[bool] = []

    def deliver(message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "targets":
            for item in message[1]:
                inbox.put_nowait(item)
        elif kind == "end":
            inbox.put_nowait(_END)
        elif kind in ("stop", "gone"):
            drain = kind == "stop" and bool(message[1])
            if kind == "gone":
                inbox.put_nowait(_END)
            stops.append(drain)
            for stream in streams:
                stream.stop(drain=drain)

    def read() -> None:
        try:
            while True:
                loop.call_soon_threadsafe(deliver, down.recv())
        except (EOFError, OSError):  # the parent is gone: stop, nobody reads the records
            with contextlib.suppress(RuntimeError):  # the loop closed first
                loop.call_soon_threadsafe(deliver, ("gone",))

    threading.Thread(target=read, name="sweep-worker-inbox", daemon=True).start()

    async def source() -> AsyncIterator[TargetItem]:
        while (item := await inbox.get()) is not _END:
            if isinstance(item, Target | InvalidTarget):
                yield item

    up.send(("ready",))
    async with sweep(source(), **kwargs) as results:
        streams.append(results)
        for drain in stops:
            results.stop(drain=drain)
        stats = results.stats
        try:
            async for record in results:
                batch = [record, *results.take_ready()]
                up.send(("records", batch, stats.started, stats.in_flight))
            up.send(("finished",))
        except OSError:  # the parent is gone
            results.stop(drain=False)


# --- the parent -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Worker:
    index: int
    process: BaseProcess
    down: Connection
    up: Connection
    owed: dict[tuple[str, str, int], list[TargetItem]] = field(default_factory=dict)
    batch: list[TargetItem] = field(default_factory=list)
    started: int = 0
    in_flight: int = 0
    finished: bool = False
    done: bool = False
    ended: bool = False  # "end" was sent
    pump: threading.Thread | None = None

    def send(self, message: tuple[Any, ...]) -> None:
        if not self.done:
            with contextlib.suppress(OSError, ValueError):
                self.down.send(message)


class WorkerResultStream(RecordQueue):
    """What `sweep_workers()` yields: as `sweep()`'s `ResultStream` (records, stats, stop)."""

    def __init__(self, stats: SweepStats, stop: Callable[[bool], None]) -> None:
        super().__init__(asyncio.Queue())
        self._stats = stats
        self._stop = stop

    @property
    def stats(self) -> SweepStats:
        return self._stats

    def stop(self, *, drain: bool = True) -> None:
        """Stop every worker (see `ResultStream.stop`); safe from a signal handler."""
        self._stop(drain)


class _Parent:
    def __init__(
        self,
        workers: list[_Worker],
        stats: SweepStats,
        *,
        called_ae: str,
        calling_ae: str,
        resolver: Resolver,
    ) -> None:
        self.workers = workers
        self.stats = stats
        self.called_ae = called_ae
        self.calling_ae = calling_ae
        self.resolver = resolver
        self.stream = WorkerResultStream(stats, self.stop)
        self.seen: set[object] = set()
        self.fed = False
        self.feeder: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    # -- feeding

    async def feed(self, targets: Iterable[SweepInput] | AsyncIterable[SweepInput]) -> None:
        try:
            if isinstance(targets, AsyncIterable):
                async for item in targets:
                    await self._deal(item)
                    self._flush()  # a trickling source (stdin): no target waits for a batch
            else:
                for count, item in enumerate(targets, 1):
                    await self._deal(item)
                    if count % _BATCH == 0:
                        self._flush()
                        await asyncio.sleep(0)  # let records in while a long file is read
        finally:
            self._flush()
            for worker in self.workers:
                worker.ended = True
                worker.send(("end",))
            self.fed = True
            self._check_end()

    async def _deal(self, item: object) -> None:
        self.stats.taken += 1
        target = coerce_target(item)
        if isinstance(target, InvalidTarget):
            self._owe(self.workers[0], target, _key(target.text, "", 0))
            return
        key = target.key(self.called_ae, self.calling_ae)
        if key in self.seen:
            self.stats.duplicates += 1
            if len(self.stats.duplicate_examples) < 20:
                self.stats.duplicate_examples.append(target.label(self.called_ae))
            return
        self.seen.add(key)
        where = target.host.lower().rstrip(".")
        if not self.stats.stopping:
            with contextlib.suppress(DNSError):
                where = (await self.resolver.resolve(target.host, target.port))[0]
        alive = [w for w in self.workers if not w.done] or self.workers
        worker = alive[zlib.crc32(where.encode()) % len(alive)]
        self._owe(worker, target, _key(target.label(self.called_ae), target.host, target.port))

    def _owe(self, worker: _Worker, target: TargetItem, key: tuple[str, str, int]) -> None:
        if worker.done:  # dead before we could send it: recorded here
            self._emit(self._died(worker, target))
            return
        worker.owed.setdefault(key, []).append(target)
        worker.batch.append(target)

    def _flush(self) -> None:
        for worker in self.workers:
            if worker.batch:
                worker.send(("targets", worker.batch))
                worker.batch = []

    # -- records

    def pump(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
        """A thread per worker reads its pipe with blocking reads (the event loop's readers
        would make the descriptor non-blocking, and a large message would then break)."""
        try:
            while True:
                message = worker.up.recv()
                loop.call_soon_threadsafe(self.deliver, worker, message)
        except (EOFError, OSError):  # the worker is gone (its end of the pipe closed)
            pass
        except Exception as exc:  # an unreadable message: the worker is not trusted further
            logger.error("worker %d sent an unreadable message: %s", worker.index, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed first
            loop.call_soon_threadsafe(self.deliver, worker, None)

    def deliver(self, worker: _Worker, message: tuple[Any, ...] | None) -> None:
        if worker.done:
            return
        if message is None:
            self.finish(worker)
        elif message[0] == "records":
            worker.started, worker.in_flight = int(message[2]), int(message[3])
            for record in message[1]:
                self._settle(worker, record)
        elif message[0] == "finished":
            worker.finished = True
        self.stats.started = sum(w.started for w in self.workers)
        self.stats.in_flight = sum(w.in_flight for w in self.workers)
        self.changed.set()

    def _settle(self, worker: _Worker, record: ProbeResult) -> None:
        key = _key(record.target, record.host, record.port)
        owed = worker.owed.get(key)
        if owed:
            owed.pop()
            if not owed:
                del worker.owed[key]
        self._emit(record)

    def _emit(self, record: ProbeResult) -> None:
        stats = self.stats
        stats.emitted += 1
        stats.by_outcome[record.outcome.value] += 1
        if record.outcome is Outcome.INTERNAL_ERROR:
            stats.internal_errors += 1
        self.stream.queue.put_nowait(record)

    def finish(self, worker: _Worker) -> None:
        """The worker's pipe closed: whatever it still owes is recorded as its death."""
        if worker.done:
            return
        worker.done = True
        owed = [t for targets in worker.owed.values() for t in targets]
        worker.owed.clear()
        worker.batch.clear()
        if owed or not worker.finished:
            worker.process.join(0.5)
            logger.error(
                "worker %d (pid %s) died (exit code %s); %d targets recorded as internal_error",
                worker.index,
                worker.process.pid,
                worker.process.exitcode,
                len(owed),
            )
        for target in owed:
            self._emit(self._died(worker, target))
        self._check_end()

    def _died(self, worker: _Worker, target: TargetItem) -> ProbeResult:
        code = worker.process.exitcode
        error = f"worker {worker.index} died" + ("" if code is None else f" (exit code {code})")
        if isinstance(target, InvalidTarget):
            return ProbeResult(
                target=target.text,
                host="",
                port=0,
                called_ae=self.called_ae,
                calling_ae=self.calling_ae,
                outcome=Outcome.INTERNAL_ERROR,
                detail={"worker": worker.index},
                error=error,
            )
        return ProbeResult(
            target=target.label(self.called_ae),
            host=target.host,
            port=target.port,
            called_ae=target.called_ae or self.called_ae,
            calling_ae=target.calling_ae or self.calling_ae,
            outcome=Outcome.INTERNAL_ERROR,
            detail={"worker": worker.index},
            error=error,
            name=target.name,
            tags=target.tags,
        )

    def _check_end(self) -> None:
        if self.fed and all(w.done for w in self.workers) and not self.stats.finished:
            self.stats.finished = True
            self.stats.in_flight = 0
            self.stats.ended = perf_counter()
            self.stream.queue.put_nowait(END_OF_RECORDS)

    # -- stopping

    def stop(self, drain: bool = True) -> None:
        self.stats.stopping = True
        if not drain and self.feeder is not None:
            self.feeder.cancel()
        for worker in self.workers:
            worker.send(("stop", drain))

    async def watch(self) -> None:
        """Reap workers that ended without closing their pipe; terminate those that outlive
        a stop request by `KILL_AFTER` seconds."""
        loop = asyncio.get_running_loop()
        stopped_at: float | None = None
        while not all(w.done for w in self.workers):
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self.changed.wait()
            if self.stats.stopping and stopped_at is None:
                stopped_at = loop.time()
            for worker in self.workers:
                if worker.done:
                    continue
                if not worker.process.is_alive():
                    continue  # its pipe's end reaches `deliver` through the pump thread
                if stopped_at is not None and loop.time() - stopped_at > KILL_AFTER:
                    logger.error("worker %d still running after the stop grace", worker.index)
                    worker.process.terminate()


@asynccontextmanager
async def sweep_workers(
    targets: Iterable[SweepInput] | AsyncIterable[SweepInput],
    *,
    workers: int,
    concurrency: int,
    per_host: int | None = 1,
    rate: float | None = None,
    timeouts: Timeouts | None = None,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    repeat: int = 1,
    max_pdu: int = 16384,
    dns_concurrency: int = 32,
    tls: TLSConfig | None = None,
    tls_all: bool = False,
    total: int | None = None,
    resolver: ResolveFn | None = None,
) -> AsyncIterator[WorkerResultStream]:
    """As `sweep()`, in `workers` processes; yields a stream with the same interface.

    Raises:
        ValueError: `workers` or `repeat` below 1, `per_host` negative.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if per_host is not None and per_host < 0:
        raise ValueError("per_host must be positive (or 0/None for no limit)")
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    timeouts = timeouts or Timeouts()
    n = max(1, min(workers, concurrency))
    shared: dict[str, Any] = {
        "per_host": per_host,
        "rate": None if rate is None else rate / n,
        "timeouts": timeouts,
        "calling_ae": calling_ae,
        "called_ae": called_ae,
        "repeat": repeat,
        "max_pdu": max_pdu,
        "dns_concurrency": dns_concurrency,
        "tls": tls,
        "tls_all": tls_all,
        "resolver": resolver,
    }
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    stats = SweepStats(
        concurrency=effective_concurrency(concurrency, raise_limit=False), total_hint=total
    )
    pool: list[_Worker] = []
    parent = _Parent(
        pool,
        stats,
        called_ae=called_ae,
        calling_ae=calling_ae,
        resolver=Resolver(
            limit=dns_concurrency,
            resolve=resolver,
            timeout=timeouts.connect or timeouts.total or 10.0,
        ),
    )
    watcher: asyncio.Task[None] | None = None
    try:
        for index, share in enumerate(split_evenly(concurrency, n)):
            down_read, down_write = context.Pipe(duplex=False)
            up_read, up_write = context.Pipe(duplex=False)
            process = context.Process(
                target=worker_main,
                args=(index, down_read, up_write, {**shared, "concurrency": max(1, share)}),
                name=f"echoprobe-sweep-{index}",
                daemon=True,
            )
            process.start()
            down_read.close()
            up_write.close()
            worker = _Worker(index, process, down_write, up_read)
            pool.append(worker)
            worker.pump = threading.Thread(
                target=parent.pump, args=(loop, worker), name=f"sweep-pump-{index}", daemon=True
            )
            worker.pump.start()
        parent.feeder = loop.create_task(parent.feed(targets))
        watcher = loop.create_task(parent.watch())
        yield parent.stream
    finally:
        for task in (parent.feeder, watcher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await _shut_down(pool)
        await parent.resolver.aclose()


async def _shut_down(workers: list[_Worker]) -> None:
    """Every worker process ends here: joined, terminated if still alive, killed last."""
    loop = asyncio.get_running_loop()
    for worker in workers:
        if not worker.done and worker.process.is_alive():
            worker.process.terminate()
    for worker in workers:
        await loop.run_in_executor(None, worker.process.join, _JOIN_TIMEOUT)
        if worker.process.is_alive():
            worker.process.kill()
            await loop.run_in_executor(None, worker.process.join, 1.0)
        worker.down.close()
        if worker.pump is not None:  # it sees the end of the pipe once the process is gone
            await loop.run_in_executor(None, worker.pump.join, _JOIN_TIMEOUT)
            if not worker.pump.is_alive():
                worker.up.close()
