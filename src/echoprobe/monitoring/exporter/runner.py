"""Running the exporter: load, listen, serve until SIGTERM/SIGINT, reload on SIGHUP.

Rules:
- A bad configuration (or web configuration) at start is fatal (`serve()` returns 1, the
  problems logged with `file:line`); a bad one at reload keeps the old configuration.
- The listening socket is ours (`loop.create_server`), behind `ConnectionGuard`; aiohttp's
  request handler does the HTTP. Request line and header sizes are bounded by aiohttp's
  parser (`handler_args`), bodies by `client_max_size`, slow clients by the guard.
- Stopping: stop listening, let requests under way finish (at most `SHUTDOWN_GRACE`), then
  cancel the probes still running (each aborts its association) and close every connection.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from echoprobe.monitoring.exporter.app import Exporter, build_app
from echoprobe.monitoring.exporter.config import load_config
from echoprobe.monitoring.exporter.connections import ConnectionGuard
from echoprobe.monitoring.exporter.web_config import WebConfig, load_web_config
from echoprobe.monitoring.exporter.yaml_source import ConfigError
from echoprobe.net.addresses import format_address

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 10104
SHUTDOWN_GRACE: Final = 5.0
TLS_HANDSHAKE_TIMEOUT: Final = 10.0
MAX_LINE_SIZE: Final = 4096  # the request line: /probe?target=...&module=... fits easily
MAX_FIELD_SIZE: Final = 8190
MAX_HEADERS: Final = 64


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config_file: str
    listen_host: str | None  # None: every interface
    listen_port: int
    web_config_file: str | None = None
    timeout_offset: float = 0.5
    max_connections: int = 1024
    idle_timeout: float = 60.0
    header_timeout: float = 10.0


def parse_listen_address(text: str) -> tuple[str | None, int]:
    """`:PORT`, `HOST:PORT` or `[IPV6]:PORT` → (host or None for every interface, port)."""
    spec = text.strip()
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or not rest.startswith(":") or not host:
            raise ValueError(f"invalid listen address {text!r}: use [IPV6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = spec.rpartition(":")
        if not sep:
            raise ValueError(f"invalid listen address {text!r}: use HOST:PORT or :PORT")
        if ":" in host:
            raise ValueError(f"invalid listen address {text!r}: put IPv6 addresses in brackets")
    if not (port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 65535):
        raise ValueError(f"invalid port in listen address {text!r}")
    return (host or None), int(port_text)


def check_files(config_file: str, web_config_file: str | None) -> list[str]:
    """Every problem of the configuration files (empty when both are fine)."""
    problems: list[str] = []
    for path, loader in ((config_file, load_config), (web_config_file, load_web_config)):
        if path is None:
            continue
        try:
            loader(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


class Running:
    """A started exporter: its addresses, and `stop()`."""

    def __init__(self, exporter: Exporter, runner: web.AppRunner, server: asyncio.Server) -> None:
        self.exporter = exporter
        self.runner = runner
        self.server = server

    @property
    def addresses(self) -> list[str]:
        found = []
        for sock in self.server.sockets:
            name = sock.getsockname()
            found.append(format_address(str(name[0]), int(name[1])))
        return found

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.server.close()
        # aiohttp closes idle connections, waits SHUTDOWN_GRACE for requests under way, then
        # cancels their handlers; probes nobody waits for any more are cancelled after.
        await self.runner.cleanup()
        await self.exporter.sharer.close()


async def start(options: ServeOptions) -> Running:
    """Load the files and start listening; raises `ConfigError` (or `OSError` when the address
    cannot be bound)."""
    config = load_config(options.config_file)
    web_config = (
        load_web_config(options.web_config_file) if options.web_config_file else WebConfig()
    )
    exporter = Exporter(
        config,
        config_path=options.config_file,
        web_config=web_config,
        timeout_offset=options.timeout_offset,
    )
    runner = web.AppRunner(
        build_app(exporter),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE,
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
        keepalive_timeout=options.idle_timeout,
    )
    await runner.setup()
    if runner.server is None:  # setup() made it; checked for the type checker
        raise RuntimeError("aiohttp runner has no server")
    guard = ConnectionGuard(
        runner.server,
        max_connections=options.max_connections,
        idle_timeout=options.idle_timeout,
        header_timeout=options.header_timeout,
    )
    exporter.guard = guard
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            guard,
            options.listen_host,
            options.listen_port,
            ssl=web_config.tls,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if web_config.tls else None,
            backlog=1024,
            reuse_address=True,
            family=socket.AF_UNSPEC,
        )
    except BaseException:
        await runner.cleanup()
        raise
    running = Running(exporter, runner, server)
    for address in running.addresses:
        log.info("Listening on", extra={"address": address, "tls": web_config.tls is not None})
    return running


async def serve(options: ServeOptions) -> int:
    """Run until SIGTERM or SIGINT (0); 1 when the configuration is bad or the address cannot
    be bound."""
    try:
        running = await start(options)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("Error loading config", extra={"err": problem})
        return 1
    except OSError as exc:
        log.error("Cannot listen", extra={"err": str(exc)})
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, running.exporter.reload)
    try:
        await stop.wait()
        log.info("Received a signal to stop; shutting down")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await running.stop()
    return 0
