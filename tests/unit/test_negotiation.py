"""Association negotiation: the request we build, the A-ASSOCIATE-AC checklist
(robustness §2.6) and the acceptor's answer."""

from __future__ import annotations

import pytest

from echoprobe._values import replace
from echoprobe.errors import NoAcceptedContext
from echoprobe.ul.constants import (
    APPLICATION_CONTEXT_NAME,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLEMENTATION_CLASS_UID,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
)
from echoprobe.ul.negotiation import (
    DCMTK_TRANSFER_SYNTAXES,
    MAX_SEND_PDU_CAP,
    PDV_OVERHEAD,
    AcceptorPolicy,
    answer_request,
    build_request,
    check_request,
    effective_send_pdu,
    validate_accept,
)
from echoprobe.ul.pdu import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    ae_bytes,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
REQUEST = build_request(num_contexts=3, transfer_syntaxes=(IMPLICIT_VR_LITTLE_ENDIAN,))


def _accept(
    *contexts: tuple[int, int, str | None],
    user_information: UserInformation | None = None,
    application_context: str | None = APPLICATION_CONTEXT_NAME,
) -> AssociateAC:
    return AssociateAC(
        called_ae=REQUEST.called_ae,
        calling_ae=REQUEST.calling_ae,
        presentation_contexts=tuple(PresentationContextAC(*c) for c in contexts),
        user_information=user_information
        if user_information is not None
        else UserInformation(max_length=16384, implementation_class_uid="1.2.3"),
        application_context=application_context,
    )


# -- the request -----------------------------------------------------------------------------


def test_request_contexts_are_odd_and_share_their_syntaxes() -> None:
    syntaxes = tuple(uid for uid, _ in DCMTK_TRANSFER_SYNTAXES[:3])
    rq = build_request(num_contexts=4, transfer_syntaxes=syntaxes, max_pdu=8192)
    assert [pc.context_id for pc in rq.presentation_contexts] == [1, 3, 5, 7]
    assert {pc.abstract_syntax for pc in rq.presentation_contexts} == {VERIFICATION_SOP_CLASS}
    assert {pc.transfer_syntaxes for pc in rq.presentation_contexts} == {syntaxes}
    assert rq.user_information == UserInformation(
        max_length=8192,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name="ECHOPROBE_010",
    )
    assert rq.application_context == APPLICATION_CONTEXT_NAME


def test_request_limits() -> None:
    assert len(build_request(num_contexts=128).presentation_contexts) == 128
    for bad in (0, 129):
        with pytest.raises(ValueError, match="num_contexts"):
            build_request(num_contexts=bad)
    with pytest.raises(ValueError, match="transfer syntax"):
        build_request(transfer_syntaxes=())


