"""DCMTK-style dumps for `echoscu -d`: A-ASSOCIATE-RQ/AC parameter blocks, PDU hex dumps and
command-set "status detail" lines (DCMTK 3.6.8's layout, docs/echoscu-behavior.md §10.3).

Pure text building; the caller logs the result at DEBUG.
"""

from __future__ import annotations

from echoprobe.dimse.command_set import COMMAND_ELEMENTS, CommandValue
from echoprobe.ul.constants import VERIFICATION_SOP_CLASS
from echoprobe.ul.negotiation import DCMTK_TRANSFER_SYNTAXES
from echoprobe.ul.pdu import AssociateAC, AssociateRQ, PresentationContextAC, ae_text

_UID_NAMES = dict(DCMTK_TRANSFER_SYNTAXES)
_UID_NAMES[VERIFICATION_SOP_CLASS] = "VerificationSOPClass"
_RESULT_LABEL = {
    0: "(Accepted)",
    1: "(User Rejection)",
    2: "(No Reason)",
    3: "(Abstract Syntax Not Supported)",
    4: "(Transfer Syntaxes Not Supported)",
}
HEX_DUMP_LIMIT = 512


def uid_label(uid: str) -> str:
    """`=Name` for a UID the dictionary knows, else the UID itself (as DCMTK prints)."""
    name = _UID_NAMES.get(uid)
    return f"={name}" if name else uid


def _header(kind: str) -> str:
    return f"====================== BEGIN {kind} ====================="


def _footer(kind: str) -> str:
    return f"======================= END {kind} ======================"


def dump_association(
    kind: str,
    request: AssociateRQ,
    accept: AssociateAC | None,
    *,
    our_uid: str,
    our_version: str | None,
) -> str:
    """The parameter block DCMTK prints as "Request Parameters:" (`accept` None) or
    "Association Parameters Negotiated:" (after an A-ASSOCIATE-AC)."""
    ui_rq = request.user_information
    ui_ac = accept.user_information if accept is not None else None
    their_uid = (ui_ac.implementation_class_uid or "") if ui_ac else ""
    their_version = (ui_ac.implementation_version_name or "") if ui_ac else ""
    their_max = (ui_ac.max_length or 0) if ui_ac else 0
    responding = ae_text(accept.called_ae) if accept is not None else ""
    lines = [
        _header(kind),
        f"Our Implementation Class UID:      {our_uid}",
        f"Our Implementation Version Name:   {our_version or ''}",
        f"Their Implementation Class UID:    {their_uid}",
        f"Their Implementation Version Name: {their_version}",
        f"Application Context Name:    {request.application_context or ''}",
        f"Calling Application Name:    {ae_text(request.calling_ae)}",
        f"Called Application Name:     {ae_text(request.called_ae)}",
        f"Responding Application Name: {responding}",
        f"Our Max PDU Receive Size:    {ui_rq.max_length or 0}",
        f"Their Max PDU Receive Size:  {their_max}",
        "Presentation Contexts:",
    ]
    answers: dict[int, PresentationContextAC] = {}
    if accept is not None:
        for ac_pc in accept.presentation_contexts:
            answers.setdefault(ac_pc.context_id, ac_pc)
    for pc in request.presentation_contexts:
        answer = answers.get(pc.context_id)
        label = (
            "(Proposed)"
            if answer is None
            else _RESULT_LABEL.get(answer.result, "(--Invalid Result/Reason--)")
        )
        lines.append(f"  Context ID:        {pc.context_id} {label}")
        lines.append(f"    Abstract Syntax: {uid_label(pc.abstract_syntax or '')}")
        lines.append("    Proposed SCP/SCU Role: Default")
        if answer is None:
            lines.append("    Proposed Transfer Syntax(es):")
            lines.extend(f"      {uid_label(ts)}" for ts in pc.transfer_syntaxes)
            continue
        lines.append("    Accepted SCP/SCU Role: Default")
        if answer.result == 0:
            lines.append(f"    Accepted Transfer Syntax: {uid_label(answer.transfer_syntax or '')}")
    lines += [
        "Requested Extended Negotiation: none",
        "Accepted Extended Negotiation:  none",
        "Requested User Identity Negotiation: none",
        "User Identity Negotiation Response:  none",
        _footer(kind),
    ]
    return "\n".join(lines)


def hex_dump(raw: bytes) -> str:
    """DCMTK's PDU dump: 16 bytes a line, each as two spaces and two lowercase hex digits;
    at most 512 bytes (announced before the dump and followed by an empty line)."""
    lines = []
    shown = raw
    if len(raw) > HEX_DUMP_LIMIT:
        lines.append(f"Only dumping {HEX_DUMP_LIMIT} bytes.")
        shown = raw[:HEX_DUMP_LIMIT]
    for start in range(0, len(shown), 16):
        lines.append("".join(f"  {b:02x}" for b in shown[start : start + 16]))
    if len(raw) > HEX_DUMP_LIMIT:
        lines.append("")
    return "\n".join(lines)


def _value_text(vr: str, value: CommandValue) -> tuple[str, int]:
    if isinstance(value, int):
        return str(value), 2 if vr == "US" else 4
    if isinstance(value, str):
        raw_len = len(value) + (len(value) % 2)
        return f"[{value}]", raw_len
    if isinstance(value, bytes):
        return " ".join(f"{b:02x}" for b in value[:16]), len(value)
    return str(value), 0


def status_detail(extra: dict[int, CommandValue]) -> str:
    """DCMTK's "Status Detail" block for the elements of a C-ECHO-RSP beyond the required ones."""
    lines = [
        "Status Detail (should never be any):",
        "",
        "# Dicom-Data-Set",
        "# Used TransferSyntax: Little Endian Implicit",
    ]
    for elem, value in sorted(extra.items()):
        vr, keyword = COMMAND_ELEMENTS.get(elem, ("UN", "Unknown"))
        text, length = _value_text(vr, value)
        lines.append(f"(0000,{elem:04x}) {vr} {text:<41}#{length:4}, 1 {keyword}")
    lines.append("")
    return "\n".join(lines)
