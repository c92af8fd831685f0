"""`echo()` and `probe()` inside trio (the portable anyio driver), against the asyncio EchoSCP.

The SCP is asyncio-only, so each test runs it on its own event loop in a background thread
(`ThreadedSCP`); the client side runs under `trio.run` (or `anyio.run`). Loopback only, every
wait bounded, and every SCP stops by itself after `_SCP_LIFETIME` even if a test never stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import pytest
import sniffio
import trio

from echoprobe.errors import ProbeError
from echoprobe.net import client, portable
from echoprobe.net.association import AssociationOutcome
from echoprobe.net.portable import run_echo_portable
from echoprobe.net.server import EchoSCP, Faults
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.results import EchoResult, Outcome, ProbeResult
from tests.support.fake_scp import A_ABORT, Accept, FakeSCP, ReadEcho, ReadPDU, Stall

LOOPBACK = "127.0.0.1"
_SCP_LIFETIME = 60.0  # hard bound on any SCP thread, stopped or not
_START_TIMEOUT = 10.0
_FLOW_KEYS = {"resolve", "connect", "associate", "echo", "release", "total"}


class ThreadedSCP:
    """An `EchoSCP` on a private asyncio loop in a daemon thread (`with ThreadedSCP() as s`)."""

    def __init__(self, faults: Faults | None = None, *, idle_timeout: float = 30.0) -> None:
        self._faults = faults
        self._idle_timeout = idle_timeout
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.scp: EchoSCP | None = None
        self._thread = threading.Thread(target=self._run, name="echo-scp", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with EchoSCP(
            host=LOOPBACK, port=0, faults=self._faults, idle_timeout=self._idle_timeout
        ) as scp:
            self.scp = scp
            self._ready.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SCP_LIFETIME):
                    await self._stop.wait()

    @property
    def port(self) -> int:
        assert self.scp is not None
        return self.scp.port

    def __enter__(self) -> ThreadedSCP:
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self.scp is None:
            raise RuntimeError(f"the SCP did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended by itself
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(_START_TIMEOUT)
        assert not self._thread.is_alive(), "the SCP thread did not stop"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture
def start_threaded_scp() -> Iterator[Callable[..., ThreadedSCP]]:
    """Start `ThreadedSCP`s (any faults); all are stopped when the test ends."""
    started: list[ThreadedSCP] = []

    def start(faults: Faults | None = None) -> ThreadedSCP:
        scp = ThreadedSCP(faults).__enter__()
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def threaded_scp(start_threaded_scp: Callable[..., ThreadedSCP]) -> ThreadedSCP:
    """A well-behaved SCP."""
    return start_threaded_scp()


def _wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll `condition` (state owned by the SCP thread) for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _client_sockets_to(port: int) -> int:
    """Open TCP sockets of this process whose remote port is `port` (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir() or not Path("/proc/net/tcp").exists(),
    reason="counting open sockets needs Linux /proc",
)


def _check_repeat_100(result: EchoResult, scp: ThreadedSCP) -> None:
    assert len(result.replies) == 100
    assert [r.message_id for r in result.replies] == list(range(1, 101))
    assert all(r.status == 0 for r in result.replies)
    assert result.ok
    assert result.release == "released"
    assert set(result.timings_ms) == _FLOW_KEYS
    assert result.peer.address == f"{LOOPBACK}:{scp.port}"
    assert scp.scp is not None
    assert _wait_until(lambda: scp.scp is not None and scp.scp.counters.releases == 1)
    assert scp.scp.counters.echoes == 100
    assert scp.scp.counters.associations == 1


# --- success -----------------------------------------------------------------------------


