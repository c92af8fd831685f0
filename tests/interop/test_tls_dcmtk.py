"""DICOM over TLS against DCMTK 3.6.7 (its `storescp` and `echoscu`, both built with OpenSSL).

* Our `echoscu` ↔ DCMTK `storescp +tls`, and DCMTK `echoscu +tls` ↔ our `EchoSCP(tls=...)`, for
  our default profile `+pg` (3.6.7's default is `+py`), `+py` and `+pn`, with and without
  client certificates.
* Failure scenarios: our `echoscu` and DCMTK's run against the same peer; exit codes and
  `F:`/`E:`/`W:` lines must be equal (docs/echoscu-behavior.md §4.6, §9, §11), and each run
  must end within its timeout.

Skipped when DCMTK is missing, except under CI=true, where that is a failure (conftest).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import DCMTK_ECHOSCU, ScpFactory, StorescpFactory
from tests.support.tls_certs import CertKit, shared_kit

from echoprobe.net.tls import PeerVerification, TLSConfig, TLSProfile

pytestmark = pytest.mark.interop

RUN_TIMEOUT = 30.0
STARTUP_SLACK = 1.5  # process start-up on a busy 2-CPU machine, on top of a timeout


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def ours_command() -> list[str]:
    override = os.environ.get("ECHOPROBE_ECHOSCU")
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "echoprobe.cli.echoscu"]


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DCMDICTPATH", "TCP_NODELAY", "TCP_BUFFER_LENGTH", "LANGUAGE")
    }
    env.update(LC_ALL="C", LANG="C")
    return env


@dataclass(frozen=True)
class Run:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    elapsed: float

    def lines(self, *levels: str) -> list[str]:
        """Log lines of the given levels ("F", "E", "W"), in order."""
        return [ln for ln in self.stderr.splitlines() if ln[:2] in {f"{x}:" for x in levels}]

    def describe(self) -> str:
        return (
            f"{shlex.join(self.argv)} -> {self.code} in {self.elapsed:.2f}s\n"
            f"stdout:\n{self.stdout}stderr:\n{self.stderr}"
        )


def run(argv: Sequence[str], cwd: Path | None = None) -> Run:
    started = time.monotonic()
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=RUN_TIMEOUT,
        check=False,
        cwd=cwd,
    )
    return Run(list(argv), done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def both(args: Sequence[str], cwd: Path | None = None) -> tuple[Run, Run]:
    """DCMTK's echoscu and ours, concurrently, with the same arguments."""
    with ThreadPoolExecutor(2) as pool:
        dcmtk = pool.submit(run, [str(DCMTK_ECHOSCU), *args], cwd)
        ours = pool.submit(run, [*ours_command(), *args], cwd)
        return dcmtk.result(), ours.result()


def assert_same(dcmtk: Run, ours: Run, *, levels: str = "FEW") -> None:
    context = f"\n--- DCMTK: {dcmtk.describe()}\n--- ours: {ours.describe()}"
    assert ours.code == dcmtk.code, context
    assert ours.lines(*levels) == dcmtk.lines(*levels), context
    assert ours.stdout == dcmtk.stdout, context


def server_tls(kit: CertKit, **options: object) -> TLSConfig:
    settings: dict[str, object] = {
        "key_file": kit.server_key,
        "cert_file": kit.server_cert,
        "verify_peer": PeerVerification.IGNORE,
    }
    settings.update(options)
    return TLSConfig(**settings)  # type: ignore[arg-type]


# --- success: our echoscu -> DCMTK storescp --------------------------------------------------


