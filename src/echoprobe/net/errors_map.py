"""The one place where OS-level errors become echoprobe's network errors (rule 4).

Both drivers call these; neither interprets errno values itself.
"""

from __future__ import annotations

import _socket as socket  # not socket.py: its enum tables cost echoscu's start-up
import errno

from echoprobe.errors import (
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    DeadlineExceeded,
    DNSError,
    NetworkError,
    ProbeError,
)


def map_resolve_error(host: str, exc: BaseException) -> DNSError:
    if isinstance(exc, socket.gaierror):
        return DNSError(host, exc.strerror or str(exc))
    return DNSError(host, str(exc) or type(exc).__name__)


def connect_timeout_error(address: str, *, deadline_passed: bool) -> ProbeError:
    """The error for a connect that did not finish in time: the connect timeout's, or the
    association's absolute deadline's when that had passed."""
    if deadline_passed:
        return DeadlineExceeded(
            "the association's deadline passed while connecting", phase="connect"
        )
    return ConnectTimeout(f"connect to {address} timed out", phase="connect")


def map_connect_error(exc: BaseException, *, address: str) -> NetworkError:
    """An exception raised while connecting to `address` ("host:port"), with its errno."""
    error = _connect_error(exc, address)
    if isinstance(exc, OSError) and exc.errno is not None:
        error.os_errno = exc.errno
    return error


def _connect_error(exc: BaseException, address: str) -> NetworkError:
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefused(f"connection refused by {address}", phase="connect")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectTimeout(f"connect to {address} timed out", phase="connect")
    if isinstance(exc, OSError) and exc.errno in (errno.ETIMEDOUT,):
        return ConnectTimeout(f"connect to {address} timed out", phase="connect")
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return ConnectionLost(f"cannot connect to {address}: {reason}", phase="connect")
    return ConnectionLost(f"cannot connect to {address}: {exc!r}", phase="connect")
