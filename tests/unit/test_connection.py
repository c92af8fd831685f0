"""Whole dialogues between two `ULConnection`s wired together in memory (no sockets)."""

from __future__ import annotations

import pytest
from tests.support.ul_drive import (
    AC_BYTES,
    ARTIM,
    RELEASE_RP_BYTES,
    RELEASE_RQ_BYTES,
    REQUEST,
    RQ_BYTES,
    connection,
    drain,
    drive,
    pump,
    state_of,
)

from echoprobe._values import replace
from echoprobe.dimse.echo import (
    echo_request_pdus,
    echo_response_command,
    parse_echo_request,
    parse_echo_response,
)
from echoprobe.dimse.fragment import Reassembler, fragment_command
from echoprobe.errors import LocalProtocolError, PDUTooLarge, RemoteProtocolError
from echoprobe.ul.codec import decode_pdu_bytes, encode_pdata, encode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.events import (
    AbortReceived,
    ARTIMExpired,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    ConnectionClosed,
    DataReceived,
    ProtocolViolation,
    ReleaseConfirmed,
    ReleaseRequested,
    ULEvent,
)
from echoprobe.ul.framing import FrameLimits
from echoprobe.ul.fsm import State
from echoprobe.ul.negotiation import (
    AcceptorPolicy,
    answer_request,
    build_request,
    check_request,
    validate_accept,
)
from echoprobe.ul.pdu import PDV, Abort, AssociateRJ, PDataTF


def _associate(max_pdu: int = 16384) -> tuple[ULConnection, ULConnection]:
    """A requestor and an acceptor in Sta6, after a real RQ/AC exchange."""
    rq = build_request(max_pdu=max_pdu)
    scu, scp = connection(Role.REQUESTOR), connection(Role.ACCEPTOR)
    scu.start_connect(rq, 0.0)
    scp.connection_made(0.0)
    scu.connection_made(0.0)
    pump(scu, scp)
    [requested] = drain(scp)
    assert isinstance(requested, AssociationRequested)
    assert requested.request == rq
    assert requested.raw == encode_pdu(rq)
    assert check_request(requested.request, AcceptorPolicy()) is None
    scp.accept(answer_request(requested.request, AcceptorPolicy()))
    pump(scu, scp)
    [accepted] = drain(scu)
    assert isinstance(accepted, AssociationAccepted)
    assert accepted.raw == encode_pdu(accepted.accept)
    assert state_of(scu) is State.STA6
    assert state_of(scp) is State.STA6
    assert scp.get_timer() is None  # AE-6 stopped the acceptor's ARTIM
    return scu, scp


def _one(conn: ULConnection) -> ULEvent:
    [event] = drain(conn)
    return event


# -- the requestor's ordinary dialogue ------------------------------------------------------


def test_associate_echo_release() -> None:
    rq = build_request()
    scu, scp = _associate()
    negotiated = validate_accept(rq, answer_request(rq, AcceptorPolicy()))

    scu.send_pdata(echo_request_pdus(1, negotiated.context_id, negotiated.max_fragment))
    pump(scu, scp)
    scp_in = Reassembler(frozenset({negotiated.context_id}))
    data = _one(scp)
    assert isinstance(data, DataReceived)
    complete = scp_in.feed(data.pdvs)
    assert complete is not None
    assert parse_echo_request(complete[1]) == 1

    scp.send_pdata(fragment_command(echo_response_command(1), complete[0], 16372))
    pump(scu, scp)
    scu_in = Reassembler(frozenset({negotiated.context_id}))
    data = _one(scu)
    assert isinstance(data, DataReceived)
    reply = scu_in.feed(data.pdvs)
    assert reply is not None
    assert parse_echo_response(reply[1], 1).status == 0x0000

    scu.request_release()
    assert state_of(scu) is State.STA7
    pump(scu, scp)
    assert _one(scp) == ReleaseRequested()
    assert state_of(scp) is State.STA8
    scp.respond_release(5.0)
    assert state_of(scp) is State.STA13
    assert scp.get_timer() == 5.0 + ARTIM  # AR-4: wait for the requestor to close
    pump(scu, scp)
    assert _one(scu) == ReleaseConfirmed()
    assert state_of(scu) is State.STA1
    assert scu.close_requested

    scp.receive_data(b"", 6.0)  # the requestor closed the transport
    assert state_of(scp) is State.STA1
    assert _one(scp) == ConnectionClosed(expected=True)
    assert scp.get_timer() is None


