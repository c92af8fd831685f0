"""`TLSConfig` and the `ssl.SSLContext`s it builds, as DCMTK's DcmTLSOptions does: trust
anchors, CRLs, our key and certificate, profile and suites, and DCMTK's report of what failed.

Rules of this module:

* `ssl` is imported only inside the functions that build a context, `cryptography` only for
  DER keys and for diagnosing a failed key load: importing this module (for `TLSConfig`) costs
  no ssl import, so `echoscu` without TLS options never loads it.
* As DCMTK: trust anchors only from the given CA files and directories (never the system store),
  peer verification required by default, no hostname check, ALPN "dicom", no SNI unless asked.
* A file that cannot be loaded is reported (E: line, then W: line) and skipped, in DCMTK's
  order; a key or certificate that cannot be used raises `TLSConfigError` with DCMTK's condition
  and the OpenSSL lines it logs before it. A plain key never touches the disk.
* Builds on `tls_settings`, `tls_openssl` and `tls_suites`.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import secrets
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echoprobe.errors import TLSConfigError
from echoprobe.net.tls_openssl import (
    DCMTLS,
    E_NOT_DER,
    HASHED_NAME,
    ErrorQueue,
    condition_for_ssl_error,
    file_errors,
    openssl_error_line,
)
from echoprobe.net.tls_settings import CRLMode, KeyFormat, PeerVerification, Report, TLSProfile
from echoprobe.net.tls_suites import cipher_string

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

__all__ = ["TLSConfig", "build_context", "client_settings", "server_context_for"]


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
    queue = ErrorQueue()
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
    ciphers, spec = cipher_string(config.profile, config.ciphers, server_side, say)
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise TLSConfigError(
            openssl_error_line(exc),
            condition=condition_for_ssl_error(exc),
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
        return file_errors(exc, key_format)
    try:  # one DER certificate per file, as DCMTK (X509_LOOKUP_load_file, FILETYPE_ASN1)
        context.load_verify_locations(cadata=data)
    except (OSError, ValueError):
        return list(E_NOT_DER)
    return []


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
            if HASHED_NAME.match(entry.name):
                context.load_verify_locations(cadata=entry.read_bytes())
    except (OSError, ValueError) as exc:
        return file_errors(exc, key_format)
    return []


def _load_crl_file(context: ssl.SSLContext, path: str, key_format: KeyFormat) -> list[str]:
    """Add one CRL file. DER CRLs work here (DCMTK's DER lookup only reads certificates)."""
    try:
        if key_format is KeyFormat.PEM:
            context.load_verify_locations(cafile=path)
            return []
        der = Path(path).read_bytes()
    except (OSError, ValueError) as exc:
        return file_errors(exc, key_format)
    if not der.startswith(b"\x30"):
        return list(E_NOT_DER)
    # ssl reads CRLs from PEM files only: re-wrap the DER bytes (no key material involved).
    body = base64.encodebytes(der).decode("ascii")
    pem = f"-----BEGIN X509 CRL-----\n{body}-----END X509 CRL-----\n"
    try:
        with tempfile.TemporaryDirectory(prefix="echoprobe-crl-") as tmp:
            target = Path(tmp, "crl.pem")
            target.write_text(pem, encoding="ascii")
            context.load_verify_locations(cafile=str(target))
    except (OSError, ValueError):
        return list(E_NOT_DER)
    return []


def _load_identity(context: ssl.SSLContext, config: TLSConfig, queue: ErrorQueue) -> None:
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
    config: TLSConfig, cause: BaseException, queue: ErrorQueue
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
        return file_errors(exc, KeyFormat.PEM)
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
        return file_errors(exc, KeyFormat.PEM), None
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
