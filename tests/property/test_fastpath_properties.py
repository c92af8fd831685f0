"""The fast path against the general procedure, fed the same bytes (no sockets).

`FastAssociation` is a shortcut through `run_association`: whatever the peer sends, cut into
whatever reads, and whatever happens next (EOF, a reset, cancellation), it must write the same
bytes, close the same way and end with the same outcome as an `AssociationProtocol` alone.
Timings are the only thing allowed to differ. Deadlines are covered over real sockets, with the
fast path on and off, in tests/integration/test_echo_classification.py.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echoprobe.dimse.echo import echo_response_command
from echoprobe.dimse.fragment import fragment_command
from echoprobe.net.aio import AssociationProtocol
from echoprobe.net.association import EchoTally
from echoprobe.net.fastpath import FastAssociation, usable
from echoprobe.net.procedure import request_for, start_procedure
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.ul.codec import encode_pdata, encode_pdu
from echoprobe.ul.negotiation import AcceptorPolicy, answer_request
from echoprobe.ul.pdu import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    PresentationContextAC,
    ReleaseRP,
    ReleaseRQ,
)

TIMEOUTS = Timeouts(connect=5, acse=5, dimse=5, release=5)
RELEASE_RP = encode_pdu(ReleaseRP())
RELEASE_RQ = encode_pdu(ReleaseRQ())
ABORT = encode_pdu(Abort(2, 0))

AC_KINDS = ("ours", "other-peer", "small-pdu", "no-context", "reject", "abort", "garbage")
RSP_KINDS = (
    "canonical",
    "canonical",
    "canonical",
    "status",
    "comment",
    "wrong-id",
    "two-pdvs",
    "two-pdus",
    "empty-pdv-first",
    "abort",
    "release-rq",
)
END_KINDS = ("rp", "rp", "collision", "abort", "none", "rp-reserved", "rp-then-data")


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def accept_pdu(options: AssociationOptions, kind: str) -> bytes:
    rq, _ = request_for(options)
    if kind == "reject":
        return encode_pdu(AssociateRJ(1, 1, 7))
    if kind == "abort":
        return ABORT
    if kind == "garbage":
        return b"\x09\x00\x00\x00\x00\x00"
    policy = AcceptorPolicy()
    if kind == "other-peer":
        policy = AcceptorPolicy(
            max_pdu=0, implementation_class_uid="1.2.3.4.5", implementation_version_name=None
        )
    elif kind == "small-pdu":
        policy = AcceptorPolicy(max_pdu=40)
    ac = answer_request(rq, policy)
    if kind == "no-context":
        pcs = tuple(
            PresentationContextAC(pc.context_id, 3, None) for pc in ac.presentation_contexts
        )
        ac = AssociateAC(ac.called_ae, ac.calling_ae, pcs, ac.user_information)
    return encode_pdu(ac)


def response_pdus(kind: str, message_id: int, context_id: int = 1) -> bytes:
    if kind == "abort":
        return ABORT
    if kind == "release-rq":
        return RELEASE_RQ
    command = {
        "status": lambda: echo_response_command(message_id, 0xA700),
        "comment": lambda: echo_response_command(message_id, 0x0110, "busy"),
        "wrong-id": lambda: echo_response_command(message_id + 1),
    }.get(kind, lambda: echo_response_command(message_id))()
    if kind == "two-pdvs":
        half = len(command) // 2
        return encode_pdata(
            (PDV(context_id, 0x01, command[:half]), PDV(context_id, 0x03, command[half:]))
        )
    if kind == "two-pdus":
        return fragment_command(command, context_id, 40)
    if kind == "empty-pdv-first":
        return encode_pdata((PDV(context_id, 0x01, b""), PDV(context_id, 0x03, command)))
    return fragment_command(command, context_id, 16384)


def end_pdus(kind: str) -> bytes:
    return {
        "rp": RELEASE_RP,
        "collision": RELEASE_RQ + RELEASE_RP,
        "abort": ABORT,
        "none": b"",
        "rp-reserved": RELEASE_RP[:-1] + b"\x01",
        "rp-then-data": RELEASE_RP + response_pdus("canonical", 9),
    }[kind]


def drive(
    proto: AssociationProtocol | FastAssociation, reads: list[bytes], end: str
) -> FakeTransport:
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


def verdict(proto: AssociationProtocol | FastAssociation) -> tuple[object, ...]:
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


def run_both(
    options: AssociationOptions, reads: list[bytes], end: str, timeouts: Timeouts = TIMEOUTS
) -> tuple[tuple[object, ...], tuple[object, ...], FastAssociation]:
    results = []
    fast_proto: FastAssociation | None = None
    for fast in (False, True):
        loop = asyncio.new_event_loop()
        try:
            proto: AssociationProtocol | FastAssociation
            tally = EchoTally()
            if fast:
                proto = fast_proto = FastAssociation(options, timeouts, loop, {}, None, tally=tally)
            else:
                conn, flow = start_procedure(
                    options,
                    timeouts,
                    perf_counter,
                    perf_counter(),
                    None,
                    observer=None,
                    timings={},
                    tally=tally,
                )
                proto = AssociationProtocol(conn, flow, loop)
            transport = drive(proto, reads, end)
            results.append(
                (bytes(transport.written), transport.closed, verdict(proto), tally.total)
            )
        finally:
            loop.close()
    assert fast_proto is not None
    return results[0], results[1], fast_proto


def cut(
    stream: bytes, boundaries: list[int], at_boundaries: list[bool], extra: list[int]
) -> list[bytes]:
    points = {b for b, keep in zip(boundaries, at_boundaries, strict=False) if keep}
    points.update(p for p in extra if 0 < p < len(stream))
    reads, start = [], 0
    for point in sorted(points):
        if start < point < len(stream):
            reads.append(stream[start:point])
            start = point
    if start < len(stream):
        reads.append(stream[start:])
    return reads


@st.composite
def conversations(draw: st.DrawFn) -> tuple[AssociationOptions, list[bytes], str]:
    repeat = draw(st.integers(1, 3))
    options = AssociationOptions(
        repeat=repeat,
        max_pdu=draw(st.sampled_from([16384, 0, 1024])),
        contexts=draw(st.sampled_from([1, 1, 2])),
    )
    pieces = [accept_pdu(options, draw(st.sampled_from(AC_KINDS)))]
    for index in range(draw(st.integers(0, repeat + 1))):
        pieces.append(response_pdus(draw(st.sampled_from(RSP_KINDS)), index + 1))
    pieces.append(end_pdus(draw(st.sampled_from(END_KINDS))))
    boundaries, total = [], 0
    for piece in pieces:
        total += len(piece)
        boundaries.append(total)
    stream = b"".join(pieces)
    at_boundaries = draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
    extra = draw(st.lists(st.integers(1, max(len(stream) - 1, 1)), max_size=3))
    end = draw(st.sampled_from(("none", "eof", "reset", "cancel")))
    return options, cut(stream, boundaries, at_boundaries, extra), end


@settings(max_examples=400, deadline=None)
@given(conversations())
def test_fast_path_is_indistinguishable_from_the_procedure(
    case: tuple[AssociationOptions, list[bytes], str],
) -> None:
    options, reads, end = case
    general, fast, _ = run_both(options, reads, end)
    assert fast == general


@pytest.mark.parametrize("repeat", [1, 3])
def test_the_usual_conversation_never_leaves_the_fast_path(repeat: int) -> None:
    options = AssociationOptions(repeat=repeat)
    reads = [accept_pdu(options, "ours")]
    reads += [response_pdus("canonical", i + 1) for i in range(repeat)]
    reads.append(RELEASE_RP)
    general, fast, proto = run_both(options, reads, "none")
    assert fast == general
    verdict_ = fast[2]
    assert isinstance(verdict_, tuple)
    assert verdict_[0] == "ok"
    assert proto._inner is None  # the shortcut was taken all the way


def test_a_new_peer_is_decoded_then_remembered() -> None:
    options = AssociationOptions()
    reads = [accept_pdu(options, "other-peer"), response_pdus("canonical", 1), RELEASE_RP]
    for _ in range(2):
        general, fast, proto = run_both(options, reads, "none")
        assert fast == general
        assert proto._inner is None
    outcome = general[2]
    assert isinstance(outcome, tuple)
    assert outcome[1].peer_implementation_class_uid == "1.2.3.4.5"


@pytest.mark.parametrize("where", ["associate", "echo", "release"])
@pytest.mark.parametrize("end", ["eof", "reset", "cancel"])
def test_hand_over_in_every_phase(where: str, end: str) -> None:
    options = AssociationOptions(repeat=2)
    reads = {
        "associate": [],
        "echo": [accept_pdu(options, "ours"), response_pdus("canonical", 1)],
        "release": [accept_pdu(options, "ours")]
        + [response_pdus("canonical", i + 1) for i in range(2)],
    }[where]
    general, fast, proto = run_both(options, reads, end)
    assert fast == general
    assert proto._inner is not None


def test_replay_after_message_ids_wrap() -> None:
    # 65,537 answers: Message ID 65535 is followed by 1 again (DCMTK's and our rule).
    options = AssociationOptions(repeat=65_540)
    reads = [accept_pdu(options, "ours")]
    reads += [response_pdus("canonical", (i % 0xFFFF) + 1) for i in range(65_537)]
    reads.append(ABORT)
    general, fast, proto = run_both(options, reads, "none")
    assert fast == general
    verdict_ = fast[2]
    assert isinstance(verdict_, tuple)
    assert verdict_[:2] == ("error", "AssociationAborted")
    assert proto._inner is not None


def test_socket_timeout_without_phase_timeouts_keeps_the_procedure() -> None:
    assert usable(AssociationOptions(), Timeouts())
    assert usable(AssociationOptions(), Timeouts(socket=1.0))
    assert not usable(AssociationOptions(), Timeouts(socket=1.0, acse=None))
    assert not usable(AssociationOptions(release=False), Timeouts())
    assert not usable(AssociationOptions(max_pdu=128), Timeouts())
