"""GDCM's `gdcmscu --echo` (Debian `libgdcm-tools`) against `echoprobe scp`.

GDCM is a C-ECHO SCU only here (no Verification SCP tool), so one direction. GDCM 3.0.21
aborts on its own right after the A-RELEASE-RP: the process dies of SIGABRT ("ProtocolStream
as nullptr is invalid"), against DCMTK's dcmqrscp just as against us. So its exit code says
nothing; its debug dump (`-D`) and the scp's counters say what happened on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.interop.peers import (
    FROM_PEER,
    LOCAL,
    OUR_UID,
    OUR_VERSION,
    OurScp,
    assert_counters,
    matrix,
    program,
    require,
    run,
)

pytestmark = pytest.mark.interop

PEER = "GDCM gdcmscu"


def _gdcmscu() -> str:
    return require(program("gdcmscu"), "GDCM gdcmscu (Debian package libgdcm-tools)")


GDCM_CRASH = "ProtocolStream as nullptr is invalid"


def _echo(binary: str, called: str, port: int) -> list[str]:
    return [binary, "-D", "--echo", "--aetitle", "GDCMSCU", "--call", called, LOCAL, str(port)]


@matrix(PEER, FROM_PEER, "C-ECHO accepted (GDCM aborts after the release)")
def test_gdcm_echo(tmp_path: Path) -> None:
    binary = _gdcmscu()  # skips before the scp starts when GDCM is absent
    scp = OurScp(tmp_path, "--ae", "EP-SCP", "--calling-ae", "GDCMSCU")
    try:
        done = run(_echo(binary, "EP-SCP", scp.port))
    finally:
        counters = scp.stop()
    # Exit 0, or GDCM's own abort after the release (SIGABRT).
    assert done.code == 0 or (done.code < 0 and GDCM_CRASH in done.stderr), done.describe()
    # What GDCM received: our A-ASSOCIATE-AC's user information and a Success status.
    assert f"ImplementationClassUID: {OUR_UID}" in done.output, done.describe()
    assert f"ImplementationVersionName: {OUR_VERSION}" in done.output
    assert "(0000,0900) ?? (US) 0 " in done.output
    assert_counters(scp, counters, associations=1, echoes=1, releases=1, rejected=0)


@matrix(PEER, FROM_PEER, "called AE unknown to the scp: A-ASSOCIATE-RJ 1,1,7, non-zero exit")
def test_gdcm_echo_rejected(tmp_path: Path) -> None:
    binary = _gdcmscu()
    scp = OurScp(tmp_path, "--ae", "EP-SCP")
    try:
        done = run(_echo(binary, "SOMEONE-ELSE", scp.port))
    finally:
        counters = scp.stop()
    assert done.code != 0, done.describe()
    assert_counters(scp, counters, associations=0, echoes=0, rejected=1)
