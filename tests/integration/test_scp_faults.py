"""`EchoSCP` and its faults, each seen by our own client: `probe()` must give the outcome, the
phase and the peer's own words that the fault means.

One SCP serves every fault case at once, each on its own loopback address (`faults_by_address`)
or called AE title (`faults_by_ae`); all probes run concurrently, once per event loop kind, in a
module fixture, and each test checks one stored record. Loopback only; every server stops in
a `finally`; every wait is bounded by the probe's own timeouts and `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from echoprobe._values import replace
from echoprobe.errors import NoAcceptedContext
from echoprobe.net.client import echo, probe
from echoprobe.net.server import EchoSCP, Faults, SCPCounters
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult
from echoprobe.ul.constants import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN
from tests.support.servers import has_ipv6_loopback, loop_factory

T = TypeVar("T")

SUBNET = "127.0.42"  # one address per case: 127.0.42.1, .2, ...
TIMEOUTS = Timeouts(connect=2.0, acse=0.8, dimse=0.8, release=0.8, total=6.0)
LOOPS = ("uvloop", "asyncio")
RUN_LIMIT = 20.0


def run(coro: Coroutine[Any, Any, T], kind: str = "uvloop") -> T:
    async def bounded() -> T:
        async with asyncio.timeout(RUN_LIMIT):
            return await coro

    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(bounded())


@dataclass(frozen=True)
class Case:
    name: str
    faults: Faults
    outcome: Outcome
    detail: dict[str, object] = field(default_factory=dict)
    phase: str | None = None
    called_ae: str = "ANY-SCP"
    at_least: dict[str, float] = field(default_factory=dict)  # timing key → minimum ms


def _abort(phase: str, source: int = 0, reason: int = 0) -> Faults:
    return Faults(abort_at=phase, abort_source=source, abort_reason=reason)


CASES = [
    Case("healthy", Faults(), Outcome.SUCCESS, {"release": "released"}),
    Case(
        "reject-permanent",
        Faults(reject=(1, 1, 7)),
        Outcome.REJECTED_PERMANENT,
        {"result": 1, "source": 1, "reason": 7},
        "associate",
    ),
    Case(
        "reject-transient",
        Faults(reject=(2, 3, 1)),
        Outcome.REJECTED_TRANSIENT,
        {"result": 2, "source": 3, "reason": 1},
        "associate",
    ),
    Case(
        "reject-calling-ae",
        Faults(reject=(1, 1, 3)),
        Outcome.REJECTED_PERMANENT,
        {"reason": 3},
        "associate",
    ),
    Case(
        "abort-connect",
        _abort("connect"),
        Outcome.ABORTED_BY_PEER,
        {"source": 0, "reason": 0},
        "associate",
    ),
    Case(
        "abort-associate",
        _abort("associate", 2, 6),
        Outcome.ABORTED_BY_PEER,
        {"source": 2, "reason": 6},
        "associate",
    ),
    Case("abort-echo", _abort("echo"), Outcome.ABORTED_BY_PEER, {"source": 0}, "echo"),
    Case(
        "abort-release",
        _abort("release"),
        Outcome.RELEASE_FAILED,
        {"release": "peer_aborted"},
    ),
    Case(
        "close-connect",
        Faults(close_at="connect"),
        Outcome.CONNECTION_LOST,
        {"mid_pdu": False},
        "associate",
    ),
    Case(
        "close-associate",
        Faults(close_at="associate"),
        Outcome.CONNECTION_LOST,
        {"mid_pdu": False},
        "associate",
    ),
    Case("close-echo", Faults(close_at="echo"), Outcome.CONNECTION_LOST, {}, "echo"),
    Case(
        "close-release",
        Faults(close_at="release"),
        Outcome.RELEASE_FAILED,
        {"release": "connection_closed"},
    ),
    Case(
        "silent-connect",
        Faults(silent_at="connect"),
        Outcome.ACSE_TIMEOUT,
        {"timer": "phase"},
        "associate",
    ),
    Case(
        "silent-associate",
        Faults(silent_at="associate"),
        Outcome.ACSE_TIMEOUT,
        {"timer": "phase", "mid_pdu": False},
        "associate",
    ),
    Case("silent-echo", Faults(silent_at="echo"), Outcome.DIMSE_TIMEOUT, {}, "echo"),
    Case(
        "silent-release",
        Faults(silent_at="release"),
        Outcome.RELEASE_TIMEOUT,
        {"release": "release_timeout"},
    ),
    Case(
        "no-release-response",
        Faults(no_release_response=True),
        Outcome.RELEASE_TIMEOUT,
        {"release": "release_timeout"},
    ),
    Case(
        "delay-connect",
        Faults(delay={"connect": 0.3}),
        Outcome.SUCCESS,
        at_least={"total": 300},
    ),
    Case(
        "delay-associate",
        Faults(delay={"associate": 0.3}),
        Outcome.SUCCESS,
        at_least={"associate": 300},
    ),
    Case("delay-echo", Faults(delay={"echo": 0.3}), Outcome.SUCCESS, at_least={"echo": 300}),
    Case(
        "delay-release",
        Faults(delay={"release": 0.3}),
        Outcome.SUCCESS,
        at_least={"release": 300},
    ),
    Case(
        "delay-beyond-timeout",
        Faults(delay={"echo": 1.2}),
        Outcome.DIMSE_TIMEOUT,
        {"timer": "phase"},
        "echo",
    ),
    # ~200 bytes of A-ASSOCIATE-AC at 2 ms a byte: slow, but inside the ACSE timeout
    Case("trickle", Faults(trickle=0.002), Outcome.SUCCESS, at_least={"associate": 300}),
    # a whole-phase timeout is not stretched by trickled bytes (DCMTK's per-read one is)
    Case(
        "trickle-beyond-timeout",
        Faults(trickle=0.02),
        Outcome.ACSE_TIMEOUT,
        {"mid_pdu": True},
        "associate",
    ),
    Case(
        "status",
        Faults(status=0x0110, error_comment="Disk full"),
        Outcome.ECHO_FAILED_STATUS,
        {"status": 0x0110, "error_comment": "Disk full"},
    ),
    Case("status-refused", Faults(status=0x0122), Outcome.ECHO_FAILED_STATUS, {"status": 0x0122}),
    Case(
        "release-collision",
        Faults(release_collision=True),
        Outcome.SUCCESS,
        {"release": "collision"},
    ),
    Case("reject-contexts", Faults(reject_contexts=True), Outcome.NO_ACCEPTED_CONTEXT),
    # per called AE: on a healthy address, and replacing an address's own faults
    Case(
        "ae-broken",
        Faults(),
        Outcome.ECHO_FAILED_STATUS,
        {"status": 0xC001},
        called_ae="BROKEN",
    ),
    Case("ae-overrides-address", Faults(silent_at="associate"), Outcome.SUCCESS, called_ae="FINE"),
]
FAULTS_BY_AE = {"BROKEN": Faults(status=0xC001), "FINE": Faults()}
IDS = [case.name for case in CASES]


@dataclass
class Swept:
    records: dict[str, ProbeResult]
    seconds: dict[str, float]
    counters: SCPCounters
    open_after: int


async def _sweep_cases() -> Swept:
    hosts = {case.name: f"{SUBNET}.{index}" for index, case in enumerate(CASES, start=1)}
    scp = EchoSCP(
        list(hosts.values()),
        0,
        faults_by_address={hosts[c.name]: c.faults for c in CASES},
        faults_by_ae=FAULTS_BY_AE,
        idle_timeout=5.0,
        artim_timeout=1.0,
    )
    await scp.start()
    try:

        async def one(case: Case) -> tuple[str, ProbeResult, float]:
            start = time.perf_counter()
            record = await probe(
                hosts[case.name], scp.port, called_ae=case.called_ae, timeouts=TIMEOUTS
            )
            return case.name, record, time.perf_counter() - start

        done = await asyncio.gather(*(one(case) for case in CASES))
        for _ in range(300):  # the peers' last closes reach the SCP (bounded: 3 s)
            if not scp.open_connections:
                break
            await asyncio.sleep(0.01)
        open_after = scp.open_connections
    finally:
        await scp.close()
    return Swept(
        records={name: record for name, record, _ in done},
        seconds={name: seconds for name, _, seconds in done},
        counters=scp.counters,
        open_after=open_after,
    )


@pytest.fixture(scope="module", params=LOOPS)
def swept(request: pytest.FixtureRequest) -> Swept:
    return run(_sweep_cases(), str(request.param))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fault_is_classified(swept: Swept, case: Case) -> None:
    record = swept.records[case.name]
    assert record.outcome is case.outcome, (record.outcome, record.error, record.detail)
    for key, value in case.detail.items():
        assert record.detail.get(key) == value, (key, record.detail)
    if case.phase is not None:
        assert record.phase == case.phase
    for key, minimum in case.at_least.items():
        assert record.timings_ms[key] >= minimum * 0.95, (key, record.timings_ms)


def test_timeouts_are_bounded(swept: Swept) -> None:
    """Silent and slow faults end on the client's own timeouts, never later."""
    assert max(swept.seconds.values()) < 3.0, swept.seconds


