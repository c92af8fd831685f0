"""pynetdicom's own command-line apps (`python -m pynetdicom echoscp|echoscu`) both ways,
against our `echoscu` and `echoprobe scp`, asserting what their debug logs show they received.
(The library-level pynetdicom tests are in test_pynetdicom_interop.py.)"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pynetdicom
import pytest
from tests.interop.peers import (
    FROM_PEER,
    LOCAL,
    OUR_UID,
    OUR_VERSION,
    TO_PEER,
    OurScp,
    assert_counters,
    matrix,
    our_echoscu,
    run,
    start_server,
)
from tests.support.servers import SubprocessServer, wait_for

pytestmark = pytest.mark.interop

PEER = "pynetdicom apps"
PYNETDICOM_UID = "1.2.826.0.1.3680043.9.3811."  # pynetdicom's implementation class UID root
APP = [sys.executable, "-m", "pynetdicom"]
BOUNDS = ["-ta", "5", "-td", "5", "-tn", "5"]  # the apps' own timeouts, well under RUN_LIMIT
# pynetdicom 3.0.4's threads race against an answer that comes within microseconds (see
# test_pynetdicom_interop.py): our scp answers these phases 10 ms later.
PACE = ["--delay", "associate=0.01", "--delay", "echo=0.01"]


@pytest.fixture(scope="module")
def echoscp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubprocessServer]:
    root = tmp_path_factory.mktemp("pynetdicom-echoscp")
    server = start_server(
        lambda port: [*APP, "echoscp", str(port), "-ba", LOCAL, "-aet", "PYSCP", "-d"],
        root / "echoscp.log",
    )
    yield server
    server.stop()


@matrix(PEER, TO_PEER, "C-ECHO to echoscp; it logs our implementation UID and version")
def test_echo_to_pynetdicom_echoscp(echoscp: SubprocessServer) -> None:
    before = echoscp.log().count("Received Echo Request")
    done = our_echoscu("-d", "-aet", "EP-PY", "-aec", "PYSCP", LOCAL, str(echoscp.port))
    assert done.code == 0, done.describe()
    assert f"Their Implementation Class UID:    {PYNETDICOM_UID}" in done.stderr
    assert (
        f"Their Implementation Version Name: PYNETDICOM_{pynetdicom.__version__.replace('.', '')}"
        in done.stderr
    )
    assert wait_for(lambda: echoscp.log().count("Received Echo Request") == before + 1)
    log = echoscp.log()
    assert f"Their Implementation Class UID:      {OUR_UID}" in log
    assert f"Their Implementation Version Name:   {OUR_VERSION}" in log
    assert "Calling Application Name:    EP-PY" in log


@matrix(PEER, FROM_PEER, "echoscu app: C-ECHO status 0x0000; it sees our UID and version")
def test_pynetdicom_echoscu_to_us(tmp_path: Path) -> None:
    scp = OurScp(tmp_path, *PACE)
    try:
        done = run([*APP, "echoscu", LOCAL, str(scp.port), "-aet", "PYSCU", "-d", *BOUNDS])
    finally:
        counters = scp.stop()
    assert done.code == 0, done.describe()
    assert f"Their Implementation Class UID:    {OUR_UID}" in done.output
    assert f"Their Implementation Version Name: {OUR_VERSION}" in done.output
    assert "Received Echo Response (Status: 0x0000 - Success)" in done.output
    assert_counters(scp, counters, associations=1, echoes=1, releases=1)


@matrix(PEER, FROM_PEER, "echoscu app: our A-ABORT (source 2, reason 6) as sent")
def test_pynetdicom_echoscu_sees_our_abort(tmp_path: Path) -> None:
    scp = OurScp(tmp_path, *PACE, "--abort-at", "echo", "--abort-with", "2,6")
    try:
        done = run([*APP, "echoscu", LOCAL, str(scp.port), "-d", *BOUNDS])
    finally:
        counters = scp.stop()
    assert "Abort Source: DUL service-provider" in done.output, done.describe()
    assert "Abort Reason: Invalid PDU parameter value" in done.output
    assert "I: Association Aborted" in done.output
    assert_counters(scp, counters, associations=1, echoes=0)


@matrix(PEER, FROM_PEER, "echoscu app: A-ASSOCIATE-RJ 1,1,7 for an unknown called AE")
def test_pynetdicom_echoscu_rejected(tmp_path: Path) -> None:
    scp = OurScp(tmp_path, *PACE, "--ae", "ONLY-ME")
    try:
        done = run([*APP, "echoscu", LOCAL, str(scp.port), "-aec", "SOMEONE", "-d", *BOUNDS])
    finally:
        counters = scp.stop()
    assert "Result: Rejected Permanent" in done.output, done.describe()
    assert "Source: Service User" in done.output
    assert "Reason: Called AE title not recognised" in done.output
    assert_counters(scp, counters, associations=0, rejected=1)
