"""Properties of the PDU codec, the framer and the DIMSE decoders: exact round trips, and
hostile bytes only ever raising the one documented error type (robustness §0.4, §1.4 #7)."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.pdu_strategies import encoded_pdus, mutated, pdus, pdv

from echoprobe.dimse.command_set import decode_command, encode_command
from echoprobe.dimse.echo import echo_response_command, parse_echo_response
from echoprobe.dimse.fragment import Reassembler
from echoprobe.errors import DIMSEError, RemoteProtocolError
from echoprobe.ul.codec import HEADER_LENGTH, decode_pdu, decode_pdu_bytes, encode_pdu
from echoprobe.ul.framing import FrameLimits, Framer
from echoprobe.ul.pdu import PDU, PDV

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(pdus)
def test_encode_decode_round_trip(pdu: PDU) -> None:
    wire = encode_pdu(pdu)
    assert int.from_bytes(wire[2:6], "big") == len(wire) - HEADER_LENGTH
    decoded = decode_pdu_bytes(wire)
    assert decoded == pdu
    assert encode_pdu(decoded) == wire


def _decode_or_refuse(wire: bytes) -> None:
    if not wire:
        return
    error: RemoteProtocolError | None = None
    try:
        pdu = decode_pdu(wire[0], wire[HEADER_LENGTH:])
    except RemoteProtocolError as exc:
        error = exc
    if error is None:
        # Whatever the decoder accepts, the encoder can write back (values it made are valid).
        encode_pdu(pdu)
    else:
        assert error.offset is None or error.offset >= 0
        assert error.field
        assert error.abort_reason in (1, 2, 4, 5, 6)


@FAST
@given(st.integers(0, 0xFF), st.binary(max_size=300))
def test_random_bodies_only_raise_remote_protocol_error(pdu_type: int, body: bytes) -> None:
    _decode_or_refuse(bytes((pdu_type, 0, 0, 0, 0, 0)) + body)


@settings(FAST, max_examples=400)
@given(mutated(encoded_pdus))
def test_mutated_pdus_only_raise_remote_protocol_error(wire: bytes) -> None:
    _decode_or_refuse(wire)
    with contextlib.suppress(RemoteProtocolError):
        decode_pdu_bytes(wire)


def _frame_all(chunks: list[bytes], limits: FrameLimits) -> list[tuple[int, bytes]]:
    framer = Framer(limits)
    frames = []
    for chunk in chunks:
        framer.feed(chunk)
        while (frame := framer.next_pdu()) is not None:
            frames.append(frame)
    return frames


LARGE = FrameLimits(max_pdata=1 << 20, max_associate_ac=1 << 20)


@FAST
@given(st.lists(encoded_pdus, min_size=1, max_size=5), st.data())
def test_framing_does_not_depend_on_chunking(wires: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(wires)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(stream) - 1, 1)), max_size=30)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    expected = [(w[0], w[HEADER_LENGTH:]) for w in wires]
    assert _frame_all([stream], LARGE) == expected
    assert _frame_all(chunks, LARGE) == expected


@FAST
@given(st.lists(st.binary(max_size=64) | mutated(encoded_pdus), max_size=6))
def test_framer_on_hostile_bytes(chunks: list[bytes]) -> None:
    limits = FrameLimits(max_pdata=4096, max_associate_ac=4096, max_associate_rq=4096)
    framer = Framer(limits)
    stream = b""
    consumed = 0
    error: RemoteProtocolError | None = None
    try:
        for chunk in chunks:
            framer.feed(chunk)
            stream += chunk
            while (frame := framer.next_pdu()) is not None:
                pdu_type, body = frame
                assert 1 <= pdu_type <= 7
                assert len(body) <= limits.limit_for(pdu_type)
                assert stream[consumed] == pdu_type
                consumed += HEADER_LENGTH + len(body)
                _decode_or_refuse(bytes((pdu_type, 0)) + len(body).to_bytes(4, "big") + body)
            # Waiting for more: what is pending is a PDU whose type and declared length were
            # accepted as soon as they were known (a peer never makes us wait past the limit).
            pending = stream[consumed:]
            assert framer.buffered == len(pending)
            if pending:
                assert 1 <= pending[0] <= 7
            if len(pending) >= HEADER_LENGTH:
                declared = int.from_bytes(pending[2:6], "big")
                assert declared <= limits.limit_for(pending[0])
    except RemoteProtocolError as exc:
        error = exc
    if error is not None:
        assert error.field in ("pdu_type", "pdu_length")
        assert error.abort_reason in (1, 6)


# -- DIMSE decoders -----------------------------------------------------------------------------


@FAST
@given(mutated(st.integers(0, 0xFFFF).map(echo_response_command)) | st.binary(max_size=120))
def test_command_decoders_only_raise_their_documented_errors(command: bytes) -> None:
    try:
        elements = decode_command(command)
    except RemoteProtocolError:
        pass
    else:
        assert all(0 <= e <= 0xFFFF for e in elements)
    error: DIMSEError | None = None
    try:
        parse_echo_response(command, 1)
    except DIMSEError as exc:
        error = exc
    assert error is None or error.code


@FAST
@given(
    st.dictionaries(
        st.sampled_from((0x0002, 0x0100, 0x0110, 0x0120, 0x0800, 0x0900, 0x0902, 0x7777)),
        st.integers(0, 0xFFFF) | st.text(st.sampled_from("0123456789.ABC"), max_size=20),
    )
)
def test_command_set_round_trip(elements: dict[int, int | str]) -> None:
    valid = {}
    for elem, value in elements.items():
        us = elem in (0x0100, 0x0110, 0x0120, 0x0800, 0x0900)
        if isinstance(value, int) is us and elem != 0x7777:
            valid[elem] = value
    command = encode_command(dict(valid))
    decoded = decode_command(command)
    assert decoded.pop(0x0000) == len(command) - 12
    assert decoded == valid


@FAST
@given(st.lists(st.lists(pdv, max_size=6).map(tuple), max_size=6))
def test_reassembler_only_raises_remote_protocol_error(pdus_in: list[tuple[PDV, ...]]) -> None:
    reassembler = Reassembler(frozenset({1, 3}))
    error: RemoteProtocolError | None = None
    for pdvs in pdus_in:
        try:
            result = reassembler.feed(pdvs)
        except RemoteProtocolError as exc:
            error = exc
            break
        if result is not None:
            assert result[0] in (1, 3)
    assert error is None or error.abort_reason in (5, 6)
