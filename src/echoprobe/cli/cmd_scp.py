"""`echoprobe scp`: a fast, scriptable Verification SCP with fault injection.

    echoprobe scp --listen 127.0.0.1:11112
    echoprobe scp --listen 127.0.1.1-127.0.1.250:11112 --ae PACS --status 0x0110
    echoprobe scp --listen [::1]:11112 --fault "ae=BROKEN;abort-at=echo" --duration 60

It prints its listening addresses at start and its counters when it stops: after
`--duration` seconds (exit 0), or on SIGINT (exit 130) / SIGTERM (exit 143); open associations
are aborted (A-ABORT) and every connection closed. A usage error or an address that cannot be
bound exits 2. The loop is uvloop's when it is installed.

Fault options set the faults of every address; `--fault SELECTOR;KEY=VALUE;...` sets them for
one address (`addr=HOST[:PORT]`) or one called AE title (`ae=NAME`), with the same keys as the
options (`reject=1,1,7`, `abort-at=echo`, `delay=echo=2`, `status=0x0110`, `no-release-response`).

`+tls KEY CERT` makes every listener DICOM over TLS, with DCMTK's option names (`cli.tls_options`,
acceptor role): `+cf`/`+cd` trust anchors for client certificates, `+crl`/`+crv`/`+cra`,
`-pem`/`-der`, `+pw`/`-pw`, the profiles and `+cs`; `-rc` requires a client certificate (the
default, as DCMTK's `storescp`), `-vc` verifies one only when it is presented, `-ic` ignores it.
A key or certificate that does not load is a usage error (exit 2), reported before listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from echoprobe.cli import exit_codes
from echoprobe.cli.tls_options import Role, add_tls_options, tls_config
from echoprobe.errors import TLSConfigError
from echoprobe.net.addresses import format_address
from echoprobe.net.server import PHASES, AddressKey, EchoSCP, Faults

if TYPE_CHECKING:
    from echoprobe.net.tls import TLSConfig

DEFAULT_LISTEN = "127.0.0.1:11112"
MAX_ADDRESSES = 65536  # listeners one command may open (each is a file descriptor)
_SHOWN_ADDRESSES = 8  # addresses printed one per line; beyond, a summary line


class SpecError(ValueError):
    """A malformed --listen / fault specification (a usage error)."""


# --------------------------------------------------------------------------- specifications


def _port_range(text: str) -> list[int]:
    first, sep, last = text.partition("-")
    try:
        low = int(first)
        high = int(last) if sep else low
    except ValueError:
        raise SpecError(f"bad port {text!r}") from None
    if not (0 <= low <= 65535 and 0 <= high <= 65535 and low <= high):
        raise SpecError(f"bad port range {text!r} (0..65535, first ≤ last)")
    return list(range(low, high + 1))


def _host_range(text: str) -> list[str]:
    """`HOST`, or an IPv4 range `A.B.C.D-A.B.C.E` (or the short `A.B.C.D-E`)."""
    if "-" not in text or ":" in text:
        return [text]
    first, last = text.split("-", 1)
    if "." not in last:
        last = first.rsplit(".", 1)[0] + "." + last
    try:
        low = ipaddress.IPv4Address(first)
        high = ipaddress.IPv4Address(last)
    except ValueError:
        raise SpecError(f"bad address range {text!r} (IPv4 FIRST-LAST)") from None
    if high < low:
        raise SpecError(f"address range {text!r} ends before it starts")
    if int(high) - int(low) >= MAX_ADDRESSES:
        raise SpecError(f"address range {text!r} is larger than {MAX_ADDRESSES}")
    return [str(ipaddress.IPv4Address(n)) for n in range(int(low), int(high) + 1)]


def parse_listen(spec: str) -> list[tuple[str, int]]:
    """`HOST:PORT`, `[IPV6]:PORT`, `FIRST-LAST:PORT` (IPv4 range), `HOST:P1-P2`, or `PORT`
    alone (on 127.0.0.1) → the (host, port) pairs it names, in order."""
    spec = spec.strip()
    if not spec:
        raise SpecError("empty --listen address")
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise SpecError(f"bad address {spec!r}: use [IPV6]:PORT")
        hosts, port_text = [host], rest[1:]
    elif ":" not in spec:
        hosts, port_text = ["127.0.0.1"], spec
    elif spec.count(":") > 1:
        raise SpecError(f"bad address {spec!r}: put IPv6 addresses in brackets, [::1]:11112")
    else:
        host, port_text = spec.rsplit(":", 1)
        hosts = _host_range(host)
    ports = _port_range(port_text)
    pairs = [(h, p) for h in hosts for p in ports]
    if len(pairs) > MAX_ADDRESSES:
        raise SpecError(f"{spec!r} names more than {MAX_ADDRESSES} addresses")
    return pairs


def _phase(text: str) -> str:
    if text not in PHASES:
        raise SpecError(f"unknown phase {text!r} (one of {', '.join(PHASES)})")
    return text


def _bytes_tuple(text: str, count: int, what: str) -> tuple[int, ...]:
    parts = text.split(",")
    try:
        values = tuple(int(p, 0) for p in parts)
    except ValueError:
        raise SpecError(f"bad {what} {text!r}") from None
    if len(values) != count or not all(0 <= v <= 255 for v in values):
        raise SpecError(f"bad {what} {text!r}: {count} numbers 0..255, comma-separated")
    return values


def _seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"bad {what} {text!r} (seconds)") from None
    if not (value >= 0 and value < 1e6):
        raise SpecError(f"bad {what} {text!r} (seconds, ≥ 0)")
    return value


def _status(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise SpecError(f"bad status {text!r} (e.g. 0x0110)") from None
    if not 0 <= value <= 0xFFFF:
        raise SpecError(f"bad status {text!r} (0x0000..0xFFFF)")
    return value


@dataclass(slots=True)
class FaultSpec:
    """Fault settings as given on the command line, before they become a `Faults`."""

    values: dict[str, Any] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)

    def set(self, key: str, value: str | None) -> None:
        """One `KEY[=VALUE]` of the option set (the long option name without the dashes)."""
        flags = {
            "no-release-response": "no_release_response",
            "release-collision": "release_collision",
            "reject-contexts": "reject_contexts",
        }
        if key in flags:
            if value not in (None, "", "1", "true", "yes"):
                raise SpecError(f"{key} takes no value")
            self.values[flags[key]] = True
            return
        if value is None:
            raise SpecError(f"{key} needs a value ({key}=...)")
        if key == "reject":
            self.values["reject"] = _bytes_tuple(value, 3, "reject (RESULT,SOURCE,REASON)")
        elif key in ("abort-at", "close-at", "silent-at"):
            self.values[key.replace("-", "_")] = _phase(value)
        elif key == "abort-with":
            source, reason = _bytes_tuple(value, 2, "abort-with (SOURCE,REASON)")
            self.values["abort_source"], self.values["abort_reason"] = source, reason
        elif key == "delay":
            phase, sep, seconds = value.partition("=")
            if not sep:
                raise SpecError(f"bad delay {value!r}: use PHASE=SECONDS")
            self.delay[_phase(phase)] = _seconds(seconds, "delay")
        elif key == "trickle":
            self.values["trickle"] = _seconds(value, "trickle")
        elif key == "status":
            self.values["status"] = _status(value)
        elif key == "error-comment":
            if len(value) > 64:
                raise SpecError("error-comment is at most 64 characters (LO)")
            self.values["error_comment"] = value
        else:
            raise SpecError(f"unknown fault {key!r}")

    def build(self) -> Faults:
        try:
            return Faults(delay=dict(self.delay), **self.values)
        except ValueError as exc:
            raise SpecError(str(exc)) from exc


def parse_fault(spec: str) -> tuple[str, str, Faults]:
    """`ae=NAME;KEY=VALUE;...` or `addr=HOST[:PORT];KEY=VALUE;...` → (kind, key, faults)."""
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        raise SpecError("empty --fault")
    kind, sep, where = parts[0].partition("=")
    if kind not in ("ae", "addr") or not sep or not where:
        raise SpecError(f"bad --fault {spec!r}: start with ae=NAME or addr=HOST[:PORT]")
    faults = FaultSpec()
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        faults.set(key.strip(), value if sep else None)
    return kind, where, faults.build()


def _address_key(where: str) -> AddressKey:
    if where.startswith("[") or (where.count(":") == 1):
        pairs = parse_listen(where)
        if len(pairs) != 1:
            raise SpecError(f"--fault addr= takes one address, not {where!r}")
        return pairs[0]
    return where  # a host alone: every port


def _listened(key: AddressKey, listen: Sequence[tuple[str, int]]) -> bool:
    """Whether a fault's address names a listening address (a fault for any other would be
    accepted and never applied)."""
    host, port = (key, None) if isinstance(key, str) else key
    wanted = _same_host(host)
    return any(_same_host(h) == wanted and (port in (None, 0) or p in (0, port)) for h, p in listen)


def _same_host(host: str) -> str:
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


# --------------------------------------------------------------------------------- parser


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scp",
        prefix_chars="-+",  # DCMTK's TLS options start with "+"
        help="run a test Verification SCP, with fault injection",
        description="A fast Verification (C-ECHO) SCP for tests and benchmarks, listening on "
        "one or many addresses, able to misbehave on purpose.",
        epilog="Phases: connect (right after the TCP accept), associate (on the "
        "A-ASSOCIATE-RQ), echo (on each C-ECHO-RQ), release (on the A-RELEASE-RQ). "
        "Exit: 0 after --duration, 130 on SIGINT, 143 on SIGTERM, 2 on usage errors or "
        "when an address cannot be bound.",
    )
    p.add_argument(
        "--listen",
        action="append",
        metavar="ADDR",
        help="HOST:PORT, [IPV6]:PORT, an IPv4 range FIRST-LAST:PORT (127.0.1.1-127.0.1.250:104), "
        f"or HOST:PORT1-PORT2; repeatable (default {DEFAULT_LISTEN}); port 0 = one free port "
        "shared by every address",
    )
    p.add_argument(
        "--ae",
        action="append",
        default=[],
        metavar="NAME",
        help="called AE title to answer to (repeatable; default: any). Others are rejected "
        "(1,1,7 called-AE-title-not-recognized)",
    )
    p.add_argument(
        "--calling-ae",
        action="append",
        default=[],
        metavar="NAME",
        help="calling AE title to accept (repeatable; default: any). Others are rejected "
        "(1,1,3 calling-AE-title-not-recognized)",
    )
    p.add_argument(
        "--transfer-syntax",
        action="append",
        default=[],
        metavar="UID",
        help="transfer syntax to accept, in order of preference (repeatable; default: "
        "Implicit VR LE, Explicit VR LE, Explicit VR BE)",
    )
    p.add_argument("--max-pdu", type=int, default=16384, metavar="BYTES",
                   help="Maximum Length we receive (default 16384; 0 = no limit)")  # fmt: skip
    p.add_argument(
        "--max-associations",
        type=int,
        metavar="N",
        help="established associations at once; beyond, A-ASSOCIATE-RJ 2,3,2 (transient, "
        "local-limit-exceeded)",
    )
    p.add_argument("--idle-timeout", type=float, default=30.0, metavar="S",
                   help="close a connection idle this long (default 30)")  # fmt: skip
    p.add_argument("--artim-timeout", type=float, default=5.0, metavar="S",
                   help="ARTIM timer (default 5)")  # fmt: skip
    h = p.add_argument_group("bounds a client cannot stretch")
    h.add_argument("--pdu-timeout", type=float, default=10.0, metavar="S",
                   help="a PDU must be whole S s after its first byte (default 10)")  # fmt: skip
    h.add_argument("--max-lifetime", type=float, default=600.0, metavar="S",
                   help="close any connection older than S s (default 600; 0 = none)")  # fmt: skip
    h.add_argument("--reclaim-idle", type=float, default=0.5, metavar="S",
                   help="when every --max-associations slot is taken, abort the association "
                   "quiet longest, no whole PDU for S s (default 0.5; -1: never)")  # fmt: skip
    h.add_argument("--admission-wait", type=float, default=0.0, metavar="S",
                   help="a request finding every --max-associations slot taken waits up to S "
                   "s for one, then A-ASSOCIATE-RJ 2,3,2 (default 0: at once)")  # fmt: skip
    h.add_argument("--max-pending-bytes", type=int, default=16 << 20, metavar="BYTES",
                   help="unfinished requests of connections not yet associated may hold this "
                   "much together (default 16 MiB)")  # fmt: skip
    p.add_argument("--duration", type=float, metavar="S", help="stop by itself after S seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the counters at exit")

    f = p.add_argument_group("fault injection (every address; see --fault for one)")
    f.add_argument("--reject", metavar="R,S,REASON",
                   help="A-ASSOCIATE-RJ result,source,reason (e.g. 1,1,7 or 2,3,2)")  # fmt: skip
    f.add_argument("--abort-at", metavar="PHASE", help="send A-ABORT instead of answering")
    f.add_argument("--abort-with", metavar="SOURCE,REASON",
                   help="the A-ABORT's source and reason (default 0,0)")  # fmt: skip
    f.add_argument("--close-at", metavar="PHASE", help="close TCP instead of answering")
    f.add_argument("--silent-at", metavar="PHASE", help="from PHASE on, never answer")
    f.add_argument("--delay", action="append", default=[], metavar="PHASE=S",
                   help="wait S seconds before answering in PHASE (repeatable)")  # fmt: skip
    f.add_argument("--trickle", metavar="S", help="send answers one byte every S seconds")
    f.add_argument("--status", metavar="0xNNNN", help="C-ECHO-RSP status (default 0x0000)")
    f.add_argument("--error-comment", metavar="TEXT", help="C-ECHO-RSP Error Comment")
    f.add_argument("--no-release-response", action="store_true",
                   help="never answer the A-RELEASE-RQ")  # fmt: skip
    f.add_argument("--release-collision", action="store_true",
                   help="answer A-RELEASE-RQ with our own A-RELEASE-RQ first")  # fmt: skip
    f.add_argument("--reject-contexts", action="store_true",
                   help="accept the association, reject every presentation context")  # fmt: skip
    f.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help='faults for one address or called AE: "addr=127.0.1.5:104;reject=1,1,7" or '
        '"ae=BROKEN;status=0x0110;error-comment=Disk full" (repeatable)',
    )
    add_tls_options(p, Role.ACCEPTOR)
    p.set_defaults(func=run)


@dataclass(slots=True)
class SCPConfig:
    listen: list[tuple[str, int]]
    faults: Faults
    faults_by_address: dict[AddressKey, Faults]
    faults_by_ae: dict[str, Faults]
    options: dict[str, Any]


def build_config(args: argparse.Namespace) -> SCPConfig:
    """The EchoSCP settings the arguments describe; raises SpecError on a usage error."""
    listen: list[tuple[str, int]] = []
    for spec in args.listen or [DEFAULT_LISTEN]:
        listen.extend(parse_listen(spec))
    if len(listen) > MAX_ADDRESSES:
        raise SpecError(f"more than {MAX_ADDRESSES} addresses")
    if len(set(listen)) != len(listen):
        raise SpecError("an address is given twice")
    spec = FaultSpec()
    for key in ("reject", "abort-at", "abort-with", "close-at", "silent-at", "trickle",
                "status", "error-comment"):  # fmt: skip
        value = getattr(args, key.replace("-", "_"))
        if value is not None:
            spec.set(key, value)
    for key in ("no-release-response", "release-collision", "reject-contexts"):
        if getattr(args, key.replace("-", "_")):
            spec.set(key, None)
    for item in args.delay:
        spec.set("delay", item)
    by_address: dict[AddressKey, Faults] = {}
    by_ae: dict[str, Faults] = {}
    for item in args.fault:
        kind, where, faults = parse_fault(item)
        if kind == "ae":
            by_ae[where] = faults
        else:
            address = _address_key(where)
            if not _listened(address, listen):
                raise SpecError(
                    f"--fault addr={where}: this SCP does not listen there (see --listen)"
                )
            by_address[address] = faults
    if args.max_pdu < 0 or args.max_pdu > 0xFFFFFFFF:
        raise SpecError("--max-pdu must be 0..4294967295")
    if args.max_associations is not None and args.max_associations < 0:
        raise SpecError("--max-associations must be ≥ 0")
    if args.duration is not None and not args.duration > 0:
        raise SpecError("--duration must be positive")
    for name in ("idle_timeout", "artim_timeout", "pdu_timeout"):
        if not getattr(args, name) > 0:
            raise SpecError(f"--{name.replace('_', '-')} must be positive")
    if not args.max_lifetime >= 0:
        raise SpecError("--max-lifetime must be ≥ 0 (0 = no bound)")
    if args.max_pending_bytes < 0:
        raise SpecError("--max-pending-bytes must be ≥ 0")
    if not 0 <= args.admission_wait < math.inf:
        raise SpecError("--admission-wait must be a number of seconds ≥ 0")
    tls = tls_config(args, fail=SpecError) if hasattr(args, "enable_tls") else None
    return SCPConfig(
        listen=listen,
        faults=spec.build(),
        faults_by_address=by_address,
        faults_by_ae=by_ae,
        options={
            "ae_titles": args.ae,
            "calling_ae_titles": args.calling_ae,
            "transfer_syntaxes": args.transfer_syntax or None,
            "max_pdu": args.max_pdu,
            "max_associations": args.max_associations,
            "idle_timeout": args.idle_timeout,
            "artim_timeout": args.artim_timeout,
            "pdu_timeout": args.pdu_timeout,
            "max_lifetime": args.max_lifetime or None,
            "reclaim_idle": None if args.reclaim_idle < 0 else args.reclaim_idle,
            "max_pending_bytes": args.max_pending_bytes,
            "admission_wait": args.admission_wait,
            "tls": tls,
        },
    )


# ------------------------------------------------------------------------------------ run


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (measured 3-4x the default here), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional, and only the commands that serve need it
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except SpecError as exc:
        print(f"echoprobe scp: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(serve(config, duration=args.duration, quiet=args.quiet))


def _describe_tls(tls: TLSConfig) -> str:
    """One line on the TLS settings: profile and what is asked of client certificates."""
    wanted = {"require": "required", "check": "verified if presented", "ignore": "not verified"}
    return f"profile {tls.profile.value}, client certificate {wanted[tls.verify_peer.value]}"


def _print_addresses(scp: EchoSCP, out: TextIO) -> None:
    lines = scp.describe()
    if len(lines) <= _SHOWN_ADDRESSES:
        for line in lines:
            print(f"listening on {line}", file=out)
    else:
        first = format_address(*scp.addresses[0])
        last = format_address(*scp.addresses[-1])
        print(f"listening on {len(lines)} addresses: {first} … {last}", file=out)
        special = [line for line in lines if "[faults:" in line]
        for line in special[:_SHOWN_ADDRESSES]:
            print(f"  {line}", file=out)
        if len(special) > _SHOWN_ADDRESSES:
            print(f"  … and {len(special) - _SHOWN_ADDRESSES} more with faults", file=out)


async def serve(
    config: SCPConfig,
    *,
    duration: float | None = None,
    quiet: bool = False,
    out: TextIO | None = None,
    on_ready: Callable[[EchoSCP], None] | None = None,
) -> int:
    """Run the SCP until `duration` passes or SIGINT/SIGTERM; print what happened."""
    out = out or sys.stdout
    try:
        scp = EchoSCP(
            listen=config.listen,
            faults=config.faults,
            faults_by_address=config.faults_by_address,
            faults_by_ae=config.faults_by_ae,
            **config.options,
        )
    except TLSConfigError as exc:  # the key or a certificate does not load
        details = "".join(f"\n  {text}" for _, text in exc.details)
        print(f"echoprobe scp: error: TLS: {exc.condition}{details}", file=sys.stderr)
        return exit_codes.USAGE
    try:
        await scp.start()
    except OSError as exc:
        print(f"echoprobe scp: error: cannot listen: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        if not quiet:
            _print_addresses(scp, out)
            if not config.faults.healthy:
                print(f"faults: {config.faults.describe()}", file=out)
            for name, faults in config.faults_by_ae.items():
                print(f"faults for called AE {name}: {faults.describe()}", file=out)
            tls = config.options.get("tls")
            if tls is not None:
                print(f"TLS: {_describe_tls(tls)}", file=out)
            titles = ", ".join(config.options["ae_titles"]) or "any"
            print(f"AE titles: {titles}; stop with Ctrl-C", file=out)
        out.flush()
        if on_ready is not None:
            on_ready(scp)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await scp.close()
    why = (
        f"stopped by {signal.Signals(received[0]).name}"
        if received
        else f"stopped after {duration:g} s"
    )
    print(f"{why}; counters: {scp.counters.summary()}", file=out)
    out.flush()
    if not received:
        return exit_codes.OK
    return exit_codes.INTERRUPTED if received[0] == signal.SIGINT else exit_codes.TERMINATED


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m echoprobe.cli.cmd_scp ...` (the same as `echoprobe scp ...`)."""
    parser = argparse.ArgumentParser(prog="echoprobe")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scp", *(argv if argv is not None else sys.argv[1:])])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
