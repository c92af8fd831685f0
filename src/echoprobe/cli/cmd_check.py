"""`echoprobe check` and `check_dicom`: a C-ECHO monitoring plugin (Nagios, Icinga, Checkmk,
Zabbix), following the Monitoring Plugins Development Guidelines with `check_tcp` as the
reference for behaviour and wording.

    check_dicom -H pacs.example -p 104 -aec PACS -w 1 -c 3
    echoprobe check --targets fleet.csv --format checkmk

Rules:
- Exit codes are the state: 0 OK, 1 WARNING (answered, slower than -w), 2 CRITICAL (any
  failure, slower than -c), 3 UNKNOWN (bad usage, an internal error). `--format checkmk`,
  `zabbix-lld` and `json` carry the states in their document and exit 0 once it is printed
  (3 on bad usage), since their consumers read the document, not the exit code.
- Bad usage is one line on stdout, `DICOM UNKNOWN - <reason>`, exit 3: argparse's usage text
  and exit code 2 must never reach a monitoring system. `-h` and `-V` exit 3, as
  monitoring-plugins 2.3's `check_tcp` does.
- The whole check is bounded by `-t` (see `monitoring.plugin.runner`); a watchdog thread
  started before any I/O ends the process `HARD_GRACE` seconds past `-t` whatever the event
  loop is doing (a hung resolver thread, a bug): it prints `check_tcp`'s alarm line, "Socket
  timeout after N seconds", as CRITICAL, unless the report is already out.
- `-aet`, `-aec`, `-pdu` and the TLS options are `echoscu`'s spellings, shared with
  `echoprobe sweep` through `cli/common.py`; the fleet options are `sweep`'s names
  (`--concurrency`, `--per-host`, `--rate`, `--dns-concurrency`), long forms only, since
  `-c` is the critical threshold here.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn

from echoprobe import __version__
from echoprobe.cli.common import (
    UsageError,
    add_association_options,
    add_tls_options,
    new_runner,
    non_negative_int,
    port,
    positive_float,
    positive_int,
    tls_config,
)
from echoprobe.cli.process_exit import exit_now
from echoprobe.errors import TLSConfigError
from echoprobe.fleet.sweep import DEFAULT_CONCURRENCY
from echoprobe.fleet.targets import FORMATS as TARGET_FORMATS
from echoprobe.fleet.targets import TargetFileError, TargetItem, load_targets
from echoprobe.monitoring.plugin import formats
from echoprobe.monitoring.plugin.fleet import summarize
from echoprobe.monitoring.plugin.policy import OutcomePolicy, parse_outcomes
from echoprobe.monitoring.plugin.ranges import Range, RangeError, Thresholds, parse_range
from echoprobe.monitoring.plugin.runner import (
    GUARD_GRACE,
    Association,
    Budget,
    Politeness,
    check_fleet,
    check_peer,
)
from echoprobe.monitoring.plugin.single import Judgement, judge, seconds_text
from echoprobe.monitoring.plugin.states import State
from echoprobe.results import Outcome

if TYPE_CHECKING:
    from echoprobe.net.tls import TLSConfig

PLUGIN_PROG: Final = "check_dicom"
HARD_GRACE: Final = GUARD_GRACE + 1.0  # seconds past -t before the watchdog ends the process
DEFAULT_TIMEOUT: Final = 10.0  # check_tcp's default

EPILOG = f"""\
thresholds (-w, -c, --failing-warn, --failing-crit) use the Monitoring Plugins range syntax:
  10      alert if the value is < 0 or > 10        10:     alert if < 10
  ~:10    alert if > 10                            10:20   alert if < 10 or > 20
  @10:20  alert if 10 <= value <= 20

