"""Fuzz the PDU codec (`ul/codec.py`): decode any bytes, re-encode what decodes.

Invariants:
- `decode_pdu` / `decode_pdu_bytes` raise only `RemoteProtocolError`, always with the field
  and an offset inside the PDU.
- A decoded PDU encodes without error to a PDU of the same type that decodes to an equal value,
  and encoding is then stable (the codec keeps unknown items, so nothing is lost twice).
"""

from __future__ import annotations

import contextlib

from echoprobe.errors import RemoteProtocolError
from echoprobe.ul.codec import decode_pdu, decode_pdu_bytes, encode_pdu
from fuzz._common import Finding


def _decode(pdu_type: int, body: bytes) -> object:
    try:
        return decode_pdu(pdu_type, body)
    except RemoteProtocolError as exc:
        if exc.field is None or exc.offset is None or not 0 <= exc.offset <= 6 + len(body):
            raise Finding(f"error without a field or a sane offset: {exc!r} {exc}") from exc
        return None


def check(data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(RemoteProtocolError):
        decode_pdu_bytes(data)  # the header check, then the same decoder
    # The body is taken after the 6-byte header whatever length it declares, so that
    # mutations of the body are not all stopped by the length check above.
    pdu_type, body = data[0], data[6:]
    pdu = _decode(pdu_type, body)
    if pdu is None:
        return
    encoded = encode_pdu(pdu)  # type: ignore[arg-type]
    if encoded[0] != pdu_type:
        raise Finding(f"PDU type 0x{pdu_type:02x} re-encoded as 0x{encoded[0]:02x}")
    try:
        again = decode_pdu_bytes(encoded)
    except RemoteProtocolError as exc:
        raise Finding(f"re-encoded {pdu!r} does not decode: {exc}") from exc
    if again != pdu:
        raise Finding(f"round trip changed the value: {pdu!r} -> {again!r}")
    if encode_pdu(again) != encoded:
        raise Finding("encoding is not stable after one round trip")
