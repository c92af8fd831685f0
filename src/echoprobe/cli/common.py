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

from rich.console import Console

from echoprobe.fleet.targets import check_ae_title


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
