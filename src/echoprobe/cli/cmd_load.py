"""`echoprobe load`: load-test one SCP, or find its capacity.

    echoprobe load 127.0.0.1 11112 -c 64 --duration 10 --warmup 1 --report load.html
    echoprobe load pacs 104 --rate 500 --arrivals poisson -n 20000 --json load.json
    echoprobe load pacs 104 --find-capacity --p99-bound 100

Rules:
- Every run is bounded: `--associations` or `--duration` (or `--find-capacity`, whose steps
  are); a second Ctrl-C quits at once.
- The summary goes to stdout; the live view, warnings and errors to stderr. The live view is
  drawn only when stderr is a terminal (and not with `--no-live`).
- `--json` and `--report` are written at the end, also after Ctrl-C (marked interrupted).
- The event loop is uvloop when installed (in every worker process with `--workers`).
- `--metrics-listen` serves prometheus_client's exposition of the live figures, every worker
  summed, until the end of the run (and `--metrics-linger` seconds more).
- Exit codes: `cli/exit_codes.py` (listed in `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from echoprobe.cli import exit_codes
from echoprobe.cli.common import (
    UsageError,
    add_association_options,
    add_deadline_options,
    add_tls_options,
    install_signals,
    new_runner,
    non_negative_float,
    port,
    positive_float,
    positive_int,
    ratio,
    setup_logging,
    timeouts_from,
    tls_config,
)
from echoprobe.errors import ProbeError
from echoprobe.fleet.capacity import CapacityReport, CapacityStep, find_capacity
from echoprobe.fleet.load import (
    MAX_WORKERS,
    LoadProgress,
    LoadReport,
    Ramp,
    parse_ramp,
    parse_source_addresses,
    run_load,
)
from echoprobe.fleet.load_metrics import LoadMetrics, MetricsServer, serve_metrics
from echoprobe.net.addresses import format_address, strip_brackets
from echoprobe.options import Timeouts
from echoprobe.report.load_report import (
    fmt_ms,
    fmt_rate,
    render_capacity_summary,
    render_load_summary,
    write_html,
    write_json,
)
from echoprobe.report.table import OUTCOME_STYLE
from echoprobe.results import Outcome

if TYPE_CHECKING:
    from echoprobe.net.tls import TLSConfig

PROG = "echoprobe load"
SIGNAL_EXIT = {signal.SIGINT: exit_codes.INTERRUPTED, signal.SIGTERM: exit_codes.TERMINATED}
MAX_ECHOES = 10_000_000  # --repeat bound: a long-lived association still ends

EPILOG = """\
workload shapes:
  closed loop   -c C: C associations at once, each worker starting the next when one ends
  open loop     --rate R: R associations/s started on schedule whatever the SCP does
                (--arrivals constant|poisson); latency counts from the intended start, so a
                stalling SCP cannot hide its stalls (no coordinated omission)
  bounds        -n N measured associations and/or --duration S measured seconds (required),
                after --warmup S; --ramp [FROM:]TO moves the level linearly over the run
  capacity      --find-capacity: steps of --step-duration, concurrency (or --rate) times
                --factor until the SCP rejects, times out, fails or its p99 passes
                --p99-bound; then bisects; prints the capacity and the curve

scale-out: --workers N|auto splits the load between N processes (one report, histograms merged
  exactly; a worker that dies is named and the run fails); --start-at TIME starts several
  machines together, and `echoprobe merge A.json B.json ...` merges their --json reports;
  --metrics-listen HOST:PORT serves live Prometheus metrics (docs/scale-out.md)

ports: every connection we close first holds its local port for 60 s (TIME_WAIT); towards
  one SCP address that allows about 470 new connections/s per local address (loopback reuses
  them). Use --source-address 127.0.0.2-127.0.0.40 (ranges, CIDR, lists; repeatable) to spread.

exit codes:
  0    the run completed and every measured association succeeded (with --find-capacity: a
       capacity was found)
  1    at least one association failed, or never started (with --find-capacity: even the
       first level failed)
  2    usage error (bad arguments, unwritable output, unresolvable host)
  3    internal error (a bug: an association ended with outcome internal_error)
  130  interrupted by SIGINT (Ctrl-C); 143 terminated by SIGTERM
