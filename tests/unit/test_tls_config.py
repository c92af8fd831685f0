"""`net.tls` without a network: profiles → contexts, DCMTK's refusals, key and certificate
loading (PEM, DER, encrypted), offline `+vc`/`+rc` checks, and the error mapping, fed with real
handshake failures made in memory (two `ssl.SSLObject`s wired through `MemoryBIO`s)."""

from __future__ import annotations

import datetime
import shutil
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from tests.support.tls_certs import PASSWORD, CertKit, shared_kit

from echoprobe.cli.echoscu_options import EchoscuConfig, parse_echoscu
from echoprobe.cli.echoscu_tls import to_config
from echoprobe.errors import (
    DeadlineExceeded,
    TLSConfigError,
    TLSError,
    TLSHandshakeTimeout,
    TLSVerifyFailed,
)
from echoprobe.net.tls import (
    CRLMode,
    KeyFormat,
    PeerVerification,
    TLSConfig,
    TLSProfile,
    build_context,
    check_root_certificate,
    client_settings,
    connection_details,
    dcmtk_condition,
    handshake_timeout,
    map_handshake_error,
    session_facts,
    supported_cipher_suites,
    verify_certificate,
)


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def tls12_names(context: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]


class Collect:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, text: str) -> None:
        self.lines.append((level, text))


# --- profiles -------------------------------------------------------------------------------

PROFILE_SUITES = {
    TLSProfile.BCP195_RFC8996: [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ],
    TLSProfile.BCP195_RFC8996_MODIFIED: [
        "ECDHE-ECDSA-AES128-CCM",
        "ECDHE-ECDSA-AES128-CCM8",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES256-CCM",
        "ECDHE-ECDSA-AES256-CCM8",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ],
    TLSProfile.BCP195_ND: [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES256-GCM-SHA384",
    ],
    TLSProfile.BCP195: [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES256-GCM-SHA384",
        "AES128-SHA",
    ],
    TLSProfile.BCP195_EXTENDED: [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ],
    TLSProfile.AES: ["AES128-SHA"],
    TLSProfile.NULL: ["NULL-SHA"],
}
V = ssl.TLSVersion
PROFILE_VERSIONS = {
    TLSProfile.BCP195_RFC8996: (V.TLSv1_2, V.MAXIMUM_SUPPORTED),
    TLSProfile.BCP195_RFC8996_MODIFIED: (V.TLSv1_2, V.MAXIMUM_SUPPORTED),
    TLSProfile.BCP195_ND: (V.TLSv1_2, V.MAXIMUM_SUPPORTED),
    TLSProfile.BCP195: (V.TLSv1, V.MAXIMUM_SUPPORTED),
    TLSProfile.BCP195_EXTENDED: (V.TLSv1_2, V.TLSv1_2),
    TLSProfile.AES: (V.TLSv1, V.TLSv1_2),
    TLSProfile.NULL: (V.TLSv1, V.TLSv1_2),
}


@pytest.mark.parametrize("profile", list(PROFILE_SUITES), ids=lambda p: p.value)
def test_profile_suites_and_versions(profile: TLSProfile, kit: CertKit) -> None:
    context = build_context(TLSConfig(profile=profile, ca_files=(kit.ca,)))
    assert tls12_names(context) == PROFILE_SUITES[profile]
    assert (context.minimum_version, context.maximum_version) == PROFILE_VERSIONS[profile]
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert not context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


def test_default_profile_is_rfc8996() -> None:
    assert TLSConfig().profile is TLSProfile.BCP195_RFC8996
    assert TLSProfile.BCP195_RFC8996.title == "BCP 195 RFC 8996 TLS Profile"


def test_server_context_prefers_the_strongest_suite(kit: CertKit) -> None:
    config = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.CHECK
    )
    context = config.server_context()
    # DCMTK's table order, strongest first (its table lists the weakest first).
    assert tls12_names(context) == [
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ]
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert context.verify_mode is ssl.CERT_OPTIONAL
    assert config.server_context() is context  # built once


