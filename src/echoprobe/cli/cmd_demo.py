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
- the summary is `echoprobe.report.admin` (shared with `echoprobe sweep`): it groups records
  by their first tag, which is `DemoPeer.department`.
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
from echoprobe.net.addresses import format_address
from echoprobe.net.client import probe
from echoprobe.net.server import EchoSCP, Faults
from echoprobe.options import Timeouts
from echoprobe.report.admin import AdminView, render_attention, render_groups, render_outcomes
from echoprobe.results import Outcome, ProbeResult

CALLING_AE: Final = "ECHOPROBE"
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
# The administrator's view (plain words, advice, departments) is `echoprobe.report.admin`,
# shared with `echoprobe sweep`; the demo adds only its own self-check.


def _shared_port(peers: Iterable[DemoPeer]) -> int | None:
    ports = {peer.port for peer in peers}
    return ports.pop() if len(ports) == 1 else None


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
    p.add_argument("--phase-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help="connect, ACSE and DIMSE timeout of each peer (default "
                   f"{DEFAULT_TIMEOUT:g}; a whole peer is bounded by 4x this)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    # Old spellings, kept working for scripts: `--timeout` is the whole-target deadline in
    # the other echoprobe commands, `--no-progress` their name for this.
    p.add_argument("--timeout", dest="phase_timeout", type=float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument("--no-live", dest="no_progress", action="store_true",
                   help=argparse.SUPPRESS)  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1 or not 0 < args.phase_timeout <= 60:
        print("echoprobe demo: error: --concurrency ≥ 1, 0 < --phase-timeout ≤ 60", file=sys.stderr)
        return exit_codes.USAGE
    console = Console(highlight=False)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        task_code: list[int] = []
        try:
            return runner.run(
                _demo(
                    console,
                    args.concurrency,
                    args.phase_timeout,
                    live=not args.no_progress,
                    sig=task_code,
                )
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
        tally = AdminView(timeouts=timeouts)  # the live line of counts
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
            return Group(progress, render_outcomes(tally))

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
                    tally.add(pair[1])
                    progress.advance(task)
                    if view is not None:
                        view.update(live_view())
        sweep_seconds = time.perf_counter() - swept
    order = {peer.ae_title: i for i, peer in enumerate(peers)}
    results.sort(key=lambda pr: order[pr[0].ae_title])

    console.print()
    admin = AdminView(timeouts=timeouts)
    for _, record in results:
        admin.add(record)
    console.print(render_groups(admin, sort=False))
    console.print(render_attention(admin, console.width, limit=None))
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
    console.print(render_outcomes(admin))
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
