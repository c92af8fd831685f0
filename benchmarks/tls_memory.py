"""Memory per concurrent TLS association: client and SCP resident set, asyncio vs uvloop.

    uv run python -m benchmarks.tls_memory [--n 500] [--hold 8] [--loops uvloop,asyncio]

For each event loop and for plain TCP and TLS (default profile, ECDSA P-256 certificates made
by trustme), a fresh client process holds N associations open at once against an `EchoSCP`
(uvloop) in another process that delays every C-ECHO-RSP by `--hold` seconds: the client's
`VmRSS` with every association accepted, minus its `VmRSS` after a warm-up echo, divided by N,
is the cost of one association on the client; the SCP's is measured the same way from /proc.
Every process stops by itself (stdin closed, or a time limit); loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOLD_AE = "HOLD"  # called AE title whose echoes the SCP delays
_RSS = re.compile(r"^VmRSS:\s+(\d+) kB", re.MULTILINE)


def rss_kib(pid: int | None = None) -> int:
    text = Path(f"/proc/{'self' if pid is None else pid}/status").read_text()
    match = _RSS.search(text)
    return int(match.group(1)) if match else -1


def make_certificates(directory: Path) -> None:
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# -- the SCP process


async def serve(args: argparse.Namespace) -> None:
    from echoprobe.net.server import EchoSCP, Faults
    from echoprobe.net.tls import PeerVerification, TLSConfig

    certs = Path(args.certs)
    tls = None
    if args.tls:
        tls = TLSConfig(
            key_file=str(certs / "server.key"),
            cert_file=str(certs / "server.crt"),
            verify_peer=PeerVerification.IGNORE,
        )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stdin = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):
            stop.set()

    loop.add_reader(stdin, on_stdin)
    loop.call_later(args.max_seconds, stop.set)
    async with EchoSCP(
        "127.0.0.1",
        0,
        tls=tls,
        faults_by_ae={HOLD_AE: Faults(delay={"echo": args.hold})},
        idle_timeout=args.max_seconds,
        artim_timeout=30.0,
    ) as scp:
        print(json.dumps({"port": scp.port, "pid": os.getpid()}), flush=True)
        await stop.wait()


# -- the client process


async def hold_open(args: argparse.Namespace) -> dict[str, Any]:
    from echoprobe.net.association import NullObserver
    from echoprobe.net.client import probe
    from echoprobe.net.tls import TLSConfig
    from echoprobe.options import Timeouts

    tls = TLSConfig(ca_files=(str(Path(args.certs) / "ca.pem"),)) if args.tls else None
    timeouts = Timeouts(connect=30.0, tls=30.0, acse=30.0, dimse=args.hold + 30.0)
    warm = await probe("127.0.0.1", args.port, tls=tls, timeouts=timeouts)
    if not warm.ok:
        return {"error": f"warm-up failed: {warm.outcome} {warm.error}"}
    gc.collect()
    baseline = rss_kib()
    scp_baseline = rss_kib(args.scp_pid)
    accepted = 0
    all_open = asyncio.Event()

    class Counting(NullObserver):
        def association_accepted(self, *args: object) -> None:
            nonlocal accepted
            accepted += 1
            if accepted >= args_n:
                all_open.set()

    args_n = args.n

    from echoprobe.net.client import echo

    started = time.monotonic()
    tasks = [
        asyncio.create_task(
            echo(
                "127.0.0.1",
                args.port,
                called_ae=HOLD_AE,
                tls=tls,
                timeouts=timeouts,
                observer=Counting(),
            )
        )
        for _ in range(args.n)
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), args.hold - 1.0)
    all_open_after = time.monotonic() - started
    await asyncio.sleep(0.3)
    held = rss_kib()
    scp_held = rss_kib(args.scp_pid)
    held_count = accepted
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "loop": args.loop,
        "tls": args.tls,
        "n": args.n,
        "accepted_when_measured": held_count,
        "seconds_to_open_all": round(all_open_after, 2),
        "client_rss_baseline_kib": baseline,
        "client_rss_held_kib": held,
        "client_kib_per_association": round((held - baseline) / max(held_count, 1), 1),
        "scp_rss_baseline_kib": scp_baseline,
        "scp_rss_held_kib": scp_held,
        "scp_kib_per_association": round((scp_held - scp_baseline) / max(held_count, 1), 1),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }


def run_client(args: argparse.Namespace) -> None:
    loop = new_loop(args.loop)
    try:
        result = loop.run_until_complete(asyncio.wait_for(hold_open(args), args.hold + 60.0))
    finally:
        loop.close()
    print(json.dumps(result), flush=True)


# -- the driver


def measure(args: argparse.Namespace, certs: Path, loop: str, tls: bool) -> dict[str, Any]:
    me = [sys.executable, "-m", "benchmarks.tls_memory", "--certs", str(certs)]
    common = ["--hold", str(args.hold), *(["--tls"] if tls else [])]
    scp = subprocess.Popen(
        [*me, "--serve", "--max-seconds", str(args.hold + 90), *common],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert scp.stdout is not None
        hello = json.loads(scp.stdout.readline())
        done = subprocess.run(
            [
                *me,
                "--client",
                "--loop",
                loop,
                "--n",
                str(args.n),
                "--port",
                str(hello["port"]),
                "--scp-pid",
                str(hello["pid"]),
                *common,
            ],
            capture_output=True,
            text=True,
            timeout=args.hold + 120,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            return {"loop": loop, "tls": tls, "error": done.stderr[-2000:]}
        result: dict[str, Any] = json.loads(lines[-1])
        return result
    finally:
        assert scp.stdin is not None
        scp.stdin.close()
        try:
            scp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            scp.kill()  # our own child, by its Popen handle
            scp.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--hold", type=float, default=8.0)
    parser.add_argument("--loops", default="uvloop,asyncio")
    parser.add_argument("--certs")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--loop", default="uvloop")
    parser.add_argument("--port", type=int)
    parser.add_argument("--scp-pid", type=int)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        uvloop.run(serve(args))
        return
    if args.client:
        run_client(args)
        return
    with tempfile.TemporaryDirectory(prefix="tls-memory-") as tmp:
        certs = Path(tmp)
        make_certificates(certs)
        for loop in args.loops.split(","):
            for tls in (False, True):
                print(json.dumps(measure(args, certs, loop, tls)), flush=True)


if __name__ == "__main__":
    main()