def test_peer_verification_and_hostname(kit: CertKit) -> None:
    ignore = build_context(TLSConfig(verify_peer=PeerVerification.IGNORE))
    assert ignore.verify_mode is ssl.CERT_NONE
    checked = TLSConfig(ca_files=(kit.ca,), check_hostname=True)
    context, name = client_settings(checked, "127.0.0.1")
    assert context.check_hostname is True
    assert name == "127.0.0.1"
    context, name = client_settings(TLSConfig(ca_files=(kit.ca,)), "pacs")
    assert name is None  # DCMTK's --no-sni default
    context, name = client_settings(TLSConfig(server_name="pacs.local"), "127.0.0.9")
    assert name == "pacs.local"


def test_crl_modes(kit: CertKit) -> None:
    leaf = build_context(TLSConfig(crl_mode=CRLMode.LEAF))
    assert leaf.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    chain = build_context(TLSConfig(crl_mode=CRLMode.ALL))
    assert chain.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN == ssl.VERIFY_CRL_CHECK_CHAIN
    # A CRL file that loads turns "none" into leaf checking (DCMTK 3.6.8).
    loaded = build_context(TLSConfig(ca_files=(kit.test_ca,), crl_files=(kit.crl,)))
    assert loaded.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    der = build_context(
        TLSConfig(ca_files=(kit.test_ca_der,), crl_files=(kit.crl_der,), key_format=KeyFormat.DER)
    )
    assert der.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


def test_basic_profile_is_a_clear_error() -> None:
    if "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in supported_cipher_suites():
        pytest.skip("this OpenSSL still offers 3DES")
    with pytest.raises(TLSConfigError) as caught:
        build_context(TLSConfig(profile=TLSProfile.BASIC))
    assert caught.value.condition == (
        "000b:0018 DICOM TLS Secure Transport Connection Profile not supported"
    )
    assert "3DES" in str(caught.value)
    assert "3DES" in caught.value.details[0][1]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="both"):
        TLSConfig(key_file="k.pem")
    with pytest.raises(TypeError):
        TLSConfig(ca_files="ca.pem")  # type: ignore[arg-type]


# --- added cipher suites (+cs) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "suite", "condition", "fatal"),
    [
        (TLSProfile.BCP195_RFC8996, "FOO", "000b:0003 Unknown or invalid ciphersuite: FOO", None),
        (
            TLSProfile.BCP195_RFC8996,
            "TLS_AES_128_GCM_SHA256",  # TLS 1.3 suites cannot be added (DCMTK's table)
            "000b:0003 Unknown or invalid ciphersuite: TLS_AES_128_GCM_SHA256",
            None,
        ),
        (
            TLSProfile.BCP195_RFC8996,
            "TLS_RSA_WITH_NULL_SHA",
            "000b:000a Ciphersuite not allowed in current DICOM security profile",
            "Unencrypted ciphersuite 'TLS_RSA_WITH_NULL_SHA' not permitted with security "
            "profile 'BCP 195 RFC 8996 TLS Profile'",
        ),
        (
            TLSProfile.BCP195_RFC8996,
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            "000b:000a Ciphersuite not allowed in current DICOM security profile",
            "Ciphersuite 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' using SHA-1 MAC not permitted with "
            "security profile 'BCP 195 RFC 8996 TLS Profile'",
        ),
        (
            TLSProfile.BCP195_ND,
            "TLS_RSA_WITH_NULL_SHA",
            "000b:000a Ciphersuite not allowed in current DICOM security profile",
            "Unencrypted ciphersuite 'TLS_RSA_WITH_NULL_SHA' not permitted with security "
            "profile 'Non-downgrading BCP 195 TLS Profile'",
        ),
        (
            TLSProfile.BCP195_RFC8996_MODIFIED,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "000b:000a Ciphersuite not allowed in current DICOM security profile",
            "Additional ciphersuites not permitted with security profile "
            "'Modified BCP 195 RFC 8996 TLS Profile'",
        ),
        (
            TLSProfile.BCP195_EXTENDED,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "000b:000a Ciphersuite not allowed in current DICOM security profile",
            "Additional ciphersuites not permitted with security profile "
            "'Extended BCP 195 TLS Profile'",
        ),
    ],
)
def test_added_suite_refusals(
    profile: TLSProfile, suite: str, condition: str, fatal: str | None
) -> None:
    with pytest.raises(TLSConfigError) as caught:
        build_context(TLSConfig(profile=profile, ciphers=(suite,)))
    assert caught.value.condition == condition
    assert caught.value.details == ((("fatal", fatal),) if fatal else ())


