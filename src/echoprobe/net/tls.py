"""DICOM TLS (PS3.15 Annex B): DCMTK's security profiles as `ssl.SSLContext`s, offline
certificate checks, and the one place where TLS failures become echoprobe errors.

Rules of this module:

* `ssl` is imported here and nowhere else, and only inside the functions that need it: importing
  this module (for `TLSConfig`) costs no ssl import, so `echoscu` without TLS options never loads
  it. `cryptography` is imported lazily too: DER keys, diagnosis of a failed key load, peer
  certificate facts, and the offline checks (`+vc`, `+rc`) are the only users.
* Profiles are DCMTK 3.6.8's (dcmtls/libsrc/tlsciphr.cc), expressed in Python's `ssl` as
  docs/robustness.md §3.3 tabulates: `+pg` BCP 195 RFC 8996 (the default), `+pm` its modified
  variant, and the retired `+py`, `+px`, `+pz`, `+pb`, `+pa`, `+pn`. TLS 1.2 suites and versions
  are exact; TLS 1.3 suites, client signature algorithms and groups are OpenSSL's defaults
  (Python's `ssl` cannot choose them). `+pb` needs 3DES, which OpenSSL 3 builds do not offer:
  asking for it is a clear configuration error.
* As DCMTK: trust anchors only from the given CA files and directories (never the system store),
  peer verification required by default, no hostname check, ALPN "dicom", no SNI unless asked.
* Errors: `map_handshake_error()` turns an ssl/OS exception of the handshake into a `TLSError`
  (`TLSVerifyFailed` when a certificate was refused, on either side) whose message is OpenSSL's
  reason as DCMTK prints it ("TLS error: certificate verify failed"); `handshake_timeout()` builds
  the timeout error; `dcmtk_condition()` gives DCMTK's condition line ("000b:0886 TLS error: ...")
  for any of them. Local set-up failures raise `TLSConfigError` with DCMTK's condition and the
  OpenSSL lines DCMTK logs before it.
"""

from __future__ import annotations

import base64
import errno
import functools
import logging
import os
import re
import secrets
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from echoprobe.errors import (
    DeadlineExceeded,
    ProbeError,
    TLSConfigError,
    TLSError,
    TLSHandshakeTimeout,
    TLSVerifyFailed,
)

if TYPE_CHECKING:
    import socket
    import ssl

    from cryptography import x509

log = logging.getLogger(__name__)

__all__ = [
    "CRLMode",
    "CertificateCheck",
    "KeyFormat",
    "PeerVerification",
    "Report",
    "TLSConfig",
    "TLSProfile",
    "build_context",
    "check_root_certificate",
    "client_settings",
    "connection_details",
    "dcmtk_condition",
    "handshake_blocking",
    "handshake_limit",
    "handshake_timeout",
    "map_handshake_error",
    "server_context_for",
    "session_facts",
    "supported_cipher_suites",
    "verify_certificate",
]

Report = Callable[[str, str], None]
"""Receives the non-fatal problems of a context build, in DCMTK's order, as (level, text) with
level "error" or "warning"; e.g. ("error", "OpenSSL error 80000002: OpenSSL error") followed by
("warning", "unable to load certificate file 'ca.pem', ignoring")."""

DCMTLS = "000b"  # DCMTK's module number of dcmtls conditions (OFM_dcmtls)
_SSL_REASON_OFFSET = 0x800  # DCMTLS_EC_SSL_Offset: condition code = 0x800 + SSL reason code
_ERR_LIB_SSL = 20
_ERR_LIB_SYS_FLAG = 0x80000000  # OpenSSL 3 packs system errors as this flag | errno
_COND_WANT_READ = f"{DCMTLS}:000b TLS read operation did not complete (SSL_ERROR_WANT_READ)"
_COND_SYSCALL = f"{DCMTLS}:0017 OpenSSL I/O error (SSL_ERROR_SYSCALL)"
_COND_NOT_ALLOWED = f"{DCMTLS}:000a Ciphersuite not allowed in current DICOM security profile"
_COND_PROFILE = f"{DCMTLS}:0018 DICOM TLS Secure Transport Connection Profile not supported"


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


class TLSProfile(Enum):
    """DCMTK's TLS security profiles; the values are DCMTK 3.6.8's `echoscu` options."""

    BCP195_RFC8996 = "+pg"  # PS3.15 B.12, the default
    BCP195_RFC8996_MODIFIED = "+pm"  # PS3.15 B.13
    BCP195_ND = "+py"  # B.10, retired (DCMTK 3.6.7's default)
    BCP195 = "+px"  # B.9, retired
    BCP195_EXTENDED = "+pz"  # B.11, retired
    BASIC = "+pb"  # B.1, retired: needs 3DES
    AES = "+pa"  # B.3, retired
    NULL = "+pn"  # IHE ATNA authenticated, unencrypted

    @property
    def title(self) -> str:
        """DCMTK's name of the profile (its messages quote it)."""
        return _PROFILE_TITLES[self]


_PROFILE_TITLES = {
    TLSProfile.BASIC: "Basic TLS Secure Transport Connection Profile",
    TLSProfile.AES: "AES TLS Secure Transport Connection Profile",
    TLSProfile.BCP195: "BCP 195 TLS Profile",
    TLSProfile.BCP195_ND: "Non-downgrading BCP 195 TLS Profile",
    TLSProfile.BCP195_EXTENDED: "Extended BCP 195 TLS Profile",
    TLSProfile.BCP195_RFC8996: "BCP 195 RFC 8996 TLS Profile",
    TLSProfile.BCP195_RFC8996_MODIFIED: "Modified BCP 195 RFC 8996 TLS Profile",
    TLSProfile.NULL: "Authenticated unencrypted communication",
}


class KeyFormat(Enum):
    PEM = "pem"
    DER = "der"


class CRLMode(Enum):
    NONE = "none"  # no revocation check (a CRL file that loads turns this into LEAF, as DCMTK)
    LEAF = "leaf"  # the peer's own certificate (DCMTK +crv, X509_V_FLAG_CRL_CHECK)
    ALL = "all"  # every certificate of the chain (+cra, CRL_CHECK | CRL_CHECK_ALL)


class PeerVerification(Enum):
    REQUIRE = "require"  # verify, fail without a certificate (DCMTK -rc, the default)
    CHECK = "check"  # verify if presented (a server's optional client certificate)
    IGNORE = "ignore"  # do not verify (-ic)


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """What a TLS connection uses; `client_context()`/`server_context()` build the context.

    Files are read when a context is built, not here. `password` decrypts the private key;
    None lets OpenSSL ask on the terminal if the key is encrypted (DCMTK's `+ps`). `ciphers`
    adds TLS 1.2 suites (IANA or OpenSSL names) to the profile's, under the profile's rules.
    `server_name` is sent as SNI (None: no SNI, DCMTK's default). `check_hostname` checks the
    peer certificate against `server_name` or the host connected to (DCMTK never does).
    """

    profile: TLSProfile = TLSProfile.BCP195_RFC8996
    key_file: str | None = None
    cert_file: str | None = None
    key_format: KeyFormat = KeyFormat.PEM
    password: str | None = None
    ca_files: tuple[str, ...] = ()
    ca_dirs: tuple[str, ...] = ()
    crl_files: tuple[str, ...] = ()
    crl_mode: CRLMode = CRLMode.NONE
    verify_peer: PeerVerification = PeerVerification.REQUIRE
    server_name: str | None = None
    ciphers: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ("dicom",)
    check_hostname: bool = False

    def __post_init__(self) -> None:
        if (self.key_file is None) != (self.cert_file is None):
            raise ValueError("TLSConfig needs both key_file and cert_file, or neither")
        for name in ("ca_files", "ca_dirs", "crl_files", "ciphers", "alpn"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"TLSConfig.{name} must be a tuple of strings, not a string")

    def client_context(self) -> ssl.SSLContext:
        """The client (association requestor) context; built once per process and config."""
        return _cached_context(self, False)

    def server_context(self) -> ssl.SSLContext:
        """The server (association acceptor) context; built once per process and config."""
        return _cached_context(self, True)


