"""Each `EchoSCP` fault, seen by DCMTK's `/usr/bin/echoscu -v`: DCMTK must report the same
fault, in its own words and with its own exit code (docs/echoscu-behavior.md §4.6, §5, §6.3,
§7, §9): e.g. its `F: Reason: ...` line for a reject, `0006:0317 Peer aborted Association`
for an A-ABORT or a close, `0006:031a DUL network read timeout` for silence.

One SCP (in a thread, with its own loop) serves every case on its own loopback address
(`faults_by_address`) or called AE title (`faults_by_ae`); the echoscu runs go concurrently in
a module fixture and each test checks one of them. Skipped when DCMTK is missing, failed
instead under CI=true (tests/conftest.py). Every echoscu is bounded by a subprocess timeout.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support.servers import ThreadedEchoSCP

from echoprobe.net.server import Faults
from echoprobe.ul.constants import EXPLICIT_VR_LITTLE_ENDIAN

pytestmark = pytest.mark.interop

ECHOSCU = Path("/usr/bin/echoscu")
SUBNET = "127.0.43"
# -ta bounds the wait for the association answer and the release answer, -td the wait for
# the C-ECHO-RSP; -ts bounds each read (so a trickle must stay below it).
TIMING = ("-ta", "1", "-td", "1", "-ts", "2")
RUN_LIMIT = 20.0  # seconds; subprocess.run kills a hung echoscu (its own child) after this

SUCCESS = "I: Received Echo Response (Success)"
PEER_ABORTED = "0006:0317 Peer aborted Association (or never connected)"
REQUEST_ABORTED = f"F: Association Request Failed: {PEER_ABORTED}"
RELEASE_ABORTED = f"F: Association Release Failed: {PEER_ABORTED}"
ECHO_ABORTED = (f"E: Echo Failed: {PEER_ABORTED}", "I: Peer Aborted Association")
READ_TIMEOUT = "0006:031a DUL network read timeout"


@dataclass(frozen=True)
class Case:
    name: str
    faults: Faults
    exit_code: int
    lines: tuple[str, ...]  # each must be a whole line of echoscu's stderr
    absent: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    min_seconds: float = 0.0
    scp: str = "faults"  # which SCP of the fixture serves it
    extra: dict[str, object] = field(default_factory=dict)


def _rejected(result: str, source: str, reason: str) -> tuple[str, ...]:
    return (
        "F: Association Rejected:",
        f"F: Result: {result}, Source: {source}",
        f"F: Reason: {reason}",
    )


CASES = [
    Case("healthy", Faults(), 0, (SUCCESS,)),
    Case(
        "reject-called-ae",
        Faults(reject=(1, 1, 7)),
        1,
        _rejected("Rejected Permanent", "Service User", "Called AE Title Not Recognized"),
    ),
    Case(
        "reject-calling-ae",
        Faults(reject=(1, 1, 3)),
        1,
        _rejected("Rejected Permanent", "Service User", "Calling AE Title Not Recognized"),
    ),
    Case(
        "reject-busy",
        Faults(reject=(2, 3, 2)),
        1,
        _rejected(
            "Rejected Transient", "Service Provider (Presentation Related)", "Local Limit Exceeded"
        ),
    ),
    Case(
        "reject-congested",
        Faults(reject=(2, 3, 1)),
        1,
        _rejected(
            "Rejected Transient", "Service Provider (Presentation Related)", "Temporary Congestion"
        ),
    ),
    Case(
        "reject-protocol-version",
        Faults(reject=(1, 2, 2)),
        1,
        _rejected(
            "Rejected Permanent",
            "Service Provider (ACSE Related)",
            "Protocol Version Not Supported",
        ),
    ),
    Case("abort-connect", Faults(abort_at="connect"), 1, (REQUEST_ABORTED,)),
    Case(
        "abort-associate",
        Faults(abort_at="associate", abort_source=2, abort_reason=6),
        1,
        (REQUEST_ABORTED,),
    ),
    Case("abort-echo", Faults(abort_at="echo"), 0, ECHO_ABORTED, absent=(SUCCESS,)),
    Case("abort-release", Faults(abort_at="release"), 1, (SUCCESS, RELEASE_ABORTED)),
    Case("close-connect", Faults(close_at="connect"), 1, (REQUEST_ABORTED,)),
    Case("close-associate", Faults(close_at="associate"), 1, (REQUEST_ABORTED,)),
    Case("close-echo", Faults(close_at="echo"), 0, ECHO_ABORTED, absent=(SUCCESS,)),
    Case("close-release", Faults(close_at="release"), 1, (SUCCESS, RELEASE_ABORTED)),
    Case(
        "silent-connect",
        Faults(silent_at="connect"),
        1,
        (f"F: Association Request Failed: {READ_TIMEOUT}",),
        min_seconds=0.9,
    ),
    Case(
        "silent-associate",
        Faults(silent_at="associate"),
        1,
        (f"F: Association Request Failed: {READ_TIMEOUT}",),
        min_seconds=0.9,
    ),
    Case(
        "silent-echo",
        Faults(silent_at="echo"),
        70,
        (
            "E: Echo Failed: 0006:0207 DIMSE No data available (timeout in non-blocking mode)",
            "I: Aborting Association",
        ),
        min_seconds=0.9,
    ),
    Case(
        "silent-release",
        Faults(silent_at="release"),
        1,
        (SUCCESS, f"F: Association Release Failed: {READ_TIMEOUT}"),
        min_seconds=0.9,
    ),
    Case(
        "no-release-response",
        Faults(no_release_response=True),
        1,
        (SUCCESS, f"F: Association Release Failed: {READ_TIMEOUT}"),
        min_seconds=0.9,
    ),
    Case("delay-connect", Faults(delay={"connect": 0.3}), 0, (SUCCESS,), min_seconds=0.3),
    Case("delay-associate", Faults(delay={"associate": 0.3}), 0, (SUCCESS,), min_seconds=0.3),
    Case("delay-echo", Faults(delay={"echo": 0.3}), 0, (SUCCESS,), min_seconds=0.3),
    Case("delay-release", Faults(delay={"release": 0.3}), 0, (SUCCESS,), min_seconds=0.3),
    Case(
        "delay-beyond-dimse-timeout",
        Faults(delay={"echo": 1.5}),
        70,
        ("E: Echo Failed: 0006:0207 DIMSE No data available (timeout in non-blocking mode)",),
        min_seconds=0.9,
    ),
    # ~300 bytes answered at 3 ms a byte: DCMTK's per-read timers are not stretched past
    # DCMTK counts its -ta in whole seconds of time(): a trickled PDU read across a second
    # boundary leaves it 0 s to wait for the next byte under -ta 1 (dulfsm.cc, defragmentTCP),
    # so this case gives it -ta 5 (the last -ta wins).
    Case("trickle", Faults(trickle=0.003), 0, (SUCCESS,), args=("-ta", "5"), min_seconds=0.6),
    Case(
        "status",
        Faults(status=0x0110, error_comment="Disk full"),
        0,
        ("I: Received Echo Response (Unknown Status: 0x110)",),
    ),
    Case(
        "status-error-comment",
        Faults(status=0x0110, error_comment="Disk full"),
        0,
        (
            "I: Received Echo Response (Unknown Status: 0x110)",
            "D: Status Detail (should never be any):",
        ),
        args=("-d",),
        extra={"contains": "(0000,0902) LO [Disk full]"},
    ),
    Case(
        "release-collision",
        Faults(release_collision=True),
        1,
        (SUCCESS, "F: Association Release Failed: 0006:0319 DUL Peer Requested Release"),
    ),
    Case(
        "reject-contexts",
        Faults(reject_contexts=True),
        1,
        ("F: No Acceptable Presentation Contexts",),
    ),
    # per called AE, on a healthy address; and replacing an address's own faults
    Case(
        "ae-broken",
        Faults(),
        0,
        ("I: Received Echo Response (Unknown Status: 0xc001)",),
        args=("-aec", "BROKEN"),
    ),
    Case(
        "ae-overrides-address", Faults(silent_at="associate"), 0, (SUCCESS,), args=("-aec", "FINE")
    ),
    # settings rather than faults, each on an SCP of its own
    Case(
        "unknown-called-ae",
        Faults(),
        1,
        _rejected("Rejected Permanent", "Service User", "Called AE Title Not Recognized"),
        args=("-aec", "STRANGER"),
        scp="policy",
    ),
    Case(
        "unknown-calling-ae",
        Faults(),
        1,
        _rejected("Rejected Permanent", "Service User", "Calling AE Title Not Recognized"),
        args=("-aec", "PACS", "-aet", "STRANGER"),
        scp="policy",
    ),
    Case("known-ae-titles", Faults(), 0, (SUCCESS,), args=("-aec", "PACS"), scp="policy"),
    Case(
        "transfer-syntax-not-supported",
        Faults(),
        1,
        ("F: No Acceptable Presentation Contexts",),
        args=("-aec", "PACS"),
        scp="explicit-only",
    ),
    Case(
        "transfer-syntax-supported",
        Faults(),
        0,
        (SUCCESS,),
        args=("-aec", "PACS", "-pts", "2"),
        scp="explicit-only",
    ),
    Case(
        "max-associations",
        Faults(),
        1,
        _rejected(
            "Rejected Transient", "Service Provider (Presentation Related)", "Local Limit Exceeded"
        ),
        scp="full",
    ),
]
FAULTS_BY_AE = {"BROKEN": Faults(status=0xC001), "FINE": Faults()}


@dataclass
class Run:
    exit_code: int
    lines: list[str]
    seconds: float


def _echoscu(host: str, port: int, case: Case) -> Run:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(ECHOSCU), "-v", *TIMING, *case.args, host, str(port)],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        env={**os.environ, "LC_ALL": "C"},
        check=False,
    )
    return Run(proc.returncode, proc.stderr.splitlines(), time.perf_counter() - start)


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Run]]:
    if not ECHOSCU.exists():
        pytest.skip("DCMTK echoscu not installed")  # conftest fails it first under CI
    own = [c for c in CASES if c.scp == "faults"]
    hosts = {c.name: f"{SUBNET}.{i}" for i, c in enumerate(own, start=1)}
    scps = {
        "faults": ThreadedEchoSCP(
            host=list(hosts.values()),
            faults_by_address={hosts[c.name]: c.faults for c in own},
            faults_by_ae=FAULTS_BY_AE,
            artim_timeout=1.0,
            idle_timeout=5.0,
            time_limit=60.0,
        ),
        "policy": ThreadedEchoSCP(ae_titles=["PACS"], calling_ae_titles=["ECHOSCU"]),
        "explicit-only": ThreadedEchoSCP(transfer_syntaxes=[EXPLICIT_VR_LITTLE_ENDIAN]),
        "full": ThreadedEchoSCP(max_associations=0),
    }
    try:
        for scp in scps.values():
            scp.start()

        def one(case: Case) -> tuple[str, Run]:
            scp = scps[case.scp]
            host = hosts.get(case.name, "127.0.0.1")
            return case.name, _echoscu(host, scp.port, case)

        with ThreadPoolExecutor(max_workers=16) as pool:
            yield dict(pool.map(one, CASES))
    finally:
        for scp in scps.values():
            scp.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_dcmtk_reports_the_fault(runs: dict[str, Run], case: Case) -> None:
    run = runs[case.name]
    shown = "\n".join(run.lines)
    assert run.exit_code == case.exit_code, shown
    for line in case.lines:
        assert line in run.lines, f"missing {line!r} in:\n{shown}"
    for line in case.absent:
        assert line not in run.lines, f"unexpected {line!r} in:\n{shown}"
    contains = case.extra.get("contains")
    if isinstance(contains, str):
        assert any(contains in line for line in run.lines), shown
    assert run.seconds >= case.min_seconds * 0.95, run.seconds
    assert run.seconds < 10.0, run.seconds
