"""The whole exception hierarchy of echoprobe.

Rules (one place converts errors at each boundary):
- bytes from the wire that break PS3.8/PS3.7 raise `RemoteProtocolError` (codec, framer,
  `ULConnection`, DIMSE decoding); nothing else escapes the pure core.
- OS, ssl and async errors become `NetworkError` subclasses inside `net/` only.
- `echo()` raises `ProbeError` subclasses; `probe()` and `sweep()` turn them into records.

Every `ProbeError` knows its stable `outcome` string (see `results.Outcome`) and the phase in
which it happened, so a failure is classified once, where it is raised.

The standard library's families are kept, so that code written for sockets catches ours too:
every timeout is also a builtin `TimeoutError` (`except TimeoutError` sees `ConnectTimeout`,
`AssociationTimeout`, `DIMSETimeout`, `ReleaseTimeout`, `DeadlineExceeded`, ...), and
`ConnectionRefused` is also a `ConnectionRefusedError` (an `OSError` whose `errno` is
ECONNREFUSED). Inside `net/`, an `except OSError` / `except TimeoutError` therefore wraps only
the system call it guards, never code that raises these classes.
"""

from __future__ import annotations

import errno as _errno
import os as _os


class EchoprobeError(Exception):
    """Base class of every error echoprobe raises on purpose."""


class LocalProtocolError(EchoprobeError):
    """The caller asked the protocol core for something its state does not allow (a bug)."""


class RemoteProtocolError(EchoprobeError):
    """The peer sent bytes that break PS3.8 or PS3.7.

    `offset` is the byte offset inside the PDU (or command set) where decoding stopped,
    `field` names what was being read, and `abort_reason` is the A-ABORT reason (PS3.8
    Table 9-26) a provider sends for it: 1 unrecognized PDU, 2 unexpected PDU, 4 unrecognized
    PDU parameter, 5 unexpected PDU parameter, 6 invalid PDU parameter value.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        field: str | None = None,
        abort_reason: int = 6,
        pdu_type: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.field = field
        self.abort_reason = abort_reason
        self.pdu_type = pdu_type

    def __str__(self) -> str:
        where = []
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class PDUTooLarge(RemoteProtocolError):
    """A PDU declared a length above the limit we accept for its type (checked before reading)."""

    def __init__(self, pdu_type: int, length: int, limit: int) -> None:
        super().__init__(
            f"PDU type 0x{pdu_type:02x} declares length {length}, limit is {limit}",
            offset=2,
            field="pdu_length",
            abort_reason=6,
            pdu_type=pdu_type,
        )
        self.length = length
        self.limit = limit


# --- probe failures (raised by the network layer and echo(); outcome strings are stable) ---


class ProbeError(EchoprobeError):
    """A probe of one peer failed. `phase` is a `results.Phase` value string."""

    outcome = "internal_error"

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.message = message
        self.phase = phase

    def __str__(self) -> str:
        return self.message


class NetworkError(ProbeError):
    """The transport failed: resolution, connection, reset, close, TLS. `os_errno` is the
    operating system's error number when one caused it (e.g. EADDRNOTAVAIL: no local port)."""

    outcome = "connection_lost"
    os_errno: int | None = None


class DNSError(NetworkError):
    """The host name could not be resolved (`reason` is the resolver's word)."""

    outcome = "dns_error"

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot resolve {host!r}: {reason}", phase="resolve")
        self.host = host
        self.reason = reason


class ConnectionRefused(NetworkError, ConnectionRefusedError):
    """The peer's host answered the TCP connect with a reset: nothing listens on that port.

    Also a builtin `ConnectionRefusedError` (so an `OSError`), with `errno` ECONNREFUSED."""

    outcome = "connection_refused"

    def __init__(self, message: str, *, phase: str = "connect") -> None:
        super().__init__(message, phase=phase)
        self.errno = _errno.ECONNREFUSED
        self.strerror = _os.strerror(_errno.ECONNREFUSED)


class ConnectionLost(NetworkError):
    """The peer closed or reset the connection. `mid_pdu` tells whether a PDU was cut short;
    `write_error` is the system's word when it was our write that failed (e.g. "Connection
    reset by peer" while sending the A-ASSOCIATE-RQ), None when a read saw it."""

    outcome = "connection_lost"

    def __init__(
        self, message: str, *, phase: str, mid_pdu: bool = False, write_error: str | None = None
    ) -> None:
        super().__init__(message, phase=phase)
        self.mid_pdu = mid_pdu
        self.write_error = write_error


class TLSError(NetworkError):
    """The TLS handshake or session failed."""

    outcome = "tls_error"


class TLSVerifyFailed(TLSError):
    """The peer's certificate did not verify against the trusted certificates."""

    outcome = "tls_verify_failed"


class TLSConfigError(TLSError):
    """TLS could not be set up here (key, certificate, profile, cipher suites); nothing was sent.

    `condition` is DCMTK's condition line for it ("000b:0004 Unable to load private TLS key from
    'k.pem'"); `details` are the (level, text) lines DCMTK logs before it, level being "fatal",
    "error" or "warning" (e.g. ("error", "OpenSSL error 80000002: OpenSSL error")).
    """

    def __init__(
        self,
        message: str,
        *,
        condition: str,
        details: tuple[tuple[str, str], ...] = (),
        phase: str = "tls",
    ) -> None:
        super().__init__(message, phase=phase)
        self.condition = condition
        self.details = details


