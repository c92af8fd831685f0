"""The PDU codec: golden bytes for every PDU type, unknown items, malformed input, and
pynetdicom's codec as an independent oracle (test-only)."""

from __future__ import annotations

from typing import Any

import pytest
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)
from pynetdicom.pdu_primitives import (
    A_ABORT,
    A_ASSOCIATE,
    A_P_ABORT,
    P_DATA,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.tests import encoded_pdu_items as pynetdicom_fixtures

from echoprobe.errors import RemoteProtocolError
from echoprobe.ul.codec import decode_pdu, decode_pdu_bytes, encode_pdata, encode_pdu
from echoprobe.ul.negotiation import AcceptorPolicy, answer_request, build_request
from echoprobe.ul.pdu import (
    PDU,
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RawItem,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    UserInformation,
    ae_bytes,
    ae_text,
)


def h(text: str) -> bytes:
    """Hex written the way the standard and DCMTK's dumps write it (spaces and bars ignored)."""
    return bytes.fromhex(text.replace("|", " "))


# -- golden bytes ---------------------------------------------------------------------------

DCMTK_IMPL_UID = "1.2.276.0.7230010.3.0.3.6.7"
DCMTK_IMPL_VERSION = "OFFIS_DCMTK_367"

# echoscu-behavior.md §4.2: DCMTK echoscu's default A-ASSOCIATE-RQ, 211 bytes.
DCMTK_RQ = (
    h("01 00 000000cd | 0001 0000")
    + b"ANY-SCP         "
    + b"ECHOSCU         "
    + bytes(32)
    + h("10 00 0015")
    + b"1.2.840.10008.3.1.1.1"
    + h("20 00 002e 01 00 ff 00")
    + h("30 00 0011")
    + b"1.2.840.10008.1.1"
    + h("40 00 0011")
    + b"1.2.840.10008.1.2"
    + h("50 00 003a")
    + h("51 00 0004 00004000")
    + h("52 00 001b")
    + b"1.2.276.0.7230010.3.0.3.6.7"
    + h("55 00 000f")
    + b"OFFIS_DCMTK_367"
)

# echoscu-behavior.md Appendix B: the fake SCP's A-ASSOCIATE-AC, as DCMTK dumped it.
APPENDIX_B_AC = h(
    """
    02 00 00 00 00 b6 00 01 00 00 41 4e 59 2d 53 43
    50 20 20 20 20 20 20 20 20 20 45 43 48 4f 53 43
    55 20 20 20 20 20 20 20 20 20 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 10 00 00 15 31 2e
    32 2e 38 34 30 2e 31 30 30 30 38 2e 33 2e 31 2e
    31 2e 31 21 00 00 19 01 00 00 00 40 00 00 11 31
    2e 32 2e 38 34 30 2e 31 30 30 30 38 2e 31 2e 32
    50 00 00 38 51 00 00 04 00 00 40 00 52 00 00 1f
    31 2e 32 2e 38 32 36 2e 30 2e 31 2e 33 36 38 30
    30 34 33 2e 39 2e 37 34 33 33 2e 39 39 2e 31 55
    00 00 09 46 41 4b 45 53 43 50 5f 31
    """
)

APPENDIX_B_VALUE = AssociateAC(
    called_ae=b"ANY-SCP         ",
    calling_ae=b"ECHOSCU         ",
    presentation_contexts=(PresentationContextAC(1, 0, "1.2.840.10008.1.2"),),
    user_information=UserInformation(
        max_length=16384,
        implementation_class_uid="1.2.826.0.1.3680043.9.7433.99.1",
        implementation_version_name="FAKESCP_1",
    ),
)

# echoscu-behavior.md §6.1: the 68-byte C-ECHO-RQ command (MsgID 1), in one PDV (03H).
ECHO_RQ_COMMAND = (
    h("0000 0000 04000000 38000000")
    + h("0000 0200 12000000")
    + b"1.2.840.10008.1.1\x00"
    + h("0000 0001 02000000 3000")
    + h("0000 1001 02000000 0100")
    + h("0000 0008 02000000 0101")
)
ECHO_RQ_PDATA = h("04 00 0000004a | 00000046 01 03") + ECHO_RQ_COMMAND

GOLDEN: list[tuple[str, PDU, bytes]] = [
    ("associate-ac", APPENDIX_B_VALUE, APPENDIX_B_AC),
    ("associate-rj", AssociateRJ(1, 1, 7), h("03 00 00000004 00 01 01 07")),
    ("associate-rj-transient", AssociateRJ(2, 3, 1), h("03 00 00000004 00 02 03 01")),
    ("p-data-tf", PDataTF((PDV(1, 0x03, ECHO_RQ_COMMAND),)), ECHO_RQ_PDATA),
    (
        "p-data-tf-several",
        PDataTF((PDV(3, 0x01, b"ab"), PDV(3, 0x03, b""), PDV(5, 0x02, b"\xff"))),
        h("04 00 00000015 | 00000004 03 01 6162 | 00000002 03 03 | 00000003 05 02 ff"),
    ),
    ("release-rq", ReleaseRQ(), h("05 00 00000004 00000000")),
    ("release-rp", ReleaseRP(), h("06 00 00000004 00000000")),
    ("abort-user", Abort(0, 0), h("07 00 00000004 0000 00 00")),
    ("abort-provider", Abort(2, 6), h("07 00 00000004 0000 02 06")),
]


def test_dcmtk_default_request_is_byte_identical() -> None:
    assert len(DCMTK_RQ) == 211
    rq = build_request(
        implementation_class_uid=DCMTK_IMPL_UID, implementation_version_name=DCMTK_IMPL_VERSION
    )
    encoded = encode_pdu(rq)
    assert encoded == DCMTK_RQ
    # The presentation context's reserved result/reason byte is 0xFF, as DCMTK sends it.
    pc_at = DCMTK_RQ.index(h("20 00 002e"))
    assert encoded[pc_at + 6] == 0xFF


def test_dcmtk_default_request_decodes() -> None:
    rq = decode_pdu_bytes(DCMTK_RQ)
    assert rq == AssociateRQ(
        called_ae=b"ANY-SCP         ",
        calling_ae=b"ECHOSCU         ",
        presentation_contexts=(
            PresentationContextRQ(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",), reserved=0xFF),
        ),
        user_information=UserInformation(
            max_length=16384,
            implementation_class_uid=DCMTK_IMPL_UID,
            implementation_version_name=DCMTK_IMPL_VERSION,
        ),
        application_context="1.2.840.10008.3.1.1.1",
        protocol_version=1,
    )
    assert ae_text(rq.called_ae) == "ANY-SCP"
    assert ae_text(rq.calling_ae) == "ECHOSCU"


def test_appendix_b_accept_decodes_to_its_values() -> None:
    ac = decode_pdu_bytes(APPENDIX_B_AC)
    assert ac == APPENDIX_B_VALUE
    assert isinstance(ac, AssociateAC)
    assert ac.application_context == "1.2.840.10008.3.1.1.1"
    assert ac.protocol_version == 1
    assert ac.user_information is not None
    assert ac.user_information.max_length == 16384


@pytest.mark.parametrize(
    ("pdu", "wire"), [(p, w) for _, p, w in GOLDEN], ids=[n for n, *_ in GOLDEN]
)
def test_golden_encode(pdu: PDU, wire: bytes) -> None:
    assert encode_pdu(pdu) == wire


@pytest.mark.parametrize(
    ("pdu", "wire"), [(p, w) for _, p, w in GOLDEN], ids=[n for n, *_ in GOLDEN]
)
def test_golden_decode(pdu: PDU, wire: bytes) -> None:
    assert decode_pdu_bytes(wire) == pdu
    assert decode_pdu(wire[0], wire[6:]) == pdu


def test_rich_user_information_golden() -> None:
    # Sub-items in the order we write them: 51, 52, 53, 54, 55 (PS3.7 D.3.3).
    ui = (
        h("51 00 0004 00008000")
        + h("52 00 0003")
        + b"1.2"
        + h("53 00 0004 0003 0001")
        + h("54 00 0015 0011")
        + b"1.2.840.10008.1.1"
        + h("01 00")
        + h("55 00 0002")
        + b"V1"
    )
    body = (
        h("0001 0000")
        + b"CALLED".ljust(16)
        + b"CALLER".ljust(16)
        + bytes(32)
        + h("10 00 0015")
        + b"1.2.840.10008.3.1.1.1"
        + h("50 00")
        + len(ui).to_bytes(2, "big")
        + ui
    )
    wire = h("01 00") + len(body).to_bytes(4, "big") + body
    value = AssociateRQ(
        called_ae=ae_bytes("CALLED"),
        calling_ae=ae_bytes("CALLER"),
        presentation_contexts=(),
        user_information=UserInformation(
            max_length=0x8000,
            implementation_class_uid="1.2",
            implementation_version_name="V1",
            async_ops_window=AsyncOpsWindow(3, 1),
            role_selections=(RoleSelection("1.2.840.10008.1.1", 1, 0),),
        ),
    )
    assert encode_pdu(value) == wire
    assert decode_pdu_bytes(wire) == value


def test_odd_uids_are_not_padded_and_padding_is_not_significant() -> None:
    rq = build_request(implementation_class_uid="1.2.3")
    assert b"\x52\x00\x00\x051.2.3" in encode_pdu(rq)
    padded = AssociateAC(
        called_ae=ae_bytes("A"),
        calling_ae=ae_bytes("B"),
        presentation_contexts=(PresentationContextAC(1, 0, "1.2.840.10008.1.2\x00"),),
    )
    decoded = decode_pdu_bytes(encode_pdu(padded))
    assert isinstance(decoded, AssociateAC)
    assert decoded.presentation_contexts[0].transfer_syntax == "1.2.840.10008.1.2"


def test_ae_titles_are_16_space_padded_bytes() -> None:
    assert ae_bytes("ECHOSCU") == b"ECHOSCU         "
    assert ae_bytes("A" * 20) == b"A" * 16
    assert ae_bytes(b"RAW") == b"RAW" + b" " * 13
    assert ae_text(b"  X  \x00\x00" + b" " * 9) == "X"


def test_peer_text_that_is_not_ascii_round_trips() -> None:
    # A peer's UIDs are decoded byte for byte (latin-1); encoding what we decoded must give
    # back the same bytes rather than fail (an SCP echoes the peer's transfer syntax in a
    # rejected context).
    wire = DCMTK_RQ.replace(b"1.2.840.10008.1.2", b"1.2.840.10008.1.\xe9")
    rq = decode_pdu_bytes(wire)
    assert isinstance(rq, AssociateRQ)
    assert rq.presentation_contexts[0].transfer_syntaxes == ("1.2.840.10008.1.\xe9",)
    assert encode_pdu(rq) == wire
    ac = answer_request(rq, AcceptorPolicy())
    assert ac.presentation_contexts[0].result == 4  # transfer syntaxes not supported
    assert decode_pdu_bytes(encode_pdu(ac)) == ac


# -- unknown items and sub-items: kept, re-encoded identically --------------------------------


def _assoc(pdu_type: int, items: bytes) -> bytes:
    body = h("0001 0000") + b"ANY-SCP".ljust(16) + b"ECHOSCU".ljust(16) + bytes(32) + items
    return bytes((pdu_type, 0)) + len(body).to_bytes(4, "big") + body


def _item(item_type: int, data: bytes) -> bytes:
    return bytes((item_type, 0)) + len(data).to_bytes(2, "big") + data


APP_CONTEXT = _item(0x10, b"1.2.840.10008.3.1.1.1")
IVLE = _item(0x40, b"1.2.840.10008.1.2")
EVLE = _item(0x40, b"1.2.840.10008.1.2.1")


def test_unknown_items_are_kept_and_reencoded_identically_in_an_accept() -> None:
    ui = _item(
        0x50,
        _item(0x51, h("00004000"))
        + _item(0x52, b"1.2.3")
        + _item(0x55, b"X")
        + _item(0x56, b"\x00\x03abc\x01")  # SOP class extended negotiation: not modelled
        + _item(0x59, b"\x00\x02ok")  # user identity AC: not modelled
        + _item(0x5F, b""),  # no such sub-item
    )
    pc = _item(0x21, h("01 00 00 00") + IVLE + EVLE + _item(0x4F, b"?"))
    wire = _assoc(0x02, APP_CONTEXT + pc + _item(0x20, h("03 00 00 00")) + ui + _item(0x7F, b"xyz"))
    ac = decode_pdu_bytes(wire)
    assert isinstance(ac, AssociateAC)
    assert ac.other == (RawItem(0x20, h("03 00 00 00")), RawItem(0x7F, b"xyz"))
    [ctx] = ac.presentation_contexts
    assert ctx.transfer_syntax == "1.2.840.10008.1.2"
    # A second transfer syntax in an AC context is not ours to judge here: it is kept.
    assert ctx.other == (RawItem(0x40, b"1.2.840.10008.1.2.1"), RawItem(0x4F, b"?"))
    assert ac.user_information is not None
    assert ac.user_information.other == (
        RawItem(0x56, b"\x00\x03abc\x01"),
        RawItem(0x59, b"\x00\x02ok"),
        RawItem(0x5F, b""),
    )
    # The unknown PC-RQ item is at the end on re-encoding: build the canonical wire order.
    canonical = _assoc(
        0x02, APP_CONTEXT + pc + ui + _item(0x20, h("03 00 00 00")) + _item(0x7F, b"xyz")
    )
    assert encode_pdu(ac) == canonical
    assert decode_pdu_bytes(canonical) == ac


def test_unknown_sub_items_are_kept_in_a_request() -> None:
    pc = _item(
        0x20, h("01 00 ff 00") + _item(0x30, b"1.2.840.10008.1.1") + IVLE + _item(0x4E, b"z")
    )
    ui = _item(
        0x50,
        _item(0x51, h("00004000"))
        + _item(0x53, b"\x00\x01\x00")  # async window of the wrong length: kept raw
        + _item(0x54, b"\x00")  # role selection too short to hold its UID length: kept raw
        + _item(0x58, b"\x01\x00\x00\x02me\x00\x00"),
    )
    wire = _assoc(0x01, APP_CONTEXT + pc + ui + _item(0x11, b"later"))
    rq = decode_pdu_bytes(wire)
    assert isinstance(rq, AssociateRQ)
    assert rq.presentation_contexts[0].other == (RawItem(0x4E, b"z"),)
    assert rq.user_information.async_ops_window is None
    assert rq.user_information.role_selections == ()
    assert rq.user_information.other == (
        RawItem(0x53, b"\x00\x01\x00"),
        RawItem(0x54, b"\x00"),
        RawItem(0x58, b"\x01\x00\x00\x02me\x00\x00"),
    )
    assert rq.other == (RawItem(0x11, b"later"),)
    assert encode_pdu(rq) == wire


def test_accept_without_user_information_or_contexts() -> None:
    wire = _assoc(0x02, APP_CONTEXT)
    ac = decode_pdu_bytes(wire)
    assert isinstance(ac, AssociateAC)
    assert ac.user_information is None
    assert ac.presentation_contexts == ()
    assert encode_pdu(ac) == wire
    bare = decode_pdu_bytes(_assoc(0x02, b""))
    assert isinstance(bare, AssociateAC)
    assert bare.application_context is None


# -- malformed input: RemoteProtocolError with offset and field ---------------------------------


def _patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def _grow(wire: bytes, extra: bytes) -> bytes:
    """`wire` with `extra` appended to its body and its PDU length fixed up."""
    body = wire[6:] + extra
    return wire[:2] + len(body).to_bytes(4, "big") + body


# Offsets in APPENDIX_B_AC: application context item at 74, PC item at 99 (its transfer
# syntax sub-item at 107), user information at 128 (maximum length at 132, version at 175).
MALFORMED: list[tuple[str, bytes, str, int]] = [
    ("ac-item-overrun", _patch(APPENDIX_B_AC, 76, h("0100")), "associate.item_length", 76),
    ("rq-item-overrun", _patch(DCMTK_RQ, 76, h("ffff")), "associate.item_length", 76),
    (
        "pc-sub-item-overrun",
        _patch(APPENDIX_B_AC, 109, h("0012")),
        "presentation_context.item_length",
        109,
    ),
    (
        "ui-sub-item-overrun",
        _patch(APPENDIX_B_AC, 177, h("000a")),
        "user_information.item_length",
        177,
    ),
    ("ac-truncated-item-header", _grow(APPENDIX_B_AC, h("7f 00")), "associate.item_header", 188),
    (
        "ui-truncated-sub-item-header",
        _assoc(0x02, _item(0x50, h("51 00 00"))),
        "user_information.item_header",
        78,
    ),
    (
        "pc-truncated-sub-item-header",
        _assoc(0x01, _item(0x20, h("01 00 ff 00 30"))),
        "presentation_context.item_header",
        82,
    ),
    ("pc-rq-shorter-than-4", _assoc(0x01, _item(0x20, h("01 00"))), "pc.header", 78),
    ("pc-ac-shorter-than-4", _assoc(0x02, _item(0x21, b"")), "pc.header", 78),
    (
        "max-length-not-4",
        _assoc(0x02, _item(0x50, _item(0x51, h("4000")))),
        "maximum_length",
        80,
    ),
    (
        "role-selection-lengths-disagree",
        _assoc(0x01, _item(0x50, _item(0x54, h("0005") + b"1.2" + h("01 00")))),
        "role_selection.uid_length",
        82,
    ),
    ("ac-body-67", h("02 00 00000043") + bytes(67), "fixed_fields", 73),
    ("ac-body-0", h("02 00 00000000"), "fixed_fields", 6),
    ("rq-body-10", h("01 00 0000000a") + bytes(10), "fixed_fields", 16),
    ("pdata-without-pdv", h("04 00 00000000"), "pdv.items", 6),
    ("pdv-length-0", h("04 00 00000006 00000000 0103"), "pdv.item_length", 6),
    ("pdv-length-1", h("04 00 00000006 00000001 0103"), "pdv.item_length", 6),
    ("pdv-overrun", h("04 00 00000008 00000005 0103 aabb"), "pdv.item_length", 6),
    ("pdv-truncated-header", h("04 00 00000005 00000002 01"), "pdv.header", 6),
    (
        "second-pdv-overrun",
        h("04 00 0000000c 00000002 0103 | 00000003 0103"),
        "pdv.item_length",
        12,
    ),
    *[
        (f"type-{t}-length-{n}", bytes((t, 0)) + n.to_bytes(4, "big") + bytes(n), "pdu_length", 2)
        for t in (3, 5, 6, 7)
        for n in (0, 3, 5)
    ],
]


@pytest.mark.parametrize(
    ("wire", "field", "offset"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_pdu(wire: bytes, field: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_pdu(wire[0], wire[6:])
    assert info.value.field == field
    assert info.value.offset == offset
    assert info.value.abort_reason == 6  # invalid-PDU-parameter value
    assert info.value.pdu_type == wire[0]
    assert field in str(info.value)
    assert f"offset {offset}" in str(info.value)


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x09, 0x10, 0xFF])
def test_unknown_pdu_type(pdu_type: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_pdu(pdu_type, bytes(4))
    assert (info.value.field, info.value.offset) == ("pdu_type", 0)
    assert info.value.abort_reason == 1  # unrecognized-PDU
    assert info.value.pdu_type == pdu_type


@pytest.mark.parametrize("size", range(6))
def test_truncated_pdu_header(size: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_pdu_bytes(ECHO_RQ_PDATA[:size])
    assert (info.value.field, info.value.offset) == ("pdu_header", size)


@pytest.mark.parametrize("delta", [-1, 1])
def test_pdu_length_must_match_the_bytes(delta: int) -> None:
    wire = ECHO_RQ_PDATA[:-1] if delta < 0 else ECHO_RQ_PDATA + b"\x00"
    with pytest.raises(RemoteProtocolError) as info:
        decode_pdu_bytes(wire)
    assert (info.value.field, info.value.offset) == ("pdu_length", 2)


def test_encoder_refuses_an_item_longer_than_its_length_field() -> None:
    with pytest.raises(ValueError, match="65535"):
        encode_pdu(build_request(implementation_class_uid="1" * 70000))
    with pytest.raises(TypeError):
        encode_pdu("not a PDU")  # type: ignore[arg-type]


# -- pynetdicom as an oracle ------------------------------------------------------------------


def _uid(value: Any) -> str | None:
    return None if value is None or str(value) == "" else str(value)


def _pn_user_info(ui: Any) -> dict[str, Any]:
    if ui is None:
        return {}
    window = ui.async_ops_window
    return {
        "max_length": ui.maximum_length,
        "impl_uid": _uid(ui.implementation_class_uid),
        "impl_version": ui.implementation_version_name,
        "window": None
        if window is None
        else (window.maximum_number_operations_invoked, window.maximum_number_operations_performed),
        "roles": sorted((str(uid), r.scu_role, r.scp_role) for uid, r in ui.role_selection.items()),
    }


def _our_user_info(ui: UserInformation | None) -> dict[str, Any]:
    if ui is None:
        return {}
    window = ui.async_ops_window
    return {
        "max_length": ui.max_length,
        "impl_uid": ui.implementation_class_uid,
        "impl_version": ui.implementation_version_name,
        "window": None if window is None else (window.max_invoked, window.max_performed),
        "roles": sorted((r.sop_class_uid, r.scu_role, r.scp_role) for r in ui.role_selections),
    }


def _pn_pdv(item: Any) -> tuple[int, int, bytes]:
    # pynetdicom keeps the message control header as the first byte of the value.
    data: bytes = item.data
    return (item.context_id, data[0], bytes(data[1:]))


def _pn_view(pn: Any) -> dict[str, Any]:
    """The values of a pynetdicom PDU, in a shape comparable with `_our_view`."""
    if isinstance(pn, A_ASSOCIATE_RQ | A_ASSOCIATE_AC):
        view: dict[str, Any] = {
            "called": pn.called_ae_title.strip() if isinstance(pn, A_ASSOCIATE_RQ) else None,
            "calling": pn.calling_ae_title.strip() if isinstance(pn, A_ASSOCIATE_RQ) else None,
            "app": _uid(pn.application_context_name),
            "version": pn.protocol_version,
            "ui": _pn_user_info(pn.user_information),
        }
        if isinstance(pn, A_ASSOCIATE_RQ):
            view["contexts"] = [
                (c.context_id, _uid(c.abstract_syntax), [str(t) for t in c.transfer_syntax])
                for c in pn.presentation_context
            ]
        else:
            view["contexts"] = [
                (c.context_id, c.result, _uid(c.transfer_syntax)) for c in pn.presentation_context
            ]
        return view
    if isinstance(pn, A_ASSOCIATE_RJ):
        return {"rj": (pn.result, pn.source, pn.reason_diagnostic)}
    if isinstance(pn, P_DATA_TF):
        return {"pdvs": [_pn_pdv(item) for item in pn.presentation_data_value_items]}
    if isinstance(pn, A_ABORT_RQ):
        return {"abort": (pn.source, pn.reason_diagnostic)}
    return {"type": pn.pdu_type}


def _our_view(pdu: PDU) -> dict[str, Any]:
    if isinstance(pdu, AssociateRQ | AssociateAC):
        view: dict[str, Any] = {
            "called": ae_text(pdu.called_ae) if isinstance(pdu, AssociateRQ) else None,
            "calling": ae_text(pdu.calling_ae) if isinstance(pdu, AssociateRQ) else None,
            "app": _uid(pdu.application_context),
            "version": pdu.protocol_version,
            "ui": _our_user_info(pdu.user_information),
        }
        if isinstance(pdu, AssociateRQ):
            view["contexts"] = [
                (c.context_id, c.abstract_syntax, list(c.transfer_syntaxes))
                for c in pdu.presentation_contexts
            ]
        else:
            view["contexts"] = [
                (c.context_id, c.result, _uid(c.transfer_syntax)) for c in pdu.presentation_contexts
            ]
        return view
    if isinstance(pdu, AssociateRJ):
        return {"rj": (pdu.result, pdu.source, pdu.reason)}
    if isinstance(pdu, PDataTF):
        return {"pdvs": [(p.context_id, p.control, p.data) for p in pdu.pdvs]}
    if isinstance(pdu, Abort):
        return {"abort": (pdu.source, pdu.reason)}
    return {"type": 5 if isinstance(pdu, ReleaseRQ) else 6}


_PN_CLASS = {
    1: A_ASSOCIATE_RQ,
    2: A_ASSOCIATE_AC,
    3: A_ASSOCIATE_RJ,
    4: P_DATA_TF,
    5: A_RELEASE_RQ,
    6: A_RELEASE_RP,
    7: A_ABORT_RQ,
}


def _pn_decode(wire: bytes) -> Any:
    pn = _PN_CLASS[wire[0]]()
    pn.decode(wire)
    return pn


RICH_RQ = AssociateRQ(
    called_ae=ae_bytes("STORE-SCP"),
    calling_ae=ae_bytes("PROBE"),
    presentation_contexts=tuple(
        PresentationContextRQ(i, "1.2.840.10008.1.1", ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"))
        for i in (1, 3, 5)
    ),
    user_information=UserInformation(
        max_length=0,
        implementation_class_uid="2.25.1",
        implementation_version_name="ECHOPROBE_010",
        async_ops_window=AsyncOpsWindow(1, 1),
        role_selections=(RoleSelection("1.2.840.10008.1.1", 1, 0),),
    ),
)
OUR_PDUS: list[tuple[str, PDU]] = [
    ("dcmtk-rq", decode_pdu_bytes(DCMTK_RQ)),
    ("rich-rq", RICH_RQ),
    ("appendix-b-ac", APPENDIX_B_VALUE),
    (
        "answered-ac",
        answer_request(
            AssociateRQ(
                called_ae=ae_bytes("SCP"),
                calling_ae=ae_bytes("SCU"),
                presentation_contexts=(
                    PresentationContextRQ(1, "1.2.840.10008.5.1.4.1.1.2", ("1.2.840.10008.1.2",)),
                    PresentationContextRQ(3, "1.2.840.10008.1.1", ("1.2.840.10008.1.2.4.50",)),
                    PresentationContextRQ(5, "1.2.840.10008.1.1", ("1.2.840.10008.1.2.1",)),
                ),
            ),
            AcceptorPolicy(),
        ),
    ),
    *[(name, pdu) for name, pdu, _ in GOLDEN if not isinstance(pdu, AssociateAC)],
]


@pytest.mark.parametrize("pdu", [p for _, p in OUR_PDUS], ids=[n for n, _ in OUR_PDUS])
def test_pynetdicom_decodes_our_encoding(pdu: PDU) -> None:
    wire = encode_pdu(pdu)
    assert _pn_view(_pn_decode(wire)) == _our_view(pdu)


def _primitive_rq() -> A_ASSOCIATE:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = "PYNETDICOM"
    primitive.called_ae_title = "ANY-SCP"
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = 28672
    impl_uid = ImplementationClassUIDNotification()
    impl_uid.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0.4"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "PYNETDICOM_304"
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 3
    window.maximum_number_operations_performed = 2
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = "1.2.840.10008.1.1"
    role.scu_role = True
    role.scp_role = False
    primitive.user_information = [max_length, impl_uid, version, window, role]
    contexts = []
    for cid, syntaxes in (
        (1, ["1.2.840.10008.1.2"]),
        (3, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
    ):
        ctx = PresentationContext()
        ctx.context_id = cid
        ctx.abstract_syntax = "1.2.840.10008.1.1"
        for syntax in syntaxes:
            ctx.add_transfer_syntax(syntax)
        contexts.append(ctx)
    primitive.presentation_context_definition_list = contexts
    return primitive


def _pynetdicom_pdus() -> list[tuple[str, Any]]:
    rq = A_ASSOCIATE_RQ(_primitive_rq())
    primitive = _primitive_rq()
    primitive.result = 0
    results = []
    for cid, result, syntax in ((1, 0, "1.2.840.10008.1.2"), (3, 4, "1.2.840.10008.1.2.1")):
        ctx = PresentationContext()
        ctx.context_id = cid
        ctx.result = result
        ctx.transfer_syntax = [syntax]
        results.append(ctx)
    primitive.presentation_context_definition_results_list = results
    ac = A_ASSOCIATE_AC(primitive)

    rj_primitive = A_ASSOCIATE()
    rj_primitive.result = 2
    rj_primitive.result_source = 3
    rj_primitive.diagnostic = 1
    rj = A_ASSOCIATE_RJ(rj_primitive)

    data = P_DATA()
    # pynetdicom annotates tuples but its setter accepts only [id, data] lists.
    data.presentation_data_value_list = [[1, b"\x01ab"], [1, b"\x03cd"]]  # type: ignore[list-item]
    pdata = P_DATA_TF(data)

    abort_primitive = A_ABORT()
    abort_primitive.abort_source = 0
    p_abort_primitive = A_P_ABORT()
    p_abort_primitive.provider_reason = 4
    return [
        ("rq", rq),
        ("ac", ac),
        ("rj", rj),
        ("p-data-tf", pdata),
        ("release-rq", A_RELEASE_RQ()),
        ("release-rp", A_RELEASE_RP()),
        ("abort", A_ABORT_RQ(abort_primitive)),
        ("p-abort", A_ABORT_RQ(p_abort_primitive)),
    ]


PYNETDICOM_PDUS = _pynetdicom_pdus()


@pytest.mark.parametrize("pn", [p for _, p in PYNETDICOM_PDUS], ids=[n for n, _ in PYNETDICOM_PDUS])
def test_we_decode_pynetdicom_encoding(pn: Any) -> None:
    wire = pn.encode()
    ours = decode_pdu_bytes(wire)
    assert _our_view(ours) == _pn_view(pn)
    if wire[0] >= 3:  # fixed PDUs and P-DATA-TF have one encoding: ours must be the same
        assert encode_pdu(ours) == wire


# pynetdicom's own test fixtures (its encoding of captures from several implementations).
# Left out: `a_associate_ac_user` (its PDU length disagrees with its bytes) and
# `a_associate_rq_called`/`_calling` (blank AE titles, which pynetdicom's decoder refuses).
FIXTURES = [
    "a_associate_rq",
    "a_associate_rq_user_async",
    "a_associate_rq_role",
    "a_associate_rq_user_id_user_pass",
    "a_associate_rq_user_id_ext_neg",
    "a_associate_ac",
    "a_associate_ac_zero_ts",
    "a_associate_ac_no_ts",
    "a_associate_rj",
    "a_release_rq",
    "a_release_rp",
    "a_abort",
    "a_p_abort",
    "p_data_tf",
    "p_data_tf_rq",
    "p_data_tf_n_event_report",
]


@pytest.mark.parametrize("name", FIXTURES)
def test_pynetdicom_fixtures_decode_alike(name: str) -> None:
    wire: bytes = getattr(pynetdicom_fixtures, name)
    ours = decode_pdu_bytes(wire)
    assert _our_view(ours) == _pn_view(_pn_decode(wire))
    assert decode_pdu_bytes(encode_pdu(ours)) == ours


def test_encode_pdata_helper_matches_encode_pdu() -> None:
    pdvs = (PDV(1, 0x03, b"x"), PDV(255, 0x00, bytes(100)))
    assert encode_pdata(pdvs) == encode_pdu(PDataTF(pdvs)) == encode_pdata(list(pdvs))
