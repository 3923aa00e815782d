"""A TCP AMI server that replays a recorded ``.ami`` trace byte-exact.

Tests point the real gateway at it: the server sends the banner, answers the
client's ``Login`` with the recorded login response (ActionID rewritten to the
client's), then streams every recorded message after it.  Knobs for the nasty
cases: ``chunk_size``/``split_utf8`` cut the stream into tiny writes (in the
middle of multi-byte characters), ``drop_at`` aborts the connection after N
streamed messages (the next connection resumes, optionally skipping what was
"lost" during the outage), ``answer_pings=False`` makes a half-open link, and a
``responder`` answers the actions the client sends (resync ``QueueStatus`` …).

Time: with a ``twisted.internet.task.Clock`` as ``clock`` the server advances it
to each message's recorded arrival time before sending it and, after every
write, awaits ``sync()`` (typically "until the gateway has received all bytes
sent so far"), so the client's arrival times equal the recording's exactly.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable, Iterable

from .codec import Message, Parser, encode
from .tracefile import AmiTrace, read_ami

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
Responder = Callable[[Message], "list[Headers] | None"]

_LIST_ACTIONS = {
    "queuestatus": ("Queue status will follow", "QueueStatusComplete"),
    "queuesummary": ("Queue summary will follow", "QueueSummaryComplete"),
    "coreshowchannels": ("Channels will follow", "CoreShowChannelsComplete"),
}


def default_response(action: Message) -> list[Headers]:
    """What a quiet Asterisk answers: Pong, empty lists, Success."""
    name = (action.get("Action") or "").lower()
    if name == "ping":
        return [[("Response", "Success"), ("Ping", "Pong"), ("Timestamp", "0.000000")]]
    if name == "logoff":
        return [[("Response", "Goodbye"), ("Message", "Thanks for all the fish.")]]
    if name in _LIST_ACTIONS:
        text, complete = _LIST_ACTIONS[name]
        return [[("Response", "Success"), ("EventList", "start"), ("Message", text)],
                [("Event", complete), ("EventList", "Complete"), ("ListItems", "0")]]
    if name == "originate":
        return [[("Response", "Success"), ("Message", "Originate successfully queued")]]
    return [[("Response", "Success")]]


def with_action_id(msgs: Iterable[Headers], aid: str | None) -> list[Headers]:
    """Put the client's ActionID in every answer message (after the first header)."""
    out = []
    for h in msgs:
        h = [(k, v) for k, v in h if k.lower() != "actionid"]
        if aid is not None:
            h.insert(1, ("ActionID", aid))
        out.append(h)
    return out


def utf8_cuts(data: bytes) -> list[int]:
    """Offsets just after the first byte of every multi-byte UTF-8 character."""
    return [i + 1 for i, b in enumerate(data) if b >= 0xC0]


