"""Shared fixtures.

* `async def` tests run on a fresh event loop each (uvloop unless the `loop_kind` fixture is
  parametrized, or `ECHOPROBE_TEST_LOOP=asyncio` is set), bounded by `ASYNC_TEST_TIMEOUT`.
* `scp_factory` / `echo_scp`: our `EchoSCP` in a thread with its own loop, stopped at teardown.
* `storescp_factory`: DCMTK `storescp` as a subprocess on a free loopback port, stopped by PID.
* Tests marked `interop` need DCMTK: they are skipped when it is missing, but fail under CI.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import (
    DCMTK_ENV,
    SubprocessServer,
    ThreadedEchoSCP,
    free_port,
    run_async,
)

ASYNC_TEST_TIMEOUT = 30.0
DEFAULT_LOOP = os.environ.get("ECHOPROBE_TEST_LOOP", "uvloop")
IN_CI = os.environ.get("CI") == "true"

DCMTK_STORESCP = Path("/usr/bin/storescp")
DCMTK_ECHOSCU = Path("/usr/bin/echoscu")


# --- async tests ---------------------------------------------------------------------------------


@pytest.fixture
def loop_kind(request: pytest.FixtureRequest) -> str:
    """The event loop an `async def` test runs on; parametrize it indirectly to choose."""
    return str(getattr(request, "param", DEFAULT_LOOP))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if pyfuncitem.get_closest_marker("anyio") is not None:
        return None  # anyio's own pytest plugin runs these (asyncio or trio backend)
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    kind = str(pyfuncitem.funcargs.get("loop_kind", DEFAULT_LOOP))
    run_async(pyfuncitem.obj(**kwargs), kind=kind, timeout=ASYNC_TEST_TIMEOUT)
    return True


# --- DCMTK ---------------------------------------------------------------------------------------


def require_dcmtk(*binaries: Path) -> None:
    """Skip when a DCMTK binary is missing; fail instead when running under CI."""
    missing = [str(b) for b in binaries if not b.exists()]
    if not missing:
        return
    message = f"DCMTK not installed: {', '.join(missing)} missing"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: interop tests must run)")
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("interop") is not None:
        require_dcmtk(DCMTK_STORESCP, DCMTK_ECHOSCU)


# --- servers -------------------------------------------------------------------------------------


ScpFactory = Callable[..., ThreadedEchoSCP]
StorescpFactory = Callable[..., SubprocessServer]


@pytest.fixture
def scp_factory() -> Iterator[ScpFactory]:
    """`scp_factory(faults=..., **EchoSCP options)` → a started `ThreadedEchoSCP`."""
    started: list[ThreadedEchoSCP] = []

    def start(**kwargs: Any) -> ThreadedEchoSCP:
        scp = ThreadedEchoSCP(**kwargs).start()
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def echo_scp(scp_factory: ScpFactory) -> ThreadedEchoSCP:
    """A well-behaved `EchoSCP` on 127.0.0.1."""
    return scp_factory()


@pytest.fixture
def storescp_factory(tmp_path: Path) -> Iterator[StorescpFactory]:
    """`storescp_factory(*extra_args, aet="STORESCP")` → DCMTK storescp, listening."""
    started: list[SubprocessServer] = []

    def start(*extra: str, aet: str = "STORESCP") -> SubprocessServer:
        require_dcmtk(DCMTK_STORESCP)
        last: Exception | None = None
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            port = free_port()
            out_dir = tmp_path / f"storescp-{len(started)}-{attempt}"
            out_dir.mkdir()
            argv = [str(DCMTK_STORESCP), "-od", str(out_dir), "+xa", "-aet", aet, *extra]
            server = SubprocessServer(
                [*argv, str(port)], port, log_path=out_dir / "log.txt", env=DCMTK_ENV
            )
            started.append(server)
            try:
                return server.start()
            except RuntimeError as exc:
                last = exc
        raise RuntimeError("could not start storescp") from last

    yield start
    for server in started:
        server.stop()
