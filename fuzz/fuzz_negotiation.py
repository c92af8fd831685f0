"""Fuzz association negotiation (`ul/negotiation.py`) with any A-ASSOCIATE-RQ/AC body.

Invariants:
- requestor: `validate_accept(our request, AC)` returns a `Negotiated` or raises
  `NoAcceptedContext`, nothing else; a `Negotiated` names a proposed Verification context the
  peer accepted, with a transfer syntax, and a send size in 13..MAX_SEND_PDU_CAP when the
  peer's Maximum Length allows a PDV.
- acceptor: `check_request` and `answer_request` never raise; the answer encodes, decodes to
  the same value, answers only proposed IDs, accepts only supported syntaxes; and when the
  request proposes Verification with a syntax we support (distinct IDs), our own requestor
  accepts our answer.
"""

from __future__ import annotations

from echoprobe.errors import NoAcceptedContext, RemoteProtocolError
from echoprobe.ul.codec import decode_pdu, decode_pdu_bytes, encode_pdu
from echoprobe.ul.constants import IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION_SOP_CLASS
from echoprobe.ul.negotiation import (
    MAX_SEND_PDU_CAP,
    AcceptorPolicy,
    answer_request,
    build_request,
    check_request,
    validate_accept,
)
from echoprobe.ul.pdu import AssociateAC, AssociateRQ
from fuzz._common import Finding, split_input

_REQUESTS = (
    build_request(),
    build_request(num_contexts=3),
    build_request(transfer_syntaxes=(IMPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1")),
)
_POLICIES = (
    AcceptorPolicy(),
    AcceptorPolicy(ae_titles=frozenset({"ANY-SCP"}), calling_ae_titles=frozenset({"ECHOSCU"})),
    AcceptorPolicy(max_pdu=0, implementation_version_name=None),
)


def check(data: bytes) -> None:
    control, stream = split_input(data, 1)
    body = stream[6:]  # a whole PDU as seeded; the declared length is not looked at
    for pdu_type in (1, 2):
        try:
            pdu = decode_pdu(pdu_type, body)
        except RemoteProtocolError:
            continue
        if isinstance(pdu, AssociateAC):
            _requestor(_REQUESTS[control[0] % len(_REQUESTS)], pdu)
        elif isinstance(pdu, AssociateRQ):
            _acceptor(pdu, _POLICIES[control[0] % len(_POLICIES)])


def _requestor(request: AssociateRQ, accept: AssociateAC) -> None:
    try:
        negotiated = validate_accept(request, accept)
    except NoAcceptedContext:
        return
    proposed = {pc.context_id: pc for pc in request.presentation_contexts}
    pc = proposed.get(negotiated.context_id)
    if pc is None or pc.abstract_syntax != VERIFICATION_SOP_CLASS:
        raise Finding(f"negotiated an unproposed context: {negotiated!r}")
    if (negotiated.context_id, 0) not in negotiated.context_results:
        raise Finding(f"negotiated context not accepted: {negotiated!r}")
    if not 0 < negotiated.max_send_pdu <= MAX_SEND_PDU_CAP:
        raise Finding(f"send size {negotiated.max_send_pdu} out of range")
    peer = negotiated.peer_max_pdu
    if peer is not None and 0 < peer <= MAX_SEND_PDU_CAP and negotiated.max_send_pdu != peer:
        raise Finding(f"send size {negotiated.max_send_pdu} ignores the peer's {peer}")


def _acceptor(request: AssociateRQ, policy: AcceptorPolicy) -> None:
    check_request(request, policy)
    answer = answer_request(request, policy)
    encoded = encode_pdu(answer)
    try:
        again = decode_pdu_bytes(encoded)
    except RemoteProtocolError as exc:
        raise Finding(f"our A-ASSOCIATE-AC does not decode: {exc}") from exc
    if again != answer:
        raise Finding(f"our A-ASSOCIATE-AC changed in a round trip: {answer!r} -> {again!r}")
    supported = dict(policy.supported)
    if len(answer.presentation_contexts) != len(request.presentation_contexts):
        raise Finding("not one answer per proposed presentation context")
    for rq, ac in zip(request.presentation_contexts, answer.presentation_contexts, strict=True):
        if rq.context_id != ac.context_id:
            raise Finding(f"answered context {ac.context_id} for {rq.context_id}")
        if ac.result == 0 and (
            ac.transfer_syntax not in rq.transfer_syntaxes
            or ac.transfer_syntax not in supported.get(rq.abstract_syntax or "", ())
        ):
            raise Finding(f"accepted {ac!r} for {rq!r}")
    ids = [pc.context_id for pc in request.presentation_contexts]
    usable = any(
        pc.abstract_syntax == VERIFICATION_SOP_CLASS
        and any(ts in supported.get(VERIFICATION_SOP_CLASS, ()) for ts in pc.transfer_syntaxes)
        for pc in request.presentation_contexts
    )
    if usable and len(set(ids)) == len(ids):
        try:
            validate_accept(request, answer)
        except NoAcceptedContext as exc:
            raise Finding(f"our requestor refuses our acceptor's answer: {answer!r}") from exc
