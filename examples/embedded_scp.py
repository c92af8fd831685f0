"""An embedded Verification SCP, and a client echoing it, in one asyncio program.

`EchoSCP` runs on the same protocol core as the client. Here it listens on an ephemeral
loopback port; one association is refused on purpose (an unknown called AE title) to show how
a rejection reads.

    uv run python examples/embedded_scp.py
"""

from __future__ import annotations

import asyncio

import echoprobe


async def main() -> int:
    async with echoprobe.EchoSCP("127.0.0.1", 0, ae_titles=["ARCHIVE"]) as scp:
        result = await echoprobe.echo("127.0.0.1", scp.port, called_ae="ARCHIVE", repeat=3)
        print(
            f"ARCHIVE answered {len(result.replies)} echoes, status 0x{result.status:04X}, "
            f"timings {result.timings_ms}"
        )
        try:
            await echoprobe.echo("127.0.0.1", scp.port, called_ae="NOBODY")
        except echoprobe.AssociationRejected as exc:
            print(f"NOBODY: {exc} (result {exc.result}, source {exc.source}, reason {exc.reason})")
        print(f"SCP counters: {scp.counters}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