@functools.lru_cache(maxsize=32)
def _cached_context(config: TLSConfig, server_side: bool) -> ssl.SSLContext:
    return build_context(config, server_side=server_side)


def client_settings(
    tls: TLSConfig | ssl.SSLContext, host: str
) -> tuple[ssl.SSLContext, str | None]:
    """The context for `tls` and the server name to send (None: no SNI) when connecting to
    `host`. A ready-made context that checks host names gets `host` as its server name."""
    if isinstance(tls, TLSConfig):
        context = tls.client_context()
        if tls.check_hostname:
            return context, tls.server_name or host
        return context, tls.server_name
    return tls, host if tls.check_hostname else None


def server_context_for(tls: TLSConfig | ssl.SSLContext) -> ssl.SSLContext:
    """The server context for `tls` (a `TLSConfig` or a ready-made context)."""
    return tls.server_context() if isinstance(tls, TLSConfig) else tls


# --------------------------------------------------------------------------------------------
# Cipher suites: DCMTK's table (tlsciphr.cc globalCipherSuiteList), weakest first
# --------------------------------------------------------------------------------------------


class _Suite(NamedTuple):
    iana: str
    openssl: str
    exchange: str  # RSA (static key transport), DH (DHE), ECDHE, ECDH (static)
    mac: str  # SHA1, SHA256, SHA384, AEAD, CBC_MAC
    mode: str  # CBC, GCM, CCM, NA
    bits: int
    effective_bits: int


