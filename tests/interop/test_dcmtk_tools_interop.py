"""DCMTK's command-line tools against `echoprobe scp` (run as a user would run it), and
`storescp +tls` against our `echoscu`.

* `echoscu +tls` against `echoprobe scp +tls`: client certificates required (`-rc`, the
  default), verified only when presented (`-vc`), or ignored (`-ic`).
* `storescu` and `findscu` propose contexts a Verification SCP rejects: they see
  "Abstract Syntax Not Supported" in our A-ASSOCIATE-AC, and the scp counts the rejected
  contexts and the connection they close without a release.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import StorescpFactory
from tests.interop.peers import (
    FROM_PEER,
    LOCAL,
    OUR_UID,
    OUR_VERSION,
    TO_PEER,
    OurScp,
    assert_counters,
    dcmtk,
    matrix,
    our_echoscu,
    require,
    run,
)
from tests.support.servers import wait_for
from tests.support.tls_certs import CertKit, shared_kit

pytestmark = pytest.mark.interop

ECHOSCU = "DCMTK echoscu"
STORESCU = "DCMTK storescu"
FINDSCU = "DCMTK findscu"
STORESCP = "DCMTK storescp"
CT_IMAGE_STORAGE_COUNT = 128  # storescu proposes 128 storage contexts by default


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def _ac_dump(output: str) -> str:
    """DCMTK's debug dump of the A-ASSOCIATE-AC it received."""
    start = output.find("BEGIN A-ASSOCIATE-AC")
    end = output.find("END A-ASSOCIATE-AC")
    assert start >= 0, output
    assert end > start, output
    return output[start:end]


def _assert_ours(ac: str) -> None:
    assert f"Their Implementation Class UID:    {OUR_UID}" in ac
    assert f"Their Implementation Version Name: {OUR_VERSION}" in ac


