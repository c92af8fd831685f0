"""`echoprobe exporter` scraped by Debian's real Prometheus, fed by `echoprobe inventory file-sd`.

The chain a user builds, on loopback: a simulated fleet (`EchoSCP` with `Faults`, one port, one
127.0.12.x address per behaviour) → an inventory → `echoprobe inventory file-sd` → Prometheus
(its scrape job taken from `examples/monitoring/prometheus.yml`, so the example's relabeling is
what runs) → `echoprobe exporter` subprocesses → assertions through Prometheus's HTTP API.

Rules: Prometheus and promtool are needed; without them these tests skip, except under CI
(`CI=true`), where they fail. Every process is started here and stopped by its own PID in a
`finally` (each also ends by itself under `/usr/bin/timeout`). Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from echoprobe.net.server import Faults
from tests.conftest import IN_CI
from tests.support.servers import SubprocessServer, ThreadedEchoSCP, free_port

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "monitoring"
SCRAPE_WAIT_S = 30.0  # bound on waiting for Prometheus to hold the expected samples
TIMEOUT_OFFSET = "0.2"  # of the exporter: the 1 s scrape timeout leaves a 0.8 s probe budget
# No proxy, whatever the environment says: every request here goes to 127.0.0.1.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

EXPORTER_CONFIG = """\
allowed_targets: ["127.0.0.0/8"]
modules:
  dicom_echo:
    prober: dicom
    timeout: 5s
    dicom:
      calling_ae: ECHOPROBE
      called_ae: ANY-SCP
  dicom_short:
    prober: dicom
    timeout: 500ms
    dicom:
      calling_ae: ECHOPROBE
"""


def require_prometheus() -> None:
    """Skip without Prometheus; fail instead under CI, where it must be installed."""
    missing = [str(p) for p in (PROMETHEUS, PROMTOOL) if not p.exists()]
    if not missing:
        return
    message = f"Prometheus not installed: {', '.join(missing)} missing (apt install prometheus)"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: these tests must run)")
    pytest.skip(message)


# --- processes ------------------------------------------------------------------------------------


def _start(
    make_argv: Callable[[int], list[str]], log: Path, ready_s: float = 20.0
) -> SubprocessServer:
    """A server on a free loopback port; a new port if another process took the chosen one."""
    last: Exception | None = None
    for attempt in range(3):
        port = free_port()
        server = SubprocessServer(
            make_argv(port),
            port,
            log_path=log.with_suffix(f".{attempt}.log"),
            time_limit=90.0,
            ready_timeout=ready_s,
        )
        try:
            return server.start()
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"could not start {log.stem}") from last


def start_exporter(tmp: Path, name: str) -> SubprocessServer:
    config = tmp / f"{name}.yml"
    config.write_text(EXPORTER_CONFIG)
    return _start(
        lambda port: [
            sys.executable,
            "-m",
            "echoprobe",
            "exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--timeout-offset={TIMEOUT_OFFSET}",
            "--log.level=warn",
        ],
        tmp / name,
    )


def start_prometheus(tmp: Path, config: dict[str, Any]) -> SubprocessServer:
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    checked = subprocess.run(
        [str(PROMTOOL), "check", "config", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    server = _start(
        lambda port: [
            str(PROMETHEUS),
            f"--config.file={path}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        tmp / "prometheus",
    )
    wait_until(lambda: _get(server.port, "/-/ready") is not None, 20.0, "Prometheus ready")
    return server


def file_sd(tmp: Path, csv_text: str, name: str, *extra: str) -> Path:
    """`echoprobe inventory file-sd` as a user runs it; the targets file it wrote."""
    inventory = tmp / f"{name}.csv"
    inventory.write_text(csv_text)
    out = tmp / "sd" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "echoprobe", "inventory", "file-sd", str(inventory),
         "-o", str(out), "-q", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


# --- HTTP ---------------------------------------------------------------------------------------


def _get(port: int, path: str, **params: str) -> bytes | None:
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with _HTTP.open(url, timeout=10) as response:
            body: bytes = response.read()
            return body
    except OSError:
        return None


def query(port: int, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector; fails the test when Prometheus says it failed."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with _HTTP.open(url, timeout=10) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{promql!r}: HTTP {exc.code}: {exc.read()!r}") from exc
    assert answer["status"] == "success", (promql, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.25)


def by_instance(port: int, promql: str, label: str | None = None) -> dict[str, str]:
    """instance → the sample's value (or the value of `label`)."""
    return {
        s["metric"]["instance"]: (s["metric"].get(label, "") if label else s["value"][1])
        for s in query(port, promql)
    }


