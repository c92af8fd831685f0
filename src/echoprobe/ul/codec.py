"""Encoder and decoder for the PDUs of PS3.8 §9.3.

Rules:
- The decoder raises only `RemoteProtocolError`, with the byte offset (from the start of the PDU,
  header included) and the field it was reading. No IndexError/struct.error can escape: every
  length is checked against what remains of its parent before it is used.
- Item lengths are checked with plain integer arithmetic (no overflow in Python, but the
  comparisons are written as `start + length > end`, the order that is safe in C too).
- Unknown items and sub-items are kept as `RawItem` and skipped by their length (as DCMTK does).
- `decode_pdu()` takes the body after the 6-byte header; the framer has already checked the
  type and the declared length.
"""

from __future__ import annotations

from struct import Struct

from echoprobe._memo import bounded_cache
from echoprobe.errors import RemoteProtocolError
from echoprobe.ul.constants import ItemType, PDUType
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
)

_HEADER = Struct(">BBL")  # PDU type, reserved, length
_ITEM = Struct(">BBH")  # item type, reserved, length
_U16 = Struct(">H")
_U32 = Struct(">L")
_PDV_HEAD = Struct(">LBB")  # item length, context id, message control header
_ASSOC_FIXED = 68  # protocol version(2) reserved(2) called(16) calling(16) reserved(32)
HEADER_LENGTH = 6