def test_pdata_objects_and_bytes_are_sent_alike() -> None:
    scu, scp = _associate()
    pdvs = (PDV(1, 0x00, b"ab"), PDV(1, 0x02, b""))
    scu.send_pdata(PDataTF(pdvs))
    scu.send_pdata(encode_pdata(pdvs))
    out = scu.data_to_send()
    assert out == encode_pdata(pdvs) * 2
    scp.receive_data(out, 0.0)
    assert drain(scp) == [DataReceived(pdvs), DataReceived(pdvs)]


def test_acceptor_can_send_pdata_while_answering_a_release() -> None:
    scu, scp = _associate()
    scu.request_release()
    pump(scu, scp)
    assert _one(scp) == ReleaseRequested()
    scp.send_pdata(PDataTF((PDV(1, 0x03, b"xy"),)))  # AR-7 in Sta8
    scp.respond_release()
    pump(scu, scp)
    assert drain(scu) == [DataReceived((PDV(1, 0x03, b"xy"),)), ReleaseConfirmed()]  # AR-6, AR-3
    assert state_of(scu) is State.STA1


def test_rejected_association() -> None:
    scu, scp = connection(Role.REQUESTOR), connection(Role.ACCEPTOR)
    scu.start_connect(RQ_BYTES)  # pre-encoded requests are accepted
    scu.connection_made()
    scp.connection_made()
    pump(scu, scp)
    assert isinstance(_one(scp), AssociationRequested)
    rj = check_request(REQUEST, AcceptorPolicy(ae_titles=frozenset({"OTHER-SCP"})))
    assert rj == AssociateRJ(1, 1, 7)
    scp.reject(rj, 2.0)
    assert state_of(scp) is State.STA13
    pump(scu, scp)
    assert _one(scu) == AssociationRejected(rj)
    assert state_of(scu) is State.STA1
    assert scu.close_requested
    # The requestor does not close; the acceptor's ARTIM ends it (AE-8, then AA-2).
    scp.handle_timer(2.0 + ARTIM)
    assert state_of(scp) is State.STA1
    assert _one(scp) == ARTIMExpired()
    assert scp.close_requested


def test_requestor_aborts() -> None:
    scu, scp = _associate()
    scu.abort(1.0, reason=0)
    assert state_of(scu) is State.STA13
    pump(scu, scp)
    assert _one(scp) == AbortReceived(0, 0)
    assert state_of(scp) is State.STA1
    assert scp.close_requested
    scu.receive_data(b"", 2.0)  # the acceptor closed after the abort (AR-5 in Sta13)
    assert state_of(scu) is State.STA1
    assert _one(scu) == ConnectionClosed(expected=True)


def test_acceptor_aborts() -> None:
    scu, scp = _associate()
    scp.abort(1.0, reason=3)
    assert decode_pdu_bytes(scp.data_to_send()) == Abort(0, 3)
    scu.receive_data(encode_pdu(Abort(0, 3)), 1.0)
    assert _one(scu) == AbortReceived(0, 3)
    assert state_of(scu) is State.STA1
    assert scu.close_requested
    scp.handle_timer(1.0 + ARTIM)  # nobody closes: ARTIM does (AA-1, then AA-2)
    assert state_of(scp) is State.STA1
    assert _one(scp) == ARTIMExpired()


def test_peer_abort_while_awaiting_the_accept() -> None:
    scu = drive(Role.REQUESTOR, State.STA5)
    scu.receive_data(encode_pdu(Abort(2, 6)), 0.0)
    assert _one(scu) == AbortReceived(2, 6)
    assert state_of(scu) is State.STA1
    assert scu.close_requested


@pytest.mark.parametrize("requestor_answers_first", [True, False])
def test_release_collision_reaches_sta1_on_both_sides(requestor_answers_first: bool) -> None:
    scu, scp = _associate()
    scu.request_release()
    scp.request_release()
    rq_from_scu, rq_from_scp = scu.data_to_send(), scp.data_to_send()
    assert rq_from_scu == rq_from_scp == RELEASE_RQ_BYTES
    scu.receive_data(rq_from_scp, 0.0)
    scp.receive_data(rq_from_scu, 0.0)
    # AR-8: the requestor goes to Sta9, the acceptor to Sta10 (PS3.8 §9.2.2 note).
    assert state_of(scu) is State.STA9
    assert state_of(scp) is State.STA10
    assert _one(scu) == ReleaseRequested(collision=True)
    assert _one(scp) == ReleaseRequested(collision=True)
    # Only the requestor may answer first; the acceptor's response is not allowed yet.
    with pytest.raises(LocalProtocolError):
        scp.respond_release()
    if not requestor_answers_first:
        return
    scu.respond_release()  # AR-9
    assert state_of(scu) is State.STA11
    scp.receive_data(scu.data_to_send(), 0.0)  # AR-10
    assert state_of(scp) is State.STA12
    assert _one(scp) == ReleaseConfirmed()
    scp.respond_release(1.0)  # AR-4
    assert state_of(scp) is State.STA13
    scu.receive_data(scp.data_to_send(), 1.0)  # AR-3
    assert state_of(scu) is State.STA1
    assert _one(scu) == ReleaseConfirmed()
    assert scu.close_requested
    scp.receive_data(b"", 1.5)  # AR-5
    assert state_of(scp) is State.STA1
    assert _one(scp) == ConnectionClosed(expected=True)


