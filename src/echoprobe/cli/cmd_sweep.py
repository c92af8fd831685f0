"""`echoprobe sweep`: verify a whole fleet of DICOM peers at once.

    echoprobe sweep PACS@pacs.example CT1@ct1.example:11112 --targets inventory.csv \\
        --concurrency 512 -ta 5 --format jsonl --output sweep.jsonl

Rules:
- One record per target is written as it arrives (JSON Lines / CSV: flushed per record, fsynced
  at the end); the table and the summary come at the end. The summary, progress and messages
  go to stderr, so stdout carries only the records.
- A live progress display (counts by outcome, rate, ETA) only when stderr is a terminal.
- SIGINT / SIGTERM: start no more probes, cancel those in flight (each records `cancelled`, the
  driver sends A-ABORT), record every target never started (`not_started`), print the
  summary (and nothing else), exit 130 / 143. A second signal exits at once, keeping every
  finished record and saying how many targets have none.
- A reader that goes away (`| head`) ends the sweep quietly, exit 141.
- The event loop is uvloop when installed.
- Exit codes: `cli/exit_codes.py` (listed in `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from argparse import SUPPRESS
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from echoprobe.cli import exit_codes
from echoprobe.cli.cmd_load import listen_address, workers_count
from echoprobe.cli.common import (
    UsageError,
    add_association_options,
    add_deadline_options,
    add_tls_options,
    install_signals,
    new_runner,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    ratio,
    setup_logging,
    timeouts_from,
    tls_config,
)
from echoprobe.fleet.limits import FD_RESERVE
from echoprobe.fleet.sweep import DEFAULT_CONCURRENCY, ResultStream, SweepStats, sweep
from echoprobe.fleet.targets import (
    FORMATS,
    TargetFileError,
    TargetItem,
    TargetSyntaxError,
    coerce_target,
    count_targets_hint,
    load_targets,
    parse_target,
)
from echoprobe.fleet.threaded_source import ThreadedSource
from echoprobe.net.addresses import format_address
from echoprobe.options import Timeouts
from echoprobe.report.compare import (
    Comparison,
    ComparisonFileError,
    Previous,
    load_previous,
    render_comparison,
)
from echoprobe.report.csv_out import CsvWriter
from echoprobe.report.jsonl import JsonlWriter, RecordWriter
from echoprobe.report.summary import SweepSummary, render_summary
from echoprobe.report.sweep_html import write_sweep_html
from echoprobe.report.table import OUTCOME_STYLE, render_table
from echoprobe.results import Outcome, ProbeResult

if TYPE_CHECKING:
    from echoprobe.fleet.load_metrics import MetricsServer
    from echoprobe.fleet.sweep_metrics import SweepMetrics
    from echoprobe.fleet.sweep_workers import WorkerResultStream
    from echoprobe.net.tls import TLSConfig

PROG = "echoprobe sweep"
OUTPUT_FORMATS = ("table", "jsonl", "csv")
SIGNAL_EXIT = {signal.SIGINT: exit_codes.INTERRUPTED, signal.SIGTERM: exit_codes.TERMINATED}

EPILOG = """\
targets:
  [CALLED_AE@]host[:port]   e.g. PACS@pacs.example, CT1@127.0.1.2:11112, [::1]:11112
                            (default port 104, default called AE from -aec)
  --targets FILE            CSV with a header (host, port, called_ae, calling_ae, name, tags,
                            tls, connect_timeout, acse_timeout, dimse_timeout, release_timeout,
                            timeout), JSON Lines, YAML, or one target per line; "-" is stdin.
                            Malformed entries become invalid_target records, shown with
                            their FILE:LINE; a malformed TARGET argument is a usage error.

exit codes:
  0    every target succeeded (every C-ECHO returned 0000H), or --fail-on/--min-success hold
  1    at least one target failed (by default: any outcome other than success)
  2    usage error (bad arguments, a malformed TARGET argument, unreadable or empty target
       file, unwritable output)
  3    internal error (a bug: a record with outcome internal_error was written)
  130  interrupted by SIGINT (Ctrl-C); 143 terminated by SIGTERM
  141  the records' reader went away (stdout closed, as with `| head`): quiet stop