"""


# --- argument types ---------------------------------------------------------------------------


_POSITIVE = positive_float()


def workers_count(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"workers must be 1 to {MAX_WORKERS}, or auto")
    return value


def start_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add Z or an offset (e.g. 2026-12-04T17:00:00Z)"
        )
    return when


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:9464)")
    return strip_brackets(host), int(port_text)


def register(subparsers: Any) -> None:
    """Add the `load` subcommand to the `echoprobe` parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "load",
        help="load-test one SCP (associations/s, latency, capacity)",
        description="Drive one DICOM SCP with C-ECHO associations, closed or open loop, and\n"
        "measure throughput, per-phase latency percentiles and failures; or find its capacity.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        prefix_chars="-+",  # DCMTK's TLS options start with "+"
    )
    p.add_argument("host", metavar="HOST", help="the SCP's address or name")
    p.add_argument("port", metavar="PORT", type=port, help="the SCP's port")
    g = p.add_argument_group("workload")
    g.add_argument(
        "-c", "--concurrency", type=positive_int, metavar="C", help="closed loop: C at once"
    )
    g.add_argument("--rate", type=_POSITIVE, metavar="R", help="open loop: R associations/s")
    g.add_argument(
        "--arrivals",
        choices=("constant", "poisson"),
        default="constant",
        help="open-loop arrival process (default constant)",
    )
    g.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="K",
        help="C-ECHOs per association (default 1: a new association per echo)",
    )
    g.add_argument(
        "-n", "--associations", type=positive_int, metavar="N", help="measured associations"
    )
    g.add_argument("--duration", type=_POSITIVE, metavar="S", help="measured seconds")
    g.add_argument(
        "--ramp",
        metavar="[FROM:]TO",
        help="move the concurrency (or rate) linearly from FROM (default: -c / --rate) to TO",
    )
    g.add_argument(
        "--warmup",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="seconds of load before measuring (default 0)",
    )
    g.add_argument(
        "--max-in-flight",
        type=positive_int,
        metavar="N",
        help="open loop: associations open at once at most (default: the open-file limit)",
    )
    g.add_argument(
        "--drain",
        type=_POSITIVE,
        default=30.0,
        metavar="S",
        help="after the end, wait at most S seconds for associations in flight (default 30)",
    )
    g.add_argument("--seed", type=int, metavar="N", help="seed of the Poisson arrivals")
    g = p.add_argument_group("scale-out")
    g.add_argument(
        "--workers",
        type=workers_count,
        default=1,
        metavar="N|auto",
        help="generator processes, the load split between them (auto: the usable cores)",
    )
    g.add_argument(
        "--start-at",
        type=start_time,
        metavar="ISO-TIME",
        help="begin (warm-up and ramp included) at this time, e.g. 2026-12-04T17:00:00Z, "
        "so that generators on several machines start together",
    )
    g.add_argument(
        "--metrics-listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="serve live Prometheus metrics on http://HOST:PORT/metrics (every worker summed)",
    )
    g.add_argument(
        "--metrics-linger",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="keep serving the final metrics S seconds after the run (default 0)",
    )
    g = p.add_argument_group("capacity search")
    g.add_argument(
        "--find-capacity",
        action="store_true",
        help="ramp concurrency (or, with --rate, the rate) until the SCP gives way",
    )
    g.add_argument(
        "--p99-bound",
        type=_POSITIVE,
        metavar="MS",
        help="a step fails when its whole-association p99 exceeds MS milliseconds",
    )
    g.add_argument(
        "--max-level",
        type=_POSITIVE,
        metavar="L",
        help="highest concurrency (default 4096) or rate (default 100000) to try",
    )
    g.add_argument(
        "--factor", type=_POSITIVE, default=2.0, metavar="F", help="step factor (default 2)"
    )
    g.add_argument(
        "--step-duration",
        type=_POSITIVE,
        default=2.0,
        metavar="S",
        help="measured seconds per step (default 2)",
    )
    g.add_argument(
        "--max-error-ratio",
        type=ratio,
        default=0.0,
        metavar="R",
        help="a step fails when more than this share of associations fail (default 0)",
    )
    g = add_association_options(p, called_help="the SCP's called AE title (default ANY-SCP)")
    g.add_argument(
        "--source-address",
        action="append",
        default=[],
        metavar="RANGE",
        help="local addresses to connect from, round robin: 127.0.0.2-127.0.0.40, "
        "127.0.0.2-40, 127.0.1.0/28, or a comma list (repeatable)",
    )
    add_tls_options(p)
    add_deadline_options(p, total_help="absolute deadline of each association")
    g = p.add_argument_group("output")
    g.add_argument("--json", metavar="FILE", help="write the full result as JSON to FILE")
    g.add_argument("--report", metavar="FILE", help="write a self-contained HTML report to FILE")
    g.add_argument(
        "--interval",
        type=_POSITIVE,
        default=1.0,
        metavar="S",
        help="time-series interval (default 1 s; 0.5 s per capacity step)",
    )
    g.add_argument("--no-live", action="store_true", help="no live view, even on a terminal")
    g.add_argument("-q", "--quiet", action="store_true", help="no summary")
    p.set_defaults(func=run)