def test_artim_expiry_for_an_acceptor_that_never_gets_a_request() -> None:
    scp = connection(Role.ACCEPTOR)
    scp.connection_made(10.0)
    assert scp.get_timer() == 10.0 + ARTIM
    scp.handle_timer(10.0 + ARTIM - 1)
    assert state_of(scp) is State.STA2
    assert drain(scp) == []
    scp.handle_timer(10.0 + ARTIM + 1)
    assert state_of(scp) is State.STA1
    assert _one(scp) == ARTIMExpired()
    assert scp.close_requested
    assert scp.data_to_send() == b""


def test_artim_expiry_after_an_abort_the_peer_ignores() -> None:
    scu = drive(Role.REQUESTOR, State.STA5)
    scu.receive_data(RELEASE_RQ_BYTES, 3.0)  # unexpected in Sta5: AA-8
    assert state_of(scu) is State.STA13
    assert decode_pdu_bytes(scu.data_to_send()) == Abort(2, 2)
    assert scu.get_timer() == 3.0 + ARTIM
    scu.receive_data(RELEASE_RP_BYTES, 4.0)  # AA-6: ignored
    assert state_of(scu) is State.STA13
    [violation] = drain(scu)
    assert isinstance(violation, ProtocolViolation)
    assert violation.error.abort_reason == 2
    assert violation.error.pdu_type == 0x05
    scu.handle_timer(3.0 + ARTIM)
    assert state_of(scu) is State.STA1
    assert _one(scu) == ARTIMExpired()


# -- decode errors: A-ABORT (service provider, reason from the error), input ignored ----------

# An A-ASSOCIATE-AC whose application-context item declares 0x0100 bytes it does not have.
AC_ITEM_OVERRUN = AC_BYTES[:76] + b"\x01\x00" + AC_BYTES[78:]


@pytest.mark.parametrize(
    ("data", "reason", "field", "offset"),
    [
        (AC_ITEM_OVERRUN, 6, "associate.item_length", 76),
        (b"\x09", 1, "pdu_type", 0),  # refused at the first byte
        (b"\x05\x00\x00\x00\x00\x05\x00", 6, "pdu_length", 2),
        (b"\x02\x00\x00\x00\x00\x10" + bytes(16), 6, "fixed_fields", 22),
    ],
    ids=["item-overrun", "unknown-type", "fixed-length", "short-ac"],
)
def test_decode_error_in_sta5_aborts(data: bytes, reason: int, field: str, offset: int) -> None:
    scu = drive(Role.REQUESTOR, State.STA5)
    scu.receive_data(data, 1.0)
    assert state_of(scu) is State.STA13
    assert decode_pdu_bytes(scu.data_to_send()) == Abort(2, reason)
    [violation] = drain(scu)
    assert isinstance(violation, ProtocolViolation)
    assert isinstance(violation.error, RemoteProtocolError)
    assert violation.error.abort_reason == reason
    assert violation.error.field == field
    assert violation.error.offset == offset
    # After a framing or decoding error the byte stream is not trusted: even a valid A-ABORT
    # is not read (AA-2 would otherwise end Sta13 early).
    scu.receive_data(encode_pdu(Abort(0, 0)), 2.0)
    assert state_of(scu) is State.STA13
    assert drain(scu) == []
    assert scu.data_to_send() == b""
    scu.receive_data(b"", 3.0)  # the close itself still counts (AR-5)
    assert state_of(scu) is State.STA1


def test_pdata_above_our_maximum_length_aborts_before_buffering() -> None:
    scu, _ = _associate(max_pdu=4096)
    scu.set_limits(FrameLimits(max_pdata=4096))
    # Only the header of a too-large P-DATA-TF arrives: refused when the header completes.
    scu.receive_data(b"\x04\x00\x00\x00\x10\x01", 1.0)
    assert decode_pdu_bytes(scu.data_to_send()) == Abort(2, 6)
    [violation] = drain(scu)
    assert isinstance(violation, ProtocolViolation)
    assert isinstance(violation.error, PDUTooLarge)
    assert violation.error.length == 4097
    assert violation.error.limit == 4096
    assert scu.limits.max_pdata == 4096


