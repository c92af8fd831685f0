"""Output formats: Nagios plugin output, Checkmk local-check lines, Zabbix LLD, JSON."""

from __future__ import annotations

import json
import re

from tests.support.plugin_output import parse_output
from tests.unit.test_plugin_verdicts import result

from echoprobe.fleet.targets import InvalidTarget, Target, TargetItem, parse_target
from echoprobe.monitoring.plugin import formats
from echoprobe.monitoring.plugin.fleet import summarize
from echoprobe.monitoring.plugin.ranges import Thresholds, parse_range
from echoprobe.monitoring.plugin.single import Judgement, judge
from echoprobe.monitoring.plugin.states import State
from echoprobe.results import Outcome

# STATE "SERVICE" METRICS TEXT (Checkmk local checks).
CHECKMK_LINE = re.compile(
    r'(?P<state>[0-3]) "(?P<service>[^"]+)" '
    r"(?P<metrics>-|[A-Za-z0-9_]+=[-0-9.]+(?:;[-0-9.]*){0,4}"
    r"(?:\|[A-Za-z0-9_]+=[-0-9.]+(?:;[-0-9.]*){0,4})*) (?P<text>.+)"
)
HOW = Judgement(thresholds=Thresholds(parse_range("1"), parse_range("@5:10")))


def test_nagios_single_parses_back() -> None:
    text = formats.nagios_peer(judge(result(), HOW))
    out = parse_output(text)
    assert out.state == "OK"
    assert out.text.startswith("0.012 second response time")
    assert out.perfdata["time"]["warn"] == "1"
    assert out.perfdata["time"]["crit"] == "@5:10"
    assert set(out.perfdata) == {"time", "connect", "associate", "echo", "release"}
    assert out.long_output
    assert out.long_output[0].startswith("peer implementation")
    assert text.endswith("\n")


def test_pipes_from_the_peer_never_start_perfdata() -> None:
    verdict = judge(
        result(
            Outcome.ECHO_FAILED_STATUS,
            status=0x0110,
            detail={"status": 0x0110, "error_comment": "a | b=1"},
            echoes=1,
        ),
        HOW,
    )
    out = parse_output(formats.nagios_peer(verdict))
    assert out.state == "CRITICAL"
    assert "a / b=1" in out.text
    assert set(out.perfdata) >= {"time"}


def test_nagios_fleet_parses_back() -> None:
    peers = [judge(result(target=f"127.0.1.{n}:104"), HOW) for n in range(1, 5)]
    peers.append(judge(result(Outcome.CONNECTION_REFUSED, target="127.0.2.1:104", error="x"), HOW))
    out = parse_output(formats.nagios_fleet(summarize(peers, elapsed_s=0.5, timeout=10.0)))
    assert out.state == "CRITICAL"
    assert out.text == "1 of 5 peers fails"
    assert out.perfdata["peers"]["value"] == "5"
    assert out.perfdata["failing"]["value"] == "1"
    assert out.long_output == [
        "CRITICAL: 127.0.2.1:104 - connect to address 127.0.0.1 and port 104: Connection refused"
    ]


def test_checkmk_lines() -> None:
    peers = [
        judge(result(name="Main PACS"), HOW),
        judge(result(Outcome.ACSE_TIMEOUT, target='odd"name', phase="associate", error="t"), HOW),
    ]
    lines = formats.checkmk(peers).splitlines()
    assert len(lines) == 2
    first = CHECKMK_LINE.fullmatch(lines[0])
    assert first, lines[0]
    assert first["state"] == "0"
    assert first["service"] == "DICOM Main PACS"
    # Checkmk levels are numbers: the plain -w limit is kept, the "@5:10" range is not.
    assert first["metrics"].startswith("time=0.012;1;;0;10|connect=")
    assert "\\npeer implementation" in first["text"]
    second = CHECKMK_LINE.fullmatch(lines[1])
    assert second, lines[1]
    assert second["state"] == "2"
    assert second["service"] == "DICOM odd'name"


def test_checkmk_without_metrics() -> None:
    verdict = judge(result(Outcome.INVALID_TARGET, target="x y", timings_ms={}, error="bad"), HOW)
    line = formats.checkmk_line(verdict, "")
    match = CHECKMK_LINE.fullmatch(line)
    assert match, line
    assert match["state"] == "3"
    assert match["metrics"] == "-"


def test_zabbix_lld() -> None:
    items: list[TargetItem] = [
        parse_target("PACS@127.0.0.1:104"),
        Target(host="127.0.0.2", port=11112, name="CT 1", tags=("ct", "radiology")),
        parse_target("PACS@127.0.0.1:104"),  # the same target again: listed once
        InvalidTarget("bad one", "a target cannot contain white space", "f.txt:3"),
    ]
    document, invalid = formats.zabbix_lld(items, "ANY-SCP")
    data = json.loads(document)["data"]
    assert data == [
        {
            "{#TARGET}": "PACS@127.0.0.1:104",
            "{#NAME}": "PACS@127.0.0.1:104",
            "{#HOST}": "127.0.0.1",
            "{#PORT}": "104",
            "{#CALLED_AE}": "PACS",
            "{#TAGS}": "",
        },
        {
            "{#TARGET}": "ANY-SCP@127.0.0.2:11112",
            "{#NAME}": "CT 1",
            "{#HOST}": "127.0.0.2",
            "{#PORT}": "11112",
            "{#CALLED_AE}": "ANY-SCP",
            "{#TAGS}": "ct,radiology",
        },
    ]
    assert [i.text for i in invalid] == ["bad one"]


def test_json_document() -> None:
    peers = [judge(result(), HOW), judge(result(Outcome.RELEASE_TIMEOUT, target="t2"), HOW)]
    fleet = summarize(peers, elapsed_s=0.25, timeout=10.0)
    document = json.loads(formats.json_fleet(fleet))
    assert document["state"] == "WARNING"
    assert document["exit_code"] == 1
    assert document["counts"] == {
        "peers": 2,
        "ok": 1,
        "warning": 1,
        "critical": 0,
        "unknown": 0,
        "failing": 1,
    }
    first = document["peers"][0]
    assert first["target"] == "PACS@127.0.0.1:104"
    assert first["state"] == "OK"
    assert first["time"] == 0.012
    assert first["connect"] == 0.0004
    assert first["tls"] is None
    assert first["outcome"] == "success"
    assert formats.single_counts(State.CRITICAL) == {
        "peers": 1,
        "ok": 0,
        "warning": 0,
        "critical": 1,
        "unknown": 0,
        "failing": 1,
    }