# --- Prometheus config from the example ---------------------------------------------------------


def example_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    return config


def sharded_job_from_example() -> dict[str, Any]:
    """The commented hashmod-sharding job at the end of the example, uncommented."""
    text = (EXAMPLES / "prometheus.yml").read_text()
    start = text.index("#  - job_name: dicom_echo")
    lines = [line[1:] for line in text[start:].splitlines() if line.startswith("#  ")]
    jobs: list[dict[str, Any]] = yaml.safe_load("\n".join(lines))
    return jobs[0]


def scrape_config(
    job: dict[str, Any], sd_dir: Path, exporters: dict[str, SubprocessServer], rules: bool = True
) -> dict[str, Any]:
    """The example's probe job pointed at our targets files and exporters, scraped every 1 s,
    plus the exporters' own job; the example's alert rules loaded."""
    job = json.loads(json.dumps(job))  # a deep copy
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["file_sd_configs"] = [{"files": [str(sd_dir / "*.json")], "refresh_interval": "1s"}]
    example_addresses = iter(exporters.values())
    for rule in job["relabel_configs"]:
        if rule.get("target_label") == "__address__":
            rule["replacement"] = f"127.0.0.1:{next(example_addresses).port}"
    assert next(example_addresses, None) is None, "one __address__ rule per exporter"
    own = {
        "job_name": "echoprobe_exporter",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": [f"127.0.0.1:{e.port}" for e in exporters.values()]}],
    }
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [job, own],
    }
    if rules:
        config["rule_files"] = [str(EXAMPLES / "alerts.yml")]
    return config


