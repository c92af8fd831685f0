"""The Kubernetes examples of scale-out parse, and their command lines are ones we accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from echoprobe.cli.echoprobe import build_parser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def _container(document: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = document["spec"]["template"]["spec"]["containers"][0]
    return container


def test_every_example_parses() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert "load-job.yaml" in names
    for name in names:
        assert _documents(name), name


def test_the_load_job_runs_a_command_we_accept() -> None:
    (job,) = _documents("load-job.yaml")
    assert job["kind"] == "Job"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["parallelism"] == job["spec"]["completions"]
    container = _container(job)
    argv = [*container["command"][1:], *container["args"]]
    argv = [a.replace("__START_AT__", "2026-12-04T17:00:00Z") for a in argv]
    argv = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in argv]
    args = build_parser().parse_args(argv)
    assert args.workers == "auto"
    assert args.metrics_listen == ("0.0.0.0", 9464)
    assert args.start_at is not None
    assert args.associations is not None or args.duration is not None
    assert container["ports"][0]["containerPort"] == 9464


def test_the_merge_job_merges_what_the_load_job_writes() -> None:
    (job,) = _documents("merge-job.yaml")
    command = " ".join(_container(job)["args"])
    assert "echoprobe merge /results/gen-*.json" in command
    (load,) = _documents("load-job.yaml")
    assert any(a.startswith("--json=/results/gen-") for a in _container(load)["args"])


def test_the_scrape_config_keeps_the_load_pods_and_shards_the_exporters() -> None:
    (config,) = _documents("prometheus-scrape.yaml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    keep = jobs["echoprobe_load"]["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["regex"] == "echoprobe-load"
    shard = jobs["dicom_echo"]["relabel_configs"][0]
    assert shard["action"] == "hashmod"
    (_, statefulset) = _documents("exporter-statefulset.yaml")
    assert statefulset["spec"]["replicas"] == shard["modulus"]
