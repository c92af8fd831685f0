"""Offline certificate checks: DCMTK's `+vc` (verifyClientCertificate) and `+rc`
(isRootCertificate), done with `cryptography` the way OpenSSL's X509_verify_cert does them.

Rules of this module:

* `cryptography` is imported inside the functions that need it; no ssl, no network.
* The order of checks and the problem texts are OpenSSL 3's (chain, CA extensions, revocation,
  then times from the root down; X509_verify_cert_error_string), so that the result reads as
  DCMTK's. The first problem found is the result; a file that cannot be read is `load_error`.
* Builds on `tls_settings`, `tls_openssl` and `tls_context` (for `TLSConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echoprobe.net.tls_openssl import HASHED_NAME
from echoprobe.net.tls_settings import CRLMode, KeyFormat

if TYPE_CHECKING:
    from cryptography import x509

    from echoprobe.net.tls_context import TLSConfig

__all__ = ["CertificateCheck", "check_root_certificate", "verify_certificate"]


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
            if HASHED_NAME.match(entry.name):
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
