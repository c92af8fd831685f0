"""`echoprobe demo`: a simulated hospital on loopback, swept with C-ECHO, in one command.

    uv run echoprobe demo

It starts, in this process, one `EchoSCP` listening on ~200 addresses 127.0.x.y (one subnet
per department, one port for all; where only 127.0.0.1 exists, as on macOS, one port per
peer instead), with realistic AE titles: CT, MR, US, CR/DX, MG, NM/PET,
cath lab, workstations, PACS archive, router, remote clinics. Most peers are healthy; some are
switched off (nothing listens: connection refused), reject us (unknown AE title, busy), hang
(silent), are slow, answer with a failure status, abort, or do not accept Verification.

It sweeps them with a live display, prints what a PACS administrator needs (the peers that
need attention, in plain words, and a per-department view), then checks itself: exit 0 when
every peer was classified as its simulated fault says, 1 otherwise (the mismatches are shown).
It takes a few seconds and leaves nothing running: the SCP and every socket are closed in a
`finally`, and SIGINT (130) / SIGTERM (143) stop it the same way.

Seams, for when the fleet layer lands:
- `sweep_peers()` is the only place that probes: replace its body with
  `echoprobe.fleet.sweep.sweep()` (the replacement is written in its docstring);
- `render_attention()`, `render_departments()` and `render_outcomes()` are the summary
  renderers: replace them with the shared ones in `echoprobe.report` when they exist. They
  only consume `(DemoPeer, ProbeResult)` pairs; `DemoPeer.department` is also in each
  record's `tags`, so a renderer grouping records by tag needs no `DemoPeer`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from echoprobe.cli import exit_codes
from echoprobe.cli.cmd_scp import new_event_loop
from echoprobe.dimse.status import status_text
from echoprobe.net.addresses import format_address
from echoprobe.net.client import probe
from echoprobe.net.server import EchoSCP, Faults
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult
from echoprobe.ul.constants import ABORT_REASON_TEXT, REJECT_REASON_TEXT

CALLING_AE: Final = "ECHOPROBE"
SLOW_MS: Final = 500.0  # a successful echo slower than this is reported as slow
PREFERRED_PORT: Final = 11112  # the DICOM registered port for unprivileged use
DEFAULT_TIMEOUT: Final = 2.0
LOCALHOST: Final = "127.0.0.1"

# ------------------------------------------------------------------------ the hospital


@dataclass(frozen=True, slots=True)
class DemoPeer:
    """One simulated DICOM node, what our inventory says about it, and what must come out."""

    department: str
    device: str  # what it is, in the words of the hospital
    ae_title: str  # what the node answers to
    host: str
    called_ae: str  # what our inventory calls it (differs when the inventory is stale)
    expect: Outcome
    faults: Faults | None = None
    listening: bool = True
    expect_detail: tuple[tuple[str, int], ...] = ()  # e.g. (("reason", 7),)
    min_ms: float = 0.0  # a slow peer must take at least this long
    port: int = 0  # set when the hospital runs


@dataclass(frozen=True, slots=True)
class _Fault:
    expect: Outcome
    faults: Faults | None = None
    listening: bool = True
    called_ae: str | None = None
    detail: tuple[tuple[str, int], ...] = ()
    min_ms: float = 0.0


# Department → subnet, device kind, AE title stem, count. 200 peers in all.
_DEPARTMENTS: Final = (
    ("CT", 1, "CT scanner", ("CT_ED", "CT_MAIN", "CT_ONC", "CT_CARD"), 16),
    ("MR", 2, "MR scanner", ("MR_NEURO", "MR_MSK", "MR_BODY"), 12),
    ("Ultrasound", 3, "ultrasound", ("US_ED", "US_OB", "US_ICU", "US_VASC", "US_GEN"), 30),
    ("CR / DX", 4, "X-ray room", ("DX_ED", "DX_ORTHO", "CR_WARD", "DX_CHEST"), 30),
    ("Mammography", 5, "mammography unit", ("MG_BREAST", "MG_SCREEN"), 8),
    ("NM / PET", 6, "gamma camera / PET", ("NM_SPECT", "PT_CT"), 10),
    ("Cath / Fluoro", 7, "angiography / fluoroscopy", ("XA_CATH", "RF_FLUORO"), 14),
    ("Cardio / Other", 8, "specialty modality", ("US_ECHO", "OP_EYE", "ES_ENDO"), 12),
    ("Workstations", 9, "reading workstation", ("WS_RAD",), 40),
    ("PACS core", 10, "PACS / infrastructure", (), 12),
    ("Remote clinics", 11, "clinic modality", ("CLINIC_N", "CLINIC_S", "CLINIC_E", "CLINIC_W"), 16),
)

_PACS_CORE: Final = (
    ("PACS_ARCH_01", "PACS archive (primary)"),
    ("PACS_ARCH_02", "PACS archive (secondary)"),
    ("PACS_QR", "PACS query/retrieve"),
    ("VNA_01", "vendor-neutral archive"),
    ("DCM_ROUTER_01", "DICOM router"),
    ("DCM_ROUTER_02", "DICOM router (backup)"),
    ("RIS_GW", "RIS gateway"),
    ("AI_TRIAGE", "AI triage node"),
    ("LAB_3D", "3D lab server"),
    ("PRINT_SCP", "DICOM film printer"),
    ("CD_BURNER", "CD/DVD publisher"),
    ("DOSE_MONITOR", "dose monitoring"),
)

_CLINIC_MODALITIES: Final = ("CT", "MR", "DX", "US")

_REFUSED = _Fault(Outcome.CONNECTION_REFUSED, listening=False)
_SILENT = _Fault(Outcome.ACSE_TIMEOUT, Faults(silent_at="associate"))


def _rejected(result: int, source: int, reason: int) -> _Fault:
    outcome = Outcome.REJECTED_TRANSIENT if result == 2 else Outcome.REJECTED_PERMANENT
    return _Fault(
        outcome,
        Faults(reject=(result, source, reason)),
        detail=(("result", result), ("source", source), ("reason", reason)),
    )


def _slow(phase: str, seconds: float) -> _Fault:
    return _Fault(Outcome.SUCCESS, Faults(delay={phase: seconds}), min_ms=seconds * 1000.0)


def _status(status: int, comment: str | None = None) -> _Fault:
    return _Fault(
        Outcome.ECHO_FAILED_STATUS,
        Faults(status=status, error_comment=comment),
        detail=(("status", status),),
    )


def _aborts(phase: str, source: int = 0, reason: int = 0) -> _Fault:
    return _Fault(
        Outcome.ABORTED_BY_PEER,
        Faults(abort_at=phase, abort_source=source, abort_reason=reason),
        detail=(("source", source), ("reason", reason)),
    )


# Which nodes misbehave, and how: a day in the life of a PACS team.
_TROUBLE: Final[dict[str, _Fault]] = {
    # switched off, unplugged or DICOM service stopped: nothing listens
    "US_ED_04": _REFUSED,
    "US_ICU_02": _REFUSED,
    "US_OB_06": _REFUSED,
    "CR_WARD_03": _REFUSED,
    "WS_RAD_17": _REFUSED,
    "WS_RAD_33": _REFUSED,
    "CLINIC_E_DX": _REFUSED,
    "LAB_3D": _REFUSED,
    # our inventory has an old AE title: the node rejects it (1,1,7)
    "MR_NEURO_03": _Fault(
        Outcome.REJECTED_PERMANENT, called_ae="MR_NEURO_3", detail=(("reason", 7),)
    ),
    "DX_ED_02": _Fault(Outcome.REJECTED_PERMANENT, called_ae="DX_ER_02", detail=(("reason", 7),)),
    "WS_RAD_08": _Fault(Outcome.REJECTED_PERMANENT, called_ae="WSRAD08", detail=(("reason", 7),)),
    "CLINIC_S_US": _Fault(
        Outcome.REJECTED_PERMANENT, called_ae="CLINIC_SOUTH_US", detail=(("reason", 7),)
    ),
    # the node does not know our calling AE title (1,1,3)
    "MG_BREAST_03": _rejected(1, 1, 3),
    "NM_SPECT_02": _rejected(1, 1, 3),
    "AI_TRIAGE": _rejected(1, 1, 3),
    # busy: too many associations (2,3,2) or congested (2,3,1)
    "DCM_ROUTER_02": _rejected(2, 3, 2),
    "PACS_QR": _rejected(2, 3, 1),
    # the port answers, the DICOM service does not (hung)
    "CT_MAIN_03": _SILENT,
    "XA_CATH_02": _SILENT,
    "WS_RAD_25": _SILENT,
    "PRINT_SCP": _SILENT,
    # slow but working (WAN links, overloaded archives)
    "VNA_01": _slow("associate", 0.9),
    "CLINIC_N_CT": _slow("associate", 0.7),
    "CLINIC_W_MR": _slow("associate", 1.1),
    "RIS_GW": _slow("echo", 0.6),
    "US_ECHO_02": _slow("echo", 0.8),
    "PT_CT_01": _slow("associate", 0.6),
    # the echo comes back with a failure status
    "DOSE_MONITOR": _status(0x0122),
    "PACS_ARCH_02": _status(0x0110, "Database unavailable"),
    "CD_BURNER": _status(0xA700, "Out of resources: disk full"),
    # the node aborts the association
    "ES_ENDO_01": _aborts("associate"),
    "OP_EYE_02": _aborts("echo", 2, 0),
    "XA_CATH_04": _aborts("associate", 2, 2),
    # the association is accepted, the Verification SOP class is not
    "RF_FLUORO_02": _Fault(Outcome.NO_ACCEPTED_CONTEXT, Faults(reject_contexts=True)),
    "US_VASC_03": _Fault(Outcome.NO_ACCEPTED_CONTEXT, Faults(reject_contexts=True)),
    # echo fine, release never answered; TCP dropped during association set-up
    "CT_ED_02": _Fault(Outcome.RELEASE_TIMEOUT, Faults(no_release_response=True)),
    "WS_RAD_29": _Fault(Outcome.CONNECTION_LOST, Faults(close_at="associate")),
}


def build_hospital() -> list[DemoPeer]:
    """The simulated hospital: 200 peers, deterministic (the same every run)."""
    peers: list[DemoPeer] = []
    used: set[str] = set()
    for department, subnet, device, stems, count in _DEPARTMENTS:
        names: list[tuple[str, str]]
        if department == "PACS core":
            names = list(_PACS_CORE)
        elif department == "Remote clinics":
            names = [
                (f"{stem}_{mod}", f"{device} ({mod})")
                for stem in stems
                for mod in _CLINIC_MODALITIES
            ]
        else:
            names = [
                (f"{stems[i % len(stems)]}_{i // len(stems) + 1:02d}", device) for i in range(count)
            ]
        for index, (ae_title, what) in enumerate(names[:count], start=1):
            trouble = _TROUBLE.get(ae_title)
            used.add(ae_title)
            host = f"127.0.{subnet}.{index}"
            if trouble is None:
                peers.append(DemoPeer(department, what, ae_title, host, ae_title, Outcome.SUCCESS))
                continue
            peers.append(
                DemoPeer(
                    department,
                    what,
                    ae_title,
                    host,
                    trouble.called_ae or ae_title,
                    trouble.expect,
                    faults=trouble.faults,
                    listening=trouble.listening,
                    expect_detail=trouble.detail,
                    min_ms=trouble.min_ms,
                )
            )
    unknown = set(_TROUBLE) - used
    if unknown:  # a typo in the table above: a fault nobody would show
        raise RuntimeError(f"faults for unknown peers: {sorted(unknown)}")
    return peers


# --------------------------------------------------------------------- the simulation


@contextlib.asynccontextmanager
async def running_hospital(
    peers: Sequence[DemoPeer], *, port: int = PREFERRED_PORT
) -> AsyncIterator[list[DemoPeer]]:
    """Serve every listening peer from one EchoSCP; yield the peers as placed (host, port).

    Each peer gets its own address 127.0.x.y, all on one port (`port` if free, else another).
    Where only 127.0.0.1 exists (macOS without aliases), each peer gets its own port on it.
    The peers that are "switched off" get a bound but not listening socket, so connecting is
    refused and no other program can take their place meanwhile. Everything is closed on exit.
    """
    async with contextlib.AsyncExitStack() as stack:
        placed = await _on_own_addresses(peers, port, stack)
        if placed is None:
            placed = await _on_own_ports(peers, stack)
        yield placed


_ATTEMPTS: Final = 5


def _serve(peers: Sequence[DemoPeer], listen: list[tuple[str, int]], *, same_port: bool) -> EchoSCP:
    keys = [(host, port) for host, port in listen]
    serving = [p for p in peers if p.listening]
    return EchoSCP(
        listen=listen,
        same_port=same_port,
        faults_by_address={k: p.faults for k, p in zip(keys, serving, strict=True) if p.faults},
        ae_titles_by_address={k: (p.ae_title,) for k, p in zip(keys, serving, strict=True)},
        idle_timeout=10.0,
        artim_timeout=2.0,
    )


async def _on_own_addresses(
    peers: Sequence[DemoPeer], port: int, stack: contextlib.AsyncExitStack
) -> list[DemoPeer] | None:
    last: OSError | None = None
    for candidate in (port, *[0] * (_ATTEMPTS - 1)):
        scp = _serve(peers, [(p.host, candidate) for p in peers if p.listening], same_port=True)
        holders: list[socket.socket] = []
        try:
            await scp.start()
            holders.extend(_closed_port(p.host, scp.port) for p in peers if not p.listening)
        except OSError as exc:
            for sock in holders:
                sock.close()
            await scp.close()
            if exc.errno == errno.EADDRNOTAVAIL:
                return None  # no 127.0.x.y addresses here
            last = exc
            continue
        stack.push_async_callback(scp.close)
        for sock in holders:
            stack.callback(sock.close)
        return [replace(p, port=scp.port) for p in peers]
    raise OSError(f"cannot start the simulated hospital: {last}")


async def _on_own_ports(
    peers: Sequence[DemoPeer], stack: contextlib.AsyncExitStack
) -> list[DemoPeer]:
    last: OSError | None = None
    for _ in range(_ATTEMPTS):
        holders = [_closed_port(LOCALHOST, 0) for p in peers if not p.listening]
        for sock in holders:
            stack.callback(sock.close)
        # Free ports for the listeners: chosen by the system, released just before binding.
        probes = [_closed_port(LOCALHOST, 0) for p in peers if p.listening]
        ports = [int(sock.getsockname()[1]) for sock in probes]
        for sock in probes:
            sock.close()
        scp = _serve(peers, [(LOCALHOST, port) for port in ports], same_port=False)
        try:
            await scp.start()
        except OSError as exc:  # one of the ports was taken meanwhile
            await scp.close()
            last = exc
            continue
        stack.push_async_callback(scp.close)
        free = iter(ports)
        held = iter(int(sock.getsockname()[1]) for sock in holders)
        return [
            replace(p, host=LOCALHOST, port=next(free) if p.listening else next(held))
            for p in peers
        ]
    raise OSError(f"cannot start the simulated hospital: {last}")


def _closed_port(host: str, port: int) -> socket.socket:
    """A bound, not listening socket: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


