"""Association negotiation (PS3.8 §9.3.2-9.3.3, PS3.7 Annex D): build the request, check the
answer against what was proposed, and, on the acceptor side, answer a request.

Rules (robustness checklist §2.6):
- A context counts only if its ID was proposed, is odd, and its result is 0 (acceptance) with a
  transfer syntax present. Items for IDs never proposed are ignored, as DCMTK does.
- The first accepted context with the Verification abstract syntax carries the C-ECHO (DCMTK's
  choice). Commands are always Implicit VR Little Endian, so an accepted transfer syntax we did
  not propose is tolerated and recorded as a warning.
- A missing Maximum Length is tolerated (treated as unlimited, as DCMTK does) and recorded.
- What we send per P-DATA-TF is bounded by the peer's Maximum Length and by our own cap.
"""

from __future__ import annotations

from echoprobe._values import value
from echoprobe.errors import NoAcceptedContext
from echoprobe.ul.codec import decode_pdu
from echoprobe.ul.constants import (
    APPLICATION_CONTEXT_NAME,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
    ContextResult,
)
from echoprobe.ul.pdu import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    ae_bytes,
    ae_text,
)

# DCMTK 3.6.8 echoscu's transfer syntaxes, in proposal order (`-pts n` takes the first n).
DCMTK_TRANSFER_SYNTAXES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.1.2", "LittleEndianImplicit"),
    ("1.2.840.10008.1.2.1", "LittleEndianExplicit"),
    ("1.2.840.10008.1.2.2", "BigEndianExplicit"),
    ("1.2.840.10008.1.2.4.50", "JPEGBaseline"),
    ("1.2.840.10008.1.2.4.51", "JPEGExtended:Process2+4"),
    ("1.2.840.10008.1.2.4.52", "JPEGExtended:Process3+5"),
    ("1.2.840.10008.1.2.4.53", "JPEGSpectralSelection:Non-hierarchical:Process6+8"),
    ("1.2.840.10008.1.2.4.54", "JPEGSpectralSelection:Non-hierarchical:Process7+9"),
    ("1.2.840.10008.1.2.4.55", "JPEGFullProgression:Non-hierarchical:Process10+12"),
    ("1.2.840.10008.1.2.4.56", "JPEGFullProgression:Non-hierarchical:Process11+13"),
    ("1.2.840.10008.1.2.4.57", "JPEGLossless:Non-hierarchical:Process14"),
    ("1.2.840.10008.1.2.4.58", "JPEGLossless:Non-hierarchical:Process15"),
    ("1.2.840.10008.1.2.4.59", "JPEGExtended:Hierarchical:Process16+18"),
    ("1.2.840.10008.1.2.4.60", "JPEGExtended:Hierarchical:Process17+19"),
    ("1.2.840.10008.1.2.4.61", "JPEGSpectralSelection:Hierarchical:Process20+22"),
    ("1.2.840.10008.1.2.4.62", "JPEGSpectralSelection:Hierarchical:Process21+23"),
    ("1.2.840.10008.1.2.4.63", "JPEGFullProgression:Hierarchical:Process24+26"),
    ("1.2.840.10008.1.2.4.64", "JPEGFullProgression:Hierarchical:Process25+27"),
    ("1.2.840.10008.1.2.4.65", "JPEGLossless:Hierarchical:Process28"),
    ("1.2.840.10008.1.2.4.66", "JPEGLossless:Hierarchical:Process29"),
    ("1.2.840.10008.1.2.4.70", "JPEGLossless:Non-hierarchical-1stOrderPrediction"),
    ("1.2.840.10008.1.2.5", "RLELossless"),
    ("1.2.840.10008.1.2.1.99", "DeflatedLittleEndianExplicit"),
    ("1.2.840.10008.1.2.4.80", "JPEGLSLossless"),
    ("1.2.840.10008.1.2.4.81", "JPEGLSLossy"),
    ("1.2.840.10008.1.2.4.90", "JPEG2000LosslessOnly"),
    ("1.2.840.10008.1.2.4.91", "JPEG2000"),
    ("1.2.840.10008.1.2.4.92", "JPEG2000MulticomponentLosslessOnly"),
    ("1.2.840.10008.1.2.4.93", "JPEG2000Multicomponent"),
    ("1.2.840.10008.1.2.4.100", "MPEG2MainProfile@MainLevel"),
    ("1.2.840.10008.1.2.4.101", "MPEG2MainProfile@HighLevel"),
    ("1.2.840.10008.1.2.4.102", "MPEG4HighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.103", "MPEG4BDcompatibleHighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.104", "MPEG4HighProfile/Level4.2For2DVideo"),
    ("1.2.840.10008.1.2.4.105", "MPEG4HighProfile/Level4.2For3DVideo"),
    ("1.2.840.10008.1.2.4.106", "MPEG4StereoHighProfile/Level4.2"),
    ("1.2.840.10008.1.2.4.107", "HEVCMainProfile/Level5.1"),
    ("1.2.840.10008.1.2.4.108", "HEVCMain10Profile/Level5.1"),
    ("1.2.840.10008.1.2.4.100.1", "FragmentableMPEG2MainProfile@MainLevel"),
    ("1.2.840.10008.1.2.4.101.1", "FragmentableMPEG2MainProfile@HighLevel"),
    ("1.2.840.10008.1.2.4.102.1", "FragmentableMPEG4HighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.103.1", "FragmentableMPEG4BDcompatibleHighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.104.1", "FragmentableMPEG4HighProfile/Level4.2For2DVideo"),
    ("1.2.840.10008.1.2.4.105.1", "FragmentableMPEG4HighProfile/Level4.2For3DVideo"),
    ("1.2.840.10008.1.2.4.106.1", "FragmentableMPEG4StereoHighProfile/Level4.2"),
)

