"""DIMSE: the group-0000 command codec, C-ECHO request and response, PDV fragmentation and
reassembly, and status meanings (cross-checked with pynetdicom's tables)."""

from __future__ import annotations

import pytest
from pynetdicom.status import GENERAL_STATUS, VERIFICATION_SERVICE_CLASS_STATUS, code_to_category

from echoprobe.dimse.command_set import CommandValue, decode_command, encode_command
from echoprobe.dimse.echo import (
    C_ECHO_RQ,
    C_ECHO_RSP,
    NO_DATA_SET,
    echo_request_command,
    echo_request_pdus,
    echo_response_command,
    parse_echo_request,
    parse_echo_response,
)
from echoprobe.dimse.fragment import (
    MAX_COMMAND_BYTES,
    MAX_COMMAND_PDVS,
    Reassembler,
    fragment_command,
)
from echoprobe.dimse.status import ECHO_STATUS_TEXT, SUCCESS, status_category, status_text
from echoprobe.errors import DIMSEError, EchoStatusError, RemoteProtocolError
from echoprobe.ul.codec import decode_pdu
from echoprobe.ul.constants import VERIFICATION_SOP_CLASS
from echoprobe.ul.framing import Framer
from echoprobe.ul.negotiation import PDV_OVERHEAD
from echoprobe.ul.pdu import PDV, PDataTF


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def _echo_rq(message_id: int) -> bytes:
    """echoscu-behavior.md §6.1, written out element by element."""
    return (
        h("0000 0000 04000000 38000000")  # (0000,0000) UL 56
        + h("0000 0200 12000000")  # (0000,0002) UI, 18 bytes
        + b"1.2.840.10008.1.1\x00"
        + h("0000 0001 02000000 3000")  # (0000,0100) US 0030H
        + h("0000 1001 02000000")  # (0000,0110) US MsgID
        + message_id.to_bytes(2, "little")
        + h("0000 0008 02000000 0101")  # (0000,0800) US 0101H
    )


# -- the C-ECHO-RQ --------------------------------------------------------------------------------


@pytest.mark.parametrize("message_id", [1, 2, 0x1234, 65535])
def test_echo_request_is_dcmtks_68_bytes(message_id: int) -> None:
    command = echo_request_command(message_id)
    assert len(command) == 68
    assert command == _echo_rq(message_id)
    assert decode_command(command) == {
        0x0000: 56,
        0x0002: VERIFICATION_SOP_CLASS,
        0x0100: C_ECHO_RQ,
        0x0110: message_id,
        0x0800: NO_DATA_SET,
    }
    assert parse_echo_request(command) == message_id


def test_message_id_is_16_bits() -> None:
    assert echo_request_command(65536) == _echo_rq(0)


def test_echo_request_in_one_pdv() -> None:
    wire = echo_request_pdus(1, 1, 16372)
    assert wire == h("04 00 0000004a 00000046 01 03") + _echo_rq(1)


def test_parse_echo_request_failures() -> None:
    with pytest.raises(DIMSEError) as info:
        parse_echo_request(b"\x01")
    assert info.value.code == "malformed_command"
    with pytest.raises(DIMSEError) as info:
        parse_echo_request(echo_response_command(1))
    assert info.value.code == "unexpected_command_field"
    with pytest.raises(DIMSEError) as info:
        parse_echo_request(encode_command({0x0100: C_ECHO_RQ}))
    assert info.value.code == "missing_message_id"


# -- the C-ECHO-RSP ---------------------------------------------------------------------------


def _rsp(**changes: CommandValue | None) -> bytes:
    elements: dict[int, CommandValue] = {
        0x0002: VERIFICATION_SOP_CLASS,
        0x0100: C_ECHO_RSP,
        0x0120: 1,
        0x0800: NO_DATA_SET,
        0x0900: 0x0000,
    }
    names = {
        "sop_class": 0x0002,
        "field": 0x0100,
        "answered": 0x0120,
        "data_set": 0x0800,
        "status": 0x0900,
        "comment": 0x0902,
    }
    for name, value in changes.items():
        if value is None:
            elements.pop(names[name], None)
        else:
            elements[names[name]] = value
    return encode_command(elements)


def test_valid_response() -> None:
    assert _rsp() == echo_response_command(1)
    response = parse_echo_response(_rsp(), 1)
    assert (response.message_id, response.status, response.error_comment) == (1, 0, None)
    assert response.extra_elements == {}


