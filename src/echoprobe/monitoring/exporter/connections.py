"""Bounds on HTTP connections that aiohttp does not set by itself.

aiohttp bounds the size of a request line and headers, but not how long a client may take to
send them, nor how many connections may be open: a client trickling header bytes (slowloris),
or thousands of idle connections, would hold the exporter. `ConnectionGuard` wraps aiohttp's
protocol factory:

- at most `max_connections` connections at once; when one more comes, the oldest connection
  without a request under way is closed to make room (so idle connections cannot lock a
  scraper out), and only when every connection is busy is the new one closed (no HTTP answer:
  answering would cost what the limit saves);
- an idle connection (new, or between keep-alive requests) is closed after `idle_timeout`;
- once the first byte of a request arrived, its headers must be complete within
  `header_timeout`, or the connection is closed.

"Headers complete" is learned from aiohttp itself: its middleware runs when a request's headers
are parsed, and calls `request_started()` / `request_finished()`; nothing here parses HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, cast

log = logging.getLogger(__name__)

_IDLE: Final = 0
_HEADERS: Final = 1
_BUSY: Final = 2


class ConnectionGuard:
    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        *,
        max_connections: int = 1024,
        idle_timeout: float = 60.0,
        header_timeout: float = 10.0,
    ) -> None:
        self._factory = factory
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self._open: dict[asyncio.BaseTransport, _Guarded] = {}
        self.refused = 0  # connections closed because of the limit
        self.expired = 0  # connections closed by a timer
        self.evicted = 0  # idle connections closed to make room for a new one

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    @property
    def open(self) -> int:
        return len(self._open)

    def evict_idle(self) -> bool:
        """Close the oldest connection without a request under way, to make room for a new
        one: idle connections cannot lock a scraper out, and a request once started is never
        cut off. False when every connection is busy."""
        for guarded in self._open.values():
            if guarded.state != _BUSY:
                self.evicted += 1
                guarded.close()
                return True
        return False

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        guarded = self._open.get(transport) if transport is not None else None
        if guarded is not None:
            guarded.set_state(_BUSY)

    def request_finished(self, transport: asyncio.BaseTransport | None) -> None:
        guarded = self._open.get(transport) if transport is not None else None
        if guarded is not None:
            guarded.set_state(_IDLE)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol behind a watchman: every event is passed on unchanged."""

    __slots__ = ("_guard", "_inner", "_state", "_timer", "_transport")

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._state = _IDLE

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # a stream server's transport
        guard = self._guard
        if len(guard._open) >= guard.max_connections and not guard.evict_idle():
            guard.refused += 1
            if guard.refused == 1 or guard.refused % 1000 == 0:
                log.warning(
                    "connection limit reached with every connection busy: closing new ones",
                    extra={"max_connections": guard.max_connections, "refused": guard.refused},
                )
            transport.abort()
            return
        self._transport = transport
        guard._open[transport] = self
        self._inner = guard._factory()
        self._inner.connection_made(transport)
        self.set_state(_IDLE)

    def set_state(self, state: int) -> None:
        self._state = state
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if state == _BUSY or self._transport is None:
            return
        delay = self._guard.idle_timeout if state == _IDLE else self._guard.header_timeout
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    @property
    def state(self) -> int:
        return self._state

    def close(self) -> None:
        """Abort the connection and forget it at once (its connection_lost comes later)."""
        if self._transport is not None:
            self._guard._open.pop(self._transport, None)
            self._transport.abort()

    def _expire(self) -> None:
        self._timer = None
        if self._state != _BUSY and self._transport is not None:
            self._guard.expired += 1
            log.debug("closing a connection that sent no complete request in time")
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._state == _IDLE:
            self.set_state(_HEADERS)
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._guard._open.pop(self._transport, None)
            self._transport = None
        if self._inner is not None:
            self._inner.connection_lost(exc)
            self._inner = None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
