"""Fuzz `EchoSCP`'s connection protocol (`net/server.py`, `_SCPProtocol`) with any reads.

Each input is played three times into a fresh protocol object over a fake transport, inside
an event loop that is never run (no socket, no timer may be left behind): on a listener
primed with our usual request (so the byte-compare shortcut answers whatever it recognises),
on an unprimed one with the same slicing, and on an unprimed one with the stream in one read.
The transport then ends: the peer closes, or stays until the idle bound or the ARTIM timer
(`tick` at a later time).

Invariants:
- no exception escapes the asyncio callbacks (`data_received`, `eof_received`, `tick`,
  `connection_lost`); nothing is written after close; what is written is whole, valid PDUs;
- the shortcut is invisible, and so is the slicing (the SCP's `ULConnection` dispatches on
  demand): all three runs write the same bytes, close the same way and count the same
  (`SCPCounters`);
- a closed connection leaves no open connection, association or pending request byte
  counted, and no timer; nothing is caught as an internal error (the SCP counts and logs those
  instead of raising; the harness raises them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from echoprobe.dimse.echo import echo_request_pdus
from echoprobe.net.procedure import request_for
from echoprobe.net.server import EchoSCP, _Listener, _SCPProtocol
from echoprobe.options import AssociationOptions
from echoprobe.ul.codec import RELEASE_RQ_BYTES
from fuzz._common import (
    TOLERATED,
    FakeTransport,
    Finding,
    parse_written,
    slice_reads,
    split_input,
)

_IDLE = 30.0
_ARTIM = 5.0
# How the transport ends: the peer closes, or time passes beyond the ARTIM timeout, or
# beyond the idle bound too.
_ENDS = ("eof", "artim", "idle")
_LOOP = asyncio.new_event_loop()  # never run: only its clock is read

Answers = dict[bytes, Any]  # request bytes → the listener's cached answer


class _Probe(_SCPProtocol):
    """The SCP's protocol, except that what it would count and log as an internal error (a
    bug, caught so as never to lose the loop) is raised here, with its traceback."""

    def _internal_error(self, exc: Exception) -> None:
        raise exc


def _scp() -> EchoSCP:
    scp = EchoSCP("127.0.0.1", 0, idle_timeout=_IDLE, artim_timeout=_ARTIM)
    scp._loop = _LOOP  # what start() does, without binding a socket
    return scp


def _play(
    accepted: Answers, reads: list[bytes], end: str
) -> tuple[bytes, bool, bool, dict[str, int]]:
    scp = _scp()
    listener = _Listener(host="127.0.0.1", port=104, accepted=dict(accepted))
    proto = _Probe(scp, listener)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    for data in reads:
        if transport.closed or transport.paused:
            break  # a paused transport delivers nothing more, not even the EOF
        proto.data_received(data)
    if not transport.closed:
        if end == "eof" and not transport.paused:
            if not proto.eof_received():
                transport.close()
        else:
            later = _ARTIM + 1 if end == "artim" else _IDLE + 1
            proto.tick(_LOOP.time() + later)
    if transport.closed:
        proto.connection_lost(None)
        if scp.open_connections or scp.active_associations or scp._pending_bytes:
            raise Finding(
                f"closed, yet {scp.open_connections} connections, "
                f"{scp.active_associations} associations and {scp._pending_bytes} pending "
                "request bytes counted"
            )
    scheduled = getattr(_LOOP, "_scheduled", [])
    if scheduled:
        raise Finding(f"timers left behind: {scheduled!r}")
    written = bytes(transport.written)
    parse_written(written)
    counters = scp.counters.as_dict()
    if "F3" in TOLERATED:  # F3 shows in how an ended connection is counted, not on the wire
        counters.pop("timeouts")
        counters.pop("dropped_slow_pdu")
    return written, transport.closed, transport.eof_written, counters


def _primed_answers() -> Answers:
    """What a listener remembers after one ordinary association of ours."""
    scp = _scp()
    listener = _Listener(host="127.0.0.1", port=104)
    for options in (AssociationOptions(), AssociationOptions(contexts=2, max_pdu=0)):
        proto = _Probe(scp, listener)
        proto.connection_made(FakeTransport())  # type: ignore[arg-type]
        for data in (request_for(options)[1], echo_request_pdus(1, 1, 16372), RELEASE_RQ_BYTES):
            proto.data_received(data)
        proto.connection_lost(None)
    if len(listener.accepted) != 2:
        raise RuntimeError("priming the SCP shortcut failed")
    return dict(listener.accepted)


_PRIMED = _primed_answers()


def check(data: bytes) -> None:
    control, stream = split_input(data, 2)
    end = _ENDS[control[0] % len(_ENDS)]
    reads = slice_reads(stream, control[1])
    primed = _play(_PRIMED, reads, end)
    unprimed = _play({}, reads, end)
    if primed != unprimed:
        raise Finding(f"the shortcut changed the answer:\n{primed!r}\nvs\n{unprimed!r}")
    whole = _play({}, [stream] if stream else [], end)
    if unprimed != whole:
        raise Finding(f"slicing changed the answer:\n{unprimed!r}\nvs whole\n{whole!r}")