def prometheus_hashmod(value: str, modulus: int) -> int:
    """Prometheus's `hashmod` relabel action: the MD5's low 64 bits, big-endian, mod N."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


# --- the fleet ----------------------------------------------------------------------------------


@dataclass
class Setup:
    prometheus: SubprocessServer
    exporter: SubprocessServer
    expected: dict[str, tuple[str, str]]  # instance → (probe_success, outcome regex)


@pytest.fixture(scope="module")
def fleet() -> Iterator[ThreadedEchoSCP]:
    scp = ThreadedEchoSCP(
        host=["127.0.12.1", "127.0.12.3", "127.0.12.4", "127.0.12.5", "127.0.12.6"],
        faults_by_address={
            "127.0.12.4": Faults(abort_at="associate"),
            "127.0.12.5": Faults(status=0x0110, error_comment="failed on purpose"),
            "127.0.12.6": Faults(silent_at="associate"),
        },
        ae_titles_by_address={"127.0.12.3": ["PACS"]},
        idle_timeout=5.0,
        time_limit=120.0,
    )
    scp.start()
    try:
        yield scp
    finally:
        scp.stop()


@pytest.fixture(scope="module")
def setup(fleet: ThreadedEchoSCP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("prometheus")
    port = fleet.port
    file_sd(
        tmp,
        "host,port,called_ae,name,tags\n"
        f"127.0.12.1,{port},PACS,healthy,site=a;ct\n"
        f"127.0.12.2,{port},,refused,site=a\n"  # nothing listens there
        f"127.0.12.3,{port},WRONG,rejected,site=b\n"  # only PACS is known there
        f"127.0.12.4,{port},,aborting,site=b\n"
        f"127.0.12.5,{port},,failing,site=b\n",
        "fleet",
    )
    file_sd(tmp, f"host,port,name\n127.0.12.6,{port},silent\n", "slow", "--module", "dicom_short")
    expected = {
        f"PACS@127.0.12.1:{port}": ("1", "success"),
        f"127.0.12.2:{port}": ("0", "connection_refused"),
        f"WRONG@127.0.12.3:{port}": ("0", "rejected_permanent"),
        f"127.0.12.4:{port}": ("0", "aborted_by_peer"),
        f"127.0.12.5:{port}": ("0", "echo_failed_status"),
        f"127.0.12.6:{port}": ("0", "acse_timeout|deadline_exceeded|timeout"),
    }
    exporter: SubprocessServer | None = None
    prometheus: SubprocessServer | None = None
    try:
        exporter = start_exporter(tmp, "exporter")
        job = example_config()["scrape_configs"][0]
        prometheus = start_prometheus(tmp, scrape_config(job, tmp / "sd", {"a": exporter}))
        yield Setup(prometheus, exporter, expected)
    finally:
        for server in (prometheus, exporter):
            if server is not None:
                server.stop()


def test_every_target_is_scraped_with_its_outcome(setup: Setup) -> None:
    port = setup.prometheus.port
    want_success = {instance: ok for instance, (ok, _) in setup.expected.items()}
    patterns = {i: re.compile(f"(?:{o})\\Z") for i, (_, o) in setup.expected.items()}

    def settled() -> bool:
        outcomes = by_instance(port, 'probe_dicom_outcome{job="dicom_echo"} == 1', "outcome")
        return (
            by_instance(port, 'probe_success{job="dicom_echo"}') == want_success
            and outcomes.keys() == patterns.keys()
            and all(patterns[i].match(o) for i, o in outcomes.items())
        )

    try:
        wait_until(settled, SCRAPE_WAIT_S, "every target's expected probe_success and outcome")
    except AssertionError:
        seen = by_instance(port, 'probe_dicom_outcome{job="dicom_echo"}', "outcome")
        raise AssertionError(f"outcomes seen: {seen}\n{setup.exporter.log()[-2000:]}") from None

    fleet_port = next(iter(setup.expected)).rsplit(":", 1)[1]
    # Only the actual outcome is exposed, one series per target.
    assert len(query(port, 'probe_dicom_outcome{job="dicom_echo"}')) == len(setup.expected)
    # The relabeling of the example: instance = target, module from the targets file, labels.
    up = query(port, 'up{job="dicom_echo"}')
    assert {s["metric"]["instance"] for s in up} == set(setup.expected)
    assert all(s["value"][1] == "1" for s in up)  # the exporter answered every scrape
    modules = by_instance(port, 'probe_success{job="dicom_echo"}', "module")
    assert modules[f"127.0.12.6:{fleet_port}"] == "dicom_short"
    assert modules[f"PACS@127.0.12.1:{fleet_port}"] == "dicom_echo"
    names = by_instance(port, 'probe_success{job="dicom_echo"}', "name")
    assert names[f"127.0.12.4:{fleet_port}"] == "aborting"
    sites = by_instance(port, 'probe_success{job="dicom_echo"}', "site")
    assert sites[f"PACS@127.0.12.1:{fleet_port}"] == "a"
    # The peer's own words.
    rejected = query(port, "probe_dicom_association_rejected")
    assert [
        (s["metric"]["result"], s["metric"]["source"], s["metric"]["reason"]) for s in rejected
    ] == [("1", "1", "7")]
    status = by_instance(port, "probe_dicom_echo_status")
    assert status[f"127.0.12.5:{fleet_port}"] == str(0x0110)
    assert status[f"PACS@127.0.12.1:{fleet_port}"] == "0"
    phases = {s["metric"]["phase"] for s in query(port, "probe_dicom_phase_duration_seconds")}
    assert {"connect", "associate", "echo"} <= phases
    # The exporter's own job.
    assert by_instance(port, 'up{job="echoprobe_exporter"}') == {
        f"127.0.0.1:{setup.exporter.port}": "1"
    }
    wait_until(
        lambda: _sum(query(port, "echoprobe_exporter_probes_total")) >= len(setup.expected),
        SCRAPE_WAIT_S,
        "the exporter's own counter of probes",
    )
    reload_ok = query(port, "echoprobe_exporter_config_last_reload_successful")
    assert [s["value"][1] for s in reload_ok] == ["1"]


def _sum(vector: list[dict[str, Any]]) -> float:
    return sum(float(s["value"][1]) for s in vector)


def _expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert rule and every dashboard query."""
    out: list[tuple[str, str]] = []
    rules = yaml.safe_load((EXAMPLES / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            out.append((f"alerts.yml: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((f"dashboard: {panel['title']} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            label_values = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
            assert label_values is not None, variable["definition"]
            out.append((f"dashboard: ${variable['name']}", label_values.group(1)))
    return out


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$job": ".+",
    "$target": ".+",
}


def _grafana_to_promql(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    assert "$" not in expr.replace("$labels", "").replace("$value", ""), expr
    return expr


def test_examples_pass_promtool() -> None:
    require_prometheus()
    for argv in (
        ["check", "config", str(EXAMPLES / "prometheus.yml")],
        ["check", "rules", str(EXAMPLES / "alerts.yml")],
    ):
        done = subprocess.run(
            [str(PROMTOOL), *argv], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


def test_example_exporter_config_passes_config_check(tmp_path: Path) -> None:
    import trustme

    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    text = (EXAMPLES / "echoprobe-exporter.yml").read_text()
    assert "/etc/echoprobe/ca.pem" in text
    config = tmp_path / "echoprobe-exporter.yml"
    config.write_text(text.replace("/etc/echoprobe/ca.pem", str(ca)))
    argv = [sys.executable, "-m", "echoprobe", "exporter", f"--config.file={config}"]
    done = subprocess.run(
        [*argv, "--config.check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_every_rule_and_dashboard_expression_runs(setup: Setup) -> None:
    port = setup.prometheus.port
    wait_until(
        lambda: bool(query(port, 'probe_success{job="dicom_echo"}')), SCRAPE_WAIT_S, "samples"
    )
    expressions = _expressions()
    assert len(expressions) >= 20
    for where, expr in expressions:
        try:
            query(port, _grafana_to_promql(expr))
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
    # The data the dashboard shows exists: the status table's queries return every target.
    table = query(port, _grafana_to_promql('probe_success{job=~"$job", instance=~"$target"}'))
    assert len(table) == len(setup.expected)
    # The rules loaded and were evaluated by this Prometheus.
    with _HTTP.open(f"http://127.0.0.1:{port}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    assert sum(len(g["rules"]) for g in groups) == 6
    assert all(r["health"] in ("ok", "unknown") for g in groups for r in g["rules"])


def test_hashmod_sharding_probes_each_target_on_exactly_one_exporter(
    fleet: ThreadedEchoSCP, tmp_path: Path
) -> None:
    require_prometheus()
    port = fleet.port
    # Healthy peers behind one address (the SCP answers any called AE): distinct called AE
    # titles make distinct targets; chosen so that both shards get some.
    targets: list[str] = []
    shards: dict[int, list[str]] = {0: [], 1: []}
    for n in range(64):
        if min(len(s) for s in shards.values()) >= 3:
            break
        target = f"PEER{n}@127.0.12.1:{port}"
        shard = prometheus_hashmod(target, 2)
        if len(shards[shard]) < 3:
            shards[shard].append(target)
            targets.append(target)
    assert len(targets) == 6
    file_sd(tmp_path, "target\n" + "\n".join(targets) + "\n", "fleet")
    exporters: dict[str, SubprocessServer] = {}
    prometheus: SubprocessServer | None = None
    try:
        exporters["a"] = start_exporter(tmp_path, "exporter-a")
        exporters["b"] = start_exporter(tmp_path, "exporter-b")
        job = sharded_job_from_example()
        config = scrape_config(job, tmp_path / "sd", exporters, rules=False)
        prometheus = start_prometheus(tmp_path, config)
        prom = prometheus.port

        def all_up() -> bool:
            return by_instance(prom, 'probe_success{job="dicom_echo"}') == dict.fromkeys(
                targets, "1"
            )

        wait_until(all_up, SCRAPE_WAIT_S, "every sharded target to succeed")
        # Prometheus: each target exactly once, scraped through the exporter its hash names.
        with _HTTP.open(f"http://127.0.0.1:{prom}/api/v1/targets?state=active", timeout=10) as r:
            active = [
                t for t in json.load(r)["data"]["activeTargets"] if t["scrapePool"] == "dicom_echo"
            ]
        scraped = [
            (t["labels"]["instance"], urllib.parse.urlsplit(t["scrapeUrl"]).port) for t in active
        ]
        assert sorted(i for i, _ in scraped) == sorted(targets)
        exporter_ports = [exporters["a"].port, exporters["b"].port]
        for instance, exporter_port in scraped:
            assert exporter_port == exporter_ports[prometheus_hashmod(instance, 2)], instance
        # Each exporter: probes counted, and only its own targets on its landing page.
        for shard, name in enumerate(("a", "b")):
            text = (_get(exporters[name].port, "/metrics") or b"").decode()
            counts = re.findall(r"^echoprobe_exporter_probes_total\{[^}]*\} (\S+)$", text, re.M)
            assert sum(float(c) for c in counts) >= len(shards[shard]), name
            page = (_get(exporters[name].port, "/") or b"").decode()
            for target in targets:
                mine = prometheus_hashmod(target, 2) == shard
                assert (target.split("@", 1)[0] + "@" in page) == mine, (name, target)
    finally:
        for server in (prometheus, *exporters.values()):
            if server is not None:
                server.stop()
