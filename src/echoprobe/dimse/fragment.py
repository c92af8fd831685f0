"""PDV fragmentation and reassembly of DIMSE messages (PS3.8 §9.3.5, Annex E; PS3.7 §6.3.1).

Rules (robustness #13-#15):
- Every fragment of a command shares one presentation context ID, which must be one the
  association accepted; a data-set PDV where a command is expected is an error.
- The last-fragment bit (bit 1 of the message control header) ends the command.
- The command may arrive as any number of PDVs in any number of PDUs, 2-byte (empty) PDVs
  included, but the total size and the PDV count are bounded, so an endless trickle of
  fragments cannot grow memory or run forever.
"""

from __future__ import annotations

from struct import Struct

from echoprobe.errors import RemoteProtocolError
from echoprobe.ul.pdu import PDV

_PDU_HEAD = Struct(">BBL")
_PDV_HEAD = Struct(">LBB")

MAX_COMMAND_BYTES = 64 << 10
MAX_COMMAND_PDVS = 4096

COMMAND = 0x01
LAST = 0x02


def fragment_command(command: bytes, context_id: int, max_fragment: int) -> bytes:
    """P-DATA-TF PDUs (concatenated) carrying `command`, one PDV per PDU, each PDV holding at
    most `max_fragment` bytes (odd sizes rounded down: peers such as DCMTK refuse odd ones)."""
    if max_fragment >= len(command):
        return (
            _PDU_HEAD.pack(4, 0, len(command) + 6)
            + _PDV_HEAD.pack(len(command) + 2, context_id, COMMAND | LAST)
            + command
        )
    step = max_fragment - (max_fragment & 1) if max_fragment > 1 else 1
    out = bytearray()
    for start in range(0, len(command), step):
        chunk = command[start : start + step]
        control = COMMAND | (LAST if start + step >= len(command) else 0)
        out += _PDU_HEAD.pack(4, 0, len(chunk) + 6)
        out += _PDV_HEAD.pack(len(chunk) + 2, context_id, control)
        out += chunk
    return bytes(out)


class Reassembler:
    """Collects command fragments until the last one; one message at a time."""

    __slots__ = ("_accepted", "_context_id", "_count", "_parts", "_size", "_started")

    def __init__(self, accepted_context_ids: frozenset[int]) -> None:
        self._accepted = accepted_context_ids
        self._parts: list[bytes] = []
        self._size = 0
        self._count = 0
        self._context_id = 0
        self._started = False

    def feed(self, pdvs: tuple[PDV, ...]) -> tuple[int, bytes] | None:
        """Add the PDVs of one P-DATA-TF; return (context id, command bytes) once complete.

        PDVs after a complete command in the same PDU are not expected for C-ECHO (a data set
        never follows); they are refused rather than silently dropped.
        """
        result: tuple[int, bytes] | None = None
        for pdv in pdvs:
            if result is not None:
                raise RemoteProtocolError(
                    "PDV after a complete command in the same PDU",
                    field="pdv.extra",
                    abort_reason=5,
                )
            if pdv.context_id not in self._accepted:
                raise RemoteProtocolError(
                    f"PDV on presentation context {pdv.context_id}, which was not accepted",
                    field="pdv.context_id",
                    abort_reason=6,
                )
            if not pdv.control & COMMAND:
                raise RemoteProtocolError(
                    "data set PDV where a command was expected", field="pdv.control", abort_reason=6
                )
            if self._started and pdv.context_id != self._context_id:
                raise RemoteProtocolError(
                    "command fragments on different presentation contexts",
                    field="pdv.context_id",
                    abort_reason=6,
                )
            self._started = True
            self._context_id = pdv.context_id
            self._count += 1
            self._size += len(pdv.data)
            if self._count > MAX_COMMAND_PDVS:
                raise RemoteProtocolError(
                    f"command spread over more than {MAX_COMMAND_PDVS} PDVs",
                    field="pdv.count",
                    abort_reason=6,
                )
            if self._size > MAX_COMMAND_BYTES:
                raise RemoteProtocolError(
                    f"command set larger than {MAX_COMMAND_BYTES} bytes",
                    field="command.size",
                    abort_reason=6,
                )
            if pdv.data:
                self._parts.append(pdv.data)
            if pdv.control & LAST:
                data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
                result = (self._context_id, data)
                self._parts = []
                self._size = 0
                self._count = 0
                self._started = False
        return result

    @property
    def in_progress(self) -> bool:
        return self._started