@pytest.mark.parametrize(
    ("ours_args", "dcmtk_args", "server_args", "ca"),
    [
        (["+pg"], [], ["server_key", "server_cert"], "ca"),  # 3.6.7's default is +py
        (["+py"], ["+py"], ["server_key", "server_cert"], "ca"),
        (["+pn"], ["+pn"], ["rsa_key", "rsa_cert", "+pn"], "rsa_ca"),
    ],
    ids=["pg", "py", "pn"],
)
def test_ours_to_storescp(  # noqa: PLR0917 - pytest's parameters
    kit: CertKit,
    storescp_factory: StorescpFactory,
    ours_args: list[str],
    dcmtk_args: list[str],
    server_args: list[str],
    ca: str,
) -> None:
    files = [getattr(kit, a, a) for a in server_args]
    server = storescp_factory("+tls", files[0], files[1], "-pw", "-ic", *files[2:])
    common = ["-v", "-aec", "STORESCP", "+tla", "+cf", getattr(kit, ca)]
    ours = run([*ours_command(), *common, *ours_args, "127.0.0.1", str(server.port)])
    dcmtk = run([str(DCMTK_ECHOSCU), *common, *dcmtk_args, "127.0.0.1", str(server.port)])
    assert ours.code == 0, ours.describe()
    assert ours.lines("I", "F", "E", "W") == dcmtk.lines("I", "F", "E", "W"), (
        dcmtk.describe() + ours.describe()
    )


def test_debug_shows_the_tls_connection_details(
    kit: CertKit, storescp_factory: StorescpFactory
) -> None:
    server = storescp_factory("+tls", kit.server_key, kit.server_cert, "-pw", "-ic")
    dcmtk, ours = both(
        ["-d", "-aec", "STORESCP", "+tla", "+cf", kit.ca, "+py", "127.0.0.1", str(server.port)]
    )
    assert ours.code == dcmtk.code == 0, ours.describe()

    def block(done: Run) -> list[str]:
        lines = done.stderr.splitlines()
        start = next(i for i, ln in enumerate(lines) if "BEGIN TLS CONNECTION DETAILS" in ln)
        end = next(i for i, ln in enumerate(lines) if "END TLS CONNECTION DETAILS" in ln)
        # Where DCMTK logs it: after the socket timeouts, before the A-ASSOCIATE-RQ.
        assert lines[start - 1] == "D: setting network receive timeout to 60 seconds"
        assert lines[end + 1] == "D: Constructing Associate RQ PDU"
        return lines[start : end + 1]

    assert block(ours) == block(dcmtk)


def test_ours_with_client_certificate(kit: CertKit, storescp_factory: StorescpFactory) -> None:
    server = storescp_factory("+tls", kit.server_key, kit.server_cert, "-pw", "-rc", "+cf", kit.ca)
    base = ["-aec", "STORESCP", "+cf", kit.ca, "127.0.0.1", str(server.port)]
    ours = run([*ours_command(), "+tls", kit.client_key, kit.client_cert, "-pw", *base])
    assert ours.code == 0, ours.describe()
    encrypted = run(
        [*ours_command(), "+tls", kit.client_key_encrypted, kit.client_cert, "+pw", "s3cret", *base]
    )
    assert encrypted.code == 0, encrypted.describe()
    der_args = [
        "+tls",
        kit.client_key_der,
        kit.client_cert_der,
        "-der",
        "-pw",
        "-aec",
        "STORESCP",
        "+cf",
        kit.ca_der,
        "127.0.0.1",
        str(server.port),
    ]
    dcmtk, ours = both(der_args)
    assert_same(dcmtk, ours)
    assert ours.code == 0, ours.describe()
    # -der applies to +cf too: a PEM CA file is then skipped, with DCMTK's warning.
    dcmtk, ours = both([*der_args[:8], kit.ca, *der_args[9:]])
    assert_same(dcmtk, ours)
    assert ours.lines("W") == [f"W: unable to load certificate file '{kit.ca}', ignoring"]


# --- success: DCMTK echoscu -> our EchoSCP ----------------------------------------------------


