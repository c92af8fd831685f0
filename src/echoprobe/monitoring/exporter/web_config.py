"""`--web.config.file`: HTTPS and basic authentication, in Prometheus exporter-toolkit's format.

    tls_server_config:
      cert_file: server.pem
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
      client_ca_file: clients-ca.pem
      min_version: TLS12                              # TLS10..TLS13, default TLS12
    basic_auth_users:
      prometheus: $2b$12$...                          # bcrypt hashes only

Rules:
- Unknown keys are errors with `file:line`, as in the exporter's own configuration.
- `client_auth_type` values are exporter-toolkit's; `RequestClientCert` and
  `RequireAnyClientCert` (ask for a certificate without verifying it) are refused: Python's
  `ssl` verifies every certificate it asks for.
- Passwords are checked with bcrypt, which costs 50-300 ms by design. A successful check is
  remembered under a SHA-256 of user and password (never the password), so a scraper with
  good credentials pays for bcrypt once; checks run in a thread, at most `BCRYPT_AT_ONCE` at a
  time, so a flood of bad passwords waits in line instead of blocking the event loop.
  An unknown user costs a bcrypt check too, so response time does not tell which users exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

import bcrypt

from echoprobe.monitoring.exporter.yaml_source import ConfigError, Node, load_document

BCRYPT_AT_ONCE: Final = 2
REMEMBERED: Final = 256  # successful (user, password) digests kept
# A valid hash of a random password, checked for unknown users (constant work).
_DUMMY_HASH: Final = b"$2b$10$C6UzMDM.H6dfI/f/IKxGhuWM4k1nTz0pQ2Ch4VfAkMNZzqCnkmbyu"

_BCRYPT_HASH: Final = re.compile(rb"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}\Z")

_CLIENT_AUTH: Final = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNSUPPORTED_AUTH: Final = ("RequestClientCert", "RequireAnyClientCert")
_VERSIONS: Final = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS: Final = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version")


@dataclass(frozen=True, slots=True)
class WebConfig:
    tls: ssl.SSLContext | None = field(default=None, compare=False)
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    source: str | None = None


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check the file; `ConfigError` lists every problem with `file:line`."""
    root = load_document(path)
    items = root.mapping("the web configuration")
    problems: list[str] = []
    for key, (key_node, _) in items.items():
        if key not in ("tls_server_config", "basic_auth_users"):
            problems.append(
                f"{key_node.where}: unknown key {key!r} (known: tls_server_config, "
                "basic_auth_users)"
            )
    context = None
    users: dict[str, bytes] = {}
    if "tls_server_config" in items:
        try:
            context = _tls(items["tls_server_config"][1])
        except ConfigError as exc:
            problems.extend(exc.problems)
    if "basic_auth_users" in items and not items["basic_auth_users"][1].is_null():
        try:
            users = _users(items["basic_auth_users"][1])
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return WebConfig(context, MappingProxyType(users), str(path))


def _relative(path: str, base: str) -> str:
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else Path(base).parent / candidate)


def _tls(node: Node) -> ssl.SSLContext:
    items = node.mapping("tls_server_config")
    for key, (key_node, _) in items.items():
        if key not in _TLS_KEYS:
            raise key_node.error(f"unknown key {key!r} in tls_server_config")
    for needed in ("cert_file", "key_file"):
        if needed not in items:
            raise node.error(f"tls_server_config needs {needed}")
    cert = _relative(items["cert_file"][1].text("cert_file"), node.file)
    key = _relative(items["key_file"][1].text("key_file"), node.file)
    auth = "NoClientCert"
    if "client_auth_type" in items:
        auth_node = items["client_auth_type"][1]
        auth = auth_node.text("client_auth_type")
        if auth in _UNSUPPORTED_AUTH:
            raise auth_node.error(
                f"client_auth_type {auth} is not supported (use VerifyClientCertIfGiven or "
                "RequireAndVerifyClientCert)"
            )
        if auth not in _CLIENT_AUTH:
            raise auth_node.error(
                f"unknown client_auth_type {auth!r} (one of {', '.join(_CLIENT_AUTH)})"
            )
    version = ssl.TLSVersion.TLSv1_2
    if "min_version" in items:
        version_node = items["min_version"][1]
        name = version_node.text("min_version")
        if name not in _VERSIONS:
            raise version_node.error(
                f"unknown min_version {name!r} (one of {', '.join(_VERSIONS)})"
            )
        version = _VERSIONS[name]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = version
    try:
        context.load_cert_chain(cert, key, password="")
    except (OSError, ssl.SSLError) as exc:
        raise items["cert_file"][1].error(f"cannot load {cert} / {key}: {exc}") from None
    context.verify_mode = _CLIENT_AUTH[auth]
    if "client_ca_file" in items:
        ca = _relative(items["client_ca_file"][1].text("client_ca_file"), node.file)
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise items["client_ca_file"][1].error(f"cannot load {ca}: {exc}") from None
    elif context.verify_mode != ssl.CERT_NONE:
        raise node.error(f"client_auth_type {auth} needs client_ca_file")
    return context


def _users(node: Node) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for user, (_, value) in node.mapping("basic_auth_users").items():
        digest = value.text(f"the password hash of {user!r}").encode()
        if not _BCRYPT_HASH.match(digest):
            raise value.error(f"the password of {user!r} is not a bcrypt hash")
        users[user] = digest
    return users


class Authenticator:
    """Checks `Authorization: Basic` credentials against `basic_auth_users`."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = users
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._bcrypt = asyncio.Semaphore(BCRYPT_AT_ONCE)

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    async def check(self, user: str, password: str) -> bool:
        memo = hashlib.sha256(b"%s\0%s" % (user.encode(), password.encode())).digest()
        if memo in self._good:
            return True
        digest = self.users.get(user)
        async with self._bcrypt:
            ok = await asyncio.to_thread(
                bcrypt.checkpw, password.encode(), digest if digest else _DUMMY_HASH
            )
        if not (ok and digest is not None):
            return False
        self._good[memo] = None
        while len(self._good) > REMEMBERED:
            self._good.popitem(last=False)
        return True
