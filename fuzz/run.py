"""Fuzz one or every harness for a while and summarise: `python -m fuzz.run --target codec
--seconds 60` or `python -m fuzz.run --all --seconds 600`.

Each harness runs in its own process (`python -m fuzz.harness`) under libFuzzer's limits
(`-max_total_time`, `-rss_limit_mb`, `-timeout`), niced, with the checked-in seeds as input.
New corpus entries go to a scratch directory, not to `fuzz/corpus/`, unless `--update-corpus`
is given: then the entries libFuzzer kept (each added coverage) are copied in. The inputs of open
findings (`finding-*`) are left out of the fuzzing runs (the replay test covers them). Crash
inputs land in the scratch directory too; the summary names each one with the exception it
raised.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fuzz import TARGETS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

_PULSE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)/)?")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass(slots=True)
class Summary:
    """What one harness run reported."""

    target: str
    seconds: int
    runs: int = 0
    execs_per_second: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    peak_rss_mb: int = 0
    crashes: list[str] = field(default_factory=list)
    exception: str = ""
    returncode: int = 0

    def line(self) -> str:
        text = (
            f"{self.target:<12} {self.seconds:>5}s runs={self.runs:<9} "
            f"exec/s={self.execs_per_second:<6} cov={self.cov:<5} ft={self.ft:<6} "
            f"corpus={self.corpus:<5} rss={self.peak_rss_mb}MB"
        )
        if self.crashes:
            text += f"\n{'':13}CRASH {', '.join(self.crashes)}\n{'':13}{self.exception}"
        elif self.returncode not in (0,):
            text += f"\n{'':13}exit status {self.returncode} (see the log)"
        return text


def parse_log(target: str, seconds: int, log: str, returncode: int) -> Summary:
    """Read libFuzzer's and atheris' output into a `Summary`."""
    summary = Summary(target, seconds, returncode=returncode)
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if pulse := _PULSE.match(line):
            summary.cov, summary.ft = int(pulse[2]), int(pulse[3])
            if pulse[4]:
                summary.corpus = int(pulse[4])
        elif stat := _STAT.match(line):
            name, number = stat[1], int(stat[2])
            if name == "number_of_executed_units":
                summary.runs = number
            elif name == "average_exec_per_sec":
                summary.execs_per_second = number
            elif name == "peak_rss_mb":
                summary.peak_rss_mb = number
        elif artifact := _ARTIFACT.search(line):
            summary.crashes.append(artifact[1])
        elif line.strip() == "=== Uncaught Python exception: ===":
            block = []
            for text in lines[index + 1 :]:
                if not text.strip():
                    break
                block.append(text.strip())
            where = [x for x in block if x.startswith("File ")]
            summary.exception = " | ".join(block[:1] + where[-1:])[:600]
    return summary


def run_target(
    target: str, seconds: int, scratch: Path, *, update: bool, timeout: int, rss_mb: int, nice: int
) -> Summary:
    new = scratch / target
    crashes = scratch / f"{target}-crashes"
    new.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    # The checked-in seeds, less the open findings' inputs (`finding-*`): libFuzzer would stop
    # at the first of those before fuzzing anything. The replay test covers them.
    seeds = scratch / f"{target}-seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    for path in (CORPUS / target).iterdir():
        if path.is_file() and not path.name.startswith("finding-"):
            shutil.copyfile(path, seeds / path.name)
    command = [
        "nice",
        "-n",
        str(nice),
        sys.executable,
        "-m",
        "fuzz.harness",
        target,
        f"-max_total_time={seconds}",
        f"-rss_limit_mb={rss_mb}",
        f"-timeout={timeout}",
        "-max_len=8192",
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/",
        str(new),
        str(seeds),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 300,
    )
    log = done.stdout + done.stderr
    (scratch / f"{target}.log").write_text(log)
    summary = parse_log(target, seconds, log, done.returncode)
    if update and not summary.crashes:
        # libFuzzer keeps only inputs that added coverage, named by their SHA-1: copying them
        # adds each new behaviour once. (`-merge=1` would re-execute argv[0], which is not
        # runnable here.)
        for path in new.iterdir():
            if path.is_file():
                shutil.copyfile(path, CORPUS / target / path.name)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--target", action="append", choices=TARGETS, help="repeatable")
    which.add_argument("--all", action="store_true", help="every harness, the time split")
    parser.add_argument("--seconds", type=int, default=60, help="total fuzzing time")
    parser.add_argument("--scratch", type=Path, help="new corpus entries, crashes and logs")
    parser.add_argument(
        "--update-corpus",
        action="store_true",
        help="merge entries that add coverage into fuzz/corpus/",
    )
    parser.add_argument("--timeout", type=int, default=10, help="seconds per input")
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    targets = list(TARGETS) if args.all else list(dict.fromkeys(args.target))
    each = max(args.seconds // len(targets), 1)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="echoprobe-fuzz-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"scratch directory: {scratch}", flush=True)
    summaries = []
    for target in targets:
        summary = run_target(
            target,
            each,
            scratch,
            update=args.update_corpus,
            timeout=args.timeout,
            rss_mb=args.rss_limit_mb,
            nice=args.nice,
        )
        summaries.append(summary)
        print(summary.line(), flush=True)
    return 1 if any(s.crashes or s.returncode for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
