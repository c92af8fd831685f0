"""DICOM over TLS under trio (the portable anyio driver), against `EchoSCP(tls=...)` in a thread
and against peers that misbehave: the same outcomes, errors and peer facts as on asyncio."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from echoprobe.net.client import echo, probe
from echoprobe.net.tls import PeerVerification, TLSConfig, build_context
from echoprobe.options import Timeouts
from echoprobe.results import EchoResult, Outcome, ProbeResult
from tests.support.servers import ThreadedEchoSCP
from tests.support.tls_certs import CertKit, shared_kit

LOCAL = "127.0.0.1"
SLACK = 0.5


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def server_tls(kit: CertKit, **options: object) -> TLSConfig:
    options.setdefault("verify_peer", PeerVerification.IGNORE)
    return TLSConfig(key_file=kit.server_key, cert_file=kit.server_cert, **options)  # type: ignore[arg-type]


@contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP and never answers (a TLS handshake that never completes)."""
    listener = socket.create_server((LOCAL, 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        end = time.monotonic() + 30.0
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


@contextmanager
def certificate_demanding_listener(context: ssl.SSLContext) -> Iterator[int]:
    """OpenSSL's own blocking TLS server requiring a client certificate: with TLS 1.3 its
    refusal (an alert) arrives after the client's side of the handshake has finished."""
    listener = socket.create_server((LOCAL, 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        end = time.monotonic() + 30.0
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            tls = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
                tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            # Closing with the client's bytes unread would reset the connection, and a reset
            # can overtake the alert on a busy machine: half-close, then read until the client
            # closes, so that the alert is what the client sees.
            raw = socket.socket(fileno=tls.detach())
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(2.0)
                while raw.recv(65536):
                    pass
            raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_echo_over_tls_under_trio(kit: CertKit) -> None:
    with ThreadedEchoSCP(tls=server_tls(kit)) as scp:
        result: EchoResult = trio.run(
            lambda: echo(LOCAL, scp.port, tls=TLSConfig(ca_files=(kit.ca,)), repeat=3)
        )
    assert result.ok
    assert len(result.replies) == 3
    assert result.peer.tls_protocol == "TLSv1.3"
    assert result.peer.tls_cipher
    assert result.peer.tls_peer_subject
    assert result.peer.tls_peer_not_after
    assert {"connect", "tls", "associate", "echo", "release"} <= set(result.timings_ms)


def test_client_certificate_under_trio(kit: CertKit) -> None:
    tls = server_tls(kit, ca_files=(kit.ca,), verify_peer=PeerVerification.REQUIRE)
    with ThreadedEchoSCP(tls=tls) as scp:
        with_cert = TLSConfig(
            key_file=kit.client_key, cert_file=kit.client_cert, ca_files=(kit.ca,)
        )
        result: EchoResult = trio.run(lambda: echo(LOCAL, scp.port, tls=with_cert))
    assert result.ok


def test_untrusted_server_is_tls_verify_failed_under_trio(kit: CertKit) -> None:
    with ThreadedEchoSCP(tls=server_tls(kit)) as scp:
        record: ProbeResult = trio.run(lambda: probe(LOCAL, scp.port, tls=TLSConfig()))
    assert record.outcome is Outcome.TLS_VERIFY_FAILED, record
    assert record.phase == "tls"
    assert "certificate verify failed" in (record.error or "")


def test_refused_client_certificate_after_the_handshake_under_trio(kit: CertKit) -> None:
    server = build_context(
        server_tls(kit, ca_files=(kit.ca,), verify_peer=PeerVerification.REQUIRE),
        server_side=True,
    )
    with certificate_demanding_listener(server) as port:
        started = time.monotonic()
        record: ProbeResult = trio.run(
            lambda: probe(LOCAL, port, tls=TLSConfig(ca_files=(kit.ca,)))
        )
        took = time.monotonic() - started
    assert record.outcome is Outcome.TLS_VERIFY_FAILED, record
    assert record.phase == "associate"
    assert record.error == "TLS error: tlsv13 alert certificate required"
    assert took < 2.0


def test_silent_handshake_times_out_under_trio(kit: CertKit) -> None:
    with silent_listener() as port:
        started = time.monotonic()
        record: ProbeResult = trio.run(
            lambda: probe(
                LOCAL, port, tls=TLSConfig(ca_files=(kit.ca,)), timeouts=Timeouts(tls=0.5)
            )
        )
        took = time.monotonic() - started
    assert record.outcome is Outcome.TLS_HANDSHAKE_TIMEOUT, record
    assert record.phase == "tls"
    assert 0.5 - 0.01 <= took <= 0.5 + SLACK


def test_total_deadline_during_the_handshake_under_trio(kit: CertKit) -> None:
    with silent_listener() as port:
        record: ProbeResult = trio.run(
            lambda: probe(
                LOCAL,
                port,
                tls=TLSConfig(ca_files=(kit.ca,)),
                timeouts=Timeouts(tls=5.0, total=0.4),
            )
        )
    assert record.outcome is Outcome.DEADLINE_EXCEEDED, record
    assert record.phase == "tls"
