"""System calls per C-ECHO, counted with `strace -c`: the difference between two runs of one
command with `--repeat` small and large, divided by the difference in echoes, so start-up and
release cancel out. Counts are exact, not timings; strace slows the runs, which does not matter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

JSONish = dict[str, object]
STRACE = shutil.which("strace")
SMALL, LARGE = 10, 1010  # echoes in the two runs


def available() -> bool:
    return STRACE is not None


def _counts(argv: list[str], env: dict[str, str]) -> dict[str, int]:
    assert STRACE is not None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "strace.txt"
        subprocess.run(
            [STRACE, "-f", "-c", "-o", str(out), *argv],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        counts: dict[str, int] = {}
        for line in out.read_text().splitlines():
            parts = line.split()
            # "% time seconds usecs/call calls [errors] syscall"
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                counts[parts[-1]] = int(parts[3])
        return counts


def per_echo(argv_before_target: list[str], target: list[str], env: dict[str, str]) -> JSONish:
    """{syscall: calls per echo} for `argv_before_target --repeat N *target`, and the total."""
    small = _counts([*argv_before_target, "--repeat", str(SMALL), *target], env)
    large = _counts([*argv_before_target, "--repeat", str(LARGE), *target], env)
    per = {
        name: round((large.get(name, 0) - small.get(name, 0)) / (LARGE - SMALL), 2)
        for name in sorted(set(small) | set(large))
    }
    per = {name: value for name, value in per.items() if value >= 0.01}
    return {"per_echo": per, "total": round(sum(per.values()), 2)}


def environment(nodelay: bool) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("TCP_NODELAY", "PYTHONDONTWRITEBYTECODE")
    }
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env
