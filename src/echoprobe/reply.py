"""`EchoReply`: one C-ECHO exchange, as the results report it.

Its own module, re-exported by `echoprobe.results`, so that `echoscu`'s usual path records its
replies without importing `results` (its `Outcome` and `Phase` enums import `enum`, which
costs that start-up about 3 ms).
"""

from __future__ import annotations

from echoprobe._values import value

__all__ = ["EchoReply"]


@value
class EchoReply:
    """One C-ECHO exchange: our Message ID, the peer's status, round-trip milliseconds."""

    message_id: int
    status: int
    rtt_ms: float
    error_comment: str | None = None
