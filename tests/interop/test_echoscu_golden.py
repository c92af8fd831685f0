"""Golden tests: our `echoscu` against DCMTK's, scenario by scenario (docs/echoscu-behavior.md).

Each case of `golden_scenarios.CASES` runs `/usr/bin/echoscu` and the program under test, each
against its own fresh fake SCP playing the same scenario, and compares exit code, stdout, stderr
(normalised) and every PDU the SCP received (the A-ASSOCIATE-RQ without the implementation class
UID / version name sub-items). Both runs must also satisfy the case's expectation from the contract.

Modes:
* default: golden comparison. The program under test is `python -m echoprobe.cli.echoscu`, or the
  command line in `ECHOPROBE_ECHOSCU` (shlex-split).
* `GOLDEN_DCMTK_ONLY=1`: only DCMTK runs, checked against the contract's expectation; this
  validates the table itself.

Cases run concurrently (`GOLDEN_WORKERS`, default 8) in one module fixture, because most of them
wait on 1-second timeouts; each test then only checks its stored result.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

if not __package__:
    # Collected as a top-level module (tests/interop has no __init__.py): make `tests` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.interop.golden_scenarios import CASES, DCMTK_IMPL_UID, DCMTK_IMPL_VERSION, Case, Expect
from tests.support.fake_scp import (
    A_ASSOCIATE_RQ,
    Accept,
    FakeSCP,
    FullBacklog,
    PresentationContext,
    ReadPDU,
    Received,
    Serve,
    Stall,
    a_associate_rq,
    iter_items,
    strip_implementation_items,
    unused_port,
)

DCMTK_ECHOSCU = Path("/usr/bin/echoscu")
DCMTK_ONLY = os.environ.get("GOLDEN_DCMTK_ONLY") == "1"
IN_CI = os.environ.get("CI") == "true"
WORKERS = int(os.environ.get("GOLDEN_WORKERS", "8"))
RUN_TIMEOUT = 30.0  # seconds; a hung child is killed (by its own PID) after this

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not DCMTK_ECHOSCU.exists() and not IN_CI,
        reason="DCMTK echoscu not installed (/usr/bin/echoscu)",
    ),
]


def ours_command() -> list[str]:
    override = os.environ.get("ECHOPROBE_ECHOSCU")
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "echoprobe.cli.echoscu"]


def child_env() -> dict[str, str]:
    """The environment of the contract's verification runs (contract header)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DCMDICTPATH", "TCP_NODELAY", "TCP_BUFFER_LENGTH", "LANGUAGE")
    }
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


@cache
def unshare_prefix() -> tuple[str, ...] | None:
    """A command prefix giving a loopback-only network namespace, or None where unavailable.

    Unknown-host cases resolve `*.invalid` inside it, so no DNS query can leave the machine.
    """
    for prefix in (("unshare", "-n", "--"), ("unshare", "-rn", "--")):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


@cache
def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# --- running ------------------------------------------------------------------------------------


@dataclass
class Run:
    who: str
    argv: list[str]
    exit: int
    stdout: str
    stderr: str
    elapsed: float
    port: int | None
    workdir: str
    received: list[Received] = field(default_factory=list)
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    echo_ids: list[int | None] = field(default_factory=list)
    echo_contexts: list[int] = field(default_factory=list)
    accepted: int = 0
    events: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"--- {self.who}: {shlex.join(self.argv)} -> exit {self.exit} in {self.elapsed:.2f}s\n"
            f"stdout:\n{self.stdout}stderr:\n{self.stderr}"
            f"received: {[f'{r.raw[:1].hex()}/{len(r.raw)}' for r in self.received]}\n"
            f"scp events: {self.events[-6:]}\n"
        )


@dataclass
class CaseResult:
    dcmtk: Run | None = None
    ours: Run | None = None
    skip: str = ""
    error: str = ""


def substitute(text: str, port: int | None, workdir: str) -> str:
    return text.replace("{port}", str(port or 0)).replace("{dir}", workdir)


