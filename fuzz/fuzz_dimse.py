"""Fuzz the DIMSE layer: command-set codec, C-ECHO checks, PDV fragmentation and reassembly.

The first input byte picks the mode; the rest is the command set or P-DATA-TF stream.

Invariants:
- `decode_command` raises only `RemoteProtocolError`; what decodes re-encodes to a command set
  that decodes to the same elements (the group length aside, which the encoder computes).
- `parse_echo_request` / `parse_echo_response` raise only `DIMSEError`; the byte-compare
  shortcut for the canonical C-ECHO-RSP agrees with the full decode.
- `Reassembler.feed` raises only `RemoteProtocolError`, never returns more than
  MAX_COMMAND_BYTES, and gives back exactly what `fragment_command` cut up.
- `canonical_echo_request` (the SCP's byte compare) agrees with the general decoders.
"""

from __future__ import annotations

import contextlib

from echoprobe.dimse.command_set import decode_command, encode_command
from echoprobe.dimse.echo import (
    canonical_echo_request,
    echo_request_pdus,
    parse_echo_request,
    parse_echo_response,
)
from echoprobe.dimse.fragment import (
    MAX_COMMAND_BYTES,
    MAX_COMMAND_PDVS,
    Reassembler,
    fragment_command,
)
from echoprobe.errors import DIMSEError, RemoteProtocolError
from echoprobe.ul.codec import decode_pdata, decode_pdu_bytes
from echoprobe.ul.pdu import PDataTF
from fuzz._common import Finding, parse_written, slice_reads, split_input


def check(data: bytes) -> None:
    control, stream = split_input(data, 4)
    mode = control[0] % 4
    if mode == 0:
        _command_set(stream, int.from_bytes(control[1:3], "little"))
    elif mode == 1:
        _reassemble(stream, control[1])
    elif mode == 2:
        _fragment(stream, control[1], int.from_bytes(control[2:4], "little"))
    else:
        _canonical(stream)


def _command_set(command: bytes, message_id: int) -> None:
    try:
        elements = decode_command(command)
    except RemoteProtocolError:
        elements = None
    if elements is not None:
        rest = {k: v for k, v in elements.items() if k != 0}
        again = decode_command(encode_command(rest))
        if {k: v for k, v in again.items() if k != 0} != rest:
            raise Finding(f"command set changed in a round trip: {rest!r} -> {again!r}")
    with contextlib.suppress(DIMSEError):
        parse_echo_request(command)
    try:
        response = parse_echo_response(command, message_id)
    except DIMSEError:
        return
    if elements is None or response.elements != elements:
        raise Finding(f"shortcut and full decode disagree: {response!r} vs {elements!r}")


def _pdata_pdus(stream: bytes) -> list[PDataTF]:
    pdus = []
    for read in slice_reads(stream, 1):
        if len(read) < 6 or read[0] != 0x04:
            break
        try:
            pdus.append(decode_pdata(read[6:]))
        except RemoteProtocolError:
            break
    return pdus


def _reassemble(stream: bytes, accepted_mask: int) -> None:
    accepted = frozenset(cid for cid in range(1, 17, 2) if accepted_mask >> (cid // 2) & 1)
    reassembler = Reassembler(accepted | {1})
    for pdu in _pdata_pdus(stream):
        try:
            done = reassembler.feed(pdu.pdvs)
        except RemoteProtocolError:
            return
        if done is None:
            continue
        context_id, command = done
        if len(command) > MAX_COMMAND_BYTES or context_id not in accepted | {1}:
            raise Finding(f"reassembled {len(command)} bytes on context {context_id}")
        with contextlib.suppress(DIMSEError):
            parse_echo_request(command)


def _fragment(command: bytes, context_id: int, max_fragment: int) -> None:
    pdus = parse_written(fragment_command(command, context_id, max_fragment))
    reassembler = Reassembler(frozenset({context_id}))
    step = max(max_fragment - (max_fragment & 1), 1) if max_fragment < len(command) else 1
    within = len(command) <= MAX_COMMAND_BYTES and len(pdus) <= MAX_COMMAND_PDVS
    result = None
    for index, pdu in enumerate(pdus):
        if not isinstance(pdu, PDataTF) or len(pdu.pdvs) != 1:
            raise Finding(f"fragment {index} is not one PDV: {pdu!r}")
        if max_fragment < len(command) and len(pdu.pdvs[0].data) > step:
            raise Finding(f"fragment of {len(pdu.pdvs[0].data)} bytes exceeds {max_fragment}")
        try:
            result = reassembler.feed(pdu.pdvs)
        except RemoteProtocolError as exc:
            if within:
                raise Finding(f"our own fragments refused: {exc}") from exc
            return
        if result is not None and index != len(pdus) - 1:
            raise Finding(f"command ended at fragment {index} of {len(pdus)}")
    if within and result != (context_id, command):
        raise Finding(f"reassembly gave {result!r}")
    message_id = int.from_bytes(command[:2].ljust(2, b"\x00"), "little")
    rq = echo_request_pdus(message_id, context_id, max_fragment)
    parts = [p.pdvs for p in parse_written(rq) if isinstance(p, PDataTF)]
    reassembler = Reassembler(frozenset({context_id}))
    done = None
    for pdvs in parts:
        done = reassembler.feed(pdvs)
    if done is None or parse_echo_request(done[1]) != message_id:
        raise Finding(f"our C-ECHO-RQ for {message_id} did not come back: {rq.hex()}")


def _canonical(stream: bytes) -> None:
    found = canonical_echo_request(stream)
    if found is None:
        return
    context_id, message_id = found
    try:
        pdu = decode_pdu_bytes(stream)
        if not isinstance(pdu, PDataTF) or len(pdu.pdvs) != 1:
            raise Finding(f"canonical C-ECHO-RQ is not one PDV: {pdu!r}")
        pdv = pdu.pdvs[0]
        same = (pdv.context_id, pdv.control, parse_echo_request(pdv.data))
    except (RemoteProtocolError, DIMSEError) as exc:
        raise Finding(f"canonical C-ECHO-RQ refused by the general path: {exc}") from exc
    if same != (context_id, 0x03, message_id):
        raise Finding(f"canonical {found!r} vs general {same!r}")
