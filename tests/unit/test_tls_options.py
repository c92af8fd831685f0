"""The one definition of the TLS options (`cli.tls_options`): spellings shared with `echoscu`,
what each role offers, and the checks (no network, no key is opened)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.tls_certs import CertKit, shared_kit

from echoprobe.cli.echoscu_options import TABLE
from echoprobe.cli.tls_options import (
    CRL_CONFLICT,
    NEEDS_TLS_ACCEPTOR,
    NEEDS_TLS_REQUESTER,
    Role,
    TLSUsageError,
    add_tls_options,
    tls_config,
)
from echoprobe.net.tls import CRLMode, KeyFormat, PeerVerification, TLSConfig, TLSProfile


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return shared_kit()


def parser(role: Role) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prefix_chars="-+", exit_on_error=False)
    add_tls_options(p, role)
    return p


def config(role: Role, *argv: str) -> TLSConfig | None:
    return tls_config(parser(role).parse_args(list(argv)))


def spellings(role: Role) -> set[str]:
    return {s for action in parser(role)._actions for s in action.option_strings} - {"-h", "--help"}


def test_spellings_are_echoscus() -> None:
    """Every option shared with echoscu is spelled as echoscu (DCMTK) spells it."""
    for name in spellings(Role.REQUESTER):
        option = TABLE.option(name)
        assert option is not None, name
        assert name in (option.short, option.long)


def test_roles_differ_where_dcmtk_does() -> None:
    requester, acceptor = spellings(Role.REQUESTER), spellings(Role.ACCEPTOR)
    assert {"+tla", "--anonymous-tls", "--request-sni"} <= requester - acceptor
    assert {"-vc", "--verify-peer-cert"} == acceptor - requester
    assert {"+tls", "+pw", "-pw", "-pem", "-der", "+cf", "+cd", "+crl", "+crv", "+cra"} <= acceptor
    assert {"+pg", "+pm", "+cs", "-rc", "-ic"} <= acceptor & requester


def test_plain_without_options() -> None:
    assert config(Role.REQUESTER) is None
    assert config(Role.ACCEPTOR) is None


def test_requester_settings(kit: CertKit) -> None:
    got = config(
        Role.REQUESTER,
        "+tls",
        kit.client_key_der,
        kit.client_cert_der,
        "-der",
        "+pw",
        "secret",
        "+cf",
        kit.ca,
        "+crl",
        kit.crl,
        "+cra",
        "+pm",
        "+cs",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "--request-sni",
        "pacs.example",
        "-ic",
    )
    assert got is not None
    assert got.key_file == kit.client_key_der
    assert got.key_format is KeyFormat.DER
    assert got.password == "secret"
    assert got.ca_files == (kit.ca,)
    assert got.crl_files == (kit.crl,)
    assert got.crl_mode is CRLMode.ALL
    assert got.profile is TLSProfile.BCP195_RFC8996_MODIFIED
    assert got.ciphers == ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",)
    assert got.server_name == "pacs.example"
    assert got.verify_peer is PeerVerification.IGNORE


def test_anonymous_requester_defaults(kit: CertKit) -> None:
    got = config(Role.REQUESTER, "+tla", "+cf", kit.ca, "-pw")
    assert got is not None
    assert got.key_file is None
    assert got.password == ""
    assert got.profile is TLSProfile.BCP195_RFC8996
    assert got.verify_peer is PeerVerification.REQUIRE
    assert got.crl_mode is CRLMode.NONE


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("-rc", PeerVerification.REQUIRE),
        ("-vc", PeerVerification.CHECK),
        ("-ic", PeerVerification.IGNORE),
    ],
)
def test_acceptor_client_certificates(kit: CertKit, flag: str, expected: PeerVerification) -> None:
    got = config(Role.ACCEPTOR, "+tls", kit.server_key, kit.server_cert, flag)
    assert got is not None
    assert got.verify_peer is expected


def test_acceptor_requires_a_client_certificate_by_default(kit: CertKit) -> None:
    got = config(Role.ACCEPTOR, "+tls", kit.server_key, kit.server_cert, "+crv")
    assert got is not None
    assert got.verify_peer is PeerVerification.REQUIRE
    assert got.crl_mode is CRLMode.LEAF


@pytest.mark.parametrize(
    ("role", "argv", "message"),
    [
        (Role.REQUESTER, ["+cf", "ca.pem"], NEEDS_TLS_REQUESTER),
        (Role.REQUESTER, ["-ic"], NEEDS_TLS_REQUESTER),
        (Role.ACCEPTOR, ["-vc"], NEEDS_TLS_ACCEPTOR),
        (Role.ACCEPTOR, ["+pg"], NEEDS_TLS_ACCEPTOR),
        (Role.REQUESTER, ["+tla", "+crv", "+cra"], CRL_CONFLICT),
        (Role.REQUESTER, ["+tla", "+cf", "/nonexistent/ca.pem"], "cannot read /nonexistent/ca.pem"),
        (Role.REQUESTER, ["+tla", "+cd", "/nonexistent"], "not a directory: /nonexistent"),
    ],
)
def test_usage_errors(role: Role, argv: list[str], message: str) -> None:
    with pytest.raises(TLSUsageError) as caught:
        config(role, *argv)
    assert str(caught.value) == message


def test_both_identities_refused(kit: CertKit) -> None:
    with pytest.raises(TLSUsageError, match="not both"):
        config(Role.REQUESTER, "+tla", "+tls", kit.client_key, kit.client_cert)


def test_anonymous_is_not_an_acceptor_option() -> None:
    _, unknown = parser(Role.ACCEPTOR).parse_known_args(["+tla"])
    assert unknown == ["+tla"]


def test_fail_chooses_the_exception() -> None:
    class Mine(Exception):
        pass

    args = parser(Role.REQUESTER).parse_args(["+cf", "x"])
    with pytest.raises(Mine):
        tls_config(args, fail=Mine)


def _scp(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "echoprobe", "scp", "--duration", "0.5", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scp_usage_errors(kit: CertKit, tmp_path: Path) -> None:
    """`echoprobe scp`: TLS usage errors and a key that does not load exit 2 before listening."""
    done = _scp("--listen", "127.0.0.1:0", "+cf", kit.ca)
    assert done.returncode == 2
    assert NEEDS_TLS_ACCEPTOR in done.stderr
    done = _scp("--listen", "127.0.0.1:0", "+tls", kit.server_key, kit.server_cert, "+crv", "+cra")
    assert done.returncode == 2
    assert CRL_CONFLICT in done.stderr
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("nothing here\n")
    done = _scp("--listen", "127.0.0.1:0", "+tls", str(not_a_key), kit.server_cert)
    assert done.returncode == 2
    assert "TLS: 000b:0004 Unable to load private TLS key" in done.stderr
    assert "listening" not in done.stdout
