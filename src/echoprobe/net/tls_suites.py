"""DCMTK's TLS cipher-suite table (dcmtls/libsrc/tlsciphr.cc globalCipherSuiteList) and its
security profiles as data, and the OpenSSL cipher string a profile plus added suites makes.

Rules of this module:

* The tables are data, transcribed from DCMTK 3.6.8, weakest suite first; a profile is its
  suites, its TLS versions and what `+cs` may add to it (docs/robustness.md §3.3).
* `ssl` is imported only inside the functions that ask OpenSSL what it offers.
* DCMTK's rules for added suites are applied here, with its messages: refusals raise
  `TLSConfigError` with DCMTK's condition; warnings go to the caller's `Report`.
* Builds on `tls_settings` and `tls_openssl` only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from echoprobe.errors import TLSConfigError
from echoprobe.net.tls_openssl import (
    COND_NOT_ALLOWED,
    COND_PROFILE,
    DCMTLS,
    openssl_version,
)
from echoprobe.net.tls_settings import Report, TLSProfile

__all__ = ["cipher_string", "supported_cipher_suites"]


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


def cipher_string(
    profile: TLSProfile, ciphers: tuple[str, ...], server_side: bool, report: Report
) -> tuple[str, _Profile]:
    """The OpenSSL cipher string of `profile` plus the added `ciphers`, DCMTK's rules applied."""
    spec = _PROFILES[profile]
    available = _openssl_suites()
    if profile is TLSProfile.BASIC and "DES-CBC3-SHA" not in available:
        raise TLSConfigError(
            f"{profile.title} needs TLS_RSA_WITH_3DES_EDE_CBC_SHA (3DES), which this OpenSSL "
            "build does not provide",
            condition=COND_PROFILE,
            details=(
                (
                    "fatal",
                    f"The {profile.title} (+pb) needs the 3DES cipher suite "
                    "TLS_RSA_WITH_3DES_EDE_CBC_SHA, which is unavailable with this OpenSSL "
                    f"({openssl_version()}); use the default profile (+pg) or another one.",
                ),
            ),
        )
    chosen = [_BY_IANA[name] for name in spec.suites]
    if spec.optional_3des and "DES-CBC3-SHA" in available:
        chosen.append(_BY_IANA[_3DES])
    for name in ciphers:
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
            condition=COND_NOT_ALLOWED,
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
            condition=COND_NOT_ALLOWED,
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
                condition=COND_NOT_ALLOWED,
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