def _dicom_file(path: Path) -> Path:
    """A minimal Secondary Capture object for storescu (made with pydicom)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Interop^Test"
    ds.PatientID = "EP1"
    ds.Modality = "OT"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


# ------------------------------------------------------------------------ plain TCP


@matrix(ECHOSCU, FROM_PEER, "C-ECHO; echoscu sees our implementation UID and version")
def test_echoscu_plain(tmp_path: Path) -> None:
    echoscu = require(dcmtk("echoscu"), ECHOSCU)
    scp = OurScp(tmp_path, "--ae", "EP-SCP")
    try:
        done = run([echoscu, "-d", "-aet", "DCMTK", "-aec", "EP-SCP", LOCAL, str(scp.port)])
        assert done.code == 0, done.describe()
        assert "I: Received Echo Response (Success)" in done.output
        _assert_ours(_ac_dump(done.output))
        wrong = run([echoscu, "-aec", "SOMEONE", LOCAL, str(scp.port)])
        assert wrong.code == 1, wrong.describe()
        assert "F: Reason: Called AE Title Not Recognized" in wrong.output
    finally:
        counters = scp.stop()
    assert_counters(scp, counters, associations=1, echoes=1, releases=1, rejected=1)


@matrix(STORESCU, FROM_PEER, "128 storage contexts all rejected (Abstract Syntax Not Supported)")
def test_storescu_contexts_rejected(tmp_path: Path) -> None:
    storescu = require(dcmtk("storescu"), STORESCU)
    scp = OurScp(tmp_path)
    try:
        done = run([storescu, "-d", LOCAL, str(scp.port), str(_dicom_file(tmp_path / "sc.dcm"))])
        assert done.code == 1, done.describe()
        ac = _ac_dump(done.output)
        _assert_ours(ac)
        assert ac.count("(Abstract Syntax Not Supported)") == CT_IMAGE_STORAGE_COUNT
        assert "F: No Acceptable Presentation Contexts" in done.output
    finally:
        counters = scp.stop()
    assert_counters(
        scp,
        counters,
        associations=1,
        echoes=0,
        contexts_rejected=CT_IMAGE_STORAGE_COUNT,
        closed_unreleased=1,
    )


@matrix(FINDSCU, FROM_PEER, "C-FIND context rejected; closed without release is counted")
def test_findscu_context_rejected(tmp_path: Path) -> None:
    findscu = require(dcmtk("findscu"), FINDSCU)
    scp = OurScp(tmp_path)
    try:
        done = run([findscu, "-d", "-P", "-k", "QueryRetrieveLevel=PATIENT", LOCAL, str(scp.port)])
        assert done.code != 0, done.describe()
        ac = _ac_dump(done.output)
        _assert_ours(ac)
        assert "Context ID:        1 (Abstract Syntax Not Supported)" in ac
        assert "No Acceptable Presentation Contexts" in done.output
    finally:
        counters = scp.stop()
    assert_counters(scp, counters, contexts_rejected=1, closed_unreleased=1)


# ------------------------------------------------------------------------------ TLS


def _tls_scp(tmp_path: Path, kit: CertKit, *extra: str) -> OurScp:
    return OurScp(tmp_path, "+tls", kit.server_key, kit.server_cert, "+cf", kit.ca, *extra)


def _tls_echoscu(kit: CertKit, port: int, *identity: str) -> list[str]:
    echoscu = require(dcmtk("echoscu"), ECHOSCU)
    return [echoscu, "-d", *identity, "+cf", kit.ca, LOCAL, str(port)]


@matrix(ECHOSCU, FROM_PEER, "+tls with a client certificate; scp requires one (-rc)")
def test_echoscu_tls_client_certificate_required(tmp_path: Path, kit: CertKit) -> None:
    scp = _tls_scp(tmp_path, kit)
    try:
        argv = _tls_echoscu(kit, scp.port, "+tls", kit.client_key, kit.client_cert)
        done = run(argv)
        assert done.code == 0, done.describe()
        _assert_ours(_ac_dump(done.output))
        argv = _tls_echoscu(kit, scp.port, "+tla")
        anonymous = run(argv)
        assert anonymous.code == 1, anonymous.describe()
        assert "F: Association Request Failed" in anonymous.output
    finally:
        counters = scp.stop()
    assert "client certificate required" in scp.log()
    # The anonymous client never got past the handshake: one association, one echo.
    assert_counters(scp, counters, associations=1, echoes=1)


@matrix(ECHOSCU, FROM_PEER, "+tla without a certificate; scp verifies one only if presented (-vc)")
def test_echoscu_tls_certificate_if_presented(tmp_path: Path, kit: CertKit) -> None:
    scp = _tls_scp(tmp_path, kit, "-vc")
    try:
        for identity in (("+tla",), ("+tls", kit.client_key, kit.client_cert)):
            argv = _tls_echoscu(kit, scp.port, *identity)
            done = run(argv)
            assert done.code == 0, done.describe()
            _assert_ours(_ac_dump(done.output))
    finally:
        counters = scp.stop()
    assert "client certificate verified if presented" in scp.log()
    assert_counters(scp, counters, associations=2, echoes=2)


@matrix(ECHOSCU, FROM_PEER, "+tls with an untrusted client certificate; scp ignores it (-ic)")
def test_echoscu_tls_certificate_ignored(tmp_path: Path, kit: CertKit) -> None:
    scp = OurScp(tmp_path, "+tls", kit.server_key, kit.server_cert, "-ic")
    try:
        # good.crt is issued by a CA the scp was not told about (no +cf at all).
        argv = _tls_echoscu(kit, scp.port, "+tls", kit.good_key, kit.good_cert)
        done = run(argv)
        assert done.code == 0, done.describe()
    finally:
        counters = scp.stop()
    assert_counters(scp, counters, echoes=1)


@matrix(STORESCP, TO_PEER, "+tls both ways authenticated; storescp sees our UID and version")
def test_storescp_tls(storescp_factory: StorescpFactory, kit: CertKit) -> None:
    server = storescp_factory(
        "-d", "+tls", kit.server_key, kit.server_cert, "+cf", kit.ca, aet="TLS-SCP"
    )
    done = our_echoscu(
        "-v",
        "+tls",
        kit.client_key,
        kit.client_cert,
        "+cf",
        kit.ca,
        "-aec",
        "TLS-SCP",
        LOCAL,
        str(server.port),
    )
    assert done.code == 0, done.describe()
    assert "I: Received Echo Response (Success)" in done.stderr
    assert wait_for(lambda: f"Their Implementation Class UID:    {OUR_UID}" in server.log())
    assert f"Their Implementation Version Name: {OUR_VERSION}" in server.log()
