"""`--web.config.file`: exporter-toolkit's format, its errors, and the bcrypt check's cache."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from unittest import mock

import bcrypt
import pytest
from tests.support.tls_certs import shared_kit

from echoprobe.monitoring.exporter.web_config import Authenticator, load_web_config
from echoprobe.monitoring.exporter.yaml_source import ConfigError

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()  # cost 4: fast in tests


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return str(path)


def test_tls_and_users(tmp_path: Path) -> None:
    kit = shared_kit()
    text = f"""\
tls_server_config:
  cert_file: {kit.server_cert}
  key_file: {kit.server_key}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {kit.ca}
  min_version: TLS13
basic_auth_users:
  prometheus: '{HASH}'
"""
    config = load_web_config(write(tmp_path, text))
    assert config.tls is not None
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    assert dict(config.users) == {"prometheus": HASH.encode()}


def test_empty_file_means_nothing(tmp_path: Path) -> None:
    config = load_web_config(write(tmp_path, ""))
    assert config.tls is None
    assert not config.users


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("tls_server_config:\n  cert_file: a\n", 2, "needs key_file"),
        ("tls_server_config:\n  cert: a\n", 2, "unknown key 'cert'"),
        ("http_server_config: {}\n", 1, "unknown key"),
        ("basic_auth_users:\n  u: plain\n", 2, "not a bcrypt hash"),
        ("basic_auth_users: [u]\n", 1, "must be a mapping"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n", 2, "cannot load"),
    ],
)
def test_errors(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_web_config(write(tmp_path, text))
    first = caught.value.problems[0]
    assert first.startswith(f"{tmp_path / 'web.yml'}:{line}: "), first
    assert words in first


@pytest.mark.parametrize(
    ("auth", "words"),
    [
        ("RequireAnyClientCert", "not supported"),
        ("Sometimes", "unknown client_auth_type"),
        ("VerifyClientCertIfGiven", "needs client_ca_file"),
    ],
)
def test_client_auth_errors(tmp_path: Path, auth: str, words: str) -> None:
    kit = shared_kit()
    text = (
        f"tls_server_config:\n  cert_file: {kit.server_cert}\n  key_file: {kit.server_key}\n"
        f"  client_auth_type: {auth}\n"
    )
    with pytest.raises(ConfigError, match=words):
        load_web_config(write(tmp_path, text))


def test_authenticator_caches_successes_only() -> None:
    async def scenario() -> None:
        auth = Authenticator({"prometheus": HASH.encode()})
        with mock.patch("bcrypt.checkpw", wraps=bcrypt.checkpw) as checkpw:
            assert await auth.check("prometheus", "secret")
            assert await auth.check("prometheus", "secret")  # remembered: no bcrypt
            assert checkpw.call_count == 1
            assert not await auth.check("prometheus", "wrong")
            assert not await auth.check("prometheus", "wrong")  # failures are not remembered
            assert not await auth.check("nobody", "secret")  # unknown user: bcrypt all the same
            assert checkpw.call_count == 4

    asyncio.run(scenario())
