"""Performance data: every item the plugin prints parses back with the guidelines' grammar."""

from __future__ import annotations

import pytest
from tests.support.plugin_output import parse_perfdata

from echoprobe.monitoring.plugin.perfdata import PerfValue, quote_label, render_perfdata, seconds
from echoprobe.monitoring.plugin.ranges import parse_range


def parse_items(text: str) -> list[dict[str, str | None]]:
    return list(parse_perfdata(text).values())


def test_time_like_check_tcp() -> None:
    value = seconds(
        "time", 12.0, thresholds=(parse_range("1"), parse_range("3")), maximum=10.0
    ).render()
    assert value == "time=0.012000s;1;3;0.000000;10.000000"
    (item,) = parse_items(value)
    assert item == {
        "label": "time",
        "value": "0.012000",
        "uom": "s",
        "warn": "1",
        "crit": "3",
        "min": "0.000000",
        "max": "10.000000",
    }


def test_trailing_empty_fields_dropped() -> None:
    assert PerfValue("peers", 200, minimum=0).render() == "peers=200;;;0"
    assert PerfValue("x", 1.5).render() == "x=1.5"
    assert PerfValue("x", None, "s").render() == "x=U"


def test_ranges_kept_as_written() -> None:
    rendered = PerfValue("time", 2.0, "s", parse_range("@5:10"), parse_range("~:3")).render()
    assert rendered == "time=2.000000s;@5:10;~:3"
    (item,) = parse_items(rendered)
    assert item["warn"] == "@5:10"
    assert item["crit"] == "~:3"


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("time", "time"),
        ("a b", "'a b'"),
        ("x=y", "x_y"),
        ("it's", "it_s"),
        ("PACS@127.0.0.1:104", "PACS@127.0.0.1:104"),
        ("a;b", "'a;b'"),
    ],
)
def test_labels(label: str, shown: str) -> None:
    assert quote_label(label) == shown
    (item,) = parse_items(PerfValue(label, 1).render())
    assert item["label"] == shown


def test_several_items() -> None:
    text = render_perfdata(
        [seconds("time", 1.0, maximum=10.0), seconds("connect", 0.5), PerfValue("ok", 3)]
    )
    assert [i["label"] for i in parse_items(text)] == ["time", "connect", "ok"]


def test_bad_unit_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        PerfValue("x", 1, "sec")
