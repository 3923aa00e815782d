"""One FastAGI connection as a plain :class:`asyncio.Protocol`: the bytes and the task.

``asyncio.start_server`` gives each connection a StreamReader, a StreamReaderProtocol and
a StreamWriter; every reply Asterisk sends then goes through three layers (feed_data, the
waiter, a copy out of the reader's buffer) before the session's task sees it.  An AGI
session needs less: one waiter for "bytes came", the bytes as they came, and write flow
control.  :class:`AgiConnection` is that, with the part of the streams API the FastAGI
code uses (``read``, ``write``, ``drain``, ``close``, ``transport``), so the same request
code runs over either (the tests still drive it through ``asyncio.start_server`` too).

Behaviour kept from the streams: reading pauses above ``limit`` unread bytes (a peer that
floods is held back by TCP, not buffered without bound); a connection lost with an error
raises it from ``read``/``drain``; a clean end reads as ``b""``.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

DEFAULT_LIMIT = 256 * 1024  # unread bytes above which reading pauses (as start_server's limit)


class AgiConnection(asyncio.Protocol):
    """Reader and writer of one connection; ``handle(conn, conn)`` runs as its task."""

    __slots__ = ("_handle", "_limit", "_loop", "transport", "task", "_buf", "_eof", "_lost", "_exc",
                 "_waiter", "_paused_reading", "_paused_writing", "_drain_waiter")

    def __init__(self, handle: Callable[[Any, Any], Awaitable[None]], limit: int = DEFAULT_LIMIT):
        self._handle = handle
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task | None = None
        self._buf = bytearray()
        self._eof = False
        self._lost = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._paused_reading = False
        self._paused_writing = False
        self._drain_waiter: asyncio.Future | None = None

    # -- protocol callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.task = self._loop.create_task(self._handle(self, self))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > self._limit and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport, as the streams do

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = self._lost = True
        self._exc = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc if exc is not None else ConnectionResetError("Connection lost"))

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- what the request code uses (StreamReader/StreamWriter's names) --------------------
    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all there are if ``n`` < 0), waiting for some; ``b""`` at the end."""
        while not self._buf:
            if self._exc is not None:
                raise self._exc
            if self._eof:
                return b""
            self._waiter = self._loop.create_future()
            await self._waiter
        if n < 0 or n >= len(self._buf):
            data = bytes(self._buf)
            self._buf.clear()
        else:
            data = bytes(self._buf[:n])
            del self._buf[:n]
        if self._paused_reading and len(self._buf) <= self._limit:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport holds more than its high-water mark of unsent bytes;
        after the connection is lost, raise as ``StreamWriter.drain`` does."""
        if self.transport.is_closing():
            await asyncio.sleep(0)  # as StreamWriter.drain: let connection_lost run first
        if self._lost:
            raise self._exc if self._exc is not None else ConnectionResetError("Connection lost")
        if not self._paused_writing:
            return
        self._drain_waiter = self._loop.create_future()
        await self._drain_waiter

    def close(self) -> None:
        self.transport.close()