def run_once(case: Case, program: Sequence[str], who: str) -> Run:
    """One run of `program` against a fresh peer playing `case`."""
    prefix: tuple[str, ...] = ()
    if case.unshare:
        found = unshare_prefix()
        if found is None:
            raise RuntimeError("unshare unavailable")
        prefix = found
    with tempfile.TemporaryDirectory(prefix="golden-") as workdir, _Peer(case) as (port, scp):
        for name, content in case.files.items():
            Path(workdir, name).write_text(substitute(content, port, workdir))
        argv = [*program, *(substitute(a, port, workdir) for a in case.args)]
        started = time.monotonic()
        try:
            done = subprocess.run(
                [*prefix, *argv],
                capture_output=True,
                env={**child_env(), **case.env},
                timeout=RUN_TIMEOUT,
                check=False,
            )
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, out, err = -999, exc.stdout or b"", (exc.stderr or b"") + b"\n<killed: timeout>"
        elapsed = time.monotonic() - started
        if scp is not None:
            scp.stop()
        run = Run(
            who, argv, code, out.decode("latin-1"), err.decode("latin-1"), elapsed, port, workdir
        )
        if scp is not None:
            run.received = list(scp.received)
            run.sent = list(scp.sent)
            run.echo_ids = [e.message_id for e in scp.echo_requests]
            run.echo_contexts = [e.context_id for e in scp.echo_requests]
            run.accepted = scp.accepted
            run.events = list(scp.events)
            run.failures = list(scp.failures)
        return run


class _Peer:
    """The peer a case needs: a fake SCP, a refusing port, a full backlog, or nothing."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.scp: FakeSCP | None = None
        self.refuser: socket.socket | None = None
        self.backlog: FullBacklog | None = None

    def __enter__(self) -> tuple[int | None, FakeSCP | None]:
        kind = self.case.server
        if kind == "fake":
            self.scp = FakeSCP(
                self.case.steps,
                host=self.case.scp_host,
                time_limit=self.case.time_limit,
                close_on_abort=self.case.scp_closes_on_abort,
            )
            self.scp.start()
            return self.scp.port, self.scp
        if kind == "refused":
            self.refuser, port = unused_port()
            return port, None
        if kind == "backlog":
            self.backlog = FullBacklog().__enter__()
            return self.backlog.port, None
        return None, None

    def __exit__(self, *exc: object) -> None:
        if self.scp is not None:
            self.scp.stop()
        if self.refuser is not None:
            self.refuser.close()
        if self.backlog is not None:
            self.backlog.close()


# --- normalising --------------------------------------------------------------------------------

_RCSID = re.compile(r"\$[A-Za-z0-9_]+: echoscu v[^$]*\$")
_PROG = re.compile(r"^(I: calling ')[^']*(' with )")
_OUR_IMPL = re.compile(r"^(D:\s+Our Implementation (?:Class UID|Version Name):).*$")
_DICTIONARY = re.compile(r"^D: DcmDataDictionary: Loading file: ")
_HEX_LINE = re.compile(r"^D:((?:\s+[0-9a-f]{2})+)\s*$")
_ELEMENT_LINE = re.compile(r"^\([0-9a-f]{4},[0-9a-f]{4}\) ")
_DEBUG_KEEP = (
    "setting network ",
    "PDU Type: ",
    "Only dumping ",
    "Status Detail ",
    "<rcsid>",
)


def normalise(text: str, run: Run) -> list[str]:
    """Lines with what legitimately differs between runs replaced by placeholders."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[str] = []
    for raw in lines:
        if _DICTIONARY.match(raw):
            continue
        line = _RCSID.sub("<rcsid>", raw)
        line = _PROG.sub(r"\1<prog>\2", line)
        line = _OUR_IMPL.sub(r"\1 <ours>", line)
        if run.port:
            line = line.replace(f"'{run.port}", "'<port>")
            line = re.sub(rf":{run.port}(?!\d)", ":<port>", line)
        out.append(line.replace(run.workdir, "<dir>"))
    return out


@dataclass
class DebugView:
    lines: list[str]
    hexdump: bytes