@pytest.mark.parametrize(
    ("dcmtk_args", "server", "ca"),
    [
        ([], {}, "ca"),  # 3.6.7's default (+py) against our default (+pg)
        (["+py"], {"profile": TLSProfile.BCP195_ND}, "ca"),
        (
            ["+pn"],
            {"profile": TLSProfile.NULL, "key_file": "rsa_key", "cert_file": "rsa_cert"},
            "rsa_ca",
        ),
    ],
    ids=["default", "py", "pn"],
)
def test_dcmtk_to_echoscp(
    kit: CertKit,
    scp_factory: ScpFactory,
    dcmtk_args: list[str],
    server: dict[str, object],
    ca: str,
) -> None:
    options = {k: getattr(kit, str(v), v) if k.endswith("_file") else v for k, v in server.items()}
    scp = scp_factory(tls=server_tls(kit, **options))
    done = run(
        [
            str(DCMTK_ECHOSCU),
            "-v",
            "+tla",
            "+cf",
            getattr(kit, ca),
            *dcmtk_args,
            "127.0.0.1",
            str(scp.port),
        ]
    )
    assert done.code == 0, done.describe()
    assert "I: Received Echo Response (Success)" in done.stderr
    assert scp.counters.echoes == 1


def test_dcmtk_client_certificate_to_echoscp(kit: CertKit, scp_factory: ScpFactory) -> None:
    scp = scp_factory(tls=server_tls(kit, ca_files=(kit.ca,), verify_peer=PeerVerification.REQUIRE))
    args = ["+cf", kit.ca, "127.0.0.1", str(scp.port)]
    done = run([str(DCMTK_ECHOSCU), "+tls", kit.client_key, kit.client_cert, "-pw", *args])
    assert done.code == 0, done.describe()
    refused = run([str(DCMTK_ECHOSCU), "+tla", *args])
    assert refused.code == 1  # our SCP refused the anonymous client
    assert scp.counters.echoes == 1


# --- failures: the same peer, both clients, same report --------------------------------------


def test_untrusted_certificate(kit: CertKit, storescp_factory: StorescpFactory) -> None:
    server = storescp_factory("+tls", kit.server_key, kit.server_cert, "-pw", "-ic")
    for extra in ([], ["+cf", kit.other_ca], ["+cf", str(kit.root / "missing.pem")]):
        dcmtk, ours = both(["+tla", *extra, "-aec", "STORESCP", "127.0.0.1", str(server.port)])
        assert_same(dcmtk, ours)
        assert ours.lines("F") == [
            "F: Association Request Failed: 000b:0886 TLS error: certificate verify failed"
        ]


@pytest.mark.parametrize(
    ("cert", "client"),
    [("expired", []), ("revoked", ["+crl", "crl"])],
)
def test_refused_server_certificates(
    kit: CertKit, scp_factory: ScpFactory, cert: str, client: list[str]
) -> None:
    scp = scp_factory(
        tls=server_tls(
            kit, key_file=getattr(kit, f"{cert}_key"), cert_file=getattr(kit, f"{cert}_cert")
        )
    )
    extra = [getattr(kit, a, a) for a in client]
    dcmtk, ours = both(["+tla", "+cf", kit.test_ca, *extra, "127.0.0.1", str(scp.port)])
    assert_same(dcmtk, ours)
    assert ours.code == 1
    assert ours.lines("F") == [
        "F: Association Request Failed: 000b:0886 TLS error: certificate verify failed"
    ]


def test_tls10_only_peer(kit: CertKit, scp_factory: ScpFactory) -> None:
    import ssl

    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.load_cert_chain(kit.server_cert, kit.server_key)
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1
    scp = scp_factory(tls=old)
    dcmtk, ours = both(["+tla", "+cf", kit.ca, "-ts", "5", "127.0.0.1", str(scp.port)])
    assert_same(dcmtk, ours)
    assert ours.code == 1
    assert ours.elapsed < 5 + STARTUP_SLACK


def test_plaintext_peer(kit: CertKit, scp_factory: ScpFactory) -> None:
    scp = scp_factory()
    dcmtk, ours = both(["+tla", "+cf", kit.ca, "-ts", "5", "127.0.0.1", str(scp.port)])
    assert_same(dcmtk, ours)
    assert ours.lines("F") == [
        "F: Association Request Failed: 000b:090b TLS error: wrong version number"
    ]


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections and never answers (a handshake stall); stops by itself."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []
    end = time.monotonic() + 30.0

    def serve() -> None:
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5.0)
        listener.close()
        for conn in held:
            conn.close()


