"""`echoprobe inventory`: tools for the sweep inventory. First of them, `file-sd`:

    echoprobe inventory file-sd fleet.csv -o /etc/prometheus/echoprobe/targets.json
    echoprobe inventory file-sd fleet.yaml --module dicom_echo --tls-module dicom_tls

turns an inventory (CSV, JSON Lines, YAML or plain lines: see `fleet/targets.py`) into
Prometheus `file_sd` JSON for the exporter's scrape job (see `monitoring/file_sd.py`).

Rules:
- Invalid rows are printed on stderr as `FILE:LINE: reason: text`; with any of them the command
  writes nothing and exits 1, unless `--skip-invalid` (then they are left out, exit 0).
- `-o FILE` is replaced atomically (a temporary file in the same directory, flushed to disk,
  then renamed over it), so Prometheus, which re-reads the file when it changes, never sees half
  of it. Without `-o` the JSON goes to stdout.
- Exit: 0 written, 1 invalid rows (nothing written), 2 usage error or unreadable inventory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from echoprobe.cli import exit_codes
from echoprobe.fleet.targets import FORMATS, TargetFileError, load_targets
from echoprobe.monitoring.file_sd import (
    DEFAULT_MODULE,
    DEFAULT_TLS_MODULE,
    GROUP_BY,
    FileSD,
    FileSDOptions,
    build_file_sd,
)

_PROG = "echoprobe inventory file-sd"
_MAX_SHOWN = 50  # invalid rows printed one per line; beyond, a count


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inventory",
        help="inventory tools (file-sd: Prometheus file_sd targets for the exporter)",
        description="Tools for the inventory files that `echoprobe sweep` reads.",
    )
    sub = p.add_subparsers(dest="inventory_command", metavar="ACTION")
    p.set_defaults(func=lambda _args: _usage(p))
    f = sub.add_parser(
        "file-sd",
        help="write Prometheus file_sd JSON for `echoprobe exporter`",
        description="Turn an inventory (CSV, JSON Lines, YAML, lines) into Prometheus "
        "file_sd target groups: targets CALLED_AE@host:port, labels name, tags and "
        "__param_module. A tag KEY=VALUE also becomes a label KEY.",
        epilog="Exit: 0 written; 1 invalid rows (nothing written unless --skip-invalid); "
        "2 usage error or unreadable inventory.",
    )
    f.add_argument("inventory", metavar="INVENTORY", help='inventory file ("-" = stdin)')
    f.add_argument("-o", "--output", metavar="FILE",
                   help="write here, atomically (default: stdout)")  # fmt: skip
    f.add_argument("--format", choices=FORMATS, default="auto",
                   help="inventory format (default: by extension, then content)")  # fmt: skip
    f.add_argument("--module", default=DEFAULT_MODULE,
                   help=f"exporter module of plain rows (default {DEFAULT_MODULE})")  # fmt: skip
    f.add_argument("--tls-module", default=DEFAULT_TLS_MODULE,
                   help=f"exporter module of TLS rows (default {DEFAULT_TLS_MODULE})")  # fmt: skip
    f.add_argument(
        "--group-by",
        choices=GROUP_BY,
        default="tag",
        help="tag: one group per set of equal labels (default); none: one group per target",
    )
    f.add_argument("--skip-invalid", action="store_true",
                   help="leave invalid rows out (still reported) and write the rest")  # fmt: skip
    f.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")
    f.set_defaults(func=run_file_sd)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exit_codes.USAGE


def _report(result: FileSD, *, quiet: bool) -> None:
    for item in result.invalid[:_MAX_SHOWN]:
        where = item.source or "<inventory>"
        text = f": {item.text}" if item.text else ""
        print(f"{where}: {item.reason}{text}", file=sys.stderr)
    if len(result.invalid) > _MAX_SHOWN:
        print(f"… and {len(result.invalid) - _MAX_SHOWN} more invalid rows", file=sys.stderr)
    for dup in result.duplicates[:_MAX_SHOWN]:
        print(
            f"{dup.source or '<inventory>'}: warning: {dup.target} ({dup.module}) is already "
            f"listed at {dup.first_source or 'an earlier row'}; skipped",
            file=sys.stderr,
        )
    if result.ignored_settings and not quiet:
        print(
            f"warning: {len(result.ignored_settings)} row(s) set a calling AE title or timeouts "
            f"(first: {result.ignored_settings[0]}); in the exporter these are module "
            "settings, so they are not in the targets file",
            file=sys.stderr,
        )


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename; readers see the old file or the new one."""
    directory = path.parent
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # as a plain open() would have created it
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def run_file_sd(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format=f"{_PROG}: %(message)s")
    try:
        options = FileSDOptions(args.module, args.tls_module, args.group_by)
    except ValueError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    stream = sys.stdin if args.inventory == "-" else None
    try:
        result = build_file_sd(load_targets(args.inventory, args.format, stream=stream), options)
    except TargetFileError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    _report(result, quiet=args.quiet)
    if result.invalid and not args.skip_invalid:
        print(
            f"{_PROG}: {len(result.invalid)} invalid row(s): nothing written "
            "(fix them, or pass --skip-invalid)",
            file=sys.stderr,
        )
        return exit_codes.SOME_FAILED
    text = json.dumps(result.as_json(), indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            write_atomically(Path(args.output), text)
        except OSError as exc:
            print(f"{_PROG}: error: cannot write {args.output}: {exc}", file=sys.stderr)
            return exit_codes.USAGE
    if not args.quiet:
        where = args.output or "stdout"
        print(
            f"{_PROG}: {result.target_count} target(s) in {len(result.groups)} group(s) → {where}",
            file=sys.stderr,
        )
    return exit_codes.OK
