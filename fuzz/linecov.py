"""Line coverage of a harness's target modules over a corpus, without coverage.py:
`python -m fuzz.linecov TARGET DIR [DIR ...]`.

Replays every file of the directories through the harness's `check` (uninstrumented) under a
`sys.settrace` line tracer started before echoprobe is imported, and prints, per target module,
the lines run out of the lines that hold code (from the compiled code objects' line tables).
Run it in a fresh process per target: modules imported earlier would miss their import lines.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

SRC = Path(__file__).resolve().parent.parent / "src" / "echoprobe"

MODULES: dict[str, tuple[str, ...]] = {
    "codec": ("ul/codec.py",),
    "framer": ("ul/framing.py",),
    "negotiation": ("ul/negotiation.py",),
    "dimse": ("dimse/command_set.py", "dimse/echo.py", "dimse/fragment.py"),
    "connection": ("ul/connection.py",),
    "fastpath": ("net/fastpath.py",),
    "scp": ("net/server.py",),
}


def _code_objects(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_objects(const)


def code_lines(path: Path) -> set[int]:
    """Line numbers that hold code (what a line tracer can report for this file)."""
    top = compile(path.read_text(), str(path), "exec")
    return {
        line
        for code in _code_objects(top)
        for _, _, line in code.co_lines()
        if line is not None and line > 0
    }


def _ranges(lines: list[int]) -> str:
    parts: list[str] = []
    for line in lines:
        if parts and parts[-1].split("-")[-1] == str(line - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{line}"
        else:
            parts.append(str(line))
    return ",".join(parts) or "none"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in MODULES:
        raise SystemExit(f"usage: python -m fuzz.linecov {{{','.join(MODULES)}}} DIR [DIR ...]")
    target = argv[1]
    files = {str(SRC / rel): rel for rel in MODULES[target]}
    hit: dict[str, set[int]] = {name: set() for name in files}

    def local(frame: FrameType, event: str, _arg: Any) -> Any:
        if event == "line":
            hit[frame.f_code.co_filename].add(frame.f_lineno)
        return local

    def global_(frame: FrameType, _event: str, _arg: Any) -> Any:
        return local if frame.f_code.co_filename in hit else None

    sys.settrace(global_)
    try:
        check = importlib.import_module(f"fuzz.fuzz_{target}").check
        count = 0
        for folder in argv[2:]:
            for path in sorted(Path(folder).iterdir()):
                if path.is_file():
                    try:
                        check(path.read_bytes())
                    except Exception:  # noqa: S112 - findings still count for coverage
                        continue
                    count += 1
    finally:
        sys.settrace(None)
    total_hit = total = 0
    for name, rel in files.items():
        lines = code_lines(Path(name))
        got = len(hit[name] & lines)
        total_hit += got
        total += len(lines)
        missed = sorted(lines - hit[name])
        print(
            f"{target:<12} {rel:<22} {got:>4}/{len(lines):<4} lines "
            f"({100 * got / len(lines):.0f}%)  missed: {_ranges(missed)}"
        )
    print(f"{target:<12} {'(inputs replayed)':<22} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
