"""`sweep()`: verify a fleet of peers concurrently; exactly one record per target.

    async with sweep(["PACS@pacs.example:104", "127.0.1.2:11112"], concurrency=256) as results:
        async for record in results:          # records stream as probes finish
            print(record.target, record.outcome)

Rules (docs/robustness.md §4, "nothing lost"):
- Exactly one `ProbeResult` per target, whatever happens: success, every failure class, the
  per-target deadline, `stop()` (in-flight probes → `cancelled`, never-started targets →
  `not_started`), malformed input (`invalid_target`), and our own bugs (`internal_error`,
  logged with the traceback, counted in `stats.internal_errors`, never silent). Duplicated
  targets are probed and recorded once (counted in `stats.duplicates`).
- A fixed pool of worker tasks pulls targets from the (possibly lazy, possibly async) source:
  never one task per target up front, so memory does not grow with the inventory. Records go
  through a bounded queue: a slow consumer slows the sweep instead of filling memory.
- Limits, in the order a probe meets them: name resolution (concurrent, bounded, cached,
  failures cached too), the per-host limit (keyed by address), the rate limiter, then the probe.
  A target whose host is at its limit is set aside without holding a worker; the worker that
  frees a slot of that host takes it next, so one busy archive with many AE titles does not
  stall the rest of the fleet.
- A name with several addresses is probed at the first; after a refused or failed connect,
  at the next ones (as a client given the name does), within the target's deadline; the
  record then lists `detail["addresses_tried"]`.
- `probe()` never raises for a peer's failure; a guard deadline a little beyond the probe's
  own catches a probe that overruns (recorded as `deadline_exceeded`, logged as a bug).
- Cancellation: `stop()` cancels only tasks inside a probe or waiting for a slot; the driver
  sends A-ABORT and closes the socket. Leaving the `async with` block early cancels everything
  and drops records not yet read: call `results.stop()` and keep iterating to get them all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import traceback
from collections import Counter, deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Sized,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Protocol

from echoprobe._values import replace
from echoprobe.errors import DNSError
from echoprobe.fleet.collector import relaxed_collector
from echoprobe.fleet.limits import (
    FD_RESERVE,
    ConcurrencyLimit,
    HostLimiter,
    RateLimiter,
    effective_concurrency,
)
from echoprobe.fleet.targets import InvalidTarget, Target, coerce_target
from echoprobe.net.addresses import literal_family
from echoprobe.net.aio import Deadline, mark_retrieved
from echoprobe.net.client import probe as _default_probe
from echoprobe.net.errors_map import map_resolve_error
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult

if TYPE_CHECKING:
    import ssl

    from echoprobe.net.tls import TLSConfig

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY: Final = 256
GUARD_GRACE: Final = 2.0  # seconds past a probe's own deadline before the sweep steps in
END_OF_RECORDS: Final = object()  # the last item of a record queue

SweepInput = Target | InvalidTarget | str | Mapping[str, Any]
"""What `sweep()` takes: targets, invalid inputs (recorded as such), specs, inventory entries."""

ResolveFn = Callable[[str, int], Awaitable[Sequence[str]]]
"""`(host, port) -> addresses` (IP literals, best first); raise `OSError`/`DNSError` on failure."""


class ProbeFn(Protocol):
    """The shape of `echoprobe.net.client.probe` (injectable for tests)."""

    def __call__(
        self,
        host: str,
        port: int = ...,
        *,
        calling_ae: str = ...,
        called_ae: str = ...,
        timeouts: Timeouts = ...,
        max_pdu: int = ...,
        repeat: int = ...,
        target: str | None = ...,
        name: str | None = ...,
        tags: tuple[str, ...] = ...,
    ) -> Awaitable[ProbeResult]: ...


# --- name resolution --------------------------------------------------------------------------


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver (`getaddrinfo` in asyncio's thread pool): addresses, best first."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Resolver:
    """Concurrent, bounded, cached resolution: one lookup per distinct name per sweep.

    A lookup runs as its own task, so a caller giving up (its deadline, `stop()`) does not
    waste it for the others; failures are cached too (an inventory full of one dead name
    costs one lookup). IP literals never reach the resolver."""

    def __init__(
        self, *, limit: int = 32, resolve: ResolveFn | None = None, timeout: float = 10.0
    ) -> None:
        if limit < 1:
            raise ValueError("the resolver's concurrency must be at least 1")
        self._semaphore = asyncio.Semaphore(limit)
        self._resolve = resolve or system_resolve
        self._timeout = timeout
        self._lookups: dict[str, asyncio.Task[tuple[str, ...]]] = {}
        self.lookups = 0
        self.cache_hits = 0

    async def resolve(self, host: str, port: int, limit: float | None = None) -> tuple[str, ...]:
        """Addresses of `host`, or `DNSError` (also when `limit` seconds pass first)."""
        if literal_family(host) is not None:
            return (host,)
        key = host.lower().rstrip(".")
        task = self._lookups.get(key)
        if task is None:
            self.lookups += 1
            task = asyncio.get_running_loop().create_task(self._lookup(host, port))
            task.add_done_callback(mark_retrieved)  # a cached failure nobody awaited
            self._lookups[key] = task
        else:
            self.cache_hits += 1
        try:
            async with asyncio.timeout(limit):
                return await asyncio.shield(task)
        except TimeoutError as exc:
            raise map_resolve_error(host, TimeoutError("resolution timed out")) from exc

    async def _lookup(self, host: str, port: int) -> tuple[str, ...]:
        async with self._semaphore:
            try:
                async with asyncio.timeout(self._timeout):
                    addresses = tuple(await self._resolve(host, port))
            except DNSError:
                raise
            except TimeoutError as exc:
                raise map_resolve_error(host, TimeoutError("resolution timed out")) from exc
            except (OSError, UnicodeError) as exc:
                raise map_resolve_error(host, exc) from exc
        if not addresses:
            raise map_resolve_error(host, OSError("no address"))
        return addresses

    async def aclose(self) -> None:
        pending = [t for t in self._lookups.values() if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


# --- statistics -------------------------------------------------------------------------------


@dataclass(slots=True)
class SweepStats:
    """Live counts of a sweep (read them for progress; only the sweep writes them)."""

    concurrency: ConcurrencyLimit
    total_hint: int | None = None  # the number of inputs, when known in advance
    taken: int = 0  # inputs taken from the source (invalid ones and duplicates included)
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    started: int = 0  # probes that began (an association was attempted)
    in_flight: int = 0
    emitted: int = 0  # records produced
    by_outcome: Counter[str] = field(default_factory=Counter)
    internal_errors: int = 0
    dns_lookups: int = 0
    dns_cache_hits: int = 0
    stopping: bool = False
    finished: bool = False
    began: float = field(default_factory=perf_counter)
    ended: float | None = None

    @property
    def expected(self) -> int:
        """Records owed for the inputs taken so far (one per distinct target)."""
        return self.taken - self.duplicates

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else perf_counter()) - self.began


# --- the result stream ------------------------------------------------------------------------


class RecordQueue(AsyncIterator[ProbeResult]):
    """Records read from a queue that ends with `END_OF_RECORDS`: async iteration, and
    `take_ready()` for a caller that must quit at once and still keep what is done."""

    def __init__(self, queue: asyncio.Queue[object]) -> None:
        self.queue = queue
        self._done = False

    def take_ready(self) -> list[ProbeResult]:
        """Every record finished and not yet read, without waiting."""
        ready: list[ProbeResult] = []
        queue = self.queue
        while not self._done and not queue.empty():
            item = queue.get_nowait()
            if item is END_OF_RECORDS:
                self._done = True
            elif isinstance(item, ProbeResult):
                ready.append(item)
        return ready

    def __aiter__(self) -> RecordQueue:
        return self

    async def __anext__(self) -> ProbeResult:
        if self._done:
            raise StopAsyncIteration
        item = await self.queue.get()
        if item is END_OF_RECORDS:
            self._done = True
            raise StopAsyncIteration
        assert isinstance(item, ProbeResult)  # only records and the end are ever queued
        return item


class ResultStream(RecordQueue):
    """What `sweep()` yields: an async iterator of records, plus `stats` and `stop()`."""

    def __init__(self, engine: _Sweep) -> None:
        super().__init__(engine.queue)
        self._engine = engine

    @property
    def stats(self) -> SweepStats:
        return self._engine.stats

    def stop(self, *, drain: bool = True) -> None:
        """Stop the sweep: start no more probes and cancel those in flight (each records
        `cancelled`); with `drain`, every target not yet started still gets a `not_started`
        record (the rest of the source is read for that). Keep iterating: the stream ends when
        every record is out. Safe to call from a signal handler, and more than once."""
        self._engine.stop(drain=drain)


@dataclass(slots=True)
class _Job:
    target: Target
    began: float = field(default_factory=perf_counter)
    resolve_ms: float | None = None
    probing: bool = False
    # Once resolved: the target's timeouts, its addresses (best first) and the per-host key.
    timeouts: Timeouts | None = None
    addresses: tuple[str, ...] = ()
    resolved_at: float = 0.0
    host_key: str | None = None
    parked: bool = False  # waited for its host without holding a worker


class _Sweep:
    def __init__(
        self,
        source: Iterable[object] | AsyncIterable[object],
        *,
        stats: SweepStats,
        workers: int,
        timeouts: Timeouts,
        calling_ae: str,
        called_ae: str,
        repeat: int,
        max_pdu: int,
        resolver: Resolver,
        hosts: HostLimiter,
        rate: RateLimiter | None,
        dedupe: bool,
        probe_fn: ProbeFn,
        queue_size: int,
        tls: TLSConfig | ssl.SSLContext | None = None,
        tls_all: bool = False,
    ) -> None:
        self.stats = stats
        self.queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self.stream = ResultStream(self)
        self._source = source
        self._sync_iter: Iterator[object] | None = None
        self._async_iter: AsyncIterator[object] | None = None
        if isinstance(source, AsyncIterable):
            self._async_iter = aiter(source)
        else:
            self._sync_iter = iter(source)
        self._source_lock = asyncio.Lock()
        self._exhausted = False
        self._n_workers = workers
        self._timeouts = timeouts
        self._calling_ae = calling_ae
        self._called_ae = called_ae
        self._repeat = repeat
        self._max_pdu = max_pdu
        self._resolver = resolver
        self._hosts = hosts
        self._rate = rate
        self._dedupe = dedupe
        self._seen: set[object] = set()
        self._probe = probe_fn
        self._tls = tls
        self._tls_all = tls_all
        self._stopping = False
        self._drain = True
        self._active: dict[asyncio.Task[Any], _Job] = {}
        # Jobs whose host was at its per-host limit, by host key: the worker that frees a
        # slot of that host runs the next one, so no worker sits waiting for a busy host.
        self._parked: dict[str, deque[_Job]] = {}
        self._cancelled_by_us: set[asyncio.Task[Any]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None

    # -- life cycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._worker(), name=f"sweep-worker-{i}")
            for i in range(self._n_workers)
        ]
        self._supervisor = loop.create_task(self._supervise(), name="sweep-supervisor")

    async def _supervise(self) -> None:
        outcomes = await asyncio.gather(*self._workers, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, asyncio.CancelledError
            ):
                self.stats.internal_errors += 1
                logger.error("a sweep worker failed", exc_info=outcome)
        self.stats.finished = True
        self.stats.ended = perf_counter()
        self.stats.dns_lookups = self._resolver.lookups
        self.stats.dns_cache_hits = self._resolver.cache_hits
        await self.queue.put(END_OF_RECORDS)

    def stop(self, *, drain: bool = True) -> None:
        if not self._stopping:
            self._stopping = True
            self._drain = drain
            self.stats.stopping = True
        elif not drain:
            self._drain = False
        for task in list(self._active):
            if task not in self._cancelled_by_us:
                self._cancelled_by_us.add(task)
                task.cancel()

    async def aclose(self) -> None:
        self._stopping = True
        self._drain = False
        tasks = [t for t in (*self._workers, self._supervisor) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._resolver.aclose()
        await self._close_source()
        self.stats.finished = True
        if self.stats.ended is None:
            self.stats.ended = perf_counter()

    async def _close_source(self) -> None:
        try:
            if self._async_iter is not None:
                closer = getattr(self._async_iter, "aclose", None)
                if closer is not None:
                    await closer()
            elif self._sync_iter is not None:
                close = getattr(self._sync_iter, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception("closing the target source failed")

    # -- workers

    async def _next_item(self) -> object:
        if self._exhausted or (self._stopping and not self._drain):
            return END_OF_RECORDS
        try:
            if self._async_iter is not None:
                async with self._source_lock:
                    if self._exhausted:
                        return END_OF_RECORDS
                    return await anext(self._async_iter)
            assert self._sync_iter is not None
            return next(self._sync_iter)
        except (StopIteration, StopAsyncIteration):
            self._exhausted = True
            return END_OF_RECORDS
        except Exception as exc:  # the source itself broke (a bug or an I/O error): say so
            self._exhausted = True
            logger.exception("reading targets failed")
            return InvalidTarget("", f"reading targets failed: {type(exc).__name__}: {exc}")

    async def _worker(self) -> None:
        follow: _Job | None = None
        while True:
            job: _Job | None = None
            if follow is not None:
                job, follow = follow, None
                record = await self._run(job)
            else:
                item = await self._next_item()
                if item is END_OF_RECORDS:
                    return
                try:
                    prepared = self._prepare(item)
                    if isinstance(prepared, _Job):
                        job = prepared
                        record = await self._run(job)
                    else:
                        record = prepared
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug outside a probe: still exactly one record
                    record = self._internal_error(item, exc)
            if record is not None:
                await self._emit(record)
            if job is not None and job.host_key is not None:
                follow = self._unpark(job.host_key)

    def _park(self, key: str, job: _Job) -> None:
        waiting = self._parked.get(key)
        if waiting is None:
            waiting = self._parked[key] = deque()
        if job.parked:
            waiting.appendleft(job)  # parked again: it keeps its turn
        else:
            job.parked = True
            waiting.append(job)

    def _unpark(self, key: str) -> _Job | None:
        """The next job waiting for host `key`, once a slot of it is free."""
        waiting = self._parked.get(key)
        if not waiting or self._hosts.full(key):
            return None
        job = waiting.popleft()
        if not waiting:
            del self._parked[key]
        return job

    async def _emit(self, record: ProbeResult) -> None:
        stats = self.stats
        stats.emitted += 1
        stats.by_outcome[record.outcome.value] += 1
        if record.outcome is Outcome.INTERNAL_ERROR:
            stats.internal_errors += 1
        await self.queue.put(record)

    def _prepare(self, item: object) -> ProbeResult | _Job | None:
        """A record for what needs no probe (invalid, not started), None for a duplicate,
        else the job to run."""
        self.stats.taken += 1
        target = coerce_target(item)
        if isinstance(target, InvalidTarget):
            return self._invalid(target)
        if self._dedupe:
            key = target.key(self._called_ae, self._calling_ae)
            if key in self._seen:
                self._duplicate(target)
                return None
            self._seen.add(key)
        if self._stopping:
            return self._record(target, Outcome.NOT_STARTED, error="the sweep was stopped")
        if target.tls and self._tls is None:
            return self._record(
                target,
                Outcome.INVALID_TARGET,
                error="this target asks for TLS, but no TLS settings were given "
                "(+tls KEY CERT or +tla, with +cf CA files)",
                detail={"source": target.source} if target.source else {},
            )
        return _Job(target)

    def _duplicate(self, target: Target) -> None:
        stats = self.stats
        stats.duplicates += 1
        label = target.label(self._called_ae)
        if len(stats.duplicate_examples) < 20:
            stats.duplicate_examples.append(label)
        logger.info("duplicate target %s (%s) skipped", label, target.source or "argument")

    async def _run(self, job: _Job) -> ProbeResult | None:
        """The job's record, or None when it was parked to wait for its host."""
        target = job.target
        task = asyncio.current_task()
        assert task is not None
        self._active[task] = job
        try:
            return await self._attempt(job)
        except asyncio.CancelledError:
            if task not in self._cancelled_by_us:
                raise  # cancelled from outside (the sweep is being torn down)
            return self._cancelled(job)
        except Exception as exc:
            return self._internal_error(target, exc, job)
        finally:
            del self._active[task]
            if job.probing:
                self.stats.in_flight -= 1
            if task in self._cancelled_by_us:
                self._cancelled_by_us.discard(task)
                task.uncancel()

    async def _attempt(self, job: _Job) -> ProbeResult | None:
        target = job.target
        if job.timeouts is None:
            timeouts = job.timeouts = target.timeouts.apply(self._timeouts)
            try:
                job.addresses = await self._resolver.resolve(
                    target.host, target.port, _least(timeouts.connect, timeouts.total)
                )
            except DNSError as exc:
                elapsed = (perf_counter() - job.began) * 1000.0
                return self._record(
                    target,
                    Outcome.DNS_ERROR,
                    error=str(exc),
                    phase="resolve",
                    detail={"host": exc.host, "reason": exc.reason},
                    timings={"resolve": elapsed, "total": elapsed},
                )
            job.resolved_at = perf_counter()
            job.resolve_ms = (job.resolved_at - job.began) * 1000.0
            job.host_key = job.addresses[0]
        elif self._stopping:
            return self._cancelled(job)  # it waited for its host: never started
        key = job.host_key
        assert key is not None
        assert job.resolve_ms is not None
        if self._hosts.full(key):
            self._park(key, job)
            return None
        self._hosts.acquire(key)
        try:
            if self._rate is not None:
                await self._rate.wait()
            job.probing = True
            self.stats.started += 1
            self.stats.in_flight += 1
            return await self._probe_addresses(job)
        finally:
            self._hosts.release(key)

    async def _probe_addresses(self, job: _Job) -> ProbeResult:
        """Probe the target's first address; after a failed connect, the next ones (like a
        client given the name would), within what remains of the target's deadline."""
        target = job.target
        timeouts = job.timeouts
        assert timeouts is not None
        assert job.resolve_ms is not None
        probe_timeouts = timeouts
        if timeouts.total is not None:
            remaining = timeouts.total - (job.resolved_at - job.began)
            if remaining <= 0:
                return self._record(
                    target,
                    Outcome.DEADLINE_EXCEEDED,
                    error="the target's deadline passed while resolving its name",
                    phase="resolve",
                    detail={"timer": "deadline"},
                    timings={"resolve": job.resolve_ms, "total": job.resolve_ms},
                )
            probe_timeouts = replace(timeouts, total=remaining)
        # TLS only where asked (the target's `tls` flag, or every target with tls_all), and
        # only passed when used, so a test's probe_fn need not know the keyword.
        extra: dict[str, Any] = {}
        if self._tls is not None and (target.tls or self._tls_all):
            extra["tls"] = self._tls
        addresses = job.addresses
        earlier_ms = 0.0
        for index, address in enumerate(addresses):
            guard = _guard(probe_timeouts, self._repeat)
            probe_started = perf_counter()
            try:
                with Deadline(asyncio.get_running_loop(), guard) as scope:
                    result = await self._probe(
                        address,
                        target.port,
                        calling_ae=target.calling_ae or self._calling_ae,
                        called_ae=target.called_ae or self._called_ae,
                        timeouts=probe_timeouts,
                        max_pdu=self._max_pdu,
                        repeat=self._repeat,
                        target=target.label(self._called_ae),
                        name=target.name,
                        tags=target.tags,
                        **extra,
                    )
            except TimeoutError:
                if not scope.expired:
                    raise
                logger.error("probe of %s overran its deadline by %ss", target.label(), GUARD_GRACE)
                waited = earlier_ms + (perf_counter() - probe_started) * 1000.0
                return self._record(
                    target,
                    Outcome.DEADLINE_EXCEEDED,
                    error=f"the probe did not end within its deadline + {GUARD_GRACE} s",
                    detail={"timer": "sweep_guard"},
                    timings={"resolve": job.resolve_ms, "total": job.resolve_ms + waited},
                )
            if (
                index + 1 == len(addresses)
                or result.phase != "connect"
                or result.outcome not in _NEXT_ADDRESS_AFTER
            ):
                break
            spent = perf_counter() - probe_started
            earlier_ms += spent * 1000.0
            if probe_timeouts.total is not None:
                if probe_timeouts.total - spent <= 0:
                    break
                probe_timeouts = replace(probe_timeouts, total=probe_timeouts.total - spent)
        tried = addresses[: index + 1] if index else ()
        return self._finish(target, result, job.resolve_ms, earlier_ms=earlier_ms, tried=tried)

    # -- records

    def _finish(
        self,
        target: Target,
        result: ProbeResult,
        resolve_ms: float,
        *,
        earlier_ms: float = 0.0,
        tried: tuple[str, ...] = (),
    ) -> ProbeResult:
        """The probe's record with the target's own host name and our resolution time (and,
        when several addresses were tried, the time of the earlier attempts and the list)."""
        probe_ms = result.timings_ms
        timings = {"resolve": round(resolve_ms, 3)}
        # probe() lists its phases in order; anything else it adds follows them, total last.
        for key, value in probe_ms.items():
            if key not in {"resolve", "total"}:
                timings[key] = value
        timings["total"] = round(resolve_ms + earlier_ms + probe_ms.get("total", 0.0), 3)
        detail = result.detail
        if tried:
            detail = {**detail, "addresses_tried": list(tried)}
        # Not replace(): this runs once per target and a direct copy costs a fraction.
        return ProbeResult(
            target=result.target,
            host=target.host,
            port=result.port,
            called_ae=result.called_ae,
            calling_ae=result.calling_ae,
            outcome=result.outcome,
            status=result.status,
            detail=detail,
            timings_ms=timings,
            peer=result.peer,
            error=result.error,
            phase=result.phase,
            echoes=result.echoes,
            name=result.name,
            tags=result.tags,
        )

    def _record(
        self,
        target: Target,
        outcome: Outcome,
        *,
        error: str | None = None,
        phase: str | None = None,
        detail: dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
    ) -> ProbeResult:
        return ProbeResult(
            target=target.label(self._called_ae),
            host=target.host,
            port=target.port,
            called_ae=target.called_ae or self._called_ae,
            calling_ae=target.calling_ae or self._calling_ae,
            outcome=outcome,
            detail=detail or {},
            timings_ms={k: round(v, 3) for k, v in (timings or {}).items()},
            error=error,
            phase=phase,
            name=target.name,
            tags=target.tags,
        )

    def _invalid(self, item: InvalidTarget) -> ProbeResult:
        return ProbeResult(
            target=item.text,
            host="",
            port=0,
            called_ae=self._called_ae,
            calling_ae=self._calling_ae,
            outcome=Outcome.INVALID_TARGET,
            detail={"source": item.source} if item.source else {},
            error=item.reason,
        )

    def _cancelled(self, job: _Job) -> ProbeResult:
        elapsed = (perf_counter() - job.began) * 1000.0
        timings = {"total": elapsed}
        if job.resolve_ms is not None:
            timings = {"resolve": job.resolve_ms, "total": elapsed}
        if job.probing:
            return self._record(
                job.target,
                Outcome.CANCELLED,
                error="the sweep was stopped while this probe ran (association aborted)",
                timings=timings,
            )
        return self._record(
            job.target,
            Outcome.NOT_STARTED,
            error="the sweep was stopped before this probe started",
            timings=timings,
        )

    def _internal_error(
        self, item: object, exc: BaseException, job: _Job | None = None
    ) -> ProbeResult:
        text = "".join(traceback.format_exception(exc))
        digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]
        logger.error("internal error while probing %r [%s]", item, digest, exc_info=exc)
        detail = {"exception": type(exc).__name__, "traceback_hash": digest}
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(item, Target):
            elapsed = None if job is None else (perf_counter() - job.began) * 1000.0
            return self._record(
                item,
                Outcome.INTERNAL_ERROR,
                error=error,
                detail=detail,
                timings=None if elapsed is None else {"total": elapsed},
            )
        shown = item.text if isinstance(item, InvalidTarget) else repr(item)[:200]
        return ProbeResult(
            target=shown,
            host="",
            port=0,
            called_ae=self._called_ae,
            calling_ae=self._calling_ae,
            outcome=Outcome.INTERNAL_ERROR,
            detail=detail,
            error=error,
        )


