"""C-ECHO request and response (PS3.7 §9.3.5): building the request, checking the response.

Rules (robustness #6, PS3.7 §9.3.5.2):
- The request is DCMTK's 68-byte command: group length, Affected SOP Class UID, Command Field
  0030H, Message ID, Command Data Set Type 0101H (no Priority element).
- A response must be a C-ECHO-RSP (8030H) answering our Message ID, for the Verification SOP
  class, announcing no data set, and carrying a Status. Command Field and Message ID are
  checked first, in DCMTK's order, so the same fault gets the same report.
- The Command Group Length is tolerated when wrong (both DCMTK and pynetdicom tolerate it).
"""

from __future__ import annotations

from struct import Struct

from echoprobe._memo import bounded_cache
from echoprobe._values import value
from echoprobe.dimse.command_set import CommandValue, decode_command, encode_command
from echoprobe.dimse.fragment import fragment_command
from echoprobe.errors import DIMSEError, RemoteProtocolError
from echoprobe.ul.constants import VERIFICATION_SOP_CLASS

C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
NO_DATA_SET = 0x0101

_US = Struct("<H")
_TEMPLATE = encode_command(
    {0x0002: VERIFICATION_SOP_CLASS, 0x0100: C_ECHO_RQ, 0x0110: 0, 0x0800: NO_DATA_SET}
)
_MSGID_AT = _TEMPLATE.index(b"\x00\x00\x10\x01\x02\x00\x00\x00") + 8
_PREFIX, _SUFFIX = _TEMPLATE[:_MSGID_AT], _TEMPLATE[_MSGID_AT + 2 :]


def message_id_for(index: int) -> int:
    """The Message ID of the `index`-th C-ECHO (from 0) of an association: 1, 2, … 65535, then
    1 again (0 is never used, as in DCMTK)."""
    return (index % 0xFFFF) + 1


def echo_request_command(message_id: int) -> bytes:
    """The 68-byte C-ECHO-RQ command set for `message_id` (1..65535)."""
    return _PREFIX + _US.pack(message_id & 0xFFFF) + _SUFFIX


def echo_request_pdus(message_id: int, context_id: int, max_fragment: int) -> bytes:
    """The P-DATA-TF bytes carrying one C-ECHO-RQ."""
    template = _one_pdu_template(context_id, max_fragment)
    if template is None:  # a peer so small that the command needs several PDVs
        return fragment_command(echo_request_command(message_id), context_id, max_fragment)
    head, tail = template
    return head + _US.pack(message_id & 0xFFFF) + tail


@bounded_cache(64)
def _one_pdu_template(context_id: int, max_fragment: int) -> tuple[bytes, bytes] | None:
    # The whole P-DATA-TF around the Message ID, built once per (context, size): every echo of
    # a long association only patches two bytes.
    whole = fragment_command(echo_request_command(0), context_id, max_fragment)
    if len(whole) != 12 + len(_TEMPLATE):
        return None
    at = 12 + _MSGID_AT
    return whole[:at], whole[at + 2 :]


# The canonical C-ECHO-RQ in one P-DATA-TF with one PDV (ours and DCMTK's): the bytes before
# the PDV's context ID, and the command around its Message ID.
_RQ_PDU = fragment_command(echo_request_command(0), 1, len(_TEMPLATE))
_RQ_PDU_HEAD = _RQ_PDU[:10]
_RQ_CONTROL_AT = 11


def canonical_echo_request(data: bytes) -> tuple[int, int] | None:
    """`(context_id, message_id)` when `data` is exactly one P-DATA-TF holding the canonical
    C-ECHO-RQ as one last command fragment; else None (the general decoder decides)."""
    if (
        len(data) == len(_RQ_PDU)
        and data.startswith(_RQ_PDU_HEAD)
        and data[_RQ_CONTROL_AT] == 0x03
        and data.endswith(_SUFFIX)
        and data[12 : 12 + _MSGID_AT] == _PREFIX
    ):
        return data[10], _US.unpack_from(data, 12 + _MSGID_AT)[0]
    return None


@value
class EchoResponse:
    """A validated C-ECHO-RSP."""

    message_id: int
    status: int
    error_comment: str | None
    elements: dict[int, CommandValue]

    @property
    def extra_elements(self) -> dict[int, CommandValue]:
        """Elements beyond the five a C-ECHO-RSP needs (DCMTK dumps them as status detail)."""
        return {
            k: v
            for k, v in self.elements.items()
            if k not in (0x0000, 0x0002, 0x0100, 0x0120, 0x0800, 0x0900)
        }


