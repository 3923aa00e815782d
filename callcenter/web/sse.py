"""Server-sent events: open streams grouped by topic, a heartbeat, clean removal.

A topic is ``wallboard`` or ``agent:<username>``.  An event is serialised and framed
once (:class:`Frames`: as is for HTTP/1.0, as one chunk for HTTP/1.1) and the same bytes
go to every stream of the topic.  A :class:`Stream` sends them straight to its socket
when nothing of it is queued (one ``send``: no write-readiness round trip through the
reactor per client and push, which was most of the cost at 500 clients); what the socket
does not take is queued in Twisted's transport, which then tells the stream it is
blocked (the transport's ``bufferSize`` is 0 for a stream: any queued byte pauses it,
the queue drained resumes it).  A stream with more than :data:`MAX_QUEUED` bytes queued
is a client that does not read: it is cut (the page reconnects and starts from the full
document), so a slow or stalled reader costs at most that much memory and never delays
the others.  How many streams may be open: :mod:`.stream_caps`.

The heartbeat is a ``ping`` event, not a comment: it keeps proxies from closing an idle
stream *and* lets the wallboard tell a silent, dead link from a quiet hotline (comments
never reach the page's script).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from callcenter.logs import RepeatLimiter

from .stream_caps import Slot, StreamCaps

log = logging.getLogger(__name__)

MAX_QUEUED = 256 * 1024   # bytes queued for one stream (beyond the kernel's socket buffer) before it is cut


def format_event(event: str, data: Any, event_id: int | None = None) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class Frames:
    """One event's bytes as an HTTP/1.0 body writes them and as an HTTP/1.1 chunk."""
    __slots__ = ("raw", "chunked")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.chunked = b"%x\r\n%b\r\n" % (len(raw), raw)


PING = Frames(b"event: ping\ndata: {}\n\n")


class StreamError(TypeError):
    """The request's transport is not a socket this module can write to directly."""


@implementer(IPushProducer)
class Stream:
    """One open event stream: its request, its transport, the bytes queued for it."""

    def __init__(self, request, slot: Slot, max_queued: int = MAX_QUEUED):
        transport = request.channel.transport
        if not isinstance(transport, FileDescriptor):
            raise StreamError(f"event streams need a socket transport, not {type(transport).__name__}")
        self.request = request
        self.transport = transport
        self.slot = slot
        self.max_queued = max_queued
        self.blocked = False      # bytes wait in the transport: new ones queue behind them
        self.queued = 0           # bytes handed to the transport since it last ran empty
        self.cut = ""             # why nothing more is sent: slow | gone | stopping | lost
        transport.bufferSize = 0  # any queued byte pauses this producer; resumed when drained
        request.registerProducer(self, True)

    def start(self, chunks: list[bytes]) -> None:
        """The response headers and the first events, written the ordinary way."""
        for chunk in chunks:
            self.queued += len(chunk)
            self.request.write(chunk)

    def send(self, frames: Frames) -> None:
        if self.cut:
            return
        data = frames.chunked if self.request.chunked else frames.raw
        if self.blocked:
            if self.queued + len(data) > self.max_queued:
                self.abort("slow")
                return
            self.queued += len(data)
            self.transport.write(data)
            return
        sent = self.transport.writeSomeData(data)
        if isinstance(sent, BaseException):  # the peer is gone; Twisted notices on its next read
            self.abort("gone")
            return
        if sent < len(data):
            self.queued += len(data) - sent
            self.transport.write(data[sent:])  # pauses this stream until the rest is sent

    def abort(self, why: str) -> None:
        """Cut the connection now (nothing more is sent): the request's end removes the stream."""
        self.cut = why
        self.transport.abortConnection()

    def finish(self) -> None:
        """End the response politely (the service is stopping)."""
        self.cut = "stopping"
        self.request.unregisterProducer()
        del self.transport.bufferSize
        self.request.finish()

    # IPushProducer: called by the transport (through the HTTP channel)
    def pauseProducing(self) -> None:
        self.blocked = True

    def resumeProducing(self) -> None:
        self.blocked = False
        self.queued = 0

    def stopProducing(self) -> None:
        self.cut = self.cut or "lost"


class Broker:
    def __init__(self, reactor, caps: StreamCaps, heartbeat: float = 15.0, max_queued: int = MAX_QUEUED):
        self.reactor = reactor
        self.caps = caps
        self.heartbeat = heartbeat
        self.max_queued = max_queued
        self.streams: dict[str, set[Stream]] = {}
        self.cut_slow = 0         # streams cut for not reading
        self._seq = 0
        self._beat = None
        self._cuts = RepeatLimiter(log, reactor, interval=60.0)

    def add(self, topic: str, request, slot: Slot, first: list[bytes]) -> Stream:
        """Open a stream of ``topic`` on ``request`` holding ``slot`` (given back when it ends)."""
        stream = Stream(request, slot, self.max_queued)
        slot.held_by_stream = True
        self.streams.setdefault(topic, set()).add(stream)
        request.notifyFinish().addBoth(lambda _: self._ended(topic, stream))
        stream.start(first)
        if self._beat is None and self.heartbeat:
            self._beat = self.reactor.callLater(self.heartbeat, self._heartbeat)
        return stream

    def _ended(self, topic: str, stream: Stream) -> None:
        group = self.streams.get(topic)
        if group is not None:
            group.discard(stream)
            if not group:
                del self.streams[topic]
        stream.slot.release()
        if stream.cut == "slow":
            self.cut_slow += 1
            self._cuts.info("slow", "SSE stream cut: over %d bytes queued (the client does not read)",
                            self.max_queued)

    def count(self, topic: str) -> int:
        return len(self.streams.get(topic, ()))

    def publish(self, topic: str, event: str, data: Any) -> int:
        group = self.streams.get(topic)
        if not group:
            return 0
        self._seq += 1
        frames = Frames(format_event(event, data, self._seq))
        for stream in list(group):
            self._send(stream, frames)
        return len(group)

    def _send(self, stream: Stream, frames: Frames) -> None:
        try:
            stream.send(frames)
        except Exception as exc:  # noqa: BLE001 - one broken stream must not stop the others
            self._cuts.warning("error", "SSE stream cut: write failed: %r", exc)
            stream.abort("error")

    def _heartbeat(self) -> None:
        self._beat = None
        for group in list(self.streams.values()):
            for stream in list(group):
                self._send(stream, PING)
        if self.streams:
            self._beat = self.reactor.callLater(self.heartbeat, self._heartbeat)

    def close(self) -> None:
        if self._beat is not None and self._beat.active():
            self._beat.cancel()
        self._beat = None
        for group in list(self.streams.values()):
            for stream in list(group):
                try:
                    stream.finish()
                except Exception:  # noqa: BLE001 - one broken stream must not keep the others open
                    log.debug("SSE finish failed", exc_info=True)
        self.streams.clear()
