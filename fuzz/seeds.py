"""Build the seed corpora in fuzz/corpus/<target>/ from our own encoder.

`python -m fuzz.seeds` rewrites the named seeds (minimised findings, kept as `crash-*` /
`finding-*` files, are left alone). Each seed is a harness input: the control bytes the harness
reads first, then the peer's byte stream.
"""

from __future__ import annotations

import sys
from pathlib import Path

from echoprobe.dimse.echo import echo_request_command, echo_request_pdus, echo_response_command
from echoprobe.dimse.fragment import fragment_command
from echoprobe.net.procedure import request_for
from echoprobe.options import AssociationOptions
from echoprobe.ul.codec import encode_pdata, encode_pdu
from echoprobe.ul.negotiation import AcceptorPolicy, answer_request, build_request
from echoprobe.ul.pdu import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    PresentationContextAC,
    RawItem,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    UserInformation,
)

CORPUS = Path(__file__).parent / "corpus"

RQ = build_request()
RQ3 = build_request(num_contexts=3, transfer_syntaxes=("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"))
RQ_RICH = AssociateRQ(
    called_ae=b"ANY-SCP         ",
    calling_ae=b"ECHOSCU         ",
    presentation_contexts=RQ3.presentation_contexts,
    user_information=UserInformation(
        max_length=0,
        implementation_class_uid="1.2.3.4",
        implementation_version_name="PEER_1",
        async_ops_window=AsyncOpsWindow(1, 1),
        role_selections=(RoleSelection("1.2.840.10008.1.1", 1, 0),),
        other=(RawItem(0x58, b"\x01\x00\x00\x00"),),
    ),
    other=(RawItem(0x99, b"x"),),
)
AC = answer_request(RQ, AcceptorPolicy())
AC3 = answer_request(RQ3, AcceptorPolicy())
AC_NONE = AssociateAC(AC.called_ae, AC.calling_ae, (PresentationContextAC(1, 3, None),), None)
RJ = AssociateRJ(1, 1, 7)
ECHO_RQ = echo_request_pdus(1, 1, 16372)
ECHO_RQ_2 = echo_request_pdus(2, 1, 16372)
ECHO_RSP = fragment_command(echo_response_command(1), 1, 16372)
ECHO_RSP_2 = fragment_command(echo_response_command(2), 1, 16372)
RELEASE_RQ = encode_pdu(ReleaseRQ())
RELEASE_RP = encode_pdu(ReleaseRP())
ABORT = encode_pdu(Abort(2, 1))
GARBAGE = b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00"
HTTP = b"HTTP/1.1 400 Bad Request\r\n\r\n"
HUGE = b"\x04\x00\xff\xff\xff\xff\x00\x00\x00\x02\x01\x03"


def _pdus() -> dict[str, bytes]:
    return {
        "associate-rq": encode_pdu(RQ),
        "associate-rq-3": encode_pdu(RQ3),
        "associate-rq-rich": encode_pdu(RQ_RICH),
        "associate-ac": encode_pdu(AC),
        "associate-ac-3": encode_pdu(AC3),
        "associate-ac-none": encode_pdu(AC_NONE),
        "associate-rj": encode_pdu(RJ),
        "pdata-echo-rq": ECHO_RQ,
        "pdata-echo-rsp": ECHO_RSP,
        "pdata-two-pdvs": encode_pdata((PDV(1, 0, b""), PDV(3, 2, b"ab"))),
        "pdata-empty": encode_pdata(()),
        "release-rq": RELEASE_RQ,
        "release-rp": RELEASE_RP,
        "abort": ABORT,
        "unknown-type": GARBAGE,
        "huge-length": HUGE,
        "truncated": encode_pdu(RQ)[:40],
    }


def _conversations() -> dict[str, tuple[bytes, bytes]]:
    """name → (requestor-side stream, acceptor-side stream)."""
    status = fragment_command(echo_response_command(1, 0xA700, "busy"), 1, 16372)
    return {
        "usual": (
            encode_pdu(AC) + ECHO_RSP + ECHO_RSP_2 + RELEASE_RP,
            encode_pdu(RQ) + ECHO_RQ + ECHO_RQ_2 + RELEASE_RQ,
        ),
        "collision": (
            encode_pdu(AC) + ECHO_RSP + ECHO_RSP_2 + RELEASE_RQ + RELEASE_RP,
            encode_pdu(RQ) + ECHO_RQ + RELEASE_RQ + RELEASE_RP,
        ),
        "abort": (encode_pdu(AC) + ABORT, encode_pdu(RQ) + ABORT),
        "reject": (encode_pdu(RJ), encode_pdu(RQ3) + RELEASE_RQ),
        "status": (encode_pdu(AC) + status + RELEASE_RP, encode_pdu(RQ_RICH) + ECHO_RQ),
        "fragmented": (
            encode_pdu(AC) + fragment_command(echo_response_command(1), 1, 20),
            encode_pdu(RQ) + fragment_command(echo_request_command(1), 1, 20),
        ),
        "garbage": (encode_pdu(AC) + GARBAGE, encode_pdu(RQ) + GARBAGE),
        "http": (HTTP, HTTP),
    }


