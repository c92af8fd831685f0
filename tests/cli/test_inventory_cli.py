"""`echoprobe inventory file-sd` through subprocesses: outputs, errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CSV = (
    "host,port,called_ae,name,tags,tls\n"
    "127.0.0.1,11112,PACS,pacs-1,site=north;ct,\n"
    "127.0.0.2,11112,,pacs-2,site=north,\n"
    "::1,2762,SECURE,tls-1,,yes\n"
)


def _run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "echoprobe", "inventory", "file-sd", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_csv_to_file_sd_file(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.csv"
    inventory.write_text(CSV)
    out = tmp_path / "targets.json"
    done = _run(str(inventory), "-o", str(out), "--tls-module", "tls_module")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert json.loads(out.read_text()) == [
        {
            "targets": ["PACS@127.0.0.1:11112"],
            "labels": {
                "name": "pacs-1",
                "tags": "site=north,ct",
                "site": "north",
                "__param_module": "dicom_echo",
            },
        },
        {
            "targets": ["127.0.0.2:11112"],
            "labels": {
                "name": "pacs-2",
                "tags": "site=north",
                "site": "north",
                "__param_module": "dicom_echo",
            },
        },
        {
            "targets": ["SECURE@[::1]:2762"],
            "labels": {"name": "tls-1", "__param_module": "tls_module"},
        },
    ]
    assert "3 target(s) in 3 group(s)" in done.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_stdout_and_stdin_and_group_by(tmp_path: Path) -> None:
    lines = "# a comment\n127.0.0.1:104\n127.0.0.2:104\n"
    done = _run("-", "--format", "lines", "--module", "m", "-q", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == [
        {"targets": ["127.0.0.1:104", "127.0.0.2:104"], "labels": {"__param_module": "m"}}
    ]
    done = _run("-", "--format", "lines", "--group-by", "none", "-q", stdin=lines)
    assert len(json.loads(done.stdout)) == 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("fleet.yaml", "targets:\n  - PACS@127.0.0.1:11112\n  - {host: 127.0.0.2, tags: [a, b]}\n"),
        ("fleet.jsonl", '"PACS@127.0.0.1:11112"\n{"host": "127.0.0.2", "tags": ["a", "b"]}\n'),
    ],
)
def test_yaml_and_json_lines(tmp_path: Path, name: str, text: str) -> None:
    inventory = tmp_path / name
    inventory.write_text(text)
    done = _run(str(inventory), "-q")
    assert done.returncode == 0, done.stderr
    groups = json.loads(done.stdout)
    assert groups[0]["targets"] == ["PACS@127.0.0.1:11112"]
    assert groups[1]["labels"]["tags"] == "a,b"


def test_invalid_rows_fail_and_leave_the_old_file(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.csv"
    inventory.write_text(CSV + "bad host,104,,,,\n127.0.0.9,70000,,,,\n")
    out = tmp_path / "targets.json"
    out.write_text("[]\n")
    os.chmod(out, 0o640)
    done = _run(str(inventory), "-o", str(out))
    assert done.returncode == 1
    assert f"{inventory}:5: invalid host name" in done.stderr
    assert f"{inventory}:6: port 70000" in done.stderr
    assert out.read_text() == "[]\n"

    done = _run(str(inventory), "-o", str(out), "--skip-invalid")
    assert done.returncode == 0, done.stderr
    assert f"{inventory}:5:" in done.stderr
    assert len(json.loads(out.read_text())) == 3
    assert out.stat().st_mode & 0o777 == 0o640  # the replaced file keeps its mode


def test_usage_errors(tmp_path: Path) -> None:
    assert _run(str(tmp_path / "missing.csv")).returncode == 2
    no_host = tmp_path / "bad.csv"
    no_host.write_text("name,port\nx,1\n")
    done = _run(str(no_host))
    assert done.returncode == 2
    assert "host" in done.stderr
    assert _run(str(no_host), "--group-by", "site").returncode == 2
    done = subprocess.run(
        [sys.executable, "-m", "echoprobe", "inventory"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "file-sd" in done.stderr
