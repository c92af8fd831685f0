"""`echoprobe load` live metrics scraped by Debian's real Prometheus; the load dashboard's queries.

Rules: Prometheus and promtool are needed; without them these tests skip, except under CI
(`CI=true`), where they fail. Prometheus is started here and stopped by its own PID (it also
ends by itself); every wait is bounded.
"""

from __future__ import annotations

import json
from pathlib import Path

from echoprobe.fleet.load import run_load
from echoprobe.fleet.load_metrics import LoadMetrics, serve_metrics
from echoprobe.options import Timeouts
from tests.conftest import ScpFactory
from tests.integration.test_exporter_prometheus import (
    EXAMPLES,
    query,
    require_prometheus,
    start_prometheus,
    wait_until,
)

FAST = Timeouts(connect=2, acse=2, dimse=2, release=2)
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": ".+", "$instance": ".+"}


def _dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((EXAMPLES / "grafana-load-dashboard.json").read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            out.append((f"{panel['title']} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = variable["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
            out.append((f"${variable['name']}", inner))
    return out


def _promql(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    assert "$" not in expr, expr
    return expr


async def test_prometheus_scrapes_the_load_metrics_and_the_dashboard_queries_run(
    scp_factory: ScpFactory, tmp_path: Path
) -> None:
    require_prometheus()
    scp = scp_factory()
    metrics = LoadMetrics()
    report = await run_load(
        "127.0.0.1", scp.port, concurrency=4, associations=400, workers=2, timeouts=FAST,
        metrics=metrics,
    )  # fmt: skip
    assert report.ok
    server = serve_metrics(metrics, "127.0.0.1", 0)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "echoprobe_load",
                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
            }
        ],
    }
    prometheus = start_prometheus(tmp_path, config)
    try:
        port = prometheus.port
        success = 'echoprobe_load_associations_total{job="echoprobe_load", outcome="success"}'
        wait_until(lambda: bool(query(port, success)), 30.0, "the load metrics in Prometheus")
        assert [s["value"][1] for s in query(port, success)] == [str(report.succeeded)]
        count = "sum(echoprobe_load_association_duration_seconds_count)"
        assert [s["value"][1] for s in query(port, count)] == ["400"]
        expressions = _dashboard_expressions()
        assert len(expressions) >= 12
        for where, expr in expressions:
            try:
                query(port, _promql(expr))
            except AssertionError as exc:
                raise AssertionError(f"dashboard {where}: {exc}") from None
    finally:
        prometheus.stop()
        server.close()