MAX_SEND_PDU_CAP = 131072  # never build P-DATA-TF larger than this, whatever the peer allows
PDV_OVERHEAD = 12  # PDU header (6) + PDV item header (6); what DCMTK subtracts, too


def build_request(
    *,
    calling_ae: str | bytes = "ECHOSCU",
    called_ae: str | bytes = "ANY-SCP",
    num_contexts: int = 1,
    transfer_syntaxes: tuple[str, ...] = (IMPLICIT_VR_LITTLE_ENDIAN,),
    max_pdu: int = 16384,
    abstract_syntax: str = VERIFICATION_SOP_CLASS,
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME,
) -> AssociateRQ:
    """The A-ASSOCIATE-RQ DCMTK's echoscu sends: contexts 1, 3, 5, … each proposing
    `abstract_syntax` with the same transfer syntaxes; user information = max length,
    implementation class UID and version name only."""
    if not 1 <= num_contexts <= 128:
        raise ValueError("num_contexts must be 1..128 (context IDs are odd, 1..255)")
    if not transfer_syntaxes:
        raise ValueError("at least one transfer syntax must be proposed")
    contexts = tuple(
        PresentationContextRQ(2 * i + 1, abstract_syntax, tuple(transfer_syntaxes))
        for i in range(num_contexts)
    )
    return AssociateRQ(
        called_ae=ae_bytes(called_ae),
        calling_ae=ae_bytes(calling_ae),
        presentation_contexts=contexts,
        user_information=UserInformation(
            max_length=max_pdu,
            implementation_class_uid=implementation_class_uid,
            implementation_version_name=implementation_version_name,
        ),
        application_context=APPLICATION_CONTEXT_NAME,
    )