def test_failure_status_and_comment_are_values_not_errors() -> None:
    command = echo_response_command(7, 0x0122, "NOT HERE")
    response = parse_echo_response(command, 7)
    assert response.status == 0x0122
    assert response.error_comment == "NOT HERE"
    assert response.extra_elements == {0x0902: "NOT HERE"}


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        (b"\x00\x00\x00", "malformed_command", None),
        (
            _rsp(field=0x8001),
            "unexpected_command_field",
            "Unexpected Response Command Field: 0x8001",
        ),
        (_rsp(field=C_ECHO_RQ), "unexpected_command_field", "0x0030"),
        (_rsp(field=None), "unexpected_command_field", "missing"),
        (_rsp(answered=2), "unexpected_message_id", "Unexpected Response MsgId: 2 (expected: 1)"),
        (_rsp(answered=None), "unexpected_message_id", "missing"),
        (_rsp(sop_class="1.2.840.10008.5.1.4.1.1.2"), "wrong_sop_class", None),
        (_rsp(data_set=0x0000), "data_set_present", None),
        (_rsp(status=None), "missing_status", None),
    ],
    ids=[
        "garbage",
        "c-store-rsp",
        "request-not-response",
        "no-command-field",
        "wrong-message-id",
        "no-message-id",
        "wrong-sop-class",
        "data-set",
        "no-status",
    ],
)
def test_response_failures(command: bytes, code: str, message: str | None) -> None:
    with pytest.raises(DIMSEError) as info:
        parse_echo_response(command, 1)
    assert info.value.code == code
    assert info.value.outcome == "protocol_error"
    assert info.value.phase == "echo"
    if message is not None:
        assert message in str(info.value)


def test_command_field_is_checked_before_the_message_id() -> None:
    # DCMTK's order (echoscu-behavior.md §6.2): the same fault gets the same report.
    with pytest.raises(DIMSEError) as info:
        parse_echo_response(_rsp(field=0x8001, answered=9, status=None), 1)
    assert info.value.code == "unexpected_command_field"
    with pytest.raises(DIMSEError) as info:
        parse_echo_response(_rsp(answered=9, sop_class="1.2", status=None), 1)
    assert info.value.code == "unexpected_message_id"


def test_tolerated_deviations() -> None:
    # A wrong group length, no Affected SOP Class UID and no Command Data Set Type: both
    # DCMTK and pynetdicom accept these (robustness §2.8).
    command = bytearray(_rsp(sop_class=None, data_set=None))
    command[8:12] = (999).to_bytes(4, "little")
    assert parse_echo_response(bytes(command), 1).status == 0


# -- the command-set codec -----------------------------------------------------------------------


def test_encode_pads_odd_values_by_vr() -> None:
    command = encode_command({0x0002: "1.2.3", 0x0902: "ODD", 0x0900: 0xC001})
    elements = decode_command(command)
    assert elements == {0x0000: len(command) - 12, 0x0002: "1.2.3", 0x0900: 0xC001, 0x0902: "ODD"}
    assert b"1.2.3\x00" in command  # UI pads with NUL
    assert b"ODD " in command  # text pads with a space


def test_unknown_elements_are_kept_as_bytes() -> None:
    command = encode_command({0x0100: C_ECHO_RSP, 0x5555: b"\x01\x02"})
    assert decode_command(command)[0x5555] == b"\x01\x02"


def _element(group: int, elem: int, value: bytes, length: int | None = None) -> bytes:
    size = len(value) if length is None else length
    return (
        group.to_bytes(2, "little")
        + elem.to_bytes(2, "little")
        + size.to_bytes(4, "little")
        + value
    )