def test_echo_under_trio_repeat_100(threaded_scp: ThreadedSCP) -> None:
    async def main() -> EchoResult:
        assert trio.lowlevel.current_task() is not None
        return await client.echo(LOOPBACK, threaded_scp.port, repeat=100)

    _check_repeat_100(trio.run(main), threaded_scp)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_echo_through_anyio_run(
    threaded_scp: ThreadedSCP, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `anyio.run`: asyncio still takes the asyncio driver, trio the portable one."""
    calls: list[str] = []

    async def spy(*args: Any, **kwargs: Any) -> AssociationOutcome:
        calls.append(sniffio.current_async_library())
        return await run_echo_portable(*args, **kwargs)

    monkeypatch.setattr(portable, "run_echo_portable", spy)

    async def main() -> EchoResult:
        return await client.echo(LOOPBACK, threaded_scp.port, repeat=100)

    _check_repeat_100(anyio.run(main, backend=backend), threaded_scp)
    assert calls == ([] if backend == "asyncio" else ["trio"])


def test_portable_driver_on_the_asyncio_backend(threaded_scp: ThreadedSCP) -> None:
    """The portable driver is anyio code: it runs on asyncio too (the same byte moving)."""
    timings: dict[str, float] = {}
    peer: dict[str, object] = {}

    async def main() -> list[int]:
        outcome = await run_echo_portable(
            LOOPBACK,
            threaded_scp.port,
            AssociationOptions(repeat=3),
            Timeouts(total=10.0),
            timings=timings,
            peer=peer,
        )
        assert outcome.release == "released"
        return [r.status for r in outcome.replies]

    assert anyio.run(main, backend="asyncio") == [0, 0, 0]
    assert set(timings) == _FLOW_KEYS - {"total"}
    assert peer == {"address": f"{LOOPBACK}:{threaded_scp.port}"}


def test_echo_with_a_host_name_resolves_under_trio(threaded_scp: ThreadedSCP) -> None:
    async def main() -> EchoResult:
        return await client.echo("localhost", threaded_scp.port)

    try:
        socket.getaddrinfo("localhost", threaded_scp.port, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("localhost does not resolve here")
    result = trio.run(main)
    assert result.ok
    assert "resolve" in result.timings_ms


# --- failures, classified by probe() -------------------------------------------------------


def test_probe_connection_refused_under_trio() -> None:
    # A bound socket that does not listen: connecting to it is refused, and no other
    # process can take the port while the test runs.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        port = holder.getsockname()[1]

        async def main() -> ProbeResult:
            return await client.probe(LOOPBACK, port, timeouts=Timeouts(connect=2.0))

        result = trio.run(main)
    assert result.outcome is Outcome.CONNECTION_REFUSED
    assert result.phase == "connect"
    assert "resolve" in result.timings_ms
    assert "total" in result.timings_ms
    assert "connect" not in result.timings_ms


def test_echo_connection_refused_raises_under_trio() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        port = holder.getsockname()[1]

        async def main() -> None:
            await client.echo(LOOPBACK, port)

        with pytest.raises(ProbeError) as caught:
            trio.run(main)
    assert caught.value.outcome == "connection_refused"


def test_probe_reject_under_trio(start_threaded_scp: Callable[..., ThreadedSCP]) -> None:
    scp = start_threaded_scp(Faults(reject=(1, 1, 7)))

    async def main() -> ProbeResult:
        return await client.probe(LOOPBACK, scp.port)

    result = trio.run(main)
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert result.phase == "associate"
    assert result.detail["result"] == 1
    assert result.detail["source"] == 1
    assert result.detail["reason"] == 7
    assert {"resolve", "connect", "total"} <= set(result.timings_ms)


def test_probe_silent_scp_acse_timeout_under_trio(
    start_threaded_scp: Callable[..., ThreadedSCP],
) -> None:
    scp = start_threaded_scp(Faults(silent_at="associate"))
    acse = 0.5

    async def main() -> tuple[ProbeResult, float]:
        started = time.perf_counter()
        result = await client.probe(LOOPBACK, scp.port, timeouts=Timeouts(acse=acse))
        return result, time.perf_counter() - started

    result, elapsed = trio.run(main)
    assert result.outcome is Outcome.ACSE_TIMEOUT
    assert result.phase == "associate"
    assert result.detail["timer"] == "phase"
    assert acse <= elapsed < acse + 0.5, elapsed
    assert _wait_until(lambda: scp.scp is not None and not scp.scp._open)


def _stalling_scp(stall_at: str) -> FakeSCP:
    """A raw SCP that stops answering at `stall_at` and records every PDU it gets (an
    `EchoSCP` with `silent_at` also stops reading, so it cannot show what we sent)."""
    steps = (
        [ReadPDU(), Stall()]
        if stall_at == "associate"
        else [ReadPDU(), Accept(), ReadEcho(), Stall()]
    )
    return FakeSCP(steps, time_limit=_SCP_LIFETIME)


def _abort_received(scp: FakeSCP) -> bool:
    return any(r.pdu_type == A_ABORT for r in scp.received)


def test_probe_total_deadline_under_trio() -> None:
    with _stalling_scp("echo") as scp:

        async def main() -> tuple[ProbeResult, float]:
            started = time.perf_counter()
            result = await client.probe(LOOPBACK, scp.port, timeouts=Timeouts(dimse=5.0, total=0.4))
            return result, time.perf_counter() - started

        result, elapsed = trio.run(main)
        # Given up after the A-ASSOCIATE-AC: we sent A-ABORT, then closed.
        assert _wait_until(lambda: not scp.running or _abort_received(scp))
    assert result.outcome is Outcome.DEADLINE_EXCEEDED
    assert result.phase == "echo"
    assert result.detail["timer"] == "total"
    assert 0.4 <= elapsed < 0.9, elapsed
    assert _abort_received(scp)
    assert not scp.failures


_SHORT = Timeouts(connect=2.0, acse=0.5, dimse=0.5, release=0.5)
PARITY = {
    "success": (Faults(), _SHORT),
    "abort_at_associate": (Faults(abort_at="associate"), _SHORT),
    "abort_at_echo": (Faults(abort_at="echo"), _SHORT),
    "abort_at_release": (Faults(abort_at="release"), _SHORT),
    "close_at_connect": (Faults(close_at="connect"), _SHORT),
    "close_at_echo": (Faults(close_at="echo"), _SHORT),
    "close_at_release": (Faults(close_at="release"), _SHORT),
    "silent_at_echo": (Faults(silent_at="echo"), _SHORT),
    "silent_at_release": (Faults(silent_at="release"), _SHORT),
    "silent_socket_timeout": (
        Faults(silent_at="echo"),
        Timeouts(acse=0.5, dimse=None, release=0.5, socket=0.3),
    ),
    "silent_total_deadline": (Faults(silent_at="echo"), Timeouts(dimse=5.0, total=0.4)),
    "status": (Faults(status=0x0110, error_comment="refused on purpose"), _SHORT),
    "no_context": (Faults(reject_contexts=True), _SHORT),
    "release_collision": (Faults(release_collision=True), _SHORT),
    "trickle": (Faults(trickle=0.001), _SHORT),
    "reject_transient": (Faults(reject=(2, 1, 2)), _SHORT),
}


def _comparable(result: ProbeResult) -> tuple[object, ...]:
    detail = {k: v for k, v in result.detail.items() if k != "release_error"}
    return (
        result.outcome,
        result.phase,
        sorted(result.timings_ms),
        result.echoes,
        result.status,
        detail,
        result.error,
    )


@pytest.mark.parametrize("scenario", sorted(PARITY))
def test_probe_classifies_alike_under_trio_and_asyncio(
    start_threaded_scp: Callable[..., ThreadedSCP], scenario: str
) -> None:
    """The portable driver and the asyncio driver give the same record for each peer."""
    faults, timeouts = PARITY[scenario]
    records = {}
    for backend in ("asyncio", "trio"):
        scp = start_threaded_scp(faults)

        async def main(port: int = scp.port) -> ProbeResult:
            return await client.probe(LOOPBACK, port, timeouts=timeouts, repeat=3)

        records[backend] = _comparable(anyio.run(main, backend=backend))
    assert records["trio"] == records["asyncio"]


# --- cancellation ---------------------------------------------------------------------------


@needs_proc
@pytest.mark.parametrize("stall_at", ["associate", "echo"])
def test_cancelled_echo_aborts_and_leaves_no_socket_under_trio(stall_at: str) -> None:
    with _stalling_scp(stall_at) as scp:

        async def main() -> tuple[bool, int]:
            with trio.move_on_after(0.3) as scope:
                await client.echo(LOOPBACK, scp.port)
            # Nothing may be left open by the time the cancelled call has returned.
            return scope.cancelled_caught, _client_sockets_to(scp.port)

        started = time.perf_counter()
        cancelled, sockets_after = trio.run(main)
        elapsed = time.perf_counter() - started
        # The SCP's connection ends on our A-ABORT (or EOF): its thread then stops by itself.
        assert _wait_until(lambda: not scp.running, timeout=5.0)
    assert cancelled
    assert sockets_after == 0
    assert elapsed < 0.3 + 0.5, elapsed
    # A-ABORT is the last thing we sent (PS3.8 Table 9-10: A-ABORT request in Sta5 and Sta6).
    assert scp.received[-1].pdu_type == A_ABORT
    assert scp.received[-1].raw[:2] == bytes([A_ABORT, 0])
    assert not scp.failures


@needs_proc
def test_cancel_during_connect_leaves_no_socket_under_trio(threaded_scp: ThreadedSCP) -> None:
    async def main() -> tuple[bool, int]:
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.echo(LOOPBACK, threaded_scp.port)
        return scope.cancelled_caught, _client_sockets_to(threaded_scp.port)

    cancelled, sockets_after = trio.run(main)
    assert cancelled
    assert sockets_after == 0


@needs_proc
def test_sockets_are_closed_after_success_under_trio(threaded_scp: ThreadedSCP) -> None:
    async def main() -> int:
        for _ in range(5):
            result = await client.echo(LOOPBACK, threaded_scp.port)
            assert result.ok
        return _client_sockets_to(threaded_scp.port)

    assert trio.run(main) == 0
