"""`run_load` / `find_capacity` against our `EchoSCP` (its own thread and loop) on loopback.

The bars of the load generator: the reported percentiles match an injected latency; the
capacity search finds a configured `max_associations`; open loop keeps its rate when the SCP
is slow, and counts latency from the intended start. Every run here is bounded to ~1 s.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
from typing import Any

import pytest

from echoprobe.fleet import load as load_module
from echoprobe.fleet.capacity import find_capacity, judge_step
from echoprobe.fleet.load import (
    PortFacts,
    Ramp,
    parse_ramp,
    parse_source_addresses,
    run_load,
)
from echoprobe.net.errors_map import map_connect_error
from echoprobe.net.server import Faults
from echoprobe.options import Timeouts
from tests.conftest import ScpFactory

FAST = Timeouts(connect=2, acse=2, dimse=2, release=2)
DELAY = 0.020  # seconds the SCP waits before each C-ECHO-RSP


# --- latency matches what the SCP injects -----------------------------------------------------


async def test_closed_loop_percentiles_match_injected_echo_delay(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": DELAY}))
    report = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=8,
        duration=0.8,
        warmup=0.2,
        repeat=2,
        tick=0.1,
        timeouts=FAST,
    )
    assert report.ok, report.reasons
    assert report.attempted == report.succeeded > 0
    echo = report.histograms["echo"]
    assert echo.count == 2 * report.succeeded  # every C-ECHO round trip is recorded
    ms = DELAY * 1000
    # uvloop's timers have 1 ms granularity; a loaded machine adds latency, never removes it
    assert echo.min is not None
    assert echo.min >= ms - 1.5
    p50, p90, p99 = (echo.percentile(q) for q in (50, 90, 99))
    assert p50 is not None
    assert p90 is not None
    assert p99 is not None
    assert ms - 1.0 <= p50 <= ms * 1.5, p50
    assert p50 <= p90 <= p99 <= (echo.max or math.inf)
    whole = report.histograms["association"]
    assert whole.min is not None
    assert whole.min >= 2 * ms - 3
    assert (whole.percentile(50) or 0) >= 2 * ms - 1
    # 8 workers, each association ≥ 40 ms: at most 8 / 0.04 = 200 associations per second
    assert report.assoc_per_s <= 8 / (2 * DELAY) * 1.05
    assert report.assoc_per_s > 8 / (2 * DELAY) * 0.3
    assert report.echoes_per_s == pytest.approx(2 * report.assoc_per_s, rel=0.25)
    # the other phases are not delayed
    assert (report.histograms["associate"].percentile(50) or 0) < ms
    assert report.warmup_associations > 0
    assert report.series
    assert any(t.warmup for t in report.series)
    assert report.cpu_seconds > 0


async def test_open_loop_percentiles_match_injected_associate_delay(
    scp_factory: ScpFactory,
) -> None:
    scp = scp_factory(faults=Faults(delay={"associate": DELAY}))
    report = await run_load(
        "127.0.0.1", scp.port, rate=150, arrivals="poisson", duration=0.8, seed=7, timeouts=FAST
    )
    assert report.ok, report.reasons
    assoc = report.histograms["associate"]
    p50 = assoc.percentile(50)
    assert p50 is not None
    assert DELAY * 1000 - 1.0 <= p50 <= DELAY * 1000 * 1.5
    assert (report.histograms["echo"].percentile(50) or 0) < DELAY * 1000
    lag = report.histograms["start_lag"]
    assert lag.count == report.succeeded


# --- outcomes and the peer's words ------------------------------------------------------------


async def test_rejects_are_counted_with_the_peers_reason(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(reject=(1, 1, 7)))
    report = await run_load("127.0.0.1", scp.port, concurrency=4, associations=40, timeouts=FAST)
    assert not report.ok
    assert report.outcomes == {"rejected_permanent": 40}
    assert report.succeeded == 0
    assert report.failed == 40
    (reason,) = report.reasons
    assert "Called AE Title Not Recognized" in reason
    assert sum(t.failed for t in report.series) == 40
    assert report.histograms["association"].count == 0  # failures enter no latency histogram


async def test_aborts_and_failed_status_are_counted(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(abort_at="echo", abort_source=2, abort_reason=6))
    report = await run_load("127.0.0.1", scp.port, concurrency=2, associations=10, timeouts=FAST)
    assert report.outcomes == {"aborted_by_peer": 10}
    assert "invalid PDU parameter value" in next(iter(report.reasons))
    scp = scp_factory(faults=Faults(status=0x0110, error_comment="busy"))
    report = await run_load("127.0.0.1", scp.port, concurrency=2, associations=10, timeouts=FAST)
    assert report.outcomes == {"echo_failed_status": 10}
    assert next(iter(report.reasons)) == "echo_failed_status: C-ECHO status 0x0110 (busy)"


async def test_timeouts_are_counted(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(silent_at="echo"))
    quick = Timeouts(connect=2, acse=2, dimse=0.2, release=1)
    report = await run_load("127.0.0.1", scp.port, concurrency=3, associations=3, timeouts=quick)
    assert report.outcomes == {"dimse_timeout": 3}


# --- the capacity search ----------------------------------------------------------------------


async def test_find_capacity_finds_max_associations(scp_factory: ScpFactory) -> None:
    limit = 6
    scp = scp_factory(max_associations=limit)
    steps: list[float] = []
    capacity = await find_capacity(
        "127.0.0.1",
        scp.port,
        step_duration=0.4,
        step_warmup=0.1,
        max_level=64,
        timeouts=FAST,
        on_step=lambda step: steps.append(step.level),
    )
    assert capacity.capacity == limit, [s.to_dict() for s in capacity.steps]
    assert capacity.first_failure == limit + 1
    assert "Local Limit Exceeded" in capacity.stop_reason
    assert steps[:4] == [1, 2, 4, 8]  # doubling, then bisection between 4 and 8
    assert sorted(steps[4:]) == [6, 7]
    assert capacity.at_capacity is not None
    assert capacity.at_capacity.ok
    assert scp.counters.peak_associations == limit
    assert scp.counters.rejected_busy > 0
    data = capacity.to_dict()
    assert data["capacity"] == limit
    assert len(data["steps"]) == len(steps)


async def test_find_capacity_stops_at_the_p99_bound(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.01}))
    capacity = await find_capacity(
        "127.0.0.1",
        scp.port,
        mode="rate",
        start=20,
        factor=4,
        max_level=2000,
        step_duration=0.4,
        step_warmup=0.1,
        p99_bound_ms=5.0,  # below the injected 10 ms: the first step already fails
        timeouts=FAST,
    )
    assert capacity.capacity is None
    assert capacity.first_failure == 20
    assert "p99" in capacity.stop_reason
    assert "bound" in capacity.stop_reason
    assert not capacity.found


# --- open loop ---------------------------------------------------------------------------------


async def test_open_loop_keeps_its_rate_when_the_scp_is_slow(scp_factory: ScpFactory) -> None:
    rate, seconds = 200.0, 1.0
    fast = scp_factory()
    slow = scp_factory(faults=Faults(delay={"echo": 0.15}))
    quick = await run_load("127.0.0.1", fast.port, rate=rate, duration=seconds, timeouts=FAST)
    sluggish = await run_load("127.0.0.1", slow.port, rate=rate, duration=seconds, timeouts=FAST)
    for report in (quick, sluggish):
        assert report.ok, report.reasons
        assert report.attempted == pytest.approx(rate * seconds, rel=0.05)
        assert report.assoc_per_s == pytest.approx(rate, rel=0.15)
    # the slow SCP holds ~rate x 0.15 s associations open at once, not fewer starts
    assert max(t.in_flight for t in sluggish.series) >= 15
    assert (sluggish.percentile("association", 50) or 0) >= 150
    # a closed loop against the same SCP slows down with it (coordinated omission)
    closed = await run_load("127.0.0.1", slow.port, concurrency=4, duration=0.6, timeouts=FAST)
    assert closed.assoc_per_s < 4 / 0.15 * 1.1


async def test_open_loop_latency_counts_from_the_intended_start(scp_factory: ScpFactory) -> None:
    # 200/s offered, at most 5 in flight, 50 ms each: the SCP path serves ~100/s, so arrivals
    # queue; their waiting is part of their latency, and those never started are counted.
    scp = scp_factory(faults=Faults(delay={"echo": 0.05}))
    report = await run_load(
        "127.0.0.1", scp.port, rate=200, duration=1.0, max_in_flight=5, timeouts=FAST
    )
    assert report.not_started > 0
    assert not report.ok
    p99 = report.percentile("association", 99)
    assert p99 is not None
    assert p99 > 300
    assert (report.percentile("start_lag", 99) or 0) > 250
    assert any("never started" in w for w in report.warnings)
    assert any("started late" in w for w in report.warnings)


# --- shapes, bounds, ports --------------------------------------------------------------------


async def test_closed_loop_ramp_raises_concurrency(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.01}))
    report = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=1,
        ramp=Ramp(1, 16),
        duration=1.0,
        tick=0.25,
        timeouts=FAST,
    )
    assert report.ok, report.reasons
    levels = [t.level for t in report.series]
    assert levels == sorted(levels)
    assert levels[-1] == pytest.approx(16, abs=0.5)
    assert max(t.in_flight for t in report.series) >= 8
    early, late = report.series[0].assoc_per_s, max(t.assoc_per_s for t in report.series[-3:])
    assert late > 3 * early


async def test_long_lived_associations_count_echoes(scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    report = await run_load(
        "127.0.0.1", scp.port, concurrency=2, associations=2, repeat=500, timeouts=FAST
    )
    assert report.ok
    assert report.echoes == 1000
    assert report.histograms["echo"].count == 1000
    assert report.echoes_per_s > report.assoc_per_s * 100
    # associations longer than the run: it still ends on time, says why nothing was measured,
    # and still reports the echoes/s it saw
    slow = scp_factory(faults=Faults(delay={"echo": 0.005}))
    report = await run_load(
        "127.0.0.1", slow.port, concurrency=2, duration=0.4, warmup=0.2, repeat=5000
    )
    assert report.wall_seconds < 2
    assert report.attempted == 0
    assert not report.ok
    assert report.echoes_per_s > 100
    assert any("--associations" in w for w in report.warnings)


async def test_source_addresses_spread_the_connections(scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    sources = parse_source_addresses("127.0.5.1-3")
    report = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=3,
        associations=30,
        source_addresses=sources,
        timeouts=FAST,
    )
    assert report.ok, report.reasons
    assert report.config["source_addresses"] == ["127.0.5.1", "127.0.5.2", "127.0.5.3"]
    assert report.ports.source_addresses == 3
    # bound sockets cannot reuse TIME_WAIT ports: the budget is per source address
    assert report.ports.sustainable_rate == pytest.approx(3 * (report.ports.ports or 0) / 60)
    assert report.time_wait_at_end is not None
    assert report.time_wait_at_end >= 1


async def test_tls_load(scp_factory: ScpFactory) -> None:
    from echoprobe.net.tls import PeerVerification, TLSConfig
    from tests.support.tls_certs import shared_kit

    kit = shared_kit()
    server = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    scp = scp_factory(tls=server)
    report = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=2,
        associations=20,
        tls=TLSConfig(ca_files=(kit.ca,)),
        timeouts=FAST,
    )
    assert report.ok, report.reasons
    assert report.config["tls"] is not None
    assert "RFC 8996" in report.config["tls"]
    untrusted = await run_load(
        "127.0.0.1",
        scp.port,
        concurrency=2,
        associations=4,
        tls=TLSConfig(ca_files=(kit.other_ca,)),
        timeouts=FAST,
    )
    assert untrusted.outcomes == {"tls_verify_failed": 4}


async def test_port_exhaustion_is_detected_and_explained(
    scp_factory: ScpFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scp = scp_factory()
    from echoprobe.net.client import run_echo as real

    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls % 2:
            # What connect() raises when no local port is left, as the driver maps it.
            no_port = OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
            raise map_connect_error(no_port, address=f"127.0.0.1:{scp.port}")
        return await real(*args, **kwargs)

    monkeypatch.setattr(load_module, "run_echo", flaky)
    report = await run_load("127.0.0.1", scp.port, concurrency=2, associations=20)
    assert report.port_errors == 10
    assert report.succeeded == 10
    assert any("TIME_WAIT" in w and "--source-address" in w for w in report.warnings)
    assert all("no local port available" in reason for reason in report.reasons)


async def test_internal_errors_are_counted_not_raised(
    scp_factory: ScpFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scp = scp_factory()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(load_module, "run_echo", broken)
    report = await run_load("127.0.0.1", scp.port, concurrency=2, associations=5)
    assert report.outcomes == {"internal_error": 5}


async def test_stop_ends_a_run_early(scp_factory: ScpFactory) -> None:
    scp = scp_factory(faults=Faults(delay={"echo": 0.01}))
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, stop.set)
    report = await run_load(
        "127.0.0.1", scp.port, concurrency=4, duration=20, stop=stop, timeouts=FAST
    )
    assert report.interrupted
    assert not report.ok
    assert report.wall_seconds < 3


async def test_on_tick_reports_progress(scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    seen: list[Any] = []
    await run_load(
        "127.0.0.1", scp.port, concurrency=2, duration=0.5, tick=0.1, on_tick=seen.append
    )
    assert len(seen) >= 4
    assert seen[-1].succeeded > 0
    assert seen[-1].mode == "concurrency"


async def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="bounded"):
        await run_load("127.0.0.1", 9, concurrency=1)
    with pytest.raises(ValueError, match="exactly one"):
        await run_load("127.0.0.1", 9, concurrency=1, rate=5, duration=1)
    with pytest.raises(ValueError, match="exactly one"):
        await run_load("127.0.0.1", 9, duration=1)
    with pytest.raises(ValueError, match="family"):
        await run_load("127.0.0.1", 9, concurrency=1, duration=1, source_addresses=["::1"])


# --- pure helpers -----------------------------------------------------------------------------


def test_parse_source_addresses() -> None:
    assert parse_source_addresses("127.0.0.2-127.0.0.4") == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert parse_source_addresses("127.0.0.2-3,127.0.0.9") == [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.9",
    ]
    assert parse_source_addresses(["127.0.1.0/30"]) == ["127.0.1.1", "127.0.1.2"]
    assert parse_source_addresses("::1") == ["::1"]
    for bad in ("127.0.0.9-127.0.0.2", "nonsense", "", "127.0.0.1-127.2.0.1"):
        with pytest.raises(ValueError):
            parse_source_addresses(bad, limit=1000)


def test_parse_ramp() -> None:
    assert parse_ramp("1:64") == Ramp(1, 64)
    assert parse_ramp("64", 4) == Ramp(4, 64)
    for bad in ("x", "1:2:3", "0:5", "5"):
        with pytest.raises(ValueError):
            parse_ramp(bad)


def test_port_budget() -> None:
    remote = PortFacts((32768, 60999), 2, loopback=False, source_addresses=0)
    assert remote.sustainable_rate == pytest.approx(28232 / 60)
    local = PortFacts((32768, 60999), 2, loopback=True, source_addresses=0)
    assert local.reuses_time_wait
    assert local.sustainable_rate is None
    bound = PortFacts((32768, 60999), 2, loopback=True, source_addresses=4)
    assert bound.sustainable_rate == pytest.approx(4 * 28232 / 60)


def test_judge_step_names_the_reason() -> None:
    from echoprobe.fleet.histogram import LatencyHistogram
    from echoprobe.fleet.load import LoadReport

    def report(**fields: Any) -> LoadReport:
        base: dict[str, Any] = {
            "config": {},
            "started_at": "",
            "wall_seconds": 1.0,
            "window_seconds": 1.0,
            "attempted": 100,
            "succeeded": 100,
            "failed": 0,
            "not_started": 0,
            "cancelled": 0,
            "echoes": 100,
            "echo_window_seconds": 1.0,
            "outcomes": {},
            "reasons": {},
            "histograms": {"association": LatencyHistogram()},
            "series": [],
            "cpu_seconds": 0.1,
            "cpu_fraction": 0.1,
            "cpu_peak": 0.1,
            "ports": PortFacts(None, None, True, 0),
            "time_wait_at_end": None,
            "port_errors": 0,
            "warnings": [],
            "warmup_associations": 0,
        }
        base.update(fields)
        return LoadReport(**base)

    ok = report()
    ok.histograms["association"].extend([1.0] * 100)
    assert judge_step(ok, mode="concurrency", level=4, p99_bound_ms=10, max_error_ratio=0) is None
    assert "p99" in (
        judge_step(ok, mode="concurrency", level=4, p99_bound_ms=0.5, max_error_ratio=0) or ""
    )
    assert "below the offered" in (
        judge_step(ok, mode="rate", level=500, p99_bound_ms=None, max_error_ratio=0) or ""
    )
    rejected = report(
        succeeded=99,
        failed=1,
        outcomes={"rejected_transient": 1},
        reasons={"rejected_transient: association rejected: Temporary Congestion": 1},
    )
    verdict = judge_step(
        rejected, mode="concurrency", level=4, p99_bound_ms=None, max_error_ratio=0
    )
    assert verdict is not None
    assert "Temporary Congestion" in verdict
    tolerated = judge_step(
        rejected, mode="concurrency", level=4, p99_bound_ms=None, max_error_ratio=0.05
    )
    assert tolerated is None
