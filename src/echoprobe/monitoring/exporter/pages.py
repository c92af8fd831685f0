"""What people read: the landing page, a probe's debug log, the loaded configuration.

Rules: every value shown in HTML goes through `html.escape` (targets come from URLs); secrets
(`key_password`) are never shown; the configuration is shown as loaded, defaults filled in.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from echoprobe import __version__
from echoprobe.monitoring.exporter.config import ExporterConfig, Module
from echoprobe.monitoring.exporter.probing import probe_log, render_metrics
from echoprobe.monitoring.exporter.yaml_source import format_duration
from echoprobe.results import ProbeResult

REDACTED = "<secret>"


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """One answered probe, kept for the landing page (the log is rendered when asked for)."""

    id: int
    when: float  # unix time of the answer
    module: Module
    result: ProbeResult
    budget: float
    how: str | None

    def debug_text(self) -> str:
        return debug_text(self.result, self.module, self.budget, self.how)


def module_data(module: Module) -> dict[str, Any]:
    d = module.dicom
    dicom: dict[str, Any] = {
        "calling_ae": d.calling_ae,
        "called_ae": d.called_ae,
        "port": d.port,
        "repeat": d.repeat,
        "max_pdu": d.max_pdu,
    }
    if d.tls is not None:
        t = d.tls
        tls: dict[str, Any] = {"profile": t.profile.name.lower().replace("_", "-")}
        if t.ca_files:
            tls["ca_file"] = t.ca_files[0]
        if t.ca_dirs:
            tls["ca_dir"] = t.ca_dirs[0]
        if t.key_file:
            tls["key_file"] = t.key_file
            tls["cert_file"] = t.cert_file
        if d.key_password_file:
            tls["key_password_file"] = d.key_password_file
        elif t.password:
            tls["key_password"] = REDACTED
        tls["key_format"] = t.key_format.value
        tls["ignore_peer_cert"] = t.verify_peer.value == "ignore"
        if t.server_name:
            tls["server_name"] = t.server_name
        dicom["tls"] = tls
    return {
        "prober": module.prober,
        "timeout": format_duration(module.timeout),
        "min_interval": format_duration(module.min_interval),
        "dicom": dicom,
    }


def config_yaml(config: ExporterConfig) -> str:
    data: dict[str, Any] = {}
    if config.allowed_targets is not None:
        data["allowed_targets"] = list(config.allowed_targets.entries)
    data["limits"] = {
        "max_concurrent_probes": config.limits.max_concurrent_probes,
        "per_host": config.limits.per_host,
    }
    data["modules"] = {name: module_data(m) for name, m in config.modules.items()}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def debug_text(result: ProbeResult, module: Module, budget: float, how: str | None) -> str:
    """blackbox_exporter's `debug=true` layout: the log, the metrics, the module."""
    metrics, _ = render_metrics(result, cached=how is not None, accept=None)
    return (
        "Logs for the probe:\n"
        + "\n".join(probe_log(result, module, budget, how))
        + "\n\n\nMetrics that would have been returned:\n"
        + metrics.decode()
        + "\n\nModule configuration:\n"
        + yaml.safe_dump({module.name: module_data(module)}, sort_keys=False)
    )


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
)


def landing_page(config: ExporterConfig, records: Iterable[ProbeRecord]) -> str:
    e = html.escape
    modules = "".join(
        f"<li><code>{e(name)}</code>: DICOM C-ECHO, timeout {e(format_duration(m.timeout))}"
        f"{', TLS' if m.dicom.tls else ''}</li>"
        for name, m in config.modules.items()
    )
    example = e(next(iter(config.modules), "dicom_echo"))
    rows = "".join(
        "<tr>"
        f"<td>{e(time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(r.when)))}</td>"
        f"<td>{e(r.module.name)}</td><td>{e(r.result.target)}</td>"
        f"<td>{e(str(r.result.outcome))}{' (shared)' if r.how else ''}</td>"
        f"<td>{r.result.timings_ms.get('total', 0.0) / 1000.0:.3f} s</td>"
        f'<td><a href="logs?id={r.id}">Logs</a></td></tr>'
        for r in reversed(list(records))
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>echoprobe exporter</title><style>{_STYLE}</style></head>
<body><h1>echoprobe exporter</h1>
<p>DICOM Verification (C-ECHO) prober for Prometheus, version {e(__version__)}.</p>
<p><a href="probe?module={example}&amp;target=127.0.0.1:11112">Probe 127.0.0.1:11112
with module {example}</a> &middot; <a href="metrics">Metrics</a> &middot;
<a href="config">Configuration</a></p>
<h2>Modules</h2><ul>{modules}</ul>
<h2>Recent probes</h2>
<table><tr><th>Time (UTC)</th><th>Module</th><th>Target</th><th>Outcome</th><th>Duration</th>
<th>Debug</th></tr>{rows}</table>
</body></html>
"""
