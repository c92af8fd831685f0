"""Results of probes: stable outcome strings, phases, per-phase timings, peer facts.

`Outcome` values are a public contract: they appear in JSON Lines, CSV, metrics and exit-code
rules, so a value is never renamed. `ProbeResult` is the one record per target that `probe()`
and `sweep()` produce whatever happens.
"""

from __future__ import annotations

from enum import StrEnum

from echoprobe._values import field, fields_of, value
from echoprobe.reply import EchoReply  # its home; re-exported here

__all__ = ["PHASES", "EchoReply", "EchoResult", "Outcome", "PeerInfo", "Phase", "ProbeResult"]

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:
    from typing import Any


class Outcome(StrEnum):
    SUCCESS = "success"
    DNS_ERROR = "dns_error"
    CONNECTION_REFUSED = "connection_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECTION_LOST = "connection_lost"
    TLS_ERROR = "tls_error"
    TLS_HANDSHAKE_TIMEOUT = "tls_handshake_timeout"
    TLS_VERIFY_FAILED = "tls_verify_failed"
    ACSE_TIMEOUT = "acse_timeout"
    REJECTED_PERMANENT = "rejected_permanent"
    REJECTED_TRANSIENT = "rejected_transient"
    ABORTED_BY_PEER = "aborted_by_peer"
    PROTOCOL_ERROR = "protocol_error"
    NO_ACCEPTED_CONTEXT = "no_accepted_context"
    DIMSE_TIMEOUT = "dimse_timeout"
    ECHO_FAILED_STATUS = "echo_failed_status"
    RELEASE_TIMEOUT = "release_timeout"
    RELEASE_FAILED = "release_failed"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    NOT_STARTED = "not_started"
    INVALID_TARGET = "invalid_target"
    INTERNAL_ERROR = "internal_error"

    def __str__(self) -> str:
        return self.value

    @property
    def echo_succeeded(self) -> bool:
        """True when every C-ECHO returned 0000H (release trouble does not change that)."""
        return self in (Outcome.SUCCESS, Outcome.RELEASE_TIMEOUT, Outcome.RELEASE_FAILED)


class Phase(StrEnum):
    RESOLVE = "resolve"
    CONNECT = "connect"
    TLS = "tls"
    ASSOCIATE = "associate"
    ECHO = "echo"
    RELEASE = "release"

    def __str__(self) -> str:
        return self.value


PHASES = tuple(p.value for p in Phase)


@value
class PeerInfo:
    """What the peer told us about itself during negotiation."""

    address: str | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    max_pdu: int | None = None
    transfer_syntax: str | None = None
    context_id: int | None = None
    tls_protocol: str | None = None
    tls_cipher: str | None = None
    tls_peer_subject: str | None = None
    tls_peer_not_after: str | None = None


@value
class EchoResult:
    """A completed association: every reply, what was negotiated, how long each phase took.

    `release` is "released", "aborted" (we sent A-ABORT on purpose), "collision" (a release
    collision completed per PS3.8), or the failure: "release_timeout", "peer_aborted",
    "connection_closed".
    """

    host: str
    port: int
    calling_ae: str
    called_ae: str
    replies: tuple[EchoReply, ...]
    peer: PeerInfo
    timings_ms: dict[str, float]
    release: str = "released"
    warnings: tuple[str, ...] = ()

    @property
    def status(self) -> int | None:
        """The status of the last reply (None if no echo was sent)."""
        return self.replies[-1].status if self.replies else None

    @property
    def ok(self) -> bool:
        return bool(self.replies) and all(r.status == 0 for r in self.replies)


@value
class ProbeResult:
    """Exactly one record per target, whatever happened."""

    target: str
    host: str
    port: int
    called_ae: str
    calling_ae: str
    outcome: Outcome
    status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    peer: PeerInfo | None = None
    error: str | None = None
    phase: str | None = None
    echoes: int = 0
    name: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with stable keys (the JSON Lines record)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in fields_of(self)}
        data["outcome"] = self.outcome.value
        data["tags"] = list(self.tags)
        data["detail"] = dict(self.detail)
        data["timings_ms"] = dict(self.timings_ms)
        if self.peer is not None:
            data["peer"] = {name: getattr(self.peer, name) for name in fields_of(self.peer)}
        return data
