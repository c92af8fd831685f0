"""A TLS connection's handshake and what it negotiated: the one place where a handshake's
ssl/OS exception becomes an echoprobe error, the blocking handshake of echoscu's driver, and
the session facts and DCMTK's TLS CONNECTION DETAILS block.

Rules of this module:

* `ssl`, `select` and `cryptography` are imported inside the functions that need them.
* Errors: `map_handshake_error()` turns an ssl/OS exception of the handshake into a `TLSError`
  (`TLSVerifyFailed` when a certificate was refused, on either side) whose message is OpenSSL's
  reason as DCMTK prints it ("TLS error: certificate verify failed"); `handshake_timeout()` builds
  the timeout error; `dcmtk_condition()` gives DCMTK's condition line ("000b:0886 TLS error: ...")
  for any of them, `TLSConfigError` included. Every driver maps through here.
* Builds on `tls_openssl` only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from echoprobe.errors import (
    DeadlineExceeded,
    ProbeError,
    TLSConfigError,
    TLSError,
    TLSHandshakeTimeout,
    TLSVerifyFailed,
)
from echoprobe.net.tls_openssl import (
    COND_SYSCALL,
    COND_WANT_READ,
    DCMTLS,
    SSL_REASON_OFFSET,
    condition_for_ssl_error,
    reason_text,
)

if TYPE_CHECKING:
    import socket
    import ssl

    from cryptography import x509

__all__ = [
    "connection_details",
    "dcmtk_condition",
    "handshake_blocking",
    "handshake_limit",
    "handshake_timeout",
    "map_handshake_error",
    "session_facts",
]


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
        text = reason_text(reason) if reason else str(exc)
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


def dcmtk_condition(exc: ProbeError) -> str | None:
    """DCMTK's condition for a TLS failure, e.g. "000b:0886 TLS error: certificate verify
    failed"; None when `exc` is not a TLS failure."""
    if isinstance(exc, TLSConfigError):
        return exc.condition
    if isinstance(exc, TLSHandshakeTimeout) or (
        isinstance(exc, DeadlineExceeded) and exc.phase == "tls"
    ):
        return COND_WANT_READ  # what DCMTK reports when its handshake read times out
    if not isinstance(exc, TLSError):
        return None
    cause = exc.__cause__
    if cause is None:
        return f"{DCMTLS}:0014 Other TLS error (unknown SSL_ERROR code)"
    import ssl  # noqa: PLC0415 - only when TLS is used

    if isinstance(cause, ssl.SSLError):
        return condition_for_ssl_error(cause)
    if isinstance(cause, ConnectionResetError) and not cause.errno:
        return f"{DCMTLS}:{SSL_REASON_OFFSET + 294:04x} TLS error: unexpected eof while reading"
    return COND_SYSCALL


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
