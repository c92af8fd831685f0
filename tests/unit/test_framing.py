"""The framer: same PDUs however the bytes are cut, and every declared length checked against
its type's limit before a byte of the body is buffered (robustness §0.2-0.3, §2.2)."""

from __future__ import annotations

import random

import pytest

from echoprobe.errors import PDUTooLarge, RemoteProtocolError
from echoprobe.ul.codec import decode_pdu, encode_pdata, encode_pdu
from echoprobe.ul.framing import FrameLimits, Framer
from echoprobe.ul.negotiation import AcceptorPolicy, answer_request, build_request
from echoprobe.ul.pdu import PDV, Abort, AssociateRJ, ReleaseRP, ReleaseRQ

REQUEST = build_request(num_contexts=4)
STREAM_PDUS = [
    encode_pdu(REQUEST),
    encode_pdu(answer_request(REQUEST, AcceptorPolicy())),
    encode_pdu(AssociateRJ(2, 3, 1)),
    encode_pdata([PDV(1, 0x03, bytes(range(68)))]),
    encode_pdata([PDV(3, 0x02, b"")]),  # an empty fragment is legal (an empty P-DATA-TF is not)
    encode_pdata([PDV(1, 0x01, b""), PDV(1, 0x03, b"ab")]),
    encode_pdu(ReleaseRQ()),
    encode_pdu(ReleaseRP()),
    encode_pdu(Abort(2, 6)),
]
STREAM = b"".join(STREAM_PDUS)
EXPECTED = [(pdu[0], pdu[6:]) for pdu in STREAM_PDUS]


def _frames(framer: Framer) -> list[tuple[int, bytes]]:
    out = []
    while (frame := framer.next_pdu()) is not None:
        out.append(frame)
    return out


def _feed_in_chunks(data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    framer = Framer()
    frames: list[tuple[int, bytes]] = []
    start = 0
    for end in [*sorted(cuts), len(data)]:
        framer.feed(data[start:end])
        frames += _frames(framer)
        start = end
    assert framer.buffered == 0
    return frames


def test_whole_stream() -> None:
    framer = Framer()
    framer.feed(STREAM)
    assert _frames(framer) == EXPECTED
    assert framer.buffered == 0
    assert framer.next_pdu() is None


def test_byte_by_byte_gives_the_same_pdus() -> None:
    assert _feed_in_chunks(STREAM, list(range(1, len(STREAM)))) == EXPECTED


@pytest.mark.parametrize("seed", range(20))
def test_random_chunkings_give_the_same_pdus(seed: int) -> None:
    rng = random.Random(seed)
    cuts = rng.sample(range(1, len(STREAM)), rng.randint(1, 40))
    assert _feed_in_chunks(STREAM, cuts) == EXPECTED


def test_frames_decode_to_what_was_encoded() -> None:
    framer = Framer()
    framer.feed(STREAM)
    for pdu_type, body in _frames(framer):
        decode_pdu(pdu_type, body)


def test_buffered_counts_a_half_read_pdu() -> None:
    framer = Framer()
    framer.feed(STREAM_PDUS[0][:10])
    assert framer.next_pdu() is None
    assert framer.buffered == 10
    framer.feed(STREAM_PDUS[0][10:] + STREAM_PDUS[6][:3])
    assert framer.next_pdu() == EXPECTED[0]
    assert framer.buffered == 3


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x09, 0x41, 0x80, 0xFF])
def test_unknown_pdu_type_is_refused_at_the_first_byte(pdu_type: int) -> None:
    framer = Framer()
    framer.feed(bytes((pdu_type,)))
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.abort_reason == 1  # unrecognized-PDU
    assert (info.value.field, info.value.offset, info.value.pdu_type) == ("pdu_type", 0, pdu_type)


def test_unknown_pdu_type_after_a_good_pdu() -> None:
    framer = Framer()
    framer.feed(STREAM_PDUS[6] + b"GET / HTTP/1.1\r\n")
    assert framer.next_pdu() == EXPECTED[6]
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.pdu_type == ord("G")


@pytest.mark.parametrize("pdu_type", [0x01, 0x02, 0x04])
def test_huge_length_is_refused_when_the_header_completes(pdu_type: int) -> None:
    header = bytes((pdu_type, 0)) + b"\xff\xff\xff\xff"
    framer = Framer()
    for byte in header[:-1]:
        framer.feed(bytes((byte,)))
        assert framer.next_pdu() is None
    framer.feed(header[-1:])
    with pytest.raises(PDUTooLarge) as info:
        framer.next_pdu()
    assert info.value.length == 0xFFFFFFFF
    assert info.value.limit == FrameLimits().limit_for(pdu_type)
    assert (info.value.field, info.value.offset, info.value.abort_reason) == ("pdu_length", 2, 6)
    assert framer.buffered == 6  # nothing of the body was read


@pytest.mark.parametrize("pdu_type", [0x03, 0x05, 0x06, 0x07])
@pytest.mark.parametrize("length", [0, 3, 5, 0xFFFFFFFF])
def test_fixed_pdus_must_declare_length_4(pdu_type: int, length: int) -> None:
    framer = Framer()
    framer.feed(bytes((pdu_type, 0)) + length.to_bytes(4, "big"))
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert not isinstance(info.value, PDUTooLarge)
    assert (info.value.field, info.value.offset, info.value.abort_reason) == ("pdu_length", 2, 6)
    assert info.value.pdu_type == pdu_type


def test_default_limits() -> None:
    limits = FrameLimits()
    assert limits.limit_for(0x04) == 16384
    assert limits.limit_for(0x02) == 64 << 10
    assert limits.limit_for(0x01) == 1 << 20
    for pdu_type in (0x03, 0x05, 0x06, 0x07):
        assert limits.limit_for(pdu_type) == 4
    # We advertised "no limit" (0): memory is still bounded.
    assert FrameLimits(max_pdata=0).limit_for(0x04) == 1 << 20


@pytest.mark.parametrize(
    ("pdu_type", "limits", "limit"),
    [
        (0x04, FrameLimits(max_pdata=4096), 4096),
        (0x04, FrameLimits(max_pdata=0, unlimited_pdata_cap=9000), 9000),
        (0x02, FrameLimits(max_associate_ac=1000), 1000),
        (0x01, FrameLimits(max_associate_rq=2000), 2000),
    ],
)
def test_per_type_limit_is_inclusive(pdu_type: int, limits: FrameLimits, limit: int) -> None:
    at_limit = Framer(limits)
    at_limit.feed(bytes((pdu_type, 0)) + limit.to_bytes(4, "big"))
    assert at_limit.next_pdu() is None  # accepted: waiting for the body
    at_limit.feed(bytes(limit))
    frame = at_limit.next_pdu()
    assert frame is not None
    assert frame[0] == pdu_type
    assert len(frame[1]) == limit

    over = Framer(limits)
    over.feed(bytes((pdu_type, 0)) + (limit + 1).to_bytes(4, "big"))
    with pytest.raises(PDUTooLarge) as info:
        over.next_pdu()
    assert (info.value.length, info.value.limit) == (limit + 1, limit)


def test_limits_can_change_between_pdus() -> None:
    # The P-DATA limit is known only once our request is built; the driver sets it then.
    framer = Framer(FrameLimits(max_pdata=100))
    framer.limits = FrameLimits(max_pdata=10)
    assert framer.limits.max_pdata == 10
    framer.feed(encode_pdata([PDV(1, 3, bytes(10))]))
    with pytest.raises(PDUTooLarge):
        framer.next_pdu()
