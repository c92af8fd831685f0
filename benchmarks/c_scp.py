"""The C-speed reference SCP (`benchmarks/c_scp.c`), built with the machine's gcc and run pinned.

W2 and W5 measure clients, and a Python SCP hides a client's costs behind its own: this one
answers in microseconds. Same interface as `common.ScpProcess` (`pid`, `listeners`, `final`);
it stops when its stdin closes or after `max_seconds`. The binary is built once per source
version into the system's temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import selectors
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, SCP_CPU, ScpProcess, pinned

SOURCE = ROOT / "benchmarks" / "c_scp.c"


def available() -> bool:
    return shutil.which("gcc") is not None and SOURCE.exists()


def build() -> Path:
    """The compiled SCP, built if its source changed since the last build."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = Path(tempfile.gettempdir()) / f"echoprobe-c-scp-{digest}"
    if not binary.exists():
        partial = binary.with_suffix(".partial")
        subprocess.run(
            ["gcc", "-O2", "-o", str(partial), str(SOURCE)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        partial.replace(binary)
    return binary


class CScpProcess(ScpProcess):
    """`c_scp` on 127.0.0.1, an ephemeral port, pinned to the SCP's CPU."""

    def __init__(self, *, max_seconds: float, ready_timeout: float = 60.0) -> None:
        super().__init__([], max_seconds=max_seconds, ready_timeout=ready_timeout)

    def __enter__(self) -> CScpProcess:
        argv = [str(build()), "--max-seconds", str(int(self.max_seconds) + 1)]
        self.proc = subprocess.Popen(
            pinned(SCP_CPU, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if sel.select(timeout=self.ready_timeout):
                line = self.proc.stdout.readline()
                if line.startswith("{"):
                    self.ready = json.loads(line)
                    return self
        self._stop()
        raise RuntimeError("the C SCP did not become ready")
