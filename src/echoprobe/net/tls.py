"""DICOM TLS (PS3.15 Annex B): the names the rest of echoprobe imports, gathered in one place.

Rules of this module:

* It only re-exports; every name lives in the `net.tls_*` module of its responsibility:
  `tls_settings` (profiles and choices), `tls_context` (`TLSConfig`, building contexts),
  `tls_suites` (DCMTK's cipher-suite table), `tls_openssl` (OpenSSL's errors as DCMTK prints
  them), `tls_session` (handshakes, error mapping, session facts) and `tls_checks` (`+vc`, `+rc`).
* Importing it costs no ssl or cryptography import (none of those modules imports them at
  import time), so `echoscu` without TLS options never loads them.
* No `net.tls_*` module imports this one.
"""

from __future__ import annotations

from echoprobe.net.tls_checks import CertificateCheck, check_root_certificate, verify_certificate
from echoprobe.net.tls_context import TLSConfig, build_context, client_settings, server_context_for
from echoprobe.net.tls_openssl import openssl_error_line
from echoprobe.net.tls_session import (
    connection_details,
    dcmtk_condition,
    handshake_blocking,
    handshake_limit,
    handshake_timeout,
    map_handshake_error,
    session_facts,
)
from echoprobe.net.tls_settings import CRLMode, KeyFormat, PeerVerification, Report, TLSProfile
from echoprobe.net.tls_suites import supported_cipher_suites

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
    "openssl_error_line",
    "server_context_for",
    "session_facts",
    "supported_cipher_suites",
    "verify_certificate",
]
