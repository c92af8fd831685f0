"""What the per-peer interop tests share: finding a peer, running it, and `echoprobe` itself.

Rules:

* Loopback only: every peer is started by a test on 127.0.0.1 with a port chosen here, and
  every client is pointed at 127.0.0.1.
* A peer that is not installed skips its tests, except under CI (`CI=true`), where that fails.
* Every process is bounded: clients by `subprocess.run(timeout=...)`, servers by
  `SubprocessServer` (a time limit, stopped by PID at teardown).
* A case is recorded for the published matrix with `@matrix(peer, direction, case)`;
  `PEER_VERSIONS` says how each peer's version is found (tests/interop/conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.servers import DCMTK_ENV, SubprocessServer, free_port

IN_CI = os.environ.get("CI") == "true"
LOCAL = "127.0.0.1"
RUN_LIMIT = 30.0  # seconds before a hung client is killed (each case takes well under 1 s)

# What our side says about itself in every A-ASSOCIATE-RQ/AC (ul/constants.py).
OUR_UID = "2.25.308973838326323306269881352858131232881"
OUR_VERSION = "ECHOPROBE_010"

TO_PEER = "echoprobe → peer"
FROM_PEER = "peer → echoprobe"

NODE_DIR = Path(__file__).with_name("node")
DCMTK_BIN = Path("/usr/bin")


def matrix(peer: str, direction: str, case: str) -> pytest.MarkDecorator:
    """Mark a test as one row of docs/interop-matrix.md."""
    return pytest.mark.matrix(peer=peer, direction=direction, case=case)


def require(path: str | None, what: str) -> str:
    """`path` when it exists; else skip (fail under CI) naming `what` is missing."""
    if path and Path(path).exists():
        return path
    message = f"{what} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: interop tests must run)")
    pytest.skip(message)


def program(name: str) -> str | None:
    """`name` on PATH, else in /usr/sbin or /usr/bin (Debian's Orthanc is /usr/sbin/Orthanc)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def dcmtk(name: str) -> str | None:
    """A DCMTK tool by its installed path (our own `echoscu` may come first on PATH)."""
    path = DCMTK_BIN / name
    return str(path) if path.exists() else None


def node_modules() -> Path | None:
    """Where dcmjs-dimse is installed: $ECHOPROBE_NODE_MODULES or tests/interop/node/."""
    for root in (os.environ.get("ECHOPROBE_NODE_MODULES"), str(NODE_DIR / "node_modules")):
        if root and (Path(root) / "dcmjs-dimse").is_dir():
            return Path(root)
    return None


@dataclass(frozen=True)
class Run:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return f"{self.argv} -> {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def run(argv: Sequence[str], *, env: dict[str, str] | None = None) -> Run:
    """Run a client to completion (killed after RUN_LIMIT s)."""
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **DCMTK_ENV, **(env or {})},
        check=False,
    )
    return Run(list(argv), proc.returncode, proc.stdout, proc.stderr)


def our_echoscu(*args: str) -> Run:
    """Our `echoscu` (the DCMTK drop-in)."""
    return run([sys.executable, "-m", "echoprobe.cli.echoscu", *args])


def echoprobe(*args: str) -> Run:
    return run([sys.executable, "-m", "echoprobe", *args])


def start_server(
    make_argv: Callable[[int], list[str]],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    time_limit: float = 60.0,
    ready_timeout: float = 15.0,
) -> SubprocessServer:
    """Start a server on a free loopback port (`make_argv(port)`), retrying a taken port."""
    last: Exception | None = None
    for attempt in range(3):
        port = free_port()
        path = log.with_name(f"{log.stem}-{attempt}{log.suffix}")
        server = SubprocessServer(
            make_argv(port),
            port,
            log_path=path,
            env=env,
            time_limit=time_limit,
            ready_timeout=ready_timeout,
        )
        try:
            return server.start()
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"could not start {make_argv(0)[0]}") from last


class OurScp:
    """`echoprobe scp` as a subprocess on a free loopback port; `stop()` returns its counters
    (the line it prints when it stops)."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.server = start_server(
            lambda port: [
                sys.executable,
                "-m",
                "echoprobe",
                "scp",
                "--listen",
                f"{LOCAL}:{port}",
                "--duration",
                "60",
                *args,
            ],
            tmp / "echoprobe-scp.log",
        )
        self.port = self.server.port

    def stop(self) -> dict[str, int]:
        self.server.stop()
        return counters(self.server.log())

    def log(self) -> str:
        return self.server.log()


def counters(text: str) -> dict[str, int]:
    """The `name=value` counters of `echoprobe scp`'s last line."""
    found = re.findall(r"counters: (.*)$", text, flags=re.MULTILINE)
    if not found:
        return {}
    return {k: int(v) for k, v in (pair.split("=", 1) for pair in found[-1].split())}


def assert_counters(scp: OurScp, found: dict[str, int], **expected: int) -> None:
    """The counters named in `expected` have those values (absent means 0)."""
    got = {name: found.get(name, 0) for name in expected}
    assert got == expected, scp.log()


def version_of(argv: Sequence[str], pattern: str) -> str:
    """The first match of `pattern` (one group) in a program's version output, or "?"."""
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    found = re.search(pattern, proc.stdout + proc.stderr)
    return found.group(1) if found else "?"