RELEASE_RQ_BYTES = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
RELEASE_RP_BYTES = b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _item(item_type: int, body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise ValueError(f"item 0x{item_type:02x} body of {len(body)} bytes exceeds 65535")
    return _ITEM.pack(item_type, 0, len(body)) + body


def _uid(text: str) -> bytes:
    # PS3.8 Annex F: UIDs in items are sent without padding, even when their length is odd.
    # latin-1 is the inverse of `_text`: whatever a peer sent re-encodes to the same bytes
    # (an SCP echoes a peer's transfer syntax in a rejected context).
    return text.encode("latin-1")


def _encode_user_information(ui: UserInformation) -> bytes:
    parts: list[bytes] = []
    if ui.max_length is not None:
        parts.append(_item(ItemType.MAXIMUM_LENGTH, _U32.pack(ui.max_length)))
    if ui.implementation_class_uid is not None:
        parts.append(_item(ItemType.IMPLEMENTATION_CLASS_UID, _uid(ui.implementation_class_uid)))
    if ui.async_ops_window is not None:
        w = ui.async_ops_window
        parts.append(
            _item(
                ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW,
                _U16.pack(w.max_invoked) + _U16.pack(w.max_performed),
            )
        )
    for role in ui.role_selections:
        uid = _uid(role.sop_class_uid)
        parts.append(
            _item(
                ItemType.SCP_SCU_ROLE_SELECTION,
                _U16.pack(len(uid)) + uid + bytes((role.scu_role, role.scp_role)),
            )
        )
    if ui.implementation_version_name is not None:
        parts.append(
            _item(
                ItemType.IMPLEMENTATION_VERSION_NAME,
                ui.implementation_version_name.encode("latin-1"),
            )
        )
    parts.extend(_item(raw.item_type, raw.data) for raw in ui.other)
    return _item(ItemType.USER_INFORMATION, b"".join(parts))


def _encode_associate(pdu_type: int, pdu: AssociateRQ | AssociateAC) -> bytes:
    parts: list[bytes] = [
        _U16.pack(pdu.protocol_version),
        b"\x00\x00",
        pdu.called_ae,
        pdu.calling_ae,
        bytes(32),
    ]
    if pdu.application_context is not None:
        parts.append(_item(ItemType.APPLICATION_CONTEXT, _uid(pdu.application_context)))
    if isinstance(pdu, AssociateRQ):
        for pc in pdu.presentation_contexts:
            sub = []
            if pc.abstract_syntax is not None:
                sub.append(_item(ItemType.ABSTRACT_SYNTAX, _uid(pc.abstract_syntax)))
            sub.extend(_item(ItemType.TRANSFER_SYNTAX, _uid(ts)) for ts in pc.transfer_syntaxes)
            sub.extend(_item(raw.item_type, raw.data) for raw in pc.other)
            parts.append(
                _item(
                    ItemType.PRESENTATION_CONTEXT_RQ,
                    bytes((pc.context_id, 0, pc.reserved, 0)) + b"".join(sub),
                )
            )
        ui: UserInformation | None = pdu.user_information
    else:
        for ac in pdu.presentation_contexts:
            sub = []
            if ac.transfer_syntax is not None:
                sub.append(_item(ItemType.TRANSFER_SYNTAX, _uid(ac.transfer_syntax)))
            sub.extend(_item(raw.item_type, raw.data) for raw in ac.other)
            parts.append(
                _item(
                    ItemType.PRESENTATION_CONTEXT_AC,
                    bytes((ac.context_id, 0, ac.result, 0)) + b"".join(sub),
                )
            )
        ui = pdu.user_information
    if ui is not None:
        parts.append(_encode_user_information(ui))
    parts.extend(_item(raw.item_type, raw.data) for raw in pdu.other)
    body = b"".join(parts)
    return _HEADER.pack(pdu_type, 0, len(body)) + body


def encode_pdata(pdvs: tuple[PDV, ...] | list[PDV]) -> bytes:
    """A P-DATA-TF PDU carrying `pdvs` (the caller keeps it within the peer's Maximum Length)."""
    parts = [_PDV_HEAD.pack(len(p.data) + 2, p.context_id, p.control) + p.data for p in pdvs]
    body = b"".join(parts)
    return _HEADER.pack(PDUType.P_DATA_TF, 0, len(body)) + body


def encode_pdu(pdu: PDU) -> bytes:
    """The wire bytes of `pdu`, header included."""
    if isinstance(pdu, PDataTF):
        return encode_pdata(pdu.pdvs)
    if isinstance(pdu, AssociateRQ):
        return _encode_associate(PDUType.A_ASSOCIATE_RQ, pdu)
    if isinstance(pdu, AssociateAC):
        return _encode_associate(PDUType.A_ASSOCIATE_AC, pdu)
    if isinstance(pdu, AssociateRJ):
        return bytes((3, 0, 0, 0, 0, 4, 0, pdu.result, pdu.source, pdu.reason))
    if isinstance(pdu, ReleaseRQ):
        return RELEASE_RQ_BYTES
    if isinstance(pdu, ReleaseRP):
        return RELEASE_RP_BYTES
    if isinstance(pdu, Abort):
        return bytes((7, 0, 0, 0, 0, 4, 0, 0, pdu.source, pdu.reason))
    raise TypeError(f"not a PDU: {pdu!r}")


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _text(data: bytes) -> str:
    # Peers pad UIDs with NUL and names with spaces; neither is significant.
    return data.decode("latin-1").rstrip("\x00 ")


def _iter_items(
    body: bytes, start: int, end: int, base: int, what: str
) -> list[tuple[int, int, int]]:
    """Split body[start:end] into (type, body_start, body_end); `base` makes offsets absolute."""
    items: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        if pos + 4 > end:
            raise RemoteProtocolError(
                f"truncated {what} item header", offset=base + pos, field=f"{what}.item_header"
            )
        item_type, _reserved, length = _ITEM.unpack_from(body, pos)
        if pos + 4 + length > end:
            raise RemoteProtocolError(
                f"{what} item 0x{item_type:02x} length {length} overruns its parent",
                offset=base + pos + 2,
                field=f"{what}.item_length",
            )
        items.append((item_type, pos + 4, pos + 4 + length))
        pos += 4 + length
    return items


def _decode_user_information(body: bytes, start: int, end: int, base: int) -> UserInformation:
    max_length: int | None = None
    impl_uid: str | None = None
    impl_version: str | None = None
    window: AsyncOpsWindow | None = None
    roles: list[RoleSelection] = []
    other: list[RawItem] = []
    for sub_type, s, e in _iter_items(body, start, end, base, "user_information"):
        if sub_type == ItemType.MAXIMUM_LENGTH:
            if e - s != 4:
                raise RemoteProtocolError(
                    f"Maximum Length sub-item has length {e - s}, expected 4",
                    offset=base + s - 2,
                    field="maximum_length",
                )
            (max_length,) = _U32.unpack_from(body, s)
        elif sub_type == ItemType.IMPLEMENTATION_CLASS_UID:
            impl_uid = _text(body[s:e])
        elif sub_type == ItemType.IMPLEMENTATION_VERSION_NAME:
            impl_version = _text(body[s:e])
        elif sub_type == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW and e - s == 4:
            window = AsyncOpsWindow(_U16.unpack_from(body, s)[0], _U16.unpack_from(body, s + 2)[0])
        elif sub_type == ItemType.SCP_SCU_ROLE_SELECTION and e - s >= 2:
            (uid_len,) = _U16.unpack_from(body, s)
            if s + 2 + uid_len + 2 != e:
                raise RemoteProtocolError(
                    "SCP/SCU Role Selection sub-item lengths disagree",
                    offset=base + s,
                    field="role_selection.uid_length",
                )
            roles.append(
                RoleSelection(_text(body[s + 2 : s + 2 + uid_len]), body[e - 2], body[e - 1])
            )
        else:
            other.append(RawItem(sub_type, bytes(body[s:e])))
    return UserInformation(
        max_length=max_length,
        implementation_class_uid=impl_uid,
        implementation_version_name=impl_version,
        async_ops_window=window,
        role_selections=tuple(roles),
        other=tuple(other),
    )


def _decode_associate(pdu_type: int, body: bytes) -> AssociateRQ | AssociateAC:
    base = HEADER_LENGTH
    if len(body) < _ASSOC_FIXED:
        raise RemoteProtocolError(
            f"A-ASSOCIATE PDU body of {len(body)} bytes is shorter than its fixed part (68)",
            offset=base + len(body),
            field="fixed_fields",
        )
    (version,) = _U16.unpack_from(body, 0)
    called = bytes(body[4:20])
    calling = bytes(body[20:36])
    app_context: str | None = None
    ui: UserInformation | None = None
    rq_contexts: list[PresentationContextRQ] = []
    ac_contexts: list[PresentationContextAC] = []
    other: list[RawItem] = []
    for item_type, s, e in _iter_items(body, _ASSOC_FIXED, len(body), base, "associate"):
        if item_type == ItemType.APPLICATION_CONTEXT:
            app_context = _text(body[s:e])
        elif item_type == ItemType.USER_INFORMATION:
            ui = _decode_user_information(body, s, e, base)
        elif item_type == ItemType.PRESENTATION_CONTEXT_RQ and pdu_type == PDUType.A_ASSOCIATE_RQ:
            rq_contexts.append(_decode_pc_rq(body, s, e, base))
        elif item_type == ItemType.PRESENTATION_CONTEXT_AC and pdu_type == PDUType.A_ASSOCIATE_AC:
            ac_contexts.append(_decode_pc_ac(body, s, e, base))
        else:
            other.append(RawItem(item_type, bytes(body[s:e])))
    if pdu_type == PDUType.A_ASSOCIATE_RQ:
        return AssociateRQ(
            called_ae=called,
            calling_ae=calling,
            presentation_contexts=tuple(rq_contexts),
            user_information=ui if ui is not None else UserInformation(),
            application_context=app_context,
            protocol_version=version,
            other=tuple(other),
        )
    return AssociateAC(
        called_ae=called,
        calling_ae=calling,
        presentation_contexts=tuple(ac_contexts),
        user_information=ui,
        application_context=app_context,
        protocol_version=version,
        other=tuple(other),
    )


def _decode_pc_rq(body: bytes, s: int, e: int, base: int) -> PresentationContextRQ:
    if e - s < 4:
        raise RemoteProtocolError(
            "presentation context item shorter than 4 bytes", offset=base + s, field="pc.header"
        )
    abstract: str | None = None
    syntaxes: list[str] = []
    other: list[RawItem] = []
    for sub_type, ss, se in _iter_items(body, s + 4, e, base, "presentation_context"):
        if sub_type == ItemType.ABSTRACT_SYNTAX:
            abstract = _text(body[ss:se])
        elif sub_type == ItemType.TRANSFER_SYNTAX:
            syntaxes.append(_text(body[ss:se]))
        else:
            other.append(RawItem(sub_type, bytes(body[ss:se])))
    return PresentationContextRQ(body[s], abstract, tuple(syntaxes), body[s + 2], tuple(other))


def _decode_pc_ac(body: bytes, s: int, e: int, base: int) -> PresentationContextAC:
    if e - s < 4:
        raise RemoteProtocolError(
            "presentation context item shorter than 4 bytes", offset=base + s, field="pc.header"
        )
    syntax: str | None = None
    other: list[RawItem] = []
    for sub_type, ss, se in _iter_items(body, s + 4, e, base, "presentation_context"):
        if sub_type == ItemType.TRANSFER_SYNTAX and syntax is None:
            syntax = _text(body[ss:se])
        else:
            other.append(RawItem(sub_type, bytes(body[ss:se])))
    return PresentationContextAC(body[s], body[s + 2], syntax, tuple(other))


def decode_pdata(body: bytes) -> PDataTF:
    """Split a P-DATA-TF body into PDVs (PS3.8 §9.3.5.1): each item length ≥ 2 and inside.

    PS3.8 §9.3.5 requires one or more PDV items: an empty P-DATA-TF is an invalid PDU (it
    carries nothing, and a peer sending a stream of them would otherwise make no progress
    while looking alive)."""
    if not body:
        raise RemoteProtocolError(
            "P-DATA-TF without a PDV item (PS3.8 §9.3.5 requires one or more)",
            offset=HEADER_LENGTH,
            field="pdv.items",
        )
    pdvs: list[PDV] = []
    pos = 0
    end = len(body)
    while pos < end:
        if pos + 6 > end:
            raise RemoteProtocolError(
                "truncated PDV item header", offset=HEADER_LENGTH + pos, field="pdv.header"
            )
        length, context_id, control = _PDV_HEAD.unpack_from(body, pos)
        if length < 2:
            raise RemoteProtocolError(
                f"PDV item length {length} is below 2",
                offset=HEADER_LENGTH + pos,
                field="pdv.item_length",
            )
        if pos + 4 + length > end:
            raise RemoteProtocolError(
                f"PDV item length {length} overruns the P-DATA-TF PDU",
                offset=HEADER_LENGTH + pos,
                field="pdv.item_length",
            )
        pdvs.append(PDV(context_id, control, bytes(body[pos + 6 : pos + 4 + length])))
        pos += 4 + length
    return PDataTF(tuple(pdvs))


def _decode_fixed(pdu_type: int, body: bytes) -> PDU:
    if len(body) != 4:
        raise RemoteProtocolError(
            f"PDU type 0x{pdu_type:02x} must have length 4, has {len(body)}",
            offset=2,
            field="pdu_length",
            pdu_type=pdu_type,
        )
    if pdu_type == PDUType.A_ASSOCIATE_RJ:
        return AssociateRJ(body[1], body[2], body[3])
    if pdu_type == PDUType.A_RELEASE_RQ:
        return ReleaseRQ()
    if pdu_type == PDUType.A_RELEASE_RP:
        return ReleaseRP()
    return Abort(body[2], body[3])


@bounded_cache(64)
def _decode_associate_cached(pdu_type: int, body: bytes) -> AssociateRQ | AssociateAC:
    # An SCP answers the same request with the same bytes, a client sends the same request
    # every time, and the decoded values are immutable: a sweep or load test decodes each
    # distinct A-ASSOCIATE-AC, and an SCP under load each distinct A-ASSOCIATE-RQ, once.
    # Errors are not cached.
    return _decode_associate(pdu_type, body)


# Larger request bodies (up to 1 MiB is accepted) are decoded every time rather than kept.
_CACHED_RQ_BODY_MAX = 16 << 10


def decode_pdu(pdu_type: int, body: bytes) -> PDU:
    """Decode one PDU from its type byte and its body (the bytes after the 6-byte header)."""
    try:
        if pdu_type == PDUType.P_DATA_TF:
            return decode_pdata(body)
        if pdu_type == PDUType.A_ASSOCIATE_AC:
            return _decode_associate_cached(pdu_type, body)
        if pdu_type == PDUType.A_ASSOCIATE_RQ:
            if len(body) <= _CACHED_RQ_BODY_MAX:
                return _decode_associate_cached(pdu_type, body)
            return _decode_associate(pdu_type, body)
        if pdu_type in (
            PDUType.A_ASSOCIATE_RJ,
            PDUType.A_RELEASE_RQ,
            PDUType.A_RELEASE_RP,
            PDUType.A_ABORT,
        ):
            return _decode_fixed(pdu_type, body)
    except RemoteProtocolError as exc:
        if exc.pdu_type is None:
            exc.pdu_type = pdu_type
        raise
    raise RemoteProtocolError(
        f"unrecognized PDU type 0x{pdu_type:02x}",
        offset=0,
        field="pdu_type",
        abort_reason=1,
        pdu_type=pdu_type,
    )


def decode_pdu_bytes(data: bytes) -> PDU:
    """Decode a whole PDU, header included (a convenience for tests and tools)."""
    if len(data) < HEADER_LENGTH:
        raise RemoteProtocolError("truncated PDU header", offset=len(data), field="pdu_header")
    pdu_type, _reserved, length = _HEADER.unpack_from(data, 0)
    if HEADER_LENGTH + length != len(data):
        raise RemoteProtocolError(
            f"PDU length {length} disagrees with the {len(data) - HEADER_LENGTH} bytes given",
            offset=2,
            field="pdu_length",
            pdu_type=pdu_type,
        )
    return decode_pdu(pdu_type, data[HEADER_LENGTH:])
