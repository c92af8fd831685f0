"""dcmjs-dimse (npm) both ways, through tests/interop/node/peer.js, which prints one JSON line
per event so that the assertions are about what dcmjs-dimse itself saw on the wire.

dcmjs-dimse is installed by `npm install --prefix tests/interop/node` (CI does it; the
`node_modules` folder is not committed), or found at $ECHOPROBE_NODE_MODULES.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.interop.peers import (
    FROM_PEER,
    LOCAL,
    NODE_DIR,
    OUR_UID,
    OUR_VERSION,
    TO_PEER,
    OurScp,
    assert_counters,
    matrix,
    node_modules,
    our_echoscu,
    program,
    require,
    run,
    start_server,
)
from tests.support.servers import SubprocessServer, wait_for

pytestmark = pytest.mark.interop

PEER = "dcmjs-dimse"
AE = "DCMJS"
DCMJS_UID = "1.2.826.0.1.3680043.10.854"
SCRIPT = NODE_DIR / "peer.js"


def _node_env() -> dict[str, str]:
    require(program("node"), "Node.js")
    root = node_modules()
    require(str(root) if root else None, "dcmjs-dimse (npm install --prefix tests/interop/node)")
    return {"NODE_PATH": str(root)}


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _first(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [e for e in events if e["event"] == name]
    assert found, events
    return found[0]


@pytest.fixture(scope="module")
def dcmjs_scp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubprocessServer]:
    env = _node_env()
    root = tmp_path_factory.mktemp("dcmjs")
    server = start_server(
        lambda port: ["node", str(SCRIPT), "scp", str(port), AE, "50"],
        root / "dcmjs-scp.log",
        env=env,
    )
    yield server
    server.stop()


def _dcmjs_echo(port: int, calling: str, called: str) -> list[dict[str, Any]]:
    done = run(["node", str(SCRIPT), "echo", str(port), calling, called], env=_node_env())
    assert done.code == 0, done.describe()
    return _events(done.stdout)


@matrix(PEER, TO_PEER, "C-ECHO; dcmjs-dimse sees our implementation UID and version")
def test_echo_to_dcmjs(dcmjs_scp: SubprocessServer) -> None:
    done = our_echoscu("-d", "-aet", "EP-JS", "-aec", AE, LOCAL, str(dcmjs_scp.port))
    assert done.code == 0, done.describe()
    assert f"Their Implementation Class UID:    {DCMJS_UID}" in done.stderr
    assert "Their Implementation Version Name: DCMJS-DIMSE-V0.2" in done.stderr
    assert wait_for(lambda: "releaseRequested" in dcmjs_scp.log())
    events = _events(dcmjs_scp.log())
    asked = [e for e in events if e["event"] == "associationRequested"]
    assert asked[-1]["implementationClassUid"] == OUR_UID
    assert asked[-1]["implementationVersion"] == OUR_VERSION
    assert asked[-1]["callingAeTitle"] == "EP-JS"
    assert any(e["event"] == "echo" for e in events)


@matrix(PEER, TO_PEER, "unknown called AE: A-ASSOCIATE-RJ 1,1,7 reported in DCMTK's words")
def test_rejected_by_dcmjs(dcmjs_scp: SubprocessServer) -> None:
    done = our_echoscu("-aec", "NOT-DCMJS", LOCAL, str(dcmjs_scp.port))
    assert done.code == 1, done.describe()
    assert done.stderr.splitlines()[-2:] == [
        "F: Result: Rejected Permanent, Source: Service User",
        "F: Reason: Called AE Title Not Recognized",
    ]


@matrix(PEER, FROM_PEER, "C-ECHO; dcmjs-dimse receives our UID, version and status 0x0000")
def test_dcmjs_echo_to_us(tmp_path: Path) -> None:
    _node_env()
    scp = OurScp(tmp_path)
    try:
        events = _dcmjs_echo(scp.port, AE, "ANY-SCP")
    finally:
        counters = scp.stop()
    accepted = _first(events, "accepted")
    assert accepted["implementationClassUid"] == OUR_UID
    assert accepted["implementationVersion"] == OUR_VERSION
    assert _first(events, "response")["status"] == 0
    assert _first(events, "released") == {"event": "released"}
    assert_counters(scp, counters, associations=1, echoes=1, releases=1)


@matrix(PEER, FROM_PEER, "faulty scp: A-ASSOCIATE-RJ 2,3,2 and status 0x0110 as sent")
def test_dcmjs_sees_our_faults(tmp_path: Path) -> None:
    _node_env()
    scp = OurScp(tmp_path, "--fault", "ae=BUSY;reject=2,3,2", "--fault", "ae=FAIL;status=0x0110")
    try:
        busy = _dcmjs_echo(scp.port, AE, "BUSY")
        failing = _dcmjs_echo(scp.port, AE, "FAIL")
    finally:
        counters = scp.stop()
    assert _first(busy, "rejected") == {"event": "rejected", "result": 2, "source": 3, "reason": 2}
    assert _first(failing, "response")["status"] == 0x0110
    assert_counters(scp, counters, associations=1, rejected=1)


def test_peer_script_usage() -> None:
    """The script refuses what it does not know (no network)."""
    _node_env()
    done = subprocess.run(
        ["node", str(SCRIPT), "nonsense"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "usage" in done.stderr
