"""`allowed_targets`: networks, addresses, names, ports; names are never resolved."""

from __future__ import annotations

import pytest

from echoprobe.monitoring.exporter.allowlist import AllowList

ALLOW = AllowList.parse(
    [
        "127.0.0.0/8",
        "::1",
        "pacs.example.org",
        "archive.example.org:11112",
        "10.1.2.3:104",
        "[fd00::5]:11112",
    ]
)


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("127.0.0.1", 104, True),
        ("127.255.255.254", 11112, True),
        ("128.0.0.1", 104, False),
        ("::1", 11112, True),
        ("::2", 11112, False),
        ("::ffff:127.0.0.1", 104, True),  # IPv4-mapped: checked as its IPv4 address
        ("pacs.example.org", 1, True),
        ("PACS.Example.ORG.", 104, True),  # no case, no trailing dot
        ("other.example.org", 104, False),
        ("archive.example.org", 11112, True),
        ("archive.example.org", 104, False),
        ("10.1.2.3", 104, True),
        ("10.1.2.3", 105, False),
        ("fd00::5", 11112, True),
        ("fd00::5", 104, False),
        ("localhost", 104, False),  # a name is only allowed by name, never by resolving it
    ],
)
def test_allows(host: str, port: int, allowed: bool) -> None:
    assert ALLOW.allows(host, port) is allowed


def test_empty_list_allows_nothing() -> None:
    assert not AllowList.parse([]).allows("127.0.0.1", 104)


@pytest.mark.parametrize(
    "entry", ["", "10.0.0.0/33", "[::1", "[::1]x", "host:port", "host:0", "bad host", "a..b"]
)
def test_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError, match=r"entry|network|port|invalid"):
        AllowList.parse([entry])
