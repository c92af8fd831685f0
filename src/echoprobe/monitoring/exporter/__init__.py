"""`echoprobe exporter`: a Prometheus exporter that probes DICOM peers with C-ECHO.

Modules, by responsibility: `config` (the YAML configuration), `web_config` (HTTPS and basic
auth), `allowlist` (which targets may be probed), `probing` (one probe's budget and metrics),
`sharing` (dedup, min_interval, limits), `connections` (bounds on HTTP clients), `app` (the
aiohttp application), `pages` (HTML and text pages), `selfmetrics`, `logs`, `runner` (start,
reload, stop). Nothing here speaks DICOM: probes are `echoprobe.net.client.probe()`.
"""