def debug_view(lines: Sequence[str]) -> DebugView:
    """The information the contract requires at -d (§10.3), with formatting collapsed."""
    out: list[str] = []
    hexdump = b""
    block = ""
    hex_index = -1
    for line in lines:
        if not line.startswith(("D:", "T:")):
            out.append(line)
            continue
        if line.startswith("T:"):
            continue
        text = " ".join(line[2:].split())
        if "BEGIN A-ASSOCIATE-RQ" in text:
            block = "RQ"
        elif "BEGIN A-ASSOCIATE-AC" in text:
            block = "AC"
        if block:
            out.append(f"{block}|{text}")
            if "END A-ASSOCIATE" in text:
                block = ""
            continue
        hex_match = _HEX_LINE.match(line)
        if hex_match:
            if hex_index < 0:
                hex_index = len(out)
                out.append("HEX|")
            hexdump += bytes.fromhex(hex_match.group(1).replace(" ", ""))
            continue
        if text.startswith(_DEBUG_KEEP) or _ELEMENT_LINE.match(text):
            out.append(f"D|{text}")
    if hex_index >= 0:
        out[hex_index] = f"HEX|{len(hexdump)} bytes"
    return DebugView(out, hexdump)


def stderr_view(case: Case, run: Run) -> tuple[list[str], bytes | None]:
    lines = normalise(run.stderr, run)
    if case.level == "debug":
        view = debug_view(lines)
        return view.lines, view.hexdump
    return lines, None


# --- checking -----------------------------------------------------------------------------------


def diff(expected: Sequence[str], got: Sequence[str], expected_name: str, got_name: str) -> str:
    return "\n".join(
        difflib.unified_diff(list(expected), list(got), expected_name, got_name, n=2, lineterm="")
    )


def first_difference(expected: bytes, got: bytes) -> str:
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    start = max(0, at - 8)
    return (
        f"{len(got)} bytes, expected {len(expected)}; first difference at offset {at}:\n"
        f"  got      [{start}:] {got[start : at + 16].hex(' ')}\n"
        f"  expected [{start}:] {expected[start : at + 16].hex(' ')}"
    )


def is_subsequence(wanted: Sequence[str], lines: Sequence[str]) -> str | None:
    """None when `wanted` appears in order within `lines`, else the first missing line."""
    it: Iterator[str] = iter(lines)
    for line in wanted:
        if not any(line == candidate for candidate in it):
            return line
    return None


def complete_pdus(run: Run) -> list[Received]:
    return [r for r in run.received if r.connection == 0 and r.complete]


def check_rq(case: Case, run: Run) -> list[str]:
    """The RQ against the one the contract predicts (§4.2), implementation items excepted."""
    problems: list[str] = []
    for received in run.received:
        if received.pdu_type != A_ASSOCIATE_RQ or not received.complete:
            continue
        raw = received.raw
        try:
            expected = strip_implementation_items(case.rq_params().build())
            got = strip_implementation_items(raw)
            user = [body for kind, body in iter_items(raw[74:]) if kind == 0x50]
            sub_types = [kind for kind, _ in iter_items(user[0])] if len(user) == 1 else []
        except (ValueError, IndexError) as exc:
            problems.append(f"malformed A-ASSOCIATE-RQ: {exc}: {raw.hex()}")
            continue
        if got != expected:
            problems.append(
                "A-ASSOCIATE-RQ (without 0x52/0x55) differs from the contract's: "
                + first_difference(expected, got)
            )
        if sub_types != [0x51, 0x52, 0x55]:
            problems.append(f"user information sub-items {sub_types}, expected [0x51, 0x52, 0x55]")
    return problems