# ------------------------------------------------------------------------ the sweep


async def sweep_peers(
    peers: Sequence[DemoPeer], *, concurrency: int, timeouts: Timeouts
) -> AsyncGenerator[tuple[DemoPeer, ProbeResult], None]:
    """Probe every peer, `concurrency` at a time; yield (peer, record) as probes finish.

    When `echoprobe.fleet.sweep.sweep()` is available, this body becomes:

        by_name = {p.ae_title: p for p in peers}
        targets = [Target(host=p.host, port=p.port, called_ae=p.called_ae, name=p.ae_title)
                   for p in peers]
        async with sweep(targets, concurrency=concurrency, per_host=1, timeouts=timeouts,
                         calling_ae=CALLING_AE) as results:
            async for record in results:
                yield by_name[record.name], record
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(peer: DemoPeer) -> tuple[DemoPeer, ProbeResult]:
        async with gate:
            record = await probe(
                peer.host,
                peer.port,
                calling_ae=CALLING_AE,
                called_ae=peer.called_ae,
                timeouts=timeouts,
                name=peer.ae_title,
                tags=(peer.department,),
            )
        return peer, record

    tasks = [asyncio.create_task(one(peer)) for peer in peers]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------ words for people


# outcome → (short label, style), in the order a PACS team would look at them
_OUTCOME_WORDS: Final[dict[Outcome, tuple[str, str]]] = {
    Outcome.CONNECTION_REFUSED: ("Connection refused", "red"),
    Outcome.CONNECT_TIMEOUT: ("No TCP answer", "red"),
    Outcome.ACSE_TIMEOUT: ("No DICOM answer", "red"),
    Outcome.REJECTED_PERMANENT: ("Association rejected", "red"),
    Outcome.NO_ACCEPTED_CONTEXT: ("Verification refused", "red"),
    Outcome.ECHO_FAILED_STATUS: ("Echo failed", "red"),
    Outcome.ABORTED_BY_PEER: ("Aborted by peer", "red"),
    Outcome.CONNECTION_LOST: ("Connection dropped", "red"),
    Outcome.DIMSE_TIMEOUT: ("No echo response", "red"),
    Outcome.PROTOCOL_ERROR: ("Protocol error", "red"),
    Outcome.REJECTED_TRANSIENT: ("Busy, try later", "yellow"),
    Outcome.RELEASE_TIMEOUT: ("OK, no release reply", "yellow"),
    Outcome.RELEASE_FAILED: ("OK, release failed", "yellow"),
    Outcome.SUCCESS: ("OK", "green"),
}
_SLOW: Final = ("Slow", "yellow")
_RANK: Final = {
    words: rank
    for rank, words in enumerate([*list(_OUTCOME_WORDS.values())[:-1], _SLOW, ("OK", "green")])
}


def label(record: ProbeResult) -> tuple[str, str]:
    """(short label, style) of a record; slow successes are labelled as such."""
    if record.outcome is Outcome.SUCCESS and record.timings_ms.get("total", 0.0) >= SLOW_MS:
        return _SLOW
    return _OUTCOME_WORDS.get(record.outcome, (record.outcome.value, "red"))


def _rank(record: ProbeResult) -> int:
    return _RANK.get(label(record), len(_RANK))


def _host_order(host: str) -> tuple[int, ...]:
    return tuple(int(part) for part in host.split(".")) if host[:1].isdigit() else (1 << 16,)


def explain(record: ProbeResult, timeouts: Timeouts) -> str:
    """The peer's own words, and what to check, for one record (about 40 characters)."""
    detail = record.detail
    outcome = record.outcome
    if outcome is Outcome.SUCCESS:
        return f"answered in {record.timings_ms.get('total', 0.0) / 1000:.1f} s"
    if outcome is Outcome.CONNECTION_REFUSED:
        return "no listener: device off or service down"
    if outcome is Outcome.CONNECT_TIMEOUT:
        return "no TCP reply: host down or firewalled"
    if outcome in (Outcome.REJECTED_PERMANENT, Outcome.REJECTED_TRANSIENT):
        source, reason = int(detail.get("source", 0)), int(detail.get("reason", 0))
        return {
            (1, 7): "unknown called AE title: fix the inventory",
            (1, 3): f"our AE {record.calling_ae} unknown: add it on the peer",
            (1, 2): "application context not supported",
            (3, 2): "local limit exceeded: too many associations",
            (3, 1): "temporary congestion",
        }.get((source, reason), REJECT_REASON_TEXT.get((source, reason), f"reason {reason}"))
    if outcome is Outcome.ACSE_TIMEOUT:
        return f"port open, no A-ASSOCIATE answer in {timeouts.acse:g} s"
    if outcome is Outcome.DIMSE_TIMEOUT:
        return f"associated, no C-ECHO answer in {timeouts.dimse:g} s"
    if outcome is Outcome.ABORTED_BY_PEER:
        if detail.get("source") == 0:
            return "A-ABORT by the peer's application"
        return f"A-ABORT: provider, {ABORT_REASON_TEXT.get(int(detail.get('reason', 0)), '?')}"
    if outcome is Outcome.ECHO_FAILED_STATUS:
        status = int(detail.get("status", record.status or 0))
        comment = detail.get("error_comment")
        return f"0x{status:04X} {comment or status_text(status)}"
    if outcome is Outcome.NO_ACCEPTED_CONTEXT:
        return "Verification SOP class not enabled"
    if outcome is Outcome.RELEASE_TIMEOUT:
        return "echo OK; A-RELEASE never answered"
    if outcome is Outcome.CONNECTION_LOST:
        return f"TCP closed during {record.phase or 'association'}, no A-ABORT"
    return record.error or outcome.value