"""


# --- argument types -----------------------------------------------------------------------------


_TIMEOUTS = frozenset(
    o.value
    for o in (
        Outcome.CONNECT_TIMEOUT,
        Outcome.TLS_HANDSHAKE_TIMEOUT,
        Outcome.ACSE_TIMEOUT,
        Outcome.DIMSE_TIMEOUT,
        Outcome.DEADLINE_EXCEEDED,
        Outcome.TIMEOUT,
    )
)


def _outcomes(text: str) -> frozenset[str]:
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    if not names:
        raise argparse.ArgumentTypeError("give at least one outcome")
    if "any" in names:
        names.discard("any")
        names |= {o.value for o in Outcome if not o.echo_succeeded}
    if "timeout" in names:  # documented as every timeout, not only the generic outcome
        names |= _TIMEOUTS
    known = {o.value for o in Outcome}
    unknown = sorted(names - known)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown outcome(s) {', '.join(unknown)}; known: any, timeout, "
            f"{', '.join(sorted(known))}"
        )
    return frozenset(names)


_RATE = positive_float("a rate")


def register(subparsers: Any) -> None:
    """Add the `sweep` subcommand to the `echoprobe` parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="verify many DICOM peers at once (C-ECHO)",
        description="Verify a fleet of DICOM peers with C-ECHO, concurrently: one record per "
        "target, a summary, and an exit code for monitoring.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        prefix_chars="-+",  # DCMTK's TLS options start with "+"
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="[CALLED_AE@]host[:port]")
    g = p.add_argument_group("targets")
    g.add_argument(
        "--targets",
        dest="target_files",
        action="append",
        default=[],
        metavar="FILE",
        help="read targets from FILE (CSV, JSON Lines, YAML or plain lines; '-' for stdin); "
        "may be repeated",
    )
    g.add_argument(
        "--targets-format",
        choices=FORMATS,
        default="auto",
        help="format of --targets files (default: by extension, else by content)",
    )
    g = p.add_argument_group("concurrency and politeness")
    g.add_argument(
        "-c",
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"associations at once (default {DEFAULT_CONCURRENCY}; capped at the open-file "
        f"limit - {FD_RESERVE})",
    )
    g.add_argument(
        "--per-host",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="associations at once per peer address (default 1; 0 = no limit)",
    )
    g.add_argument(
        "--rate",
        type=_RATE,
        metavar="R",
        help="start at most R associations per second, with jitter (default: no limit)",
    )
    g.add_argument(
        "--workers",
        type=workers_count,
        default=1,
        metavar="N|auto",
        help="split the targets between N processes by peer address (auto: one per usable "
        "core); --concurrency and --rate are divided between them (default 1: no process)",
    )
    g.add_argument(
        "--metrics-listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="serve live Prometheus metrics on http://HOST:PORT/metrics while sweeping "
        "(echoprobe_sweep_targets_total{outcome}, durations, in flight)",
    )
    g.add_argument(
        "--metrics-linger",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="keep serving the final metrics S seconds after the sweep (default 0)",
    )
    g.add_argument(
        "--dns-concurrency",
        type=positive_int,
        default=32,
        metavar="N",
        help="name lookups at once (default 32; results are cached)",
    )
    g = add_association_options(
        p, called_help="called AE title for targets that name none (default ANY-SCP)"
    )
    g.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="N",
        help="C-ECHOs per association (default 1)",
    )
    # Old spelling, kept working for scripts; `--repeat` as in `load` and `check`.
    g.add_argument("-r", dest="repeat", type=positive_int, default=SUPPRESS, help=SUPPRESS)
    add_tls_options(p)
    p.add_argument(
        "--tls-all",
        action="store_true",
        help="use TLS for every target (default: only targets whose inventory row says tls)",
    )
    add_deadline_options(
        p,
        total_help="absolute deadline for each whole target (resolution to close)",
        total_default=Timeouts().total,
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        help="records as a table (at the end), JSON Lines or CSV (streamed); default: by the "
        "--output extension, else table",
    )
    g.add_argument("-o", "--output", metavar="FILE", help="write the records to FILE")
    g.add_argument(
        "--fail-on",
        type=_outcomes,
        metavar="OUTCOME,...",
        help="exit 1 only when a target ends with one of these outcomes; 'any' = every "
        "failure (the default), 'timeout' = every timeout (connect, TLS, ACSE, DIMSE, "
        "deadline), or outcome names as in the records (e.g. connection_refused)",
    )
    g.add_argument(
        "--min-success",
        type=ratio,
        metavar="R",
        help="exit 1 when the share of successful targets is below R (0.95 or 95%%)",
    )
    g.add_argument(
        "--no-progress", action="store_true", help="no live progress, even on a terminal"
    )
    g.add_argument("--no-live", dest="no_progress", action="store_true", help=SUPPRESS)
    g.add_argument("-q", "--quiet", action="store_true", help="no summary")
    g.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write a self-contained HTML report: outcomes, by department/tag, the peers "
        "that need attention, latency per phase and its distribution",
    )
    g.add_argument(
        "--compare",
        metavar="PREVIOUS.jsonl",
        help="after the summary, say what changed since the sweep that wrote PREVIOUS.jsonl "
        "(--format jsonl): failed since, recovered, new, not checked",
    )
    g.add_argument(
        "--group-by",
        metavar="TAG",
        help="group the summary by the inventory tag TAG=value (e.g. department=CT); "
        "default: by each target's first tag",
    )
    p.set_defaults(func=run)


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything `run` decided before the loop starts."""

    targets: Iterator[TargetItem] | AsyncIterator[TargetItem]
    total_hint: int | None
    timeouts: Timeouts
    output_format: str
    writer: RecordWriter | None
    table_out: IO[str] | None
    progress: bool
    err: Console
    records: list[ProbeResult] | None = None
    sources: list[Iterator[TargetItem] | ThreadedSource[TargetItem]] = field(default_factory=list)
    tls: TLSConfig | None = None
    previous: Previous | None = None  # --compare


def _output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.output).suffix.lower() if args.output else ""
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(
        suffix, "table"
    )


def _chain_targets(
    positional: Iterable[str], sources: list[Iterator[TargetItem] | ThreadedSource[TargetItem]]
) -> Iterator[TargetItem] | AsyncIterator[TargetItem]:
    """The command line's targets, then each file's; asynchronous when stdin is among them
    (it is read in a thread, so that a slow producer never blocks the event loop)."""
    if any(isinstance(source, ThreadedSource) for source in sources):
        return _chain_async(positional, sources)
    return _chain_sync(positional, sources)  # type: ignore[arg-type] # no ThreadedSource here


def _chain_sync(
    positional: Iterable[str], sources: list[Iterator[TargetItem]]
) -> Iterator[TargetItem]:
    for number, spec in enumerate(positional, 1):
        yield coerce_target(spec, source=f"argument {number}")
    for source in sources:
        yield from source


async def _chain_async(
    positional: Iterable[str], sources: list[Iterator[TargetItem] | ThreadedSource[TargetItem]]
) -> AsyncIterator[TargetItem]:
    for item in _chain_sync(positional, []):
        yield item
    for source in sources:
        if isinstance(source, ThreadedSource):
            async for item in source:
                yield item
        else:
            for item in source:
                yield item


# Output names that promise a format the records are never written in.
_NOT_RECORD_FORMATS = {".html": "HTML", ".htm": "HTML", ".pdf": "PDF", ".xlsx": "Excel"}


def _check_output_name(args: argparse.Namespace) -> None:
    """Refuse `-o res.html` rather than write a text table into a file named .html."""
    if not args.output or args.format:
        return
    kind = _NOT_RECORD_FORMATS.get(Path(args.output).suffix.lower())
    if kind is not None:
        raise UsageError(
            f"-o {args.output}: records are written as a table, JSON Lines or CSV, not {kind}; "
            "name the file .txt, .jsonl or .csv (for an HTML report: --report FILE.html)"
        )


def make_plan(args: argparse.Namespace) -> Plan:
    """Check the arguments, open the inputs and the output; raises `UsageError`."""
    if not args.targets and not args.target_files:
        raise UsageError("no targets: give TARGET arguments and/or --targets FILE")
    if args.target_files.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    # A typo on the command line is the user's to fix now (exit 2, one line); the same
    # mistake in an inventory file becomes an invalid_target record with its file:line.
    for number, spec in enumerate(args.targets, 1):
        try:
            parse_target(spec)
        except TargetSyntaxError as exc:
            raise UsageError(f"target {spec!r} (argument {number}): {exc}") from exc
    _check_output_name(args)
    if args.report and not Path(args.report).resolve().parent.is_dir():
        raise UsageError(f"--report {args.report}: no such directory")
    previous = None
    if args.compare:
        try:
            previous = load_previous(args.compare)
        except ComparisonFileError as exc:
            raise UsageError(str(exc)) from exc
    sources: list[Iterator[TargetItem] | ThreadedSource[TargetItem]] = []
    hint: int | None = len(args.targets)
    for path in args.target_files:
        try:
            if path == "-":
                stdin = load_targets("-", args.targets_format, stream=sys.stdin)
                sources.append(ThreadedSource(stdin, name="targets-from-stdin"))
                hint = None
            else:
                sources.append(load_targets(path, args.targets_format))
                count = count_targets_hint(path)
                hint = None if hint is None or count is None else hint + count
        except TargetFileError as exc:
            for source in sources:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            raise UsageError(str(exc)) from exc
    timeouts = timeouts_from(args)
    tls = tls_config(args)
    if args.tls_all and tls is None:
        raise UsageError("--tls-all needs +tls KEY CERT or +tla")
    fmt = _output_format(args)
    # Not a terminal: a wide fixed width, so that logs keep one record per line.
    err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
    writer: RecordWriter | None = None
    table_out: IO[str] | None = None
    try:
        if fmt == "jsonl":
            writer = JsonlWriter(args.output)
        elif fmt == "csv":
            writer = CsvWriter(args.output)
        elif args.output:
            table_out = open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    return Plan(
        targets=_chain_targets(args.targets, sources),
        total_hint=hint,
        timeouts=timeouts,
        output_format=fmt,
        writer=writer,
        table_out=table_out,
        progress=not args.no_progress and sys.stderr.isatty(),
        err=err,
        records=[] if fmt == "table" else None,
        sources=sources,
        tls=tls,
        previous=previous,
    )


# --- exit code ----------------------------------------------------------------------------------


def decide_exit(
    summary: SweepSummary,
    *,
    fail_on: frozenset[str] | None,
    min_success: float | None,
    signum: int | None = None,
) -> int:
    """The exit code of a finished sweep (see EPILOG)."""
    if signum is not None:
        return SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum)
    if summary.internal_errors:
        return exit_codes.INTERNAL
    if fail_on is None and min_success is None:
        return exit_codes.SOME_FAILED if summary.failing_count else exit_codes.OK
    failed = False
    if fail_on is not None:
        failed = any(summary.by_outcome.get(outcome, 0) for outcome in fail_on)
    if min_success is not None:
        ratio = summary.success_ratio
        failed = failed or ratio is None or ratio < min_success
    return exit_codes.SOME_FAILED if failed else exit_codes.OK


# --- progress -----------------------------------------------------------------------------------


class ProgressView:
    """What the live display shows: a bar, counts by outcome, rate and ETA."""

    def __init__(
        self,
        stats: Callable[[], SweepStats | None],
        total_hint: int | None,
        bound: float | None = None,
    ) -> None:
        self._stats = stats
        self._total_hint = total_hint
        self._bound = bound  # seconds a probe may take at most (None: unbounded)

    def __rich__(self) -> RenderableType:
        stats = self._stats()
        if stats is None:
            return Text("starting…", style="dim")
        done = stats.emitted
        total = stats.total_hint or self._total_hint
        if total is not None and stats.finished:
            total = done
        elapsed = stats.elapsed
        rate = done / elapsed if elapsed > 0 else 0.0
        line = Text()
        line.append("sweep ", style="bold")
        line.append(f"{done:,}" + (f"/{max(total, done):,}" if total else ""))
        line.append(f"  {rate:,.0f}/s  in flight {stats.in_flight}")
        left = total - done if total else 0
        if left and 0 < left <= stats.in_flight:
            # The long tail: the rate says nothing about when the slowest probes end; say
            # what bounds them instead of an "ETA 0s" that stays while a timeout runs.
            limit = "" if self._bound is None else f", each done within {_duration(self._bound)}"
            line.append(f"  waiting for the last {left:,}{limit}")
        elif left and rate > 0:
            line.append(f"  ETA {_duration(max(left / rate, 1.0))}")
        if stats.stopping:
            line.append("  stopping…", style="bold yellow")
        counts = Text()
        for outcome, n in sorted(stats.by_outcome.items(), key=lambda kv: (-kv[1], kv[0])):
            counts.append(f"{outcome} ", style=OUTCOME_STYLE.get(outcome, ""))
            counts.append(f"{n:,}  ")
        bar = ProgressBar(total=float(max(total or 0, done, 1)), completed=float(done), width=40)
        return Group(line, bar, counts)


def probe_bound(timeouts: Timeouts, repeat: int = 1) -> float | None:
    """The longest one target can take under `timeouts` (None: some phase is unbounded)."""
    phases = (timeouts.connect, timeouts.acse, timeouts.release)
    if timeouts.dimse is None or any(p is None for p in phases):
        return timeouts.total
    summed = sum(p or 0.0 for p in phases) + timeouts.dimse * repeat
    return summed if timeouts.total is None else min(summed, timeouts.total)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


async def _refresh(live: Live, period: float = 0.25) -> None:
    # Refreshed from the loop, not rich's thread: the stats are mutated by the loop only.
    while True:
        live.refresh()
        await asyncio.sleep(period)


# --- running ------------------------------------------------------------------------------------


async def sweep_main(args: argparse.Namespace, plan: Plan) -> int:
    """Run the sweep of `plan`; returns the exit code."""
    loop = asyncio.get_running_loop()
    err = plan.err
    signals: list[int] = []
    streams: list[ResultStream | WorkerResultStream] = []
    live: Live | None = None
    summary = SweepSummary(timeouts=plan.timeouts, group_by=args.group_by)
    comparison = None if plan.previous is None else Comparison(plan.previous)

    def on_signal(signum: int) -> None:
        # The first signal stops the sweep; what it did is in the summary (the live view, if
        # any, says "stopping…" meanwhile). A second one quits at once, keeping every
        # finished record and saying how many targets are left without one.
        signals.append(signum)
        signalled.set()
        if len(signals) == 1:
            if streams:
                streams[0].stop()
            return
        if live is not None:
            with contextlib.suppress(Exception):
                live.stop()
        written = summary.count
        if streams:
            for record in streams[0].take_ready():
                summary.add(record)
                if plan.writer is not None:
                    with contextlib.suppress(OSError):
                        plan.writer.write(record)
            written = summary.count
        if plan.writer is not None:
            with contextlib.suppress(OSError):
                plan.writer.close()
        owed = streams[0].stats.expected if streams else written
        missing = max(owed - written, 0)
        untaken = ""
        hint = plan.total_hint
        if hint is not None and hint > owed:
            missing += hint - owed
            untaken = f" ({hint - owed:,} never read from the input)"
        name = signal.Signals(signum).name
        err.print(
            f"{PROG}: {name} again: quit at once; {written:,} records kept, "
            f"{missing:,} targets have none{untaken}",
            style="yellow",
        )
        os._exit(SIGNAL_EXIT.get(signal.Signals(signals[0]), 128 + signals[0]))

    signalled = asyncio.Event()  # set by the first signal (ends a metrics linger)
    metrics: SweepMetrics | None = None
    server: MetricsServer | None = None
    if args.metrics_listen is not None:
        from echoprobe.fleet.sweep_metrics import SweepMetrics  # noqa: PLC0415 - when asked

        metrics = SweepMetrics(lambda: streams[0].stats if streams else None)
        metrics.expect(plan.total_hint)
        try:
            server = metrics.serve(*args.metrics_listen)
        except OSError as exc:
            err.print(f"{PROG}: error: cannot serve metrics: {exc}", style="bold red")
            return exit_codes.USAGE
        if not args.quiet:
            address = format_address(args.metrics_listen[0], server.port)
            err.print(f"{PROG}: metrics on http://{address}/metrics", style="dim")
    installed = install_signals(loop, on_signal)
    stats: SweepStats | None = None
    write_error: OSError | None = None
    refresher: asyncio.Task[None] | None = None
    try:
        options: dict[str, Any] = {
            "concurrency": args.concurrency,
            "per_host": args.per_host,
            "rate": args.rate,
            "timeouts": plan.timeouts,
            "calling_ae": args.calling_ae,
            "called_ae": args.called_ae,
            "repeat": args.repeat,
            "max_pdu": args.max_pdu,
            "dns_concurrency": args.dns_concurrency,
            "tls": plan.tls,
            "tls_all": args.tls_all,
        }
        session: contextlib.AbstractAsyncContextManager[ResultStream | WorkerResultStream]
        workers = 1
        if args.workers != 1:
            from echoprobe.fleet import sweep_workers as scale  # noqa: PLC0415 - only when asked

            workers = scale.resolve_workers(args.workers)
        if workers == 1:  # today's path, no process (also `auto` on one core)
            session = sweep(plan.targets, **options)
        else:
            session = scale.sweep_workers(
                plan.targets, workers=workers, total=plan.total_hint, **options
            )
        async with session as results:
            streams.append(results)
            stats = results.stats
            if signals:  # a signal came before the sweep began
                results.stop()
            if plan.progress:
                view = ProgressView(
                    lambda: results.stats, plan.total_hint, probe_bound(plan.timeouts, args.repeat)
                )
                live = Live(view, console=err, auto_refresh=False, transient=True)
                live.start()
                refresher = loop.create_task(_refresh(live))
            async for record in results:
                summary.add(record)
                if metrics is not None:
                    metrics.record(record)
                if comparison is not None:
                    comparison.add(record)
                if plan.records is not None:
                    plan.records.append(record)
                if plan.writer is not None and write_error is None:
                    try:
                        plan.writer.write(record)
                    except OSError as exc:  # disk full, pipe closed: stop
                        write_error = exc
                        results.stop(drain=False)
    finally:
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        if live is not None:
            live.stop()
        if plan.writer is not None:
            with contextlib.suppress(OSError):
                plan.writer.close()
        if server is not None:
            # Linger for a last scrape of the final figures; a signal ends the wait.
            if args.metrics_linger > 0 and not signals:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signalled.wait(), args.metrics_linger)
            server.close()
    if isinstance(write_error, BrokenPipeError):
        # The reader went away (`| head`): end quietly, as a program killed by SIGPIPE.
        # stdout is pointed at /dev/null so that the interpreter's last flush is silent too.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        for sig in installed:
            loop.remove_signal_handler(sig)
        return exit_codes.OUTPUT_CLOSED
    if summary.count == 0 and not signals and write_error is None:
        # An empty inventory is an error, said before (and instead of) an empty table.
        for sig in installed:
            loop.remove_signal_handler(sig)
        if plan.table_out is not None:
            plan.table_out.close()
        err.print(f"{PROG}: error: no targets found in the input", style="bold red")
        return exit_codes.USAGE
    try:
        if plan.records is not None:
            _print_table(plan)
        if not args.quiet:
            render_summary(summary, err, stats=stats)
        if comparison is not None:
            err.print(render_comparison(comparison))
        if args.report:
            try:
                write_sweep_html(summary, args.report, stats=stats)
            except OSError as exc:
                err.print(f"{PROG}: error: cannot write {args.report}: {exc}", style="bold red")
                return exit_codes.USAGE
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    if write_error is not None:
        err.print(f"{PROG}: error: writing records failed: {write_error}", style="bold red")
        return exit_codes.USAGE
    return decide_exit(
        summary,
        fail_on=args.fail_on,
        min_success=args.min_success,
        signum=signals[0] if signals else None,
    )


def _print_table(plan: Plan) -> None:
    assert plan.records is not None
    if plan.table_out is None and sys.stdout.isatty():
        render_table(plan.records, Console(highlight=False))
        return
    # A file or a pipe: wide, plain, no trailing blanks (diff- and grep-friendly).
    console = Console(width=200, no_color=True, highlight=False)
    with console.capture() as capture:
        render_table(plan.records, console)
    text = "\n".join(line.rstrip() for line in capture.get().splitlines()) + "\n"
    if plan.table_out is not None:
        with plan.table_out:
            plan.table_out.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """The `sweep` subcommand: returns the exit code."""
    try:
        plan = make_plan(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    setup_logging(plan.err, plan.progress, "echoprobe sweep")
    try:
        with new_runner() as runner:
            return runner.run(sweep_main(args, plan))
    except KeyboardInterrupt:  # Ctrl-C before our handler was installed
        if plan.writer is not None:
            plan.writer.close()
        return exit_codes.INTERRUPTED


__all__ = ["Plan", "ProgressView", "decide_exit", "make_plan", "register", "run", "sweep_main"]