def test_counters_add_up(swept: Swept) -> None:
    c = swept.counters
    assert c.connections == len(CASES)
    assert c.release_collisions == 1
    assert c.closed_by_fault == 4  # connect, associate, echo, release
    assert c.silenced == 5  # silent at each phase, no-release-response ("FINE" overrides one)
    assert c.aborts_sent >= 4
    assert c.rejected == 3
    assert c.echo_failures == 3  # status, status-refused, ae-broken
    assert swept.open_after == 0


# -- settings that are not faults -------------------------------------------------------------


def test_unknown_called_and_calling_ae_are_rejected_with_their_reason() -> None:
    async def main() -> list[ProbeResult]:
        async with EchoSCP(
            "127.0.0.1", 0, ae_titles=["PACS"], calling_ae_titles=["ECHOPROBE"]
        ) as scp:
            return [
                await probe("127.0.0.1", scp.port, called_ae=called, calling_ae=calling)
                for called, calling in (
                    ("PACS", "ECHOPROBE"),
                    ("OTHER", "ECHOPROBE"),
                    ("PACS", "STRANGER"),
                )
            ]

    ok, wrong_called, wrong_calling = run(main())
    assert ok.outcome is Outcome.SUCCESS
    assert wrong_called.outcome is Outcome.REJECTED_PERMANENT
    assert wrong_called.detail == {"result": 1, "source": 1, "reason": 7}
    assert wrong_calling.outcome is Outcome.REJECTED_PERMANENT
    assert wrong_calling.detail == {"result": 1, "source": 1, "reason": 3}


