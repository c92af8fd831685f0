"""Pure parts of running the exporter: `--web.listen-address`, log formats, `--config.check`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from echoprobe.monitoring.exporter.logs import JsonFormatter, LogfmtFormatter
from echoprobe.monitoring.exporter.runner import check_files, parse_listen_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":10104", (None, 10104)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:80", ("localhost", 80)),
        ("0.0.0.0:10104", ("0.0.0.0", 10104)),
    ],
)
def test_listen_address(text: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["10104", "::1:80", "[::1]", "[::1]80", "host:", "h:65536", "h:x"])
def test_bad_listen_address(text: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen_address(text)


def make_record() -> logging.LogRecord:
    record = logging.LogRecord("echoprobe.x", logging.INFO, __file__, 1, "Listening on", (), None)
    record.address = "127.0.0.1:10104"
    return record


def test_logfmt() -> None:
    line = LogfmtFormatter().format(make_record())
    assert 'level=info logger=echoprobe.x msg="Listening on" address=127.0.0.1:10104' in line
    assert line.startswith("ts=")


def test_json() -> None:
    data = json.loads(JsonFormatter().format(make_record()))
    assert data["msg"] == "Listening on"
    assert data["address"] == "127.0.0.1:10104"
    assert data["level"] == "info"


def test_check_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("modules:\n  dicom_echo:\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("modules:\n  dicom_echo:\n    timeout: soon\n")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  u: plain\n")
    assert check_files(str(good), None) == []
    problems = check_files(str(bad), str(web))
    assert [p.split(": ", 1)[0] for p in problems] == [f"{bad}:3", f"{web}:2"]
