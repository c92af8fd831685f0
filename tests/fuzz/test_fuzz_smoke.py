"""Replay every fuzzing harness over its checked-in corpus, without atheris instrumentation.

The corpora hold our seeds and the minimised inputs of past findings, so this is both a smoke
test of the harnesses and a regression test for what fuzzing found. No new inputs are made
here: `python -m fuzz.run` does the fuzzing (see fuzz/README.md).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from fuzz import TARGETS
from fuzz.run import parse_log

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


def _inputs(target: str, findings: bool) -> list[Path]:
    folder = CORPUS / target
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.startswith("finding-") == findings
    )


def _replay(target: str, files: list[Path]) -> list[str]:
    check = importlib.import_module(f"fuzz.fuzz_{target}").check
    failures = []
    for path in files:
        try:
            check(path.read_bytes())
        except Exception as exc:
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_harness_replays_its_corpus(target: str) -> None:
    files = _inputs(target, findings=False)
    assert files, f"no seeds for {target}"
    failures = _replay(target, files)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_open_findings_still_fail() -> None:
    """Minimised inputs of findings not yet fixed (`finding-*`) must still fail: once the code
    is fixed, rename them into ordinary seeds (then the test above keeps them passing)."""
    for target in TARGETS:
        for path in _inputs(target, findings=True):
            assert _replay(target, [path]), f"{target}/{path.name} passes: rename it into a seed"


def test_runner_reads_libfuzzer_output() -> None:
    log = "\n".join(
        (
            "#2\tINITED cov: 10 ft: 12 corp: 3/30b exec/s: 0 rss: 40Mb",
            "#9\tNEW    cov: 11 ft: 15 corp: 4/38b lim: 4 exec/s: 0 rss: 40Mb L: 8/8 MS: 1 X-",
            "",
            " === Uncaught Python exception: ===",
            "Finding: something broke",
            "Traceback (most recent call last):",
            '  File "fuzz/fuzz_codec.py", line 3, in check',
            "Finding: something broke",
            "",
            "artifact_prefix='x/'; Test unit written to x/crash-abc",
            "stat::number_of_executed_units: 9",
            "stat::average_exec_per_sec:     4",
            "stat::peak_rss_mb:              40",
        )
    )
    summary = parse_log("codec", 5, log, 1)
    assert (summary.runs, summary.execs_per_second, summary.cov, summary.ft) == (9, 4, 11, 15)
    assert summary.corpus == 4
    assert summary.crashes == ["x/crash-abc"]
    assert summary.exception.startswith("Finding: something broke | File")
