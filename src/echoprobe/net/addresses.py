"""Peer addresses: IPv4 and IPv6 literals, host names, and `host:port` strings.

Rules: a literal is never sent to a resolver; an IPv6 literal may be written bare (`::1`) or
in brackets (`[::1]`). Resolution itself is the driver's job (blocking or async).
"""

from __future__ import annotations

import _socket as socket  # not socket.py: its enum tables cost echoscu's start-up

from echoprobe._memo import bounded_cache


def strip_brackets(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


@bounded_cache(4096)
def literal_family(host: str) -> int | None:
    """AF_INET / AF_INET6 when `host` is an IP literal, else None (a name to resolve)."""
    # inet_pton, not ipaddress: the same answer without ipaddress's import cost at start-up.
    bare = strip_brackets(host)
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, bare.split("%", 1)[0])
        except (OSError, ValueError):
            continue
        return family
    return None


def format_address(host: str, port: int) -> str:
    """`host:port`, with IPv6 literals in brackets."""
    host = strip_brackets(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
