"""Live peers for integration and interop tests: our `EchoSCP` in a thread, DCMTK in a process.

Rules of this module:

* Loopback only. Every server stops by itself: the threaded SCP after `time_limit`, a subprocess
  under `/usr/bin/timeout` (and a timer of ours) after its own limit, so a crashed test run leaves
  nothing listening.
* A subprocess is only ever stopped through its own `Popen` object, by PID.
* Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from echoprobe.net.server import EchoSCP, Faults, SCPCounters

T = TypeVar("T")

TIMEOUT_BIN = Path("/usr/bin/timeout")

# DCMTK 3.6.7 as installed here leaves Nagle's algorithm on unless TCP_NODELAY is set in its
# environment: each C-ECHO then waits for a delayed ACK (measured: 45-90 ms per echo, so 1000
# echoes take a minute; with TCP_NODELAY=1 they take 0.1 s).
DCMTK_ENV = {"TCP_NODELAY": "1"}


# --- event loops ---------------------------------------------------------------------------------


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop factory for "asyncio" or "uvloop"."""
    if kind == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    if kind == "asyncio":
        return asyncio.new_event_loop
    raise ValueError(f"unknown event loop kind {kind!r}")


def run_async(coro: Coroutine[Any, Any, T], *, kind: str = "uvloop", timeout: float = 30.0) -> T:
    """Run `coro` to completion on a fresh loop of `kind`, failing after `timeout` seconds."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(bounded())


# --- small helpers -------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (another process could still take it: callers retry)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; return its last value."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_listening(port: int) -> bool | None:
    """Whether some socket listens on TCP `port` (from /proc/net/tcp*, so nothing connects to
    it and the server logs nothing); None when /proc is not available."""
    found: bool | None = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = bool(found)
        for row in rows:
            fields = row.split()
            if (
                len(fields) > 3
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                return True
    return found


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident set (`VmRSS`) or its peak (`VmHWM`), in bytes (Linux)."""
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not in /proc/self/status")
    return int(match.group(1)) * 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- EchoSCP in a thread with its own loop -------------------------------------------------------


class ThreadedEchoSCP:
    """`EchoSCP` served by its own event loop in a daemon thread, for blocking peers (DCMTK,
    pynetdicom) and for clients on another loop. Stops at `stop()` or after `time_limit`."""

    def __init__(
        self,
        *,
        host: str | Sequence[str] = "127.0.0.1",
        faults: Faults | None = None,
        loop: str = "uvloop",
        time_limit: float = 60.0,
        **options: Any,
    ) -> None:
        self._host = host
        self._faults = faults
        self._options = options
        self._kind = loop
        self.time_limit = time_limit
        self.scp: EchoSCP | None = None
        self.port = 0
        self.addresses: list[tuple[str, int]] = []
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="echo-scp", daemon=True)

    @property
    def counters(self) -> SCPCounters:
        assert self.scp is not None
        return self.scp.counters

    def start(self, timeout: float = 10.0) -> Self:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("EchoSCP did not start in time")
        if self.error is not None:
            raise RuntimeError("EchoSCP failed to start") from self.error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended by itself
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.ident is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("EchoSCP thread did not stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory(self._kind)) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported by start(); a thread must not die silently
            self.error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        scp = EchoSCP(self._host, 0, faults=self._faults, **self._options)
        await scp.start()
        self.scp = scp
        self.addresses = scp.addresses
        self.port = scp.port
        self._ready.set()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.time_limit):
                    await self._stopping.wait()
        finally:
            await scp.close()


# --- subprocess servers --------------------------------------------------------------------------


class SubprocessServer:
    """A server process listening on `port`: started, awaited until it accepts connections,
    and stopped by PID (SIGTERM, then SIGKILL). It also ends by itself after `time_limit`."""

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        *,
        log_path: Path,
        host: str = "127.0.0.1",
        time_limit: float = 120.0,
        ready_timeout: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.host = host
        self.log_path = log_path
        self.time_limit = time_limit
        self.ready_timeout = ready_timeout
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None

    def start(self) -> Self:
        argv = self.argv
        if TIMEOUT_BIN.exists():  # the limit holds even if this Python process dies
            argv = [str(TIMEOUT_BIN), "-k", "5", str(int(self.time_limit)), *argv]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        self._timer = threading.Timer(self.time_limit + 10.0, self.stop)
        self._timer.daemon = True
        self._timer.start()
        end = time.monotonic() + self.ready_timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited with {self.proc.returncode}: {self.log()}"
                )
            listening = port_listening(self.port)
            if listening is None:
                listening = port_accepts(self.host, self.port)
            if listening:
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.argv[0]} did not listen on {self.port} in time: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
