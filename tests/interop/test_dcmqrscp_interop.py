"""DCMTK `dcmqrscp` (a query/retrieve SCP that also answers C-ECHO) against our `echoscu`.

dcmqrscp runs in its default forking mode: 3.6.7's `--single-process` crashes after one
association. Its debug log (children included) shows what it received from us.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.interop.peers import (
    LOCAL,
    OUR_UID,
    OUR_VERSION,
    TO_PEER,
    matrix,
    our_echoscu,
    program,
    require,
    start_server,
)
from tests.support.servers import SubprocessServer, wait_for

pytestmark = pytest.mark.interop

PEER = "DCMTK dcmqrscp"
AE = "DCMQRSCP"
DCMTK_UID_PREFIX = "1.2.276.0.7230010.3.0."  # OFFIS' implementation class UID root

CONFIG = """\
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 8

HostTable BEGIN
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{ae}  {db}  RW  (9, 1024mb)  ANY
AETable END
"""


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubprocessServer]:
    binary = require(program("dcmqrscp"), "DCMTK dcmqrscp")
    root = tmp_path_factory.mktemp("dcmqrscp")
    (root / "db").mkdir()

    def argv(port: int) -> list[str]:
        config = root / f"dcmqrscp-{port}.cfg"
        config.write_text(CONFIG.format(port=port, ae=AE, db=root / "db"))
        return [binary, "-d", "-c", str(config)]

    server = start_server(argv, root / "dcmqrscp.log")
    yield server
    server.stop()


def _association_logs(log: str) -> list[str]:
    """dcmqrscp's A-ASSOCIATE-RQ dumps, in order."""
    return log.split("BEGIN A-ASSOCIATE-RQ")[1:]


@matrix(PEER, TO_PEER, "C-ECHO; both sides see each other's implementation UID and version")
def test_echo_accepted(dcmqrscp: SubprocessServer) -> None:
    before = len(_association_logs(dcmqrscp.log()))
    done = our_echoscu("-d", "-aet", "EP-QR", "-aec", AE, LOCAL, str(dcmqrscp.port))
    assert done.code == 0, done.describe()
    assert "I: Received Echo Response (Success)" in done.stderr
    assert f"Their Implementation Class UID:    {DCMTK_UID_PREFIX}" in done.stderr
    assert "Their Implementation Version Name: OFFIS_DCMTK_" in done.stderr
    assert wait_for(lambda: len(_association_logs(dcmqrscp.log())) == before + 1)
    dumps = _association_logs(dcmqrscp.log())
    assert f"Their Implementation Class UID:    {OUR_UID}" in dumps[-1]
    assert f"Their Implementation Version Name: {OUR_VERSION}" in dumps[-1]
    assert "Association Received (localhost:EP-QR -> DCMQRSCP)" in dcmqrscp.log()


@matrix(PEER, TO_PEER, "unknown called AE: A-ASSOCIATE-RJ 1,1,7 reported in DCMTK's words")
def test_unknown_called_ae_rejected(dcmqrscp: SubprocessServer) -> None:
    done = our_echoscu("-aec", "NOT-THERE", LOCAL, str(dcmqrscp.port))
    assert done.code == 1, done.describe()
    assert done.stderr.splitlines()[-3:] == [
        "F: Association Rejected:",
        "F: Result: Rejected Permanent, Source: Service User",
        "F: Reason: Called AE Title Not Recognized",
    ]
    assert wait_for(lambda: "Refusing Association (BadAEService)" in dcmqrscp.log())


@matrix(PEER, TO_PEER, "--repeat 3 and --abort: three echoes, then A-ABORT")
def test_repeat_then_abort(dcmqrscp: SubprocessServer) -> None:
    aborted = dcmqrscp.log().count("I: Association Aborted")
    done = our_echoscu("-v", "--repeat", "3", "--abort", "-aec", AE, LOCAL, str(dcmqrscp.port))
    assert done.code == 0, done.describe()
    assert done.stderr.count("Received Echo Response (Success)") == 3
    assert "I: Aborting Association" in done.stderr
    assert wait_for(lambda: dcmqrscp.log().count("I: Association Aborted") == aborted + 1)
