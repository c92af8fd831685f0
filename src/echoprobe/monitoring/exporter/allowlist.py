"""Which targets `/probe` may reach: `allowed_targets` of the exporter configuration.

Rules:
- An entry is a network ("127.0.0.0/8", "fd00::/8"), an IP address ("::1"), or a host name
  ("pacs.example.org"); an address or a name may carry a port ("10.0.0.5:104",
  "[::1]:11112", "archive.example.org:11112"), and then only that port is allowed.
- A target given as an IP address is checked against networks and addresses (an IPv4-mapped
  IPv6 address counts as its IPv4 address); a target given as a name only against names,
  compared without case and trailing dot. Names are never resolved here: resolving would be
  I/O on the request path and would check an answer that may change before the probe connects.
  To allow a name, list the name.
- No list (`allowed_targets` absent) allows everything; an empty list allows nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from echoprobe.fleet.targets import TargetSyntaxError, check_host, check_port

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AllowList:
    networks: tuple[tuple[IPNetwork, int | None], ...] = ()
    names: frozenset[tuple[str, int | None]] = frozenset()
    entries: tuple[str, ...] = ()  # as written, for display

    @classmethod
    def parse(cls, entries: list[str]) -> AllowList:
        """Raises ValueError naming the first bad entry."""
        networks: list[tuple[IPNetwork, int | None]] = []
        names: set[tuple[str, int | None]] = set()
        for entry in entries:
            parsed = parse_entry(entry)
            if isinstance(parsed[0], str):
                names.add((parsed[0], parsed[1]))
            else:
                networks.append((parsed[0], parsed[1]))
        return cls(tuple(networks), frozenset(names), tuple(entries))

    def allows(self, host: str, port: int) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            name = _name_key(host)
            return (name, None) in self.names or (name, port) in self.names
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            (only is None or only == port) and ip.version == network.version and ip in network
            for network, only in self.networks
            for ip in candidates
        )


def _name_key(host: str) -> str:
    return host.lower().rstrip(".")


def parse_entry(entry: str) -> tuple[IPNetwork | str, int | None]:
    """One `allowed_targets` entry → (network or lower-case name, port or None)."""
    text = entry.strip()
    if not text:
        raise ValueError("empty entry")
    if "/" in text:
        try:
            return ipaddress.ip_network(text, strict=False), None
        except ValueError as exc:
            raise ValueError(f"invalid network {entry!r}: {exc}") from None
    port: int | None = None
    host = text
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or (close + 1 < len(text) and text[close + 1] != ":"):
            raise ValueError(f"invalid entry {entry!r}: use [IPV6]:PORT")
        host = text[1:close]
        if close + 1 < len(text):
            port = _port(text[close + 2 :], entry)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, entry)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            return _name_key(check_host(host)), port
        except TargetSyntaxError as exc:
            raise ValueError(f"invalid entry {entry!r}: {exc}") from None
    return ipaddress.ip_network(address), port


def _port(text: str, entry: str) -> int:
    try:
        return check_port(text)
    except TargetSyntaxError as exc:
        raise ValueError(f"invalid port in {entry!r}: {exc}") from None