def check_expect(case: Case, run: Run, expect: Expect) -> list[str]:
    problems: list[str] = []
    lines, hexdump = stderr_view(case, run)
    if run.exit != expect.exit:
        problems.append(f"exit {run.exit}, expected {expect.exit}")
    stdout = normalise(run.stdout, run)
    if stdout != list(expect.stdout):
        problems.append(f"stdout {stdout!r}, expected {list(expect.stdout)!r}")
    if expect.stderr is not None and lines != list(expect.stderr):
        problems.append("stderr differs:\n" + diff(list(expect.stderr), lines, "expected", "got"))
    missing = is_subsequence(expect.has, lines)
    if missing is not None:
        problems.append(f"stderr lacks (in order) {missing!r}; got:\n  " + "\n  ".join(lines))
    for prefix in expect.lacks:
        if any(line.startswith(prefix) for line in lines):
            problems.append(f"stderr must not contain {prefix!r}")
    types = tuple(r.pdu_type for r in complete_pdus(run))
    if expect.pdu_types is not None and types != expect.pdu_types:
        problems.append(f"SCP received PDU types {types}, expected {expect.pdu_types}")
    if expect.last_pdu is not None:
        last = complete_pdus(run)[-1].raw if complete_pdus(run) else b""
        if last != expect.last_pdu:
            problems.append(f"last PDU {last.hex()}, expected {expect.last_pdu.hex()}")
    if expect.echo_ids is not None and tuple(run.echo_ids) != expect.echo_ids:
        problems.append(f"C-ECHO-RQ message IDs {run.echo_ids}, expected {expect.echo_ids}")
    if expect.echo_contexts is not None and tuple(run.echo_contexts) != expect.echo_contexts:
        problems.append(
            f"C-ECHO-RQ context IDs {run.echo_contexts}, expected {expect.echo_contexts}"
        )
    if expect.connections is not None and run.accepted != expect.connections:
        problems.append(f"{run.accepted} connections, expected {expect.connections}")
    if expect.min_seconds is not None and run.elapsed < expect.min_seconds:
        problems.append(f"took {run.elapsed:.2f}s, expected at least {expect.min_seconds}s")
    if expect.max_seconds is not None and run.elapsed > expect.max_seconds:
        problems.append(f"took {run.elapsed:.2f}s, expected at most {expect.max_seconds}s")
    if hexdump:
        first_sent = next((data for conn, data in run.sent if conn == 0), b"")
        if hexdump != first_sent[:512]:
            problems.append(f"-d hex dump {hexdump.hex()} is not the AC sent {first_sent.hex()}")
    problems.extend(check_rq(case, run))
    problems.extend(f"fake SCP: {failure}" for failure in run.failures)
    return problems


def wire(run: Run) -> list[tuple[int, bool, bytes]]:
    out = []
    for r in run.received:
        raw = r.raw
        if r.pdu_type == A_ASSOCIATE_RQ and r.complete:
            with contextlib.suppress(ValueError):
                raw = strip_implementation_items(raw)
        out.append((r.connection, r.complete, raw))
    return out


def compare_runs(case: Case, dcmtk: Run, ours: Run) -> list[str]:
    """Ours must be indistinguishable from DCMTK after normalisation."""
    problems: list[str] = []
    if ours.exit != dcmtk.exit:
        problems.append(f"exit {ours.exit}, DCMTK {dcmtk.exit}")
    ours_out, dcmtk_out = normalise(ours.stdout, ours), normalise(dcmtk.stdout, dcmtk)
    if ours_out != dcmtk_out:
        problems.append(f"stdout differs:\n ours  {ours_out!r}\n dcmtk {dcmtk_out!r}")
    ours_err, ours_hex = stderr_view(case, ours)
    dcmtk_err, dcmtk_hex = stderr_view(case, dcmtk)
    # 3.6.7 shows the called AE as "Responding Application Name" in the RQ dump, 3.6.8 an empty
    # one (contract §12); the dedicated case checks ours.
    ours_err = [x for x in ours_err if not x.startswith("RQ|Responding Application Name:")]
    dcmtk_err = [x for x in dcmtk_err if not x.startswith("RQ|Responding Application Name:")]
    if ours_err != dcmtk_err:
        problems.append("stderr differs:\n" + diff(dcmtk_err, ours_err, "dcmtk", "ours"))
    if ours_hex != dcmtk_hex:
        problems.append("-d hex dumps differ")
    if ours.accepted != dcmtk.accepted:
        problems.append(f"{ours.accepted} connections, DCMTK {dcmtk.accepted}")
    ours_wire, dcmtk_wire = wire(ours), wire(dcmtk)
    if ours_wire != dcmtk_wire:
        problems.append(
            "PDUs received by the SCP differ (connection, complete, hex):\n"
            + diff(
                [f"{c} {ok} {raw.hex()}" for c, ok, raw in dcmtk_wire],
                [f"{c} {ok} {raw.hex()}" for c, ok, raw in ours_wire],
                "dcmtk",
                "ours",
            )
        )
    return problems


def evaluate(case: Case, result: CaseResult) -> list[str]:
    problems: list[str] = []
    if result.dcmtk is not None:
        expect = case.dcmtk if case.dcmtk is not None else case.expect
        problems += [f"DCMTK: {p}" for p in check_expect(case, result.dcmtk, expect)]
    if result.ours is not None:
        problems += [f"ours: {p}" for p in check_expect(case, result.ours, case.expect)]
        if result.dcmtk is not None and not case.difference:
            problems += [
                f"ours vs DCMTK: {p}" for p in compare_runs(case, result.dcmtk, result.ours)
            ]
    return problems


