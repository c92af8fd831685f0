"""Certificates for the TLS tests, made once per test session: trustme for the ordinary ones,
`cryptography` for what trustme cannot make (expired, revoked with a CRL, a chain with an
intermediate, DER files, an encrypted key).

Nothing here touches the network. All files land in one directory; `CertKit` names them.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import ipaddress
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSWORD = "s3cret"


@dataclass(frozen=True)
class CertKit:
    """Paths (as strings) of every file the TLS tests use."""

    root: Path
    ca: str  # trustme CA (ECDSA P-256)
    ca_der: str
    server_key: str
    server_cert: str  # for "localhost" and 127.0.0.1, issued by `ca`
    client_key: str
    client_cert: str
    client_key_der: str
    client_cert_der: str
    client_key_encrypted: str  # PEM, PKCS#8, encrypted with PASSWORD
    client_key_der_encrypted: str
    other_ca: str  # a CA that issued nothing we use: "untrusted"
    rsa_ca: str  # trustme RSA CA, for the RSA-only suites (+pn, +pa)
    rsa_key: str
    rsa_cert: str
    test_ca: str  # cryptography-made CA for expiry and revocation
    test_ca_der: str
    good_key: str
    good_cert: str  # valid, issued by test_ca
    good_cert_der: str
    expired_key: str
    expired_cert: str
    revoked_key: str
    revoked_cert: str
    crl: str  # PEM CRL of test_ca revoking revoked_cert
    crl_der: str
    chain_leaf: str  # leaf + intermediate in one PEM file, anchored at test_ca
    self_signed_leaf: str  # self-signed, CA:FALSE
    expired_root: str  # self-signed CA, expired


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    *,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    ca: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return key, builder.sign(signer, hashes.SHA256())


def make_kit(root: Path) -> CertKit:
    """Create every file in `root` (an empty directory)."""
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)

    def write(name: str, data: bytes) -> str:
        path = root / name
        path.write_bytes(data)
        return str(path)

    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("echoscu-client")
    other = trustme.CA()
    rsa_ca = trustme.CA(key_type=trustme.KeyType.RSA)
    rsa_server = rsa_ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.RSA)

    client_key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    client_cert = x509.load_pem_x509_certificate(client.cert_chain_pems[0].bytes())
    der = serialization.Encoding.DER
    pkcs8 = serialization.PrivateFormat.PKCS8

    test_ca_key, test_ca = _certificate(
        "Test CA",
        None,
        None,
        serial=1000,
        not_before=now - day,
        not_after=now + 30 * day,
        ca=True,
    )
    good_key, good = _certificate(
        "good", test_ca, test_ca_key, serial=11, not_before=now - day, not_after=now + 10 * day
    )
    expired_key, expired = _certificate(
        "expired",
        test_ca,
        test_ca_key,
        serial=12,
        not_before=now - 10 * day,
        not_after=now - day,
    )
    revoked_key, revoked = _certificate(
        "revoked", test_ca, test_ca_key, serial=13, not_before=now - day, not_after=now + 10 * day
    )
    mid_key, intermediate = _certificate(
        "Intermediate CA",
        test_ca,
        test_ca_key,
        serial=14,
        not_before=now - day,
        not_after=now + 20 * day,
        ca=True,
    )
    _, chain_leaf = _certificate(
        "chained",
        intermediate,
        mid_key,
        serial=15,
        not_before=now - day,
        not_after=now + 10 * day,
    )
    _, self_leaf = _certificate(
        "self", None, None, serial=16, not_before=now - day, not_after=now + 3 * day
    )
    _, old_root = _certificate(
        "old root",
        None,
        None,
        serial=17,
        not_before=now - 10 * day,
        not_after=now - 3 * day,
        ca=True,
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(test_ca.subject)
        .last_update(now - datetime.timedelta(hours=1))
        .next_update(now + 7 * day)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(13)
            .revocation_date(now - datetime.timedelta(hours=1))
            .build()
        )
        .sign(test_ca_key, hashes.SHA256())
    )
    encrypted = serialization.BestAvailableEncryption(PASSWORD.encode())
    return CertKit(
        root=root,
        ca=write("ca.pem", ca.cert_pem.bytes()),
        ca_der=write(
            "ca.der", x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(der)
        ),
        server_key=write("server.key", server.private_key_pem.bytes()),
        server_cert=write("server.crt", server.cert_chain_pems[0].bytes()),
        client_key=write("client.key", client.private_key_pem.bytes()),
        client_cert=write("client.crt", client.cert_chain_pems[0].bytes()),
        client_key_der=write(
            "client.key.der",
            client_key.private_bytes(der, pkcs8, serialization.NoEncryption()),
        ),
        client_cert_der=write("client.crt.der", client_cert.public_bytes(der)),
        client_key_encrypted=write(
            "client-enc.key", client_key.private_bytes(serialization.Encoding.PEM, pkcs8, encrypted)
        ),
        client_key_der_encrypted=write(
            "client-enc.key.der", client_key.private_bytes(der, pkcs8, encrypted)
        ),
        other_ca=write("other-ca.pem", other.cert_pem.bytes()),
        rsa_ca=write("rsa-ca.pem", rsa_ca.cert_pem.bytes()),
        rsa_key=write("rsa.key", rsa_server.private_key_pem.bytes()),
        rsa_cert=write("rsa.crt", rsa_server.cert_chain_pems[0].bytes()),
        test_ca=write("test-ca.pem", _pem(test_ca)),
        test_ca_der=write("test-ca.der", test_ca.public_bytes(der)),
        good_key=write("good.key", _key_pem(good_key)),
        good_cert=write("good.crt", _pem(good)),
        good_cert_der=write("good.der", good.public_bytes(der)),
        expired_key=write("expired.key", _key_pem(expired_key)),
        expired_cert=write("expired.crt", _pem(expired)),
        revoked_key=write("revoked.key", _key_pem(revoked_key)),
        revoked_cert=write("revoked.crt", _pem(revoked)),
        crl=write("test.crl", crl.public_bytes(serialization.Encoding.PEM)),
        crl_der=write("test.crl.der", crl.public_bytes(der)),
        chain_leaf=write("chain.pem", _pem(chain_leaf) + _pem(intermediate)),
        self_signed_leaf=write("self.crt", _pem(self_leaf)),
        expired_root=write("old-root.crt", _pem(old_root)),
    )


@functools.cache
def shared_kit() -> CertKit:
    """One kit per test process (RSA keys are slow to make), removed when the process ends."""
    root = Path(tempfile.mkdtemp(prefix="echoprobe-tls-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return make_kit(root)
