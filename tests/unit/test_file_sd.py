"""`monitoring.file_sd`: inventory targets → Prometheus file_sd groups (pure)."""

from __future__ import annotations

import io
import json

import pytest

from echoprobe.fleet.targets import InvalidTarget, Target, iter_csv_targets, parse_target
from echoprobe.monitoring.file_sd import (
    FileSDOptions,
    build_file_sd,
    is_label_name,
    sanitize_label_name,
    target_address,
    target_labels,
)


def _csv(text: str) -> list[Target | InvalidTarget]:
    return list(iter_csv_targets(io.StringIO(text), "inv.csv"))


def test_targets_are_written_in_full() -> None:
    assert target_address(parse_target("pacs.example.org")) == "pacs.example.org:104"
    assert target_address(parse_target("PACS@127.0.0.1:11112")) == "PACS@127.0.0.1:11112"
    assert target_address(parse_target("AE@[::1]:104")) == "AE@[::1]:104"
    assert target_address(parse_target("::1")) == "[::1]:104"


def test_labels_name_tags_and_module() -> None:
    target = Target("127.0.0.1", 104, name="ct-1", tags=("site-a", "ct"))
    assert dict(target_labels(target, FileSDOptions())) == {
        "name": "ct-1",
        "tags": "site-a,ct",
        "__param_module": "dicom_echo",
    }
    tls = Target("127.0.0.1", 2762, tls=True)
    assert dict(target_labels(tls, FileSDOptions(tls_module="secure"))) == {
        "__param_module": "secure"
    }


def test_key_value_tags_become_valid_label_names() -> None:
    target = Target("127.0.0.1", tags=("site-code=north 1", "9room=7"))
    labels = dict(target_labels(target, FileSDOptions()))
    assert labels["site_code"] == "north 1"
    assert labels["_9room"] == "7"
    assert all(is_label_name(name) for name in labels)


@pytest.mark.parametrize("tag", ["__meta=1", "job=x", "instance=y", "name=z", "=v"])
def test_reserved_or_empty_label_names_are_refused(tag: str) -> None:
    with pytest.raises(ValueError):
        target_labels(Target("127.0.0.1", tags=(tag,)), FileSDOptions())


def test_sanitize_label_name() -> None:
    assert sanitize_label_name("a.b-c") == "a_b_c"
    assert sanitize_label_name("1x") == "_1x"
    assert is_label_name("ok_1")
    assert not is_label_name("1ok")
    assert not is_label_name("a-b")


def test_group_by_tag_merges_equal_label_sets() -> None:
    items = _csv(
        "host,port,tags,tls\n"
        "127.0.0.1,11112,site=a,\n"
        "127.0.0.2,11112,site=a,\n"
        "127.0.0.3,11112,site=b,\n"
        "127.0.0.4,2762,site=a,true\n"
    )
    result = build_file_sd(items)
    assert result.as_json() == [
        {
            "targets": ["127.0.0.1:11112", "127.0.0.2:11112"],
            "labels": {"tags": "site=a", "site": "a", "__param_module": "dicom_echo"},
        },
        {
            "targets": ["127.0.0.3:11112"],
            "labels": {"tags": "site=b", "site": "b", "__param_module": "dicom_echo"},
        },
        {
            "targets": ["127.0.0.4:2762"],
            "labels": {"tags": "site=a", "site": "a", "__param_module": "dicom_tls"},
        },
    ]
    assert result.target_count == 4
    assert not result.invalid


def test_group_by_none_writes_one_group_per_target() -> None:
    items = [parse_target("127.0.0.1:1"), parse_target("127.0.0.2:1")]
    result = build_file_sd(items, FileSDOptions(group_by="none"))
    assert [g["targets"] for g in result.as_json()] == [["127.0.0.1:1"], ["127.0.0.2:1"]]


def test_invalid_rows_are_reported_with_their_line() -> None:
    items = _csv("host,port,tags\n127.0.0.1,1,\nbad host,1,\n127.0.0.2,99999,\n127.0.0.3,1,__x=1\n")
    result = build_file_sd(items)
    assert [i.source for i in result.invalid] == ["inv.csv:3", "inv.csv:4", "inv.csv:5"]
    assert "reserved" in result.invalid[2].reason
    assert result.target_count == 1


def test_duplicates_are_written_once() -> None:
    items = _csv("host,port,called_ae,tls\nPACS.example.org,104,AE,\npacs.example.org.,104,AE,\n")
    items.append(parse_target("AE@pacs.example.org:104", source="x:1"))
    result = build_file_sd(items)
    assert result.target_count == 1
    assert [(d.source, d.first_source) for d in result.duplicates] == [
        ("inv.csv:3", "inv.csv:2"),
        ("x:1", "inv.csv:2"),
    ]


def test_the_same_peer_under_two_modules_is_two_targets() -> None:
    items = _csv("host,tls\n127.0.0.1,no\n127.0.0.1,yes\n")
    assert build_file_sd(items).target_count == 2


def test_row_settings_the_exporter_cannot_take_are_listed() -> None:
    items = _csv("host,calling_ae,timeout\n127.0.0.1,ME,\n127.0.0.2,,3\n127.0.0.3,,\n")
    result = build_file_sd(items)
    assert result.ignored_settings == ("inv.csv:2", "inv.csv:3")
    assert result.target_count == 3


def test_empty_inventory_is_an_empty_list() -> None:
    assert json.dumps(build_file_sd([]).as_json()) == "[]"


@pytest.mark.parametrize("kwargs", [{"group_by": "host"}, {"module": ""}, {"tls_module": "a b"}])
def test_bad_options(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        FileSDOptions(**kwargs)  # type: ignore[arg-type]
