"""A minimal codec for DIMSE command sets: group 0000, Implicit VR Little Endian (PS3.7 §6.3,
PS3.5 §7.1.3). No pydicom on this path.

Rules:
- Only group 0000 elements, in ascending tag order; anything else is a RemoteProtocolError.
- Undefined lengths (0xFFFFFFFF) are refused: a command set holds no sequences (robustness
  #5 and #16), so nothing here recurses.
- The caller bounds the total size before decoding (see `fragment.Reassembler`).
- Values of known tags are decoded by their dictionary VR; unknown tags are kept as bytes.
"""

from __future__ import annotations

from struct import Struct

from echoprobe.errors import RemoteProtocolError

# `Final` is for type checkers only; importing typing costs echoscu start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

_ELEMENT_HEAD = Struct("<HHL")
_US = Struct("<H")
_UL = Struct("<L")

# Command dictionary, PS3.7 Annex E: element number → (VR, keyword).
COMMAND_ELEMENTS: Final = {
    0x0000: ("UL", "CommandGroupLength"),
    0x0002: ("UI", "AffectedSOPClassUID"),
    0x0003: ("UI", "RequestedSOPClassUID"),
    0x0100: ("US", "CommandField"),
    0x0110: ("US", "MessageID"),
    0x0120: ("US", "MessageIDBeingRespondedTo"),
    0x0600: ("AE", "MoveDestination"),
    0x0700: ("US", "Priority"),
    0x0800: ("US", "CommandDataSetType"),
    0x0900: ("US", "Status"),
    0x0901: ("AT", "OffendingElement"),
    0x0902: ("LO", "ErrorComment"),
    0x0903: ("US", "ErrorID"),
    0x1000: ("UI", "AffectedSOPInstanceUID"),
    0x1001: ("UI", "RequestedSOPInstanceUID"),
    0x1002: ("US", "EventTypeID"),
    0x1005: ("AT", "AttributeIdentifierList"),
    0x1008: ("US", "ActionTypeID"),
    0x1020: ("US", "NumberOfRemainingSuboperations"),
    0x1021: ("US", "NumberOfCompletedSuboperations"),
    0x1022: ("US", "NumberOfFailedSuboperations"),
    0x1023: ("US", "NumberOfWarningSuboperations"),
    0x1030: ("AE", "MoveOriginatorApplicationEntityTitle"),
    0x1031: ("US", "MoveOriginatorMessageID"),
}

CommandValue = int | str | bytes | tuple[int, ...]


def _encode_value(vr: str, value: CommandValue) -> bytes:
    if vr == "US":
        assert isinstance(value, int)
        return _US.pack(value)
    if vr == "UL":
        assert isinstance(value, int)
        return _UL.pack(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        raw = value.encode("latin-1")
        if len(raw) % 2:  # PS3.5 §6.2: UI pads with NUL, text with a space
            raw += b"\x00" if vr == "UI" else b" "
        return raw
    raise TypeError(f"cannot encode {value!r} as {vr}")


def encode_command(elements: dict[int, CommandValue]) -> bytes:
    """Encode group-0000 elements (keyed by element number); (0000,0000) is computed."""
    body = bytearray()
    for elem in sorted(elements):
        if elem == 0x0000:
            continue
        vr = COMMAND_ELEMENTS.get(elem, ("OB", ""))[0]
        value = _encode_value(vr, elements[elem])
        body += _ELEMENT_HEAD.pack(0x0000, elem, len(value))
        body += value
    return _ELEMENT_HEAD.pack(0, 0, 4) + _UL.pack(len(body)) + bytes(body)


def decode_command(data: bytes) -> dict[int, CommandValue]:
    """Decode a command set into {element number: value}. Raises RemoteProtocolError."""
    elements: dict[int, CommandValue] = {}
    pos = 0
    end = len(data)
    last = -1
    while pos < end:
        if pos + 8 > end:
            raise RemoteProtocolError(
                "truncated command element header", offset=pos, field="command.element_header"
            )
        group, elem, length = _ELEMENT_HEAD.unpack_from(data, pos)
        if group != 0x0000:
            raise RemoteProtocolError(
                f"element ({group:04X},{elem:04X}) outside group 0000 in a command set",
                offset=pos,
                field="command.tag",
            )
        if elem <= last:
            raise RemoteProtocolError(
                f"element (0000,{elem:04X}) out of order", offset=pos, field="command.tag"
            )
        if length == 0xFFFFFFFF:
            raise RemoteProtocolError(
                f"undefined length in element (0000,{elem:04X})",
                offset=pos + 4,
                field="command.length",
            )
        if pos + 8 + length > end:
            raise RemoteProtocolError(
                f"element (0000,{elem:04X}) length {length} overruns the command set",
                offset=pos + 4,
                field="command.length",
            )
        raw = data[pos + 8 : pos + 8 + length]
        vr = COMMAND_ELEMENTS.get(elem, ("", ""))[0]
        value: CommandValue
        if vr == "US":
            if length != 2:
                raise RemoteProtocolError(
                    f"(0000,{elem:04X}) US has length {length}",
                    offset=pos + 4,
                    field="command.length",
                )
            value = _US.unpack(raw)[0]
        elif vr == "UL":
            if length != 4:
                raise RemoteProtocolError(
                    f"(0000,{elem:04X}) UL has length {length}",
                    offset=pos + 4,
                    field="command.length",
                )
            value = _UL.unpack(raw)[0]
        elif vr == "UI":
            value = raw.decode("latin-1").rstrip("\x00 ")
        elif vr in ("LO", "AE"):
            value = raw.decode("latin-1").rstrip(" \x00")
        else:
            value = bytes(raw)
        elements[elem] = value
        last = elem
        pos += 8 + length
    return elements
