"""`echoprobe merge`: load reports of several runs or machines, merged exactly into one.

    echoprobe merge gen-0.json gen-1.json gen-2.json --json all.json --report all.html

Rules:
- Inputs are `echoprobe load --json` files (`kind: load`); counts add, latency histograms
  merge bucket by bucket (fleet/load_merge.py), and the summary lists every input (by source).
- The inputs should have run at the same time against the same SCP (e.g. started with
  `--start-at`): throughput is the sum of associations over the longest window. A target that
  differs between inputs is a warning, not an error (several SCPs behind one balancer).
- The summary goes to stdout, errors to stderr; `--json` and `--report` are written at the end.
- Exit codes: 0 every merged association succeeded; 1 some failed, never started, or an input
  names a worker that died; 2 usage error (unreadable input, not a load report, unwritable
  output).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from echoprobe.cli import exit_codes
from echoprobe.fleet.load_merge import ReportFormatError, merge_reports, report_from_dict
from echoprobe.fleet.load_model import LoadReport
from echoprobe.report.load_report import render_load_summary, write_html, write_json

PROG = "echoprobe merge"
MAX_INPUT_BYTES = 512 * 1024 * 1024  # a report with a day of 1 s ticks is a few MB

EPILOG = """\
exit codes:
  0    every merged association succeeded
  1    at least one association failed or never started, or a worker died in some input
  2    usage error (unreadable input, not a load report, unwritable output)
"""


def register(subparsers: Any) -> None:
    """Add the `merge` subcommand to the `echoprobe` parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "merge",
        help="merge load reports of several runs or machines exactly (counts, histograms)",
        description="Merge `echoprobe load --json` reports of generators that ran together into\n"
        "one report: counts add, latency histograms merge bucket by bucket, every input listed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("inputs", nargs="+", metavar="REPORT.json", help="load reports to merge")
    p.add_argument("--json", metavar="FILE", help="write the merged report as JSON to FILE")
    p.add_argument("--report", metavar="FILE", help="write a self-contained HTML report to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary")
    p.set_defaults(func=run)


def read_report(path: str) -> LoadReport:
    """One input; raises `ReportFormatError` (or `OSError`) with the file named."""
    file = Path(path)
    if file.stat().st_size > MAX_INPUT_BYTES:
        raise ReportFormatError(f"{path}: larger than {MAX_INPUT_BYTES // 2**20} MiB")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportFormatError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReportFormatError(f"{path}: not a load report")
    try:
        return report_from_dict(data)
    except ReportFormatError as exc:
        raise ReportFormatError(f"{path}: {exc}") from exc


def merge_files(paths: list[str]) -> LoadReport:
    named = [(path, read_report(path)) for path in paths]
    first = named[0][1].config
    config = {**first, "merged": paths}
    for key in ("associations", "concurrency"):
        values = [r.config.get(key) for _, r in named]
        config[key] = None if None in values else sum(int(v) for v in values if v is not None)
    rates = [r.config.get("rate") for _, r in named]
    config["rate"] = None if None in rates else sum(float(v) for v in rates if v is not None)
    config["workers"] = sum(int(r.config.get("workers") or 1) for _, r in named)
    merged = merge_reports(named, config=config)
    targets = {(r.config.get("host"), r.config.get("port")) for _, r in named}
    if len(targets) > 1:
        listed = ", ".join(f"{h}:{p}" for h, p in sorted(targets, key=str))
        merged.warnings.insert(0, f"the inputs loaded different targets: {listed}")
    return merged


def run(args: argparse.Namespace) -> int:
    """The `merge` subcommand: returns the exit code."""
    err = Console(stderr=True, highlight=False)
    try:
        merged = merge_files(list(args.inputs))
    except (OSError, ReportFormatError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    code = exit_codes.OK if merged.ok else exit_codes.SOME_FAILED
    if not args.quiet:
        tty = sys.stdout.isatty()
        render_load_summary(merged, Console(highlight=False, width=None if tty else 120))
    for path, writer, what in ((args.json, write_json, "JSON"), (args.report, write_html, "HTML")):
        if path is None:
            continue
        try:
            writer(merged, path)
        except OSError as exc:
            err.print(f"{PROG}: error: cannot write {what} to {path}: {exc}", style="red")
            code = exit_codes.USAGE
    return code


__all__ = ["merge_files", "read_report", "register", "run"]