def test_handshake_stall(kit: CertKit) -> None:
    with silent_listener() as port:
        dcmtk, ours = both(["+tla", "+cf", kit.ca, "-ts", "2", "127.0.0.1", str(port)])
    assert_same(dcmtk, ours)
    assert ours.lines("F") == [
        "F: Association Request Failed: 000b:000b TLS read operation did not complete "
        "(SSL_ERROR_WANT_READ)"
    ]
    assert 2.0 <= ours.elapsed < 2.0 + STARTUP_SLACK


@pytest.mark.parametrize(
    "args",
    [
        ["+tls", "/nonexistent.key", "client_cert", "-pw"],
        ["+tls", "client_cert", "client_cert", "-pw"],
        ["+tls", "client_key_encrypted", "client_cert", "+pw", "wrong"],
        ["+tls", "client_key", "/nonexistent.crt", "-pw"],
        ["+tls", "client_key", "server_cert", "-pw"],
        ["+tla", "+cs", "TLS_RSA_WITH_NULL_SHA", "+py"],
        ["+tla", "+cs", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
        ["+tla", "+cf", "client_key", "+cf", "/nonexistent.pem", "-ic", "+cs", "FOO_BAR"],
        [
            "+tls",
            "client_key",
            "client_cert",
            "-pw",
            "+cf",
            "client_key",
            "+cf",
            "/nonexist",
            "+crl",
            "/nonexist.crl",
            "+cf",
            "ca",
        ],
        ["+tls", "/nonexistent.key", "client_cert", "-pw", "+cf", "/nonexistent.pem"],
        [
            "+tla",
            "-der",
            "+cf",
            "ca",
            "+cf",
            "/nonexistent.der",
            "+cf",
            "ca_der",
            "+crl",
            "crl",
            "-ic",
            "+cs",
            "FOO_BAR",
        ],
    ],
    ids=[
        "no-key",
        "not-a-key",
        "bad-password",
        "no-cert",
        "mismatch",
        "null-suite",
        "3des-suite",
        "warnings-then-unknown-suite",
        "queued-errors",
        "stale-key-error",
        "der-queued-errors",
    ],
)
def test_setup_errors(kit: CertKit, args: list[str]) -> None:
    argv = [getattr(kit, a, a) for a in args]
    # Nothing listens: set-up fails before any connection attempt.
    dcmtk, ours = both([*argv, "127.0.0.1", "1"])
    if "FOO_BAR" in argv:
        # DCMTK 3.6.8 reports an unknown suite as 000b:0003; 3.6.7 said 0001:0007.
        assert ours.lines("W", "E") == dcmtk.lines("W", "E")
        assert ours.lines("F") == ["F: 000b:0003 Unknown or invalid ciphersuite: FOO_BAR"]
        assert ours.code == dcmtk.code == 1
        return
    assert_same(dcmtk, ours)
    assert ours.code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["+vc", "server_cert"],
        ["+tla", "+cf", "ca", "+vc", "server_cert"],
        ["+tla", "+cf", "other_ca", "+vc", "server_cert"],
        ["+tla", "+cf", "ca", "+vc", "/nonexistent.crt"],
        ["+tla", "+cf", "test_ca", "+vc", "expired_cert"],
        ["+tla", "+cf", "test_ca", "+crl", "crl", "+vc", "revoked_cert"],
        ["+tla", "+cf", "test_ca", "+crv", "+vc", "good_cert"],
        ["+tla", "+cf", "test_ca", "+vc", "chain_leaf"],
        ["+rc", "ca"],
        ["+rc", "server_cert"],
        ["+rc", "self_signed_leaf"],
        ["+rc", "expired_root"],
        ["+rc", "/nonexistent.pem"],
        ["+tla", "-der", "+cf", "test_ca_der", "+vc", "good_cert_der"],
    ],
)
def test_offline_checks(kit: CertKit, args: list[str]) -> None:
    dcmtk, ours = both([getattr(kit, a, a) for a in args])
    assert_same(dcmtk, ours)
    assert ours.code in (0, 22)