def test_ae_titles_per_address() -> None:
    async def main() -> list[ProbeResult]:
        hosts = ["127.0.42.201", "127.0.42.202"]
        titles = {hosts[0]: ["CT_ED_01"], hosts[1]: ["MR_01"]}
        async with EchoSCP(hosts, 0, ae_titles_by_address=titles) as scp:
            return [
                await probe(host, scp.port, called_ae=called)
                for host, called in ((hosts[0], "CT_ED_01"), (hosts[1], "CT_ED_01"))
            ]

    right, wrong = run(main())
    assert right.outcome is Outcome.SUCCESS
    assert wrong.outcome is Outcome.REJECTED_PERMANENT
    assert wrong.detail["reason"] == 7


def test_transfer_syntaxes_are_configurable() -> None:
    async def main() -> tuple[ProbeResult, str | None, BaseException | None]:
        async with EchoSCP("127.0.0.1", 0, transfer_syntaxes=[EXPLICIT_VR_LITTLE_ENDIAN]) as scp:
            implicit_only = await probe("127.0.0.1", scp.port)
            both = await echo(
                "127.0.0.1",
                scp.port,
                transfer_syntaxes=(IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN),
            )
            error: BaseException | None = None
            try:
                await echo("127.0.0.1", scp.port)
            except NoAcceptedContext as exc:
                error = exc
            return implicit_only, both.peer.transfer_syntax, error

    implicit_only, chosen, error = run(main())
    assert implicit_only.outcome is Outcome.NO_ACCEPTED_CONTEXT
    assert chosen == EXPLICIT_VR_LITTLE_ENDIAN
    assert isinstance(error, NoAcceptedContext)
    assert error.results == ((1, 4),)  # transfer-syntaxes-not-supported


