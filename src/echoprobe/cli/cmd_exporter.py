"""`echoprobe exporter`: a Prometheus exporter for DICOM peers, flags named as blackbox_exporter's.

    echoprobe exporter --config.file echoprobe-exporter.yml --web.listen-address :10104
    curl 'http://localhost:10104/probe?module=dicom_echo&target=PACS@10.0.0.5:104'

Exit codes: 0 after SIGTERM/SIGINT (graceful stop) or a good `--config.check`; 1 for a bad
configuration (its problems printed with file:line) or an address that cannot be bound;
2 for a usage error. SIGHUP (or `POST /-/reload`) reloads the configuration file.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from typing import Any

from echoprobe.cli import exit_codes

DEFAULT_CONFIG = "echoprobe-exporter.yml"
DEFAULT_LISTEN = ":10104"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "exporter",
        help="Prometheus exporter: /probe?target=... runs a C-ECHO and returns its metrics",
        description="Serve Prometheus metrics of DICOM C-ECHO probes, blackbox_exporter style.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"exporter configuration file (default {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to listen on (default {DEFAULT_LISTEN}: every interface)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        metavar="FILE",
        help="exporter-toolkit web configuration: TLS and basic auth",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="check the configuration (and web configuration) files, print OK, and exit",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=("debug", "info", "warn", "error"),
        help="log level (default info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=("logfmt", "json"),
        help="log format on stderr (default logfmt)",
    )
    parser.add_argument(
        "--timeout-offset",
        dest="timeout_offset",
        type=_offset,
        default=0.5,
        metavar="SECONDS",
        help="seconds taken off Prometheus' scrape timeout for the probe (default 0.5)",
    )
    parser.set_defaults(func=run)


def _offset(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError("must be a number of seconds ≥ 0")
    return value


def run(args: argparse.Namespace) -> int:
    from echoprobe.monitoring.exporter.logs import setup_logging  # noqa: PLC0415 - lazy
    from echoprobe.monitoring.exporter.runner import (  # noqa: PLC0415 - aiohttp only here
        ServeOptions,
        check_files,
        parse_listen_address,
        serve,
    )

    if args.config_check:
        problems = check_files(args.config_file, args.web_config_file)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return exit_codes.SOME_FAILED
        print("OK")
        return exit_codes.OK
    try:
        host, port = parse_listen_address(args.listen_address)
    except ValueError as exc:
        print(f"echoprobe exporter: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    setup_logging(args.log_level, args.log_format)
    options = ServeOptions(
        config_file=args.config_file,
        listen_host=host,
        listen_port=port,
        web_config_file=args.web_config_file,
        timeout_offset=args.timeout_offset,
    )
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        return runner.run(serve(options))


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