@pytest.mark.parametrize(
    ("data", "field", "offset"),
    [
        (b"\x00\x00\x00\x00\x04\x00\x00", "command.element_header", 0),
        (_element(0x0008, 0x0016, b"xx"), "command.tag", 0),
        (_element(0, 0x0100, h("3080")) + _element(0, 0x0002, b"1."), "command.tag", 10),
        (_element(0, 0x0100, h("3080")) + _element(0, 0x0100, h("3080")), "command.tag", 10),
        (_element(0, 0x0900, b"", 0xFFFFFFFF), "command.length", 4),
        (_element(0, 0x0902, b"abc", 4), "command.length", 4),
        (_element(0, 0x0900, h("000000")), "command.length", 4),
        (_element(0, 0x0000, h("0000")), "command.length", 4),
    ],
    ids=[
        "truncated-header",
        "not-group-0000",
        "out-of-order",
        "repeated",
        "undefined-length",
        "overrun",
        "us-not-2",
        "ul-not-4",
    ],
)
def test_malformed_command_set(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_command(data)
    assert (info.value.field, info.value.offset) == (field, offset)


def test_empty_command_set_decodes_to_nothing() -> None:
    assert decode_command(b"") == {}


# -- fragmentation ------------------------------------------------------------------------------


def _split(wire: bytes) -> list[PDataTF]:
    framer = Framer()
    framer.feed(wire)
    pdus = []
    while (frame := framer.next_pdu()) is not None:
        pdu = decode_pdu(*frame)
        assert isinstance(pdu, PDataTF)
        pdus.append(pdu)
    assert framer.buffered == 0
    return pdus


def _reassemble(pdus: list[PDataTF], accepted: frozenset[int] = frozenset({1})) -> bytes:
    reassembler = Reassembler(accepted)
    result = None
    for i, pdu in enumerate(pdus):
        result = reassembler.feed(pdu.pdvs)
        assert (result is not None) is (i == len(pdus) - 1)
    assert result is not None
    assert not reassembler.in_progress
    return result[1]


def test_peer_maximum_length_20_gives_dcmtks_nine_pdus() -> None:
    # echoscu-behavior.md §4.5: a peer limit of 20 sends the 68-byte command in 9 P-DATA-TF
    # PDUs of 8 data bytes (the last one carries what is left).
    command = echo_request_command(1)
    wire = echo_request_pdus(1, 1, 20 - PDV_OVERHEAD)
    pdus = _split(wire)
    assert len(pdus) == 9
    assert all(len(pdu.pdvs) == 1 for pdu in pdus)
    assert [len(pdu.pdvs[0].data) for pdu in pdus] == [8] * 8 + [4]
    assert [pdu.pdvs[0].control for pdu in pdus] == [0x01] * 8 + [0x03]
    assert len(wire) == 8 * 20 + 16  # every PDU within the peer's 20 bytes
    assert _reassemble(pdus) == command


@pytest.mark.parametrize(
    ("max_fragment", "sizes"),
    [
        (9, [8] * 8 + [4]),  # odd sizes are rounded down
        (1, [1] * 68),  # nothing smaller exists: one byte per PDV
        (66, [66, 2]),
        (67, [66, 2]),
        (68, [68]),
        (16372, [68]),
    ],
)
def test_fragment_sizes(max_fragment: int, sizes: list[int]) -> None:
    command = echo_request_command(3)
    pdus = _split(fragment_command(command, 5, max_fragment))
    assert [len(pdu.pdvs[0].data) for pdu in pdus] == sizes
    assert {pdu.pdvs[0].context_id for pdu in pdus} == {5}
    assert _reassemble(pdus, frozenset({5})) == command


# -- reassembly ------------------------------------------------------------------------------------


def test_two_byte_pdvs_in_one_pdu_and_across_pdus() -> None:
    command = echo_response_command(1)
    reassembler = Reassembler(frozenset({1}))
    assert reassembler.feed((PDV(1, 0x01, b""), PDV(1, 0x01, command[:3]))) is None
    assert reassembler.in_progress
    assert reassembler.feed(()) is None  # a P-DATA-TF without PDVs is legal
    assert reassembler.feed((PDV(1, 0x01, b""),)) is None
    assert reassembler.feed((PDV(1, 0x01, command[3:10]), PDV(1, 0x01, b""))) is None
    assert reassembler.feed((PDV(1, 0x03, command[10:]),)) == (1, command)
    assert not reassembler.in_progress
    # The next message starts afresh, on any accepted context.
    assert reassembler.feed((PDV(1, 0x03, command),)) == (1, command)
    reassembler = Reassembler(frozenset({1, 3}))
    assert reassembler.feed((PDV(1, 0x01, command[:4]),)) is None
    assert reassembler.feed((PDV(1, 0x03, command[4:]),)) == (1, command)
    assert reassembler.feed((PDV(3, 0x03, command),)) == (3, command)
    assert reassembler.feed((PDV(1, 0x03, b""),)) == (1, b"")  # an empty last fragment


@pytest.mark.parametrize(
    ("pdvs", "field", "reason"),
    [
        ((PDV(7, 0x03, b"ab"),), "pdv.context_id", 6),  # not accepted
        ((PDV(1, 0x01, b"ab"), PDV(3, 0x03, b"cd")), "pdv.context_id", 6),  # mixed contexts
        ((PDV(1, 0x02, b"ab"),), "pdv.control", 6),  # a data set PDV
        ((PDV(1, 0x00, b"ab"),), "pdv.control", 6),
        ((PDV(1, 0x03, b"ab"), PDV(1, 0x03, b"cd")), "pdv.extra", 5),
        ((PDV(1, 0x03, b"ab"), PDV(1, 0x02, b"")), "pdv.extra", 5),
    ],
    ids=["unaccepted", "mixed-contexts", "data-last", "data", "after-complete", "data-after"],
)
def test_reassembly_refuses(pdvs: tuple[PDV, ...], field: str, reason: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Reassembler(frozenset({1, 3})).feed(pdvs)
    assert (info.value.field, info.value.abort_reason) == (field, reason)


def test_mixed_contexts_across_pdus() -> None:
    reassembler = Reassembler(frozenset({1, 3}))
    reassembler.feed((PDV(1, 0x01, b"ab"),))
    with pytest.raises(RemoteProtocolError, match="different presentation contexts"):
        reassembler.feed((PDV(3, 0x03, b"cd"),))


def test_command_size_is_bounded() -> None:
    chunk = bytes(MAX_COMMAND_BYTES // 4)
    fits = Reassembler(frozenset({1}))
    assert fits.feed((PDV(1, 0x01, chunk),) * 3) is None
    assert fits.feed((PDV(1, 0x03, chunk),)) == (1, chunk * 4)
    over = Reassembler(frozenset({1}))
    over.feed((PDV(1, 0x01, chunk),) * 4)
    with pytest.raises(RemoteProtocolError) as info:
        over.feed((PDV(1, 0x01, b"x"),))
    assert info.value.field == "command.size"


def test_pdv_count_is_bounded() -> None:
    # Empty PDVs make no progress: an endless trickle of them must end (robustness #15).
    reassembler = Reassembler(frozenset({1}))
    assert reassembler.feed((PDV(1, 0x01, b""),) * (MAX_COMMAND_PDVS - 1)) is None
    assert reassembler.feed((PDV(1, 0x03, b""),)) == (1, b"")
    reassembler.feed((PDV(1, 0x01, b""),) * MAX_COMMAND_PDVS)
    with pytest.raises(RemoteProtocolError) as info:
        reassembler.feed((PDV(1, 0x03, b""),))
    assert info.value.field == "pdv.count"


# -- status --------------------------------------------------------------------------------------


def _words(text: str) -> str:
    return text.lower().replace("failed: ", "").replace("unrecognised", "unrecognized")


def test_echo_statuses_agree_with_pynetdicom() -> None:
    assert SUCCESS == 0x0000
    for code, text in ECHO_STATUS_TEXT.items():
        category, description = VERIFICATION_SERVICE_CLASS_STATUS[code]
        assert status_category(code) == category
        assert status_text(code) == text
        assert _words(description) in _words(text)


def test_status_categories_agree_with_pynetdicom() -> None:
    unknown_to_pynetdicom = 0
    for code in range(0x10000):
        theirs = code_to_category(code)
        if theirs == "Unknown":
            # PS3.7 Annex C leaves them undefined; a prober counts them as failures.
            assert status_category(code) == "Failure"
            unknown_to_pynetdicom += 1
        else:
            assert status_category(code) == theirs, hex(code)
    assert unknown_to_pynetdicom < 0x10000


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x0000, "Success"),
        (0x0110, "Failure: Processing failure"),
        (0x0124, "Refused: Not authorized"),
        (0x0213, "Failure: Resource limitation"),
        (0x0107, "Warning: Attribute list error"),
        (0xB000, "Warning: unknown status"),
        (0xFF00, "Pending"),
        (0xFE00, "Cancel"),
        (0xC000, "Failure: unknown status"),
    ],
)
def test_status_text(code: int, text: str) -> None:
    assert status_text(code) == text


def test_every_general_status_is_named_as_pynetdicom_names_it() -> None:
    """Every status PS3.7 Annex C names has its name (pynetdicom's table as the oracle)."""
    for code, (category, description) in GENERAL_STATUS.items():
        text = status_text(code)
        assert "unknown" not in text, hex(code)
        assert status_category(code) == category, hex(code)
        if description:
            theirs = _words(description).replace("authorised", "authorized")
            assert theirs.replace("duplication", "duplicate") in _words(text), hex(code)


def test_echo_status_error_names_processing_failure() -> None:
    error = EchoStatusError(0x0110, "disk full")
    assert str(error) == "C-ECHO status 0x0110 (Failure: Processing failure): disk full"
    assert error.status == 0x0110
    assert error.outcome == "echo_failed_status"
