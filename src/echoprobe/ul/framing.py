"""Cut a byte stream into whole PDUs, checking every declared length before buffering.

Rules (PS3.8 §9.3.1, robustness requirements 2-3):
- The first byte of a PDU must be a known PDU type (0x01-0x07); anything else is refused as
  soon as that byte arrives, without waiting for the rest of the header.
- The declared length is checked against the limit for its type the moment the 6-byte header
  is complete: fixed-size PDUs exactly 4, A-ASSOCIATE-RQ/AC at most their limit, P-DATA-TF at
  most our advertised Maximum Length. A peer never chooses how much we buffer.
- Feeding the same bytes whole or one by one yields the same PDUs.
"""

from __future__ import annotations

from struct import Struct

from echoprobe._values import value
from echoprobe.errors import PDUTooLarge, RemoteProtocolError

_HEADER = Struct(">BBL")
_FIXED_TYPES = frozenset((0x03, 0x05, 0x06, 0x07))


@value
class FrameLimits:
    """Largest body (declared PDU length) accepted per PDU type.

    `max_pdata` is our advertised Maximum Length (0 = we advertised "unlimited"; then
    `unlimited_pdata_cap` still bounds memory).
    """

    max_pdata: int = 16384
    max_associate_rq: int = 1 << 20
    max_associate_ac: int = 64 << 10
    unlimited_pdata_cap: int = 1 << 20

    def limit_for(self, pdu_type: int) -> int:
        if pdu_type == 0x04:
            return self.max_pdata if self.max_pdata else self.unlimited_pdata_cap
        if pdu_type == 0x02:
            return self.max_associate_ac
        if pdu_type == 0x01:
            return self.max_associate_rq
        return 4


class Framer:
    """Accumulates bytes and hands out `(pdu_type, body)` pairs, one PDU at a time."""

    __slots__ = ("_buffer", "_limits")

    def __init__(self, limits: FrameLimits | None = None) -> None:
        self._buffer = bytearray()
        self._limits = limits or FrameLimits()

    @property
    def limits(self) -> FrameLimits:
        return self._limits

    @limits.setter
    def limits(self, value: FrameLimits) -> None:
        self._limits = value

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out (non-zero means a PDU is half read)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        """Drop whatever is buffered (the stream is no longer read)."""
        self._buffer.clear()

    def whole(self, data: bytes) -> tuple[int, bytes] | None:
        """`(pdu_type, body)` when nothing is buffered and `data` is exactly one acceptable
        PDU (the usual read), without copying it through the buffer; else None, and the caller
        feeds `data` (any error is then raised by `next_pdu`, with its offset)."""
        if self._buffer or len(data) < 6:
            return None
        pdu_type, _, length = _HEADER.unpack_from(data, 0)
        if len(data) != 6 + length or not 0x01 <= pdu_type <= 0x07:
            return None
        if pdu_type in _FIXED_TYPES:
            if length != 4:
                return None
        elif length > self._limits.limit_for(pdu_type):
            return None
        return pdu_type, data[6:]

    def next_pdu(self) -> tuple[int, bytes] | None:
        """The next whole PDU, or None when more bytes are needed. Raises RemoteProtocolError."""
        buf = self._buffer
        if not buf:
            return None
        pdu_type = buf[0]
        if not 0x01 <= pdu_type <= 0x07:
            raise RemoteProtocolError(
                f"unrecognized PDU type 0x{pdu_type:02x}",
                offset=0,
                field="pdu_type",
                abort_reason=1,
                pdu_type=pdu_type,
            )
        if len(buf) < 6:
            return None
        _, _, length = _HEADER.unpack_from(buf, 0)
        if pdu_type in _FIXED_TYPES:
            if length != 4:
                raise RemoteProtocolError(
                    f"PDU type 0x{pdu_type:02x} must have length 4, declares {length}",
                    offset=2,
                    field="pdu_length",
                    abort_reason=6,
                    pdu_type=pdu_type,
                )
        else:
            limit = self._limits.limit_for(pdu_type)
            if length > limit:
                raise PDUTooLarge(pdu_type, length, limit)
        end = 6 + length
        if len(buf) < end:
            return None
        body = bytes(buf[6:end])
        del buf[:end]
        return pdu_type, body
