"""Hand-built bytes a hostile or broken DICOM requestor sends, and a raw-socket peer to send them.

Shared by `tests/integration/test_scp_hostile.py` and `benchmarks/hostile_clients.py`.

Rules of this module:

* Valid PDUs come from the project's own encoder (`echoprobe.ul.codec.encode_pdu`,
  `echoprobe.dimse.echo`), so a test's "valid" request is exactly what our client sends;
  invalid ones are the valid bytes altered in one named way (PS3.8 §9.3 layouts).
* Loopback only; every read is bounded by a timeout given by the caller.
* Nothing here interprets what the SCP answers beyond splitting it into PDUs (`split_pdus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass
from typing import Final

from echoprobe.dimse.echo import echo_request_pdus
from echoprobe.ul.codec import RELEASE_RQ_BYTES, encode_pdu
from echoprobe.ul.negotiation import build_request
from echoprobe.ul.pdu import Abort, AssociateRQ, RawItem

_HEADER: Final = struct.Struct(">BBL")

A_ASSOCIATE_RQ: Final = 0x01
A_ASSOCIATE_AC: Final = 0x02
A_ASSOCIATE_RJ: Final = 0x03
P_DATA_TF: Final = 0x04
A_RELEASE_RQ: Final = 0x05
A_RELEASE_RP: Final = 0x06
A_ABORT: Final = 0x07

CONTEXT_ID: Final = 1  # build_request's first (and only) presentation context
_MAX_ITEM_BODY: Final = 0xFFFF  # an item's length field is 16 bits (PS3.8 §9.3.2)
_PADDING_ITEM: Final = 0x55  # not a known A-ASSOCIATE-RQ item: skipped by its length

RELEASE_RQ: Final = RELEASE_RQ_BYTES
ABORT_BY_USER: Final = encode_pdu(Abort(0, 0))
EMPTY_PDATA: Final = _HEADER.pack(P_DATA_TF, 0, 0)
"""A P-DATA-TF with no PDV item: PS3.8 §9.3.5 requires one or more, so it is an invalid PDU."""
HUGE_LENGTH_PDATA_HEADER: Final = _HEADER.pack(P_DATA_TF, 0, 0xFFFFFFFF)


def associate_rq(*, called_ae: str = "ANY-SCP", calling_ae: str = "HOSTILE") -> bytes:
    """The A-ASSOCIATE-RQ our own client sends (Verification, Implicit VR LE)."""
    return encode_pdu(build_request(calling_ae=calling_ae, called_ae=called_ae))


def padded_associate_rq(total_length: int, *, called_ae: str = "ANY-SCP") -> bytes:
    """A valid A-ASSOCIATE-RQ grown to `total_length` bytes (header included) with unknown
    items after the User Information item, e.g. 1 MiB: the largest an SCP should accept."""
    base = build_request(calling_ae="HOSTILE", called_ae=called_ae)
    missing = total_length - len(encode_pdu(base))
    padding: list[RawItem] = []
    while missing > 4:
        body = min(missing - 4, _MAX_ITEM_BODY)
        padding.append(RawItem(_PADDING_ITEM, b"\x00" * body))
        missing -= 4 + body
    rq = AssociateRQ(
        called_ae=base.called_ae,
        calling_ae=base.calling_ae,
        presentation_contexts=base.presentation_contexts,
        user_information=base.user_information,
        application_context=base.application_context,
        other=tuple(padding),
    )
    return encode_pdu(rq)


def echo_rq(message_id: int = 1) -> bytes:
    """One P-DATA-TF carrying a C-ECHO-RQ on the accepted context."""
    return echo_request_pdus(message_id, CONTEXT_ID, 16372)


@dataclass(frozen=True, slots=True)
class WirePDU:
    """One PDU as it came from the SCP: its type and body (header stripped)."""

    pdu_type: int
    body: bytes

    @property
    def abort_source(self) -> int | None:
        """An A-ABORT's source (0 user, 2 provider, PS3.8 §9.3.8); None for other PDUs."""
        if self.pdu_type != A_ABORT or len(self.body) < 4:
            return None
        return self.body[2]

    @property
    def abort_reason(self) -> int | None:
        if self.pdu_type != A_ABORT or len(self.body) < 4:
            return None
        return self.body[3]


def split_pdus(data: bytes) -> tuple[list[WirePDU], bytes]:
    """Whole PDUs in `data`, in order, and the bytes left over (a PDU begun but not ended)."""
    out: list[WirePDU] = []
    at = 0
    while len(data) - at >= _HEADER.size:
        pdu_type, _, length = _HEADER.unpack_from(data, at)
        end = at + _HEADER.size + length
        if end > len(data):
            break
        out.append(WirePDU(pdu_type, data[at + _HEADER.size : end]))
        at = end
    return out, data[at:]


@dataclass(frozen=True, slots=True)
class Conversation:
    """What one raw connection received, and how it ended."""

    pdus: tuple[WirePDU, ...]
    leftover: bytes
    closed: bool  # the SCP closed (EOF or reset) before our read timeout

    @property
    def types(self) -> tuple[int, ...]:
        return tuple(p.pdu_type for p in self.pdus)


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> Conversation:
    """Everything the SCP sends until it closes the connection, or `within` seconds pass."""
    data = bytearray()
    closed = False
    try:
        async with asyncio.timeout(within):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
    except TimeoutError:
        pass
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    pdus, leftover = split_pdus(bytes(data))
    return Conversation(tuple(pdus), leftover, closed)


async def read_pdus(reader: asyncio.StreamReader, count: int, within: float) -> list[WirePDU]:
    """Exactly `count` PDUs from the SCP, or fewer if it closes or `within` seconds pass."""
    data = bytearray()
    pdus: list[WirePDU] = []
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        async with asyncio.timeout(within):
            while len(pdus) < count:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
                pdus, _ = split_pdus(bytes(data))
    return pdus[:count]


async def send_and_read(
    host: str, port: int, payload: bytes, *, within: float, close_after_send: bool = False
) -> Conversation:
    """Connect, write `payload` in one write, and read until the SCP closes or `within` s."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        await writer.drain()
        if close_after_send and writer.can_write_eof():
            writer.write_eof()
        return await read_until_closed(reader, within)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


__all__ = [
    "ABORT_BY_USER",
    "A_ABORT",
    "A_ASSOCIATE_AC",
    "A_ASSOCIATE_RJ",
    "A_ASSOCIATE_RQ",
    "A_RELEASE_RP",
    "A_RELEASE_RQ",
    "CONTEXT_ID",
    "EMPTY_PDATA",
    "HUGE_LENGTH_PDATA_HEADER",
    "P_DATA_TF",
    "RELEASE_RQ",
    "Conversation",
    "WirePDU",
    "associate_rq",
    "echo_rq",
    "padded_associate_rq",
    "read_pdus",
    "read_until_closed",
    "send_and_read",
    "split_pdus",
]
