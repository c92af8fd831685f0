"""One peer's verdict and a fleet's summary, from hand-made `ProbeResult`s (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from echoprobe.monitoring.plugin.fleet import summarize
from echoprobe.monitoring.plugin.policy import DEFAULT_STATES, OutcomePolicy, parse_outcomes
from echoprobe.monitoring.plugin.ranges import Thresholds, parse_range
from echoprobe.monitoring.plugin.single import Judgement, judge
from echoprobe.monitoring.plugin.states import State
from echoprobe.results import Outcome, PeerInfo, ProbeResult

TIMINGS = {"resolve": 0.01, "connect": 0.4, "associate": 0.3, "echo": 0.2, "release": 0.1}


def result(
    outcome: Outcome = Outcome.SUCCESS, total_ms: float = 12.0, **fields: Any
) -> ProbeResult:
    values: dict[str, Any] = {
        "target": "PACS@127.0.0.1:104",
        "host": "127.0.0.1",
        "port": 104,
        "called_ae": "PACS",
        "calling_ae": "ECHOSCU",
        "outcome": outcome,
        "timings_ms": {**TIMINGS, "total": total_ms},
    }
    if outcome.echo_succeeded:
        values["echoes"] = 1
        values["status"] = 0
        values["peer"] = PeerInfo(
            address="127.0.0.1:104",
            implementation_class_uid="1.2.3.4",
            implementation_version_name="PEER_1",
            max_pdu=16384,
            transfer_syntax="1.2.840.10008.1.2",
            context_id=1,
        )
    values.update(fields)
    return ProbeResult(**values)


def test_ok_text_and_perfdata() -> None:
    verdict = judge(result(), Judgement())
    assert verdict.state is State.OK
    assert (
        verdict.text
        == "0.012 second response time on 127.0.0.1 port 104 (called AE PACS, 1 C-ECHO)"
    )
    rendered = [p.render() for p in verdict.perfdata]
    assert rendered[0] == "time=0.012000s;;;0.000000;10.000000"
    assert [p.label for p in verdict.perfdata] == [
        "time",
        "connect",
        "associate",
        "echo",
        "release",
    ]
    assert any("version name PEER_1" in line for line in verdict.details)


@pytest.mark.parametrize(
    ("total_ms", "state", "note"),
    [
        (500.0, State.OK, ""),
        (1500.0, State.WARNING, ", slower than -w 1"),
        (3500.0, State.CRITICAL, ", slower than -c 3"),
    ],
)
def test_thresholds(total_ms: float, state: State, note: str) -> None:
    how = Judgement(thresholds=Thresholds(parse_range("1"), parse_range("3")))
    verdict = judge(result(total_ms=total_ms), how)
    assert verdict.state is state
    assert verdict.text.endswith(f"1 C-ECHO){note}")


def test_inside_range_wording() -> None:
    how = Judgement(thresholds=Thresholds(parse_range("@0:1"), None))
    verdict = judge(result(total_ms=500.0), how)
    assert verdict.state is State.WARNING
    assert verdict.text.endswith(", inside -w @0:1")


def test_thresholds_do_not_apply_to_failures() -> None:
    how = Judgement(thresholds=Thresholds(None, parse_range("~:0")))
    refused = result(Outcome.CONNECTION_REFUSED, error="connection refused by 127.0.0.1:104")
    assert judge(refused, how).state is State.CRITICAL


def test_check_tcp_wordings() -> None:
    how = Judgement(timeout=2.0, check_timeout=2.0)
    refused = judge(result(Outcome.CONNECTION_REFUSED, error="refused"), how)
    assert refused.text == "connect to address 127.0.0.1 and port 104: Connection refused"
    dns = judge(result(Outcome.DNS_ERROR, host="pacs.example", error="cannot resolve"), how)
    assert dns.text == "Invalid hostname, address or socket: pacs.example"
    assert dns.state is State.CRITICAL
    silent = judge(result(Outcome.ACSE_TIMEOUT, phase="associate", error="timeout"), how)
    assert silent.text.startswith("Socket timeout after 2 seconds (no A-ASSOCIATE response")


def test_peer_words_in_details() -> None:
    rejected = judge(
        result(
            Outcome.REJECTED_PERMANENT,
            detail={"result": 1, "source": 1, "reason": 7},
            error="association rejected: Rejected Permanent, Service User, "
            "Called AE Title Not Recognized",
        ),
        Judgement(),
    )
    assert rejected.state is State.CRITICAL
    assert "Called AE Title Not Recognized" in rejected.text
    assert rejected.details[0].startswith("A-ASSOCIATE-RJ: result 1, source 1, reason 7")
    status = judge(
        result(
            Outcome.ECHO_FAILED_STATUS,
            status=0x0110,
            detail={"status": 0x0110, "error_comment": "bad\nday | really"},
            echoes=1,
        ),
        Judgement(),
    )
    assert status.text.startswith(
        'C-ECHO status 0110H, Failure: Processing failure: "bad day | really"'
    )
    assert status.details[0].endswith('error comment "bad day | really"')


def test_release_timeout_is_warning_by_default() -> None:
    verdict = judge(result(Outcome.RELEASE_TIMEOUT), Judgement(timeout=5.0))
    assert verdict.state is State.WARNING
    assert verdict.text.endswith("but no A-RELEASE-RP within 5 seconds")


def test_policy_overrides_and_conflicts() -> None:
    policy = OutcomePolicy.build(
        [
            (State.CRITICAL, parse_outcomes("release_timeout")),
            (State.WARNING, parse_outcomes("connection_refused, rejected_transient")),
        ]
    )
    assert policy.state_of(Outcome.RELEASE_TIMEOUT) is State.CRITICAL
    assert policy.state_of(Outcome.CONNECTION_REFUSED) is State.WARNING
    assert policy.state_of(Outcome.SUCCESS) is State.OK
    assert policy.state_of(Outcome.ABORTED_BY_PEER) is State.CRITICAL
    with pytest.raises(ValueError, match="both"):
        OutcomePolicy.build([(State.OK, {Outcome.TIMEOUT}), (State.CRITICAL, {Outcome.TIMEOUT})])
    with pytest.raises(ValueError, match="unknown outcome"):
        parse_outcomes("success,nonsense")
    assert DEFAULT_STATES[Outcome.INTERNAL_ERROR] is State.UNKNOWN


def test_fleet_summary() -> None:
    how = Judgement()
    peers = [judge(result(target=f"127.0.1.{n}:104"), how) for n in range(1, 198)]
    peers += [
        judge(result(Outcome.CONNECTION_REFUSED, target=f"127.0.2.{n}:104", error="x"), how)
        for n in range(1, 4)
    ]
    fleet = summarize(peers, elapsed_s=1.5, timeout=10.0)
    assert fleet.state is State.CRITICAL
    assert fleet.text == "3 of 200 peers fail"
    assert len(fleet.details) == 3
    assert all(line.startswith("CRITICAL: 127.0.2.") for line in fleet.details)
    perf = {p.label: p.render() for p in fleet.perfdata}
    assert perf["peers"] == "peers=200;;;0"
    assert perf["critical"] == "critical=3;;;0;200"
    assert perf["failing"] == "failing=3;;;0;200"
    assert perf["time"] == "time=1.500000s;;;0.000000;10.000000"


def test_fleet_failing_thresholds_and_texts() -> None:
    how = Judgement()
    ok = [judge(result(target=f"a{n}"), how) for n in range(8)]
    bad = [
        judge(result(Outcome.CONNECTION_REFUSED, target=f"b{n}", error="x"), how) for n in range(2)
    ]
    relaxed = summarize(
        ok + bad,
        elapsed_s=1.0,
        timeout=10.0,
        failing=Thresholds(parse_range("0"), parse_range("5")),
    )
    assert relaxed.state is State.WARNING
    assert relaxed.text == "2 of 10 peers fail"
    assert summarize(ok, elapsed_s=1.0, timeout=10.0).text == "8 of 8 peers answer C-ECHO"
    warned = judge(result(Outcome.RELEASE_TIMEOUT, target="w"), how)
    assert summarize([*ok, warned], elapsed_s=1, timeout=10).text == "1 of 9 peers warns"
    lost = summarize(ok, elapsed_s=1.0, timeout=10.0, missing=2)
    assert lost.state is State.UNKNOWN
    assert lost.counts["unknown"] == 2


def test_certificate_days_like_check_tcp() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC).timestamp()
    peer = PeerInfo(tls_protocol="TLSv1.3", tls_peer_not_after="2026-12-14T00:00:00Z")
    ten_days = result(peer=peer)
    d30_7 = Thresholds(parse_range("30:"), parse_range("7:"))
    verdict = judge(ten_days, Judgement(cert_days=d30_7, now=now))
    assert verdict.state is State.WARNING
    assert verdict.text.endswith(", the peer's certificate expires in 10 days")
    assert verdict.perfdata[-1].render() == "cert_days=10;30:;7:"
    relaxed = Thresholds(parse_range("5:"), parse_range("0:"))
    assert judge(ten_days, Judgement(cert_days=relaxed, now=now)).state is State.OK
    later = now + 20 * 86400
    expired = judge(ten_days, Judgement(cert_days=d30_7, now=later))
    assert expired.state is State.CRITICAL
    assert expired.text.endswith("expired 10 days ago")
    # Without -D nothing is judged or reported.
    assert judge(ten_days, Judgement(now=now)).perfdata[-1].label == "release"
