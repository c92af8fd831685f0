"""`echoscu`'s TLS: DCMTK 3.6.8's TLS options mapped onto `net.tls`, with DCMTK's messages.

`echoscu` imports this module only when a TLS option (`+tls`, `+tla`, `+vc`, `+rc`) is given,
so that a plain run never loads `ssl`. The order is DCMTK's (echoscu.cc and
DcmTLSOptions::createTransportLayer): CA files, CA directories and CRL files (each one that
fails: `E:` OpenSSL's error, `W: unable to load ... ignoring`), the key and certificate
(`F: 000b:0004 Unable to load private TLS key from '<file>'`), the profile and `+cs` suites,
then `+vc` / `+rc` (a verdict on stdout, exit 0 or 22), and only then the association. DCMTK
walks repeated options from the rightmost one, so `+cf`, `+cd`, `+crl` and `+cs` are
processed right to left here too (it decides the order of the warnings).

Deliberate differences: `+rs`/`+ws`/`+wf` are accepted but do nothing (OpenSSL 3 seeds itself;
an INFO line says so); DER CRLs load (DCMTK's DER lookup only reads certificates); the handshake
is bounded as a whole by `-ts`, not per read; waiting for the A-ASSOCIATE-AC is bounded by `-ta`
(DCMTK under TLS waits `-ts` and ignores `-ta`), with DCMTK's line for it under TLS
("0006:0317 Peer aborted Association (or never connected)"); an unknown `+cs` name gives DCMTK
3.6.8's "000b:0003 Unknown or invalid ciphersuite" (3.6.7: "0001:0007 Illegal call").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from echoprobe.cli.echoscu_options import PeerCertificate, TlsSettings
from echoprobe.errors import ProbeError, TLSConfigError
from echoprobe.net import blocking
from echoprobe.net.tls import (
    CRLMode,
    KeyFormat,
    PeerVerification,
    TLSConfig,
    TLSProfile,
    build_context,
    check_root_certificate,
    connection_details,
    dcmtk_condition,
    verify_certificate,
)
from echoprobe.report.dcmtk_log import DcmtkLogger, Level, write_text

if TYPE_CHECKING:
    import _socket
    import socket
    import ssl

    from echoprobe.cli.echoscu_options import EchoscuConfig
    from echoprobe.options import Timeouts

DCMTLS = "dcmtk.dcmtls"  # DCMTK's TLS library logger
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_INPUT_FILE = 22  # +vc / +rc failed

_LEVELS = {"fatal": Level.FATAL, "error": Level.ERROR, "warning": Level.WARN}


def to_config(settings: TlsSettings) -> TLSConfig:
    """The `TLSConfig` for echoscu's TLS options (right-to-left order of repeated options)."""
    return TLSConfig(
        profile=TLSProfile(settings.profile),
        key_file=settings.key_file if settings.authenticate else None,
        cert_file=settings.cert_file if settings.authenticate else None,
        key_format=KeyFormat(settings.key_format),
        password=settings.password,
        ca_files=tuple(reversed(settings.ca_files)),
        ca_dirs=tuple(reversed(settings.ca_dirs)),
        crl_files=tuple(reversed(settings.crl_files)),
        crl_mode=CRLMode(settings.crl_mode),
        verify_peer=(
            PeerVerification.IGNORE
            if settings.peer_certificate == PeerCertificate.IGNORE
            else PeerVerification.REQUIRE
        ),
        server_name=settings.server_name,
        ciphers=tuple(reversed(settings.ciphers)),
    )


@dataclass(frozen=True, slots=True)
class Session:
    """A TLS layer ready for the association."""

    config: TLSConfig
    context: ssl.SSLContext


def _reporter(log: DcmtkLogger) -> Callable[[str, str], None]:
    def report(level: str, text: str) -> None:
        log.log(_LEVELS.get(level, Level.WARN), text, logger=DCMTLS)

    return report


def prepare(cfg: EchoscuConfig, log: DcmtkLogger) -> Session | int | None:
    """Create the TLS layer and run `+vc` / `+rc`. Returns the session to connect with (None
    without `+tls`/`+tla`), or the exit code when echoscu stops here."""
    settings = cfg.tls
    session: Session | None = None
    if settings.enabled:
        if settings.seed_file is not None:
            log.info(
                "--seed, --write-seed and --write-seed-file have no effect with this OpenSSL "
                "(it seeds its random generator itself); ignored",
                logger=DCMTLS,
            )
        config = to_config(settings)
        try:
            context = build_context(config, report=_reporter(log))
        except TLSConfigError as exc:
            for level, text in exc.details:
                log.log(_LEVELS.get(level, Level.ERROR), text, logger=DCMTLS)
            log.fatal(exc.condition)
            return EXIT_FAILURE
        session = Session(config, context)
    if cfg.verify_cert is not None:
        return _verify(cfg.verify_cert, session, log)
    if cfg.is_root_cert is not None:
        return _root(cfg.is_root_cert, KeyFormat(settings.key_format), log)
    return session


def _verify(path: str, session: Session | None, log: DcmtkLogger) -> int:
    ok = False
    if session is not None:  # without +tls/+tla DCMTK has no TLS layer: the check fails
        check = verify_certificate(path, session.config)
        if check.load_error is not None:
            log.error(check.load_error, logger=DCMTLS)
        elif check.problem is not None:
            log.error(f"certificate verification failed: {check.problem}", logger=DCMTLS)
        ok = check.ok
    verdict = "passed" if ok else "failed"
    write_text(sys.stdout, f"Verification of certificate '{path}' {verdict}.\n")
    return EXIT_OK if ok else EXIT_INVALID_INPUT_FILE


def _root(path: str, key_format: KeyFormat, log: DcmtkLogger) -> int:
    check = check_root_certificate(path, key_format)
    if check.load_error is not None:
        log.error(check.load_error, logger=DCMTLS)
    verdict = "is" if check.ok else "is not"
    write_text(sys.stdout, f"Certificate '{path}' {verdict} a valid, self-signed root CA.\n")
    return EXIT_OK if check.ok else EXIT_INVALID_INPUT_FILE


def handshake(
    session: Session, sock: _socket.socket, timeouts: Timeouts, log: DcmtkLogger
) -> socket.socket:
    """The TLS handshake on the connected socket (bounded by `-ts`, as DCMTK's), then the
    TLS CONNECTION DETAILS block at debug level. Raises `ProbeError` (socket closed)."""
    tls_sock = blocking.start_tls(
        sock,
        session.context,
        server_hostname=session.config.server_name,
        timeout=timeouts.tls,
        total_deadline=None,
    )
    if log.is_enabled(Level.DEBUG, logger=DCMTLS):
        log.debug(connection_details(tls_sock), logger=DCMTLS)
    return tls_sock


def condition(exc: ProbeError) -> str | None:
    """DCMTK's condition for a TLS failure ("000b:0886 TLS error: certificate verify failed")."""
    return dcmtk_condition(exc)