class ReplayServer:
    def __init__(self, trace: AmiTrace | str | Path, *, clock=None,
                 sync: Callable[[], Awaitable[None]] | None = None,
                 chunk_size: int | None = None, split_utf8: bool = False,
                 drop_at: Iterable[int] = (), skip_after_drop: int = 0,
                 answer_pings: bool = True, responder: Responder | None = None,
                 honour_close: bool = False, epoch: float | None = None,
                 hold_until: str | None = None):
        self.trace = trace if isinstance(trace, AmiTrace) else read_ami(trace)
        self.clock = clock
        self.sync = sync
        self.chunk_size = chunk_size
        self.split_utf8 = split_utf8
        self.drop_at = sorted(set(drop_at))
        self.skip_after_drop = skip_after_drop
        self.answer_pings = answer_pings
        self.responder = responder
        self.honour_close = honour_close
        # after login, stream only once the client sent this action (e.g. its resync's
        # last list), as a real Asterisk's snapshot and later events are in order
        self.hold_until = hold_until.lower() if hold_until else None
        self.banner, self.login_response, self.script = self._split(self.trace)
        # Asterisk's action_login appends FullyBooted to its answer (when booted): sent with
        # the login answer on every login, not held back with the stream
        self.login_booted = b""
        if self.script and self.script[0][0] == "msg" and b"Event: FullyBooted" in self.script[0][2][:40]:
            self.login_booted = self.script.pop(0)[2]
        self.cursor = 0
        self.bytes_sent = 0
        self.connections = 0
        self.actions: list[Message] = []
        self.finished = asyncio.Event()  # the whole script has been sent
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # lockstep: clock = epoch + recorded t (default: the clock's time at the first message)
        self._t_base: float | None = epoch
        self.port = 0

    @staticmethod
    def _split(trace: AmiTrace):
        banner = b"Asterisk Call Manager/11.0.0\r\n"
        login_id = next((m.get("ActionID") for m in trace.sent
                         if (m.get("Action") or "").lower() == "login"), None)
        login_resp: Message | None = None
        script: list[tuple[str, float, bytes]] = []  # ("msg"|"close", t, raw)
        for e in trace.entries:
            if e.kind == "banner":
                banner = e.raw
            elif e.kind == "recv":
                if (login_resp is None and login_id is not None and e.message is not None
                        and e.message.get("Response") and e.message.get("ActionID") == login_id):
                    login_resp = e.message
                    continue
                script.append(("msg", e.t, e.raw))
            elif e.kind == "closed":
                script.append(("close", e.t, b""))
        if login_resp is None:
            login_resp = Message([("Response", "Success"), ("Message", "Authentication accepted")])
        return banner, login_resp, script

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "ReplayServer":
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def lockstep(self, gateway, deadline: float = 5.0) -> "ReplayServer":
        """``sync`` = wait until ``gateway`` received every byte sent (bounded in real time)."""
        async def sync() -> None:
            loop = asyncio.get_running_loop()
            end = loop.time() + deadline
            while gateway.bytes_received < self.bytes_sent and loop.time() < end:
                await asyncio.sleep(0.0002)

        self.sync = sync
        return self

    def drop_connections(self) -> None:
        for w in list(self._writers):
            w.transport.abort()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes, lock: asyncio.Lock) -> None:
        async with lock:
            pieces = [data]
            if self.split_utf8 or self.chunk_size:
                cuts = set(utf8_cuts(data)) if self.split_utf8 else set()
                if self.chunk_size:
                    cuts.update(range(self.chunk_size, len(data), self.chunk_size))
                edges = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
                pieces = [data[a:b] for a, b in zip(edges, edges[1:])]
            for piece in pieces:
                writer.write(piece)
                self.bytes_sent += len(piece)
                await writer.drain()
                if self.sync is not None:
                    await self.sync()
                elif len(pieces) > 1:
                    await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        lock = asyncio.Lock()
        released = asyncio.Event()
        closing = asyncio.Event()
        streamer: asyncio.Task | None = None
        try:
            await self._write(writer, self.banner, lock)
            parser = Parser()
            while not closing.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    self.actions.append(action)
                    name = (action.get("Action") or "").lower()
                    aid = action.get("ActionID")
                    if name == "login":
                        resp = with_action_id([self.login_response.headers], aid)[0]
                        await self._write(writer, encode(resp), lock)
                        if self.login_response.get("Response") != "Success":
                            closing.set()
                            break
                        if self.login_booted:
                            await self._write(writer, self.login_booted, lock)
                        if self.hold_until is None:
                            released.set()
                        streamer = asyncio.ensure_future(
                            self._stream(writer, lock, closing, released))
                        continue
                    if name == "ping" and not self.answer_pings:
                        continue
                    answer = self.responder(action) if self.responder else None
                    if answer is None:
                        answer = default_response(action)
                    for h in with_action_id(answer, aid):
                        await self._write(writer, encode(h), lock)
                    if name == self.hold_until:
                        released.set()
                    if name == "logoff":
                        closing.set()
                        break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if streamer is not None:
                streamer.cancel()
                try:
                    await streamer
                except (asyncio.CancelledError, Exception):
                    pass
            self._writers.discard(writer)
            writer.transport.abort()

    async def _stream(self, writer: asyncio.StreamWriter, lock: asyncio.Lock,
                      closing: asyncio.Event, released: asyncio.Event) -> None:
        await released.wait()
        if self.cursor and self.connections > 1:
            self.cursor = min(len(self.script), self.cursor + self.skip_after_drop)
        try:
            while self.cursor < len(self.script):
                if self.drop_at and self.cursor >= self.drop_at[0]:
                    self.drop_at.pop(0)
                    writer.transport.abort()
                    closing.set()
                    return
                kind, t, raw = self.script[self.cursor]
                if self.clock is not None and hasattr(self.clock, "advance"):
                    if self._t_base is None:
                        self._t_base = self.clock.seconds() - t
                    step = self._t_base + t - self.clock.seconds()
                    if step > 0:
                        self.clock.advance(step)
                self.cursor += 1
                if kind == "close":
                    if self.honour_close:
                        writer.transport.close()
                        closing.set()
                        return
                    continue
                await self._write(writer, raw, lock)
            self.finished.set()
        except ConnectionError:
            pass
        finally:
            # The client may hang up on the last message it was sent (a Shutdown event)
            # while we are still draining it: the script is done all the same.
            if all(kind == "close" for kind, _, _ in self.script[self.cursor:]):
                self.finished.set()
