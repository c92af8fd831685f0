"""One client measurement per process: `python -m benchmarks.worker '<json spec>'`.

Run pinned to the client CPU by `common.run_worker`. Because each measurement has its own
process, `ru_maxrss` is that measurement's peak RSS and the CPU time is its own. Prints one JSON
line: successes, failures by kind, wall and CPU seconds of the measured window, peak RSS, and
the SCP process's CPU seconds over the same window (read from /proc by its PID).

Every loop here stops at `count` associations or at `duration` seconds, whichever comes first;
every association has its own timeouts, so the tail after the deadline is bounded too.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    JSON,
    cpu_busy_seconds,
    fleet_address,
    fleet_kind,
    proc_cpu_seconds,
    raise_nofile,
)

DCMTK_ECHOSCU = "/usr/bin/echoscu"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
DEVNULL_ACTIONS = [
    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
]


class Window:
    """Wall, own CPU and the SCP's CPU over the measured window."""

    def __init__(self, scp_pid: int | None) -> None:
        self.scp_pid = scp_pid
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.scp0 = proc_cpu_seconds(scp_pid) if scp_pid else None
        self.busy0 = cpu_busy_seconds()
        self.load0 = os.getloadavg()[0]
        self.result: JSON = {}

    def close(self) -> JSON:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        scp1 = proc_cpu_seconds(self.scp_pid) if self.scp_pid else None
        scp = None if self.scp0 is None or scp1 is None else scp1 - self.scp0
        busy1 = cpu_busy_seconds()
        busy = {k: busy1[k] - v for k, v in self.busy0.items() if k in busy1}
        self.result = {
            "wall_s": wall,
            "cpu_s": cpu,
            "scp_cpu_s": scp,
            "cpu_busy_s": busy,  # per CPU, everyone's: the others' share is busy minus ours
            "load1": self.load0,
        }
        return self.result


def _finish(window: JSON, done: int, errors: Counter[str], **extra: Any) -> JSON:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ok": True,
        "done": done,
        "errors": dict(errors),
        "maxrss_kb": usage.ru_maxrss,
        **window,
        **extra,
    }


# -- echoprobe


def _profiler(spec: JSON) -> Any:
    if not spec.get("profile"):
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _profile_text(profiler: Any, spec: JSON) -> str:
    import io
    import pstats

    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(int(spec["profile"]))
    return out.getvalue()


def run_echoprobe(spec: JSON) -> JSON:
    import uvloop

    from echoprobe.errors import ProbeError
    from echoprobe.net.client import echo
    from echoprobe.options import Timeouts

    targets = [(str(h), int(p)) for h, p in spec["targets"]]
    concurrency = int(spec["concurrency"])
    count = int(spec["count"])
    duration = float(spec["duration"])
    repeat = int(spec.get("repeat", 1))
    timeouts = Timeouts(connect=5, acse=5, dimse=5, release=5, total=30)

    async def main() -> JSON:
        errors: Counter[str] = Counter()
        done = 0
        started = 0
        for host, port in targets[:4]:  # warm-up: first-use costs stay out of the window
            await echo(host, port, timeouts=timeouts)
        profiler = _profiler(spec)
        window = Window(spec.get("scp_pid"))
        deadline = time.monotonic() + duration

        async def worker() -> None:
            nonlocal done, started
            while started < count and time.monotonic() < deadline:
                host, port = targets[started % len(targets)]
                started += 1
                try:
                    await echo(host, port, timeouts=timeouts, repeat=repeat)
                except ProbeError as exc:
                    errors[type(exc).__name__] += 1
                else:
                    done += 1

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
        res = window.close()
        extra = {} if profiler is None else {"profile": _profile_text(profiler, spec)}
        return _finish(res, done, errors, echoes=done * repeat, **extra)

    return uvloop.run(main())


# -- the same bytes without DICOM logic: what this machine and event loop allow