def test_unavailable_suite_is_reported_as_unsupported() -> None:
    if "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in supported_cipher_suites():
        pytest.skip("this OpenSSL still offers 3DES")
    with pytest.raises(TLSConfigError) as caught:
        build_context(
            TLSConfig(profile=TLSProfile.BCP195, ciphers=("TLS_RSA_WITH_3DES_EDE_CBC_SHA",))
        )
    assert caught.value.condition.startswith("000b:0003 ")
    assert caught.value.details[0] == (
        "fatal",
        "Ciphersuite 'TLS_RSA_WITH_3DES_EDE_CBC_SHA' not supported by the OpenSSL library used "
        "to compile this application.",
    )


def test_added_suites_warn_and_join_the_list() -> None:
    report = Collect()
    context = build_context(
        TLSConfig(ciphers=("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "DHE-RSA-AES128-GCM-SHA256")),
        report=report,
    )
    names = tls12_names(context)
    assert names[-2:] == ["ECDHE-RSA-AES128-SHA256", "DHE-RSA-AES128-GCM-SHA256"]
    texts = [text for _, text in report.lines]
    assert any("uses CBC mode of operation" in t for t in texts)
    assert any("ephemeral finite-field Diffie-Hellman" in t for t in texts)
    report = Collect()
    build_context(
        TLSConfig(profile=TLSProfile.BCP195_ND, ciphers=("TLS_RSA_WITH_AES_256_GCM_SHA384",)),
        report=report,
    )
    assert report.lines == [
        (
            "warning",
            "Ciphersuite 'TLS_RSA_WITH_AES_256_GCM_SHA384' uses RSA key transport. RFC 7525 "
            "recommends that such cipher suites should not be used.",
        )
    ]
    null = build_context(TLSConfig(profile=TLSProfile.NULL, ciphers=("TLS_RSA_WITH_NULL_SHA",)))
    assert tls12_names(null) == ["NULL-SHA"]


# --- keys, certificates, CA files ------------------------------------------------------------


def test_pem_and_der_identities_load(kit: CertKit) -> None:
    build_context(TLSConfig(key_file=kit.client_key, cert_file=kit.client_cert))
    build_context(
        TLSConfig(key_file=kit.client_key_encrypted, cert_file=kit.client_cert, password=PASSWORD)
    )
    build_context(
        TLSConfig(
            key_file=kit.client_key_der, cert_file=kit.client_cert_der, key_format=KeyFormat.DER
        )
    )
    build_context(
        TLSConfig(
            key_file=kit.client_key_der_encrypted,
            cert_file=kit.client_cert_der,
            key_format=KeyFormat.DER,
            password=PASSWORD,
        )
    )
    # A password for a key that has none is ignored, as OpenSSL does.
    build_context(
        TLSConfig(
            key_file=kit.client_key_der,
            cert_file=kit.client_cert_der,
            key_format=KeyFormat.DER,
            password="unused",
        )
    )


@pytest.mark.parametrize(
    ("key", "cert", "password", "condition", "details"),
    [
        (
            "/nonexistent.key",
            "client_cert",
            "",
            "000b:0004 Unable to load private TLS key from '/nonexistent.key'",
            (("error", "OpenSSL error 80000002: OpenSSL error"),),
        ),
        (
            "client_cert",
            "client_cert",
            "",
            "000b:0004 Unable to load private TLS key from '{client_cert}'",
            (("error", "OpenSSL error 1e08010c: unsupported"),),
        ),
        (
            "client_key_encrypted",
            "client_cert",
            "wrong",
            "000b:0004 Unable to load private TLS key from '{client_key_encrypted}'",
            (("error", "OpenSSL error 1c800064: bad decrypt"),),
        ),
        (
            "client_key",
            "/nonexistent.crt",
            "",
            "000b:0006 Private key '{client_key}' and certificate '/nonexistent.crt' do not match",
            (("error", "OpenSSL error 80000002: OpenSSL error"),),
        ),
        (
            "client_key",
            "server_cert",
            "",
            "000b:0006 Private key '{client_key}' and certificate '{server_cert}' do not match",
            (),
        ),
    ],
)
def test_identity_errors_as_dcmtk(  # noqa: PLR0917 - pytest's parameters
    kit: CertKit,
    key: str,
    cert: str,
    password: str,
    condition: str,
    details: tuple[tuple[str, str], ...],
) -> None:
    names = {k: v for k, v in vars(kit).items() if isinstance(v, str)}
    key_file = names.get(key, key)
    cert_file = names.get(cert, cert)
    with pytest.raises(TLSConfigError) as caught:
        build_context(TLSConfig(key_file=key_file, cert_file=cert_file, password=password))
    assert caught.value.condition == condition.format(**names)
    assert caught.value.details == details
    assert caught.value.outcome == "tls_error"


def test_unloadable_trust_files_are_warned_and_skipped(kit: CertKit, tmp_path: Path) -> None:
    report = Collect()
    missing = str(tmp_path / "missing.pem")
    build_context(
        TLSConfig(ca_files=(missing, kit.client_key, kit.ca), crl_files=(missing,)),
        report=report,
    )
    # DCMTK prints the oldest error OpenSSL queued, so after a missing file the next failures
    # show that file's leftover errors (verified against DCMTK 3.6.7).
    assert report.lines == [
        ("error", "OpenSSL error 80000002: OpenSSL error"),
        ("warning", f"unable to load certificate file '{missing}', ignoring"),
        ("error", "OpenSSL error 10000080: no such file"),
        ("warning", f"unable to load certificate file '{kit.client_key}', ignoring"),
        ("error", "OpenSSL error 05880002: system lib"),
        ("warning", f"unable to load CRL file '{missing}', ignoring"),
    ]
    report = Collect()
    build_context(TLSConfig(ca_files=(kit.client_key, missing)), report=report)
    assert [text for level, text in report.lines if level == "error"] == [
        "OpenSSL error 05800088: no certificate or crl found",
        "OpenSSL error 80000002: OpenSSL error",
    ]
    report = Collect()
    build_context(TLSConfig(ca_files=(kit.ca,), key_format=KeyFormat.DER), report=report)
    assert report.lines[0] == ("error", "OpenSSL error 068000a8: wrong tag")


# --- offline checks (+vc, +rc) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cert", "config", "ok", "problem"),
    [
        ("server_cert", {"ca_files": ("ca",)}, True, None),
        (
            "server_cert",
            {"ca_files": ("other_ca",)},
            False,
            "unable to get local issuer certificate",
        ),
        ("good_cert", {"ca_files": ("test_ca",)}, True, None),
        ("expired_cert", {"ca_files": ("test_ca",)}, False, "certificate has expired"),
        ("revoked_cert", {"ca_files": ("test_ca",)}, True, None),
        (
            "revoked_cert",
            {"ca_files": ("test_ca",), "crl_files": ("crl",)},
            False,
            "certificate revoked",
        ),
        (
            "good_cert",
            {"ca_files": ("test_ca",), "crl_mode": CRLMode.LEAF},
            False,
            "unable to get certificate CRL",
        ),
        (
            "good_cert",
            {"ca_files": ("test_ca",), "crl_files": ("crl",), "crl_mode": CRLMode.ALL},
            True,
            None,
        ),
        ("chain_leaf", {"ca_files": ("test_ca",)}, True, None),
        (
            "chain_leaf",
            {"ca_files": ("test_ca",), "crl_files": ("crl",), "crl_mode": CRLMode.ALL},
            False,
            "unable to get certificate CRL",
        ),
        ("test_ca", {"ca_files": ("test_ca",)}, True, None),
        ("self_signed_leaf", {"ca_files": ("test_ca",)}, False, "self-signed certificate"),
        ("good_cert_der", {"ca_files": ("test_ca_der",), "key_format": KeyFormat.DER}, True, None),
    ],
)
def test_verify_certificate_offline(
    kit: CertKit, cert: str, config: dict[str, object], ok: bool, problem: str | None
) -> None:
    names = {k: v for k, v in vars(kit).items() if isinstance(v, str)}
    settings = {
        key: tuple(names[n] for n in value) if key.endswith("_files") else value  # type: ignore[attr-defined]
        for key, value in config.items()
    }
    result = verify_certificate(names[cert], TLSConfig(**settings))  # type: ignore[arg-type]
    assert (result.ok, result.problem, result.load_error) == (ok, problem, None)


def test_verify_certificate_file_problems(kit: CertKit, tmp_path: Path) -> None:
    config = TLSConfig(ca_files=(kit.ca,))
    missing = str(tmp_path / "missing.crt")
    assert verify_certificate(missing, config).load_error == (
        f"Cannot open certificate file '{missing}'"
    )
    assert verify_certificate(kit.client_key, config).load_error == (
        f"Not a PEM certificate file: '{kit.client_key}'"
    )
    der = TLSConfig(ca_files=(kit.ca,), key_format=KeyFormat.DER)
    assert verify_certificate(kit.server_cert, der).load_error == (
        f"Not a DER certificate file: '{kit.server_cert}'"
    )


def test_verify_certificate_with_a_hashed_directory(kit: CertKit, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI needed to name the hashed file")
    digest = subprocess.run(
        [openssl, "x509", "-noout", "-subject_hash", "-in", kit.test_ca],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()
    shutil.copy(kit.test_ca, tmp_path / f"{digest}.0")
    shutil.copy(kit.ca, tmp_path / "not-hashed.pem")  # ignored, as OpenSSL ignores it
    assert verify_certificate(kit.good_cert, TLSConfig(ca_dirs=(str(tmp_path),))).ok
    assert not verify_certificate(kit.server_cert, TLSConfig(ca_dirs=(str(tmp_path),))).ok
    # The TLS context uses OpenSSL's own lookup on the same directory.
    build_context(TLSConfig(ca_dirs=(str(tmp_path),)))


def test_verify_certificate_at_a_given_time(kit: CertKit) -> None:
    config = TLSConfig(ca_files=(kit.test_ca,))
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=20)
    assert verify_certificate(kit.good_cert, config, now=later).problem == (
        "certificate has expired"
    )
    earlier = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=5)
    assert verify_certificate(kit.good_cert, config, now=earlier).problem == (
        "certificate is not yet valid"
    )


@pytest.mark.parametrize(
    ("cert", "ok"),
    [
        ("ca", True),
        ("test_ca", True),
        ("self_signed_leaf", True),  # OpenSSL (and DCMTK) do not ask for CA:TRUE here
        ("server_cert", False),
        ("expired_root", False),
    ],
)
def test_root_certificate_check(kit: CertKit, cert: str, ok: bool) -> None:
    assert check_root_certificate(getattr(kit, cert)).ok is ok


def test_root_certificate_check_der_and_missing(kit: CertKit, tmp_path: Path) -> None:
    assert check_root_certificate(kit.test_ca_der, KeyFormat.DER).ok
    missing = str(tmp_path / "nope.pem")
    result = check_root_certificate(missing)
    assert not result.ok
    assert result.load_error == f"Cannot read certificate file '{missing}'"


# --- handshake errors: real ones, made in memory ----------------------------------------------


def memory_handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, *, rounds: int = 20
) -> tuple[ssl.SSLObject, BaseException | None]:
    """Handshake two SSLObjects through memory; return the client and its error (if any)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_side=False)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(rounds):
        for name, obj in (("c", cli), ("s", srv)):
            if done[name]:
                continue
            try:
                obj.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                if name == "c":
                    return cli, exc
                done["s"] = True  # the server failed: its alert goes to the client
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done["c"] and done["s"]:
            # TLS 1.3: a refusal of the client certificate arrives after the handshake.
            try:
                cli.read(1)
            except ssl.SSLWantReadError:
                return cli, None
            except ssl.SSLError as exc:
                return cli, exc
    return cli, None


def server_context(kit: CertKit, **options: object) -> ssl.SSLContext:
    config = TLSConfig(
        key_file=kit.server_key,
        cert_file=kit.server_cert,
        verify_peer=PeerVerification.IGNORE,
        **options,  # type: ignore[arg-type]
    )
    return build_context(config, server_side=True)


def test_successful_memory_handshake_facts(kit: CertKit) -> None:
    client = build_context(TLSConfig(ca_files=(kit.ca,)))
    tls, error = memory_handshake(client, server_context(kit))
    assert error is None
    facts = session_facts(tls)
    assert facts["tls_protocol"] == "TLSv1.3"
    assert facts["tls_cipher"] == "TLS_AES_256_GCM_SHA384"
    assert facts["tls_peer_subject"] is not None
    assert "trustme" in facts["tls_peer_subject"]
    assert facts["tls_peer_not_after"] == "3000-01-01T00:00:00Z"
    assert tls.selected_alpn_protocol() == "dicom"
    details = connection_details(tls).splitlines()
    assert details[0].startswith("================== BEGIN TLS CONNECTION DETAILS")
    assert details[1:4] == [
        "Transport connection: TLS over TCP/IP",
        "  Protocol    : TLSv1.3",
        "  Ciphersuite : TLS_AES_256_GCM_SHA384, encryption: 256 bits",
    ]
    assert details[4] == "Peer X.509v3 Certificate"
    assert details[-2] == "  Public key  : unknown, 256 bits"  # DCMTK names RSA/DSA/DH only
    assert "not before Jan  1 00:00:00 2000 GMT, not after " in details[-3]


def test_verify_failure_maps_to_dcmtk(kit: CertKit) -> None:
    client = build_context(TLSConfig(ca_files=(kit.other_ca,)))
    _, error = memory_handshake(client, server_context(kit))
    assert error is not None
    mapped = map_handshake_error(error)
    assert isinstance(mapped, TLSVerifyFailed)
    assert mapped.outcome == "tls_verify_failed"
    assert mapped.phase == "tls"
    assert str(mapped) == (
        "TLS error: certificate verify failed (unable to get local issuer certificate)"
    )
    assert dcmtk_condition(mapped) == "000b:0886 TLS error: certificate verify failed"


def test_protocol_version_refusal_maps_to_dcmtk(kit: CertKit) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.load_cert_chain(kit.server_cert, kit.server_key)
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1
    _, error = memory_handshake(build_context(TLSConfig(ca_files=(kit.ca,))), old)
    assert error is not None
    mapped = map_handshake_error(error)
    assert type(mapped) is TLSError
    assert dcmtk_condition(mapped) == "000b:0c2e TLS error: tlsv1 alert protocol version"


def test_no_shared_suite_maps_to_dcmtk(kit: CertKit) -> None:
    client = build_context(TLSConfig(profile=TLSProfile.NULL, verify_peer=PeerVerification.IGNORE))
    _, error = memory_handshake(client, server_context(kit))
    assert error is not None
    assert dcmtk_condition(map_handshake_error(error)) == (
        "000b:0c10 TLS error: sslv3 alert handshake failure"
    )


def test_missing_client_certificate_is_a_verify_failure(kit: CertKit) -> None:
    server = build_context(
        TLSConfig(
            key_file=kit.server_key,
            cert_file=kit.server_cert,
            ca_files=(kit.ca,),
            verify_peer=PeerVerification.REQUIRE,
        ),
        server_side=True,
    )
    _, error = memory_handshake(build_context(TLSConfig(ca_files=(kit.ca,))), server)
    assert error is not None
    mapped = map_handshake_error(error, phase="associate")
    assert isinstance(mapped, TLSVerifyFailed)
    assert mapped.phase == "associate"


def test_transport_failures_map_to_dcmtk() -> None:
    eof = map_handshake_error(ConnectionResetError())  # asyncio's report of a close
    assert str(eof) == "TLS error: unexpected eof while reading"
    assert dcmtk_condition(eof) == "000b:0926 TLS error: unexpected eof while reading"
    reset = map_handshake_error(ConnectionResetError(104, "Connection reset by peer"))
    assert dcmtk_condition(reset) == "000b:0017 OpenSSL I/O error (SSL_ERROR_SYSCALL)"
    stalled = handshake_timeout(2.0, by_total=False)
    assert isinstance(stalled, TLSHandshakeTimeout)
    assert stalled.outcome == "tls_handshake_timeout"
    assert dcmtk_condition(stalled) == (
        "000b:000b TLS read operation did not complete (SSL_ERROR_WANT_READ)"
    )
    total = handshake_timeout(2.0, by_total=True)
    assert isinstance(total, DeadlineExceeded)
    assert total.phase == "tls"
    assert dcmtk_condition(total) == dcmtk_condition(stalled)


# --- echoscu's mapping and import hygiene -----------------------------------------------------


def test_echoscu_settings_map_right_to_left() -> None:
    parsed = parse_echoscu(
        [
            "+tls",
            "k.pem",
            "c.pem",
            "+pw",
            "pw",
            "+cf",
            "a.pem",
            "+cf",
            "b.pem",
            "+crl",
            "x.crl",
            "+cra",
            "+cs",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "+cs",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "-ic",
            "+py",
            "--request-sni",
            "pacs",
            "127.0.0.1",
            "104",
        ],
        "echoscu",
    )
    assert isinstance(parsed, EchoscuConfig)
    config = to_config(parsed.tls)
    assert config.profile is TLSProfile.BCP195_ND
    assert (config.key_file, config.cert_file, config.password) == ("k.pem", "c.pem", "pw")
    assert config.ca_files == ("b.pem", "a.pem")  # DCMTK walks repeated options from the right
    assert config.crl_files == ("x.crl",)
    assert config.crl_mode is CRLMode.ALL
    assert config.ciphers == (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    )
    assert config.verify_peer is PeerVerification.IGNORE
    assert config.server_name == "pacs"
    anonymous = parse_echoscu(["+tla", "-der", "+ps", "127.0.0.1", "104"], "echoscu")
    if isinstance(anonymous, EchoscuConfig):  # +ps needs +tls: a command-line error here
        pytest.fail("+ps without +tls must be refused")
    anonymous = parse_echoscu(["+tla", "-der", "127.0.0.1", "104"], "echoscu")
    assert isinstance(anonymous, EchoscuConfig)
    config = to_config(anonymous.tls)
    assert (config.key_file, config.key_format) == (None, KeyFormat.DER)
    assert config.profile is TLSProfile.BCP195_RFC8996
    assert config.verify_peer is PeerVerification.REQUIRE


def test_plain_echoscu_and_tls_config_do_not_import_ssl() -> None:
    code = (
        "import sys\n"
        "import echoprobe.cli.echoscu, echoprobe.net.tls\n"
        "from echoprobe.net.tls import TLSConfig\n"
        "TLSConfig()\n"
        "assert 'ssl' not in sys.modules, 'ssl imported'\n"
        "assert 'cryptography' not in sys.modules, 'cryptography imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
