"""The values an `EchoSCP` is made of: what it injects (`Faults`), what it counts
(`SCPCounters`), where per-address settings apply, and the answers it encodes once.

Rules:
- Values only: no I/O, no clock, no asyncio; frozen, slotted dataclasses except the two
  mutable records (`SCPCounters`, the per-listener answer memory in `Listener`).
- `Faults()` is a well-behaved SCP; a phase name is one of `PHASES` (checked on construction,
  so that a typo is an error and not a silent no-op).
- Per-address tables are keyed by (host, port), (host, 0) for every port, or the host alone,
  hosts normalized once (IP addresses compressed, names lower-case): the exact port wins.
- Answers that depend only on the request bytes (A-ASSOCIATE-AC, C-ECHO-RSP) are encoded once
  and reused: the SCP must never be the bottleneck of a benchmark (measured in the README).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Final, NamedTuple, TypeVar

from echoprobe.dimse.echo import echo_response_command, parse_echo_request
from echoprobe.dimse.fragment import fragment_command
from echoprobe.net.addresses import strip_brackets
from echoprobe.ul.negotiation import AcceptorPolicy

T = TypeVar("T")

PHASES: Final = ("connect", "associate", "echo", "release")
"""Where a fault can strike: right after the TCP accept ("connect"), on the A-ASSOCIATE-RQ
("associate"), on each C-ECHO-RQ ("echo"), on the A-RELEASE-RQ ("release")."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour on purpose. The defaults everywhere make a well-behaved SCP.

    At a phase (see `PHASES`), the first fault that applies wins, in this order: `abort_at`,
    `close_at`, `silent_at`, then `delay` (after which the SCP answers normally).

    - `reject`: A-ASSOCIATE-RJ (result, source, reason) instead of the AC (PS3.8 Table 9-21).
    - `abort_at`: send A-ABORT (`abort_source`, `abort_reason`, Table 9-26) instead of
      answering, then wait (ARTIM) for the peer to close.
    - `close_at`: close the TCP connection instead of answering (FIN, no A-RELEASE/A-ABORT).
    - `silent_at`: from that phase on, send nothing at all; the peer's A-ABORT or close is
      still read, and the idle timeout ends the connection.
    - `delay`: phase → seconds to wait before answering (input is held meanwhile).
    - `trickle`: send every answer one byte at a time, this many seconds apart.
    - `status`, `error_comment`: the C-ECHO-RSP's Status (0000H = success) and Error Comment.
    - `no_release_response`: never answer the A-RELEASE-RQ (the same as `silent_at="release"`).
    - `release_collision`: on A-RELEASE-RQ, send our own A-RELEASE-RQ first (see `_collide`).
    - `reject_contexts`: accept the association but reject every presentation context
      (result 3, abstract-syntax-not-supported).
    """

    reject: tuple[int, int, int] | None = None
    abort_at: str | None = None
    abort_source: int = 0
    abort_reason: int = 0
    close_at: str | None = None
    silent_at: str | None = None
    delay: Mapping[str, float] = field(default_factory=dict)
    trickle: float = 0.0
    status: int = 0x0000
    error_comment: str | None = None
    no_release_response: bool = False
    release_collision: bool = False
    reject_contexts: bool = False

    def __post_init__(self) -> None:
        for name in ("abort_at", "close_at", "silent_at"):
            phase = getattr(self, name)
            if phase is not None and phase not in PHASES:
                raise ValueError(f"Faults.{name} must be one of {', '.join(PHASES)}, not {phase!r}")
        for phase, seconds in self.delay.items():
            if phase not in PHASES:
                raise ValueError(f"Faults.delay phase must be one of {', '.join(PHASES)}")
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(f"Faults.delay[{phase!r}] must be a finite number ≥ 0")
        if self.reject is not None and (
            len(self.reject) != 3 or not all(0 <= v <= 255 for v in self.reject)
        ):
            raise ValueError("Faults.reject must be three bytes (result, source, reason)")
        if not (0 <= self.abort_source <= 255 and 0 <= self.abort_reason <= 255):
            raise ValueError("Faults.abort_source and abort_reason must be bytes")
        if not 0 <= self.status <= 0xFFFF:
            raise ValueError("Faults.status must be 0..0xFFFF")
        if not (self.trickle >= 0 and math.isfinite(self.trickle)):
            raise ValueError("Faults.trickle must be a finite number ≥ 0")

    @property
    def healthy(self) -> bool:
        """True when nothing is injected."""
        return self == NO_FAULTS

    def describe(self) -> str:
        """A short human summary, e.g. "reject 1,1,7" or "delay echo 2s, status 0x0110"."""
        parts: list[str] = []
        if self.reject is not None:
            parts.append("reject {},{},{}".format(*self.reject))
        if self.abort_at is not None:
            parts.append(f"A-ABORT ({self.abort_source},{self.abort_reason}) at {self.abort_at}")
        if self.close_at is not None:
            parts.append(f"close at {self.close_at}")
        if self.silent_at is not None:
            parts.append(f"silent from {self.silent_at}")
        parts.extend(f"delay {phase} {seconds:g}s" for phase, seconds in self.delay.items())
        if self.trickle:
            parts.append(f"trickle {self.trickle:g}s/byte")
        if self.status:
            parts.append(f"status 0x{self.status:04X}")
        if self.error_comment:
            parts.append(f"error comment {self.error_comment!r}")
        if self.no_release_response:
            parts.append("no release response")
        if self.release_collision:
            parts.append("release collision")
        if self.reject_contexts:
            parts.append("reject all presentation contexts")
        return ", ".join(parts) if parts else "none"


NO_FAULTS: Final = Faults()


@dataclass(slots=True)
class SCPCounters:
    """What an `EchoSCP` did. Plain integers, readable at any time."""

    connections: int = 0  # TCP connections accepted
    associations: int = 0  # A-ASSOCIATE-AC sent
    rejected: int = 0  # A-ASSOCIATE-RJ sent (any reason, the busy ones included)
    rejected_busy: int = 0  # ... of which because of max_associations
    echoes: int = 0  # C-ECHO-RSP sent
    echo_failures: int = 0  # ... of which with a non-success status
    releases: int = 0  # A-RELEASE-RP sent
    release_collisions: int = 0  # A-RELEASE-RQ sent by us on purpose (release collision)
    aborts_received: int = 0
    aborts_sent: int = 0
    closed_by_fault: int = 0  # connections closed instead of answering (close_at)
    silenced: int = 0  # connections on which the SCP went silent on purpose
    timeouts: int = 0  # connections closed by the idle bound or the ARTIM timer
    protocol_errors: int = 0  # the peer broke PS3.8/PS3.7 (we aborted)
    peak_associations: int = 0  # most associations established at the same time
    dropped_slow_pdu: int = 0  # a PDU not whole within pdu_timeout of its first byte
    dropped_lifetime: int = 0  # connections older than max_lifetime
    dropped_buffer_cap: int = 0  # unassociated connections past max_pending_bytes together
    reclaimed_idle: int = 0  # idle associations aborted to make room for a new one
    write_pauses: int = 0  # times a client's unread answers stopped us reading it
    internal_errors: int = 0  # a bug, caught at the protocol callback (logged once)
    contexts_rejected: int = 0  # presentation contexts refused in the A-ASSOCIATE-ACs sent
    closed_unreleased: int = 0  # associations whose connection closed with no release/abort
    tls_handshake_failures: int = 0  # TLS clients that failed or never finished the handshake

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        """`name=value` pairs, the zero ones left out except the first three."""
        items = self.as_dict().items()
        keep = ("connections", "associations", "echoes")
        return " ".join(f"{k}={v}" for k, v in items if v or k in keep)


def normalize_host(host: str) -> str:
    host = strip_brackets(host)
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


AddressKey = tuple[str, int] | str
"""A listening address a per-address setting applies to: (host, port), (host, 0) for every
port of that host, or the host alone."""

AddressTable = Mapping[str, T] | Mapping[tuple[str, int], T] | Mapping[AddressKey, T]


def by_address(table: Mapping[AddressKey, T], host: str, port: int) -> T | None:
    """The entry of `table` for a listener on (host, port): exact port first, then any port."""
    for key in ((host, port), (host, 0), host):
        if key in table:
            return table[key]
    return None


def normalize_table(table: AddressTable[T] | None) -> dict[AddressKey, T]:
    out: dict[AddressKey, T] = {}
    items: Iterable[tuple[AddressKey, T]] = table.items() if table else ()
    for key, value in items:
        if isinstance(key, str):
            out[normalize_host(key)] = value
        else:
            out[(normalize_host(key[0]), int(key[1]))] = value
    return out


class Answer(NamedTuple):
    """What an A-ASSOCIATE-RQ gets, computed once per distinct request."""

    ac: bytes  # the A-ASSOCIATE-AC
    accepted: frozenset[int]  # accepted presentation context IDs
    max_fragment: int  # the largest command fragment the requestor's Maximum Length allows
    rejected: int  # presentation contexts refused


@dataclass(slots=True)
class Listener:
    """One listening socket and what a connection to it gets."""

    host: str
    port: int
    faults: Faults = NO_FAULTS
    policy: AcceptorPolicy = field(default_factory=AcceptorPolicy)
    # Whole A-ASSOCIATE-RQ bytes → the answer, for requests this listener has accepted.
    accepted: dict[bytes, Answer] = field(default_factory=dict)


@lru_cache(maxsize=1024)
def echo_rsp_pdus(
    message_id: int, status: int, comment: str | None, context_id: int, max_fragment: int
) -> bytes:
    return fragment_command(
        echo_response_command(message_id, status, comment), context_id, max_fragment
    )


@lru_cache(maxsize=256)
def echo_rq_message_id(command: bytes) -> int:
    return parse_echo_request(command)


__all__ = [
    "NO_FAULTS",
    "PHASES",
    "AddressKey",
    "AddressTable",
    "Answer",
    "Faults",
    "Listener",
    "SCPCounters",
    "by_address",
    "echo_rq_message_id",
    "echo_rsp_pdus",
    "normalize_host",
    "normalize_table",
]