@pytest.mark.parametrize("kind", LOOPS)
def test_max_associations_holds_under_concurrency(kind: str) -> None:
    """Five concurrent associations against a limit of two: two succeed, three are rejected
    transient / local-limit-exceeded; once they are gone, the SCP accepts again."""

    async def main() -> tuple[list[ProbeResult], list[ProbeResult], SCPCounters, int]:
        async with EchoSCP(
            "127.0.0.1", 0, max_associations=2, faults=Faults(delay={"echo": 0.6})
        ) as scp:
            first = await asyncio.gather(
                *(probe("127.0.0.1", scp.port, timeouts=TIMEOUTS) for _ in range(5))
            )
            for _ in range(100):
                if not scp.active_associations:
                    break
                await asyncio.sleep(0.01)
            active = scp.active_associations
            again = await asyncio.gather(
                *(probe("127.0.0.1", scp.port, timeouts=TIMEOUTS) for _ in range(2))
            )
            return first, again, scp.counters, active

    first, again, counters, active = run(main(), kind)
    outcomes = sorted(r.outcome.value for r in first)
    # All five start within milliseconds and each holds its association for 0.6 s, so the
    # split is 2/3; only the limit itself is asserted strictly.
    assert outcomes == ["rejected_transient"] * 3 + ["success"] * 2
    for record in first:
        if record.outcome is Outcome.REJECTED_TRANSIENT:
            assert record.detail == {"result": 2, "source": 3, "reason": 2}
    assert counters.peak_associations == 2
    assert counters.rejected_busy == outcomes.count("rejected_transient")
    assert active == 0
    assert all(r.outcome is Outcome.SUCCESS for r in again)


def test_many_addresses_one_port_and_ipv6() -> None:
    listen = [("127.0.42.101", 0), ("127.0.42.102", 0)]
    if has_ipv6_loopback():
        listen.append(("::1", 0))

    async def main() -> tuple[list[tuple[str, int]], list[ProbeResult]]:
        async with EchoSCP(listen=listen) as scp:
            records = [await probe(host, port) for host, port in scp.addresses]
            return scp.addresses, records

    addresses, records = run(main())
    assert len({port for _, port in addresses}) == 1  # port 0: one port shared by all
    assert [host for host, _ in addresses] == [host for host, _ in listen]
    assert all(r.outcome is Outcome.SUCCESS for r in records), records


def test_several_ports_on_one_address() -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))

    async def main() -> list[ProbeResult]:
        async with EchoSCP(listen=[("127.0.0.1", p) for p in ports]) as scp:
            assert [p for _, p in scp.addresses] == ports
            return [await probe(host, p) for host, p in scp.addresses]

    try:
        records = run(main())
    except OSError as exc:  # another program took one of the two ports meanwhile
        pytest.skip(f"ports taken: {exc}")
    assert [r.outcome for r in records] == [Outcome.SUCCESS, Outcome.SUCCESS]


def test_close_aborts_open_associations_and_leaves_nothing() -> None:
    async def main() -> tuple[ProbeResult, int]:
        scp = await EchoSCP("127.0.0.1", 0, faults=Faults(delay={"echo": 5.0})).start()
        task = asyncio.create_task(probe("127.0.0.1", scp.port, timeouts=Timeouts(dimse=5.0)))
        for _ in range(200):
            if scp.active_associations:
                break
            await asyncio.sleep(0.01)
        await scp.close()
        return await task, scp.open_connections

    record, still_open = run(main())
    assert record.outcome is Outcome.ABORTED_BY_PEER
    assert record.phase == "echo"
    assert record.detail == {"source": 0, "reason": 0}
    assert still_open == 0