_S = _Suite
# fmt: off
_SUITES: tuple[_Suite, ...] = (
    _S("TLS_RSA_WITH_NULL_SHA", "NULL-SHA", "RSA", "SHA1", "NA", 0, 0),
    _S("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", "RSA", "SHA1", "CBC", 168, 112),
    _S("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", "RSA", "SHA1", "CBC", 128, 128),
    _S("TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", "CAMELLIA128-SHA", "RSA", "SHA1", "CBC", 128, 128),
    _S("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", "RSA", "SHA256", "CBC", 128, 128),
    _S("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", "RSA", "AEAD", "GCM", 128, 128),
    _S("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", "ECDH-ECDSA-AES128-SHA", "ECDH", "SHA1", "CBC",
       128, 128),
    _S("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", "ECDH-RSA-AES128-SHA", "ECDH", "SHA1", "CBC", 128, 128),
    _S("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256", "ECDH-ECDSA-AES128-SHA256", "ECDH", "SHA256",
       "CBC", 128, 128),
    _S("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256", "ECDH-RSA-AES128-SHA256", "ECDH", "SHA256", "CBC",
       128, 128),
    _S("TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", "ECDH-ECDSA-AES128-GCM-SHA256", "ECDH", "AEAD",
       "GCM", 128, 128),
    _S("TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", "ECDH-RSA-AES128-GCM-SHA256", "ECDH", "AEAD", "GCM",
       128, 128),
    _S("TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", "CAMELLIA256-SHA", "RSA", "SHA1", "CBC", 256, 256),
    _S("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", "RSA", "SHA1", "CBC", 256, 256),
    _S("TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256", "RSA", "SHA256", "CBC", 256, 256),
    _S("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", "RSA", "AEAD", "GCM", 256, 256),
    _S("TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA", "ECDH-ECDSA-AES256-SHA", "ECDH", "SHA1", "CBC",
       256, 256),
    _S("TLS_ECDH_RSA_WITH_AES_256_CBC_SHA", "ECDH-RSA-AES256-SHA", "ECDH", "SHA1", "CBC", 256, 256),
    _S("TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384", "ECDH-ECDSA-AES256-SHA384", "ECDH", "SHA384",
       "CBC", 256, 256),
    _S("TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384", "ECDH-RSA-AES256-SHA384", "ECDH", "SHA384", "CBC",
       256, 256),
    _S("TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", "ECDH-ECDSA-AES256-GCM-SHA384", "ECDH", "AEAD",
       "GCM", 256, 256),
    _S("TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", "ECDH-RSA-AES256-GCM-SHA384", "ECDH", "AEAD", "GCM",
       256, 256),
    _S("TLS_DHE_DSS_WITH_AES_128_CBC_SHA", "DHE-DSS-AES128-SHA", "DH", "SHA1", "CBC", 128, 128),
    _S("TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA", "DHE-DSS-CAMELLIA128-SHA", "DH", "SHA1", "CBC",
       128, 128),
    _S("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "DHE-RSA-AES128-SHA", "DH", "SHA1", "CBC", 128, 128),
    _S("TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", "DHE-RSA-CAMELLIA128-SHA", "DH", "SHA1", "CBC",
       128, 128),
    _S("TLS_DHE_DSS_WITH_AES_128_CBC_SHA256", "DHE-DSS-AES128-SHA256", "DH", "SHA256", "CBC",
       128, 128),
    _S("TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "DHE-RSA-AES128-SHA256", "DH", "SHA256", "CBC",
       128, 128),
    _S("TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", "DHE-DSS-AES128-GCM-SHA256", "DH", "AEAD", "GCM",
       128, 128),
    _S("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256", "DH", "AEAD", "GCM",
       128, 128),
    _S("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE", "SHA1", "CBC",
       128, 128),
    _S("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", "ECDHE", "SHA1", "CBC",
       128, 128),
    _S("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE", "SHA256",
       "CBC", 128, 128),
    _S("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE", "SHA256",
       "CBC", 128, 128),
    _S("TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE-ECDSA-AES128-CCM", "ECDHE", "CBC_MAC", "CCM",
       128, 128),
    _S("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", "ECDHE-ECDSA-AES128-CCM8", "ECDHE", "CBC_MAC", "CCM",
       128, 128),
    _S("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE", "AEAD",
       "GCM", 128, 128),
    _S("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE", "AEAD",
       "GCM", 128, 128),
    _S("TLS_DHE_DSS_WITH_AES_256_CBC_SHA", "DHE-DSS-AES256-SHA", "DH", "SHA1", "CBC", 256, 256),
    _S("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE-RSA-AES256-SHA", "DH", "SHA1", "CBC", 256, 256),
    _S("TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA", "DHE-DSS-CAMELLIA256-SHA", "DH", "SHA1", "CBC",
       256, 256),
    _S("TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA", "DHE-RSA-CAMELLIA256-SHA", "DH", "SHA1", "CBC",
       256, 256),
    _S("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "DHE-RSA-CHACHA20-POLY1305", "DH", "AEAD",
       "NA", 256, 256),
    _S("TLS_DHE_DSS_WITH_AES_256_CBC_SHA256", "DHE-DSS-AES256-SHA256", "DH", "SHA256", "CBC",
       256, 256),
    _S("TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "DHE-RSA-AES256-SHA256", "DH", "SHA256", "CBC",
       256, 256),
    _S("TLS_DHE_DSS_WITH_AES_256_GCM_SHA384", "DHE-DSS-AES256-GCM-SHA384", "DH", "AEAD", "GCM",
       256, 256),
    _S("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384", "DH", "AEAD", "GCM",
       256, 256),
    _S("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE", "SHA1", "CBC",
       256, 256),
    _S("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", "ECDHE", "SHA1", "CBC",
       256, 256),
    _S("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384", "ECDHE", "SHA384",
       "CBC", 256, 256),
    _S("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE", "SHA384",
       "CBC", 256, 256),
    _S("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE",
       "AEAD", "NA", 256, 256),
    _S("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE",
       "AEAD", "NA", 256, 256),
    _S("TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "ECDHE-ECDSA-AES256-CCM", "ECDHE", "CBC_MAC", "CCM",
       256, 256),
    _S("TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", "ECDHE-ECDSA-AES256-CCM8", "ECDHE", "CBC_MAC", "CCM",
       256, 256),
    _S("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE", "AEAD",
       "GCM", 256, 256),
    _S("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE", "AEAD",
       "GCM", 256, 256),
)
# fmt: on
_BY_IANA = {suite.iana: index for index, suite in enumerate(_SUITES)}
_BY_OPENSSL = {suite.openssl: index for index, suite in enumerate(_SUITES)}

_ND = (
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
)
_3DES = "TLS_RSA_WITH_3DES_EDE_CBC_SHA"


@dataclass(frozen=True, slots=True)
class _Profile:
    suites: tuple[str, ...]  # IANA names, DCMTK's order
    tls13: bool  # TLS 1.3 allowed (its suites are OpenSSL's defaults)
    tls10: bool  # TLS 1.0 and 1.1 allowed (needs OpenSSL security level 0)
    extras: str  # what +cs may add: "secure" (no NULL), "rfc8996" (nor SHA-1), "none", "any"
    optional_3des: bool = False


_PROFILES: dict[TLSProfile, _Profile] = {
    TLSProfile.BCP195_RFC8996: _Profile(
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        tls13=True,
        tls10=False,
        extras="rfc8996",
    ),
    TLSProfile.BCP195_RFC8996_MODIFIED: _Profile(
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
            "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
            "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        tls13=True,
        tls10=False,
        extras="none",
    ),
    TLSProfile.BCP195_ND: _Profile(_ND, tls13=True, tls10=False, extras="secure"),
    TLSProfile.BCP195: _Profile(
        (*_ND, "TLS_RSA_WITH_AES_128_CBC_SHA"),
        tls13=True,
        tls10=True,
        extras="secure",
        optional_3des=True,
    ),
    TLSProfile.BCP195_EXTENDED: _Profile(
        (
            *_ND,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        tls13=False,
        tls10=False,
        extras="none",
    ),
    TLSProfile.BASIC: _Profile((_3DES,), tls13=False, tls10=True, extras="secure"),
    TLSProfile.AES: _Profile(
        ("TLS_RSA_WITH_AES_128_CBC_SHA",),
        tls13=False,
        tls10=True,
        extras="secure",
        optional_3des=True,
    ),
    TLSProfile.NULL: _Profile(("TLS_RSA_WITH_NULL_SHA",), tls13=False, tls10=True, extras="any"),
}


@functools.cache
def _openssl_suites() -> frozenset[str]:
    """OpenSSL names of every TLS ≤ 1.2 suite this OpenSSL build offers."""
    import ssl  # noqa: PLC0415 - only when TLS is used

    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.set_ciphers("ALL:eNULL:@SECLEVEL=0")
    return frozenset(str(c["name"]) for c in probe.get_ciphers())


def supported_cipher_suites() -> tuple[str, ...]:
    """IANA names of DCMTK's cipher suites that this OpenSSL offers, weakest first (`+cc`)."""
    available = _openssl_suites()
    return tuple(suite.iana for suite in _SUITES if suite.openssl in available)


def _cipher_string(config: TLSConfig, server_side: bool, report: Report) -> tuple[str, _Profile]:
    """The OpenSSL cipher string of the profile plus `config.ciphers`, DCMTK's rules applied."""
    profile = config.profile
    spec = _PROFILES[profile]
    available = _openssl_suites()
    if profile is TLSProfile.BASIC and "DES-CBC3-SHA" not in available:
        raise TLSConfigError(
            f"{profile.title} needs TLS_RSA_WITH_3DES_EDE_CBC_SHA (3DES), which this OpenSSL "
            "build does not provide",
            condition=_COND_PROFILE,
            details=(
                (
                    "fatal",
                    f"The {profile.title} (+pb) needs the 3DES cipher suite "
                    "TLS_RSA_WITH_3DES_EDE_CBC_SHA, which is unavailable with this OpenSSL "
                    f"({_openssl_version()}); use the default profile (+pg) or another one.",
                ),
            ),
        )
    chosen = [_BY_IANA[name] for name in spec.suites]
    if spec.optional_3des and "DES-CBC3-SHA" in available:
        chosen.append(_BY_IANA[_3DES])
    for name in config.ciphers:
        chosen.append(_extra_suite(name, profile, spec, available, report))
    if server_side:  # DCMTK's server prefers the strongest suite: the table is weakest first
        chosen.sort(reverse=True)
    text = ":".join(dict.fromkeys(_SUITES[i].openssl for i in chosen))
    if spec.tls10 or profile is TLSProfile.NULL:
        text += ":@SECLEVEL=0"  # SHA-1, NULL and TLS < 1.2 need it with OpenSSL 3
    return text, spec


def _extra_suite(
    name: str, profile: TLSProfile, spec: _Profile, available: frozenset[str], report: Report
) -> int:
    """The table index of an added suite (DCMTK 3.6.8 DcmTLSCiphersuiteHandler::addCipherSuite)."""
    index = _BY_IANA.get(name, _BY_OPENSSL.get(name))
    if index is None:
        raise TLSConfigError(
            f"Unknown or invalid ciphersuite: {name}",
            condition=f"{DCMTLS}:0003 Unknown or invalid ciphersuite: {name}",
        )
    suite = _SUITES[index]
    if suite.openssl not in available:
        raise TLSConfigError(
            f"Ciphersuite '{name}' is not supported by this OpenSSL",
            condition=f"{DCMTLS}:0003 Unknown or invalid ciphersuite: {name}",
            details=(
                (
                    "fatal",
                    f"Ciphersuite '{name}' not supported by the OpenSSL library used to compile "
                    "this application.",
                ),
            ),
        )
    if spec.extras == "none":
        raise TLSConfigError(
            f"no cipher suite may be added to the {profile.title}",
            condition=_COND_NOT_ALLOWED,
            details=(
                (
                    "fatal",
                    "Additional ciphersuites not permitted with security profile "
                    f"'{profile.title}'",
                ),
            ),
        )
    if spec.extras in ("secure", "rfc8996") and suite.bits == 0:
        raise TLSConfigError(
            f"unencrypted cipher suite {name} is not allowed in the {profile.title}",
            condition=_COND_NOT_ALLOWED,
            details=(
                (
                    "fatal",
                    f"Unencrypted ciphersuite '{name}' not permitted with security profile "
                    f"'{profile.title}'",
                ),
            ),
        )
    if spec.extras == "secure" and suite.exchange == "RSA":
        report(
            "warning",
            f"Ciphersuite '{name}' uses RSA key transport. RFC 7525 recommends that such "
            "cipher suites should not be used.",
        )
    if spec.extras == "rfc8996":
        if suite.mac == "SHA1":
            raise TLSConfigError(
                f"cipher suite {name} uses a SHA-1 MAC, not allowed in the {profile.title}",
                condition=_COND_NOT_ALLOWED,
                details=(
                    (
                        "fatal",
                        f"Ciphersuite '{name}' using SHA-1 MAC not permitted with security "
                        f"profile '{profile.title}'",
                    ),
                ),
            )
        if suite.exchange == "RSA":
            report(
                "warning",
                f"Ciphersuite '{name}' uses RSA key transport. RFC 9325 recommends that such "
                "cipher suites should not be used.",
            )
        if suite.exchange == "DH":
            report(
                "warning",
                f"Ciphersuite '{name}' uses ephemeral finite-field Diffie-Hellman key agreement. "
                "RFC 9325 recommends that such cipher suites should not be used.",
            )
        if suite.mode == "CBC":
            report(
                "warning",
                f"Ciphersuite '{name}' uses CBC mode of operation. RFC 9325 recommends that such "
                "cipher suites should not be used, unless both sides support the "
                "encrypt_then_mac extension (we do).",
            )
    return index


def _openssl_version() -> str:
    import ssl  # noqa: PLC0415 - only when TLS is used

    return ssl.OPENSSL_VERSION


# --------------------------------------------------------------------------------------------
# OpenSSL error texts as DCMTK prints them (DcmTLSTransportLayer::convertOpenSSLError)
# --------------------------------------------------------------------------------------------


@functools.cache
def _reason_codes() -> dict[tuple[str, str], tuple[int, int]]:
    """(library name, reason mnemonic) → (library code, reason code), from CPython's tables."""
    try:
        import _ssl  # noqa: PLC0415 - CPython's error tables, only when TLS is used

        names: dict[int, str] = dict(_ssl.lib_codes_to_names)
        codes: dict[tuple[int, int], str] = dict(_ssl.err_codes_to_names)
    except (ImportError, AttributeError):  # pragma: no cover - not CPython
        return {}
    return {(names.get(lib, ""), reason): (lib, code) for (lib, code), reason in codes.items()}


def _reason_text(mnemonic: str) -> str:
    # OpenSSL's reason strings are their mnemonics in lower case with spaces.
    return mnemonic.lower().replace("_", " ")


def _packed_code(exc: BaseException) -> tuple[int | None, str]:
    """OpenSSL 3's packed error code of `exc` and its reason text (None: not an OpenSSL error)."""
    import ssl  # noqa: PLC0415 - only when TLS is used

    if isinstance(exc, ssl.SSLError):
        library = str(exc.library or "")
        reason = str(exc.reason or "")
        lib_reason = _reason_codes().get((library, reason))
        if lib_reason is None:
            return None, _reason_text(reason) if reason else str(exc)
        lib, code = lib_reason
        return (lib << 23) | code, _reason_text(reason)
    if isinstance(exc, OSError) and exc.errno:
        return _ERR_LIB_SYS_FLAG | exc.errno, "OpenSSL error"  # no reason string for these
    return None, str(exc)


def openssl_error_line(exc: BaseException) -> str:
    """DCMTK's E: line for an OpenSSL error: `OpenSSL error 80000002: OpenSSL error`, or
    `TLS error: <reason>` for an error of OpenSSL's SSL library."""
    code, text = _packed_code(exc)
    if code is not None and code >> 23 == _ERR_LIB_SSL and not code & _ERR_LIB_SYS_FLAG:
        return f"TLS error: {text}"
    if code is None:
        return f"OpenSSL error: {text}"
    return f"OpenSSL error {code:08x}: {text}"


class _ErrorQueue:
    """OpenSSL's thread error queue, as far as DCMTK's messages show it.

    DCMTK reports each failed load with `ERR_get_error()`, the *oldest* queued error, and
    never clears the queue: a failure that queued several errors makes the next failure report
    a stale one. Each failure here queues what OpenSSL 3 queues for it (measured with DCMTK
    3.6.7 and OpenSSL 3.0) and reports the oldest, so the lines come out as DCMTK's do."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[str] = []

    def fail(self, errors: list[str]) -> str:
        self._pending.extend(errors)
        return self._pending.pop(0)


def _file_errors(exc: BaseException, key_format: KeyFormat) -> list[str]:
    """What OpenSSL queues when X509_LOOKUP_load_file() (or a key load) fails with `exc`."""
    if isinstance(exc, OSError) and exc.errno and type(exc).__module__ != "ssl":
        first = openssl_error_line(exc)
        if key_format is KeyFormat.DER:
            return [first, _E_BIO_SYSTEM, _E_X509_SYSTEM]
        bio = _E_NO_SUCH_FILE if exc.errno == errno.ENOENT else _E_BIO_SYSTEM
        return [first, bio, _E_X509_SYSTEM]
    return [openssl_error_line(exc)]


_E_NO_SUCH_FILE = "OpenSSL error 10000080: no such file"  # BIO_new_file: no such file
_E_BIO_SYSTEM = "OpenSSL error 10080002: system lib"
_E_X509_SYSTEM = "OpenSSL error 05880002: system lib"
_E_WRONG_TAG = "OpenSSL error 068000a8: wrong tag"  # ASN1: not DER
_E_NOT_DER = [
    _E_WRONG_TAG,
    "OpenSSL error 0688010a: nested asn1 error",
    "OpenSSL error 0588000d: ASN1 lib",
]


# --------------------------------------------------------------------------------------------
# Building contexts
# --------------------------------------------------------------------------------------------


def _default_report(level: str, text: str) -> None:
    if level == "error":
        log.error("%s", text)
    else:
        log.warning("%s", text)


def build_context(
    config: TLSConfig, *, server_side: bool = False, report: Report | None = None
) -> ssl.SSLContext:
    """A new context for `config`, in DCMTK's order (DcmTLSOptions::createTransportLayer): CA
    files, CA directories, CRL files (each skipped with a warning when it cannot be loaded), key
    and certificate, profile and added suites. Raises `TLSConfigError`."""
    import ssl  # noqa: PLC0415 - only when TLS is used

    say = report or _default_report
    queue = _ErrorQueue()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    for path in config.ca_files:
        problem = _load_ca_file(context, path, config.key_format)
        if problem:
            say("error", queue.fail(problem))
            say("warning", f"unable to load certificate file '{path}', ignoring")
    for path in config.ca_dirs:
        problem = _load_ca_dir(context, path, config.key_format)
        if problem:
            say("error", queue.fail(problem))
            say("warning", f"unable to load certificates from directory '{path}', ignoring")
    crl_mode = config.crl_mode
    for path in config.crl_files:
        problem = _load_crl_file(context, path, config.key_format)
        if problem:
            say("error", queue.fail(problem))
            say("warning", f"unable to load CRL file '{path}', ignoring")
        elif crl_mode is CRLMode.NONE:
            crl_mode = CRLMode.LEAF
    if crl_mode is CRLMode.LEAF:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    elif crl_mode is CRLMode.ALL:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if config.key_file is not None and config.cert_file is not None:
        _load_identity(context, config, queue)
    ciphers, spec = _cipher_string(config, server_side, say)
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise TLSConfigError(
            openssl_error_line(exc),
            condition=_condition_for_ssl_error(exc),
            details=(("error", queue.fail([openssl_error_line(exc)])),),
        ) from exc
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated in ssl: on purpose here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1 if spec.tls10 else ssl.TLSVersion.TLSv1_2
        context.maximum_version = (
            ssl.TLSVersion.MAXIMUM_SUPPORTED if spec.tls13 else ssl.TLSVersion.TLSv1_2
        )
    if server_side:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        context.verify_mode = {
            PeerVerification.REQUIRE: ssl.CERT_REQUIRED,
            PeerVerification.CHECK: ssl.CERT_OPTIONAL,
            PeerVerification.IGNORE: ssl.CERT_NONE,
        }[config.verify_peer]
    else:
        context.check_hostname = False
        if config.verify_peer is PeerVerification.IGNORE:
            context.verify_mode = ssl.CERT_NONE
        else:
            context.verify_mode = ssl.CERT_REQUIRED
            context.check_hostname = config.check_hostname
    if config.alpn:
        context.set_alpn_protocols(list(config.alpn))
    return context


def _load_ca_file(context: ssl.SSLContext, path: str, key_format: KeyFormat) -> list[str]:
    """Add the certificates of one file; what OpenSSL queues when that fails."""
    try:
        if key_format is KeyFormat.PEM:
            context.load_verify_locations(cafile=path)
            return []
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:
        return _file_errors(exc, key_format)
    try:  # one DER certificate per file, as DCMTK (X509_LOOKUP_load_file, FILETYPE_ASN1)
        context.load_verify_locations(cadata=data)
    except (OSError, ValueError):
        return list(_E_NOT_DER)
    return []


_HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.\d+$")


def _load_ca_dir(context: ssl.SSLContext, path: str, key_format: KeyFormat) -> list[str]:
    """Trust a hashed certificate directory (OpenSSL's "<subject hash>.<n>" files)."""
    try:
        if key_format is KeyFormat.PEM:
            context.load_verify_locations(capath=path)  # looked up during verification
            return []
        directory = Path(path)
        if not directory.is_dir():
            return []  # like OpenSSL's lookup: an absent directory simply holds nothing
        for entry in sorted(directory.iterdir()):
            if _HASHED_NAME.match(entry.name):
                context.load_verify_locations(cadata=entry.read_bytes())
    except (OSError, ValueError) as exc:
        return _file_errors(exc, key_format)
    return []


def _load_crl_file(context: ssl.SSLContext, path: str, key_format: KeyFormat) -> list[str]:
    """Add one CRL file. DER CRLs work here (DCMTK's DER lookup only reads certificates)."""
    try:
        if key_format is KeyFormat.PEM:
            context.load_verify_locations(cafile=path)
            return []
        der = Path(path).read_bytes()
    except (OSError, ValueError) as exc:
        return _file_errors(exc, key_format)
    if not der.startswith(b"\x30"):
        return list(_E_NOT_DER)
    # ssl reads CRLs from PEM files only: re-wrap the DER bytes (no key material involved).
    body = base64.encodebytes(der).decode("ascii")
    pem = f"-----BEGIN X509 CRL-----\n{body}-----END X509 CRL-----\n"
    try:
        with tempfile.TemporaryDirectory(prefix="echoprobe-crl-") as tmp:
            target = Path(tmp, "crl.pem")
            target.write_text(pem, encoding="ascii")
            context.load_verify_locations(cafile=str(target))
    except (OSError, ValueError):
        return list(_E_NOT_DER)
    return []


def _load_identity(context: ssl.SSLContext, config: TLSConfig, queue: _ErrorQueue) -> None:
    """Our key and certificate. PEM goes straight to OpenSSL (its prompt asks for a missing
    password, as DCMTK's `+ps`); DER is converted with `cryptography`. A failure is diagnosed
    afterwards, to report it as DCMTK does (key first, then certificate, then the match)."""
    import ssl  # noqa: PLC0415 - only when TLS is used

    key_file, cert_file = config.key_file, config.cert_file
    assert key_file is not None  # checked by the caller
    assert cert_file is not None
    try:
        if config.key_format is KeyFormat.PEM:
            context.load_cert_chain(cert_file, key_file, password=config.password)
        else:
            _load_der_identity(context, key_file, cert_file, config.password)
    except (OSError, ValueError, TypeError, ssl.SSLError) as exc:
        raise _diagnose_identity(config, exc, queue) from exc


def _load_der_identity(
    context: ssl.SSLContext, key_file: str, cert_file: str, password: str | None
) -> None:
    import ssl  # noqa: PLC0415 - only when TLS is used

    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - DER only

    key = _read_der_key(key_file, password)
    cert_pem = ssl.DER_cert_to_PEM_cert(Path(cert_file).read_bytes())
    # The key reaches OpenSSL through a private temporary file, encrypted under a one-time
    # password: the plain key never touches the disk.
    one_time = secrets.token_urlsafe(24)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time.encode()),
    )
    with tempfile.TemporaryDirectory(prefix="echoprobe-key-") as tmp:
        key_path, cert_path = Path(tmp, "key.pem"), Path(tmp, "cert.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key_pem)
        cert_path.write_text(cert_pem, encoding="ascii")
        context.load_cert_chain(str(cert_path), str(key_path), password=one_time)


def _read_der_key(key_file: str, password: str | None) -> Any:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - DER only

    data = Path(key_file).read_bytes()
    secret = None if password is None else password.encode()
    try:
        return serialization.load_der_private_key(data, secret)
    except TypeError:
        if password is not None:  # a password for a key that has none: ignored, as OpenSSL
            return serialization.load_der_private_key(data, None)
        import getpass  # noqa: PLC0415 - only for an encrypted DER key without a password

        prompted = getpass.getpass("Enter pass phrase for private key: ").encode()
        return serialization.load_der_private_key(data, prompted)


# OpenSSL 3 errors DCMTK reports for the key and certificate failures cryptography tells apart.
_E_UNSUPPORTED = "OpenSSL error 1e08010c: unsupported"  # OSSL_DECODER: not a key
_E_BAD_DECRYPT = "OpenSSL error 1c800064: bad decrypt"  # PROV: wrong password
_E_NO_START_LINE = "OpenSSL error 0480006c: no start line"  # PEM: no certificate
_E_NESTED_ASN1 = "OpenSSL error 0688010a: nested asn1 error"  # ASN1: not a DER certificate


def _diagnose_identity(
    config: TLSConfig, cause: BaseException, queue: _ErrorQueue
) -> TLSConfigError:
    """DCMTK's report of a failed key/certificate load: the key is checked first (000b:0004);
    a certificate that cannot be loaded is reported as a mismatch (000b:0006), as DCMTK does."""
    key_file, cert_file = str(config.key_file), str(config.cert_file)
    details: list[tuple[str, str]] = []
    key_problem = _key_problem(config)
    if key_problem is not None:
        return TLSConfigError(
            f"Unable to load private TLS key from '{key_file}'",
            condition=f"{DCMTLS}:0004 Unable to load private TLS key from '{key_file}'",
            details=(("error", queue.fail(key_problem)),),
        )
    cert_problem, cert_key = _certificate_problem(config)
    if cert_problem is not None:
        details.append(("error", queue.fail(cert_problem)))
    mismatch = f"{DCMTLS}:0006 Private key '{key_file}' and certificate '{cert_file}' do not match"
    if cert_problem is not None or not _key_matches(config, cert_key):
        return TLSConfigError(
            f"Private key '{key_file}' and certificate '{cert_file}' do not match",
            condition=mismatch,
            details=tuple(details),
        )
    # Both load and match for cryptography, yet OpenSSL refused them (e.g. a key too small
    # for the security level): OpenSSL's own words.
    return TLSConfigError(
        f"Unable to load certificate from '{cert_file}': {openssl_error_line(cause)}",
        condition=f"{DCMTLS}:0005 Unable to load certificate from '{cert_file}'",
        details=(("error", queue.fail([openssl_error_line(cause)])),),
    )


def _key_problem(config: TLSConfig) -> list[str] | None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - diagnosis only

    try:
        data = Path(str(config.key_file)).read_bytes()
    except OSError as exc:
        return _file_errors(exc, KeyFormat.PEM)
    load = (
        serialization.load_pem_private_key
        if config.key_format is KeyFormat.PEM
        else serialization.load_der_private_key
    )
    secret = None if config.password is None else config.password.encode()
    try:
        load(data, secret)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            return None  # a password for a clear key: OpenSSL ignores it
        return [_E_BAD_DECRYPT]  # encrypted, and no password came (empty prompt, no terminal)
    except ValueError as exc:
        text = str(exc).lower()
        if "decrypt" in text or "password" in text:
            return [_E_BAD_DECRYPT]
        return [_E_UNSUPPORTED]
    except Exception:  # any other refusal is "not a key we can use"
        return [_E_UNSUPPORTED]
    return None


def _certificate_problem(config: TLSConfig) -> tuple[list[str] | None, Any]:
    from cryptography import x509 as cx509  # noqa: PLC0415 - diagnosis only

    try:
        data = Path(str(config.cert_file)).read_bytes()
    except OSError as exc:
        return _file_errors(exc, KeyFormat.PEM), None
    try:
        if config.key_format is KeyFormat.PEM:
            cert = cx509.load_pem_x509_certificate(data)
        else:
            cert = cx509.load_der_x509_certificate(data)
    except ValueError:
        if config.key_format is KeyFormat.PEM:
            return [_E_NO_START_LINE], None
        return [_E_NESTED_ASN1], None
    return None, cert.public_key()


def _key_matches(config: TLSConfig, cert_key: Any) -> bool:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - diagnosis only

    data = Path(str(config.key_file)).read_bytes()
    load = (
        serialization.load_pem_private_key
        if config.key_format is KeyFormat.PEM
        else serialization.load_der_private_key
    )
    try:
        key = load(data, None if config.password is None else config.password.encode())
    except TypeError:
        key = load(data, None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(key.public_key().public_bytes(der, spki) == cert_key.public_bytes(der, spki))


# --------------------------------------------------------------------------------------------
# Handshake errors: the one mapping point
# --------------------------------------------------------------------------------------------

# Alerts by which the peer refused our certificate: a verification failure, on its side.
_REFUSED_BY_PEER = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    }
)


def _link(error: ProbeError, cause: BaseException) -> ProbeError:
    error.__cause__ = cause
    return error


def map_handshake_error(exc: BaseException, *, phase: str = "tls") -> ProbeError:
    """The echoprobe error for an exception raised by a TLS handshake (blocking or asyncio).

    The message is OpenSSL's reason as DCMTK prints it; the original exception is the cause,
    from which `dcmtk_condition` derives DCMTK's condition code."""
    import ssl  # noqa: PLC0415 - only when TLS is used

    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or "unknown reason"
        return _link(
            TLSVerifyFailed(f"TLS error: certificate verify failed ({detail})", phase=phase), exc
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or "")
        text = _reason_text(reason) if reason else str(exc)
        kind = TLSVerifyFailed if reason in _REFUSED_BY_PEER else TLSError
        return _link(kind(f"TLS error: {text}", phase=phase), exc)
    if isinstance(exc, ConnectionResetError) and not exc.errno:
        # asyncio's SSL protocol reports a close during the handshake this way.
        return _link(TLSError("TLS error: unexpected eof while reading", phase=phase), exc)
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return _link(TLSError(f"OpenSSL I/O error (SSL_ERROR_SYSCALL): {reason}", phase=phase), exc)
    return _link(TLSError(f"TLS error: {exc!r}", phase=phase), exc)


def handshake_limit(
    timeout: float | None, total_deadline: float | None, now: float
) -> tuple[float | None, bool]:
    """How long a handshake starting at `now` may take (None: no bound; ≤ 0: already over),
    and whether the association's absolute deadline, not `Timeouts.tls`, is what bounds it."""
    remaining = None if total_deadline is None else total_deadline - now
    by_total = remaining is not None and (timeout is None or remaining < timeout)
    return (remaining if by_total else timeout), by_total


def handshake_timeout(limit: float | None, *, by_total: bool) -> ProbeError:
    """The error for a handshake that did not finish in time: its own timeout, or the
    association's absolute deadline when that came first."""
    if by_total:
        return DeadlineExceeded(
            "the association's deadline passed during the TLS handshake",
            phase="tls",
            timer="total",
        )
    shown = "" if limit is None else f" after {limit:g} s"
    return TLSHandshakeTimeout(f"TLS handshake timed out{shown}", phase="tls")


def _condition_for_ssl_error(exc: BaseException) -> str:
    code, text = _packed_code(exc)
    if code is not None and code >> 23 == _ERR_LIB_SSL and not code & _ERR_LIB_SYS_FLAG:
        return f"{DCMTLS}:{_SSL_REASON_OFFSET + (code & 0x7FFFFF):04x} TLS error: {text}"
    return f"{DCMTLS}:0008 {openssl_error_line(exc)}"


def dcmtk_condition(exc: ProbeError) -> str | None:
    """DCMTK's condition for a TLS failure, e.g. "000b:0886 TLS error: certificate verify
    failed"; None when `exc` is not a TLS failure."""
    if isinstance(exc, TLSConfigError):
        return exc.condition
    if isinstance(exc, TLSHandshakeTimeout) or (
        isinstance(exc, DeadlineExceeded) and exc.phase == "tls"
    ):
        return _COND_WANT_READ  # what DCMTK reports when its handshake read times out
    if not isinstance(exc, TLSError):
        return None
    cause = exc.__cause__
    if cause is None:
        return f"{DCMTLS}:0014 Other TLS error (unknown SSL_ERROR code)"
    import ssl  # noqa: PLC0415 - only when TLS is used

    if isinstance(cause, ssl.SSLError):
        return _condition_for_ssl_error(cause)
    if isinstance(cause, ConnectionResetError) and not cause.errno:
        return f"{DCMTLS}:{_SSL_REASON_OFFSET + 294:04x} TLS error: unexpected eof while reading"
    return _COND_SYSCALL


# --------------------------------------------------------------------------------------------
# The blocking handshake (echoscu's driver)
# --------------------------------------------------------------------------------------------


def handshake_blocking(
    sock: socket.socket,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    deadline: float | None,
    limit: float | None,
    by_total: bool,
    clock: Callable[[], float],
) -> socket.socket:
    """Run the client handshake on connected `sock` until `deadline` (monotonic, None for no
    bound: the whole handshake, not each read) and return the TLS socket, blocking again.
    On failure the socket is closed and a `ProbeError` raised."""
    import select  # noqa: PLC0415 - only with TLS
    import ssl  # noqa: PLC0415 - only when TLS is used

    try:
        tls = context.wrap_socket(
            sock, server_side=False, do_handshake_on_connect=False, server_hostname=server_hostname
        )
    except (OSError, ValueError) as exc:
        sock.close()
        raise map_handshake_error(exc) from exc
    try:
        tls.setblocking(False)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                readable, writable = [tls], []
            except ssl.SSLWantWriteError:
                readable, writable = [], [tls]
            remaining = None if deadline is None else deadline - clock()
            if remaining is not None and remaining <= 0:
                raise handshake_timeout(limit, by_total=by_total)
            ready = select.select(readable, writable, [], remaining)
            if not any(ready):
                raise handshake_timeout(limit, by_total=by_total)
        tls.setblocking(True)
    except ProbeError:
        tls.close()
        raise
    except (OSError, ValueError) as exc:
        tls.close()
        raise map_handshake_error(exc) from exc
    return tls


# --------------------------------------------------------------------------------------------
# What a connection negotiated
# --------------------------------------------------------------------------------------------


def _peer_der(tls: Any) -> bytes | None:
    der = tls.getpeercert(binary_form=True)
    return bytes(der) if der else None


def _x509(der: bytes) -> x509.Certificate:
    from cryptography import x509 as cx509  # noqa: PLC0415 - only for peer certificates

    return cx509.load_der_x509_certificate(der)


def session_facts(tls: Any) -> dict[str, str | None]:
    """The negotiated protocol and cipher suite and the peer certificate's subject (RFC 4514)
    and expiry (ISO 8601, UTC) of a TLS socket or SSL object; keys are `PeerInfo` fields."""
    cipher = tls.cipher()
    facts: dict[str, str | None] = {
        "tls_protocol": tls.version(),
        "tls_cipher": None if cipher is None else str(cipher[0]),
        "tls_peer_subject": None,
        "tls_peer_not_after": None,
    }
    der = _peer_der(tls)
    if der is not None:
        try:
            cert = _x509(der)
        except ValueError:
            return facts
        facts["tls_peer_subject"] = cert.subject.rfc4514_string()
        facts["tls_peer_not_after"] = (
            cert.not_valid_after_utc.astimezone(UTC).isoformat().replace("+00:00", "Z")
        )
    return facts


_ONELINE_NAMES = {"1.2.840.113549.1.9.1": "emailAddress"}


def _oneline(name: Any) -> str:
    # OpenSSL's X509_NAME_oneline: "/O=org/OU=unit/CN=name", in encoding order.
    parts = []
    for attribute in name:
        oid = attribute.oid.dotted_string
        label = _ONELINE_NAMES.get(oid) or attribute.rfc4514_attribute_name
        parts.append(f"/{label}={attribute.value}")
    return "".join(parts)


def _asn1_time(when: datetime) -> str:
    # ASN1_UTCTIME_print: UTCTime only (1950-2049); a GeneralizedTime prints nothing.
    if not 1950 <= when.year <= 2049:
        return ""
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S %Y} GMT"


