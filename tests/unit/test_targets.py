"""Target specs and inventory files: every format, malformed input, duplicates (no network)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from echoprobe.fleet.sweep import SweepInput, sweep
from echoprobe.fleet.targets import (
    MAX_LINE,
    InvalidTarget,
    Target,
    TargetFileError,
    TargetItem,
    TargetSyntaxError,
    TimeoutOverrides,
    coerce_target,
    detect_format,
    iter_csv_targets,
    iter_jsonl_targets,
    iter_lines_targets,
    iter_yaml_targets,
    load_targets,
    parse_target,
)
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult

# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "host", "port", "called_ae"),
    [
        ("pacs.example.org", "pacs.example.org", 104, None),
        ("pacs.example.org:11112", "pacs.example.org", 11112, None),
        ("PACS@127.0.5.5", "127.0.5.5", 104, "PACS"),
        ("CT1@127.0.5.5:1", "127.0.5.5", 1, "CT1"),
        ("[::1]:11112", "::1", 11112, None),
        ("[::1]", "::1", 104, None),
        ("::1", "::1", 104, None),
        ("fe80::1", "fe80::1", 104, None),
        ("ARCHIVE@[2001:db8::7]:2762", "2001:db8::7", 2762, "ARCHIVE"),
        ("A@B@host", "host", 104, "A@B"),  # the AE title is before the last '@'
        ("127.0.1.1:65535", "127.0.1.1", 65535, None),
        ("my_host-1.internal.", "my_host-1.internal.", 104, None),
        ("LOCALHOST", "LOCALHOST", 104, None),
        ("  PACS@127.0.5.5  ", "127.0.5.5", 104, "PACS"),
        ("SIXTEEN_CHARS_AE@h", "h", 104, "SIXTEEN_CHARS_AE"),
    ],
)
def test_valid_specs(spec: str, host: str, port: int, called_ae: str | None) -> None:
    target = parse_target(spec)
    assert (target.host, target.port, target.called_ae) == (host, port, called_ae)
    assert target.spec == spec.strip()
    assert target.label() == spec.strip()


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "@host",
        "PACS@",
        "host:",
        "host:0",
        "host:65536",
        "host:abc",
        "host:-1",
        "host:123456",
        "[127.0.0.1]:104",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[nonsense]:104",
        "SEVENTEEN_CHARS_A@host",
        "AE\\X@host",
        "AE\x01@host",
        "ho st",
        "-bad-.example",
        "bad..example",
        "999.1.1.1",
        "a:b:c",
        "host:104:104",
        "x" * 64 + ".example",
    ],
)
def test_invalid_specs(spec: str) -> None:
    with pytest.raises(TargetSyntaxError):
        parse_target(spec)
    item = coerce_target(spec, source="here")
    assert isinstance(item, InvalidTarget)
    assert item.source == "here"
    assert item.reason


def test_label_without_spec_uses_the_default_called_ae() -> None:
    target = Target(host="::1", port=11112)
    assert target.address == "[::1]:11112"
    assert target.label() == "[::1]:11112"
    assert target.label("PACS") == "PACS@[::1]:11112"


def test_coerce_never_raises() -> None:
    assert isinstance(coerce_target(42), InvalidTarget)
    assert isinstance(coerce_target(None), InvalidTarget)
    assert isinstance(coerce_target(["a", "b"]), InvalidTarget)
    assert isinstance(coerce_target({"port": 104}), InvalidTarget)
    assert isinstance(coerce_target({"host": "h", "port": True}), InvalidTarget)
    target = Target(host="h")
    assert coerce_target(target) is target
    assert isinstance(coerce_target({"host": "h"}), Target)


def test_timeout_overrides_apply() -> None:
    base = Timeouts(connect=10, acse=30, dimse=30, release=10, total=None)
    assert TimeoutOverrides().apply(base) is base
    assert not TimeoutOverrides()
    changed = TimeoutOverrides(acse=2.5, total=7).apply(base)
    assert (changed.connect, changed.acse, changed.total) == (10, 2.5, 7)


def test_mapping_rules() -> None:
    full = coerce_target(
        {
            "host": " 127.0.5.5 ",
            "port": "11112",
            "called_ae": " PACS ",
            "calling_ae": "ME",
            "name": "Main archive",
            "tags": ["archive", "west"],
            "tls": "no",
            "connect_timeout": 2,
            "timeout": "9.5",
        }
    )
    assert isinstance(full, Target)
    assert (full.host, full.port, full.called_ae, full.calling_ae) == (
        "127.0.5.5",
        11112,
        "PACS",
        "ME",
    )
    assert full.name == "Main archive"
    assert full.tags == ("archive", "west")
    assert full.tls is False
    assert full.timeouts == TimeoutOverrides(connect=2.0, total=9.5)
    assert full.spec is None
    assert full.label("X") == "PACS@127.0.5.5:11112"
    spec = coerce_target({"target": "CT@ct1:11112", "name": "CT", "tls": True})
    assert isinstance(spec, Target)
    assert (spec.host, spec.port, spec.called_ae, spec.tls) == ("ct1", 11112, "CT", True)
    for bad in (
        {"target": "a:1", "host": "b"},
        {"target": "a", "port": 5},
        {"target": "AE@a", "called_ae": "B"},
        {"host": "h", "tls": "maybe"},
        {"host": "h", "timeout": 0},
        {"host": "h", "timeout": "soon"},
        {"host": "h", "acse_timeout": float("inf")},
        {"host": "h", "tags": {"a": 1}},
        {"host": "h", "name": ["x"]},
        {"host": "h", "calling_ae": "X" * 17},
    ):
        assert isinstance(coerce_target(bad), InvalidTarget), bad


# --- plain lines -------------------------------------------------------------------------------


def test_plain_lines() -> None:
    text = "# inventory\n\nPACS@127.0.5.5  # the archive\n10.0.0.6:11112\nnot a target\n[::1]\n"
    items = list(iter_lines_targets(io.StringIO(text), "inv.txt"))
    assert [type(i).__name__ for i in items] == ["Target", "Target", "InvalidTarget", "Target"]
    assert items[0].source == "inv.txt:3"
    bad = items[2]
    assert isinstance(bad, InvalidTarget)
    assert bad.source == "inv.txt:5"
    assert bad.text == "not a target"


# --- CSV ---------------------------------------------------------------------------------------


CSV = """\ufeffHost,Port,called_ae,calling_ae,name,tags,tls,acse_timeout,timeout,location
127.0.5.5,104,PACS,,Archive,archive;west,false,5,,room 1
127.0.5.6,,CT1,ME,CT scanner,modality|ct,,,"12.5",room 2
127.0.5.7,notaport,MR,,,,,,,
,104,NOHOST,,,,,,,
127.0.5.8,104,X,,,,,,,,,extra
# a comment row
"127.0.5.9",11112,"QUOTED",,"Name, with comma",,,,,

