"""A blocking iterator (stdin, a pipe) read in its own thread, as an async iterator.

Rules:
- The event loop never waits on a read: a producer that writes targets slowly (or not at all)
  into `echoprobe sweep --targets -` must not stall probes, progress or signal handling.
- The reader is a daemon thread, so a process that stops early (Ctrl-C while stdin is still
  open) does not wait for a read that may never return; what it read and nobody took is
  dropped with it.
- Back-pressure: the thread blocks once `buffer` items wait, so a fast producer cannot fill
  memory ahead of the sweep.
- An exception raised by the iterator reaches the consumer, after the items before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Final, Generic, TypeVar

T = TypeVar("T")

_DONE: Final = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ThreadedSource(AsyncIterator[T], Generic[T]):
    """`async for item in ThreadedSource(iterator)`: `iterator` is consumed in a thread."""

    def __init__(self, iterator: Iterator[T], *, buffer: int = 1024, name: str = "reader") -> None:
        self._iterator = iterator
        self._items: queue.Queue[object] = queue.Queue(maxsize=buffer)
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._name = name
        self._finished = False

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name=self._name, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        loop = self._loop
        assert loop is not None  # set before the thread starts
        try:
            for item in self._iterator:
                self._items.put(item)
                self._wake(loop)
            self._items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._items.put(_Failed(exc))
        self._wake(loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(self._ready.set)

    def __aiter__(self) -> ThreadedSource[T]:
        return self

    async def __anext__(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        if self._thread is None:
            self._start()
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                self._ready.clear()
                if self._items.empty():
                    await self._ready.wait()
                continue
            if item is _DONE:
                self._finished = True
                raise StopAsyncIteration
            if isinstance(item, _Failed):
                self._finished = True
                raise item.error
            return item  # type: ignore[return-value] # only T, _DONE and _Failed are queued


__all__ = ["ThreadedSource"]
