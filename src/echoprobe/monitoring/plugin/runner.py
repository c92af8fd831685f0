"""Run the check under its deadline: `probe()` for one peer, `sweep()` for an inventory.

Rules:
- The whole check is bounded by `-t` from the moment `Budget` is made: one peer gets the time
  that is left as its association deadline (every phase bounded by it too); a fleet's sweep is
  told to stop (`ResultStream.stop()`) a little before `-t`, so probes in flight record
  `cancelled` and targets never started `not_started`, and every target still gets its record.
- A guard `GUARD_GRACE` seconds past `-t` ends the wait whatever happens below (a record
  synthesized as `deadline_exceeded` for one peer; missing records counted for a fleet), so the
  output comes within `-t` plus a small slack even if a lower layer overran.
- `-4` / `-6`: for one peer the name is resolved here with that family (a literal of the other
  family fails as `check_tcp`'s does: "Invalid hostname, address or socket"); for a fleet the
  sweep gets a resolver that asks for that family (address literals are probed as written).
- `probe()` and `sweep()` never raise for a peer's failure; nothing here turns an exception
  into a state (the CLI maps what escapes to UNKNOWN).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from echoprobe._values import replace
from echoprobe.fleet.sweep import ResolveFn, sweep
from echoprobe.fleet.targets import TargetItem
from echoprobe.net.addresses import format_address, literal_family, strip_brackets
from echoprobe.net.client import probe
from echoprobe.options import Timeouts
from echoprobe.results import Outcome, ProbeResult

if TYPE_CHECKING:
    from echoprobe.net.tls import TLSConfig

GUARD_GRACE: Final = 0.5  # seconds past -t before the guard ends the wait
MIN_PEER_TIME: Final = 0.05  # a peer deadline is never below this (Timeouts must be > 0)


@dataclass(frozen=True, slots=True)
class Association:
    """What every association proposes."""

    calling_ae: str = "ECHOSCU"
    called_ae: str = "ANY-SCP"
    max_pdu: int = 16384
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class Budget:
    """The check's time: `-t` from `started` (a `time.monotonic()` reading)."""

    timeout: float
    started: float
    peer_timeout: float | None = None  # a fleet peer's own deadline (default: -t)
    release_timeout: float | None = None  # None: the peer's deadline bounds the release

    @classmethod
    def start(
        cls,
        timeout: float,
        *,
        peer_timeout: float | None = None,
        release_timeout: float | None = None,
    ) -> Budget:
        return cls(timeout, time.monotonic(), peer_timeout, release_timeout)

    def remaining(self) -> float:
        return max(self.started + self.timeout - time.monotonic(), 0.0)

    def timeouts(self, seconds: float) -> Timeouts:
        """Every phase and the whole association bounded by `seconds`."""
        limit = max(seconds, MIN_PEER_TIME)
        release = limit if self.release_timeout is None else min(self.release_timeout, limit)
        return Timeouts(
            connect=limit, tls=limit, acse=limit, dimse=limit, release=release, total=limit
        )

    def stop_margin(self) -> float:
        """How long before -t a fleet sweep is told to stop (its records still to come)."""
        return min(0.5, self.timeout * 0.1)


def _record(
    host: str, port: int, assoc: Association, outcome: Outcome, *, error: str, phase: str | None
) -> ProbeResult:
    return ProbeResult(
        target=f"{assoc.called_ae}@{format_address(host, port)}",
        host=host,
        port=port,
        called_ae=assoc.called_ae,
        calling_ae=assoc.calling_ae,
        outcome=outcome,
        error=error,
        phase=phase,
    )


async def _resolve_family(host: str, port: int, family: int, limit: float) -> str | None:
    """The first address of `family` for `host` (None: none, or the lookup failed)."""
    bare = strip_brackets(host)
    literal = literal_family(bare)
    if literal is not None:
        return bare if literal == family else None
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limit):
            infos = await loop.getaddrinfo(bare, port, family=family, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError):
        return None
    return str(infos[0][4][0]) if infos else None


async def check_peer(
    host: str,
    port: int,
    assoc: Association,
    budget: Budget,
    *,
    family: int | None = None,
    tls: TLSConfig | None = None,
) -> ProbeResult:
    """Verify one peer within the budget; always returns a record."""
    target = f"{assoc.called_ae}@{format_address(strip_brackets(host), port)}"
    address = host
    if family is not None:
        resolved = await _resolve_family(host, port, family, budget.remaining())
        if resolved is None:
            wanted = "IPv4" if family == socket.AF_INET else "IPv6"
            error = f"no {wanted} address for {host}"
            return _record(host, port, assoc, Outcome.DNS_ERROR, error=error, phase="resolve")
        address = resolved
    try:
        async with asyncio.timeout(budget.remaining() + GUARD_GRACE):
            result = await probe(
                address,
                port,
                calling_ae=assoc.calling_ae,
                called_ae=assoc.called_ae,
                timeouts=budget.timeouts(budget.remaining()),
                max_pdu=assoc.max_pdu,
                repeat=assoc.repeat,
                target=target,
                tls=tls,
            )
    except TimeoutError:
        return _record(
            host,
            port,
            assoc,
            Outcome.DEADLINE_EXCEEDED,
            error="the check's deadline passed (guard)",
            phase=None,
        )
    return result if address == host else replace(result, host=strip_brackets(host))


@dataclass(frozen=True, slots=True)
class FleetRun:
    results: tuple[ProbeResult, ...]
    elapsed_s: float
    missing: int  # records owed but not delivered before the guard (a bug if ever > 0)


@dataclass(frozen=True, slots=True)
class Politeness:
    """`echoprobe sweep`'s concurrency and politeness options, with its names."""

    concurrency: int = 64
    per_host: int = 1
    rate: float | None = None
    dns_concurrency: int = 32


def _family_resolver(family: int) -> ResolveFn:
    async def resolve(host: str, port: int) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    return resolve


async def check_fleet(
    items: Iterable[TargetItem],
    assoc: Association,
    budget: Budget,
    politeness: Politeness,
    *,
    family: int | None = None,
    tls: TLSConfig | None = None,
    tls_all: bool = False,
) -> FleetRun:
    """Verify every inventory entry within the budget: one record per distinct target."""
    loop = asyncio.get_running_loop()
    results: list[ProbeResult] = []
    peer_time = budget.peer_timeout or budget.timeout
    owed = 0
    async with sweep(
        items,
        concurrency=politeness.concurrency,
        per_host=politeness.per_host,
        rate=politeness.rate,
        timeouts=budget.timeouts(min(peer_time, budget.remaining())),
        calling_ae=assoc.calling_ae,
        called_ae=assoc.called_ae,
        repeat=assoc.repeat,
        max_pdu=assoc.max_pdu,
        dns_concurrency=politeness.dns_concurrency,
        resolver=None if family is None else _family_resolver(family),
        tls=tls,
        tls_all=tls_all,
    ) as stream:
        stopper = loop.call_later(max(budget.remaining() - budget.stop_margin(), 0.0), stream.stop)
        try:
            async with asyncio.timeout(budget.remaining() + GUARD_GRACE):
                async for record in stream:
                    results.append(record)
        except TimeoutError:
            owed = max(stream.stats.expected - len(results), 0)
        finally:
            stopper.cancel()
    elapsed = time.monotonic() - budget.started
    return FleetRun(tuple(results), elapsed, owed)
