"""DICOM TLS settings vocabulary: DCMTK's security profiles and the key, CRL and peer
verification choices a `TLSConfig` is made of, plus the `Report` callback type.

Rules of this module:

* Pure values: no ssl, no cryptography, no I/O; importing it costs nothing, so option parsing
  (`echoscu` without TLS options included) may use it freely.
* The enum values are DCMTK 3.6.8's `echoscu` option spellings or stable lower-case words;
  they appear in messages and must not change.
* It imports no other `net.tls_*` module, so none can import it back.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

__all__ = ["CRLMode", "KeyFormat", "PeerVerification", "Report", "TLSProfile"]

Report = Callable[[str, str], None]
"""Receives the non-fatal problems of a context build, in DCMTK's order, as (level, text) with
level "error" or "warning"; e.g. ("error", "OpenSSL error 80000002: OpenSSL error") followed by
("warning", "unable to load certificate file 'ca.pem', ignoring")."""


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