class TimeoutError_(ProbeError, TimeoutError):
    """A deadline expired. `timer` says which: the phase's own timeout, the per-read socket
    timeout, or the association's absolute deadline; `mid_pdu` whether a PDU was half read.

    Also a builtin `TimeoutError`, so `except TimeoutError` catches every echoprobe timeout."""

    outcome = "timeout"

    def __init__(
        self, message: str, *, phase: str, timer: str = "phase", mid_pdu: bool = False
    ) -> None:
        super().__init__(message, phase=phase)
        self.timer = timer
        self.mid_pdu = mid_pdu


class ConnectTimeout(TimeoutError_, NetworkError):
    """The TCP connect did not complete within `Timeouts.connect` (or the total deadline)."""

    outcome = "connect_timeout"


class TLSHandshakeTimeout(TimeoutError_, TLSError):
    """The TLS handshake did not complete within `Timeouts.tls` (or the total deadline)."""

    outcome = "tls_handshake_timeout"


class AssociationTimeout(TimeoutError_):
    """No A-ASSOCIATE-AC/RJ arrived within `Timeouts.acse` (DCMTK's `-ta`)."""

    outcome = "acse_timeout"


class DIMSETimeout(TimeoutError_):
    """No C-ECHO-RSP arrived within `Timeouts.dimse` (DCMTK's `-td`)."""

    outcome = "dimse_timeout"


class ReleaseTimeout(TimeoutError_):
    """No A-RELEASE-RP arrived within `Timeouts.release` (we aborted instead)."""

    outcome = "release_timeout"


class DeadlineExceeded(TimeoutError_):
    """The association's absolute deadline (`Timeouts.total`) expired."""

    outcome = "deadline_exceeded"


class AssociationRejected(ProbeError):
    """A-ASSOCIATE-RJ with the peer's own result, source and reason bytes (PS3.8 §9.3.4)."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        from echoprobe.ul.constants import (  # noqa: PLC0415 - avoids a cycle
            describe_reject,
            reject_is_valid,
        )

        super().__init__(
            f"association rejected: {describe_reject(result, source, reason)}", phase="associate"
        )
        self.result = result
        self.source = source
        self.reason = reason
        self.valid = reject_is_valid(result, source, reason)

    @property
    def outcome(self) -> str:  # type: ignore[override]
        if not self.valid:  # values outside Table 9-21 (robustness requirements §2.7)
            return "protocol_error"
        return "rejected_transient" if self.result == 2 else "rejected_permanent"


class AssociationAborted(ProbeError):
    """The peer sent A-ABORT (source and reason as on the wire, PS3.8 §9.3.8)."""

    outcome = "aborted_by_peer"

    def __init__(self, source: int, reason: int, *, phase: str) -> None:
        from echoprobe.ul.constants import describe_abort  # noqa: PLC0415 - avoids a cycle

        super().__init__(
            f"peer aborted the association: {describe_abort(source, reason)}", phase=phase
        )
        self.source = source
        self.reason = reason


class ProtocolError(ProbeError):
    """The peer broke the protocol; we sent A-ABORT (`abort_reason`) and closed."""

    outcome = "protocol_error"

    def __init__(self, error: RemoteProtocolError, *, phase: str) -> None:
        super().__init__(f"protocol error: {error}", phase=phase)
        self.error = error
        self.abort_reason = error.abort_reason
        self.pdu_type = error.pdu_type


class PeerRequestedRelease(ProbeError):
    """The peer sent A-RELEASE-RQ while we waited for a C-ECHO-RSP (we abort)."""

    outcome = "protocol_error"


class NoAcceptedContext(ProbeError):
    """The A-ASSOCIATE-AC accepted no usable Verification presentation context."""

    outcome = "no_accepted_context"

    def __init__(self, message: str, results: tuple[tuple[int, int], ...] = ()) -> None:
        super().__init__(message, phase="associate")
        self.results = results  # (context id, result) as the peer answered


class DIMSEError(ProbeError):
    """The C-ECHO exchange failed at the DIMSE level (malformed or unexpected response)."""

    outcome = "protocol_error"

    def __init__(self, message: str, *, code: str, phase: str = "echo") -> None:
        super().__init__(message, phase=phase)
        self.code = code  # a stable short name, e.g. "unexpected_message_id"


class SendImpossible(DIMSEError):
    """The peer's Maximum Length is too small to carry any PDV (PS3.8 Annex D.1)."""

    def __init__(self, peer_max_pdu: int) -> None:
        super().__init__(
            f"peer's maximum PDU length {peer_max_pdu} cannot carry a PDV (must be > 12)",
            code="peer_max_pdu_too_small",
        )
        self.peer_max_pdu = peer_max_pdu


class EchoStatusError(ProbeError):
    """A C-ECHO-RSP arrived with a non-success status (only `echo()` raises it)."""

    outcome = "echo_failed_status"

    def __init__(self, status: int, error_comment: str | None = None) -> None:
        from echoprobe.dimse.status import status_text  # noqa: PLC0415 - avoids a cycle

        text = f"C-ECHO status 0x{status:04X} ({status_text(status)})"
        if error_comment:
            text += f": {error_comment}"
        super().__init__(text, phase="echo")
        self.status = status
        self.error_comment = error_comment


class ReleaseFailed(ProbeError):
    """The release went wrong after the echoes (the echo verdict stands, see `EchoResult`)."""

    outcome = "release_failed"


class InvalidTarget(EchoprobeError):
    """A target specification could not be parsed."""