def test_dcmtk_transfer_syntax_list() -> None:
    # echoscu-behavior.md §4.3: 38 entries, then 3.6.8's seven fragmentable ones.
    uids = [uid for uid, _ in DCMTK_TRANSFER_SYNTAXES]
    assert len(uids) == 45 == len(set(uids))
    assert uids[:3] == [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.2"]
    assert uids[37] == "1.2.840.10008.1.2.4.108"
    assert uids[38:] == [f"1.2.840.10008.1.2.4.{n}.1" for n in range(100, 107)]


# -- validate_accept: the robustness §2.6 checklist ----------------------------------------------


def test_first_accepted_verification_context_is_chosen() -> None:
    ac = _accept(
        (1, 3, IMPLICIT_VR_LITTLE_ENDIAN),
        (3, 0, IMPLICIT_VR_LITTLE_ENDIAN),
        (5, 0, IMPLICIT_VR_LITTLE_ENDIAN),
    )
    negotiated = validate_accept(REQUEST, ac)
    assert negotiated.context_id == 3
    assert negotiated.abstract_syntax == VERIFICATION_SOP_CLASS
    assert negotiated.transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN
    assert negotiated.context_results == ((1, 3), (3, 0), (5, 0))
    assert negotiated.warnings == ()
    assert negotiated.peer_implementation_class_uid == "1.2.3"
    assert negotiated.peer_implementation_version_name is None


def test_only_the_last_context_accepted() -> None:
    ac = _accept((1, 4, None), (3, 1, None), (5, 0, IMPLICIT_VR_LITTLE_ENDIAN))
    assert validate_accept(REQUEST, ac).context_id == 5


def test_order_of_the_answer_decides_not_the_id() -> None:
    ac = _accept((5, 0, IMPLICIT_VR_LITTLE_ENDIAN), (1, 0, IMPLICIT_VR_LITTLE_ENDIAN))
    assert validate_accept(REQUEST, ac).context_id == 5


def test_a_non_verification_context_does_not_carry_the_echo() -> None:
    rq = replace(
        REQUEST,
        presentation_contexts=(
            PresentationContextRQ(1, CT_IMAGE_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            PresentationContextRQ(3, VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,)),
        ),
    )
    ac = _accept((1, 0, IMPLICIT_VR_LITTLE_ENDIAN), (3, 0, IMPLICIT_VR_LITTLE_ENDIAN))
    assert validate_accept(rq, ac).context_id == 3
    with pytest.raises(NoAcceptedContext):
        validate_accept(rq, _accept((1, 0, IMPLICIT_VR_LITTLE_ENDIAN), (3, 3, None)))


@pytest.mark.parametrize("bogus_id", [2, 7, 255])
def test_ids_never_proposed_are_ignored(bogus_id: int) -> None:
    ac = _accept((bogus_id, 0, IMPLICIT_VR_LITTLE_ENDIAN), (3, 0, IMPLICIT_VR_LITTLE_ENDIAN))
    negotiated = validate_accept(REQUEST, ac)
    assert negotiated.context_id == 3
    assert negotiated.context_results == ((3, 0),)
    assert any(f"context {bogus_id}" in w for w in negotiated.warnings)
    with pytest.raises(NoAcceptedContext) as info:
        validate_accept(REQUEST, _accept((bogus_id, 0, IMPLICIT_VR_LITTLE_ENDIAN)))
    assert info.value.results == ()


def test_a_repeated_id_counts_once() -> None:
    ac = _accept((1, 3, None), (1, 0, IMPLICIT_VR_LITTLE_ENDIAN))
    with pytest.raises(NoAcceptedContext) as info:
        validate_accept(REQUEST, ac)
    assert info.value.results == ((1, 3),)


def test_unproposed_transfer_syntax_is_accepted_with_a_warning() -> None:
    ac = _accept((1, 0, EXPLICIT_VR_LITTLE_ENDIAN))
    negotiated = validate_accept(REQUEST, ac)
    assert negotiated.context_id == 1
    assert negotiated.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
    [warning] = negotiated.warnings
    assert EXPLICIT_VR_LITTLE_ENDIAN in warning
    assert "not proposed" in warning


def test_accepted_without_a_transfer_syntax_is_skipped() -> None:
    ac = _accept((1, 0, None), (3, 0, IMPLICIT_VR_LITTLE_ENDIAN))
    negotiated = validate_accept(REQUEST, ac)
    assert negotiated.context_id == 3
    assert any("without a transfer syntax" in w for w in negotiated.warnings)


@pytest.mark.parametrize(
    "contexts",
    [
        (),
        ((1, 1, None), (3, 2, None), (5, 3, None)),
        ((1, 4, IMPLICIT_VR_LITTLE_ENDIAN),),
        ((1, 0, None),),
    ],
    ids=["no-items", "all-rejected", "ts-not-supported", "accepted-without-ts"],
)
def test_no_accepted_context(contexts: tuple[tuple[int, int, str | None], ...]) -> None:
    with pytest.raises(NoAcceptedContext) as info:
        validate_accept(REQUEST, _accept(*contexts))
    assert info.value.results == tuple((cid, result) for cid, result, _ in contexts)
    assert info.value.outcome == "no_accepted_context"
    assert info.value.phase == "associate"


@pytest.mark.parametrize(
    "user_information",
    [UserInformation(implementation_class_uid="1.2.3"), None],
    ids=["no-max-length", "no-user-information"],
)
def test_missing_maximum_length(user_information: UserInformation | None) -> None:
    ac = replace(_accept((1, 0, IMPLICIT_VR_LITTLE_ENDIAN)), user_information=user_information)
    negotiated = validate_accept(REQUEST, ac)
    assert negotiated.peer_max_pdu is None
    assert negotiated.max_send_pdu == MAX_SEND_PDU_CAP
    assert any("Maximum Length" in w for w in negotiated.warnings)
    if user_information is None:
        assert negotiated.peer_implementation_class_uid is None


@pytest.mark.parametrize(
    ("peer_max", "send"),
    [
        (16384, 16384),
        (1024, 1024),
        (20, 20),
        (MAX_SEND_PDU_CAP, MAX_SEND_PDU_CAP),
        (MAX_SEND_PDU_CAP + 1, MAX_SEND_PDU_CAP),
        (0, MAX_SEND_PDU_CAP),  # 0 means no limit (PS3.8 Annex D.1)
        (0xFFFFFFFF, MAX_SEND_PDU_CAP),
    ],
)
def test_send_size_follows_the_peer_within_our_cap(peer_max: int, send: int) -> None:
    assert effective_send_pdu(peer_max) == send
    ui = UserInformation(max_length=peer_max)
    negotiated = validate_accept(
        REQUEST, _accept((1, 0, IMPLICIT_VR_LITTLE_ENDIAN), user_information=ui)
    )
    assert negotiated.peer_max_pdu == peer_max
    assert negotiated.max_send_pdu == send
    assert negotiated.max_fragment == send - PDV_OVERHEAD
    assert negotiated.warnings == ()


def test_application_context_is_tolerated_but_recorded() -> None:
    odd = _accept((1, 0, IMPLICIT_VR_LITTLE_ENDIAN), application_context="1.2.3.4")
    assert any("1.2.3.4" in w for w in validate_accept(REQUEST, odd).warnings)
    absent = _accept((1, 0, IMPLICIT_VR_LITTLE_ENDIAN), application_context=None)
    assert validate_accept(REQUEST, absent).warnings == ()


# -- the acceptor side --------------------------------------------------------------------------


def test_check_request() -> None:
    policy = AcceptorPolicy(
        ae_titles=frozenset({"ANY-SCP"}), calling_ae_titles=frozenset({"ECHOSCU"})
    )
    assert check_request(REQUEST, policy) is None
    assert check_request(REQUEST, AcceptorPolicy()) is None  # empty sets mean "any"
    assert check_request(replace(REQUEST, application_context="1.2.3"), policy) == AssociateRJ(
        1, 1, 2
    )
    assert check_request(replace(REQUEST, application_context=None), policy) == AssociateRJ(1, 1, 2)
    assert check_request(replace(REQUEST, called_ae=ae_bytes("OTHER")), policy) == AssociateRJ(
        1, 1, 7
    )
    assert check_request(replace(REQUEST, calling_ae=ae_bytes("SOMEONE")), policy) == AssociateRJ(
        1, 1, 3
    )
    # Leading and trailing spaces of AE titles are not significant (PS3.5).
    padded = replace(REQUEST, called_ae=b"  ANY-SCP       ")
    assert check_request(padded, policy) is None


def test_answer_request() -> None:
    rq = AssociateRQ(
        called_ae=ae_bytes("SCP"),
        calling_ae=ae_bytes("SCU"),
        presentation_contexts=(
            PresentationContextRQ(1, CT_IMAGE_STORAGE, (EXPLICIT_VR_LITTLE_ENDIAN,)),
            PresentationContextRQ(3, VERIFICATION_SOP_CLASS, ("1.2.840.10008.1.2.4.50",)),
            PresentationContextRQ(
                5, VERIFICATION_SOP_CLASS, (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
            ),
            PresentationContextRQ(7, VERIFICATION_SOP_CLASS, ()),
            PresentationContextRQ(9, None, (IMPLICIT_VR_LITTLE_ENDIAN,)),
        ),
    )
    policy = AcceptorPolicy(max_pdu=32768, implementation_version_name=None)
    ac = answer_request(rq, policy)
    assert ac.presentation_contexts == (
        PresentationContextAC(1, 3, EXPLICIT_VR_LITTLE_ENDIAN),  # abstract syntax not supported
        PresentationContextAC(3, 4, "1.2.840.10008.1.2.4.50"),  # transfer syntaxes not supported
        PresentationContextAC(5, 0, EXPLICIT_VR_LITTLE_ENDIAN),  # the requestor's preference
        PresentationContextAC(7, 4, IMPLICIT_VR_LITTLE_ENDIAN),
        PresentationContextAC(9, 3, IMPLICIT_VR_LITTLE_ENDIAN),
    )
    assert ac.user_information == UserInformation(
        max_length=32768, implementation_class_uid=IMPLEMENTATION_CLASS_UID
    )
    assert (ac.called_ae, ac.calling_ae) == (rq.called_ae, rq.calling_ae)
    negotiated = validate_accept(rq, ac)
    assert (negotiated.context_id, negotiated.transfer_syntax) == (5, EXPLICIT_VR_LITTLE_ENDIAN)
    assert negotiated.max_send_pdu == 32768
