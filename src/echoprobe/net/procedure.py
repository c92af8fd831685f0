"""What every asyncio-side driver does before it connects: the request, encoded once per option
set, and a `ULConnection` with the association procedure ready to drive over it."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from echoprobe.net.association import Driver, EchoTally, Observer, run_association
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.connection import Role, ULConnection
from echoprobe.ul.negotiation import build_request
from echoprobe.ul.pdu import AssociateRQ


@lru_cache(maxsize=256)
def request_for(options: AssociationOptions) -> tuple[AssociateRQ, bytes]:
    """The A-ASSOCIATE-RQ for these options and its bytes: encoded once, reused by every probe."""
    rq = build_request(
        calling_ae=options.calling_ae,
        called_ae=options.called_ae,
        num_contexts=options.contexts,
        transfer_syntaxes=options.transfer_syntaxes,
        max_pdu=options.max_pdu,
    )
    return rq, encode_pdu(rq)


def start_procedure(
    options: AssociationOptions,
    timeouts: Timeouts,
    clock: Callable[[], float],
    now: float,
    total_deadline: float | None,
    *,
    observer: Observer | None,
    timings: dict[str, float],
    tally: EchoTally | None = None,
) -> tuple[ULConnection, Driver]:
    """A requestor ULConnection with the request queued, and the association procedure to
    drive over it."""
    rq, rq_bytes = request_for(options)
    conn = ULConnection(
        Role.REQUESTOR, max_receive_pdu=options.max_pdu, artim_timeout=timeouts.release or 10.0
    )
    conn.start_connect(rq_bytes, now)
    flow = run_association(
        conn,
        rq,
        options,
        timeouts,
        clock,
        total_deadline=total_deadline,
        observer=observer,
        timings=timings,
        tally=tally,
    )
    return conn, flow
