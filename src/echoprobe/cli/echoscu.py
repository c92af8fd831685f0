"""`echoscu`: a drop-in for DCMTK 3.6.8's echoscu (docs/echoscu-behavior.md is the contract).

Same options, same A-ASSOCIATE-RQ, same log lines and exit codes. It runs one association on
the blocking-socket driver (no asyncio import: start-up time is part of the contract) and maps
each failure of the shared association procedure to DCMTK's report for it, here and only here.

Start-up rules: the cyclic garbage collector is off while this module's imports load (they
allocate thousands of objects that live as long as the process), then back as it was; a run
from the command line freezes those objects out of later collections and ends with `os._exit`
once its output is flushed, skipping the interpreter's teardown of every module.

Exit codes (DCMTK's, surprises included): 0 success, any C-ECHO status, or a peer abort while
waiting for the response; 1 command-line, association and release failures; 70 DIMSE failures.
"""

# ruff: noqa: E402  (the imports follow gc.disable() on purpose)

from __future__ import annotations

import gc

_GC_WAS_ENABLED = gc.isenabled()
gc.disable()  # until the end of this module: see its start-up rules

import _signal  # type: ignore[import-not-found]  # signal.py's C half; no stub
import os
import sys

from echoprobe.cli.echoscu_options import RCSID, EchoscuConfig, Exit, parse_echoscu
from echoprobe.cli.process_exit import exit_now
from echoprobe.dimse.echo import EchoResponse
from echoprobe.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    DIMSEError,
    DIMSETimeout,
    DNSError,
    NoAcceptedContext,
    PeerRequestedRelease,
    ProbeError,
    ProtocolError,
    SendImpossible,
    TimeoutError_,
    TLSError,
)
from echoprobe.net import blocking
from echoprobe.options import AssociationOptions, Timeouts
from echoprobe.report.dcmtk_log import DcmtkLogger, Level
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.constants import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    REJECT_REASON_TEXT,
    REJECT_RESULT_TEXT,
    REJECT_SOURCE_TEXT,
)
from echoprobe.ul.negotiation import DCMTK_TRANSFER_SYNTAXES, Negotiated, build_request
from echoprobe.ul.pdu import AssociateAC, AssociateRQ

TYPE_CHECKING = False  # not typing's: its import is part of the start-up this module avoids
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from echoprobe.net.association import Driver, Observer
    from echoprobe.net.outcome import AssociationOutcome, Resume
    from echoprobe.ul.connection import ULConnection


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_DIMSE = 70
DCMNET = "dcmtk.dcmnet"  # DCMTK's library logger: its warnings show at the default level

_PEER_ABORTED = "0006:0317 Peer aborted Association (or never connected)"
_READ_TIMEOUT = "0006:031a DUL network read timeout"
_NETWORK_CLOSED = "0006:0310 DUL network closed"
_RECEIVE_FAILED = "0006:020d DIMSE Failed to receive message"
_READ_PDV_FAILED = "0006:020c DIMSE Read PDV failed"