def test_unexpected_pdu_in_sta6_aborts_with_reason_2() -> None:
    scu, _ = _associate()
    scu.receive_data(RQ_BYTES, 1.0)
    assert decode_pdu_bytes(scu.data_to_send()) == Abort(2, 2)
    [violation] = drain(scu)
    assert isinstance(violation, ProtocolViolation)
    assert violation.error.pdu_type == 0x01
    assert state_of(scu) is State.STA13


def test_decode_error_before_the_request_reports_the_real_error() -> None:
    # Sta2 + Evt19 is AA-1: A-ABORT with service-user source (PS3.8 Table 9-10); the event
    # must still carry what was wrong with the bytes.
    scp = drive(Role.ACCEPTOR, State.STA2)
    scp.receive_data(b"\x01\x00\x00\x00\x00\x02\x00\x01", 1.0)
    assert decode_pdu_bytes(scp.data_to_send()) == Abort(0, 0)
    [violation] = drain(scp)
    assert isinstance(violation, ProtocolViolation)
    assert violation.error.field == "fixed_fields"
    assert violation.error.pdu_type == 0x01
    assert state_of(scp) is State.STA13
    scp.receive_data(RQ_BYTES, 2.0)
    assert drain(scp) == []
    assert state_of(scp) is State.STA13


def test_several_pdus_in_one_read_are_all_handled() -> None:
    scu = drive(Role.REQUESTOR, State.STA5)
    pdata = encode_pdata([PDV(1, 0x03, b"ok")])
    scu.receive_data(AC_BYTES + pdata + pdata[:3], 0.0)
    events = drain(scu)
    assert [type(e) for e in events] == [AssociationAccepted, DataReceived]
    assert scu.mid_pdu
    scu.receive_data(pdata[3:], 0.0)
    assert drain(scu) == [DataReceived((PDV(1, 0x03, b"ok"),))]
    assert not scu.mid_pdu


def test_bytes_after_a_closing_pdu_are_not_read() -> None:
    # AR-3 ends the association: a P-DATA-TF behind the A-RELEASE-RP in the same read has no
    # cell in Sta1 and must not be dispatched.
    scu = drive(Role.REQUESTOR, State.STA7)
    scu.receive_data(RELEASE_RP_BYTES + encode_pdata([PDV(1, 3, b"")]), 0.0)
    assert state_of(scu) is State.STA1
    assert drain(scu) == [ReleaseConfirmed()]
    assert scu.data_to_send() == b""


# -- mid_pdu -------------------------------------------------------------------------------------


def test_mid_pdu_tracks_a_half_read_pdu() -> None:
    scu = drive(Role.REQUESTOR, State.STA5)
    assert not scu.mid_pdu
    scu.receive_data(AC_BYTES[:1], 0.0)
    assert scu.mid_pdu
    scu.receive_data(AC_BYTES[1:40], 0.0)
    assert scu.mid_pdu
    assert drain(scu) == []
    scu.receive_data(AC_BYTES[40:], 0.0)
    assert not scu.mid_pdu
    assert isinstance(_one(scu), AssociationAccepted)


@pytest.mark.parametrize("cut", [0, 1, 5, 6, 20])
def test_close_mid_pdu_is_reported(cut: int) -> None:
    scu, _ = _associate()
    pdata = encode_pdata([PDV(1, 0x03, bytes(30))])
    if cut:
        scu.receive_data(pdata[:cut], 0.0)
    assert scu.mid_pdu is (cut > 0)
    scu.receive_data(b"", 1.0)  # AA-4: A-P-ABORT indication
    assert state_of(scu) is State.STA1
    assert _one(scu) == ConnectionClosed(expected=False, mid_pdu=cut > 0)
    assert scu.close_requested


def test_connect_failure_in_sta4() -> None:
    scu = drive(Role.REQUESTOR, State.STA4)
    scu.receive_data(b"", 1.0)  # transport closed before it opened (Evt17, AA-4)
    assert state_of(scu) is State.STA1
    assert _one(scu) == ConnectionClosed(expected=False, mid_pdu=False)


def test_acceptor_cannot_start_an_association() -> None:
    with pytest.raises(LocalProtocolError):
        connection(Role.ACCEPTOR).start_connect(build_request())


def test_acceptor_refuses_a_request_it_does_not_support() -> None:
    rq = replace(build_request(), application_context="1.2.3")
    assert check_request(rq, AcceptorPolicy()) == AssociateRJ(1, 1, 2)