def _needs_attention(record: ProbeResult) -> bool:
    return label(record)[0] != "OK"


def _shared_port(peers: Iterable[DemoPeer]) -> int | None:
    ports = {peer.port for peer in peers}
    return ports.pop() if len(ports) == 1 else None


def _where(peer: DemoPeer, shared: int | None) -> str:
    return peer.host if shared is not None else format_address(peer.host, peer.port)


def render_attention(
    results: Sequence[tuple[DemoPeer, ProbeResult]], timeouts: Timeouts, width: int
) -> Table:
    rows = [(peer, record) for peer, record in results if _needs_attention(record)]
    rows.sort(key=lambda pr: (_rank(pr[1]), _host_order(pr[0].host), pr[0].port))
    wide = width >= 110
    shared = _shared_port(peer for peer, _ in results)
    where = f", all on port {shared}" if shared is not None else ""
    table = Table(
        title=f"Peers that need attention ({len(rows)} of {len(results)}{where})",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("Called AE", no_wrap=True)
    table.add_column("Host" if shared is not None else "Address", no_wrap=True)
    if wide:
        table.add_column("Department", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Peer's answer / what to check", overflow="fold", min_width=24)
    for peer, record in rows:
        text, style = label(record)
        cells: list[str | Text] = [record.called_ae, _where(peer, shared)]
        if wide:
            cells.append(peer.department)
        cells += [Text(text, style=style), explain(record, timeouts)]
        table.add_row(*cells)
    return table


def render_departments(results: Sequence[tuple[DemoPeer, ProbeResult]]) -> Table:
    table = Table(
        title="By department", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD
    )
    table.add_column("Department")
    table.add_column("Peers", justify="right")
    table.add_column("OK", justify="right", style="green")
    table.add_column("Warning", justify="right", style="yellow")
    table.add_column("Failed", justify="right", style="red")
    table.add_column("Median time", justify="right")
    order: list[str] = []
    groups: dict[str, list[ProbeResult]] = {}
    for peer, record in results:
        if peer.department not in groups:
            order.append(peer.department)
            groups[peer.department] = []
        groups[peer.department].append(record)
    for department in order:
        records = groups[department]
        styles = Counter(label(r)[1] for r in records)
        times = sorted(r.timings_ms.get("total", 0.0) for r in records if r.outcome.echo_succeeded)
        median = f"{times[len(times) // 2]:.0f} ms" if times else "-"
        table.add_row(
            department,
            str(len(records)),
            str(styles["green"]),
            str(styles["yellow"] or ""),
            str(styles["red"] or ""),
            median,
        )
    return table


def render_outcomes(results: Sequence[tuple[DemoPeer, ProbeResult]]) -> Text:
    counts = Counter(label(record) for _, record in results)
    text = Text()
    for (name, style), count in sorted(counts.items(), key=lambda kv: _RANK.get(kv[0], 99)):
        if text:
            text.append("  ")
        text.append(f"{count} ", style=f"bold {style}")
        text.append(name, style=style)
    return text


def check_expectations(
    results: Iterable[tuple[DemoPeer, ProbeResult]],
) -> list[tuple[DemoPeer, ProbeResult, str]]:
    """Every peer whose record does not say what its simulated fault says."""
    wrong = []
    for peer, record in results:
        problems = []
        if record.outcome is not peer.expect:
            problems.append(f"outcome {record.outcome.value}, expected {peer.expect.value}")
        for key, value in peer.expect_detail:
            if record.detail.get(key) != value:
                problems.append(f"{key} {record.detail.get(key)!r}, expected {value!r}")
        total = record.timings_ms.get("total", 0.0)
        if peer.min_ms and total < peer.min_ms:
            problems.append(f"took {total:.0f} ms, expected ≥ {peer.min_ms:.0f} ms")
        if problems:
            wrong.append((peer, record, "; ".join(problems)))
    return wrong


# ------------------------------------------------------------------------ the command


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="sweep a simulated hospital on loopback (no PACS needed)",
        description="Start ~200 simulated DICOM peers on 127.0.x.y (CT, MR, US, PACS, ...; "
        "some broken on purpose), sweep them with C-ECHO and show the result. Exit 0 when "
        "every peer was classified as simulated, 1 otherwise.",
    )
    p.add_argument("--concurrency", type=int, default=64, metavar="N",
                   help="associations at once (default 64)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"connect/ACSE/DIMSE timeout (default {DEFAULT_TIMEOUT:g})")  # fmt: skip
    p.add_argument("--no-live", action="store_true", help="no live progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1 or not 0 < args.timeout <= 60:
        print("echoprobe demo: error: --concurrency ≥ 1, 0 < --timeout ≤ 60", file=sys.stderr)
        return exit_codes.USAGE
    console = Console(highlight=False)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        task_code: list[int] = []
        try:
            return runner.run(
                _demo(console, args.concurrency, args.timeout, live=not args.no_live, sig=task_code)
            )
        except (KeyboardInterrupt, asyncio.CancelledError):
            console.print("[yellow]interrupted[/]: the simulated hospital is stopped")
            return task_code[0] if task_code else exit_codes.INTERRUPTED


async def _demo(
    console: Console, concurrency: int, phase_timeout: float, *, live: bool, sig: list[int]
) -> int:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    with contextlib.suppress(NotImplementedError, RuntimeError):

        def on_term() -> None:
            sig.append(exit_codes.TERMINATED)
            if main is not None:
                main.cancel()

        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await _sweep_and_report(console, concurrency, phase_timeout, live=live)
    except OSError as exc:  # e.g. no free port, too few file descriptors
        console.print(f"[red]echoprobe demo: cannot run the simulated hospital:[/] {exc}")
        return exit_codes.SOME_FAILED
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _sweep_and_report(
    console: Console, concurrency: int, phase_timeout: float, *, live: bool
) -> int:
    timeout = phase_timeout
    peers = build_hospital()
    timeouts = Timeouts(
        connect=timeout, acse=timeout, dimse=timeout, release=timeout / 2, total=timeout * 4
    )
    departments = len({p.department for p in peers})
    started = time.perf_counter()
    async with running_hospital(peers) as placed:
        peers = placed
        shared = _shared_port(peers)
        where = (
            f"127.0.1.x to 127.0.{departments}.x, port {shared}"
            if shared is not None
            else f"{LOCALHOST}, one port each"
        )
        console.print(
            f"[bold]echoprobe demo[/]: a simulated hospital, {len(peers)} DICOM peers in "
            f"{departments} departments ({where})"
        )
        console.print(
            f"C-ECHO sweep as {CALLING_AE}, {concurrency} associations at a time, "
            f"timeouts {timeout:g} s",
            style="dim",
        )
        results: list[tuple[DemoPeer, ProbeResult]] = []
        progress = Progress(
            TextColumn("[bold]Sweeping"),
            BarColumn(bar_width=40),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        task = progress.add_task("sweep", total=len(peers))
        swept = time.perf_counter()

        def live_view() -> Group:
            return Group(progress, render_outcomes(results))

        # Rendering happens in rich's refresh thread, a few times a second, so the event
        # loop (which also runs the simulated peers) only appends results.
        display: contextlib.AbstractContextManager[Live | None] = (
            Live(live_view(), console=console, transient=True, refresh_per_second=8)
            if live
            else contextlib.nullcontext()
        )
        with display as view:
            async with contextlib.aclosing(
                sweep_peers(peers, concurrency=concurrency, timeouts=timeouts)
            ) as stream:
                async for pair in stream:
                    results.append(pair)
                    progress.advance(task)
                    if view is not None:
                        view.update(live_view())
        sweep_seconds = time.perf_counter() - swept
    order = {peer.ae_title: i for i, peer in enumerate(peers)}
    results.sort(key=lambda pr: order[pr[0].ae_title])

    console.print()
    console.print(render_departments(results))
    console.print(render_attention(results, timeouts, console.width))
    ok = sum(1 for _, r in results if r.outcome.echo_succeeded)
    console.print(
        Text.assemble(
            ("Result: ", "bold"),
            (f"{ok} of {len(results)} peers answer C-ECHO", "bold green"),
            ", ",
            (f"{len(results) - ok} do not", "bold red" if ok < len(results) else "bold"),
            f"  (swept in {sweep_seconds:.1f} s)",
        )
    )
    console.print(render_outcomes(results))
    wrong = check_expectations(results)
    total_seconds = time.perf_counter() - started
    if not wrong:
        console.print(
            f"Self-check: all {len(results)} peers were classified as simulated "
            f"({total_seconds:.1f} s in all; nothing left running).",
            style="dim",
        )
        return exit_codes.OK
    table = Table(title="Self-check FAILED: peers not classified as simulated", box=box.SIMPLE)
    table.add_column("Called AE")
    table.add_column("Address")
    table.add_column("Mismatch", overflow="fold")
    for peer, record, why in wrong:
        table.add_row(record.called_ae, format_address(peer.host, peer.port), why)
    console.print(table, style="red")
    return exit_codes.SOME_FAILED
