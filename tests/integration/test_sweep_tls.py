"""TLS per target in a sweep: the inventory's `tls` flag (or `tls_all`) picks who gets TLS."""

from __future__ import annotations

from echoprobe.fleet.sweep import sweep
from echoprobe.fleet.targets import Target
from echoprobe.net.server import EchoSCP
from echoprobe.net.tls import PeerVerification, TLSConfig
from echoprobe.options import Timeouts
from echoprobe.results import Outcome
from tests.support.tls_certs import shared_kit

TIMEOUTS = Timeouts(connect=2, tls=2, acse=2, dimse=2, release=2)


async def _sweep(
    targets: list[Target], tls: TLSConfig | None, tls_all: bool = False
) -> dict[str, tuple[Outcome, str | None]]:
    records = {}
    async with sweep(targets, concurrency=8, timeouts=TIMEOUTS, tls=tls, tls_all=tls_all) as out:
        async for record in out:
            assert record.name is not None
            protocol = record.peer.tls_protocol if record.peer else None
            records[record.name] = (record.outcome, protocol)
    return records


async def test_tls_only_where_the_inventory_asks_for_it() -> None:
    kit = shared_kit()
    server = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    async with (
        EchoSCP("127.0.1.1", 0, tls=server) as secure,
        EchoSCP("127.0.1.2", 0) as plain,
    ):
        targets = [
            Target(host="127.0.1.1", port=secure.port, name="secure", tls=True),
            Target(host="127.0.1.2", port=plain.port, name="plain"),
            # TLS asked of a plaintext peer: a TLS failure, not a hang
            Target(host="127.0.1.2", port=plain.port, name="mismatch", called_ae="X", tls=True),
        ]
        got = await _sweep(targets, TLSConfig(ca_files=(kit.ca,)))
    assert got["secure"][0] is Outcome.SUCCESS
    assert got["secure"][1] is not None
    assert got["secure"][1].startswith("TLSv1.")
    assert got["plain"] == (Outcome.SUCCESS, None)
    assert got["mismatch"][0] in (Outcome.TLS_ERROR, Outcome.CONNECTION_LOST)


async def test_tls_target_without_settings_is_an_invalid_target() -> None:
    async with EchoSCP("127.0.1.3", 0) as scp:
        got = await _sweep([Target(host="127.0.1.3", port=scp.port, name="t", tls=True)], None)
    assert got["t"][0] is Outcome.INVALID_TARGET


async def test_tls_all_applies_to_every_target() -> None:
    kit = shared_kit()
    server = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    async with EchoSCP("127.0.1.4", 0, tls=server) as secure:
        targets = [Target(host="127.0.1.4", port=secure.port, name="s")]
        got = await _sweep(targets, TLSConfig(ca_files=(kit.ca,)), tls_all=True)
    assert got["s"][0] is Outcome.SUCCESS
    assert got["s"][1] is not None
