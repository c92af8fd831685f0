"""One probe's target, time budget and metrics, from synthetic `ProbeResult`s (no network)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from echoprobe.fleet.targets import TargetSyntaxError
from echoprobe.monitoring.exporter.config import DicomSettings, Module
from echoprobe.monitoring.exporter.pages import debug_text
from echoprobe.monitoring.exporter.probing import (
    ProbeTarget,
    expired_result,
    parse_probe_target,
    probe_budget,
    probe_timeouts,
    render_metrics,
)
from echoprobe.results import Outcome, PeerInfo, ProbeResult

MODULE = Module("dicom_echo", dicom=DicomSettings(called_ae="DEFAULT-AE", port=11112))


def samples(
    result: ProbeResult, *, cached: bool = False
) -> dict[str, list[tuple[dict[str, str], float]]]:
    body, content_type = render_metrics(result, cached=cached, accept=None)
    assert content_type.startswith("text/plain")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def result(**fields: object) -> ProbeResult:
    base: dict[str, object] = {
        "target": "PACS@127.0.0.1:11112",
        "host": "127.0.0.1",
        "port": 11112,
        "called_ae": "PACS",
        "calling_ae": "ECHOPROBE",
        "outcome": Outcome.SUCCESS,
    }
    base.update(fields)
    return ProbeResult(**base)  # type: ignore[arg-type]


# --- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ProbeTarget("127.0.0.1", 11112, "DEFAULT-AE", "127.0.0.1")),
        ("127.0.0.1:104", ProbeTarget("127.0.0.1", 104, "DEFAULT-AE", "127.0.0.1:104")),
        (
            "PACS@pacs.example.org",
            ProbeTarget("pacs.example.org", 11112, "PACS", "PACS@pacs.example.org"),
        ),
        ("PACS@[::1]:4242", ProbeTarget("::1", 4242, "PACS", "PACS@[::1]:4242")),
        ("[::1]", ProbeTarget("::1", 11112, "DEFAULT-AE", "[::1]")),
        ("::1", ProbeTarget("::1", 11112, "DEFAULT-AE", "::1")),
    ],
)
def test_targets(text: str, expected: ProbeTarget) -> None:
    assert parse_probe_target(text, MODULE) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "host:0",
        "host:99999",
        "a b",
        "@host",
        "TOO-LONG-AE-TITLE-X@host",
        "[1.2.3.4]",
        "x" * 400,
    ],
)
def test_bad_targets(text: str) -> None:
    with pytest.raises(TargetSyntaxError):
        parse_probe_target(text, MODULE)


# --- time budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "offset", "module_timeout", "budget"),
    [
        (None, 0.5, 5.0, 5.0),  # no header: the module's timeout
        ("10", 0.5, 5.0, 5.0),  # capped by the module
        ("3", 0.5, 5.0, 2.5),  # the scrape's timeout minus the offset
        ("0.4", 0.5, 5.0, 0.2),  # an offset larger than the scrape timeout: half of it
        ("2.5", 0.0, 5.0, 2.5),
    ],
)
def test_budget(header: str | None, offset: float, module_timeout: float, budget: float) -> None:
    assert probe_budget(header, offset, module_timeout) == pytest.approx(budget)


@pytest.mark.parametrize("header", ["abc", "-1", "0", "nan", "inf", ""])
def test_bad_budget_header(header: str) -> None:
    with pytest.raises(ValueError, match="X-Prometheus-Scrape-Timeout-Seconds"):
        probe_budget(header, 0.5, 5.0)


def test_timeouts_fit_in_the_budget() -> None:
    short = probe_timeouts(2.0)
    assert short.total == 2.0
    assert all(
        value is not None and value <= 2.0
        for value in (short.connect, short.tls, short.acse, short.dimse, short.release)
    )
    long = probe_timeouts(120.0)
    assert long.total == 120.0
    assert long.connect == 10.0


# --- metrics ---------------------------------------------------------------------------------


def test_success_metrics() -> None:
    peer = PeerInfo(
        address="127.0.0.1:11112",
        implementation_class_uid="1.2.3.4",
        implementation_version_name="PACS_1",
        max_pdu=32768,
    )
    found = samples(
        result(
            status=0,
            echoes=1,
            peer=peer,
            timings_ms={
                "resolve": 0.01,
                "connect": 0.2,
                "associate": 1.0,
                "echo": 0.5,
                "release": 0.3,
                "total": 2.01,
            },
        )
    )
    assert found["probe_success"] == [({}, 1.0)]
    assert found["probe_duration_seconds"][0][1] == pytest.approx(0.00201)
    assert found["probe_dicom_outcome"] == [({"outcome": "success"}, 1.0)]
    phases = {labels["phase"]: v for labels, v in found["probe_dicom_phase_duration_seconds"]}
    assert list(phases) == ["resolve", "connect", "associate", "echo", "release"]
    assert found["probe_dicom_echo_status"] == [({}, 0.0)]
    assert found["probe_dicom_peer_info"] == [
        ({"implementation_class_uid": "1.2.3.4", "implementation_version_name": "PACS_1"}, 1.0)
    ]
    assert found["probe_dicom_max_pdu_bytes"] == [({}, 32768.0)]
    assert found["probe_dicom_cached"] == [({}, 0.0)]
    assert "probe_dicom_association_rejected" not in found
    assert "probe_tls_version_info" not in found


def test_rejected_metrics() -> None:
    found = samples(
        result(
            outcome=Outcome.REJECTED_PERMANENT,
            detail={"result": 1, "source": 1, "reason": 7},
            timings_ms={"resolve": 0.01, "connect": 0.2, "total": 1.0},
            phase="associate",
        ),
        cached=True,
    )
    assert found["probe_success"] == [({}, 0.0)]
    assert found["probe_dicom_outcome"] == [({"outcome": "rejected_permanent"}, 1.0)]
    assert found["probe_dicom_association_rejected"] == [
        ({"result": "1", "source": "1", "reason": "7"}, 1.0)
    ]
    assert "probe_dicom_echo_status" not in found
    assert found["probe_dicom_cached"] == [({}, 1.0)]


def test_abort_is_not_a_reject() -> None:
    found = samples(result(outcome=Outcome.ABORTED_BY_PEER, detail={"source": 2, "reason": 0}))
    assert "probe_dicom_association_rejected" not in found


def test_failed_status_and_tls() -> None:
    peer = PeerInfo(
        implementation_class_uid="1.2",
        tls_protocol="TLSv1.3",
        tls_peer_not_after="2030-01-02T03:04:05Z",
    )
    found = samples(result(outcome=Outcome.ECHO_FAILED_STATUS, status=0x0110, peer=peer))
    assert found["probe_success"] == [({}, 0.0)]
    assert found["probe_dicom_echo_status"] == [({}, 272.0)]
    assert found["probe_tls_version_info"] == [({"version": "TLS 1.3"}, 1.0)]
    assert found["probe_ssl_earliest_cert_expiry"] == [({}, 1893553445.0)]
    assert found["probe_dicom_peer_info"][0][0]["implementation_version_name"] == ""


def test_expired_result() -> None:
    target = ProbeTarget("127.0.0.1", 104, "PACS", "PACS@127.0.0.1")
    expired = expired_result(target, MODULE, 1.5, "too slow")
    assert expired.outcome is Outcome.DEADLINE_EXCEEDED
    found = samples(expired)
    assert found["probe_success"] == [({}, 0.0)]
    assert found["probe_duration_seconds"] == [({}, 1.5)]
    assert found["probe_dicom_outcome"] == [({"outcome": "deadline_exceeded"}, 1.0)]


def test_openmetrics_on_request() -> None:
    body, content_type = render_metrics(
        result(), cached=False, accept="application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_debug_text() -> None:
    failed = result(
        outcome=Outcome.CONNECTION_REFUSED,
        error='connection "refused"',
        phase="connect",
        timings_ms={"resolve": 0.01, "total": 0.2},
    )
    text = debug_text(failed, MODULE, 4.5, None)
    logs, rest = text.split("Metrics that would have been returned:\n")
    metrics, module = rest.split("Module configuration:\n")
    assert 'msg="Beginning probe"' in logs
    assert "timeout_seconds=4.500" in logs
    assert 'outcome=connection_refused phase=connect error="connection \\"refused\\""' in logs
    assert "probe_success 0.0" in metrics
    assert "dicom_echo:" in module
    assert "called_ae: DEFAULT-AE" in module