outcome states (default; change with --ok-on/--warn-on/--crit-on/--unknown-on, --refuse):
  success                                OK (then -w / -c on the response time)
  release_timeout, release_failed        WARNING (every C-ECHO was answered)
  invalid_target, not_started,
  internal_error                         UNKNOWN
  anything else (refused, dns_error, timeouts, rejected, aborted,
  echo_failed_status, protocol_error, tls_*)  CRITICAL

exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad usage too); --format checkmk,
zabbix-lld and json exit 0 once their document is printed.
default timeout {seconds_text(DEFAULT_TIMEOUT)} s for the whole check (-t).
"""


class PluginUsageError(Exception):
    """Bad usage: reported as `DICOM UNKNOWN - <reason>`, exit 3."""


class PluginArgumentParser(argparse.ArgumentParser):
    """argparse, but an error is an exception (reported the plugin's way), never usage text
    on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise PluginUsageError(message)


# --- the parser ------------------------------------------------------------------------------


def _range(text: str) -> Range:
    try:
        return parse_range(text)
    except RangeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _outcomes(text: str) -> frozenset[Outcome]:
    try:
        return parse_outcomes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _refuse_state(text: str) -> State:
    try:
        state = State.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if state is State.UNKNOWN:
        raise argparse.ArgumentTypeError("--refuse takes ok, warn or crit")
    return state


_SECONDS = positive_float("a number of seconds")


def _cert_days(text: str) -> Thresholds:
    """`-D WARN[,CRIT]` as check_tcp: minimum days of validity left (CRIT defaults to 0),
    i.e. the ranges `WARN:` and `CRIT:` on the days left."""
    warn_text, _, crit_text = text.partition(",")
    try:
        warn = float(warn_text)
        crit = float(crit_text) if crit_text else 0.0
        return Thresholds(parse_range(f"{warn:g}:"), parse_range(f"{crit:g}:"))
    except (ValueError, RangeError):
        raise argparse.ArgumentTypeError(f"not WARN[,CRIT] days: {text!r} (e.g. 30,7)") from None


def build_parser(prog: str) -> PluginArgumentParser:
    p = PluginArgumentParser(
        prog=prog,
        description="Check a DICOM peer (or an inventory of peers) with C-ECHO, as a "
        "Nagios/Icinga/Checkmk/Zabbix plugin.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,
        prefix_chars="-+",  # echoscu's TLS options start with "+"
    )
    g = p.add_argument_group("plugin")
    g.add_argument("-h", "--help", action="store_true", help="print this help (exit 3)")
    g.add_argument("-V", "--version", action="store_true", help="print the version (exit 3)")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail in the long output (-v: timings, negotiation, OK peers; -vv: more)",
    )
    g.add_argument("-H", "--hostname", metavar="HOST", help="the peer: IPv4, IPv6 or a name")
    g.add_argument(
        "-p", "--port", type=port, default=104, metavar="PORT", help="its port (default 104)"
    )
    family = g.add_mutually_exclusive_group()
    family.add_argument("-4", "--use-ipv4", action="store_true", help="connect over IPv4 only")
    family.add_argument("-6", "--use-ipv6", action="store_true", help="connect over IPv6 only")
    g.add_argument(
        "-t",
        "--timeout",
        type=_SECONDS,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"the whole check's deadline (default {seconds_text(DEFAULT_TIMEOUT)})",
    )
    g.add_argument(
        "-w", "--warning", type=_range, metavar="RANGE", help="response time (s) for WARNING"
    )
    g.add_argument(
        "-c", "--critical", type=_range, metavar="RANGE", help="response time (s) for CRITICAL"
    )
    g.add_argument(
        "--format",
        choices=formats.FORMATS,
        default="nagios",
        help="nagios (default), checkmk (local check), zabbix-lld, json",
    )
    g.add_argument(
        "--service-prefix",
        default="DICOM ",
        metavar="TEXT",
        help="Checkmk service names: TEXT + the peer's name or target (default 'DICOM ')",
    )
    a = add_association_options(
        p, called_help="called AE title (default ANY-SCP; inventory rows may name their own)"
    )
    a.add_argument(
        "--repeat", type=positive_int, default=1, metavar="N", help="C-ECHOs per association"
    )
    a.add_argument(
        "--release-timeout",
        type=_SECONDS,
        metavar="SECONDS",
        help="wait at most this for the A-RELEASE-RP (default: what is left of the deadline)",
    )
    add_tls_options(p)
    p.add_argument(
        "-D",
        "--certificate",
        type=_cert_days,
        metavar="WARN[,CRIT]",
        help="with TLS: days the peer's certificate must still be valid for OK / not CRITICAL "
        "(CRIT default 0), as check_tcp",
    )
    s = p.add_argument_group("outcome states")
    for option, state in (
        ("--ok-on", "OK"),
        ("--warn-on", "WARNING"),
        ("--crit-on", "CRITICAL"),
        ("--unknown-on", "UNKNOWN"),
    ):
        s.add_argument(
            option,
            type=_outcomes,
            action="append",
            default=[],
            metavar="OUTCOMES",
            help=f"comma-separated outcomes that give {state}",
        )
    s.add_argument(
        "-r",
        "--refuse",
        type=_refuse_state,
        metavar="ok|warn|crit",
        help="state for a refused connection (default crit), as check_tcp",
    )
    f = p.add_argument_group("many peers (the sweep inventory)")
    f.add_argument(
        "--targets",
        dest="target_files",
        action="append",
        default=[],
        metavar="FILE",
        help="check every peer of FILE (CSV, JSON Lines, YAML or lines; '-' for stdin)",
    )
    f.add_argument("--targets-format", choices=TARGET_FORMATS, default="auto")
    f.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"associations at once (default {DEFAULT_CONCURRENCY})",
    )
    f.add_argument(
        "--per-host",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="associations at once per peer address (default 1; 0 = no limit)",
    )
    f.add_argument(
        "--rate", type=positive_float("a rate"), metavar="R", help="associations started per second"
    )
    f.add_argument("--dns-concurrency", type=positive_int, default=32, metavar="N")
    f.add_argument(
        "--peer-timeout",
        type=_SECONDS,
        metavar="SECONDS",
        help="one peer's deadline (default: -t; the check still ends by -t)",
    )
    f.add_argument(
        "--tls-all",
        action="store_true",
        help="TLS for every peer (default: rows whose tls column says so)",
    )
    f.add_argument(
        "--failing-warn",
        type=_range,
        metavar="RANGE",
        help="WARNING when the number of peers not OK triggers RANGE (default: worst peer)",
    )
    f.add_argument("--failing-crit", type=_range, metavar="RANGE", help="likewise, CRITICAL")
    return p


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    judgement: Judgement
    association: Association
    politeness: Politeness
    failing: Thresholds
    family: int | None
    output: str