# --- the plan ---------------------------------------------------------------------------------


@dataclass
class Plan:
    mode: str  # "concurrency" or "rate"
    level: float
    ramp: Ramp | None
    sources: list[str]
    timeouts: Timeouts
    tls: TLSConfig | None
    live: bool
    err: Console
    out: Console


def _check_output(path: str | None, what: str) -> None:
    if path is None:
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{what} {path} is a directory")
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"{what} {path} is not writable")


def make_plan(args: argparse.Namespace) -> Plan:
    """Check the arguments; raises `UsageError`."""
    if args.concurrency is not None and args.rate is not None:
        raise UsageError("give either -c/--concurrency (closed loop) or --rate (open loop)")
    if not args.find_capacity:
        if args.concurrency is None and args.rate is None:
            raise UsageError("give -c/--concurrency (closed loop) or --rate (open loop)")
        if args.associations is None and args.duration is None:
            raise UsageError("a load run must be bounded: give -n/--associations and/or --duration")
    else:
        if args.ramp is not None:
            raise UsageError("--ramp and --find-capacity do not go together")
        if args.workers != 1 or args.metrics_listen or args.start_at:
            raise UsageError(
                "--workers, --metrics-listen and --start-at do not go with --find-capacity"
            )
    if args.repeat > MAX_ECHOES:
        raise UsageError(f"--repeat is at most {MAX_ECHOES:,}")
    mode = "rate" if args.rate is not None else "concurrency"
    level = float(args.rate if args.rate is not None else (args.concurrency or 1))
    ramp = None
    if args.ramp is not None:
        try:
            ramp = parse_ramp(args.ramp, level)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    sources: list[str] = []
    if args.source_address:
        try:
            sources = parse_source_addresses(args.source_address)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    tls = tls_config(args)
    _check_output(args.json, "--json")
    _check_output(args.report, "--report")
    timeouts = timeouts_from(args)
    err = Console(stderr=True, highlight=False)
    tty = sys.stdout.isatty()
    out = Console(highlight=False, width=None if tty else 120)
    return Plan(
        mode=mode,
        level=level,
        ramp=ramp,
        sources=sources,
        timeouts=timeouts,
        tls=tls,
        live=not args.no_live and sys.stderr.isatty(),
        err=err,
        out=out,
    )


# --- the live view ----------------------------------------------------------------------------

_SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(_SPARK[min(8, round(v / top * 8))] for v in values)


