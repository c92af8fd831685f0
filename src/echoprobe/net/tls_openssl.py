"""OpenSSL's errors as DCMTK prints and numbers them (DcmTLSTransportLayer::convertOpenSSLError):
the E: lines of a failed load, the queue DCMTK reads them from, and DCMTK's condition codes.

Rules of this module:

* `ssl` (and CPython's `_ssl` error tables) are imported inside the functions that need them,
  never at import time.
* Texts and codes are OpenSSL 3's as DCMTK 3.6.8 shows them ("OpenSSL error 80000002: OpenSSL
  error", "000b:0886 TLS error: certificate verify failed"); changing one changes echoscu's
  output, which is compared with DCMTK's.
* Builds only on `tls_settings`; no ssl object is created here.
"""

from __future__ import annotations

import errno
import functools
import re

from echoprobe.net.tls_settings import KeyFormat

__all__ = [
    "COND_NOT_ALLOWED",
    "COND_PROFILE",
    "COND_SYSCALL",
    "COND_WANT_READ",
    "DCMTLS",
    "E_NOT_DER",
    "HASHED_NAME",
    "SSL_REASON_OFFSET",
    "ErrorQueue",
    "condition_for_ssl_error",
    "file_errors",
    "openssl_error_line",
    "openssl_version",
    "reason_text",
]

DCMTLS = "000b"  # DCMTK's module number of dcmtls conditions (OFM_dcmtls)
SSL_REASON_OFFSET = 0x800  # DCMTLS_EC_SSL_Offset: condition code = 0x800 + SSL reason code
ERR_LIB_SSL = 20
ERR_LIB_SYS_FLAG = 0x80000000  # OpenSSL 3 packs system errors as this flag | errno
COND_WANT_READ = f"{DCMTLS}:000b TLS read operation did not complete (SSL_ERROR_WANT_READ)"
COND_SYSCALL = f"{DCMTLS}:0017 OpenSSL I/O error (SSL_ERROR_SYSCALL)"
COND_NOT_ALLOWED = f"{DCMTLS}:000a Ciphersuite not allowed in current DICOM security profile"
COND_PROFILE = f"{DCMTLS}:0018 DICOM TLS Secure Transport Connection Profile not supported"


# OpenSSL's hashed certificate directory: "<subject hash>.<n>" files (c_rehash, openssl rehash).
HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.\d+$")


def openssl_version() -> str:
    import ssl  # noqa: PLC0415 - only when TLS is used

    return ssl.OPENSSL_VERSION


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


def reason_text(mnemonic: str) -> str:
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
            return None, reason_text(reason) if reason else str(exc)
        lib, code = lib_reason
        return (lib << 23) | code, reason_text(reason)
    if isinstance(exc, OSError) and exc.errno:
        return ERR_LIB_SYS_FLAG | exc.errno, "OpenSSL error"  # no reason string for these
    return None, str(exc)


def openssl_error_line(exc: BaseException) -> str:
    """DCMTK's E: line for an OpenSSL error: `OpenSSL error 80000002: OpenSSL error`, or
    `TLS error: <reason>` for an error of OpenSSL's SSL library."""
    code, text = _packed_code(exc)
    if code is not None and code >> 23 == ERR_LIB_SSL and not code & ERR_LIB_SYS_FLAG:
        return f"TLS error: {text}"
    if code is None:
        return f"OpenSSL error: {text}"
    return f"OpenSSL error {code:08x}: {text}"


class ErrorQueue:
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


def file_errors(exc: BaseException, key_format: KeyFormat) -> list[str]:
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
E_NOT_DER = [
    _E_WRONG_TAG,
    "OpenSSL error 0688010a: nested asn1 error",
    "OpenSSL error 0588000d: ASN1 lib",
]


def condition_for_ssl_error(exc: BaseException) -> str:
    code, text = _packed_code(exc)
    if code is not None and code >> 23 == ERR_LIB_SSL and not code & ERR_LIB_SYS_FLAG:
        return f"{DCMTLS}:{SSL_REASON_OFFSET + (code & 0x7FFFFF):04x} TLS error: {text}"
    return f"{DCMTLS}:0008 {openssl_error_line(exc)}"