def _policy(args: argparse.Namespace) -> OutcomePolicy:
    choices: list[tuple[State, frozenset[Outcome]]] = []
    for state, groups in (
        (State.OK, args.ok_on),
        (State.WARNING, args.warn_on),
        (State.CRITICAL, args.crit_on),
        (State.UNKNOWN, args.unknown_on),
    ):
        choices.extend((state, group) for group in groups)
    if args.refuse is not None:
        choices.append((args.refuse, frozenset({Outcome.CONNECTION_REFUSED})))
    try:
        return OutcomePolicy.build(choices)
    except ValueError as exc:
        raise PluginUsageError(str(exc)) from None


def settings_from(args: argparse.Namespace) -> Settings:
    """Check what argparse cannot (a host or targets, but not both; TLS files)."""
    if args.hostname is None and not args.target_files:
        raise PluginUsageError("no peer: give -H HOST (or --targets FILE)")
    if args.hostname is not None and args.target_files:
        raise PluginUsageError("give either -H HOST or --targets FILE, not both")
    if args.hostname is not None and not args.hostname.strip():
        raise PluginUsageError("-H needs a host name or address")
    if args.format == "zabbix-lld" and not args.target_files:
        raise PluginUsageError("--format zabbix-lld lists an inventory: give --targets FILE")
    peer_timeout = args.peer_timeout or args.timeout
    judgement = Judgement(
        thresholds=Thresholds(args.warning, args.critical),
        policy=_policy(args),
        timeout=min(peer_timeout, args.timeout),
        check_timeout=args.timeout,
        release_timeout=args.release_timeout,
        verbose=args.verbose,
        cert_days=args.certificate,
        now=time.time(),
    )
    family = socket.AF_INET if args.use_ipv4 else socket.AF_INET6 if args.use_ipv6 else None
    return Settings(
        judgement=judgement,
        association=Association(args.calling_ae, args.called_ae, args.max_pdu, args.repeat),
        politeness=Politeness(args.concurrency, args.per_host, args.rate, args.dns_concurrency),
        failing=Thresholds(args.failing_warn, args.failing_crit),
        family=family,
        output=args.format,
    )


