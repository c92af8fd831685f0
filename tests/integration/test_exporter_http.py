"""The exporter over HTTP on loopback, probing `EchoSCP`s that misbehave on purpose.

Covers the contract end to end: metrics of each outcome, the scrape-timeout budget, sharing
(in flight, min_interval, per_host), refusals (400/403/404/405), hostile clients (huge URLs
and headers, slowloris, connection floods), basic auth, HTTPS, reload, TLS probes, and the
`echoprobe exporter` command as a subprocess (start, probe, SIGHUP, SIGTERM, exit codes).
Every server here stops by itself; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from echoprobe.monitoring.exporter.runner import Running, ServeOptions, start
from echoprobe.net.server import EchoSCP, Faults
from echoprobe.net.tls import PeerVerification, TLSConfig
from tests.conftest import ScpFactory
from tests.support.servers import has_ipv6_loopback
from tests.support.tls_certs import CertKit, shared_kit

HEALTHY, REJECTING, SLOW, FAILING, SILENT, NOBODY = (
    "127.0.3.1",
    "127.0.3.2",
    "127.0.3.3",
    "127.0.3.4",
    "127.0.3.5",
    "127.0.3.9",
)
FAULTS = {
    REJECTING: Faults(reject=(1, 1, 7)),
    SLOW: Faults(delay={"echo": 0.8}),
    FAILING: Faults(status=0x0110, error_comment="busy"),
    SILENT: Faults(silent_at="associate"),
}
CONFIG = """\
allowed_targets: ["127.0.0.0/8", "::1"]
limits:
  per_host: 1
modules:
  dicom_echo:
    timeout: 20s
  cached:
    min_interval: 30s
  pacs:
    timeout: 3s
    dicom:
      called_ae: PACS