def _dump_certificate(der: bytes | None) -> str:
    """DCMTK's DcmTLSTransportLayer::dumpX509Certificate."""
    if der is None:
        return "Peer did not provide a certificate or certificate verification is disabled."
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa  # noqa: PLC0415

    cert = _x509(der)
    serial = cert.serial_number if -(2**63) <= cert.serial_number < 2**63 else -1
    key = cert.public_key()
    kind = "unknown"  # DCMTK names RSA, DSA and DH keys only (no certificate carries DH)
    if isinstance(key, rsa.RSAPublicKey):
        kind = "RSA"
    elif isinstance(key, dsa.DSAPublicKey):
        kind = "DSA"
    bits = getattr(key, "key_size", None) or getattr(getattr(key, "curve", None), "key_size", 0)
    version = cert.version.value + 1
    return (
        f"Peer X.509v{version} Certificate\n"
        f"  Subject     : {_oneline(cert.subject)}\n"
        f"  Issued by   : {_oneline(cert.issuer)}\n"
        f"  Serial no.  : {serial}\n"
        f"  Validity    : not before {_asn1_time(cert.not_valid_before_utc)}, "
        f"not after {_asn1_time(cert.not_valid_after_utc)}\n"
        f"  Public key  : {kind}, {bits} bits"
    )