# --- the watchdog ----------------------------------------------------------------------------


class Reporter:
    """Writes the report once; the watchdog checks whether it did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.code: int | None = None

    def emit(self, text: str, code: int) -> int:
        with self._lock:
            if self.code is None:
                sys.stdout.write(text)
                sys.stdout.flush()
                self.code = code
            return self.code

    def watch(self, seconds: float, timeout: float) -> threading.Timer:
        """End the process `seconds` from now: with the report's code when it is out, else
        with check_tcp's alarm line as CRITICAL."""

        def fire() -> None:
            # os._exit: the main thread may be stuck where no exception reaches it.
            if self._lock.acquire(timeout=1.0) and self.code is None:
                line = formats.status_line(
                    State.CRITICAL, f"Socket timeout after {seconds_text(timeout)} seconds"
                )
                os.write(1, f"{line}\n".encode())
                os._exit(int(State.CRITICAL))
            os._exit(self.code if self.code is not None else int(State.CRITICAL))

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        timer.start()
        return timer


# --- running ---------------------------------------------------------------------------------


def _usage(reporter: Reporter, message: str, prog: str) -> int:
    text = formats.status_line(State.UNKNOWN, message)
    return reporter.emit(f"{text}\nUsage: see '{prog} --help'\n", int(State.UNKNOWN))


def _load(args: argparse.Namespace) -> list[TargetItem]:
    items: list[TargetItem] = []
    for path in args.target_files:
        try:
            stream = sys.stdin if path == "-" else None
            items.extend(load_targets(path, args.targets_format, stream=stream))
        except TargetFileError as exc:
            raise PluginUsageError(str(exc)) from None
    return items


def _exit_code(settings: Settings, state: State) -> int:
    return int(state) if settings.output == "nagios" else int(State.OK)


