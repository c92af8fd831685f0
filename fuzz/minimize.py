"""Shrink a failing input while it fails the same way: `python -m fuzz.minimize TARGET FILE
[OUT]` (uninstrumented; prints the minimised input's hex and writes it to OUT if given).

"The same way" is the same exception type and the same first 40 characters of its message.
Greedy: remove chunks (halving their size down to one byte), then try zeroing each byte.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from fuzz import quiet


def signature(check: Callable[[bytes], None], data: bytes) -> str | None:
    try:
        check(data)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:40]}"
    return None


def shrink(check: Callable[[bytes], None], data: bytes) -> bytes:
    wanted = signature(check, data)
    if wanted is None:
        raise SystemExit("the input does not fail")
    size = max(len(data) // 2, 1)
    while size >= 1:
        start = 0
        while start < len(data):
            candidate = data[:start] + data[start + size :]
            if candidate and signature(check, candidate) == wanted:
                data = candidate
            else:
                start += size
        size //= 2
    for index in range(len(data)):
        if data[index]:
            candidate = data[:index] + b"\x00" + data[index + 1 :]
            if signature(check, candidate) == wanted:
                data = candidate
    return data


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        raise SystemExit("usage: python -m fuzz.minimize TARGET FILE [OUT]")
    quiet()
    check = importlib.import_module(f"fuzz.fuzz_{argv[1]}").check
    small = shrink(check, Path(argv[2]).read_bytes())
    if len(argv) > 3:
        Path(argv[3]).write_bytes(small)
    sys.stdout.write(f"{len(small)} bytes: {small.hex()}\n{signature(check, small)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
