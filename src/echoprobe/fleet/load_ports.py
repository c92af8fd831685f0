"""Local ports and TIME_WAIT: what limits new connections from this machine to one SCP.

Rules: every connection we close first sits in TIME_WAIT (60 s) holding its local port
(docs/robustness.md §4.3). The facts are read from Linux's /proc (None when unknown, never an
error); nothing here opens a socket.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from echoprobe.net.addresses import strip_brackets

TIME_WAIT_SECONDS: Final = 60  # Linux's TCP_TIMEWAIT_LEN: not tunable
NO_PORT_ERRNOS: Final = (errno.EADDRNOTAVAIL, errno.EADDRINUSE)
NO_PORT_TEXTS: Final = tuple(os.strerror(code) for code in NO_PORT_ERRNOS)


@dataclass(frozen=True, slots=True)
class PortFacts:
    """What limits new connections from this machine to one SCP address (Linux values)."""

    port_range: tuple[int, int] | None
    tw_reuse: int | None  # net.ipv4.tcp_tw_reuse: 1 = on, 2 = loopback only (the default)
    loopback: bool  # the SCP's address is a loopback address
    source_addresses: int  # local addresses used (0: the kernel chooses)

    @property
    def ports(self) -> int | None:
        if self.port_range is None:
            return None
        return self.port_range[1] - self.port_range[0] + 1

    @property
    def reuses_time_wait(self) -> bool:
        """The kernel may reuse a TIME_WAIT port for a new outgoing connection here (only
        when it picks the port at connect(): not after a bind() to a source address)."""
        if self.source_addresses or self.tw_reuse is None:
            return False
        return self.tw_reuse == 1 or (self.tw_reuse == 2 and self.loopback)

    @property
    def sustainable_rate(self) -> float | None:
        """New connections per second this machine can keep up without running out of local
        ports (None: not limited here, or unknown)."""
        if self.ports is None or self.reuses_time_wait:
            return None
        return self.ports * max(1, self.source_addresses) / TIME_WAIT_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return {
            "port_range": list(self.port_range) if self.port_range else None,
            "ports": self.ports,
            "tw_reuse": self.tw_reuse,
            "loopback": self.loopback,
            "source_addresses": self.source_addresses,
            "time_wait_seconds": TIME_WAIT_SECONDS,
            "sustainable_rate": self.sustainable_rate,
        }


def _read_int_file(path: str) -> list[int] | None:
    try:
        return [int(v) for v in Path(path).read_text().split()]
    except (OSError, ValueError):
        return None


def port_facts(host: str, source_addresses: int) -> PortFacts:
    values = _read_int_file("/proc/sys/net/ipv4/ip_local_port_range")
    reuse = _read_int_file("/proc/sys/net/ipv4/tcp_tw_reuse")
    try:
        loopback = ipaddress.ip_address(strip_brackets(host)).is_loopback
    except ValueError:
        loopback = False
    return PortFacts(
        port_range=(values[0], values[1]) if values and len(values) == 2 else None,
        tw_reuse=reuse[0] if reuse else None,
        loopback=loopback,
        source_addresses=source_addresses,
    )


def count_time_wait(host: str, port: int) -> int | None:
    """Sockets in TIME_WAIT towards host:port, from /proc/net/tcp{,6} (None: unknown)."""
    try:
        ip = ipaddress.ip_address(strip_brackets(host))
    except ValueError:
        return None
    if ip.version == 4:
        wanted = f"{int.from_bytes(ip.packed, 'little'):08X}:{port:04X}"
        path = "/proc/net/tcp"
    else:
        words = [ip.packed[i : i + 4] for i in range(0, 16, 4)]
        wanted = "".join(f"{int.from_bytes(w, 'little'):08X}" for w in words) + f":{port:04X}"
        path = "/proc/net/tcp6"
    try:
        with open(path, encoding="ascii") as table:
            next(table, None)
            return sum(
                1
                for line in table
                if (cols := line.split(maxsplit=4))[3] == "06" and cols[2] == wanted
            )
    except (OSError, IndexError):
        return None


def explain_ports(facts: PortFacts, address: str) -> str:
    """Why many short connections to one SCP address run out of local ports, and what helps."""
    span = (
        f"ports {facts.port_range[0]}-{facts.port_range[1]} ({facts.ports:,})"
        if facts.port_range and facts.ports
        else "the ephemeral port range"
    )
    per_source = f"{facts.ports / TIME_WAIT_SECONDS:,.0f}" if facts.ports else "a few hundred"
    return (
        f"Each connection this machine closes first stays in TIME_WAIT for {TIME_WAIT_SECONDS} s "
        f"and keeps its local port. With {span}, one local address can open about "
        f"{per_source} new connections per second to {address}, sustained; past that, "
        f"connect() fails with '{NO_PORT_TEXTS[0]}' (or bind() with '{NO_PORT_TEXTS[1]}'). "
        "Spread the load: --source-address with a range of local addresses (e.g. "
        "127.0.0.2-127.0.0.40 on loopback), an SCP listening on several ports or addresses, "
        "or several generator machines; widening net.ipv4.ip_local_port_range helps a little."
    )


__all__ = [
    "NO_PORT_ERRNOS",
    "TIME_WAIT_SECONDS",
    "PortFacts",
    "count_time_wait",
    "explain_ports",
    "port_facts",
]
