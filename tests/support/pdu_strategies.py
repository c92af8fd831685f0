"""Hypothesis strategies for every PS3.8 PDU, and byte mutations of their encodings.

Generated values are the ones the decoder can give back exactly: text never ends in the
padding the decoder strips (NUL, space), and unknown items use item types the decoder does
not interpret at that level (a known type would be decoded into its field instead).
"""

from __future__ import annotations

from hypothesis import strategies as st

from echoprobe.ul.codec import encode_pdu
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

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

# Any latin-1 text (the decoder reads text as latin-1) without trailing padding.
text = st.text(st.characters(min_codepoint=0x01, max_codepoint=0xFF), max_size=24).filter(
    lambda s: not s.endswith(("\x00", " "))
)
uid = st.text(st.sampled_from("0123456789."), min_size=1, max_size=64) | text


def raw_items(
    excluded: frozenset[int], max_size: int = 2
) -> st.SearchStrategy[tuple[RawItem, ...]]:
    item = st.builds(RawItem, u8.filter(lambda t: t not in excluded), st.binary(max_size=24))
    return st.lists(item, max_size=max_size).map(tuple)


user_information = st.builds(
    UserInformation,
    max_length=st.none() | u32,
    implementation_class_uid=st.none() | uid,
    implementation_version_name=st.none() | text,
    async_ops_window=st.none() | st.builds(AsyncOpsWindow, u16, u16),
    role_selections=st.lists(st.builds(RoleSelection, uid, u8, u8), max_size=2).map(tuple),
    other=raw_items(frozenset(range(0x51, 0x56))),
)

pc_rq = st.builds(
    PresentationContextRQ,
    context_id=u8,
    abstract_syntax=st.none() | uid,
    transfer_syntaxes=st.lists(uid, max_size=3).map(tuple),
    reserved=u8,
    other=raw_items(frozenset((0x30, 0x40))),
)
# In an AC context only the first transfer syntax is interpreted; more are kept raw.
pc_ac = st.builds(
    PresentationContextAC,
    context_id=u8,
    result=u8,
    transfer_syntax=st.none() | uid,
    other=raw_items(frozenset((0x40,))),
)
_ASSOCIATE_ITEMS = frozenset((0x10, 0x20, 0x21, 0x50))
ae = st.binary(min_size=16, max_size=16)

associate_rq = st.builds(
    AssociateRQ,
    called_ae=ae,
    calling_ae=ae,
    presentation_contexts=st.lists(pc_rq, max_size=4).map(tuple),
    user_information=user_information,
    application_context=st.none() | uid,
    protocol_version=u16,
    other=raw_items(_ASSOCIATE_ITEMS),
)
associate_ac = st.builds(
    AssociateAC,
    called_ae=ae,
    calling_ae=ae,
    presentation_contexts=st.lists(pc_ac, max_size=4).map(tuple),
    user_information=st.none() | user_information,
    application_context=st.none() | uid,
    protocol_version=u16,
    other=raw_items(_ASSOCIATE_ITEMS),
)
pdv = st.builds(PDV, u8, u8, st.binary(max_size=40))
# PS3.8 §9.3.5: a P-DATA-TF carries one or more PDVs.
pdata = st.builds(PDataTF, st.lists(pdv, min_size=1, max_size=5).map(tuple))

pdus: st.SearchStrategy[PDU] = st.one_of(
    associate_rq,
    associate_ac,
    st.builds(AssociateRJ, u8, u8, u8),
    pdata,
    st.just(ReleaseRQ()),
    st.just(ReleaseRP()),
    st.builds(Abort, u8, u8),
)


@st.composite
def mutated(draw: st.DrawFn, source: st.SearchStrategy[bytes]) -> bytes:
    """Bytes of `source` with a few random edits: byte changes, cuts, insertions, deletions."""
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("set", "truncate", "insert", "delete")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            # Length fields are the interesting targets: big values, small values, zero.
            data[at] = draw(st.sampled_from((0x00, 0x01, 0x02, 0x04, 0x7F, 0x80, 0xFF)) | u8)
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


encoded_pdus = pdus.map(encode_pdu)