@value
class Negotiated:
    """What an association ended up with, from the requestor's point of view."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    peer_max_pdu: int | None  # as the peer sent it; None when the sub-item was absent
    max_send_pdu: int  # the largest P-DATA-TF we will send (PDU header included)
    peer_implementation_class_uid: str | None
    peer_implementation_version_name: str | None
    context_results: tuple[tuple[int, int], ...]  # (context id, result) for proposed IDs
    warnings: tuple[str, ...] = ()

    @property
    def max_fragment(self) -> int:
        """Bytes of command data per PDV: what DCMTK would put in one PDV for this peer."""
        return self.max_send_pdu - PDV_OVERHEAD


def effective_send_pdu(peer_max: int | None) -> int:
    """The P-DATA-TF size we send: the peer's Maximum Length, 0/absent meaning "no limit",
    capped at `MAX_SEND_PDU_CAP`."""
    if not peer_max or peer_max > MAX_SEND_PDU_CAP:
        return MAX_SEND_PDU_CAP
    return peer_max


def validate_accept(request: AssociateRQ, accept: AssociateAC) -> Negotiated:
    """Check an A-ASSOCIATE-AC against our request; raise NoAcceptedContext when no proposed
    Verification context was accepted."""
    proposed = {pc.context_id: pc for pc in request.presentation_contexts}
    warnings: list[str] = []
    results: list[tuple[int, int]] = []
    chosen: tuple[PresentationContextRQ, PresentationContextAC] | None = None
    seen: set[int] = set()
    for pc in accept.presentation_contexts:
        rq_pc = proposed.get(pc.context_id)
        if rq_pc is None or pc.context_id in seen:
            warnings.append(
                f"ignored presentation context {pc.context_id}: not proposed or repeated"
            )
            continue
        seen.add(pc.context_id)
        results.append((pc.context_id, pc.result))
        if pc.result != ContextResult.ACCEPTANCE or chosen is not None:
            continue
        if pc.transfer_syntax is None:
            warnings.append(
                f"presentation context {pc.context_id} accepted without a transfer syntax"
            )
            continue
        if pc.transfer_syntax not in rq_pc.transfer_syntaxes:
            warnings.append(
                f"presentation context {pc.context_id} accepted transfer syntax "
                f"{pc.transfer_syntax}, which was not proposed"
            )
        if rq_pc.abstract_syntax == VERIFICATION_SOP_CLASS:
            chosen = (rq_pc, pc)
    if chosen is None:
        raise NoAcceptedContext("no acceptable presentation contexts", tuple(results))
    ui = accept.user_information
    peer_max = ui.max_length if ui is not None else None
    if ui is None or ui.max_length is None:
        warnings.append("A-ASSOCIATE-AC has no Maximum Length; assuming no limit")
    if accept.application_context not in (None, APPLICATION_CONTEXT_NAME):
        warnings.append(f"unexpected application context name {accept.application_context}")
    rq_pc, ac_pc = chosen
    assert ac_pc.transfer_syntax is not None  # checked in the loop above
    return Negotiated(
        context_id=ac_pc.context_id,
        abstract_syntax=rq_pc.abstract_syntax or VERIFICATION_SOP_CLASS,
        transfer_syntax=ac_pc.transfer_syntax,
        peer_max_pdu=peer_max,
        max_send_pdu=effective_send_pdu(peer_max),
        peer_implementation_class_uid=ui.implementation_class_uid if ui else None,
        peer_implementation_version_name=ui.implementation_version_name if ui else None,
        context_results=tuple(results),
        warnings=tuple(warnings),
    )


# ------------------------------------------------------------------------ acceptor side


@value
class AcceptorPolicy:
    """What an SCP accepts: abstract syntax → transfer syntaxes it supports, in preference
    order; AE titles it answers to and accepts calls from (empty = any)."""

    supported: tuple[tuple[str, tuple[str, ...]], ...] = (
        (
            VERIFICATION_SOP_CLASS,
            (IMPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"),
        ),
    )
    ae_titles: frozenset[str] = frozenset()
    calling_ae_titles: frozenset[str] = frozenset()
    max_pdu: int = 16384
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME


def check_request(request: AssociateRQ, policy: AcceptorPolicy) -> AssociateRJ | None:
    """The A-ASSOCIATE-RJ an SCP should send for `request`, or None to go on (PS3.8 §9.3.4)."""
    if request.application_context != APPLICATION_CONTEXT_NAME:
        return AssociateRJ(1, 1, 2)  # application-context-name-not-supported
    if policy.ae_titles and ae_text(request.called_ae) not in policy.ae_titles:
        return AssociateRJ(1, 1, 7)  # called-AE-title-not-recognized
    if policy.calling_ae_titles and ae_text(request.calling_ae) not in policy.calling_ae_titles:
        return AssociateRJ(1, 1, 3)  # calling-AE-title-not-recognized
    return None


def answer_request(request: AssociateRQ, policy: AcceptorPolicy) -> AssociateAC:
    """An A-ASSOCIATE-AC accepting every proposed context we support, with the first proposed
    transfer syntax we support (the requestor's preference order, PS3.8 §9.3.2.2)."""
    supported = dict(policy.supported)
    contexts = []
    for pc in request.presentation_contexts:
        syntaxes = supported.get(pc.abstract_syntax or "")
        # A rejected context still carries a transfer syntax sub-item ("not tested", PS3.8
        # §9.3.3.2): some decoders require its presence.
        placeholder = pc.transfer_syntaxes[0] if pc.transfer_syntaxes else IMPLICIT_VR_LITTLE_ENDIAN
        if syntaxes is None:
            contexts.append(PresentationContextAC(pc.context_id, 3, placeholder))
            continue
        chosen = next((ts for ts in pc.transfer_syntaxes if ts in syntaxes), None)
        if chosen is None:
            contexts.append(PresentationContextAC(pc.context_id, 4, placeholder))
        else:
            contexts.append(PresentationContextAC(pc.context_id, 0, chosen))
    return AssociateAC(
        called_ae=request.called_ae,
        calling_ae=request.calling_ae,
        presentation_contexts=tuple(contexts),
        user_information=UserInformation(
            max_length=policy.max_pdu,
            implementation_class_uid=policy.implementation_class_uid,
            implementation_version_name=policy.implementation_version_name,
        ),
    )


def usual_accept(
    request: AssociateRQ, data: bytes, max_body: int
) -> tuple[AssociateAC, Negotiated] | None:
    """`data` decoded and validated against `request` when it is exactly one whole, acceptable
    A-ASSOCIATE-AC (header included, body at most `max_body`) leaving room to send a command;
    None for anything else, which the general procedure must see. The fast paths' test."""
    if len(data) < 6 or data[0] != 0x02:
        return None
    body_length = int.from_bytes(data[2:6], "big")
    if body_length != len(data) - 6 or body_length > max_body:
        return None
    try:
        accept = decode_pdu(0x02, data[6:])
        if not isinstance(accept, AssociateAC):
            return None
        negotiated = validate_accept(request, accept)
    except Exception:  # anything unusual is the general procedure's to report
        return None
    if negotiated.max_send_pdu <= 12:
        return None
    return accept, negotiated
