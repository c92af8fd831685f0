"""Orthanc (Debian's `orthanc` package, 1.10) both ways, from a generated configuration.

* Our `echoscu` against Orthanc's DICOM server, with its called-AE check off and on.
* Orthanc's REST `POST /modalities/{id}/echo` against `echoprobe scp`, healthy and faulty (the
  modality is declared at run time with `PUT /modalities/{id}`, once the scp's port is known).
* DICOM TLS both ways (Orthanc ≥ 1.9: `DicomTlsEnabled`, and `UseDicomTls` per modality).

Loopback: Orthanc 1.10 has no bind-address option, so its HTTP server refuses every client but
localhost (`RemoteAccessAllowed: false`) and every test connects to 127.0.0.1 only. No plugin
is loaded, jobs are not restored, storage is a temporary directory; each instance is stopped by
PID at the end of the module.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.interop.peers import (
    FROM_PEER,
    LOCAL,
    TO_PEER,
    OurScp,
    assert_counters,
    matrix,
    our_echoscu,
    program,
    require,
    start_server,
)
from tests.support.servers import SubprocessServer, free_port, wait_for
from tests.support.tls_certs import CertKit, shared_kit

pytestmark = pytest.mark.interop

PEER = "Orthanc"
AE = "ORTHANC"
DCMTK_UID_PREFIX = "1.2.276.0.7230010.3.0."  # Orthanc answers with its DCMTK's UID
HTTP_LIMIT = 20.0  # seconds for one REST call (Orthanc's own SCU timeout is 5 s)


@dataclass
class Orthanc:
    server: SubprocessServer
    http_port: int

    @property
    def dicom_port(self) -> int:
        return self.server.port

    def rest(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One REST call to 127.0.0.1: (HTTP status, decoded JSON body or text)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{LOCAL}:{self.http_port}{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_LIMIT) as answer:
                return answer.status, _decode(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _config(root: Path, http_port: int, dicom_port: int, **extra: Any) -> dict[str, Any]:
    storage = root / "storage"
    storage.mkdir(exist_ok=True)
    return {
        "Name": "echoprobe-interop",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "TemporaryDirectory": str(root),
        "Plugins": [],
        "LuaScripts": [],
        "ConcurrentJobs": 1,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "HttpThreadsCount": 4,
        "RemoteAccessAllowed": False,  # HTTP from localhost only
        "AuthenticationEnabled": False,
        "SslEnabled": False,
        "HttpDescribeErrors": True,
        "HttpProxy": "",
        "WebDavEnabled": False,  # nothing served but the REST API, and only to localhost
        "DicomServerEnabled": True,
        "DicomAet": AE,
        "DicomPort": dicom_port,
        "DicomThreadsCount": 2,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomCheckModalityHost": False,
        "DicomScuTimeout": 5,
        "DicomScpTimeout": 10,
        "DicomAssociationCloseDelay": 0,
        "DicomModalities": {},
        "DicomModalitiesInDatabase": False,
        "OrthancPeers": {},
        "SaveJobs": False,
        "StorageCompression": False,
        **extra,
    }


def _start(root: Path, **extra: Any) -> Orthanc:
    binary = require(program("Orthanc"), "Orthanc (Debian package orthanc)")
    http_port = free_port()

    def argv(dicom_port: int) -> list[str]:
        config = root / f"orthanc-{dicom_port}.json"
        config.write_text(json.dumps(_config(root, http_port, dicom_port, **extra), indent=2))
        return [binary, "--no-jobs", "--verbose", str(config)]

    server = start_server(argv, root / "orthanc.log", time_limit=90.0, ready_timeout=30.0)
    orthanc = Orthanc(server, http_port)

    def http_ready() -> bool:
        try:
            return orthanc.rest("GET", "/system")[0] == 200
        except OSError:
            return False

    if not wait_for(http_ready, timeout=20.0, interval=0.1):
        server.stop()
        raise RuntimeError(f"Orthanc's REST API did not answer: {server.log()}")
    return orthanc


@pytest.fixture(scope="module")
def orthanc_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Orthanc]]:
    started: dict[str, Orthanc] = {}

    def get(name: str, **extra: Any) -> Orthanc:
        if name not in started:
            started[name] = _start(tmp_path_factory.mktemp(f"orthanc-{name}"), **extra)
        return started[name]

    yield get
    for orthanc in started.values():
        orthanc.server.stop()


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def _tls(kit: CertKit) -> dict[str, Any]:
    return {
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": kit.server_cert,
        "DicomTlsPrivateKey": kit.server_key,
        "DicomTlsTrustedCertificates": kit.ca,
        "DicomTlsRemoteCertificateRequired": True,
    }


def _their_uid(stderr: str) -> str:
    """The implementation class UID of the A-ASSOCIATE-AC (the last dump in a `-d` log)."""
    found = ""
    for line in stderr.splitlines():
        if line.startswith("D: Their Implementation Class UID:"):
            found = line.split(":", 2)[2].strip()
    return found


# ------------------------------------------------------------------ echoprobe → Orthanc


@matrix(PEER, TO_PEER, "C-ECHO, called-AE check off (any called AE accepted)")
def test_echo_called_ae_check_off(orthanc_factory: Callable[..., Orthanc]) -> None:
    orthanc = orthanc_factory("plain")
    done = our_echoscu("-d", "-aet", "EP-OFF", "-aec", "WHATEVER", LOCAL, str(orthanc.dicom_port))
    assert done.code == 0, done.describe()
    assert "I: Received Echo Response (Success)" in done.stderr
    assert _their_uid(done.stderr).startswith(DCMTK_UID_PREFIX), done.stderr
    heard = "Incoming Echo request from AET EP-OFF on IP 127.0.0.1, calling AET WHATEVER"
    assert wait_for(lambda: heard in orthanc.server.log()), orthanc.server.log()


@matrix(PEER, TO_PEER, "called-AE check on: ORTHANC accepted, another AE rejected 1,1,7")
def test_echo_called_ae_check_on(orthanc_factory: Callable[..., Orthanc]) -> None:
    orthanc = orthanc_factory("checked", DicomCheckCalledAet=True)
    done = our_echoscu("-aec", AE, LOCAL, str(orthanc.dicom_port))
    assert done.code == 0, done.describe()
    wrong = our_echoscu("-aec", "NOT-ORTHANC", LOCAL, str(orthanc.dicom_port))
    assert wrong.code == 1, wrong.describe()
    assert wrong.stderr.splitlines()[-2:] == [
        "F: Result: Rejected Permanent, Source: Service User",
        "F: Reason: Called AE Title Not Recognized",
    ]
    refused = "Rejected association, because of a bad called AET in the request (NOT-ORTHANC)"
    assert wait_for(lambda: refused in orthanc.server.log()), orthanc.server.log()


@matrix(PEER, TO_PEER, "DICOM TLS: our echoscu +tls with a client certificate")
def test_echo_over_tls(orthanc_factory: Callable[..., Orthanc], kit: CertKit) -> None:
    orthanc = orthanc_factory("tls", **_tls(kit))
    done = our_echoscu(
        "-d",
        "+tls",
        kit.client_key,
        kit.client_cert,
        "+cf",
        kit.ca,
        "-aec",
        AE,
        LOCAL,
        str(orthanc.dicom_port),
    )
    assert done.code == 0, done.describe()
    assert _their_uid(done.stderr).startswith(DCMTK_UID_PREFIX), done.stderr
    plain = our_echoscu("-aec", AE, LOCAL, str(orthanc.dicom_port))
    assert plain.code == 1, plain.describe()


# ------------------------------------------------------------------ Orthanc → echoprobe


def _declare(orthanc: Orthanc, name: str, scp: OurScp, aet: str, **extra: Any) -> None:
    status, body = orthanc.rest(
        "PUT",
        f"/modalities/{name}",
        {"AET": aet, "Host": LOCAL, "Port": scp.port, **extra},
    )
    assert status == 200, body


@matrix(PEER, FROM_PEER, "REST /modalities/{id}/echo to a healthy scp")
def test_rest_echo_healthy(orthanc_factory: Callable[..., Orthanc], tmp_path: Path) -> None:
    orthanc = orthanc_factory("plain")
    scp = OurScp(tmp_path, "--ae", "EP-SCP", "--calling-ae", AE)
    try:
        _declare(orthanc, "healthy", scp, "EP-SCP")
        status, body = orthanc.rest("POST", "/modalities/healthy/echo", {})
    finally:
        counters = scp.stop()
    assert status == 200, body
    # Orthanc called us as ORTHANC → EP-SCP (both checked by the scp), one echo, released.
    assert_counters(scp, counters, associations=1, echoes=1, releases=1, rejected=0)


@matrix(PEER, FROM_PEER, "REST echo to a faulty scp: A-ASSOCIATE-RJ, then status 0x0110")
def test_rest_echo_faulty(orthanc_factory: Callable[..., Orthanc], tmp_path: Path) -> None:
    orthanc = orthanc_factory("plain")
    scp = OurScp(tmp_path, "--fault", "ae=BUSY;reject=2,3,2", "--fault", "ae=FAIL;status=0x0110")
    try:
        _declare(orthanc, "busy", scp, "BUSY")
        _declare(orthanc, "failing", scp, "FAIL")
        busy_status, busy_body = orthanc.rest("POST", "/modalities/busy/echo", {})
        fail_status, fail_body = orthanc.rest("POST", "/modalities/failing/echo", {})
    finally:
        counters = scp.stop()
    assert busy_status != 200, busy_body
    assert fail_status != 200, fail_body
    assert_counters(scp, counters, rejected=1, associations=1, echoes=1)


@matrix(PEER, FROM_PEER, "DICOM TLS: REST echo with UseDicomTls to scp +tls (-rc)")
def test_rest_echo_over_tls(
    orthanc_factory: Callable[..., Orthanc], kit: CertKit, tmp_path: Path
) -> None:
    orthanc = orthanc_factory("tls", **_tls(kit))
    scp = OurScp(tmp_path, "+tls", kit.server_key, kit.server_cert, "+cf", kit.ca, "-rc")
    try:
        _declare(orthanc, "secure", scp, "EP-TLS", UseDicomTls=True)
        status, body = orthanc.rest("POST", "/modalities/secure/echo", {})
    finally:
        counters = scp.stop()
    assert status == 200, body
    assert_counters(scp, counters, associations=1, echoes=1)