# --- the run of all selected cases --------------------------------------------------------------


def _estimated_seconds(case: Case) -> float:
    bounds = [e.min_seconds or 0.0 for e in (case.expect, case.dcmtk) if e is not None]
    return max(bounds, default=0.0)


def run_cases(cases: Sequence[Case]) -> dict[str, CaseResult]:
    results = {c.id: CaseResult() for c in cases}
    lock = threading.Lock()
    jobs: list[tuple[Case, str]] = []
    for c in sorted(cases, key=_estimated_seconds, reverse=True):
        if c.unshare and unshare_prefix() is None:
            results[c.id].skip = "needs `unshare -n` for a resolver-free unknown host"
            continue
        if ":" in c.scp_host and not ipv6_loopback():
            results[c.id].skip = "no IPv6 loopback (::1) on this machine"
            continue
        jobs.append((c, "dcmtk"))
        if not DCMTK_ONLY:
            jobs.append((c, "ours"))

    def job(c: Case, who: str) -> None:
        program = [str(DCMTK_ECHOSCU)] if who == "dcmtk" else ours_command()
        try:
            run = run_once(c, program, who)
        except Exception as exc:  # reported by the case's test, never lost
            with lock:
                results[c.id].error += f"{who}: harness error {exc!r}\n"
            return
        with lock:
            setattr(results[c.id], who, run)

    with ThreadPoolExecutor(max_workers=max(1, WORKERS)) as pool:
        for future in [pool.submit(job, c, who) for c, who in jobs]:
            future.result()
    return results


@pytest.fixture(scope="module")
def golden_results(request: pytest.FixtureRequest) -> dict[str, CaseResult]:
    if not DCMTK_ECHOSCU.exists():
        pytest.fail("DCMTK echoscu (/usr/bin/echoscu) is required under CI")
    selected: set[str] = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("case") if callspec is not None else None
        if isinstance(param, Case):
            selected.add(param.id)
    return run_cases([c for c in CASES if c.id in selected])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: Case, golden_results: dict[str, CaseResult]) -> None:
    result = golden_results[case.id]
    if result.skip:
        pytest.skip(result.skip)
    assert not result.error, result.error
    problems = evaluate(case, result)
    details = "".join(run.describe() for run in (result.dcmtk, result.ours) if run is not None)
    assert not problems, "\n".join(problems) + "\n" + details


# --- the harness itself -------------------------------------------------------------------------


def test_strip_implementation_items_fixes_lengths() -> None:
    contexts = [PresentationContext(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",))]
    with_impl = a_associate_rq(
        "ANY-SCP", "ECHOSCU", contexts, impl_uid=DCMTK_IMPL_UID, impl_version=DCMTK_IMPL_VERSION
    )
    other_impl = a_associate_rq(
        "ANY-SCP", "ECHOSCU", contexts, impl_uid="1.2.3", impl_version="OTHER"
    )
    bare = a_associate_rq("ANY-SCP", "ECHOSCU", contexts)
    assert len(with_impl) == 211  # contract §4.2
    assert strip_implementation_items(with_impl) == bare
    assert strip_implementation_items(other_impl) == bare


def test_fake_scp_stops_by_itself() -> None:
    scp = FakeSCP([ReadPDU(), Stall()], time_limit=0.5).start()
    with socket.create_connection(("127.0.0.1", scp.port), timeout=2):
        deadline = time.monotonic() + 3.0
        while scp.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not scp.running
    assert scp.failures == []


def test_full_backlog_drops_syn() -> None:
    with FullBacklog() as backlog:
        probe = socket.socket()
        probe.settimeout(0.3)
        with probe, pytest.raises(TimeoutError):
            probe.connect(("127.0.0.1", backlog.port))


def test_fake_scp_serves_several_connections() -> None:
    with FakeSCP([ReadPDU(), Accept(), Serve()], connections=2) as scp:
        for _ in range(2):
            done = subprocess.run(
                [str(DCMTK_ECHOSCU), "127.0.0.1", str(scp.port)],
                capture_output=True,
                env=child_env(),
                timeout=RUN_TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, done.stderr
    assert scp.accepted == 2
    assert [r.pdu_type for r in scp.pdus(1)] == [0x01, 0x04, 0x05]
    assert scp.failures == []
