"""Fuzz the framer (`ul/framing.py`): any bytes, in any slicing, under several limits.

Invariants:
- `next_pdu` raises only `RemoteProtocolError` (incl. `PDUTooLarge`).
- Bounded memory: whenever `next_pdu` asks for more bytes, what is buffered is less than one
  header plus the limit for the PDU type being read (a peer never chooses how much we keep).
- Feeding the stream whole or in any slicing gives the same PDUs and the same error.
- The PDUs handed out are the stream's prefix, in order; `whole()` agrees with `next_pdu`.
"""

from __future__ import annotations

from struct import Struct

from echoprobe.errors import RemoteProtocolError
from echoprobe.ul.framing import FrameLimits, Framer
from fuzz._common import Finding, describe_error, slice_reads, split_input

_HEADER = Struct(">BBL")

# Small limits too, so that the limit checks are reached by short inputs.
_LIMITS = (
    FrameLimits(),
    FrameLimits(max_pdata=0, unlimited_pdata_cap=64),
    FrameLimits(max_pdata=16, max_associate_rq=80, max_associate_ac=72),
    FrameLimits(max_pdata=1, max_associate_rq=0, max_associate_ac=0),
)

Outcome = tuple[list[tuple[int, bytes]], tuple[object, ...] | None]


def _frame(reads: list[bytes], limits: FrameLimits) -> Outcome:
    framer = Framer(limits)
    frames: list[tuple[int, bytes]] = []
    for chunk in reads:
        framer.feed(chunk)
        try:
            while (frame := framer.next_pdu()) is not None:
                frames.append(frame)
        except RemoteProtocolError as exc:
            return frames, describe_error(exc)
    return frames, None


def check(data: bytes) -> None:
    control, stream = split_input(data, 2)
    limits = _LIMITS[control[0] % len(_LIMITS)]
    sliced = _frame(slice_reads(stream, control[1]), limits)
    whole = _frame([stream] if stream else [], limits)
    if sliced != whole:
        raise Finding(f"slicing changed the outcome: {sliced!r} vs {whole!r}")
    frames, error = whole
    pos = 0
    for pdu_type, body in frames:  # the stream's prefix, in order (the reserved byte aside)
        head = _HEADER.pack(pdu_type, stream[pos + 1], len(body))
        if stream[pos : pos + 6 + len(body)] != head + body:
            raise Finding(f"PDU at offset {pos} is not what the stream holds there")
        pos += 6 + len(body)
    for pdu_type, body in frames:
        if pdu_type in (3, 5, 6, 7) and len(body) != 4:
            raise Finding(f"fixed-size PDU 0x{pdu_type:02x} with a {len(body)}-byte body")
        if len(body) > limits.limit_for(pdu_type):
            raise Finding(f"PDU 0x{pdu_type:02x} of {len(body)} bytes passed the limit")
    _check_whole(stream, limits, frames, error)
    _check_held(stream, limits)


def _check_whole(
    stream: bytes,
    limits: FrameLimits,
    frames: list[tuple[int, bytes]],
    error: tuple[object, ...] | None,
) -> None:
    got = Framer(limits).whole(stream)
    if got is None:
        return
    if error is not None or len(frames) != 1 or frames[0] != got:
        raise Finding(f"whole() gave {got!r}, next_pdu {frames!r} / {error!r}")


def _check_held(stream: bytes, limits: FrameLimits) -> None:
    """Byte by byte, the framer never holds more than a header plus the type's limit."""
    framer = Framer(limits)
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        try:
            while framer.next_pdu() is not None:
                pass
        except RemoteProtocolError:
            return
        held = framer.buffered
        if held:
            start = i + 1 - held
            bound = 6 + limits.limit_for(stream[start])
            if held >= bound:
                raise Finding(f"framer holds {held} bytes of a PDU limited to {bound}")
