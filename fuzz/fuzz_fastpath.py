"""Fuzz the client fast path (`net/fastpath.py`) against the general procedure.

`FastAssociation` must be indistinguishable from an `AssociationProtocol` running the
association procedure alone: fed the same reads (any bytes, any slicing) and the same ending
(none, EOF, reset, cancellation), both must write the same bytes, close the same way and end
with the same outcome (timings aside). This mirrors tests/property/test_fastpath_properties.py
with arbitrary peer bytes instead of generated conversations. No socket: a fake transport and
an event loop that is never run.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from echoprobe.net.aio import AssociationProtocol
from echoprobe.net.association import EchoTally
from echoprobe.net.fastpath import FastAssociation
from echoprobe.net.procedure import start_procedure
from echoprobe.options import AssociationOptions, Timeouts
from fuzz._common import FakeTransport, Finding, parse_written, slice_reads, split_input

_TIMEOUTS = Timeouts(connect=5, acse=5, dimse=5, release=5)
_MAX_PDUS = (16384, 0, 1024, 256)
_ENDS = ("none", "eof", "reset", "cancel")

Protocol = AssociationProtocol | FastAssociation


def _drive(proto: Protocol, reads: list[bytes], end: str) -> FakeTransport:
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    for data in reads:
        if transport.closed:
            break  # a closed transport delivers nothing more
        proto.data_received(data)
    lost: Exception | None = None
    if not transport.closed:
        if end == "eof":
            if not proto.eof_received():
                transport.close()
        elif end == "reset":
            transport.closed = True
            lost = ConnectionResetError("reset by peer")
        elif end == "cancel":
            proto.done.cancel()  # what cancelling the awaiting task does; then run_echo:
            proto.abort_now()
    if transport.closed:
        proto.connection_lost(lost)
    return transport


def _verdict(proto: Protocol) -> tuple[object, ...]:
    done = proto.done
    if not done.done():
        return ("pending",)
    if done.cancelled():
        return ("cancelled",)
    exc = done.exception()
    if exc is not None:
        return ("error", type(exc).__name__, str(exc), getattr(exc, "phase", None))
    out = done.result()
    return (
        "ok",
        out.negotiated,
        [(r.message_id, r.status, r.error_comment) for r in out.replies],
        out.release,
        out.collision,
        repr(out.release_error),
        sorted(out.timings),
    )


def _run(options: AssociationOptions, reads: list[bytes], end: str, *, fast: bool) -> object:
    loop = asyncio.new_event_loop()
    try:
        tally = EchoTally()
        proto: Protocol
        if fast:
            proto = FastAssociation(options, _TIMEOUTS, loop, {}, None, tally=tally)
        else:
            conn, flow = start_procedure(
                options,
                _TIMEOUTS,
                perf_counter,
                perf_counter(),
                None,
                observer=None,
                timings={},
                tally=tally,
            )
            proto = AssociationProtocol(conn, flow, loop)
        transport = _drive(proto, reads, end)
        parse_written(bytes(transport.written))
        return (bytes(transport.written), transport.closed, _verdict(proto), tally.total)
    finally:
        loop.close()


def check(data: bytes) -> None:
    control, stream = split_input(data, 2)
    options = AssociationOptions(
        repeat=1 + control[0] % 3,
        max_pdu=_MAX_PDUS[(control[0] >> 2) % len(_MAX_PDUS)],
        contexts=1 + (control[0] >> 4) % 2,
    )
    end = _ENDS[(control[0] >> 5) % len(_ENDS)]
    reads = slice_reads(stream, control[1])
    general = _run(options, reads, end, fast=False)
    fast = _run(options, reads, end, fast=True)
    if fast != general:
        raise Finding(f"fast path and procedure disagree:\nfast    {fast!r}\ngeneral {general!r}")