def connection_details(tls: Any) -> str:
    """DCMTK's TLS CONNECTION DETAILS block (logged at debug level after the handshake)."""
    cipher = tls.cipher() or ("(none)", "", 0)
    body = (
        "Transport connection: TLS over TCP/IP\n"
        f"  Protocol    : {tls.version()}\n"
        f"  Ciphersuite : {cipher[0]}, encryption: {cipher[2]} bits\n"
        f"{_dump_certificate(_peer_der(tls))}"
    )
    return (
        "================== BEGIN TLS CONNECTION DETAILS =================\n"
        f"{body}\n"
        "=================== END TLS CONNECTION DETAILS =================="
    )


# --------------------------------------------------------------------------------------------
# Offline checks: DCMTK's +vc (verifyClientCertificate) and +rc (isRootCertificate)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    """The result of an offline check. `problem` is OpenSSL's verification error text
    ("certificate has expired"); `load_error` says why the file could not be read at all."""

    ok: bool
    problem: str | None = None
    load_error: str | None = None
    chain: tuple[str, ...] = field(default=())  # subjects, leaf first, when a chain was built


# X509_verify_cert_error_string texts (OpenSSL 3).
_V_UNABLE_TO_GET_ISSUER = "unable to get issuer certificate"
_V_UNABLE_TO_GET_CRL = "unable to get certificate CRL"
_V_NOT_YET_VALID = "certificate is not yet valid"
_V_EXPIRED = "certificate has expired"
_V_CRL_NOT_YET_VALID = "CRL is not yet valid"
_V_CRL_EXPIRED = "CRL has expired"
_V_DEPTH_ZERO_SELF_SIGNED = "self-signed certificate"
_V_SELF_SIGNED_IN_CHAIN = "self-signed certificate in certificate chain"
_V_NO_LOCAL_ISSUER = "unable to get local issuer certificate"
_V_REVOKED = "certificate revoked"
_V_INVALID_CA = "invalid CA certificate"
_V_PATH_LENGTH = "path length constraint exceeded"
_MAX_DEPTH = 32


def _load_certificates(path: str, key_format: KeyFormat) -> list[x509.Certificate]:
    from cryptography import x509 as cx509  # noqa: PLC0415 - offline checks only

    data = Path(path).read_bytes()
    if key_format is KeyFormat.DER:
        return [cx509.load_der_x509_certificate(data)]
    return list(cx509.load_pem_x509_certificates(data))


def _load_anchor_file(path: str, key_format: KeyFormat) -> list[x509.Certificate]:
    try:
        return _load_certificates(path, key_format)
    except (OSError, ValueError):
        return []  # build_context has warned about it already


def _anchors(config: TLSConfig) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for path in config.ca_files:
        found.extend(_load_anchor_file(path, config.key_format))
    for directory in config.ca_dirs:
        root = Path(directory)
        if not root.is_dir():
            continue
        # OpenSSL's hashed directory: only "<8 hex digits>.<n>" files are looked at.
        for entry in sorted(root.iterdir()):
            if _HASHED_NAME.match(entry.name):
                found.extend(_load_anchor_file(str(entry), config.key_format))
    return found


def _crls(config: TLSConfig) -> list[Any]:
    from cryptography import x509 as cx509  # noqa: PLC0415 - offline checks only

    crls: list[Any] = []
    for path in config.crl_files:
        try:
            data = Path(path).read_bytes()
            if config.key_format is KeyFormat.DER:
                crls.append(cx509.load_der_x509_crl(data))
            else:
                crls.append(cx509.load_pem_x509_crl(data))
        except (OSError, ValueError):
            continue
    return crls


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """OpenSSL's X509_check_issued plus the signature: names, key identifiers, key usage."""
    from cryptography import x509 as cx509  # noqa: PLC0415 - offline checks only

    if cert.issuer != issuer.subject:
        return False
    try:
        akid = cert.extensions.get_extension_for_class(cx509.AuthorityKeyIdentifier).value
        skid = issuer.extensions.get_extension_for_class(cx509.SubjectKeyIdentifier).value
    except (cx509.ExtensionNotFound, ValueError):
        pass
    else:
        if akid.key_identifier is not None and akid.key_identifier != skid.digest:
            return False
    try:
        usage = issuer.extensions.get_extension_for_class(cx509.KeyUsage).value
    except (cx509.ExtensionNotFound, ValueError):
        pass
    else:
        if not usage.key_cert_sign:
            return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # any failure means "not its issuer"
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def _is_ca(cert: x509.Certificate) -> tuple[bool, int | None]:
    from cryptography import x509 as cx509  # noqa: PLC0415 - offline checks only

    try:
        constraints = cert.extensions.get_extension_for_class(cx509.BasicConstraints).value
    except cx509.ExtensionNotFound:
        # OpenSSL accepts a self-signed version 1 certificate as a CA.
        return cert.version is cx509.Version.v1 and _self_signed(cert), None
    except ValueError:
        return False, None
    return bool(constraints.ca), constraints.path_length


