"""Fault injection for one SCP connection: what `Faults` make it do instead of answering.

Rules:
- A fault never bypasses the protocol core: an A-ABORT on purpose is encoded like any
  other, a release collision is started through `ULConnection.request_release` (PS3.8
  Table 9-10), and every other fault only withholds, delays or trickles bytes.
- At a phase, the first fault that applies wins: `abort_at`, `close_at`, `silent_at`, then
  `delay` (`Faults`). A delay holds input back and answers it in order afterwards; the idle
  bound does not run meanwhile (the delay's own timer bounds it).
- After a fault's A-ABORT or FIN, input is ignored and the connection closes when the peer
  does or when ARTIM passes, so that our last bytes are read, not reset.
- A healthy connection never reaches this code except through `_act`'s first test.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from echoprobe.net.scp_values import Faults, SCPCounters
from echoprobe.ul.codec import encode_pdu
from echoprobe.ul.connection import ULConnection
from echoprobe.ul.pdu import Abort

_A_RELEASE_RQ_TYPE: Final = 0x05


class FaultHost(Protocol):
    """What fault injection reads on its SCP."""

    @property
    def counters(self) -> SCPCounters: ...
    @property
    def idle_timeout(self) -> float: ...
    @property
    def artim_timeout(self) -> float: ...


class FaultInjection(asyncio.Protocol):
    """The fault-injection half of a connection (`SCPConnection` is the other): it owns the
    state faults change, and reads the connection's core, transport, loop and SCP."""

    __slots__ = (
        "_collide",
        "_end_at",
        "_ending",
        "_faults",
        "_faulty",
        "_held",
        "_hold_timer",
        "_idle_at",
        "_silent",
        "_trickle_buf",
        "_trickle_timer",
    )

    _collide: bool  # a release collision is still to be started
    _end_at: float
    _ending: bool  # after a fault's A-ABORT or FIN: input is ignored
    _faults: Faults
    _faulty: bool
    _held: list[bytes] | None  # input held back during a delay
    _hold_timer: asyncio.TimerHandle | None
    _idle_at: float  # when the idle bound ends the connection
    _silent: bool
    _trickle_buf: bytearray | None
    _trickle_timer: asyncio.TimerHandle | None
    # Owned by the connection:
    _conn: ULConnection
    _loop: asyncio.AbstractEventLoop
    _scp: FaultHost
    _transport: asyncio.Transport | None

    if TYPE_CHECKING:

        def _pump(self) -> bool: ...

    def _act(self, phase: str, answer: Callable[[], None]) -> None:
        """Answer now, later, never, or misbehave instead, as the faults say for `phase`."""
        if not self._faulty:
            answer()
            return
        f = self._faults
        counters = self._scp.counters
        if f.abort_at == phase:
            counters.aborts_sent += 1
            self._write(encode_pdu(Abort(f.abort_source, f.abort_reason)))
            self._end()
            return
        if f.close_at == phase:
            counters.closed_by_fault += 1
            self._end(half_close=True)
            return
        if f.silent_at == phase or (phase == "release" and f.no_release_response):
            counters.silenced += 1
            self._silent = True
            return
        seconds = f.delay.get(phase, 0.0)
        if seconds > 0:
            self._held = []
            self._idle_at = math.inf
            self._hold_timer = self._loop.call_later(seconds, self._resume, answer)
            return
        answer()

    def _resume(self, answer: Callable[[], None]) -> None:
        """The end of a delay: answer, then process what arrived meanwhile, in order."""
        self._hold_timer = None
        held, self._held = self._held or [], None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._idle_at = self._loop.time() + self._scp.idle_timeout
        answer()
        self._pump()  # events queued behind the delayed one, then the answer goes out
        for index, chunk in enumerate(held):
            if self._held is not None:  # delayed again: keep the rest for later
                self._held.extend(held[index:])
                return
            if chunk:
                self.data_received(chunk)
            elif not self.eof_received():
                transport.close()

    def _collide_if_release(self, data: bytes, now: float) -> None:
        """Release collision on purpose (PS3.8 §7.2.2, Table 9-10 Sta7/Sta10/Sta12).

        In Sta8 an acceptor may not send A-RELEASE-RQ, so the collision must start before the
        peer's A-RELEASE-RQ is processed: when one begins at a PDU boundary in Sta6, we issue
        our own A-RELEASE request first (AR-1, Sta7), as if it had crossed the peer's on the
        wire. The peer's RQ then gives AR-8 → Sta10; its RP gives AR-10 → Sta12; our RP
        (AR-4) ends the association. Every step is the table's.
        """
        if data[0] == _A_RELEASE_RQ_TYPE:
            self._collide = False
            self._scp.counters.release_collisions += 1
            self._conn.request_release()

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if self._silent or transport is None or transport.is_closing():
            return
        if self._faulty and self._faults.trickle > 0:
            if self._trickle_buf is None:
                self._trickle_buf = bytearray(data)
                self._trickle_step()
            else:
                self._trickle_buf += data
            return
        transport.write(data)

    def _trickle_step(self) -> None:
        self._trickle_timer = None
        buf = self._trickle_buf
        transport = self._transport
        if buf is None or transport is None or transport.is_closing():
            return
        transport.write(bytes(buf[:1]))
        del buf[:1]
        if buf:
            self._trickle_timer = self._loop.call_later(self._faults.trickle, self._trickle_step)
            return
        self._trickle_buf = None

    def _end(self, *, half_close: bool = False) -> None:
        """After a fault's A-ABORT or FIN: ignore input, close when the peer closes or when
        the ARTIM timeout passes (so that our last bytes are read, not reset)."""
        self._ending = True
        self._end_at = self._loop.time() + self._scp.artim_timeout
        transport = self._transport
        if half_close and transport is not None and not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()


def nothing() -> None:
    """The answer of a phase that has none (the TCP accept)."""


__all__ = ["FaultHost", "FaultInjection", "nothing"]