"""
Metrics = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Metrics:
    found: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    for sample_labels, sample_value in metrics.get(name, []):
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            return sample_value
    return None


@contextlib.asynccontextmanager
async def fleet() -> AsyncIterator[EchoSCP]:
    hosts = [HEALTHY, REJECTING, SLOW, FAILING, SILENT]
    async with EchoSCP(hosts, 0, faults_by_address=FAULTS, idle_timeout=15.0) as scp:
        yield scp


@contextlib.asynccontextmanager
async def exporter(
    tmp_path: Path, config: str = CONFIG, *, web: str | None = None, **options: Any
) -> AsyncIterator[Running]:
    path = tmp_path / "exporter.yml"
    path.write_text(config)
    web_path = None
    if web is not None:
        web_path = tmp_path / "web.yml"
        web_path.write_text(web)
    running = await start(
        ServeOptions(
            str(path),
            "127.0.0.1",
            0,
            web_config_file=None if web_path is None else str(web_path),
            **options,
        )
    )
    try:
        yield running
    finally:
        await running.stop()


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.base + path, **kwargs) as response:
            return response.status, await response.text(), response

    async def probe(self, target: str, **params: str) -> Metrics:
        status, text, _ = await self.get("/probe", params={"target": target, **params})
        assert status == 200, text
        return parse(text)


@contextlib.asynccontextmanager
async def client(running: Running, scheme: str = "http", **session: Any) -> AsyncIterator[Client]:
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout, **session) as http:
        yield Client(http, f"{scheme}://127.0.0.1:{running.port}")


# --- probes ----------------------------------------------------------------------------------


async def test_outcomes(tmp_path: Path) -> None:
    async with fleet() as scp, exporter(tmp_path) as running, client(running) as http:
        port = scp.port
        ok = await http.probe(f"{HEALTHY}:{port}")
        assert value(ok, "probe_success") == 1.0
        assert value(ok, "probe_dicom_outcome", outcome="success") == 1.0
        assert value(ok, "probe_dicom_echo_status") == 0.0
        assert value(ok, "probe_dicom_max_pdu_bytes") == 16384.0
        assert value(ok, "probe_dicom_cached") == 0.0
        phases = {labels["phase"] for labels, _ in ok["probe_dicom_phase_duration_seconds"]}
        assert phases == {"resolve", "connect", "associate", "echo", "release"}
        assert ok["probe_dicom_peer_info"][0][0]["implementation_class_uid"]

        rejected = await http.probe(f"{REJECTING}:{port}")
        assert value(rejected, "probe_success") == 0.0
        assert value(rejected, "probe_dicom_outcome", outcome="rejected_permanent") == 1.0
        assert rejected["probe_dicom_association_rejected"] == [
            ({"result": "1", "source": "1", "reason": "7"}, 1.0)
        ]

        failing = await http.probe(f"{FAILING}:{port}")
        assert value(failing, "probe_dicom_outcome", outcome="echo_failed_status") == 1.0
        assert value(failing, "probe_dicom_echo_status") == 0x0110

        refused = await http.probe(f"{NOBODY}:{port}")
        assert value(refused, "probe_dicom_outcome", outcome="connection_refused") == 1.0
        assert len(refused["probe_dicom_outcome"]) == 1

        # The module's called AE, and the target's own, reach the peer.
        named = await http.probe(f"OTHER@{HEALTHY}:{port}", module="pacs")
        assert value(named, "probe_success") == 1.0

        _, text, _ = await http.get("/metrics")
        own = parse(text)
        total = "echoprobe_exporter_probes_total"
        assert value(own, total, module="dicom_echo", outcome="success") == 1.0
        assert value(own, total, module="dicom_echo", outcome="rejected_permanent") == 1.0
        assert value(own, total, module="pacs", outcome="success") == 1.0
        assert value(own, "echoprobe_exporter_probe_duration_seconds_count", module="pacs") == 1
        assert value(own, "echoprobe_exporter_build_info") == 1.0
        assert value(own, "process_resident_memory_bytes") is not None
        assert value(own, "python_gc_objects_collected_total") is not None


async def test_scrape_timeout_bounds_the_answer(tmp_path: Path) -> None:
    async with fleet() as scp, exporter(tmp_path) as running, client(running) as http:
        started = time.monotonic()
        metrics = (
            await http.probe(
                f"{SILENT}:{scp.port}",
                module="dicom_echo",
            )
            if False
            else parse(
                (
                    await http.get(
                        "/probe",
                        params={"target": f"{SILENT}:{scp.port}"},
                        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
                    )
                )[1]
            )
        )
        elapsed = time.monotonic() - started
        # The module allows 20 s; the scrape 1.5 s minus the 0.5 s offset.
        assert elapsed < 10.0
        assert value(metrics, "probe_success") == 0.0
        outcome = metrics["probe_dicom_outcome"][0][0]["outcome"]
        assert outcome in ("deadline_exceeded", "acse_timeout")
        assert 0.5 <= (value(metrics, "probe_duration_seconds") or 0) <= 5.0


async def test_identical_probes_share_one_association(tmp_path: Path) -> None:
    async with fleet() as scp, exporter(tmp_path) as running, client(running) as http:
        before = scp.counters.associations
        answers = await asyncio.gather(*(http.probe(f"{SLOW}:{scp.port}") for _ in range(5)))
        assert scp.counters.associations - before == 1
        assert all(value(a, "probe_success") == 1.0 for a in answers)
        assert sorted(value(a, "probe_dicom_cached") or 0.0 for a in answers) == [0, 1, 1, 1, 1]
        own = parse((await http.get("/metrics"))[1])
        assert value(own, "echoprobe_exporter_probes_shared_total", how="inflight") == 4.0


async def test_min_interval_and_per_host(tmp_path: Path) -> None:
    async with fleet() as scp, exporter(tmp_path) as running, client(running) as http:
        before = scp.counters.associations
        first = await http.probe(f"{HEALTHY}:{scp.port}", module="cached")
        second = await http.probe(f"{HEALTHY}:{scp.port}", module="cached")
        assert scp.counters.associations - before == 1
        assert (value(first, "probe_dicom_cached"), value(second, "probe_dicom_cached")) == (0, 1)
        assert value(second, "probe_success") == 1.0

        # Different probes of one host wait for each other (limits.per_host: 1).
        scp.counters.peak_associations = 0
        answers = await asyncio.gather(*(http.probe(f"AE{i}@{SLOW}:{scp.port}") for i in range(3)))
        assert all(value(a, "probe_success") == 1.0 for a in answers)
        assert scp.counters.peak_associations == 1


async def test_tls_probe(tmp_path: Path) -> None:
    kit: CertKit = shared_kit()
    server_tls = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    config = f"modules:\n  dicom_tls:\n    dicom:\n      tls:\n        ca_file: {kit.ca}\n"
    async with (
        EchoSCP("127.0.0.1", 0, tls=server_tls, idle_timeout=10.0) as scp,
        exporter(tmp_path, config) as running,
        client(running) as http,
    ):
        metrics = await http.probe(f"127.0.0.1:{scp.port}", module="dicom_tls")
        assert value(metrics, "probe_success") == 1.0
        assert metrics["probe_tls_version_info"][0][0]["version"].startswith("TLS 1.")
        expiry = value(metrics, "probe_ssl_earliest_cert_expiry") or 0.0
        assert expiry > time.time()
        assert "tls" in {
            labels["phase"] for labels, _ in metrics["probe_dicom_phase_duration_seconds"]
        }


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(CONFIG)
    running = await start(ServeOptions(str(path), "::1", 0))
    try:
        assert running.addresses == [f"[::1]:{running.port}"]
        async with (
            EchoSCP("::1", 0, idle_timeout=10.0) as scp,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
        ):
            http = Client(session, f"http://[::1]:{running.port}")
            metrics = await http.probe(f"PACS@[::1]:{scp.port}")
            assert value(metrics, "probe_success") == 1.0
    finally:
        await running.stop()


# --- requests refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/probe", 400, "target parameter is missing"),
        ("/probe?target=127.0.0.1&module=nope", 400, "unknown module"),
        ("/probe?target=127.0.0.1&colour=red", 400, "unknown parameter"),
        ("/probe?target=127.0.0.1&target=127.0.0.2", 400, "more than once"),
        ("/probe?target=bad%20host", 400, "invalid target"),
        ("/probe?target=127.0.0.1:0", 400, "invalid target"),
        ("/probe?target=127.0.0.1&debug=maybe", 400, "debug"),
        ("/probe?target=10.9.8.7", 403, "allowed_targets"),
        ("/probe?target=pacs.example.org", 403, "allowed_targets"),
        ("/logs?id=12345", 404, "not among"),
        ("/nothing-here", 404, ""),
    ],
)
async def test_refusals(tmp_path: Path, path: str, status: int, words: str) -> None:
    async with exporter(tmp_path) as running, client(running) as http:
        got, text, _ = await http.get(path)
        assert got == status
        assert words in text
        assert text.count("\n") <= 1
        own = parse((await http.get("/metrics"))[1])
        assert value(own, "echoprobe_exporter_requests_refused_total", code=str(status)) == 1.0


async def test_bad_scrape_timeout_header_and_wrong_method(tmp_path: Path) -> None:
    async with exporter(tmp_path) as running, client(running) as http:
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "soon"}
        status, text, _ = await http.get("/probe?target=127.0.0.1", headers=headers)
        assert (status, "Scrape-Timeout" in text) == (400, True)
        async with http.session.post(http.base + "/probe?target=127.0.0.1") as response:
            assert response.status == 405
        status, _, _ = await http.get("/-/reload")
        assert status == 405


async def test_pages(tmp_path: Path) -> None:
    async with fleet() as scp, exporter(tmp_path) as running, client(running) as http:
        status, text, _ = await http.get(f"/probe?target={HEALTHY}:{scp.port}&debug=true")
        assert status == 200
        assert text.startswith("Logs for the probe:\n")
        assert "Metrics that would have been returned:" in text
        assert "probe_success 1.0" in text
        assert "Module configuration:\ndicom_echo:" in text
        await http.get("/probe?target=<b>127.0.0.1</b>")  # refused, and never shown raw
        status, page, response = await http.get("/")
        assert status == 200
        assert response.content_type == "text/html"
        assert 'href="logs?id=1"' in page
        assert "<b>" not in page
        status, log, _ = await http.get("/logs?id=1")
        assert (status, log) == (200, text)
        for path in ("/-/healthy", "/-/ready"):
            assert (await http.get(path))[:2] == (200, "OK\n")
        status, config, _ = await http.get("/config")
        assert "min_interval: 30s" in config


async def test_reload(tmp_path: Path) -> None:
    async with fleet() as scp, exporter(tmp_path) as running, client(running) as http:
        path = tmp_path / "exporter.yml"
        path.write_text(CONFIG + "  added:\n    timeout: 2s\n")
        async with http.session.post(http.base + "/-/reload") as response:
            assert response.status == 200
        assert value(await http.probe(f"{HEALTHY}:{scp.port}", module="added"), "probe_success")

        path.write_text(CONFIG + "  broken:\n    timeout: later\n")
        async with http.session.post(http.base + "/-/reload") as response:
            assert response.status == 500
            assert f"{path}:14: timeout: invalid duration" in await response.text()
        own = parse((await http.get("/metrics"))[1])
        assert value(own, "echoprobe_exporter_config_last_reload_successful") == 0.0
        # The old configuration still serves.
        assert value(await http.probe(f"{HEALTHY}:{scp.port}", module="added"), "probe_success")


# --- hostile clients -------------------------------------------------------------------------


async def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read(4096)
    finally:
        writer.close()


async def test_oversized_requests_are_refused(tmp_path: Path) -> None:
    async with exporter(tmp_path) as running:
        long_url = b"GET /probe?target=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await raw_exchange(running.port, long_url)
        assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:80]
        big_header = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n"
        answer = await raw_exchange(running.port, big_header)
        assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:80]
        many = b"GET /-/healthy HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
        answer = await raw_exchange(running.port, many + b"\r\n")
        assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:80]


async def test_slowloris_and_floods_do_not_hold_the_exporter(tmp_path: Path) -> None:
    async with (
        fleet() as scp,
        exporter(tmp_path, max_connections=20, idle_timeout=2.0, header_timeout=1.0) as running,
        client(running) as http,
    ):
        port = running.port
        # A client trickling its headers is cut off after header_timeout.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        closed = False
        for byte in b"GET /probe?target=127.0.0.1 HTTP/1.1\r\nHost: slow\r\n":
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    if await reader.read(1) == b"":
                        closed = True
                        break
            if time.monotonic() - started > 10.0:
                break
        writer.close()
        assert closed

        # A flood of idle connections: beyond max_connections the oldest idle ones are closed
        # to make room, the rest after idle_timeout; a scraper still gets through.
        flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        try:
            assert running.exporter.guard is not None
            assert running.exporter.guard.open <= 20
            ok = await http.probe(f"{HEALTHY}:{scp.port}")
            assert value(ok, "probe_success") == 1.0
            ends = await asyncio.gather(
                *(asyncio.wait_for(r.read(1), 10.0) for r, _ in flood), return_exceptions=True
            )
            assert all(end in (b"",) or isinstance(end, ConnectionError) for end in ends)
        finally:
            for _, w in flood:
                w.close()
        assert running.exporter.guard.open <= 1


# --- authentication and HTTPS ----------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


async def test_basic_auth(tmp_path: Path) -> None:
    digest = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    web = f"basic_auth_users:\n  prometheus: '{digest}'\n"
    async with exporter(tmp_path, web=web) as running, client(running) as http:
        for auth in ({}, basic("prometheus", "wrong"), basic("x", "y")):
            status, _, response = await http.get("/-/healthy", headers=auth)
            assert status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
        status, _, _ = await http.get("/-/healthy", headers={"Authorization": "Basic !!"})
        assert status == 401
        good = basic("prometheus", "s3cret")
        for _ in range(3):
            assert (await http.get("/-/healthy", headers=good))[0] == 200
        own = parse((await http.get("/metrics", headers=good))[1])
        assert value(own, "echoprobe_exporter_requests_refused_total", code="401") == 4.0


async def test_https(tmp_path: Path) -> None:
    kit = shared_kit()
    web = f"tls_server_config:\n  cert_file: {kit.server_cert}\n  key_file: {kit.server_key}\n"
    trusted = ssl.create_default_context(cafile=kit.ca)
    async with exporter(tmp_path, web=web) as running:
        connector = aiohttp.TCPConnector(ssl=trusted)
        async with client(running, "https", connector=connector) as https:
            assert (await https.get("/-/ready"))[:2] == (200, "OK\n")
        async with client(running) as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.get("/-/ready")


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def command_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    return env


def wait_for_line(path: Path, words: str, process: subprocess.Popen[bytes], limit: float) -> str:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for line in path.read_text(errors="replace").splitlines():
            if words in line:
                return line
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{words!r} not logged; log:\n{path.read_text(errors='replace')}")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_command(tmp_path: Path, scp_factory: ScpFactory, command_env: dict[str, str]) -> None:
    scp = scp_factory()
    config = tmp_path / "exporter.yml"
    config.write_text("modules:\n  dicom_echo:\n    timeout: 5s\n")
    log = tmp_path / "stderr.log"
    argv = [sys.executable, "-m", "echoprobe", "exporter", "--config.file", str(config)]
    check = subprocess.run(
        [*argv, "--config.check"], check=False, capture_output=True, timeout=30, env=command_env
    )
    assert (check.returncode, check.stdout) == (0, b"OK\n")
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*argv, "--web.listen-address", "127.0.0.1:0", "--log.format", "json"],
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            env=command_env,
        )
    try:
        line = wait_for_line(log, "Listening on", process, 30.0)
        address = line.split('"address": "', 1)[1].split('"', 1)[0]
        base = f"http://{address}"
        status, text = http_get(f"{base}/probe?target=127.0.0.1:{scp.port}")
        assert status == 200
        assert "probe_success 1.0" in text

        config.write_text("modules:\n  dicom_echo:\n  second:\n    timeout: 2s\n")
        process.send_signal(signal.SIGHUP)
        end = time.monotonic() + 15.0
        while time.monotonic() < end:
            status, text = http_get(f"{base}/probe?module=second&target=127.0.0.1:{scp.port}")
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, text

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_command_failures(tmp_path: Path, command_env: dict[str, str]) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("modules:\n  dicom_echo:\n    timeout: never\n")
    base = [sys.executable, "-m", "echoprobe", "exporter", "--config.file", str(config)]
    bad = subprocess.run(
        [*base, "--web.listen-address", "127.0.0.1:0"],
        check=False,
        capture_output=True,
        timeout=30,
        env=command_env,
    )
    assert bad.returncode == 1
    assert "level=error" in bad.stderr.decode()
    assert f"{config}:3: timeout: invalid duration" in bad.stderr.decode()
    checked = subprocess.run(
        [*base, "--config.check"], check=False, capture_output=True, timeout=30, env=command_env
    )
    assert checked.returncode == 1
    assert checked.stderr.decode().startswith(f"{config}:3: ")
    usage = subprocess.run(
        [*base, "--web.listen-address", "nowhere"],
        check=False,
        capture_output=True,
        timeout=30,
        env=command_env,
    )
    assert usage.returncode == 2
    usage = subprocess.run(
        [*base, "--log.level", "loud"],
        check=False,
        capture_output=True,
        timeout=30,
        env=command_env,
    )
    assert usage.returncode == 2