127.0.5.10,104,TLS,,,,yes,,,
"""


def _items(items: Any) -> list[TargetItem]:
    return list(items)


def test_csv_every_column(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(CSV, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        items = _items(load_targets(path))
    assert "location" in caplog.text  # unknown columns are ignored, and said so
    valid = [i for i in items if isinstance(i, Target)]
    invalid = [i for i in items if isinstance(i, InvalidTarget)]
    assert [t.host for t in valid] == ["127.0.5.5", "127.0.5.6", "127.0.5.9", "127.0.5.10"]
    first, second, quoted, tls = valid
    assert (first.port, first.called_ae, first.calling_ae, first.name) == (
        104,
        "PACS",
        None,
        "Archive",
    )
    assert first.tags == ("archive", "west")
    assert first.timeouts == TimeoutOverrides(acse=5.0)
    assert (second.port, second.calling_ae, second.tags) == (104, "ME", ("modality", "ct"))
    assert second.timeouts == TimeoutOverrides(total=12.5)
    assert quoted.name == "Name, with comma"
    assert tls.tls is True
    assert first.source == f"{path}:2"
    assert [i.source for i in invalid] == [f"{path}:4", f"{path}:5", f"{path}:6"]
    assert "port" in invalid[0].reason
    assert "host" in invalid[1].reason
    assert "fields" in invalid[2].reason


def test_csv_target_column() -> None:
    items = _items(iter_csv_targets(io.StringIO("target,name\nPACS@h:11112,Main\nbad target,\n")))
    assert isinstance(items[0], Target)
    assert (items[0].called_ae, items[0].port, items[0].name) == ("PACS", 11112, "Main")
    assert isinstance(items[1], InvalidTarget)


def test_csv_without_host_column_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("address,port\n10.0.0.1,104\n")
    with pytest.raises(TargetFileError, match="host"):
        load_targets(path)


def test_csv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert _items(load_targets(path)) == []


def test_csv_broken_quoting_and_nul(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('host,port\n10.0.0.1,104\n10.0.0.2,1\x0004\n"127.0.5.3,104\n', encoding="utf-8")
    items = _items(load_targets(path))
    assert isinstance(items[0], Target)
    assert all(isinstance(i, InvalidTarget) for i in items[1:])
    assert len(items) >= 2


def test_csv_unterminated_quote_is_that_rows_error_only(tmp_path: Path) -> None:
    """An unterminated quote must not swallow the rows after it (a CSV field may span lines,
    an inventory row does not): that row is an invalid target with its line, the rest read."""
    path = tmp_path / "quote.csv"
    path.write_text('host,port,name\n10.0.0.1,104,a\n"10.0.0.2,104,b\n10.0.0.3,104,c\n')
    items = _items(load_targets(path))
    assert [type(i).__name__ for i in items] == ["Target", "InvalidTarget", "Target"]
    bad = items[1]
    assert isinstance(bad, InvalidTarget)
    assert bad.source == f"{path}:3"
    assert bad.text == '"10.0.0.2,104,b'
    assert "CSV" in bad.reason


def test_csv_invalid_row_is_shown_as_written(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("host,port,called_ae\n10.0.0.1,99999,PACS\n")
    (bad,) = _items(load_targets(path))
    assert isinstance(bad, InvalidTarget)
    assert bad.text == "10.0.0.1,99999,PACS"  # the row, not a Python dict
    assert bad.source == f"{path}:2"


# --- JSON Lines --------------------------------------------------------------------------------


def test_jsonl(caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        json.dumps({"host": "127.0.5.5", "port": 11112, "called_ae": "PACS", "tags": ["a"]}),
        json.dumps("CT@127.0.5.6"),
        "",
        "# comment",
        "{not json",
        json.dumps(42),
        json.dumps({"host": "127.0.5.7", "colour": "red"}),
        json.dumps({"host": "127.0.5.8", "port": 99999}),
        "[" * 100000,
    ]
    with caplog.at_level(logging.WARNING):
        items = _items(iter_jsonl_targets(io.StringIO("\n".join(lines) + "\n"), "t.jsonl"))
    kinds = [type(i).__name__ for i in items]
    assert kinds == [
        "Target",
        "Target",
        "InvalidTarget",
        "InvalidTarget",
        "Target",
        "InvalidTarget",
        "InvalidTarget",
    ]
    assert items[0].tags == ("a",)  # type: ignore[union-attr]
    assert items[1].called_ae == "CT"  # type: ignore[union-attr]
    assert items[2].source == "t.jsonl:5"
    assert "colour" in caplog.text


# --- YAML --------------------------------------------------------------------------------------


def test_yaml_list_and_mapping(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "targets:\n"
        "  - PACS@127.0.5.5:11112\n"
        "  - host: 127.0.5.6\n"
        "    called_ae: CT\n"
        "    tags: [ct, east]\n"
        "    dimse_timeout: 3\n"
        "  - host: 127.0.5.7\n"
        "    port: nope\n"
        "  - [1, 2]\n"
        "  - 42\n"
        "  - {1: 2}\n"
    )
    items = _items(load_targets(path))
    assert isinstance(items[0], Target)
    assert isinstance(items[1], Target)
    assert items[1].tags == ("ct", "east")
    assert items[1].timeouts == TimeoutOverrides(dimse=3.0)
    assert [type(i).__name__ for i in items[2:]] == ["InvalidTarget"] * 4
    assert items[2].source == f"{path}[3]"
    plain = _items(iter_yaml_targets("- a.example\n- 127.0.5.1:104\n"))
    assert [t.host for t in plain if isinstance(t, Target)] == ["a.example", "127.0.5.1"]


@pytest.mark.parametrize("text", ["key: [unclosed\n", "just a string\n", "targets: 5\n"])
def test_yaml_unusable_document(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(TargetFileError):
        load_targets(path)


def test_yaml_alias_bomb_is_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        bomb += f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    bomb += "targets: [*j]\n"
    items = _items(iter_yaml_targets(bomb))
    assert len(items) == 1
    assert isinstance(items[0], InvalidTarget)
    assert len(items[0].text) < 300


# --- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first", "expected"),
    [
        ("a.csv", None, "csv"),
        ("a.jsonl", None, "jsonl"),
        ("a.ndjson", None, "jsonl"),
        ("a.yml", None, "yaml"),
        ("a.txt", "host,port", "lines"),
        ("inventory", "host,port,called_ae", "csv"),
        ("inventory", '{"host": "x"}', "jsonl"),
        ("inventory", "- PACS@x", "yaml"),
        ("inventory", "targets:", "yaml"),
        ("inventory", "PACS@x:104", "lines"),
        ("inventory", None, "lines"),
    ],
)
def test_detect_format(name: str, first: str | None, expected: str) -> None:
    assert detect_format(name, first) == expected


def test_load_sniffs_content_and_streams(tmp_path: Path) -> None:
    path = tmp_path / "inventory"
    path.write_text("\n\nhost,port\n10.0.0.1,104\n10.0.0.2,105\n")
    items = load_targets(path)
    first = next(items)
    assert isinstance(first, Target)
    assert first.source == f"{path}:4"
    assert [t.port for t in items if isinstance(t, Target)] == [105]


def test_load_missing_file_and_bad_format(tmp_path: Path) -> None:
    with pytest.raises(TargetFileError, match="cannot read"):
        load_targets(tmp_path / "nope.txt")
    with pytest.raises(TargetFileError, match="format"):
        load_targets(tmp_path / "nope.txt", "xml")


def test_overlong_line_is_reported_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("127.0.5.1\n" + "x" * (MAX_LINE * 3) + "\n10.0.0.2\n")
    items = _items(load_targets(path))
    assert isinstance(items[0], Target)
    assert isinstance(items[1], InvalidTarget)
    assert "longer" in items[1].reason
    assert items[1].source == f"{path}:2"
    assert isinstance(items[2], Target)
    assert items[2].source == f"{path}:3"


def test_undecodable_bytes_become_invalid_targets(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"127.0.5.1\nh\xe9h\xe9.example\n")
    items = _items(load_targets(path))
    assert isinstance(items[0], Target)
    assert isinstance(items[1], InvalidTarget)


def test_stdin_stream() -> None:
    items = _items(load_targets("-", stream=io.StringIO('{"host": "127.0.5.1"}\n')))
    assert isinstance(items[0], Target)


# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_keys() -> None:
    a = parse_target("PACS@Host.Example:104")
    b = coerce_target({"host": "host.example.", "called_ae": "PACS"})
    c = parse_target("host.example")  # the default called AE is ANY-SCP
    d = parse_target("OTHER@host.example")
    assert isinstance(b, Target)
    assert a.key("ANY-SCP", "ECHOSCU") == b.key("ANY-SCP", "ECHOSCU")
    assert a.key("ANY-SCP", "ECHOSCU") != c.key("ANY-SCP", "ECHOSCU")
    assert c.key("PACS", "ECHOSCU") == a.key("PACS", "ECHOSCU")
    assert d.key("ANY-SCP", "ECHOSCU") != a.key("ANY-SCP", "ECHOSCU")


async def test_sweep_reports_duplicates_once() -> None:
    calls: list[str] = []

    async def fake_probe(host: str, port: int = 104, **kw: Any) -> ProbeResult:
        calls.append(f"{host}:{port}")
        return ProbeResult(
            target=kw["target"],
            host=host,
            port=port,
            called_ae=kw["called_ae"],
            calling_ae=kw["calling_ae"],
            outcome=Outcome.SUCCESS,
            status=0,
            timings_ms={"connect": 1.0, "total": 2.0},
        )

    targets: list[SweepInput] = [
        "PACS@127.0.5.1",
        "PACS@127.0.5.1:104",
        {"host": "127.0.5.1", "called_ae": "PACS"},
        "127.0.5.1",  # another called AE: another target
        "bad target",
        "bad target",  # invalid inputs are not deduplicated: each line gets its record
    ]
    async with sweep(targets, resolver=_no_dns, probe_fn=fake_probe) as results:
        records = [r async for r in results]
    assert sorted(calls) == ["127.0.5.1:104", "127.0.5.1:104"]
    assert len(records) == 4
    assert results.stats.duplicates == 2
    assert results.stats.duplicate_examples == ["PACS@127.0.5.1:104"] * 2
    outcomes = sorted(r.outcome.value for r in records)
    assert outcomes == ["invalid_target", "invalid_target", "success", "success"]
    assert results.stats.emitted == results.stats.expected == 4


async def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"no name should be resolved here ({host})")


def test_target_count_for_progress_is_exact(tmp_path: Path) -> None:
    """The progress total counts targets, not lines: no CSV header, comments or blank lines
    (a 3,000-target CSV used to show 0/3,002)."""
    from echoprobe.fleet.targets import count_targets_hint

    csv_file = tmp_path / "fleet.csv"
    csv_file.write_text("host,port\n# a comment\n\n10.0.0.1,104\n10.0.0.2,104\n")
    lines = tmp_path / "fleet.txt"
    lines.write_text("10.0.0.1\n10.0.0.2\n10.0.0.3")  # no newline at the end
    yaml_file = tmp_path / "fleet.yaml"
    yaml_file.write_text("- 10.0.0.1\n- 10.0.0.2\n")
    assert count_targets_hint(csv_file) == 2
    assert count_targets_hint(lines) == 3
    assert count_targets_hint(yaml_file) is None  # entries are not lines
    assert count_targets_hint(tmp_path / "missing.csv") is None