class LiveView:
    """What the terminal shows while running: stage, progress, the last interval, outcomes."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.progress: LoadProgress | None = None
        self.history: deque[float] = deque(maxlen=60)
        self.steps: list[CapacityStep] = []
        self.stopping = False

    def update(self, progress: LoadProgress) -> None:
        self.progress = progress
        if not progress.tick.warmup:
            self.history.append(progress.tick.assoc_per_s)

    def __rich__(self) -> RenderableType:
        p = self.progress
        if p is None:
            return Text(f"{self.title}: starting…", style="dim")
        tick = p.tick
        head = Text()
        head.append(f"{self.title} ", style="bold")
        head.append(p.stage, style="cyan" if p.stage == "measuring" else "yellow")
        level = f"{p.level:,.0f} at once" if p.mode == "concurrency" else f"{p.level:,.0f}/s"
        head.append(f"  {p.elapsed:,.1f} s  level {level}  in flight {p.in_flight:,}")
        if self.stopping:
            head.append("  stopping…", style="bold yellow")
        measured = max(0.0, p.elapsed - p.warmup)
        if p.duration:
            done, total = min(measured, p.duration), p.duration
        elif p.planned:
            done, total = float(min(p.started, p.planned)), float(p.planned)
        else:
            done, total = 0.0, 1.0
        bar = ProgressBar(total=total, completed=done, width=40)
        now = Text(
            f"last {tick.seconds:.1f} s: {fmt_rate(tick.assoc_per_s)} assoc/s, "
            f"{fmt_rate(tick.echoes_per_s)} echoes/s, {fmt_rate(tick.errors_per_s)} errors/s, "
            f"p50 {fmt_ms(tick.p50)} ms, p99 {fmt_ms(tick.p99)} ms, CPU {tick.cpu:.0%}"
        )
        if tick.cpu > 0.9:
            now.append("  generator-bound?", style="bold yellow")
        totals = Text(f"measured: {p.succeeded:,} ok ", style="green")
        for outcome, n in sorted(p.outcomes.items(), key=lambda kv: -kv[1]):
            totals.append(f"{outcome} ", style=OUTCOME_STYLE.get(outcome, ""))
            totals.append(f"{n:,}  ")
        parts: list[RenderableType] = [head, bar, now, totals]
        if self.history:
            parts.append(Text("assoc/s " + sparkline(list(self.history)), style="blue"))
        if self.steps:
            last = self.steps[-1]
            verdict = "held" if last.ok else f"failed: {last.reason}"
            parts.append(
                Text(
                    f"capacity search: {len(self.steps)} steps, last {last.level:,g} {verdict}",
                    style="green" if last.ok else "red",
                )
            )
        return Group(*parts)


# --- running ----------------------------------------------------------------------------------


async def load_main(args: argparse.Namespace, plan: Plan) -> int:
    loop = asyncio.get_running_loop()
    err = plan.err
    stop = asyncio.Event()
    signals: list[int] = []
    view = LiveView(PROG)
    live: Live | None = None

    def on_signal(signum: int) -> None:
        signals.append(signum)
        if len(signals) == 1:
            stop.set()
            view.stopping = True
            name = signal.Signals(signum).name
            err.print(
                f"{PROG}: {name}: stopping (associations in flight get 2 s); send it again "
                "to quit at once",
                style="yellow",
            )
            return
        if live is not None:
            with contextlib.suppress(Exception):
                live.stop()
        os._exit(SIGNAL_EXIT.get(signal.Signals(signals[0]), 128 + signals[0]))

    def on_tick(progress: LoadProgress) -> None:
        view.update(progress)
        if live is not None:
            live.refresh()

    def on_step(step: CapacityStep) -> None:
        view.steps.append(step)
        if live is not None:
            live.refresh()
        elif not args.quiet:
            verdict = "held" if step.ok else f"failed: {step.reason}"
            err.print(
                f"{PROG}: {plan.mode} {step.level:,g}: {fmt_rate(step.assoc_per_s)} assoc/s, "
                f"p99 {fmt_ms(step.p99)} ms, {verdict}",
                highlight=False,
            )

    metrics: LoadMetrics | None = None
    server: MetricsServer | None = None
    if args.metrics_listen is not None:
        metrics = LoadMetrics()
        try:
            server = serve_metrics(metrics, *args.metrics_listen)
        except OSError as exc:
            err.print(f"{PROG}: error: cannot serve metrics: {exc}", style="bold red")
            return exit_codes.USAGE
        if not args.quiet:
            err.print(
                f"{PROG}: metrics on http://{format_address(args.metrics_listen[0], server.port)}"
                "/metrics",
                style="dim",
                highlight=False,
            )
    installed = install_signals(loop, on_signal)
    result: LoadReport | CapacityReport
    try:
        if plan.live:
            live = Live(view, console=err, auto_refresh=False, transient=True)
            live.start()
        try:
            if args.find_capacity:
                result = await find_capacity(
                    args.host,
                    args.port,
                    mode="rate" if plan.mode == "rate" else "concurrency",
                    start=plan.level,
                    max_level=args.max_level,
                    factor=args.factor,
                    step_duration=args.step_duration,
                    p99_bound_ms=args.p99_bound,
                    max_error_ratio=args.max_error_ratio,
                    repeat=args.repeat,
                    arrivals=args.arrivals,
                    timeouts=plan.timeouts,
                    calling_ae=args.calling_ae,
                    called_ae=args.called_ae,
                    source_addresses=plan.sources or None,
                    tls=plan.tls,
                    tick=min(args.interval, 0.5),
                    seed=args.seed,
                    on_tick=on_tick,
                    on_step=on_step,
                    stop=stop,
                )
            else:
                result = await run_load(
                    args.host,
                    args.port,
                    concurrency=args.concurrency,
                    rate=args.rate,
                    arrivals=args.arrivals,
                    repeat=args.repeat,
                    associations=args.associations,
                    duration=args.duration,
                    ramp=plan.ramp,
                    warmup=args.warmup,
                    timeouts=plan.timeouts,
                    calling_ae=args.calling_ae,
                    called_ae=args.called_ae,
                    max_pdu=args.max_pdu,
                    source_addresses=plan.sources or None,
                    tls=plan.tls,
                    max_in_flight=args.max_in_flight,
                    tick=args.interval,
                    drain_timeout=args.drain,
                    seed=args.seed,
                    on_tick=on_tick,
                    stop=stop,
                    workers=args.workers,
                    start_at=args.start_at,
                    metrics=metrics,
                )
        finally:
            if live is not None:
                live.stop()
        code = finish(args, plan, result, signals[0] if signals else None)
        if server is not None and args.metrics_linger > 0 and not stop.is_set():
            # The last figures stay up for Prometheus's next scrape (Ctrl-C ends the wait).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.metrics_linger):
                    await stop.wait()
        return code
    except ProbeError as exc:  # the host does not resolve, TLS cannot be set up
        err.print(f"{PROG}: error: {exc}", style="bold red")
        return exit_codes.USAGE
    except ValueError as exc:  # arguments the library refused
        err.print(f"{PROG}: error: {exc}", style="bold red")
        return exit_codes.USAGE
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if server is not None:
            server.close()


def finish(
    args: argparse.Namespace,
    plan: Plan,
    result: LoadReport | CapacityReport,
    signum: int | None,
) -> int:
    """Print the summary, write the files, decide the exit code."""
    if not args.quiet:
        if isinstance(result, CapacityReport):
            render_capacity_summary(result, plan.out)
        else:
            render_load_summary(result, plan.out)
    code = exit_code(result, signum)
    for path, writer, what in ((args.json, write_json, "JSON"), (args.report, write_html, "HTML")):
        if path is None:
            continue
        try:
            writer(result, path)
        except OSError as exc:
            plan.err.print(f"{PROG}: error: cannot write {what} to {path}: {exc}", style="red")
            code = exit_codes.USAGE
        else:
            if not args.quiet:
                plan.err.print(f"{PROG}: {what} written to {path}", style="dim", highlight=False)
    return code


def exit_code(result: LoadReport | CapacityReport, signum: int | None = None) -> int:
    if signum is not None:
        return SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum)
    if isinstance(result, CapacityReport):
        internal = any(Outcome.INTERNAL_ERROR in s.outcomes for s in result.steps)
        if internal:
            return exit_codes.INTERNAL
        return exit_codes.OK if result.found else exit_codes.SOME_FAILED
    if result.outcomes.get(Outcome.INTERNAL_ERROR):
        return exit_codes.INTERNAL
    return exit_codes.OK if result.ok else exit_codes.SOME_FAILED


def run(args: argparse.Namespace) -> int:
    """The `load` subcommand: returns the exit code."""
    try:
        plan = make_plan(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    setup_logging(plan.err, plan.live, PROG)
    try:
        with new_runner() as runner:
            return runner.run(load_main(args, plan))
    except KeyboardInterrupt:  # Ctrl-C before our handler was installed
        return exit_codes.INTERRUPTED


__all__ = ["LiveView", "Plan", "exit_code", "load_main", "make_plan", "register", "run"]