class _Report:
    """The association procedure's progress, written as DCMTK's log lines. `phase` says
    where a failure happened, which decides DCMTK's report for it."""

    def __init__(self, log: DcmtkLogger, request: AssociateRQ, *, dictionary_ok: bool) -> None:
        self.log = log
        self.request = request
        self.debug = log.is_enabled(Level.DEBUG)
        # Per echo, on `--repeat`: a line that would not be shown is not formatted either.
        self.info = log.is_enabled(Level.INFO)
        self.dataset_read = log.is_enabled(Level.DEBUG, logger="dcmtk.dcmdata")
        self.dictionary_ok = dictionary_ok
        self.phase = "associate"

    def _dump_ac(self, accept: AssociateAC, raw: bytes) -> None:
        if not self.debug:
            return
        from echoprobe.report.dcmtk_dump import dump_association, hex_dump  # noqa: PLC0415

        log = self.log
        log.debug(
            f"PDU Type: Associate Accept, PDU Length: {len(raw) - 6} + 6 bytes PDU header",
            logger=DCMNET,
        )
        log.debug(hex_dump(raw), logger=DCMNET)
        log.debug("Parsing an A-ASSOCIATE PDU", logger=DCMNET)
        log.debug(
            "Association Parameters Negotiated:\n"
            + dump_association(
                "A-ASSOCIATE-AC",
                self.request,
                accept,
                our_uid=IMPLEMENTATION_CLASS_UID,
                our_version=IMPLEMENTATION_VERSION_NAME,
            )
        )

    def association_accepted(self, accept: AssociateAC, raw: bytes, negotiated: Negotiated) -> None:
        self._dump_ac(accept, raw)
        self.log.info(f"Association Accepted (Max Send PDV: {self._max_send_pdv(negotiated)})")
        self.phase = "echo"

    def _max_send_pdv(self, negotiated: Negotiated) -> int:
        # DCMTK's arithmetic (assoc.cc) for the number it reports, warnings included.
        peer = negotiated.peer_max_pdu
        size = 131072 if not peer or peer > 131072 else peer
        if size % 2:
            self.log.warn(f"ASSOC: PDV send length {size} is odd (using {size - 1})", logger=DCMNET)
            size -= 1
        pdv = size - 12
        if pdv <= 0:
            self.log.warn(f"ASSOC: PDV send length {pdv} (using default)", logger=DCMNET)
            return 4084
        if pdv < 12:
            self.log.warn(
                "ASSOC: PDV send length too small, using DUL to split larger PDVs.", logger=DCMNET
            )
            return 4084
        return pdv

    def association_failed_no_context(self, accept: AssociateAC, raw: bytes) -> None:
        self._dump_ac(accept, raw)

    def echo_sending(self, message_id: int) -> None:
        if self.info:
            self.log.info(f"Sending Echo Request (MsgID {message_id})")
        if not self.dictionary_ok:  # DCMTK fails before anything is sent
            raise DIMSEError("data dictionary missing", code="dictionary_missing")

    def echo_received(self, response: EchoResponse) -> None:
        if self.dataset_read:
            self.log.debug(
                'DcmDataset::read() TransferSyntax="Little Endian Implicit"',
                logger="dcmtk.dcmdata",
            )
        if self.info:
            status = response.status
            text = "Success" if status == 0 else f"Unknown Status: 0x{status:x}"
            self.log.info(f"Received Echo Response ({text})")
        if self.debug:
            extra = response.extra_elements
            if extra:
                from echoprobe.report.dcmtk_dump import status_detail  # noqa: PLC0415

                self.log.debug(status_detail(extra))

    def releasing(self) -> None:
        self.phase = "release"
        self.log.info("Releasing Association")

    def aborting(self) -> None:
        self.log.info("Aborting Association")


def _dictionary_ok(log: DcmtkLogger) -> bool:
    """DCMTK loads its data dictionary from DCMDICTPATH; a C-ECHO needs it. We carry our own
    command dictionary, so only an explicitly set, unreadable DCMDICTPATH is an error, with
    DCMTK's messages."""
    paths = [p for p in os.environ.get("DCMDICTPATH", "").split(os.pathsep) if p]
    if not paths:
        return True
    loaded = False
    for path in paths:
        if os.access(path, os.R_OK) and os.path.isfile(path):
            log.debug(f"DcmDataDictionary: Loading file: {path}", logger="dcmtk.dcmdata")
            loaded = True
        else:
            log.error(f"DcmDataDictionary: Cannot open file: {path}", logger="dcmtk.dcmdata")
    if not loaded:
        log.warn(
            "no data dictionary loaded, check environment variable: DCMDICTPATH",
            logger="dcmtk.dcmdata",
        )
    return loaded


def _reject_lines(log: DcmtkLogger, exc: AssociationRejected) -> None:
    result, source, reason = exc.result, exc.source, exc.reason
    if result not in REJECT_RESULT_TEXT:
        log.error(
            f"Received invalid A-ASSOCIATE-RJ reject result 0x{result:04x}, using default.",
            logger=DCMNET,
        )
        result = 1
    shown_source = source
    if source not in REJECT_SOURCE_TEXT:
        log.error(
            f"Received invalid A-ASSOCIATE-RJ reject source 0x{source:04x}, using default.",
            logger=DCMNET,
        )
        shown_source = 1
    reason_text = REJECT_REASON_TEXT.get((source, reason))
    if reason_text is None:
        log.error(
            f"Received invalid A-ASSOCIATE-RJ reject reason 0x{source:02x}{reason:02x}, "
            "using default.",
            logger=DCMNET,
        )
        reason_text = "No Reason"
    log.fatal(
        "Association Rejected:\n"
        f"Result: {REJECT_RESULT_TEXT[result]}, Source: {REJECT_SOURCE_TEXT[shown_source]}\n"
        f"Reason: {reason_text}"
    )