def test_a_silent_client_is_dropped_by_the_artim_timer() -> None:
    """A client that connects and sends nothing is closed after ARTIM (Sta2, Evt18)."""

    async def main() -> tuple[bytes, float, SCPCounters]:
        async with EchoSCP("127.0.0.1", 0, artim_timeout=0.3) as scp:
            reader, writer = await asyncio.open_connection("127.0.0.1", scp.port)
            start = time.perf_counter()
            data = await asyncio.wait_for(reader.read(), 3.0)
            elapsed = time.perf_counter() - start
            writer.close()
            return data, elapsed, scp.counters

    data, elapsed, counters = run(main())
    assert data == b""
    assert 0.2 < elapsed < 1.5
    assert counters.timeouts == 1


def test_counters_are_the_callers() -> None:
    async def main() -> dict[str, int]:
        async with EchoSCP("127.0.0.1", 0) as scp:
            await echo("127.0.0.1", scp.port, repeat=3)
            for _ in range(100):
                if scp.counters.releases:
                    break
                await asyncio.sleep(0.01)
            return scp.counters.as_dict()

    counters = run(main())
    assert counters["associations"] == 1
    assert counters["echoes"] == 3
    assert counters["releases"] == 1
    assert counters["rejected"] == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Faults(abort_at="later"),
        lambda: Faults(delay={"nowhere": 1.0}),
        lambda: Faults(delay={"echo": -1.0}),
        lambda: Faults(reject=(1, 1, 256)),
        lambda: Faults(status=0x10000),
        lambda: Faults(trickle=float("nan")),
    ],
)
def test_bad_faults_are_refused(make: Callable[[], Faults]) -> None:
    with pytest.raises(ValueError):
        make()


def test_an_address_in_use_fails_start_cleanly() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            scp = EchoSCP(listen=[("127.0.42.150", 0), ("127.0.0.1", port)])
            with pytest.raises(OSError):
                await scp.start()
            assert scp.addresses == []

    run(main())


# -- counters for what storescu/findscu-style clients do ---------------------------------------


async def _exchange(port: int, payload: bytes, *, then_close: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        answer = await asyncio.wait_for(reader.read(65536), 5.0)
        if then_close:
            writer.close()
            await writer.wait_closed()
        return answer
    finally:
        writer.close()


def test_counters_show_rejected_contexts_and_unreleased_closes() -> None:
    """A requestor proposing a context we do not support, then closing with neither release
    nor abort (as some storescu/findscu builds do): both are counted, on the general path and
    on the shortcut (the second, identical request)."""
    from echoprobe.ul.codec import encode_pdu
    from echoprobe.ul.negotiation import build_request

    # Two contexts: 1 = Verification (accepted), 3 = CT Image Storage (not supported).
    request = build_request(calling_ae="STORESCU", called_ae="ANY-SCP", num_contexts=2)
    contexts = list(request.presentation_contexts)
    contexts[1] = replace(contexts[1], abstract_syntax="1.2.840.10008.5.1.4.1.1.2")
    rq = encode_pdu(replace(request, presentation_contexts=tuple(contexts)))

    async def main() -> SCPCounters:
        async with EchoSCP("127.0.0.1", 0) as scp:
            for _ in range(2):  # the second time from the shortcut's cache
                answer = await _exchange(scp.port, rq, then_close=True)
                assert answer[0] == 0x02  # A-ASSOCIATE-AC
            for _ in range(100):
                if not scp.open_connections:
                    break
                await asyncio.sleep(0.01)
            return scp.counters

    counters = run(main(), "uvloop")
    assert counters.associations == 2
    assert counters.contexts_rejected == 2
    assert counters.closed_unreleased == 2
    assert "contexts_rejected=2" in counters.summary()
    assert "closed_unreleased=2" in counters.summary()
