"""The exporter's HTTP side: an aiohttp application and the state its handlers share.

Endpoints: `/probe` (one probe's metrics), `/metrics` (the exporter's own), `/-/healthy`,
`/-/ready`, `POST /-/reload`, `/` (landing page), `/logs?id=N`, `/config`.

Rules:
- A request is refused with a one-line text reason: 400 for a missing or invalid parameter
  (unknown parameters included), 401 without valid credentials when `basic_auth_users` is
  set (every endpoint), 403 for a target outside `allowed_targets`. Every refusal counts in
  `echoprobe_exporter_requests_refused_total{code}`.
- Handlers read the configuration once per request (`exporter.config`, swapped whole by a
  reload), so a request never sees half of two configurations.
- Probes run on this event loop; the DICOM work is `echoprobe.net.client.probe()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import BasicAuth, web
from prometheus_client.exposition import choose_encoder

from echoprobe.fleet.targets import TargetSyntaxError
from echoprobe.monitoring.exporter.config import (
    DEFAULT_MODULE,
    ExporterConfig,
    Module,
    load_config,
)
from echoprobe.monitoring.exporter.connections import ConnectionGuard
from echoprobe.monitoring.exporter.pages import ProbeRecord, config_yaml, landing_page
from echoprobe.monitoring.exporter.probing import (
    expired_result,
    parse_probe_target,
    probe_budget,
    probe_timeouts,
    render_metrics,
)
from echoprobe.monitoring.exporter.selfmetrics import SelfMetrics
from echoprobe.monitoring.exporter.sharing import ProbeSharer
from echoprobe.monitoring.exporter.web_config import Authenticator, WebConfig
from echoprobe.monitoring.exporter.yaml_source import ConfigError
from echoprobe.net.client import probe
from echoprobe.results import ProbeResult

log = logging.getLogger(__name__)

HISTORY: Final = 100  # probes kept for the landing page
MAX_BODY: Final = 64 * 1024  # no endpoint takes a body worth more
PROBE_PARAMETERS: Final = frozenset({"target", "module", "debug"})
SCRAPE_TIMEOUT_HEADER: Final = "X-Prometheus-Scrape-Timeout-Seconds"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Exporter:
    """What the handlers share: the configuration, the probe sharer, metrics and history."""

    def __init__(
        self,
        config: ExporterConfig,
        *,
        config_path: str | Path | None = None,
        web_config: WebConfig | None = None,
        timeout_offset: float = 0.5,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.generation = 0
        self.timeout_offset = timeout_offset
        self.metrics = SelfMetrics()
        self.sharer = ProbeSharer(config.limits)
        self.auth = Authenticator(web_config.users if web_config else {})
        self.guard: ConnectionGuard | None = None  # set by the runner that owns the sockets
        self.history: deque[ProbeRecord] = deque(maxlen=HISTORY)
        self._next_id = 0
        self.metrics.in_flight.set_function(lambda: self.sharer.in_flight)
        self.metrics.reload_ok.set(1)
        self.metrics.reload_time.set(time.time())

    def reload(self) -> str | None:
        """Load the configuration file again; None on success, else why it failed (the old
        configuration stays)."""
        if self.config_path is None:
            return "no configuration file to reload"
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self.metrics.reload_ok.set(0)
            log.error(
                "Error reloading config", extra={"file": str(self.config_path), "err": str(exc)}
            )
            return str(exc)
        self.config = config
        self.generation += 1
        self.sharer.reconfigure(config.limits)
        self.metrics.reload_ok.set(1)
        self.metrics.reload_time.set(time.time())
        log.info("Loaded config file", extra={"file": str(self.config_path)})
        return None

    def remember(
        self, module: Module, result: ProbeResult, budget: float, how: str | None
    ) -> ProbeRecord:
        self._next_id += 1
        record = ProbeRecord(self._next_id, time.time(), module, result, budget, how)
        self.history.append(record)
        return record


EXPORTER: Final = web.AppKey("exporter", Exporter)


def _refuse(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n", content_type="text/plain")


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise web.HTTPBadRequest(text=f"parameter {name!r} given more than once\n")
    return values[0] if values else None


async def handle_probe(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    unknown = sorted(set(request.query) - PROBE_PARAMETERS)
    if unknown:
        return _refuse(400, f"unknown parameter {unknown[0][:40]!r}")
    config = exporter.config
    module_name = _single(request, "module")
    module = config.module(module_name)
    if module is None:
        if module_name is None:
            return _refuse(400, f"module parameter is missing (no {DEFAULT_MODULE!r} module)")
        return _refuse(400, f"unknown module {module_name[:64]!r}")
    target_text = _single(request, "target")
    if not target_text:
        return _refuse(400, "target parameter is missing")
    debug_text = _single(request, "debug")
    if debug_text not in (None, "true", "false"):
        return _refuse(400, "debug must be true or false")
    try:
        target = parse_probe_target(target_text, module)
    except TargetSyntaxError as exc:
        return _refuse(400, f"invalid target: {exc}")
    allowed = config.allowed_targets
    if allowed is not None and not allowed.allows(target.host, target.port):
        return _refuse(403, f"target {target.address} is not in allowed_targets")
    try:
        budget = probe_budget(
            request.headers.get(SCRAPE_TIMEOUT_HEADER), exporter.timeout_offset, module.timeout
        )
    except ValueError as exc:
        return _refuse(400, str(exc))

    loop = asyncio.get_running_loop()
    start = loop.time()
    dicom = module.dicom

    async def run(remaining: float) -> ProbeResult:
        return await probe(
            target.host,
            target.port,
            calling_ae=dicom.calling_ae,
            called_ae=target.called_ae,
            timeouts=probe_timeouts(remaining),
            max_pdu=dicom.max_pdu,
            repeat=dicom.repeat,
            target=target.spec,
            tls=dicom.probe_tls,
        )

    def expired(why: str) -> ProbeResult:
        return expired_result(target, module, loop.time() - start, why)

    host = target.host.lower()
    key = (exporter.generation, module.name, host, target.port, target.called_ae)
    shared = await exporter.sharer.get(
        key,
        host,
        min_interval=module.min_interval,
        deadline=start + budget,
        run=run,
        expired=expired,
    )
    result = shared.result
    metrics = exporter.metrics
    metrics.probes.labels(module.name, str(result.outcome)).inc()
    metrics.duration.labels(module.name).observe(result.timings_ms.get("total", 0.0) / 1000.0)
    if shared.how is not None:
        metrics.shared.labels(module.name, shared.how).inc()
    record = exporter.remember(module, result, budget, shared.how)
    if debug_text == "true":
        return web.Response(text=record.debug_text(), content_type="text/plain")
    body, content_type = render_metrics(
        result, cached=shared.how is not None, accept=request.headers.get("Accept")
    )
    return web.Response(body=body, headers={"Content-Type": content_type})


async def handle_metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[EXPORTER].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def handle_ok(_request: web.Request) -> web.Response:
    return web.Response(text="OK\n", content_type="text/plain")


async def handle_reload(request: web.Request) -> web.Response:
    error = request.app[EXPORTER].reload()
    if error is not None:
        return web.Response(status=500, text=f"failed to reload config: {error}\n")
    return web.Response(text="OK\n", content_type="text/plain")


async def handle_landing(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    page = landing_page(exporter.config, exporter.history)
    return web.Response(text=page, content_type="text/html")


async def handle_logs(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    text = _single(request, "id") or ""
    wanted = int(text) if text.isdigit() and len(text) < 12 else None
    if wanted is None:
        return _refuse(400, "id must be a probe number")
    for record in exporter.history:
        if record.id == wanted:
            return web.Response(text=record.debug_text(), content_type="text/plain")
    return _refuse(404, f"probe {wanted} is not among the last {HISTORY}")


async def handle_config(request: web.Request) -> web.Response:
    return web.Response(text=config_yaml(request.app[EXPORTER].config), content_type="text/plain")


_REALM: Final = {"WWW-Authenticate": 'Basic realm="echoprobe exporter", charset="UTF-8"'}


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Marks the connection busy (headers complete), checks credentials, counts refusals."""
    exporter = request.app[EXPORTER]
    guard = exporter.guard
    transport = request.transport
    if guard is not None:
        guard.request_started(transport)
    try:
        if exporter.auth.enabled and not await _authorized(exporter.auth, request):
            exporter.metrics.refused.labels("401").inc()
            return web.Response(status=401, text="Unauthorized\n", headers=_REALM)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                exporter.metrics.refused.labels(str(exc.status)).inc()
            raise
        if response.status >= 400 and response.status != 500:
            exporter.metrics.refused.labels(str(response.status)).inc()
        return response
    finally:
        if guard is not None:
            guard.request_finished(transport)


async def _authorized(auth: Authenticator, request: web.Request) -> bool:
    header = request.headers.get("Authorization")
    if not header or len(header) > 1024:
        return False
    try:
        credentials = BasicAuth.decode(header, encoding="utf-8")
    except ValueError:
        return False
    return await auth.check(credentials.login, credentials.password)


def build_app(exporter: Exporter) -> web.Application:
    app = web.Application(middlewares=[guard_middleware], client_max_size=MAX_BODY)
    app[EXPORTER] = exporter
    app.router.add_get("/probe", handle_probe)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/-/healthy", handle_ok)
    app.router.add_get("/-/ready", handle_ok)
    app.router.add_post("/-/reload", handle_reload)
    app.router.add_put("/-/reload", handle_reload)
    app.router.add_get("/", handle_landing)
    app.router.add_get("/logs", handle_logs)
    app.router.add_get("/config", handle_config)
    return app