def _verify_chain(
    leaf: x509.Certificate,
    *,
    untrusted: list[x509.Certificate],
    anchors: list[x509.Certificate],
    crls: list[Any],
    mode: CRLMode,
    now: datetime,
) -> tuple[str | None, list[x509.Certificate]]:
    """OpenSSL's X509_verify_cert in its order of checks (chain, extensions, revocation, then
    signatures and times from the root down); the first problem is the result."""
    anchor_ders = {a.tbs_certificate_bytes + a.signature for a in anchors}

    def trusted(cert: x509.Certificate) -> bool:
        return cert.tbs_certificate_bytes + cert.signature in anchor_ders

    chain = [leaf]
    while True:
        current = chain[-1]
        if trusted(current) and _self_signed(current):
            break
        issuer = next((a for a in anchors if _issued_by(current, a)), None)
        if issuer is not None:
            chain.append(issuer)
            if _self_signed(issuer):
                break
            continue
        if _self_signed(current):
            first = len(chain) == 1
            return (_V_DEPTH_ZERO_SELF_SIGNED if first else _V_SELF_SIGNED_IN_CHAIN), chain
        issuer = next((u for u in untrusted if u not in chain and _issued_by(current, u)), None)
        if issuer is None or len(chain) >= _MAX_DEPTH:
            if trusted(current):
                return _V_UNABLE_TO_GET_ISSUER, chain
            return _V_NO_LOCAL_ISSUER, chain
        chain.append(issuer)
    for depth, cert in enumerate(chain[1:], start=1):
        is_ca, path_length = _is_ca(cert)
        if not is_ca:
            return _V_INVALID_CA, chain
        if path_length is not None and depth - 1 > path_length:
            return _V_PATH_LENGTH, chain
    if mode is not CRLMode.NONE:
        last = len(chain) - 1 if mode is CRLMode.ALL else 0
        for depth in range(last + 1):
            problem = _revocation_problem(chain, depth, crls, now)
            if problem is not None:
                return problem, chain
    for cert in reversed(chain):
        if now < cert.not_valid_before_utc:
            return _V_NOT_YET_VALID, chain
        if now > cert.not_valid_after_utc:
            return _V_EXPIRED, chain
    return None, chain