def _association_failure(
    log: DcmtkLogger, exc: ProbeError, peer: str, port: int, *, tls: bool = False
) -> int:
    """Report a failure before or during A-ASSOCIATE, as DCMTK does (all exit 1). Under TLS,
    DCMTK reports a read timeout while waiting for the A-ASSOCIATE-AC as a peer abort."""
    if isinstance(exc, AssociationRejected):
        _reject_lines(log, exc)
        return EXIT_FAILURE
    if isinstance(exc, NoAcceptedContext):
        log.fatal("No Acceptable Presentation Contexts")
        return EXIT_FAILURE
    if isinstance(exc, ProtocolError):
        if exc.abort_reason == 1 and exc.pdu_type is not None:
            detail = f"0006:0321 Unrecognized PDU type: {exc.pdu_type:2x}"
        elif exc.abort_reason == 2:
            # DCMTK's quirk: an unexpected PDU instead of the AC is reported like this.
            log.fatal("No Acceptable Presentation Contexts")
            return EXIT_FAILURE
        else:
            detail = f"0006:031b DUL Illegal or ill-formed PDU ({exc.error})"
    elif isinstance(exc, TLSError) or (isinstance(exc, DeadlineExceeded) and exc.phase == "tls"):
        from echoprobe.cli.echoscu_tls import condition  # noqa: PLC0415 - ssl only with TLS

        detail = condition(exc) or str(exc)
    elif isinstance(exc, DNSError):
        detail = f"0006:0320 Attempt to connect to unknown host: {peer}"
    elif isinstance(exc, ConnectTimeout):
        detail = "0006:031c TCP Initialization Error: Operation now in progress (Timeout)"
    elif exc.phase == "connect":
        reason = exc.message.rsplit(": ", 1)[-1]
        if exc.outcome == "connection_refused":
            reason = "Connection refused"
        detail = f"0006:031c TCP Initialization Error: {reason}"
    elif isinstance(exc, TimeoutError_) and not tls:
        detail = _NETWORK_CLOSED if exc.timer == "socket" else _READ_TIMEOUT
    elif isinstance(exc, ConnectionLost) and exc.write_error is not None:
        # Our A-ASSOCIATE-RQ could not be written (e.g. a TLS server that wants a client
        # certificate resets the connection): what DCMTK reports when its write fails.
        detail = f"0006:031d TCP I/O Error ({exc.write_error}) occurred in routine: " + (
            "sendAssociationRQTCP"
        )
    else:  # A-ABORT, close or reset
        detail = _PEER_ABORTED
    log.fatal(f"Association Request Failed: {detail}")
    return EXIT_FAILURE


def _dimse_failure(log: DcmtkLogger, exc: ProbeError) -> int:
    """Report a failure while waiting for a C-ECHO-RSP (DCMTK's echoSCU/main split)."""
    peer_abort = (
        isinstance(exc, AssociationAborted)
        or (isinstance(exc, ConnectionLost) and not exc.mid_pdu)
        or (isinstance(exc, DIMSETimeout) and exc.timer == "socket" and not exc.mid_pdu)
    )
    if peer_abort:
        log.error(f"Echo Failed: {_PEER_ABORTED}")
        log.info("Peer Aborted Association")
        return EXIT_OK
    if isinstance(exc, PeerRequestedRelease):
        log.error("Echo Failed: 0006:0319 DUL Peer Requested Release")
        log.fatal("Protocol Error: Peer requested release (Aborting)")
        log.info("Aborting Association")
        return EXIT_DIMSE
    if isinstance(exc, SendImpossible):
        cond = (
            "0006:020e DIMSE Failed to send message\n"
            "0006:0308 DUL Cannot send P-DATA PDU because receiver's max PDU size of "
            f"{exc.peer_max_pdu} is illegal (must be > 12)"
        )
    elif isinstance(exc, DIMSETimeout | DeadlineExceeded):
        if exc.timer == "socket" and exc.mid_pdu:
            cond = f"{_RECEIVE_FAILED}\n{_READ_PDV_FAILED}\n{_NETWORK_CLOSED}"
        else:
            cond = "0006:0207 DIMSE No data available (timeout in non-blocking mode)"
    elif isinstance(exc, ConnectionLost):
        cond = f"{_RECEIVE_FAILED}\n{_READ_PDV_FAILED}\n{_NETWORK_CLOSED}"
    elif isinstance(exc, ProtocolError):
        if exc.abort_reason == 1 and exc.pdu_type is not None:
            cond = (
                f"{_RECEIVE_FAILED}\n{_READ_PDV_FAILED}\n"
                f"0006:0321 Unrecognized PDU type: {exc.pdu_type:2x}"
            )
        else:
            cond = f"{_RECEIVE_FAILED}\n0006:031b DUL Illegal or ill-formed PDU ({exc.error})"
    elif isinstance(exc, DIMSEError):
        if exc.code in ("unexpected_command_field", "unexpected_message_id"):
            cond = f"0006:0211 {exc.message}"
        elif exc.code == "pdv.context_id":
            cond = f"{_RECEIVE_FAILED}\n0006:0101 ASC Bad presentation context ID"
        elif exc.code == "pdv.control":
            cond = f"{_RECEIVE_FAILED}\n0006:020f DIMSE: Command PDV Expected"
        elif exc.code == "dictionary_missing":
            cond = "0006:0213 Data dictionary missing"
        else:
            cond = f"{_RECEIVE_FAILED}\n0006:0210 DIMSE Failed to parse received message ({exc})"
    else:
        cond = f"{_RECEIVE_FAILED}\n{exc}"
    log.error(f"Echo Failed: {cond}")
    log.error(f"Echo SCU Failed: {cond}")
    log.info("Aborting Association")
    return EXIT_DIMSE


