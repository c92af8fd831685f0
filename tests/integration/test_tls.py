"""DICOM over TLS, end to end on loopback: our `echo()`/`probe()` against `EchoSCP(tls=...)`
(and against peers that misbehave), on uvloop and plain asyncio; the blocking driver's
handshake too. Every failure must give its outcome within its timeout + 0.5 s."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from echoprobe.errors import TLSHandshakeTimeout, TLSVerifyFailed
from echoprobe.net import blocking
from echoprobe.net.client import echo, probe
from echoprobe.net.server import EchoSCP
from echoprobe.net.tls import PeerVerification, TLSConfig, TLSProfile, build_context
from echoprobe.options import Timeouts
from echoprobe.results import Outcome
from tests.integration.test_echo_classification import wait_until
from tests.support.tls_certs import CertKit, shared_kit

LOOPS = pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"], indirect=True)
SLACK = 0.5  # seconds a failure may take beyond its timeout


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def server_config(
    kit: CertKit, *, key: str | None = None, cert: str | None = None, **options: Any
) -> TLSConfig:
    options.setdefault("verify_peer", PeerVerification.IGNORE)
    return TLSConfig(key_file=key or kit.server_key, cert_file=cert or kit.server_cert, **options)


@contextlib.asynccontextmanager
async def tls_scp(tls: TLSConfig | ssl.SSLContext | None) -> AsyncIterator[EchoSCP]:
    async with EchoSCP("127.0.0.1", 0, tls=tls, idle_timeout=10.0, artim_timeout=5.0) as scp:
        yield scp


@contextlib.asynccontextmanager
async def silent_peer() -> AsyncIterator[int]:
    """Accepts TCP and never says a word (a TLS handshake stall)."""
    stop = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await stop.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        stop.set()
        server.close()
        await server.wait_closed()


# --- success, profile by profile -------------------------------------------------------------


@LOOPS
@pytest.mark.parametrize(
    ("profile", "protocol"),
    [
        (TLSProfile.BCP195_RFC8996, "TLSv1.3"),
        (TLSProfile.BCP195_RFC8996_MODIFIED, "TLSv1.3"),
        (TLSProfile.BCP195_ND, "TLSv1.3"),
        (TLSProfile.BCP195_EXTENDED, "TLSv1.2"),
    ],
    ids=lambda v: getattr(v, "value", v),
)
async def test_echo_over_tls(
    loop_kind: str, kit: CertKit, profile: TLSProfile, protocol: str
) -> None:
    async with tls_scp(server_config(kit)) as scp:
        result = await echo(
            "127.0.0.1", scp.port, tls=TLSConfig(profile=profile, ca_files=(kit.ca,))
        )
    assert result.ok
    assert result.peer.tls_protocol == protocol
    assert result.peer.tls_cipher is not None
    assert result.peer.tls_peer_subject is not None
    assert "trustme" in result.peer.tls_peer_subject
    assert result.peer.tls_peer_not_after == "3000-01-01T00:00:00Z"
    assert "tls" in result.timings_ms
    assert scp.counters.echoes == 1


@LOOPS
@pytest.mark.parametrize(
    ("profile", "cipher"),
    [(TLSProfile.NULL, "NULL-SHA"), (TLSProfile.AES, "AES128-SHA")],
    ids=lambda v: getattr(v, "value", v),
)
async def test_retired_rsa_profiles(
    loop_kind: str, kit: CertKit, profile: TLSProfile, cipher: str
) -> None:
    server = server_config(kit, key=kit.rsa_key, cert=kit.rsa_cert, profile=profile)
    async with tls_scp(server) as scp:
        result = await echo(
            "127.0.0.1", scp.port, tls=TLSConfig(profile=profile, ca_files=(kit.rsa_ca,))
        )
    assert result.ok
    assert (result.peer.tls_protocol, result.peer.tls_cipher) == ("TLSv1.2", cipher)


@LOOPS
async def test_client_certificates(loop_kind: str, kit: CertKit) -> None:
    server = server_config(kit, ca_files=(kit.ca,), verify_peer=PeerVerification.REQUIRE)
    async with tls_scp(server) as scp:
        with_cert = TLSConfig(
            key_file=kit.client_key, cert_file=kit.client_cert, ca_files=(kit.ca,)
        )
        assert (await echo("127.0.0.1", scp.port, tls=with_cert)).ok
    # A server that requires a certificate we do not have. With TLS 1.3 its refusal (an alert)
    # arrives after our side of the handshake, while we wait for the A-ASSOCIATE-AC. (asyncio's
    # own TLS server drops the connection without the alert: this one is OpenSSL's, blocking.)
    with threaded_listener(build_context(server, server_side=True)) as port:
        started = time.monotonic()
        record = await probe("127.0.0.1", port, tls=TLSConfig(ca_files=(kit.ca,)))
        took = time.monotonic() - started
    assert record.outcome is Outcome.TLS_VERIFY_FAILED, record
    assert record.phase == "associate"
    assert record.error == "TLS error: tlsv13 alert certificate required"
    assert took < 2.0


@LOOPS
async def test_ready_made_contexts(loop_kind: str, kit: CertKit) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(kit.server_cert, kit.server_key)
    client = ssl.create_default_context(cafile=kit.ca)
    client.check_hostname = True  # the host connected to is the name checked
    async with tls_scp(server) as scp:
        result = await echo("127.0.0.1", scp.port, tls=client)
    assert result.ok
    assert result.peer.tls_protocol == "TLSv1.3"


# --- failures ----------------------------------------------------------------------------------


async def timed_probe(port: int, tls: TLSConfig, timeouts: Timeouts) -> tuple[Any, float]:
    started = time.monotonic()
    record = await probe("127.0.0.1", port, tls=tls, timeouts=timeouts)
    return record, time.monotonic() - started


TIMEOUTS = Timeouts(connect=2.0, tls=2.0, acse=2.0, dimse=2.0, release=2.0)


@LOOPS
@pytest.mark.parametrize(
    ("server", "client", "outcome", "words"),
    [
        (
            "server",
            {"ca_files": ("other_ca",)},
            Outcome.TLS_VERIFY_FAILED,
            "unable to get local issuer certificate",
        ),
        (
            "expired",
            {"ca_files": ("test_ca",)},
            Outcome.TLS_VERIFY_FAILED,
            "certificate has expired",
        ),
        (
            "revoked",
            {"ca_files": ("test_ca",), "crl_files": ("crl",)},
            Outcome.TLS_VERIFY_FAILED,
            "certificate revoked",
        ),
        ("revoked", {"ca_files": ("test_ca",)}, Outcome.SUCCESS, ""),  # no CRL, no check
    ],
)
async def test_certificate_failures(  # noqa: PLR0917 - pytest's parameters
    loop_kind: str,
    kit: CertKit,
    server: str,
    client: dict[str, tuple[str, ...]],
    outcome: Outcome,
    words: str,
) -> None:
    config = server_config(
        kit, key=getattr(kit, f"{server}_key"), cert=getattr(kit, f"{server}_cert")
    )
    tls = TLSConfig(
        ca_files=tuple(getattr(kit, n) for n in client.get("ca_files", ())),
        crl_files=tuple(getattr(kit, n) for n in client.get("crl_files", ())),
    )
    async with tls_scp(config) as scp:
        record, took = await timed_probe(scp.port, tls, TIMEOUTS)
    assert record.outcome is outcome, record
    assert took < TIMEOUTS.tls + SLACK  # type: ignore[operator]
    if outcome is not Outcome.SUCCESS:
        assert record.phase == "tls"
        assert words in (record.error or "")
        assert record.error.startswith("TLS error: certificate verify failed")


@LOOPS
async def test_tls10_only_peer(loop_kind: str, kit: CertKit) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.load_cert_chain(kit.server_cert, kit.server_key)
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1
    async with tls_scp(old) as scp:
        record, took = await timed_probe(scp.port, TLSConfig(ca_files=(kit.ca,)), TIMEOUTS)
    # asyncio's TLS server drops the connection without sending its alert: we see the EOF
    # (as DCMTK does against such a server).
    assert record.outcome is Outcome.TLS_ERROR
    assert record.error == "TLS error: unexpected eof while reading"
    assert record.phase == "tls"
    assert took < TIMEOUTS.tls + SLACK  # type: ignore[operator]
    with threaded_listener(old) as port:  # OpenSSL's own server sends the alert
        record, took = await timed_probe(port, TLSConfig(ca_files=(kit.ca,)), TIMEOUTS)
    assert record.outcome is Outcome.TLS_ERROR
    assert record.error == "TLS error: tlsv1 alert protocol version"
    assert took < TIMEOUTS.tls + SLACK  # type: ignore[operator]


@LOOPS
async def test_plaintext_peer(loop_kind: str, kit: CertKit) -> None:
    async with tls_scp(None) as scp:
        record, took = await timed_probe(scp.port, TLSConfig(ca_files=(kit.ca,)), TIMEOUTS)
    assert record.outcome is Outcome.TLS_ERROR, record
    assert record.error in (
        "TLS error: wrong version number",
        "TLS error: unexpected eof while reading",
    )
    assert took < TIMEOUTS.tls + SLACK  # type: ignore[operator]


@LOOPS
async def test_handshake_stall(loop_kind: str, kit: CertKit) -> None:
    async with silent_peer() as port:
        short = Timeouts(connect=2.0, tls=1.0, acse=5.0)
        record, took = await timed_probe(port, TLSConfig(ca_files=(kit.ca,)), short)
        assert record.outcome is Outcome.TLS_HANDSHAKE_TIMEOUT, record
        assert record.phase == "tls"
        assert 0.9 <= took < 1.0 + SLACK
        total = Timeouts(connect=2.0, tls=5.0, acse=5.0, total=0.8)
        record, took = await timed_probe(port, TLSConfig(ca_files=(kit.ca,)), total)
        assert record.outcome is Outcome.DEADLINE_EXCEEDED, record
        assert record.phase == "tls"
        assert took < 0.8 + SLACK
        with pytest.raises(TLSHandshakeTimeout):
            await echo("127.0.0.1", port, tls=TLSConfig(ca_files=(kit.ca,)), timeouts=short)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@LOOPS
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_failed_handshakes_leave_no_socket(loop_kind: str, kit: CertKit) -> None:
    quick = Timeouts(connect=2.0, tls=0.3, acse=2.0)
    async with tls_scp(server_config(kit)) as scp, tls_scp(None) as plain, silent_peer() as port:
        await probe("127.0.0.1", scp.port, tls=TLSConfig(ca_files=(kit.other_ca,)))
        await asyncio.sleep(0.1)
        before = open_descriptors()
        for _ in range(5):
            untrusted = TLSConfig(ca_files=(kit.other_ca,))
            assert (await probe("127.0.0.1", scp.port, tls=untrusted)).outcome is (
                Outcome.TLS_VERIFY_FAILED
            )
            assert (await probe("127.0.0.1", plain.port, tls=TLSConfig())).outcome is (
                Outcome.TLS_ERROR
            )
            stalled = await probe("127.0.0.1", port, tls=TLSConfig(), timeouts=quick)
            assert stalled.outcome is Outcome.TLS_HANDSHAKE_TIMEOUT
        await asyncio.sleep(0.2)  # uvloop closes a failed transport's socket a moment later
        # The silent peer still holds its accepted sockets: count ours only.
        after = open_descriptors()
    assert after - before <= 5  # the silent peer's 5 held connections, nothing of ours


@LOOPS
async def test_scp_counts_failed_handshakes(loop_kind: str, kit: CertKit) -> None:
    """A TLS listener's failed handshakes (a plain-TCP DICOM client, a client that gives up,
    one that does not trust us) are counted, the successful ones are not."""
    async with EchoSCP(
        "127.0.0.1", 0, tls=server_config(kit), idle_timeout=10.0, artim_timeout=1.0
    ) as scp:
        assert (await echo("127.0.0.1", scp.port, tls=TLSConfig(ca_files=(kit.ca,)))).ok
        plain = await probe("127.0.0.1", scp.port, timeouts=Timeouts(connect=2.0, acse=2.0))
        assert plain.outcome is not Outcome.SUCCESS
        untrusted = await probe("127.0.0.1", scp.port, tls=TLSConfig(ca_files=(kit.other_ca,)))
        assert untrusted.outcome is Outcome.TLS_VERIFY_FAILED
        _, writer = await asyncio.open_connection("127.0.0.1", scp.port)
        writer.close()  # connects and leaves without a word
        # uvloop frees a failed connection at once; plain asyncio's count waits for the
        # handshake timeout (artim_timeout 1 s, plus the SCP's 1 s of grace).
        assert await wait_until(lambda: scp.counters.tls_handshake_failures >= 3, within=5.0)
        await asyncio.sleep(0.2)
        assert scp.counters.tls_handshake_failures == 3
        assert scp.counters.connections == 1
        assert scp.counters.echoes == 1


# --- what the client sends: ALPN "dicom", SNI only when asked ----------------------------------


async def test_alpn_and_sni(kit: CertKit) -> None:
    seen: list[tuple[str | None, str | None]] = []
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(kit.server_cert, kit.server_key)
    context.set_alpn_protocols(["dicom"])

    def on_sni(sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = on_sni

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls = writer.get_extra_info("ssl_object")
        seen.append((tls.selected_alpn_protocol(), tls.version()))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0, ssl=context)
    port = int(server.sockets[0].getsockname()[1])
    try:
        for config in (
            TLSConfig(ca_files=(kit.ca,)),
            TLSConfig(ca_files=(kit.ca,), server_name="pacs.example"),
        ):
            await probe("127.0.0.1", port, tls=config, timeouts=TIMEOUTS)
    finally:
        server.close()
        await server.wait_closed()
    assert seen == [("dicom", "TLSv1.3"), ("dicom", "TLSv1.3")]
    assert names == [None, "pacs.example"]


# --- the blocking driver (echoscu's) -----------------------------------------------------------


@contextlib.contextmanager
def threaded_listener(serve_tls: ssl.SSLContext | None) -> Iterator[int]:
    """One-connection-at-a-time server in a thread: TLS handshake (or silence), then holds."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so that the loop sees `stop` soon
    stop = threading.Event()
    end = time.monotonic() + 30.0

    def run() -> None:
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                if serve_tls is not None:
                    conn.settimeout(5.0)
                    with (
                        contextlib.suppress(OSError),
                        serve_tls.wrap_socket(conn, server_side=True),
                    ):
                        stop.wait(2.0)
                else:
                    stop.wait(3.0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()
        thread.join(10.0)


def test_blocking_handshake(kit: CertKit) -> None:
    server = build_context(server_config(kit), server_side=True)
    client = build_context(TLSConfig(ca_files=(kit.ca,)))
    with threaded_listener(server) as port:
        sock = blocking.connect("127.0.0.1", port, 2.0)
        tls = blocking.start_tls(sock, client, server_hostname=None, timeout=2.0)
        try:
            assert tls.version() == "TLSv1.3"  # type: ignore[attr-defined]
            assert tls.gettimeout() is None
        finally:
            tls.close()
    with threaded_listener(None) as port:
        sock = blocking.connect("127.0.0.1", port, 2.0)
        started = time.monotonic()
        with pytest.raises(TLSHandshakeTimeout):
            blocking.start_tls(sock, client, server_hostname=None, timeout=0.7)
        assert 0.6 <= time.monotonic() - started < 0.7 + SLACK
        assert sock.fileno() == -1  # closed
        sock = blocking.connect("127.0.0.1", port, 2.0)
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            blocking.start_tls(
                sock,
                client,
                server_hostname=None,
                timeout=5.0,
                total_deadline=blocking.clock() + 0.5,
            )
        assert caught.value.outcome == "deadline_exceeded"  # type: ignore[attr-defined]
        assert time.monotonic() - started < 0.5 + SLACK


def test_blocking_verify_failure(kit: CertKit) -> None:
    server = build_context(server_config(kit), server_side=True)
    client = build_context(TLSConfig(ca_files=(kit.other_ca,)))
    with threaded_listener(server) as port:
        sock = blocking.connect("127.0.0.1", port, 2.0)
        with pytest.raises(TLSVerifyFailed):
            blocking.start_tls(sock, client, server_hostname=None, timeout=2.0)