def _revocation_problem(
    chain: list[x509.Certificate], depth: int, crls: list[Any], now: datetime
) -> str | None:
    cert = chain[depth]
    issuer = chain[depth + 1] if depth + 1 < len(chain) else cert
    found = None
    for crl in crls:
        if crl.issuer != cert.issuer:
            continue
        try:
            if crl.is_signature_valid(issuer.public_key()):
                found = crl
                break
        except Exception:  # noqa: S112 - an unusable CRL is skipped, as OpenSSL does
            continue
    if found is None:
        return _V_UNABLE_TO_GET_CRL
    if now < found.last_update_utc:
        return _V_CRL_NOT_YET_VALID
    if found.next_update_utc is not None and now > found.next_update_utc:
        return _V_CRL_EXPIRED
    if found.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        return _V_REVOKED
    return None


def _effective_crl_mode(config: TLSConfig, crls: list[Any]) -> CRLMode:
    if config.crl_mode is CRLMode.NONE and crls:
        return CRLMode.LEAF  # a CRL file that loaded enables leaf checking (DCMTK 3.6.8)
    return config.crl_mode


def verify_certificate(
    path: str, config: TLSConfig, *, now: datetime | None = None
) -> CertificateCheck:
    """DCMTK's `+vc`: verify the certificate in `path` (for PEM, further certificates in the
    file are untrusted intermediates) against the CA files/directories and CRLs of `config`."""
    try:
        certs = _load_certificates(path, config.key_format)
    except OSError:
        return CertificateCheck(False, load_error=f"Cannot open certificate file '{path}'")
    except ValueError:
        certs = []
    if not certs:
        kind = "PEM" if config.key_format is KeyFormat.PEM else "DER"
        return CertificateCheck(False, load_error=f"Not a {kind} certificate file: '{path}'")
    crls = _crls(config)
    problem, chain = _verify_chain(
        certs[0],
        untrusted=certs[1:],
        anchors=_anchors(config),
        crls=crls,
        mode=_effective_crl_mode(config, crls),
        now=now or datetime.now(UTC),
    )
    subjects = tuple(c.subject.rfc4514_string() for c in chain)
    return CertificateCheck(problem is None, problem=problem, chain=subjects)


def check_root_certificate(
    path: str, key_format: KeyFormat = KeyFormat.PEM, *, now: datetime | None = None
) -> CertificateCheck:
    """DCMTK's `+rc`: is the certificate in `path` a valid, self-signed root? (OpenSSL verifies
    it against a store holding only itself: self-signature, issuer checks, validity period.)"""
    try:
        certs = _load_certificates(path, key_format)
    except (OSError, ValueError):
        certs = []
    if not certs:
        return CertificateCheck(False, load_error=f"Cannot read certificate file '{path}'")
    cert = certs[0]
    problem, chain = _verify_chain(
        cert,
        untrusted=[],
        anchors=[cert],
        crls=[],
        mode=CRLMode.NONE,
        now=now or datetime.now(UTC),
    )
    return CertificateCheck(
        problem is None, problem=problem, chain=tuple(c.subject.rfc4514_string() for c in chain)
    )
