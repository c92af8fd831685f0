"""The golden scenario table for the `echoscu` drop-in.

Each `Case` is one command line run against a fresh fake SCP (or no peer at all). `expect` is what
the contract (docs/echoscu-behavior.md, cited by section) says the command must do. In golden mode
the program under test must match DCMTK's run byte for byte after normalisation *and* satisfy
`expect`; in DCMTK-only mode DCMTK's run is checked against `expect`.

A case with `difference` set is a known, deliberate difference: DCMTK 3.6.7 does what `dcmtk`
says, ours must do what `expect` says, and the two runs are not compared with each other.

Expected stderr lines are written normalised (see the test module): `<rcsid>`, `<prog>`, `<port>`,
`<dir>`, and `<ours>` for our implementation class UID / version name. At `-d`, lines are in the
"debug view": `RQ|`/`AC|` dump lines with whitespace collapsed, `HEX|` for the hex dump, `D|` for
the other debug lines the contract requires, and I/W/E/F lines verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tests.support.fake_scp import (
    IMPLICIT_VR_LE,
    VERIFICATION_SOP_CLASS,
    Abort,
    Accept,
    Close,
    EchoReply,
    PresentationContext,
    ReadEcho,
    ReadPDU,
    Reject,
    Reset,
    Respond,
    Send,
    Serve,
    Stall,
    Step,
    Trickle,
    a_abort,
    a_associate_rq,
    a_release_rq,
    c_echo_rsp,
    p_data_tf,
    pdu,
    pdv,
)

DCMTK_IMPL_UID = "1.2.276.0.7230010.3.0.3.6.7"
DCMTK_IMPL_VERSION = "OFFIS_DCMTK_367"

# Contract §4.3 (entries 1-38, DCMTK 3.6.7) and §12 (entries 39-45, added by 3.6.8).
TRANSFER_SYNTAXES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.1.2", "LittleEndianImplicit"),
    ("1.2.840.10008.1.2.1", "LittleEndianExplicit"),
    ("1.2.840.10008.1.2.2", "BigEndianExplicit"),
    ("1.2.840.10008.1.2.4.50", "JPEGBaseline"),
    ("1.2.840.10008.1.2.4.51", "JPEGExtended:Process2+4"),
    ("1.2.840.10008.1.2.4.52", "JPEGExtended:Process3+5"),
    ("1.2.840.10008.1.2.4.53", "JPEGSpectralSelection:Non-hierarchical:Process6+8"),
    ("1.2.840.10008.1.2.4.54", "JPEGSpectralSelection:Non-hierarchical:Process7+9"),
    ("1.2.840.10008.1.2.4.55", "JPEGFullProgression:Non-hierarchical:Process10+12"),
    ("1.2.840.10008.1.2.4.56", "JPEGFullProgression:Non-hierarchical:Process11+13"),
    ("1.2.840.10008.1.2.4.57", "JPEGLossless:Non-hierarchical:Process14"),
    ("1.2.840.10008.1.2.4.58", "JPEGLossless:Non-hierarchical:Process15"),
    ("1.2.840.10008.1.2.4.59", "JPEGExtended:Hierarchical:Process16+18"),
    ("1.2.840.10008.1.2.4.60", "JPEGExtended:Hierarchical:Process17+19"),
    ("1.2.840.10008.1.2.4.61", "JPEGSpectralSelection:Hierarchical:Process20+22"),
    ("1.2.840.10008.1.2.4.62", "JPEGSpectralSelection:Hierarchical:Process21+23"),
    ("1.2.840.10008.1.2.4.63", "JPEGFullProgression:Hierarchical:Process24+26"),
    ("1.2.840.10008.1.2.4.64", "JPEGFullProgression:Hierarchical:Process25+27"),
    ("1.2.840.10008.1.2.4.65", "JPEGLossless:Hierarchical:Process28"),
    ("1.2.840.10008.1.2.4.66", "JPEGLossless:Hierarchical:Process29"),
    ("1.2.840.10008.1.2.4.70", "JPEGLossless:Non-hierarchical-1stOrderPrediction"),
    ("1.2.840.10008.1.2.5", "RLELossless"),
    ("1.2.840.10008.1.2.1.99", "DeflatedLittleEndianExplicit"),
    ("1.2.840.10008.1.2.4.80", "JPEGLSLossless"),
    ("1.2.840.10008.1.2.4.81", "JPEGLSLossy"),
    ("1.2.840.10008.1.2.4.90", "JPEG2000LosslessOnly"),
    ("1.2.840.10008.1.2.4.91", "JPEG2000"),
    ("1.2.840.10008.1.2.4.92", "JPEG2000MulticomponentLosslessOnly"),
    ("1.2.840.10008.1.2.4.93", "JPEG2000Multicomponent"),
    ("1.2.840.10008.1.2.4.100", "MPEG2MainProfile@MainLevel"),
    ("1.2.840.10008.1.2.4.101", "MPEG2MainProfile@HighLevel"),
    ("1.2.840.10008.1.2.4.102", "MPEG4HighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.103", "MPEG4BDcompatibleHighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.104", "MPEG4HighProfile/Level4.2For2DVideo"),
    ("1.2.840.10008.1.2.4.105", "MPEG4HighProfile/Level4.2For3DVideo"),
    ("1.2.840.10008.1.2.4.106", "MPEG4StereoHighProfile/Level4.2"),
    ("1.2.840.10008.1.2.4.107", "HEVCMainProfile/Level5.1"),
    ("1.2.840.10008.1.2.4.108", "HEVCMain10Profile/Level5.1"),
    ("1.2.840.10008.1.2.4.100.1", "FragmentableMPEG2MainProfile@MainLevel"),
    ("1.2.840.10008.1.2.4.101.1", "FragmentableMPEG2MainProfile@HighLevel"),
    ("1.2.840.10008.1.2.4.102.1", "FragmentableMPEG4HighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.103.1", "FragmentableMPEG4BDcompatibleHighProfile/Level4.1"),
    ("1.2.840.10008.1.2.4.104.1", "FragmentableMPEG4HighProfile/Level4.2For2DVideo"),
    ("1.2.840.10008.1.2.4.105.1", "FragmentableMPEG4HighProfile/Level4.2For3DVideo"),
    ("1.2.840.10008.1.2.4.106.1", "FragmentableMPEG4StereoHighProfile/Level4.2"),
)

# --- case model ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """What one run must show. `None` / empty means "not checked"."""

    exit: int
    stderr: tuple[str, ...] | None = None  # the whole normalised stderr (debug view at -d)
    has: tuple[str, ...] = ()  # an ordered subsequence of those lines
    lacks: tuple[str, ...] = ()  # lines that must not appear (prefix match)
    stdout: tuple[str, ...] = ()
    pdu_types: tuple[int, ...] | None = None  # types of the PDUs the SCP received, in order
    last_pdu: bytes | None = None  # raw bytes of the last PDU the SCP received
    echo_ids: tuple[int, ...] | None = None  # Message IDs of the C-ECHO-RQs received
    echo_contexts: tuple[int, ...] | None = None  # their presentation context IDs
    connections: int | None = None  # connections the SCP accepted
    min_seconds: float | None = None
    max_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class RQParams:
    """The A-ASSOCIATE-RQ the contract predicts (§4.2-§4.4)."""

    calling: bytes = b"ECHOSCU"
    called: bytes = b"ANY-SCP"
    pts: int = 1
    ppc: int = 1
    max_pdu: int = 16384

    def build(self) -> bytes:
        syntaxes = tuple(uid for uid, _ in TRANSFER_SYNTAXES[: self.pts])
        contexts = [
            PresentationContext(2 * i + 1, VERIFICATION_SOP_CLASS, syntaxes)
            for i in range(self.ppc)
        ]
        return a_associate_rq(
            self.called,
            self.calling,
            contexts,
            max_length=self.max_pdu,
            impl_uid=DCMTK_IMPL_UID,
            impl_version=DCMTK_IMPL_VERSION,
        )


Server = Literal["fake", "refused", "backlog", "none"]


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    args: tuple[str, ...]  # placeholders: {port}, {dir}
    expect: Expect
    steps: tuple[Step, ...] = ()
    server: Server = "fake"
    scp_host: str = "127.0.0.1"
    files: Mapping[str, str] = field(default_factory=dict)  # name -> content, written to {dir}
    rq: RQParams | None = None  # None: derived from args
    unshare: bool = False  # run inside `unshare -n` (loopback-only network namespace)
    dcmtk: Expect | None = None  # known difference: what DCMTK 3.6.7 does instead
    difference: str = ""
    note: str = ""  # where DCMTK 3.6.7 goes beyond (or against) the contract text
    time_limit: float = 12.0  # hard bound of the fake SCP
    env: Mapping[str, str] = field(default_factory=dict)  # added to the child's environment
    scp_closes_on_abort: bool = True  # False: the SCP keeps the socket open after an A-ABORT

    @property
    def level(self) -> str:
        """The effective log level (§2.1: the rightmost of -q/-v/-d wins; values are skipped)."""
        level, i = "warn", 0
        while i < len(self.args):
            arg = self.args[i]
            if arg in ("-ll", "--log-level") and i + 1 < len(self.args):
                level = {"trace": "debug"}.get(self.args[i + 1], self.args[i + 1])
            level = LEVEL_OPTIONS.get(arg, level)
            i += 1 + OPTION_VALUES.get(arg, 0)
        return level

    def rq_params(self) -> RQParams:
        if self.rq is not None:
            return self.rq
        return derive_rq(self.args)


# Options that take values (§3), so that `-aet -v` is not mistaken for verbose mode.
OPTION_VALUES = dict.fromkeys(
    (
        *("-aet", "--aetitle", "-aec", "--call", "-pts", "--propose-ts", "-ppc", "--propose-pc"),
        *("-pdu", "--max-pdu", "-to", "--timeout", "-ts", "--socket-timeout", "-ta"),
        *("--acse-timeout", "-td", "--dimse-timeout", "--repeat", "-ll", "--log-level", "-lc"),
        "--log-config",
    ),
    1,
)
LEVEL_OPTIONS = {
    "-q": "fatal",
    "--quiet": "fatal",
    "-v": "info",
    "--verbose": "info",
    "-d": "debug",
    "--debug": "debug",
}


def _lu(text: str) -> int:
    """C `%lu` as DCMTK reads unsigned values: leading digits, trailing junk ignored (§2.4)."""
    match = re.match(r"\s*\+?(\d+)", text)
    return int(match.group(1)) if match else 0


def derive_rq(args: Sequence[str]) -> RQParams:
    calling, called, pts, ppc, max_pdu = b"ECHOSCU", b"ANY-SCP", 1, 1, 16384
    for i, arg in enumerate(args[:-1]):
        value = args[i + 1]
        if arg in ("-aet", "--aetitle"):
            calling = value.encode("latin-1")[:16]
        elif arg in ("-aec", "--call"):
            called = value.encode("latin-1")[:16]
        elif arg in ("-pts", "--propose-ts"):
            pts = _lu(value)
        elif arg in ("-ppc", "--propose-pc"):
            ppc = _lu(value)
        elif arg in ("-pdu", "--max-pdu"):
            max_pdu = _lu(value) & ~1  # an odd value is reduced by one (§3)
    return RQParams(calling, called, pts, ppc, max_pdu)


# --- building blocks ----------------------------------------------------------------------------

PEER = ("127.0.0.1", "{port}")
OK_STEPS: tuple[Step, ...] = (ReadPDU(), Accept(), Serve())

REQ = "I: Requesting Association"
REL = "I: Releasing Association"
ABORTING = "I: Aborting Association"
SUCCESS = "I: Received Echo Response (Success)"
PEER_ABORTED = "0006:0317 Peer aborted Association (or never connected)"
RQ, AC, P_DATA, RL_RQ, ABRT = 0x01, 0x02, 0x04, 0x05, 0x07


def accepted(pdv_size: int = 16372) -> str:
    return f"I: Association Accepted (Max Send PDV: {pdv_size})"


def sending(n: int) -> str:
    return f"I: Sending Echo Request (MsgID {n})"


def echo_lines(n: int = 1, received: str = SUCCESS) -> tuple[str, ...]:
    out: tuple[str, ...] = ()
    for i in range(1, n + 1):
        out += (sending(i), received)
    return out


VERBOSE_OK = (REQ, accepted(), *echo_lines(1), REL)


def cli_error(message: str) -> Expect:
    """The 4-line command-line error block (§2.3); no connection is made."""
    return Expect(
        exit=1,
        stderr=("<rcsid>", "", "echoscu: DICOM verification (C-ECHO) SCU", f"error: {message}"),
        connections=0,
    )


def dimse_error(*lines: str) -> tuple[str, ...]:
    """§6.3: the lines follow `Echo Failed: `, then again `Echo SCU Failed: `."""
    first, *rest = lines
    return (
        f"E: Echo Failed: {first}",
        *(f"E: {line}" for line in rest),
        f"E: Echo SCU Failed: {first}",
        *(f"E: {line}" for line in rest),
    )


def rq_dump(*lines: str) -> tuple[str, ...]:
    return tuple(f"RQ|{line}" for line in lines)


def ac_dump(*lines: str) -> tuple[str, ...]:
    return tuple(f"AC|{line}" for line in lines)


# --- the table ----------------------------------------------------------------------------------

CASES: list[Case] = []


def case(
    case_id: str,
    *args: str,
    expect: Expect,
    steps: tuple[Step, ...] = OK_STEPS,
    params: tuple[str, ...] = PEER,
    server: Server = "fake",
    scp_host: str = "127.0.0.1",
    files: Mapping[str, str] | None = None,
    rq: RQParams | None = None,
    unshare: bool = False,
    dcmtk: Expect | None = None,
    difference: str = "",
    note: str = "",
    env: Mapping[str, str] | None = None,
    scp_closes_on_abort: bool = True,
) -> None:
    CASES.append(
        Case(
            case_id,
            (*args, *params),
            expect,
            steps,
            server,
            scp_host,
            dict(files or {}),
            rq,
            unshare,
            dcmtk,
            difference,
            note,
            env=dict(env or {}),
            scp_closes_on_abort=scp_closes_on_abort,
        )
    )


# §10.1: success at every level, --repeat, --abort, --arguments, level ordering.
case("ok-default", expect=Expect(0, stderr=(), pdu_types=(RQ, P_DATA, RL_RQ), echo_ids=(1,)))
case("ok-quiet", "-q", expect=Expect(0, stderr=(), pdu_types=(RQ, P_DATA, RL_RQ)))
case("ok-verbose", "-v", expect=Expect(0, stderr=VERBOSE_OK, echo_contexts=(1,)))
case(
    "ok-debug",
    "-d",
    expect=Expect(
        0,
        has=(
            "D|<rcsid>",
            *rq_dump(
                "====================== BEGIN A-ASSOCIATE-RQ =====================",
                "Our Implementation Class UID: <ours>",
                "Our Implementation Version Name: <ours>",
                "Application Context Name: 1.2.840.10008.3.1.1.1",
                "Calling Application Name: ECHOSCU",
                "Called Application Name: ANY-SCP",
                "Our Max PDU Receive Size: 16384",
                "Their Max PDU Receive Size: 0",
                "Context ID: 1 (Proposed)",
                "Abstract Syntax: =VerificationSOPClass",
                "Proposed SCP/SCU Role: Default",
                "=LittleEndianImplicit",
                "======================= END A-ASSOCIATE-RQ ======================",
            ),
            REQ,
            "D|setting network send timeout to 60 seconds",
            "D|setting network receive timeout to 60 seconds",
            "D|PDU Type: Associate Accept, PDU Length: 182 + 6 bytes PDU header",
            "HEX|188 bytes",
            *ac_dump(
                "Their Implementation Class UID: 1.2.826.0.1.3680043.9.7433.99.1",
                "Their Implementation Version Name: FAKESCP_1",
                "Their Max PDU Receive Size: 16384",
                "Context ID: 1 (Accepted)",
                "Accepted SCP/SCU Role: Default",
                "Accepted Transfer Syntax: =LittleEndianImplicit",
            ),
            *VERBOSE_OK[1:],
        ),
    ),
)
case(
    "ok-repeat-3-verbose",
    "--repeat",
    "3",
    "-v",
    expect=Expect(0, stderr=(REQ, accepted(), *echo_lines(3), REL), echo_ids=(1, 2, 3)),
)
case(
    "ok-abort-verbose",
    "--abort",
    "-v",
    expect=Expect(
        0,
        stderr=(REQ, accepted(), *echo_lines(1), ABORTING),
        pdu_types=(RQ, P_DATA, ABRT),
        last_pdu=a_abort(0, 0),
        max_seconds=5.0,
    ),
)
case(
    "ok-repeat-2-abort-quiet",
    "--repeat",
    "2",
    "--abort",
    "-q",
    expect=Expect(0, stderr=(), pdu_types=(RQ, P_DATA, P_DATA, ABRT), echo_ids=(1, 2)),
)
case(
    "ok-arguments-quiet",
    "--arguments",
    "-q",
    expect=Expect(
        0,
        stderr=(
            "I: calling '<prog>' with 4 arguments: '--arguments' '--quiet' '127.0.0.1' '<port>' ",
            "I: ",
        ),
    ),
)
case(
    "ok-arguments-short-to-long",
    "-aet",
    "X",
    "-v",
    "--arguments",
    "-pts",
    "2",
    expect=Expect(
        0,
        stderr=(
            "I: calling '<prog>' with 8 arguments: '--aetitle' 'X' '--verbose' "
            "'--arguments' '--propose-ts' '2' '127.0.0.1' '<port>' ",
            "I: ",
            *VERBOSE_OK,
        ),
    ),
)
case("log-q-then-v", "-q", "-v", expect=Expect(0, stderr=VERBOSE_OK))
case("log-v-then-q", "-v", "-q", expect=Expect(0, stderr=()))
case("log-d-then-v", "-d", "-v", expect=Expect(0, stderr=VERBOSE_OK))
case("log-level-info", "-ll", "info", expect=Expect(0, stderr=VERBOSE_OK))
case(
    "ok-localhost-verbose",
    "-v",
    params=("localhost", "{port}"),
    expect=Expect(0, stderr=VERBOSE_OK),
)
case(
    "ok-port-trailing-junk",
    "-v",
    params=("127.0.0.1", "{port}abc"),
    expect=Expect(0, stderr=VERBOSE_OK),
)
case("ok-ta-hex", "-ta", "0x2", "-v", expect=Expect(0, stderr=VERBOSE_OK))
case("ok-to-1", "-to", "1", "-v", expect=Expect(0, stderr=VERBOSE_OK))
case(
    "ok-ts-0-debug",
    "-ts",
    "0",
    "-d",
    expect=Expect(
        0,
        has=(
            REQ,
            "D|setting network send timeout to 0 (infinite)",
            "D|setting network receive timeout to 0 (infinite)",
            accepted(),
        ),
    ),
)
case(
    "ok-ts-minus-1-debug",
    "-ts",
    "-1",
    "-d",
    expect=Expect(0, has=(REQ, accepted()), lacks=("D|setting network",)),
)

# §3, §4.2-§4.4: what goes into the A-ASSOCIATE-RQ.
case(
    "rq-ae-16-truncation",
    "-aet",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "-aec",
    "0123456789abcdefXYZ",
    "-v",
    expect=Expect(0, stderr=VERBOSE_OK),
)
case("rq-ae-spaces", "-aet", "   ", "-aec", " A B ", expect=Expect(0, stderr=()))
case("rq-aet-rightmost", "-aet", "FIRST", "-aet", "SECOND", expect=Expect(0, stderr=()))
case("rq-aet-swallows-option", "-aet", "-v", expect=Expect(0, stderr=()))
case(
    "rq-aet-empty",
    "-aet",
    "",
    steps=(ReadPDU(), Stall()),
    expect=Expect(
        1,
        stderr=(
            "E: Illegal service parameter: Calling AP Title",
            "F: Association Request Failed: 0006:030c Illegal service parameter: Calling AP Title",
        ),
        connections=1,
        pdu_types=(),
    ),
)
case(
    "rq-aec-empty-verbose",
    "-aec",
    "",
    "-v",
    steps=(ReadPDU(), Stall()),
    expect=Expect(
        1,
        stderr=(
            REQ,
            "E: Illegal service parameter: Called AP Title",
            "F: Association Request Failed: 0006:030c Illegal service parameter: Called AP Title",
        ),
        connections=1,
        pdu_types=(),
    ),
)
case("rq-pts-1", "-pts", "1", expect=Expect(0, stderr=()))
case("rq-pts-2-trailing-junk", "-pts", "2x", expect=Expect(0, stderr=()))
case("rq-pts-38", "-pts", "38", expect=Expect(0, stderr=()))
case(
    "rq-pts-3-ppc-3-debug",
    "-pts",
    "3",
    "-ppc",
    "3",
    "-d",
    expect=Expect(
        0,
        has=(
            *rq_dump(
                "Context ID: 1 (Proposed)",
                "Proposed Transfer Syntax(es):",
                "=LittleEndianImplicit",
                "=LittleEndianExplicit",
                "=BigEndianExplicit",
                "Context ID: 3 (Proposed)",
                "Context ID: 5 (Proposed)",
                "=BigEndianExplicit",
            ),
            *ac_dump(
                "Context ID: 1 (Accepted)", "Context ID: 3 (Accepted)", "Context ID: 5 (Accepted)"
            ),
            accepted(),
        ),
    ),
)
case("rq-ppc-3", "-ppc", "3", expect=Expect(0, stderr=()))
case(
    "rq-ppc-128-verbose",
    "-ppc",
    "128",
    "-v",
    expect=Expect(0, stderr=VERBOSE_OK, echo_contexts=(1,)),
)
case("rq-pts-38-ppc-128", "-pts", "38", "-ppc", "128", expect=Expect(0, stderr=()))
case(
    "rq-pdu-16385-odd",
    "-pdu",
    "16385",
    expect=Expect(0, stderr=("W: ASSOC: PDV receive length 16385 is odd (using 16384)",)),
)
case(
    "rq-pdu-4097-odd-verbose",
    "-pdu",
    "4097",
    "-v",
    expect=Expect(0, stderr=("W: ASSOC: PDV receive length 4097 is odd (using 4096)", *VERBOSE_OK)),
)
case("rq-pdu-4096", "-pdu", "4096", expect=Expect(0, stderr=()))
case("rq-pdu-131072", "-pdu", "131072", expect=Expect(0, stderr=()))

# §4.6, §8: connection failures.
case(
    "net-refused",
    server="refused",
    expect=Expect(
        1,
        stderr=(
            "F: Association Request Failed: 0006:031c TCP Initialization Error: Connection refused",
        ),
    ),
)
case(
    "net-refused-verbose",
    "-v",
    server="refused",
    expect=Expect(
        1,
        stderr=(
            REQ,
            "F: Association Request Failed: 0006:031c TCP Initialization Error: Connection refused",
        ),
    ),
)
case(
    "net-refused-quiet-with-to",
    "-q",
    "-to",
    "5",
    server="refused",
    expect=Expect(
        1,
        stderr=(
            "F: Association Request Failed: 0006:031c TCP Initialization Error: Connection refused",
        ),
        max_seconds=3.0,
    ),
)
case(
    "net-connect-timeout",
    "-to",
    "1",
    "-v",
    server="backlog",
    expect=Expect(
        1,
        stderr=(
            REQ,
            "F: Association Request Failed: 0006:031c TCP Initialization "
            "Error: Operation now in progress (Timeout)",
        ),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "net-unknown-host-verbose",
    "-v",
    server="none",
    unshare=True,
    params=("echoscu-golden.invalid", "104"),
    expect=Expect(
        1,
        stderr=(
            REQ,
            "F: Association Request Failed: 0006:0320 Attempt to connect to "
            "unknown host: echoscu-golden.invalid",
        ),
    ),
)
case(
    "net-ipv6-literal",
    "-v",
    params=("::1", "{port}"),
    scp_host="::1",
    expect=Expect(0, stderr=VERBOSE_OK),
    dcmtk=Expect(
        1,
        stderr=(
            REQ,
            "F: Association Request Failed: 0006:030c Illegal service parameter: ::1:<port>",
        ),
        connections=0,
    ),
    difference="IPv6 literals work as the peer in ours (DCMTK 3.6.9 behaviour, contract §0 (2))",
)

# §5: A-ASSOCIATE-RJ, every valid result/source/reason and the invalid ones.
_RESULT = {1: "Rejected Permanent", 2: "Rejected Transient"}
_SOURCE = {
    1: "Service User",
    2: "Service Provider (ACSE Related)",
    3: "Service Provider (Presentation Related)",
}
_REASON = {
    (1, 1): "No Reason",
    (1, 2): "App Context Name Not Supported",
    (1, 3): "Calling AE Title Not Recognized",
    (1, 7): "Called AE Title Not Recognized",
    (2, 1): "No Reason",
    (2, 2): "Protocol Version Not Supported",
    (3, 1): "Temporary Congestion",
    (3, 2): "Local Limit Exceeded",
}


def rj_lines(result: int, source: int, reason: int, quiet: bool = False) -> tuple[str, ...]:
    errors: list[str] = []
    if result not in _RESULT:
        errors.append(
            f"E: Received invalid A-ASSOCIATE-RJ reject result 0x{result:04x}, using default."
        )
    if source not in _SOURCE:
        errors.append(
            f"E: Received invalid A-ASSOCIATE-RJ reject source 0x{source:04x}, using default."
        )
    if (source, reason) not in _REASON:
        errors.append(
            "E: Received invalid A-ASSOCIATE-RJ reject reason "
            f"0x{source:02x}{reason:02x}, using default."
        )
    shown = (
        "F: Association Rejected:",
        f"F: Result: {_RESULT.get(result, _RESULT[1])}, Source: {_SOURCE.get(source, _SOURCE[1])}",
        f"F: Reason: {_REASON.get((source, reason), 'No Reason')}",
    )
    return shown if quiet else (*errors, *shown)


for _r, _s, _why in [
    (1, 1, 1),
    (2, 1, 2),
    (1, 1, 3),
    (2, 1, 7),
    (1, 2, 1),
    (2, 2, 2),
    (2, 3, 1),
    (1, 3, 2),
    (3, 1, 1),
    (0, 1, 1),
    (1, 0, 1),
    (1, 4, 1),
    (1, 1, 4),
    (1, 1, 0),
    (1, 2, 3),
    (1, 3, 0),
]:
    case(
        f"rj-{_r}-{_s}-{_why}",
        steps=(ReadPDU(), Reject(_r, _s, _why), Stall()),
        expect=Expect(1, stderr=rj_lines(_r, _s, _why), pdu_types=(RQ,)),
    )
case(
    "rj-1-1-7-verbose",
    "-v",
    steps=(ReadPDU(), Reject(1, 1, 7), Stall()),
    expect=Expect(1, stderr=(REQ, *rj_lines(1, 1, 7))),
)
case(
    "rj-invalid-quiet",
    "-q",
    steps=(ReadPDU(), Reject(3, 4, 9), Stall()),
    expect=Expect(1, stderr=rj_lines(3, 4, 9, quiet=True)),
)

# §4.5: presentation-context results and the peer's max-length.
case(
    "ac-no-pc-labels-debug",
    "-ppc",
    "4",
    "-d",
    steps=(ReadPDU(), Accept(results={1: 1, 3: 2, 5: 3, 7: 4}), Stall()),
    expect=Expect(
        1,
        has=(
            *ac_dump(
                "Context ID: 1 (User Rejection)",
                "Context ID: 3 (No Reason)",
                "Context ID: 5 (Abstract Syntax Not Supported)",
                "Context ID: 7 (Transfer Syntaxes Not Supported)",
            ),
            "F: No Acceptable Presentation Contexts",
        ),
        lacks=("I: Association Accepted",),
        pdu_types=(RQ,),
    ),
)
case(
    "ac-no-pc-default",
    steps=(ReadPDU(), Accept(default_result=3), Stall()),
    expect=Expect(1, stderr=("F: No Acceptable Presentation Contexts",), pdu_types=(RQ,)),
)
case(
    "ac-no-pc-items-verbose",
    "-v",
    steps=(ReadPDU(), Accept(include_contexts=False), Stall()),
    expect=Expect(1, stderr=(REQ, "F: No Acceptable Presentation Contexts"), pdu_types=(RQ,)),
)
case(
    "ac-unproposed-id-verbose",
    "-v",
    steps=(
        ReadPDU(),
        Accept(include_contexts=False, extra_contexts=((3, 0, IMPLICIT_VR_LE),)),
        Stall(),
    ),
    expect=Expect(1, stderr=(REQ, "F: No Acceptable Presentation Contexts"), pdu_types=(RQ,)),
    dcmtk=Expect(
        70,
        stderr=(
            REQ,
            accepted(),
            sending(1),
            *dimse_error("0006:0208 DIMSE: No Presentation Context for: 1.2.840.10008.1.1"),
            ABORTING,
        ),
        pdu_types=(RQ, ABRT),
        last_pdu=a_abort(0, 0),
    ),
    difference="a context ID that was never proposed is ignored (robustness.md §2.6), so the "
    "AC accepts nothing usable: ours reports no acceptable context at once; 3.6.7 counts the "
    "unproposed context 3, announces the association and fails the echo with 0006:0208",
)
case(
    "ac-first-pc-rejected-verbose",
    "-ppc",
    "2",
    "-v",
    steps=(ReadPDU(), Accept(results={1: 3}), Serve()),
    expect=Expect(0, stderr=VERBOSE_OK, echo_contexts=(3,)),
)
case(
    "ac-last-pc-only-verbose",
    "-ppc",
    "3",
    "-v",
    steps=(ReadPDU(), Accept(results={1: 3, 3: 4}), Serve()),
    expect=Expect(0, stderr=VERBOSE_OK, echo_contexts=(5,)),
)
case(
    "ac-ts-last-debug",
    "-pts",
    "3",
    "-d",
    steps=(ReadPDU(), Accept(last_transfer_syntax=True), Serve()),
    expect=Expect(0, has=(*ac_dump("Accepted Transfer Syntax: =BigEndianExplicit"), SUCCESS)),
)
case(
    "ac-ts-unproposed-debug",
    "-d",
    steps=(ReadPDU(), Accept(transfer_syntax="1.2.840.10008.1.2.4.50"), Serve()),
    expect=Expect(0, has=(*ac_dump("Accepted Transfer Syntax: =JPEGBaseline"), SUCCESS)),
)
case(
    "ac-max-0-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=0), Serve()),
    expect=Expect(0, stderr=(REQ, accepted(131060), *echo_lines(1), REL)),
)
case(
    "ac-max-1024-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=1024), Serve()),
    expect=Expect(0, stderr=(REQ, accepted(1012), *echo_lines(1), REL)),
)
case(
    "ac-max-16385-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=16385), Serve()),
    expect=Expect(
        0,
        stderr=(
            REQ,
            "W: ASSOC: PDV send length 16385 is odd (using 16384)",
            accepted(16372),
            *echo_lines(1),
            REL,
        ),
    ),
)
case(
    "ac-max-20-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=20), Serve()),
    expect=Expect(
        0,
        stderr=(
            REQ,
            "W: ASSOC: PDV send length too small, using DUL to split larger PDVs.",
            accepted(4084),
            *echo_lines(1),
            REL,
        ),
        pdu_types=(RQ, *(P_DATA,) * 9, RL_RQ),
        echo_ids=(1,),
    ),
)
case(
    "ac-max-10-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=10), Serve()),
    expect=Expect(
        70,
        stderr=(
            REQ,
            "W: ASSOC: PDV send length -2 (using default)",
            accepted(4084),
            sending(1),
            *dimse_error(
                "0006:020e DIMSE Failed to send message",
                "0006:0308 DUL Cannot send P-DATA PDU because receiver's "
                "max PDU size of 10 is illegal (must be > 12)",
            ),
            ABORTING,
        ),
        pdu_types=(RQ, ABRT),
        last_pdu=a_abort(0, 0),
    ),
)
case(
    "ac-max-missing-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=None), Serve()),
    expect=Expect(0, stderr=(REQ, accepted(131060), *echo_lines(1), REL)),
)
case(
    "ac-no-user-info-verbose",
    "-v",
    steps=(ReadPDU(), Accept(user_info=False), Serve()),
    expect=Expect(0, stderr=(REQ, accepted(131060), *echo_lines(1), REL)),
)
case(
    "ac-max-1mib-verbose",
    "-v",
    steps=(ReadPDU(), Accept(max_length=1 << 20), Serve()),
    expect=Expect(0, stderr=(REQ, accepted(131060), *echo_lines(1), REL)),
)
case(
    "ac-large-dump-debug",
    "-ppc",
    "128",
    "-d",
    expect=Expect(
        0,
        has=(
            "D|Only dumping 512 bytes.",  # before the dump, not after it
            "HEX|512 bytes",
            *ac_dump("Context ID: 255 (Accepted)"),
            SUCCESS,
        ),
    ),
    note="beyond the contract (§14: AC bodies over 512 bytes were not run): 3.6.7 logs "
    "'Only dumping 512 bytes.' before the dump and one empty 'D: ' line after it",
)

# §4.5, §4.6, §8: the answer to the A-ASSOCIATE-RQ goes wrong.
_ASSOC_FAIL = "F: Association Request Failed: "
case(
    "assoc-abort-before-ac",
    steps=(ReadPDU(), Abort(2, 0)),
    expect=Expect(1, stderr=(_ASSOC_FAIL + PEER_ABORTED,), pdu_types=(RQ,)),
)
case(
    "assoc-abort-1-1-before-ac-verbose",
    "-v",
    steps=(ReadPDU(), Abort(1, 1), Stall()),
    expect=Expect(1, stderr=(REQ, _ASSOC_FAIL + PEER_ABORTED)),
)
case(
    "assoc-close-after-rq",
    steps=(ReadPDU(), Close()),
    expect=Expect(1, stderr=(_ASSOC_FAIL + PEER_ABORTED,), pdu_types=(RQ,)),
)
case(
    "assoc-close-before-rq-verbose",
    "-v",
    steps=(Close(),),
    expect=Expect(1, stderr=(REQ, _ASSOC_FAIL + PEER_ABORTED)),
)
case(
    "assoc-reset-after-rq-verbose",
    "-v",
    steps=(ReadPDU(), Reset()),
    expect=Expect(1, stderr=(REQ, _ASSOC_FAIL + PEER_ABORTED)),
    note="RST is not in the contract's table; 3.6.7 reports it like a FIN (0006:0317)",
)
case(
    "assoc-unknown-pdu-verbose",
    "-v",
    steps=(ReadPDU(), Send(pdu(0x09, bytes(4))), Stall()),
    expect=Expect(
        1,
        stderr=(REQ, _ASSOC_FAIL + "0006:0321 Unrecognized PDU type:  9"),
        pdu_types=(RQ, ABRT),
        last_pdu=a_abort(2, 1),
    ),
    dcmtk=Expect(
        1, stderr=(REQ, _ASSOC_FAIL + "0006:0321 Unrecognized PDU type:  9"), pdu_types=(RQ,)
    ),
    difference="an unrecognized PDU is answered with A-ABORT (service provider, reason 1 "
    "unrecognized-PDU) as PS3.8 AA-8 and robustness.md #3 require; 3.6.7 resets the connection",
)
case(
    "assoc-pdata-instead-of-ac",
    steps=(ReadPDU(), Send(p_data_tf(pdv(1, 3, c_echo_rsp(1)))), Stall()),
    expect=Expect(
        1,
        stderr=("F: No Acceptable Presentation Contexts",),
        pdu_types=(RQ, ABRT),
        last_pdu=a_abort(2, 2),
    ),
)
case(
    "assoc-release-rq-instead-of-ac-verbose",
    "-v",
    steps=(ReadPDU(), Send(a_release_rq()), Stall()),
    expect=Expect(
        1,
        stderr=(REQ, "F: No Acceptable Presentation Contexts"),
        pdu_types=(RQ, ABRT),
        last_pdu=a_abort(2, 2),
    ),
)
case(
    "assoc-ta-1-silence-verbose",
    "-ta",
    "1",
    "-v",
    steps=(ReadPDU(), Stall()),
    expect=Expect(
        1,
        stderr=(REQ, _ASSOC_FAIL + "0006:031a DUL network read timeout"),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "assoc-ac-body-stall-ts-1-verbose",
    "-ts",
    "1",
    "-v",
    steps=(ReadPDU(), Accept(trickle=Trickle(head=20, head_pause=6.0))),
    expect=Expect(
        1,
        stderr=(REQ, _ASSOC_FAIL + "0006:0310 DUL network closed"),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "assoc-ac-header-stall-ts-1-verbose",
    "-ts",
    "1",
    "-v",
    steps=(ReadPDU(), Accept(trickle=Trickle(head=6, head_pause=2.0))),
    expect=Expect(
        1,
        stderr=(REQ, _ASSOC_FAIL + "0006:0310 DUL network closed"),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
_AC_TIMEOUT_OURS = Expect(
    1,
    stderr=(REQ, _ASSOC_FAIL + "0006:031a DUL network read timeout"),
    min_seconds=0.9,
    max_seconds=3.0,
)
case(
    "assoc-ac-trickle-ta-1-verbose",
    "-ta",
    "1",
    "-v",
    steps=(ReadPDU(), Accept(trickle=Trickle(head=6, chunk=8, interval=0.11)), Serve()),
    expect=_AC_TIMEOUT_OURS,
    dcmtk=Expect(0, stderr=VERBOSE_OK, min_seconds=2.0),
    difference="-ta bounds the whole A-ASSOCIATE-AC in ours; DCMTK only times its header "
    "(contract §0 (1), §8 case to-acse-trickle-ta1)",
)
case(
    "assoc-ac-header-stall-ta-1-verbose",
    "-ta",
    "1",
    "-v",
    steps=(ReadPDU(), Accept(trickle=Trickle(head=6, head_pause=2.0)), Serve()),
    expect=_AC_TIMEOUT_OURS,
    dcmtk=Expect(0, stderr=VERBOSE_OK, min_seconds=1.9),
    difference="-ta bounds the whole A-ASSOCIATE-AC in ours; DCMTK only times its header "
    "(contract §0 (1), §8 case to-acse-header-stall-ta1)",
)

# §6: the C-ECHO exchange.
_ECHO = (ReadPDU(), Accept(), ReadEcho())
_V_SENT = (REQ, accepted(), sending(1))
_PEER_ABORT_LINES = (f"E: Echo Failed: {PEER_ABORTED}", "I: Peer Aborted Association")
case(
    "dimse-abort-during-echo-verbose",
    "-v",
    steps=(*_ECHO, Abort(2, 0)),
    expect=Expect(0, stderr=(*_V_SENT, *_PEER_ABORT_LINES), pdu_types=(RQ, P_DATA)),
)
case(
    "dimse-abort-during-echo-quiet",
    "-q",
    steps=(*_ECHO, Abort(0, 0)),
    expect=Expect(0, stderr=(), pdu_types=(RQ, P_DATA)),
)
case(
    "dimse-close-during-echo-verbose",
    "-v",
    steps=(*_ECHO, Close()),
    expect=Expect(0, stderr=(*_V_SENT, *_PEER_ABORT_LINES), pdu_types=(RQ, P_DATA)),
)
case(
    "dimse-reset-during-echo-verbose",
    "-v",
    steps=(*_ECHO, Reset()),
    expect=Expect(0, stderr=(*_V_SENT, *_PEER_ABORT_LINES), pdu_types=(RQ, P_DATA)),
)
case(
    "dimse-release-rq-instead-verbose",
    "-v",
    steps=(*_ECHO, Send(a_release_rq()), Stall()),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            "E: Echo Failed: 0006:0319 DUL Peer Requested Release",
            "F: Protocol Error: Peer requested release (Aborting)",
            ABORTING,
        ),
        pdu_types=(RQ, P_DATA, ABRT),
        last_pdu=a_abort(0, 0),
    ),
)
case(
    "dimse-release-rq-instead-quiet",
    "-q",
    steps=(*_ECHO, Send(a_release_rq()), Stall()),
    expect=Expect(70, stderr=("F: Protocol Error: Peer requested release (Aborting)",)),
)
_TD_TIMEOUT = "0006:0207 DIMSE No data available (timeout in non-blocking mode)"
case(
    "dimse-td-1-timeout-verbose",
    "-td",
    "1",
    "-v",
    steps=(*_ECHO, Stall()),
    expect=Expect(
        70,
        stderr=(*_V_SENT, *dimse_error(_TD_TIMEOUT), ABORTING),
        pdu_types=(RQ, P_DATA, ABRT),
        last_pdu=a_abort(0, 0),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "dimse-ts-1-no-td-verbose",
    "-ts",
    "1",
    "-v",
    steps=(*_ECHO, Stall()),
    expect=Expect(
        0,
        stderr=(*_V_SENT, *_PEER_ABORT_LINES),
        pdu_types=(RQ, P_DATA),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "dimse-wrong-msgid-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(message_id=2))),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error("0006:0211 DIMSE: Unexpected Response MsgId: 2 (expected: 1)"),
            ABORTING,
        ),
        last_pdu=a_abort(0, 0),
    ),
)
case(
    "dimse-wrong-command-field-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(command_field=0x8001))),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error("0006:0211 DIMSE: Unexpected Response Command Field: 0x8001"),
            ABORTING,
        ),
    ),
)
case(
    "dimse-wrong-msgid-repeat-3-quiet",
    "--repeat",
    "3",
    "-q",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(message_id=7))),
    expect=Expect(70, stderr=(), echo_ids=(1,), last_pdu=a_abort(0, 0)),
)
for _status in (0x0110, 0xC000, 0x0001, 0xFF00, 0x0122):
    case(
        f"dimse-status-{_status:04x}-verbose",
        "-v",
        steps=(ReadPDU(), Accept(), Serve(EchoReply(status=_status))),
        expect=Expect(
            0,
            stderr=(
                REQ,
                accepted(),
                sending(1),
                f"I: Received Echo Response (Unknown Status: 0x{_status:x})",
                REL,
            ),
            pdu_types=(RQ, P_DATA, RL_RQ),
        ),
    )
case(
    "dimse-status-0110-comment-default",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(status=0x0110, error_comment="FAKE FAILURE"))),
    expect=Expect(0, stderr=()),
)
case(
    "dimse-status-0110-comment-debug",
    "-d",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(status=0x0110, error_comment="FAKE FAILURE"))),
    expect=Expect(
        0,
        has=(
            "I: Received Echo Response (Unknown Status: 0x110)",
            "D|Status Detail (should never be any):",
            "D|(0000,0902) LO [FAKE FAILURE] # 12, 1 ErrorComment",
            REL,
        ),
    ),
)
case(
    "dimse-repeat-3-status-0110-verbose",
    "--repeat",
    "3",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(status=0x0110, error_comment="X"))),
    expect=Expect(
        0,
        stderr=(
            REQ,
            accepted(),
            *echo_lines(3, "I: Received Echo Response (Unknown Status: 0x110)"),
            REL,
        ),
        echo_ids=(1, 2, 3),
    ),
)
case(
    "dimse-split-pdvs-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(fragment=8))),
    expect=Expect(0, stderr=VERBOSE_OK),
)
case(
    "dimse-split-pdus-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(EchoReply(fragment=2, pdvs_per_pdu=1))),
    expect=Expect(0, stderr=VERBOSE_OK),
)
case(
    "dimse-split-trickled-verbose",
    "-v",
    steps=(
        ReadPDU(),
        Accept(),
        Serve(EchoReply(fragment=10, pdvs_per_pdu=2, trickle=Trickle(chunk=7, interval=0.01))),
    ),
    expect=Expect(0, stderr=VERBOSE_OK),
)
_RECV_FAILED = "0006:020d DIMSE Failed to receive message"
case(
    "dimse-data-pdv-verbose",
    "-v",
    steps=(*_ECHO, Respond(EchoReply(data_pdv=True)), Stall()),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error(_RECV_FAILED, "0006:020f DIMSE: Command PDV Expected"),
            ABORTING,
        ),
        last_pdu=a_abort(0, 0),
    ),
)
case(
    "dimse-wrong-context-verbose",
    "-v",
    steps=(*_ECHO, Respond(EchoReply(context_id=3)), Stall()),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error(_RECV_FAILED, "0006:0101 ASC Bad presentation context ID"),
            ABORTING,
        ),
        last_pdu=a_abort(0, 0),
    ),
)
case(
    "dimse-unknown-pdu-verbose",
    "-v",
    steps=(*_ECHO, Send(pdu(0x09, bytes(4))), Stall()),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error(
                _RECV_FAILED,
                "0006:020c DIMSE Read PDV failed",
                "0006:0321 Unrecognized PDU type:  9",
            ),
            ABORTING,
        ),
        last_pdu=a_abort(2, 1),
    ),
    dcmtk=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error(
                _RECV_FAILED,
                "0006:020c DIMSE Read PDV failed",
                "0006:0321 Unrecognized PDU type:  9",
            ),
            ABORTING,
        ),
        last_pdu=a_abort(0, 0),
    ),
    difference="the A-ABORT after an unrecognized PDU carries PS3.8's AA-8 source and reason "
    "(service provider, unrecognized-PDU); 3.6.7 sends source 0, reason 0",
)
case(
    "dimse-body-stall-ts-1-verbose",
    "-ts",
    "1",
    "-v",
    steps=(*_ECHO, Respond(EchoReply(trickle=Trickle(head=12, head_pause=6.0)))),
    expect=Expect(
        70,
        stderr=(
            *_V_SENT,
            *dimse_error(
                _RECV_FAILED, "0006:020c DIMSE Read PDV failed", "0006:0310 DUL network closed"
            ),
            ABORTING,
        ),
        last_pdu=a_abort(0, 0),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "dimse-header-stall-td-1-verbose",
    "-td",
    "1",
    "-v",
    steps=(*_ECHO, Respond(EchoReply(trickle=Trickle(head=6, head_pause=2.0))), Serve()),
    expect=Expect(
        70, stderr=(*_V_SENT, *dimse_error(_TD_TIMEOUT), ABORTING), min_seconds=0.9, max_seconds=3.0
    ),
    dcmtk=Expect(0, stderr=VERBOSE_OK, min_seconds=1.9),
    difference="-td bounds the whole C-ECHO-RSP in ours; DCMTK only times its first bytes "
    "(contract §0 (1), §8 case to-dimse-header-stall-td1)",
)

# §6.3: no data dictionary; the failure comes before any C-ECHO-RQ is sent.
case(
    "dimse-no-dictionary-verbose",
    "-v",
    env={"DCMDICTPATH": "/nonexistent/dicom.dic"},
    expect=Expect(
        70,
        stderr=(
            "E: DcmDataDictionary: Cannot open file: /nonexistent/dicom.dic",
            "W: no data dictionary loaded, check environment variable: DCMDICTPATH",
            *_V_SENT,
            *dimse_error("0006:0213 Data dictionary missing"),
            ABORTING,
        ),
        pdu_types=(RQ, ABRT),
        last_pdu=a_abort(0, 0),
    ),
)

# §7: release failures (exit 1).
_REL_FAIL = "F: Association Release Failed: "
_V_DONE = (REQ, accepted(), *echo_lines(1), REL)
case(
    "release-ta-1-silence-verbose",
    "-ta",
    "1",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(release="silence")),
    expect=Expect(
        1,
        stderr=(*_V_DONE, _REL_FAIL + "0006:031a DUL network read timeout"),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)
case(
    "release-abort-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(release="abort")),
    expect=Expect(1, stderr=(*_V_DONE, _REL_FAIL + PEER_ABORTED)),
)
case(
    "release-abort-quiet",
    "-q",
    steps=(ReadPDU(), Accept(), Serve(release="abort")),
    expect=Expect(1, stderr=(_REL_FAIL + PEER_ABORTED,)),
)
case(
    "release-close-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(release="close")),
    expect=Expect(1, stderr=(*_V_DONE, _REL_FAIL + PEER_ABORTED)),
)
case(
    "release-collision-verbose",
    "-v",
    steps=(ReadPDU(), Accept(), Serve(release="collision")),
    expect=Expect(
        1,
        stderr=(*_V_DONE, _REL_FAIL + "0006:0319 DUL Peer Requested Release"),
        pdu_types=(RQ, P_DATA, RL_RQ, 0x06),
    ),
    dcmtk=Expect(
        1,
        stderr=(*_V_DONE, _REL_FAIL + "0006:0319 DUL Peer Requested Release"),
        pdu_types=(RQ, P_DATA, RL_RQ),
    ),
    difference="ours completes the release collision on the wire as PS3.8 says (Sta9: "
    "A-RELEASE-RP) but reports it as DCMTK does, so scripts see the same line and exit code",
)

# §7: after its own A-ABORT, echoscu waits up to -ta for the peer to close.
case(
    "release-abort-option-linger-ta-1-verbose",
    "--abort",
    "-ta",
    "1",
    "-v",
    scp_closes_on_abort=False,
    expect=Expect(
        0,
        stderr=(REQ, accepted(), *echo_lines(1), ABORTING),
        pdu_types=(RQ, P_DATA, ABRT),
        min_seconds=0.9,
        max_seconds=4.0,
    ),
)

# §2.5, §2.6: command files.
case(
    "cmdfile-options",
    "@{dir}/opts.txt",
    files={"opts.txt": "-v\n--repeat\t2  "},
    expect=Expect(0, stderr=(REQ, accepted(), *echo_lines(2), REL)),
)
case(
    "cmdfile-quotes",
    "@{dir}/q.txt",
    files={"q.txt": '-aet \'MY "AE"\' -aec "THE SCP" -v'},
    rq=RQParams(calling=b'MY "AE"', called=b"THE SCP"),
    expect=Expect(0, stderr=VERBOSE_OK),
)
case(
    "cmdfile-params",
    "@{dir}/p.txt",
    params=(),
    files={"p.txt": "-v 127.0.0.1 {port}"},
    expect=Expect(0, stderr=VERBOSE_OK),
)
case(
    "cmdfile-empty-quotes-arguments",
    "@{dir}/e.txt",
    steps=(ReadPDU(), Stall()),
    files={"e.txt": "--arguments -aet '' -v"},
    rq=RQParams(calling=b""),
    expect=Expect(
        1,
        stderr=(
            "I: calling '<prog>' with 6 arguments: '--arguments' '--aetitle' "
            "'--verbose' '127.0.0.1' '<port>' ",
            "I: ",
            REQ,
            "E: Illegal service parameter: Calling AP Title",
            _ASSOC_FAIL + "0006:030c Illegal service parameter: Calling AP Title",
        ),
    ),
)
case(
    "cmdfile-nested-is-parameter",
    "@{dir}/n.txt",
    files={"n.txt": "-v @{dir}/opts.txt"},
    expect=cli_error("Too many parameters"),
)
case(
    "cmdfile-missing",
    "@{dir}/missing.txt",
    expect=cli_error("Cannot open command file '<dir>/missing.txt'"),
)

# §2.2-§2.4: command-line errors and number parsing (exit 1, no connection).
for _id, _args, _message in [
    ("cli-pts-0", ("-pts", "0"), "Invalid value for option --propose-ts (underflow: 0)"),
    ("cli-pts-abc", ("-pts", "abc"), "Invalid value for option --propose-ts (abc)"),
    ("cli-pts-negative", ("-pts", "-1"), "Invalid value for option --propose-ts (-1)"),
    ("cli-pts-46", ("-pts", "46"), "Invalid value for option --propose-ts (overflow: 46)"),
    ("cli-ppc-0", ("-ppc", "0"), "Invalid value for option --propose-pc (underflow: 0)"),
    ("cli-ppc-129", ("-ppc", "129"), "Invalid value for option --propose-pc (overflow: 129)"),
    ("cli-pdu-4095", ("-pdu", "4095"), "Invalid value for option --max-pdu (underflow: 4095)"),
    ("cli-pdu-131073", ("-pdu", "131073"), "Invalid value for option --max-pdu (overflow: 131073)"),
    ("cli-to-0", ("-to", "0"), "Invalid value for option --timeout (underflow: 0)"),
    ("cli-ts-minus-2", ("-ts", "-2"), "Invalid value for option --socket-timeout (underflow: -2)"),
    ("cli-ta-0", ("-ta", "0"), "Invalid value for option --acse-timeout (underflow: 0)"),
    ("cli-td-0", ("-td", "0"), "Invalid value for option --dimse-timeout (underflow: 0)"),
    ("cli-repeat-0", ("--repeat", "0"), "Invalid value for option --repeat (underflow: 0)"),
    (
        "cli-first-error-by-evaluation-order",
        ("-ppc", "0", "-pts", "0"),
        "Invalid value for option --propose-ts (underflow: 0)",
    ),
    ("cli-unknown-option", ("--foo",), "Unknown option --foo"),
    (
        "cli-ll-with-verbose",
        ("-ll", "info", "-v"),
        "--log-level not allowed with --verbose, --debug or --quiet",
    ),
    ("cli-ll-bad-name", ("-ll", "loud"), "Invalid log level for --log-level option"),
]:
    case(_id, *_args, expect=cli_error(_message))
for _id, _params, _message in [
    ("cli-port-0", ("127.0.0.1", "0"), "Invalid parameter value 0 (underflow)"),
    ("cli-port-65536", ("127.0.0.1", "65536"), "Invalid parameter value 65536 (overflow)"),
    ("cli-port-abc", ("127.0.0.1", "abc"), "Invalid parameter value abc"),
    ("cli-port-minus-5", ("127.0.0.1", "-5"), "Invalid parameter value -5 (overflow)"),
    ("cli-missing-port", ("127.0.0.1",), "Missing parameter port"),
    ("cli-too-many-parameters", ("127.0.0.1", "{port}", "extra"), "Too many parameters"),
    ("cli-missing-value", ("127.0.0.1", "{port}", "-aet"), "Missing value for option --aetitle"),
]:
    case(_id, params=_params, expect=cli_error(_message))
case(
    "cli-port-error-quiet",
    "-q",
    params=("127.0.0.1", "0"),
    expect=cli_error("Invalid parameter value 0 (underflow)"),
)
case("cli-value-error-quiet", "-q", "-pts", "0", expect=Expect(1, stderr=(), connections=0))
case("cli-unknown-option-quiet", "-q", "-x", expect=cli_error("Unknown option -x"))

# §12: DCMTK 3.6.8 behaviour that 3.6.7 does not have.
_PTS_DIFFERENCE = "-pts accepts 1..45 as in DCMTK 3.6.8 (contract §12); 3.6.7 stops at 38"
case(
    "rq-pts-39",
    "-pts",
    "39",
    expect=Expect(0, stderr=()),
    dcmtk=cli_error("Invalid value for option --propose-ts (overflow: 39)"),
    difference=_PTS_DIFFERENCE,
)
case(
    "rq-pts-45-verbose",
    "-pts",
    "45",
    "-v",
    expect=Expect(0, stderr=VERBOSE_OK),
    dcmtk=cli_error("Invalid value for option --propose-ts (overflow: 45)"),
    difference=_PTS_DIFFERENCE,
)
case(
    "rq-dump-responding-name-debug",
    "-d",
    expect=Expect(
        0,
        has=(
            *rq_dump(
                "Called Application Name: ANY-SCP",
                "Responding Application Name:",
                "Our Max PDU Receive Size: 16384",
            ),
            SUCCESS,
        ),
    ),
    dcmtk=Expect(
        0,
        has=(
            *rq_dump(
                "Called Application Name: ANY-SCP",
                "Responding Application Name: ANY-SCP",
                "Our Max PDU Receive Size: 16384",
            ),
            SUCCESS,
        ),
    ),
    difference="3.6.8 prints an empty Responding Application Name in the RQ dump (contract §12)",
)

CASES_BY_ID: dict[str, Case] = {c.id: c for c in CASES}
if len(CASES_BY_ID) != len(CASES):
    raise RuntimeError("duplicate case id in the golden table")