def run_check(argv: Sequence[str], prog: str) -> int:
    """Parse, check, print; returns the exit code."""
    reporter = Reporter()
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(argv))
        if args.help:
            return reporter.emit(parser.format_help(), int(State.UNKNOWN))
        if args.version:
            text = f"{prog} v{__version__} (echoprobe {__version__})\n"
            return reporter.emit(text, int(State.UNKNOWN))
        settings = settings_from(args)
        tls = tls_config(args)
        if args.certificate is not None and tls is None:
            raise PluginUsageError("-D needs TLS: +tls KEY CERT or +tla")
        if tls is not None:
            tls.client_context()  # load keys and certificates now: a bad file is bad usage
        items = _load(args) if args.target_files else None
    except (PluginUsageError, UsageError) as exc:
        return _usage(reporter, str(exc), prog)
    except TLSConfigError as exc:
        return _usage(reporter, f"cannot set up TLS: {exc.condition}", prog)
    if settings.output == "zabbix-lld" and items is not None:  # settings_from() wants both
        document, invalid = formats.zabbix_lld(items, settings.association.called_ae)
        for item in invalid:
            print(
                f"{prog}: skipping {item.source or ''} {item.text!r}: {item.reason}",
                file=sys.stderr,
            )
        return reporter.emit(document, int(State.OK))
    budget = Budget.start(
        args.timeout, peer_timeout=args.peer_timeout, release_timeout=args.release_timeout
    )
    # Never cancelled: should closing the loop or the interpreter hang after the report (a
    # resolver thread stuck in getaddrinfo), it ends the process with the report's code.
    reporter.watch(args.timeout + HARD_GRACE, args.timeout)
    try:
        with new_runner() as runner:
            text, state = runner.run(_run(args, settings, budget, tls, items))
            # Out before the loop closes: closing waits for the loop's resolver threads.
            return reporter.emit(text, _exit_code(settings, state))
    except Exception as exc:  # a bug of ours: UNKNOWN, never a traceback instead of a status
        message = f"internal error: {type(exc).__name__}: {exc}"
        return reporter.emit(formats.status_line(State.UNKNOWN, message) + "\n", 3)


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    budget: Budget,
    tls: TLSConfig | None,
    items: list[TargetItem] | None,
) -> tuple[str, State]:
    """Run the check; the report in the chosen format and the state."""
    how = settings.judgement
    if items is None:
        result = await check_peer(
            args.hostname.strip(),
            args.port,
            settings.association,
            budget,
            family=settings.family,
            tls=tls,
        )
        peer = judge(result, how)
        if settings.output == "checkmk":
            return formats.checkmk([peer], args.service_prefix), peer.state
        if settings.output == "json":
            elapsed = time.monotonic() - budget.started
            counts = formats.single_counts(peer.state)
            return formats.json_document(peer.state, peer.text, [peer], counts, elapsed), peer.state
        return formats.nagios_peer(peer), peer.state
    run = await check_fleet(
        items,
        settings.association,
        budget,
        settings.politeness,
        family=settings.family,
        tls=tls,
        tls_all=args.tls_all,
    )
    fleet = summarize(
        [judge(r, how) for r in run.results],
        elapsed_s=run.elapsed_s,
        timeout=budget.timeout,
        failing=settings.failing,
        verbose=how.verbose,
        missing=run.missing,
    )
    if settings.output == "checkmk":
        return formats.checkmk(fleet.peers, args.service_prefix), fleet.state
    if settings.output == "json":
        return formats.json_fleet(fleet), fleet.state
    return formats.nagios_fleet(fleet), fleet.state


# --- entry points ----------------------------------------------------------------------------


class _CheckEntry:
    """Stands in the `echoprobe` subcommand table for `check`: it hands the raw arguments to
    the plugin's own parser, so that a usage error is the plugin's UNKNOWN line and never the
    `echoprobe` parser's usage text and exit 2."""

    def __init__(self, prog: str) -> None:
        self.prog = prog

    def parse_known_args(
        self, args: Sequence[str], namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace = namespace if namespace is not None else argparse.Namespace()
        argv = list(args)
        namespace.func = lambda _args: run_check(argv, self.prog)
        return namespace, []


def register(subparsers: Any) -> None:
    """Add `check` to the `echoprobe` parser."""
    listed = subparsers.add_parser(
        "check",
        help="a monitoring plugin (Nagios/Icinga/Checkmk/Zabbix): C-ECHO one peer or a fleet",
        add_help=False,
    )
    subparsers.choices["check"] = _CheckEntry(listed.prog)


def run_plugin() -> None:
    """The `check_dicom` console script. A monitoring server starts one per check, so it ends
    with `os._exit` once its report is flushed (`cli.process_exit`): the interpreter's teardown
    of asyncio, ssl and the rest was about a fifth of a check's CPU."""
    exit_now(run_check(sys.argv[1:], PLUGIN_PROG))