def run_raw(spec: JSON) -> JSON:
    """Our association's exact bytes on a uvloop Protocol: send the A-ASSOCIATE-RQ, the C-ECHO-RQ
    and the A-RELEASE-RQ, each after the previous answer is whole, and check only each answer's
    PDU type. No parsing, validation, deadlines or results: the limit a Python client on this
    event loop can approach (like the "C replay" of docs/performance.md, one level up)."""
    import uvloop

    from echoprobe.dimse.echo import echo_request_pdus
    from echoprobe.net.procedure import request_for
    from echoprobe.options import AssociationOptions

    request = request_for(AssociationOptions())[1]
    echo_rq = echo_request_pdus(1, 1, 16372)
    release_rq = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    sends = (echo_rq, release_rq, None)
    expected = (0x02, 0x04, 0x06)
    targets = [(str(h), int(p)) for h, p in spec["targets"]]
    concurrency = int(spec["concurrency"])
    count = int(spec["count"])
    duration = float(spec["duration"])

    class Raw(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[bool]) -> None:
            self.done = done
            self.buffer = b""
            self.stage = 0
            self.transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            transport.write(request)

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer + data
            while len(buffer) >= 6:
                end = 6 + int.from_bytes(buffer[2:6], "big")
                if len(buffer) < end:
                    break
                if buffer[0] != expected[self.stage]:
                    self.transport.close()
                    self.done.set_result(False)
                    return
                buffer = buffer[end:]
                following = sends[self.stage]
                self.stage += 1
                if following is None:
                    self.transport.close()
                    self.done.set_result(True)
                    return
                self.transport.write(following)
            self.buffer = buffer

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(False)

    async def main() -> JSON:
        loop = asyncio.get_running_loop()
        errors: Counter[str] = Counter()
        done = 0
        started = 0

        async def one(host: str, port: int) -> bool:
            future: asyncio.Future[bool] = loop.create_future()
            async with asyncio.timeout(5):
                await loop.create_connection(lambda: Raw(future), host, port)
                return await future

        for host, port in targets[:4]:
            await one(host, port)
        window = Window(spec.get("scp_pid"))
        deadline = time.monotonic() + duration

        async def worker() -> None:
            nonlocal done, started
            while started < count and time.monotonic() < deadline:
                host, port = targets[started % len(targets)]
                started += 1
                try:
                    ok = await one(host, port)
                except (OSError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if ok:
                    done += 1
                else:
                    errors["unexpected_pdu"] += 1

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
        return _finish(window.close(), done, errors)

    return uvloop.run(main())


# -- pynetdicom, in-process, one thread per concurrent association


def _pynetdicom_ae(concurrency: int, timeout: float) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title="ECHOSCU")
    ae.add_requested_context(VERIFICATION_SOP_CLASS)
    ae.maximum_associations = max(concurrency + 8, 10)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def _run_threads(concurrency: int, body: Callable[[], None], limit: float) -> None:
    threads = [threading.Thread(target=body, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    end = time.monotonic() + limit
    for thread in threads:
        thread.join(max(end - time.monotonic(), 0.0))


def run_pynetdicom(spec: JSON) -> JSON:
    targets = [(str(h), int(p)) for h, p in spec["targets"]]
    concurrency = int(spec["concurrency"])
    count = int(spec["count"])
    duration = float(spec["duration"])
    repeat = int(spec.get("repeat", 1))
    ae = _pynetdicom_ae(concurrency, 5.0)
    lock = threading.Lock()
    errors: Counter[str] = Counter()
    state = {"done": 0, "started": 0}

    def one(host: str, port: int) -> str | None:
        assoc = ae.associate(host, port)
        if not assoc.is_established:
            return "not_established"
        try:
            for _ in range(repeat):
                status = assoc.send_c_echo()
                if not status or status.Status != 0:
                    return "echo_failed"
        finally:
            if assoc.is_established:
                assoc.release()
        return None

    for host, port in targets[:2]:
        one(host, port)
    window = Window(spec.get("scp_pid"))
    deadline = time.monotonic() + duration

    def body() -> None:
        while True:
            with lock:
                if state["started"] >= count or time.monotonic() >= deadline:
                    return
                host, port = targets[state["started"] % len(targets)]
                state["started"] += 1
            error = one(host, port)
            with lock:
                if error is None:
                    state["done"] += 1
                else:
                    errors[error] += 1

    _run_threads(concurrency, body, duration + 60)
    done = state["done"]
    return _finish(window.close(), done, errors, echoes=done * repeat)


# -- DCMTK echoscu, one process per association


def _spawn(argv: list[str], env: dict[str, str]) -> int:
    return os.posix_spawn(argv[0], argv, env, file_actions=DEVNULL_ACTIONS)


def _dcmtk_env(nodelay: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env


class ProcessPool:
    """Up to `concurrency` child processes at once; CPU and peak RSS from each one's wait4."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.running: dict[int, Any] = {}
        self.children_cpu = 0.0
        self.children_maxrss = 0
        self.ok = 0
        self.failed: Counter[str] = Counter()

    def start(self, argv: list[str], env: dict[str, str], tag: Any = None) -> None:
        while len(self.running) >= self.concurrency:
            self.reap_one()
        self.running[_spawn(argv, env)] = tag

    def reap_one(self) -> tuple[Any, bool]:
        pid, status, usage = os.wait4(-1, 0)
        tag = self.running.pop(pid, None)
        self.children_cpu += usage.ru_utime + usage.ru_stime
        self.children_maxrss = max(self.children_maxrss, usage.ru_maxrss)
        good = os.waitstatus_to_exitcode(status) == 0
        if good:
            self.ok += 1
        else:
            self.failed[f"exit_{os.waitstatus_to_exitcode(status)}"] += 1
        return tag, good

    def drain(self) -> None:
        while self.running:
            self.reap_one()


def _echoscu_argv(host: str, port: int, timeout: int, repeat: int = 1) -> list[str]:
    argv = [DCMTK_ECHOSCU, "-to", str(timeout), "-ta", str(timeout), "-td", str(timeout)]
    if repeat > 1:
        argv += ["--repeat", str(repeat)]
    return [*argv, host, str(port)]


def run_dcmtk(spec: JSON) -> JSON:
    targets = [(str(h), int(p)) for h, p in spec["targets"]]
    concurrency = int(spec["concurrency"])
    count = int(spec["count"])
    duration = float(spec["duration"])
    repeat = int(spec.get("repeat", 1))
    env = _dcmtk_env(bool(spec.get("nodelay")))
    pool = ProcessPool(concurrency)
    window = Window(spec.get("scp_pid"))
    deadline = time.monotonic() + duration
    started = 0
    while started < count and time.monotonic() < deadline:
        host, port = targets[started % len(targets)]
        pool.start(_echoscu_argv(host, port, 10, repeat), env)
        started += 1
    pool.drain()
    return _finish(
        window.close(),
        pool.ok,
        pool.failed,
        echoes=pool.ok * repeat,
        children_cpu_s=pool.children_cpu,
        children_maxrss_kb=pool.children_maxrss,
    )


# -- W3: a fleet sweep


def _fleet(spec: JSON) -> list[tuple[int, str, int]]:
    port = int(spec["port"])
    return [(i, fleet_address(i), port) for i in range(int(spec["peers"]))]


EXPECTED = {"ok": "success", "refuse": "connection_refused", "silent": "acse_timeout"}


def run_fleet_echoprobe(spec: JSON) -> JSON:
    """The library's `sweep()` when it exists, else `probe()` from a pool of worker tasks."""
    import uvloop

    from echoprobe.options import Timeouts

    fleet = _fleet(spec)
    timeout = float(spec["timeout"])
    timeouts = Timeouts(connect=timeout, acse=timeout, dimse=timeout, release=timeout)

    async def main() -> JSON:
        outcomes: Counter[str] = Counter()
        kinds = {(host, port): fleet_kind(index) for index, host, port in fleet}
        mismatched = 0
        profiler = _profiler(spec)
        window = Window(spec.get("scp_pid"))
        async with asyncio.timeout(float(spec["duration"])):
            if spec.get("via") == "probe_pool":
                via = "probe() from a pool of tasks"
                results = await _probe_pool(fleet, int(spec["concurrency"]), timeouts)
            else:
                via, results = await _sweep(fleet, int(spec["concurrency"]), timeouts)
        examples: dict[str, list[str]] = {}
        for host, port, outcome, error in results:
            outcomes[outcome] += 1
            if outcome != EXPECTED[kinds[(host, port)]]:
                mismatched += 1
                seen = examples.setdefault(outcome, [])
                if len(seen) < 3:
                    seen.append(f"{host}:{port} {error}")
        res = window.close()
        if profiler is not None:
            res["profile"] = _profile_text(profiler, spec)
        return _finish(
            res,
            outcomes.get("success", 0),
            Counter({k: v for k, v in outcomes.items() if k != "success"}),
            outcomes=dict(outcomes),
            mismatched=mismatched,
            unexpected=examples,
            via=via,
        )

    return uvloop.run(main())


async def _sweep(
    fleet: list[tuple[int, str, int]], concurrency: int, timeouts: Any
) -> tuple[str, list[tuple[str, int, str, str | None]]]:
    try:
        return "echoprobe.fleet.sweep.sweep()", await _library_sweep(fleet, concurrency, timeouts)
    except (ImportError, TypeError, AttributeError) as exc:
        why = f"sweep() not usable here: {type(exc).__name__}: {exc}"
    return f"probe() from a pool of tasks ({why})", await _probe_pool(fleet, concurrency, timeouts)


async def _library_sweep(
    fleet: list[tuple[int, str, int]], concurrency: int, timeouts: Any
) -> list[tuple[str, int, str, str | None]]:
    from echoprobe.fleet.sweep import sweep  # type: ignore[import-not-found,unused-ignore]
    from echoprobe.fleet.targets import Target  # type: ignore[import-not-found,unused-ignore]

    targets = [Target(host=host, port=port) for _, host, port in fleet]
    out: list[tuple[str, int, str, str | None]] = []
    async with sweep(targets, concurrency=concurrency, timeouts=timeouts) as results:
        async for result in results:
            out.append((result.host, result.port, str(result.outcome.value), result.error))
    return out


async def _probe_pool(
    fleet: list[tuple[int, str, int]], concurrency: int, timeouts: Any
) -> list[tuple[str, int, str, str | None]]:
    from echoprobe.net.client import probe

    todo = iter(fleet)
    out: list[tuple[str, int, str, str | None]] = []

    async def worker() -> None:
        for _, host, port in todo:  # shared iterator: each peer is taken once
            result = await probe(host, port, timeouts=timeouts)
            out.append((host, port, str(result.outcome.value), result.error))

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, len(fleet))):
            tg.create_task(worker())
    return out


def run_fleet_dcmtk(spec: JSON) -> JSON:
    fleet = _fleet(spec)
    timeout = int(spec["timeout"])
    pool = ProcessPool(int(spec["concurrency"]))
    env = _dcmtk_env(bool(spec.get("nodelay")))
    window = Window(spec.get("scp_pid"))
    mismatched = 0
    deadline = time.monotonic() + float(spec["duration"])
    for index, host, port in fleet:
        if time.monotonic() >= deadline:
            break
        pool.start(_echoscu_argv(host, port, timeout), env, tag=index)
    while pool.running:
        index, good = pool.reap_one()
        if good != (fleet_kind(index) == "ok"):
            mismatched += 1
    return _finish(
        window.close(),
        pool.ok,
        pool.failed,
        mismatched=mismatched,
        children_cpu_s=pool.children_cpu,
        children_maxrss_kb=pool.children_maxrss,
    )


def run_fleet_pynetdicom(spec: JSON) -> JSON:
    fleet = _fleet(spec)
    concurrency = int(spec["concurrency"])
    ae = _pynetdicom_ae(concurrency, float(spec["timeout"]))
    lock = threading.Lock()
    errors: Counter[str] = Counter()
    state = {"done": 0, "next": 0, "mismatched": 0}
    window = Window(spec.get("scp_pid"))
    deadline = time.monotonic() + float(spec["duration"])

    def body() -> None:
        while True:
            with lock:
                if state["next"] >= len(fleet) or time.monotonic() >= deadline:
                    return
                index, host, port = fleet[state["next"]]
                state["next"] += 1
            assoc = ae.associate(host, port)
            good = False
            if assoc.is_established:
                status = assoc.send_c_echo()
                good = bool(status) and status.Status == 0
                assoc.release()
            with lock:
                if good:
                    state["done"] += 1
                else:
                    errors["failed"] += 1
                if good != (fleet_kind(index) == "ok"):
                    state["mismatched"] += 1

    _run_threads(concurrency, body, float(spec["duration"]) + 30)
    return _finish(window.close(), state["done"], errors, mismatched=state["mismatched"])


# -- W5: single-shot start-up, interleaved variants


def run_startup(spec: JSON) -> JSON:
    variants: list[JSON] = spec["variants"]
    reps = int(spec["reps"])
    deadline = time.monotonic() + float(spec["duration"])
    samples: dict[str, list[JSON]] = {v["name"]: [] for v in variants}
    window = Window(spec.get("scp_pid"))
    children_cpu = 0.0
    for _ in range(reps):
        if time.monotonic() >= deadline:
            break
        for variant in variants:  # A B C A B C …
            env = dict(os.environ)
            env.pop("TCP_NODELAY", None)
            env.update(variant.get("env", {}))
            t0 = time.perf_counter()
            pid = _spawn(list(variant["argv"]), env)
            _, status, usage = os.wait4(pid, 0)
            wall = time.perf_counter() - t0
            children_cpu += usage.ru_utime + usage.ru_stime
            samples[variant["name"]].append(
                {
                    "wall_s": wall,
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                    "maxrss_kb": usage.ru_maxrss,
                    "rc": os.waitstatus_to_exitcode(status),
                }
            )
    return {"ok": True, "samples": samples, **window.close(), "children_cpu_s": children_cpu}


KINDS: dict[str, Callable[[JSON], JSON]] = {
    "echoprobe": run_echoprobe,
    "raw": run_raw,
    "pynetdicom": run_pynetdicom,
    "dcmtk": run_dcmtk,
    "fleet_echoprobe": run_fleet_echoprobe,
    "fleet_dcmtk": run_fleet_dcmtk,
    "fleet_pynetdicom": run_fleet_pynetdicom,
    "startup": run_startup,
}


def main() -> None:
    spec: JSON = json.loads(sys.argv[1])
    raise_nofile()
    try:
        result = KINDS[spec["kind"]](spec)
    except Exception as exc:  # reported as a failed cell, not a lost run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