def _release_failure(log: DcmtkLogger, outcome: AssociationOutcome) -> int:
    if outcome.collision:
        # We complete the collision as PS3.8 says; DCMTK fails it, and scripts see its report.
        detail = "0006:0319 DUL Peer Requested Release"
    elif outcome.release in ("released", "aborted"):
        return EXIT_OK
    elif outcome.release == "release_timeout":
        detail = _READ_TIMEOUT
    else:
        detail = _PEER_ABORTED
    log.fatal(f"Association Release Failed: {detail}")
    return EXIT_FAILURE


def _timeouts(cfg: EchoscuConfig) -> Timeouts:
    socket_timeout = float(cfg.socket_timeout) if cfg.socket_timeout > 0 else None
    acse = float(cfg.acse_timeout) if cfg.acse_timeout else None
    return Timeouts(
        connect=float(cfg.connect_timeout) if cfg.connect_timeout else None,
        tls=socket_timeout,  # DCMTK's handshake reads are bounded by -ts
        acse=acse,
        dimse=float(cfg.dimse_timeout) if cfg.dimse_timeout else None,
        release=acse,
        socket=socket_timeout,
        total=None,
    )


def run(cfg: EchoscuConfig, log: DcmtkLogger) -> int:
    """One echoscu run after the command line was accepted; returns the exit code."""
    log.debug(RCSID + "\n")
    dictionary_ok = _dictionary_ok(log)
    for warning in cfg.assoc_warnings:
        log.warn(warning, logger=DCMNET)
    tls_session = None
    if cfg.tls.enabled or cfg.verify_cert is not None or cfg.is_root_cert is not None:
        from echoprobe.cli import echoscu_tls  # noqa: PLC0415 - ssl only with TLS options

        prepared = echoscu_tls.prepare(cfg, log)
        if isinstance(prepared, int):
            return prepared
        tls_session = prepared
    syntaxes = tuple(uid for uid, _ in DCMTK_TRANSFER_SYNTAXES[: cfg.num_ts])
    request = build_request(
        calling_ae=cfg.calling_ae,
        called_ae=cfg.called_ae,
        num_contexts=cfg.num_pc,
        transfer_syntaxes=syntaxes,
        max_pdu=cfg.max_pdu,
    )
    if log.is_enabled(Level.DEBUG):
        # The dumps are debug output only: loaded when asked for (start-up time).
        from echoprobe.report.dcmtk_dump import dump_association  # noqa: PLC0415

        log.debug(
            "Request Parameters:\n"
            + dump_association(
                "A-ASSOCIATE-RQ",
                request,
                None,
                our_uid=IMPLEMENTATION_CLASS_UID,
                our_version=IMPLEMENTATION_VERSION_NAME,
            )
        )
    log.info("Requesting Association")
    timeouts = _timeouts(cfg)
    try:
        sock = blocking.connect(cfg.peer, cfg.port, timeouts.connect)
    except ProbeError as exc:
        return _association_failure(log, exc, cfg.peer, cfg.port)
    if cfg.socket_timeout >= 0:
        shown = "0 (infinite)" if cfg.socket_timeout == 0 else f"{cfg.socket_timeout} seconds"
        log.debug(f"setting network send timeout to {shown}", logger=DCMNET)
        log.debug(f"setting network receive timeout to {shown}", logger=DCMNET)
    if tls_session is not None:
        from echoprobe.cli import echoscu_tls  # noqa: PLC0415 - ssl only with TLS options

        try:
            sock = echoscu_tls.handshake(tls_session, sock, timeouts, log)
        except ProbeError as exc:
            return _association_failure(log, exc, cfg.peer, cfg.port, tls=True)
    for which, title in (("Calling", cfg.calling_ae), ("Called", cfg.called_ae)):
        if title == "":
            sock.close()
            log.error(f"Illegal service parameter: {which} AP Title", logger=DCMNET)
            log.fatal(
                f"Association Request Failed: 0006:030c Illegal service parameter: {which} AP Title"
            )
            return EXIT_FAILURE
    log.debug("Constructing Associate RQ PDU", logger=DCMNET)

    options = AssociationOptions(
        calling_ae=cfg.calling_ae,
        called_ae=cfg.called_ae,
        max_pdu=cfg.max_pdu,
        transfer_syntaxes=syntaxes,
        contexts=cfg.num_pc,
        repeat=cfg.repeat,
        release=not cfg.abort,
        abort_on_failure=False,
        abort_linger=timeouts.acse or 0.0,
    )
    request_bytes = encode_pdu(request)

    def start_general(
        clock: Callable[[], float], observer: Observer, resume: Resume | None = None
    ) -> tuple[ULConnection, Driver]:
        # The procedure and its state machine: loaded only when the usual path hands over.
        from echoprobe.net.association import run_association  # noqa: PLC0415
        from echoprobe.ul.connection import Role, ULConnection  # noqa: PLC0415

        conn = ULConnection(
            Role.REQUESTOR, max_receive_pdu=cfg.max_pdu, artim_timeout=timeouts.acse or 30.0
        )
        now = clock()
        conn.start_connect(request_bytes, now)
        conn.connection_made(now)
        # No EchoReply kept: nothing prints them, and `--repeat` may run for hours.
        flow = run_association(
            conn,
            request,
            options,
            timeouts,
            clock,
            observer=observer,
            keep_replies=False,
            resume=resume,
        )
        return conn, flow

    report = _Report(log, request, dictionary_ok=dictionary_ok)
    try:
        if tls_session is None and options.release and dictionary_ok:
            # The usual conversation in byte comparisons; anything else goes to the procedure.
            outcome = blocking.drive_usual(
                sock,
                request,
                request_bytes,
                options,
                timeouts,
                report,
                start_general,
                keep_replies=False,
            )
        else:
            conn, flow = start_general(blocking.clock, report)
            outcome = blocking.drive(sock, conn, flow)
    except ProbeError as exc:
        if report.phase == "associate" and exc.phase in ("associate", "connect"):
            return _association_failure(log, exc, cfg.peer, cfg.port, tls=tls_session is not None)
        return _dimse_failure(log, exc)
    return _release_failure(log, outcome)


def main(argv: Sequence[str] | None = None) -> None:
    """The command: `argv` None means this process's command line, and then the process ends
    here (`exit_now`); with an explicit `argv` it raises SystemExit like any command."""
    if argv is None:
        gc.freeze()  # the modules' objects: never collected, never scanned again
        # A reader that goes away (`echoscu -d ... 2>&1 | head`) ends the process by SIGPIPE,
        # as it ends DCMTK's (status 141), not Python's BrokenPipeError and exit 1. `_signal`,
        # not `signal`: that one imports enum (start-up time).
        if hasattr(_signal, "SIGPIPE"):
            _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    args = list(sys.argv if argv is None else argv)
    parsed = parse_echoscu(args[1:], args[0] if args else "echoscu")
    if isinstance(parsed, Exit):
        code = parsed.emit()
    else:
        log = parsed.make_logger()
        try:
            code = run(parsed, log)
        except KeyboardInterrupt:
            code = 130
        finally:
            log.close()
    if argv is None:
        exit_now(code)
    sys.exit(code)


if _GC_WAS_ENABLED:
    gc.enable()

if __name__ == "__main__":
    main()
