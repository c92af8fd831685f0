"""The shape of a load run: ramps of concurrency or rate, and the local addresses it uses.

Rules: pure parsing and values, no I/O and no clock; bad input raises `ValueError` with the
offending text, for the command line to show as a usage error.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ramp:
    """From `start` to `end` (associations at once, or per second), linearly over the measured
    part of the run (its duration, or else its number of associations)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError("ramp levels must be positive numbers")


def parse_ramp(text: str, default_start: float | None = None) -> Ramp:
    """`END` (from `default_start`) or `START:END`, e.g. "1:64" or "100:5000"."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"not a ramp: {text!r} (use END or START:END)") from None
    if len(values) == 1 and default_start is not None:
        return Ramp(default_start, values[0])
    if len(values) == 2:
        return Ramp(values[0], values[1])
    raise ValueError(f"not a ramp: {text!r} (use END or START:END)")


def parse_source_addresses(specs: str | Iterable[str], *, limit: int = 65536) -> list[str]:
    """Local addresses from specs like "127.0.0.2", "127.0.0.2-127.0.0.40", "127.0.0.2-40"
    (last octet), "127.0.1.0/28" (its hosts), or comma-separated lists of these."""
    if isinstance(specs, str):
        specs = [specs]
    out: list[str] = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            try:
                out.extend(_expand_source(part, limit - len(out)))
            except ValueError as exc:
                raise ValueError(f"bad source address {part!r}: {exc}") from None
            if len(out) > limit:
                raise ValueError(f"more than {limit} source addresses")
    if not out:
        raise ValueError("no source address given")
    return list(dict.fromkeys(out))


def _expand_source(part: str, room: int) -> list[str]:
    if "/" in part:
        net = ipaddress.ip_network(part, strict=False)
        if net.num_addresses > room + 2:
            raise ValueError("too many addresses")
        hosts = list(net.hosts()) or [net.network_address]
        return [h.compressed for h in hosts]
    if "-" in part:
        first_text, last_text = part.split("-", 1)
        first = ipaddress.ip_address(first_text.strip())
        last_text = last_text.strip()
        if last_text.isdigit() and first.version == 4:
            prefix = first.compressed.rsplit(".", 1)[0]
            last = ipaddress.ip_address(f"{prefix}.{last_text}")
        else:
            last = ipaddress.ip_address(last_text)
        if last.version != first.version or int(last) < int(first):
            raise ValueError("the range's end comes before its start")
        if int(last) - int(first) + 1 > room:
            raise ValueError("too many addresses")
        return [ipaddress.ip_address(n).compressed for n in range(int(first), int(last) + 1)]
    return [ipaddress.ip_address(part).compressed]


__all__ = ["Ramp", "parse_ramp", "parse_source_addresses"]