# Connect failures after which the next address of a name is tried (as a client given the
# name does); a connect timeout is not among them: it already spent the connect timeout.
_NEXT_ADDRESS_AFTER: Final = frozenset((Outcome.CONNECTION_REFUSED, Outcome.CONNECTION_LOST))


def _least(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _guard(timeouts: Timeouts, repeat: int) -> float | None:
    """How long the sweep lets a probe run before it steps in (a probe bounds itself)."""
    if timeouts.total is not None:
        return timeouts.total + GUARD_GRACE
    phases = (timeouts.connect, timeouts.acse, timeouts.dimse, timeouts.release)
    if any(p is None for p in phases):
        return None
    connect, acse, dimse, release = (float(p or 0.0) for p in phases)
    return connect + acse + dimse * repeat + release + GUARD_GRACE


@asynccontextmanager
async def sweep(
    targets: Iterable[SweepInput] | AsyncIterable[SweepInput],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int | None = 1,
    rate: float | None = None,
    jitter: float = 0.1,
    timeouts: Timeouts | None = None,
    calling_ae: str = "ECHOSCU",
    called_ae: str = "ANY-SCP",
    repeat: int = 1,
    max_pdu: int = 16384,
    dns_concurrency: int = 32,
    resolver: ResolveFn | None = None,
    dedupe: bool = True,
    raise_nofile: bool = True,
    fd_reserve: int = FD_RESERVE,
    total: int | None = None,
    probe_fn: ProbeFn | None = None,
    tls: TLSConfig | ssl.SSLContext | None = None,
    tls_all: bool = False,
) -> AsyncIterator[ResultStream]:
    """Verify every target, `concurrency` at a time; yield a `ResultStream` of records.

        async with sweep(["PACS@127.0.0.1:11112", "127.0.0.2"], concurrency=64) as results:
            async for record in results:
                print(record.target, record.outcome)

    Each target gets exactly one `ProbeResult`, in the order probes finish. Leaving the
    block early (break, exception, cancellation) cancels the probes still running.

    Args:
        targets: `Target`s, `InvalidTarget`s, spec strings (`[CALLED_AE@]host[:port]`) or
            inventory mappings (`{"host": ..., "port": ...}`), in a list, a lazy iterator
            (e.g. `load_targets(path)`) or an async iterable. A malformed one gets an
            `invalid_target` record.
        concurrency: associations in flight at once (default 256); capped at the open-file
            limit minus `fd_reserve` (see `results.stats.concurrency`).
        per_host: probes at once per peer address (default 1; None or 0: no limit).
        rate: association starts per second (default None: as fast as `concurrency`
            allows), spaced with ± `jitter` (default 0.1, a fraction of the interval).
        timeouts: per-phase seconds and `total`, the per-target deadline (default
            `Timeouts()`: connect 10, TLS 10, ACSE 30, DIMSE 30, release 10, total 60 s);
            a target's own overrides win.
        calling_ae: our AE title (default "ECHOSCU"; a target's own wins).
        called_ae: the peers' AE title (default "ANY-SCP"; a target's own wins).
        repeat: C-ECHOs per association (default 1).
        max_pdu: our maximum receive PDU length (default 16384).
        dns_concurrency: name resolutions at once (default 32).
        resolver: `async (host, port) -> [address, ...]`, to replace the system resolver.
        dedupe: probe a target listed twice only once (default True).
        raise_nofile: raise RLIMIT_NOFILE to its hard limit first (default True).
        fd_reserve: descriptors kept back for the process itself (default 64).
        total: the number of targets, for progress, when `targets` has no `len()`.
        probe_fn: replaces `probe()` (tests).
        tls: the TLS settings (`TLSConfig` or client `ssl.SSLContext`) for targets whose
            `tls` flag is set; a target that asks for TLS when `tls` is None gets an
            `invalid_target` record.
        tls_all: use `tls` for every target (default False).

    Yields:
        A `ResultStream`: iterate it for the records; `stats` counts them as they come,
        `stop()` ends the sweep early (in-flight probes record `cancelled`, targets not yet
        started `not_started`).

    Raises:
        ValueError: `per_host` is negative or `repeat` below 1. Never for a target's failure.
    """
    if per_host is not None and per_host < 0:
        raise ValueError("per_host must be positive (or 0/None for no limit)")
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    limit = effective_concurrency(concurrency, raise_limit=raise_nofile, reserve=fd_reserve)
    if limit.capped:
        logger.warning("%s", limit.describe())
    if total is None and isinstance(targets, Sized):
        total = len(targets)
    timeouts = timeouts or Timeouts()
    stats = SweepStats(concurrency=limit, total_hint=total)
    workers = limit.effective if total is None else max(1, min(limit.effective, total))
    engine = _Sweep(
        targets,
        stats=stats,
        workers=workers,
        timeouts=timeouts,
        calling_ae=calling_ae,
        called_ae=called_ae,
        repeat=repeat,
        max_pdu=max_pdu,
        resolver=Resolver(
            limit=dns_concurrency,
            resolve=resolver,
            timeout=timeouts.connect or timeouts.total or 10.0,
        ),
        hosts=HostLimiter(per_host),
        rate=None if rate is None else RateLimiter(rate, jitter=jitter),
        dedupe=dedupe,
        probe_fn=probe_fn or _default_probe,
        queue_size=max(16, min(limit.effective, 4096)),
        tls=tls,
        tls_all=tls_all,
    )
    with relaxed_collector():
        engine.start()
        try:
            yield engine.stream
        finally:
            await engine.aclose()


__all__ = [
    "DEFAULT_CONCURRENCY",
    "END_OF_RECORDS",
    "ProbeFn",
    "RecordQueue",
    "ResolveFn",
    "Resolver",
    "ResultStream",
    "SweepInput",
    "SweepStats",
    "sweep",
    "system_resolve",
]
