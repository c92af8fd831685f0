"""What the `echoprobe` subcommands share: argument types, the event loop, signals, logging.

Argument types raise `argparse.ArgumentTypeError`, so a bad value is a usage error (exit 2)
with argparse's own message format.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from echoprobe.cli import tls_options as _tls_options
from echoprobe.cli.tls_options import Role
from echoprobe.fleet.targets import check_ae_title
from echoprobe.options import Timeouts

if TYPE_CHECKING:
    # A type only: rich (~20 ms to import) is loaded by the commands that draw with it, not
    # by check_dicom, which a monitoring server starts for every check.
    from rich.console import Console

    from echoprobe.net.tls import TLSConfig


class UsageError(Exception):
    """A problem with what the user asked for: message on stderr, exit 2."""


def _number(text: str, kind: type[int] | type[float], what: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def positive_int(text: str) -> int:
    value = int(_number(text, int, "an integer"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_number(text, int, "an integer"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def positive_float(what: str = "a number") -> Callable[[str], float]:
    """A type for a finite number > 0; `what` names it in messages ("a number of seconds")."""

    def parse(text: str) -> float:
        value = _number(text, float, what)
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(
                f"must be a positive {what.removeprefix('a ')}: {text!r}"
            )
        return value

    return parse


def non_negative_float(text: str) -> float:
    value = _number(text, float, "a number")
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0: {text!r}")
    return value


def ratio(text: str) -> float:
    """0.95, or 95%."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a ratio: {text!r} (e.g. 0.95 or 95%)") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1 (or 0%..100%): {text!r}")
    return value


def port(text: str) -> int:
    value = int(_number(text, int, "a port number"))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535: {text!r}")
    return value


def ae_title(text: str) -> str:
    try:
        return check_ae_title(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


SECONDS = positive_float("a number of seconds")


def add_association_options(
    p: argparse.ArgumentParser, *, called_help: str
) -> argparse._ArgumentGroup:
    """-aet, -aec and -pdu as echoscu spells them; returns the group for more options."""
    g = p.add_argument_group("association")
    g.add_argument(
        "-aet",
        "--aetitle",
        dest="calling_ae",
        type=ae_title,
        default="ECHOSCU",
        metavar="AETITLE",
        help="our calling AE title (default ECHOSCU)",
    )
    g.add_argument(
        "-aec",
        "--call",
        dest="called_ae",
        type=ae_title,
        default="ANY-SCP",
        metavar="AETITLE",
        help=called_help,
    )
    g.add_argument(
        "-pdu",
        "--max-pdu",
        type=positive_int,
        default=16384,
        metavar="N",
        help="our maximum receive PDU length (default 16384)",
    )
    return g


def add_deadline_options(
    p: argparse.ArgumentParser, *, total_help: str, total_default: float | None = None
) -> None:
    """Per-phase timeouts with echoscu's short names, and --timeout for the absolute deadline
    (the same meaning in every `echoprobe` command: one whole target or association)."""
    g = p.add_argument_group("deadlines (seconds)")
    g.add_argument(
        "-to",
        "--connect-timeout",
        type=SECONDS,
        default=10.0,
        metavar="S",
        help="TCP connect (default 10)",
    )
    g.add_argument(
        "-ta",
        "--acse-timeout",
        type=SECONDS,
        default=30.0,
        metavar="S",
        help="the peer's A-ASSOCIATE-AC/RJ (default 30)",
    )
    g.add_argument(
        "-td",
        "--dimse-timeout",
        type=SECONDS,
        default=30.0,
        metavar="S",
        help="each C-ECHO-RSP (default 30)",
    )
    g.add_argument(
        "--release-timeout",
        type=SECONDS,
        default=10.0,
        metavar="S",
        help="the peer's A-RELEASE-RP; the echo verdict stands (default 10)",
    )
    default = "none" if total_default is None else f"{total_default:g}"
    g.add_argument(
        "--timeout",
        type=SECONDS,
        default=total_default,
        metavar="S",
        help=f"{total_help} (default {default})",
    )


def timeouts_from(args: argparse.Namespace) -> Timeouts:
    """The `Timeouts` that add_deadline_options() asked for."""
    return Timeouts(
        connect=args.connect_timeout,
        acse=args.acse_timeout,
        dimse=args.dimse_timeout,
        release=args.release_timeout,
        total=args.timeout,
    )


def install_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[int], None]) -> list[int]:
    """Route SIGINT and SIGTERM to `handler(signum)` on `loop`; the signals it could take."""
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, int(sig))
            installed.append(int(sig))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass
    return installed


def new_runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when it is installed (the measured fast loop)."""
    try:
        import uvloop  # noqa: PLC0415 - optional dependency
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def setup_logging(err: Console, rich_output: bool, prog: str) -> None:
    """echoprobe's warnings on stderr: through rich beside a live view, else plain lines."""
    root = logging.getLogger("echoprobe")
    if root.handlers:
        return
    handler: logging.Handler
    if rich_output:
        from rich.logging import RichHandler  # noqa: PLC0415 - only on a terminal

        handler = RichHandler(console=err, show_time=False, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{prog}: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def add_tls_options(p: argparse.ArgumentParser, role: Role = Role.REQUESTER) -> None:
    """DCMTK's TLS options for `role`, from their one definition in `cli.tls_options`."""
    _tls_options.add_tls_options(p, role)


def tls_config(args: argparse.Namespace) -> TLSConfig | None:
    """The TLS settings the options ask for (None: plain TCP); `UsageError` when they clash."""
    return _tls_options.tls_config(args, fail=UsageError)