def parse_echo_response(command: bytes, message_id: int) -> EchoResponse:
    """Decode and validate a C-ECHO-RSP command set; raise DIMSEError with a stable `code`."""
    if (
        len(command) == _SUCCESS_LENGTH
        and command.startswith(_SUCCESS_PREFIX)
        and command.endswith(_SUCCESS_SUFFIX)
        and _US.unpack_from(command, _SUCCESS_ID_AT)[0] == message_id
    ):
        # The canonical success answer, byte for byte (what most SCPs send): the same verdict
        # as the full decode below, without it.
        return EchoResponse(message_id, 0x0000, None, _success_elements(message_id))
    try:
        elements = decode_command(command)
    except RemoteProtocolError as exc:
        raise DIMSEError(f"malformed command set: {exc}", code="malformed_command") from exc
    field = elements.get(0x0100)
    if field != C_ECHO_RSP:
        shown = f"0x{field:04x}" if isinstance(field, int) else "missing"
        raise DIMSEError(
            f"DIMSE: Unexpected Response Command Field: {shown}", code="unexpected_command_field"
        )
    answered = elements.get(0x0120)
    if answered != message_id:
        shown_id = str(answered) if isinstance(answered, int) else "missing"
        raise DIMSEError(
            f"DIMSE: Unexpected Response MsgId: {shown_id} (expected: {message_id})",
            code="unexpected_message_id",
        )
    sop_class = elements.get(0x0002)
    if sop_class is not None and sop_class != VERIFICATION_SOP_CLASS:
        raise DIMSEError(f"C-ECHO-RSP for SOP class {sop_class!r}", code="wrong_sop_class")
    if elements.get(0x0800, NO_DATA_SET) != NO_DATA_SET:
        raise DIMSEError("C-ECHO-RSP announces a data set", code="data_set_present")
    status = elements.get(0x0900)
    if not isinstance(status, int):
        raise DIMSEError("C-ECHO-RSP without a Status", code="missing_status")
    comment = elements.get(0x0902)
    return EchoResponse(
        message_id=message_id,
        status=status,
        error_comment=comment if isinstance(comment, str) else None,
        elements=elements,
    )


def echo_response_command(
    message_id: int, status: int = 0x0000, error_comment: str | None = None
) -> bytes:
    """A C-ECHO-RSP command set (used by the SCP)."""
    elements: dict[int, CommandValue] = {
        0x0002: VERIFICATION_SOP_CLASS,
        0x0100: C_ECHO_RSP,
        0x0120: message_id,
        0x0800: NO_DATA_SET,
        0x0900: status,
    }
    if error_comment:
        elements[0x0902] = error_comment
    return encode_command(elements)


def parse_echo_request(command: bytes) -> int:
    """Validate a C-ECHO-RQ command set and return its Message ID (SCP side)."""
    try:
        elements = decode_command(command)
    except RemoteProtocolError as exc:
        raise DIMSEError(f"malformed command set: {exc}", code="malformed_command") from exc
    if elements.get(0x0100) != C_ECHO_RQ:
        raise DIMSEError("not a C-ECHO-RQ", code="unexpected_command_field")
    msg_id = elements.get(0x0110)
    if not isinstance(msg_id, int):
        raise DIMSEError("C-ECHO-RQ without a Message ID", code="missing_message_id")
    return msg_id


@bounded_cache(64)
def success_response_pdu(context_id: int) -> tuple[bytes, bytes]:
    """The P-DATA-TF of the canonical C-ECHO-RSP (status 0000H, one PDV on `context_id`), split
    around the two bytes of its Message ID Being Responded To: what nearly every SCP sends."""
    whole = fragment_command(_SUCCESS, context_id, len(_SUCCESS))
    at = 12 + _SUCCESS_ID_AT
    return whole[:at], whole[at + 2 :]


def _success_elements(message_id: int) -> dict[int, CommandValue]:
    return {
        0x0000: _SUCCESS_LENGTH - 12,
        0x0002: VERIFICATION_SOP_CLASS,
        0x0100: C_ECHO_RSP,
        0x0120: message_id,
        0x0800: NO_DATA_SET,
        0x0900: 0x0000,
    }


# The canonical C-ECHO-RSP (status 0000H), split around Message ID Being Responded To.
_SUCCESS = echo_response_command(0x1234)
_SUCCESS_ID_AT = _SUCCESS.index(b"\x00\x00\x20\x01\x02\x00\x00\x00") + 8
_SUCCESS_LENGTH = len(_SUCCESS)
_SUCCESS_PREFIX = _SUCCESS[:_SUCCESS_ID_AT]
_SUCCESS_SUFFIX = _SUCCESS[_SUCCESS_ID_AT + 2 :]
