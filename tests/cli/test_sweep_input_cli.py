"""`echoprobe sweep` with bad input, as a new user types it: one-line usage errors (exit 2)
for the command line, FILE:LINE records for the inventory, no output before an error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.servers import free_port

ECHOPROBE = [sys.executable, "-m", "echoprobe"]
ENV = {"COLUMNS": "100", "PATH": "/usr/bin:/bin"}


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ECHOPROBE, "sweep", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=ENV,
        check=False,
    )


def test_a_malformed_target_argument_is_a_one_line_usage_error(tmp_path: Path) -> None:
    done = sweep("127.0.2.1:70000", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "echoprobe sweep: error: target '127.0.2.1:70000' (argument 1): "
        "port 70000 is outside 1..65535"
    ]


def test_an_empty_targets_file_is_an_error_before_any_table(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    done = sweep("--targets", "empty.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "echoprobe sweep: error: no targets found in the input"


def test_output_named_html_is_refused_not_written_as_text(tmp_path: Path) -> None:
    done = sweep("127.0.0.1:1", "-o", "res.html", cwd=tmp_path)
    assert done.returncode == 2
    assert "not HTML" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "res.html").exists()


def test_malformed_inventory_rows_are_named_by_file_and_line(tmp_path: Path) -> None:
    closed = free_port("127.0.0.1")
    (tmp_path / "inv.csv").write_text(
        "host,port,called_ae,tags\n"
        f"127.0.0.1,{closed},PACS,department=CT\n"
        "127.0.0.1,70000,PACS,department=CT\n"
        "127.0.0.1,104,THIS_AE_TITLE_IS_FAR_TOO_LONG,department=MR\n",
        encoding="utf-8",
    )
    done = sweep("--targets", "inv.csv", "-to", "2", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    table = done.stdout
    assert "{'" not in table  # never a Python dict
    assert "inv.csv:3" in table
    assert "inv.csv:4" in table
    assert "port 70000 is outside 1..65535" in table
    assert "inv.csv:3" in done.stderr  # the attention list names it the same way
    assert "Bad inventory entry" in done.stderr
    jsonl = sweep("--targets", "inv.csv", "-to", "2", "--format", "jsonl", "-q", cwd=tmp_path)
    sources = {
        json.loads(line)["detail"].get("source")
        for line in jsonl.stdout.splitlines()
        if json.loads(line)["outcome"] == "invalid_target"
    }
    assert sources == {"inv.csv:3", "inv.csv:4"}


def test_the_summary_groups_by_department_and_advises(tmp_path: Path) -> None:
    closed = free_port("127.0.0.1")
    (tmp_path / "inv.csv").write_text(
        "host,port,called_ae,tags\n"
        f"127.0.0.1,{closed},PACS,department=CT\n"
        f"127.0.0.2,{closed},PACS,department=MR\n",
        encoding="utf-8",
    )
    done = sweep("--targets", "inv.csv", "-to", "2", "--group-by", "department", cwd=tmp_path)
    assert done.returncode == 1
    err = done.stderr
    assert "2 targets: 0 succeeded, 2 failed" in err
    assert "Peers that need attention (2 of 2)" in err
    assert "no listener: device off or service down" in err
    lines = err.splitlines()
    assert any(line.split()[:2] == ["CT", "1"] for line in lines), err
    assert any(line.split()[:2] == ["MR", "1"] for line in lines), err


def test_compare_with_the_previous_run(tmp_path: Path) -> None:
    closed = free_port("127.0.0.1")
    first = sweep(f"127.0.0.1:{closed}", "-to", "2", "--format", "jsonl", "-o", "a.jsonl",
                  cwd=tmp_path)  # fmt: skip
    assert first.returncode == 1, first.stderr
    record = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8"))
    record["outcome"] = "success"  # as if it had answered last time
    (tmp_path / "a.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    again = sweep(f"127.0.0.1:{closed}", "-to", "2", "--compare", "a.jsonl", cwd=tmp_path)
    assert again.returncode == 1
    assert "1 failed since, 0 recovered" in again.stderr
    assert "Failed since last time (1)" in again.stderr
    missing = sweep("127.0.0.1:1", "--compare", "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 2
    assert "cannot read nope.jsonl" in missing.stderr


def test_report_writes_a_self_contained_html_page(tmp_path: Path) -> None:
    closed = free_port("127.0.0.1")
    done = sweep(f"127.0.0.1:{closed}", "-to", "2", "--report", "res.html", "-q", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    page = (tmp_path / "res.html").read_text(encoding="utf-8")
    assert "Connection refused" in page
    assert "<script" not in page
    refused = sweep("127.0.0.1:1", "--report", "no/such/dir/r.html", cwd=tmp_path)
    assert refused.returncode == 2
    assert "no such directory" in refused.stderr