def _fastpath_stream(options: AssociationOptions, answers: int, end: bytes) -> bytes:
    rq, _ = request_for(options)
    ac = encode_pdu(answer_request(rq, AcceptorPolicy()))
    rsps = b"".join(
        fragment_command(echo_response_command(i + 1), 1, 16372) for i in range(answers)
    )
    return ac + rsps + end


def seeds() -> dict[str, dict[str, bytes]]:
    pdus = _pdus()
    talks = _conversations()
    out: dict[str, dict[str, bytes]] = {
        "codec": dict(pdus),
        "framer": {
            f"{name}-{limits}": bytes((limits, 1)) + data
            for name, data in pdus.items()
            for limits in (0, 2)
        },
        "negotiation": {
            f"{name}-{policy}": bytes((policy,)) + pdus[name]
            for name in (
                "associate-rq",
                "associate-rq-3",
                "associate-rq-rich",
                "associate-ac",
                "associate-ac-3",
                "associate-ac-none",
            )
            for policy in (0, 1, 2)
        },
        "dimse": {
            "command-echo-rq": b"\x00\x01\x00\x00" + echo_request_command(1),
            "command-echo-rsp": b"\x00\x01\x00\x00" + echo_response_command(1),
            "command-echo-rsp-comment": b"\x00\x07\x00\x00"
            + echo_response_command(7, 0x0110, "busy"),
            "reassemble-echo-rq": b"\x01\x01\x00\x00" + ECHO_RQ,
            "reassemble-fragments": b"\x01\x03\x00\x00"
            + fragment_command(echo_request_command(1), 1, 16),
            "reassemble-extra-pdv": b"\x01\x01\x00\x00"
            + encode_pdata((PDV(1, 0x03, echo_request_command(1)), PDV(1, 0x01, b"xx"))),
            "reassemble-data-set-pdv": b"\x01\x01\x00\x00" + encode_pdata((PDV(1, 0x02, b"x"),)),
            "fragment-echo-rq": b"\x02\x01\x10\x00" + echo_request_command(1),
            "fragment-odd": b"\x02\x03\x07\x00" + echo_response_command(1),
            "canonical-echo-rq": b"\x03\x00\x00\x00" + ECHO_RQ,
        },
        "connection": {},
        "fastpath": {},
        "scp": {},
    }
    for name, (to_requestor, to_acceptor) in talks.items():
        for slicing in (1, 0, 77):
            # Control byte: bit 0 acceptor, bits 1-2 our Maximum Length, bits 3-4 the ending
            # (stay, close, ARTIM), bit 5 dispatch on demand.
            for mode, tag in ((0x00, ""), (0x20, "-on-demand")):
                out["connection"][f"scu-{name}-{slicing}{tag}"] = (
                    bytes((mode, slicing)) + to_requestor
                )
                out["connection"][f"scp-{name}-{slicing}{tag}"] = (
                    bytes((mode | 1 | 8, slicing)) + to_acceptor
                )
            out["scp"][f"{name}-{slicing}"] = bytes((0, slicing)) + to_acceptor
    # Control byte: repeat-1 in (c % 3), max PDU index in bits 2-3, contexts-1 in bit 4,
    # the ending in bits 5-6 (none, eof, reset, cancel).
    for control, answers, end, name in (
        (0x00, 1, RELEASE_RP, "usual"),
        (0x02, 3, RELEASE_RP, "three-echoes"),
        (0x01, 2, RELEASE_RQ + RELEASE_RP, "collision"),
        (0x04, 1, RELEASE_RP, "unlimited-pdu"),
        (0x10, 1, RELEASE_RP, "two-contexts"),
        (0x20, 1, b"", "eof"),
        (0x40, 1, b"", "reset"),
        (0x60, 0, b"", "cancel"),
        (0x00, 1, ABORT, "abort"),
    ):
        options = AssociationOptions(
            repeat=1 + control % 3,
            max_pdu=(16384, 0, 1024, 256)[(control >> 2) % 4],
            contexts=1 + (control >> 4) % 2,
        )
        for slicing in (1, 0, 33):
            stream = _fastpath_stream(options, answers, end)
            out["fastpath"][f"{name}-{slicing}"] = bytes((control, slicing)) + stream
    return out


# Seeds that hit a finding not fixed yet: written as `finding-<name>`, which the replay test
# expects to fail (see fuzz/README.md, "Findings"). Remove a name once its finding is fixed.
OPEN_FINDINGS: frozenset[str] = frozenset()  # e.g. "connection/scp-http-77-on-demand"


def main() -> int:
    for target, files in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            is_open = f"{target}/{name}" in OPEN_FINDINGS
            (folder / (f"finding-{name}" if is_open else name)).write_bytes(data)
            (folder / (name if is_open else f"finding-{name}")).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
