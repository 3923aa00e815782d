"""One short AMI session that gathers what ``callcenter doctor`` judges.

The doctor does not use the service's gateway (no reconnects, no subscribers): it
logs in once, sends only harmless actions (``ListCommands``, ``QueueStatus``,
``ShowDialPlan``, ``CoreSettings``, ``Ping`` and a global ``Setvar`` of
``CALLCENTER_DOCTOR``, whose ``VarSet`` event shows the ``dialplan`` read class),
and records the replies in :class:`AmiFacts`.  Judging them is pure
(:mod:`callcenter.doctor.checks`).  The secret is sent, never logged or kept.
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from callcenter.ami.codec import Message, Parser, ProtocolError, encode


@dataclass
class AmiFacts:
    """What the AMI said.  ``error``: why the session did not get as far as logging in."""

    address: str
    error: str | None = None
    banner: str | None = None
    commands: set[str] | None = None
    events_seen: set[str] = field(default_factory=set)  # privilege classes of events received
    queues: dict[str, dict[str, str]] | None = None  # QueueParams by queue
    queue_status_error: str | None = None
    dialplan: list[dict[str, str]] | None = None  # ListDialplan events
    dialplan_error: str | None = None
    run_user: str | None = None  # CoreSettings CoreRunUser
    ping_timestamp: float | None = None
    ping_local: float | None = None  # our clock when the Pong arrived


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float):
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.parser = Parser(expect_banner=True)
        self.pending: list[Message] = []
        self.events: list[Message] = []
        self.ids = itertools.count(1)

    async def banner(self) -> str:
        while self.parser.banner is None:
            self.pending += self.parser.feed(await self._read())
        return self.parser.banner

    async def _read(self) -> bytes:
        data = await asyncio.wait_for(self.reader.read(65536), self.timeout)
        if not data:
            raise ConnectionError("Asterisk closed the AMI connection")
        return data

    async def _next(self) -> Message:
        while not self.pending:
            self.pending += self.parser.feed(await self._read())
        return self.pending.pop(0)

    async def action(self, name: str, **headers: str) -> list[Message]:
        """The response, then (for list actions) the items up to the ``EventList: Complete`` event."""
        aid = f"doctor-{next(self.ids)}"
        self.writer.write(encode([("Action", name), ("ActionID", aid), *headers.items()]))
        await self.writer.drain()
        out: list[Message] = []
        while True:
            msg = await self._next()
            if msg.action_id != aid:
                if msg.event:
                    self.events.append(msg)
                continue
            out.append(msg)
            first = out[0]
            if first.get("Response") != "Success" or (first.get("EventList") or "").lower() != "start":
                return out
            if (msg.get("EventList") or "").lower() == "complete":
                return out

    async def drain_events(self, seconds: float) -> None:
        """What arrives within ``seconds`` (bounded: a busy PBX never goes quiet)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            while (left := end - loop.time()) > 0:
                data = await asyncio.wait_for(self.reader.read(65536), left)
                if not data:
                    break
                self.pending += self.parser.feed(data)
        except asyncio.TimeoutError:
            pass
        self.events += [m for m in self.pending if m.event]
        self.pending = [m for m in self.pending if not m.event]


def _error(reply: list[Message]) -> str | None:
    first = reply[0]
    return None if first.get("Response") == "Success" else (first.get("Message") or first.get("Response") or "?")


async def probe(host: str, port: int, username: str, secret: str, *, now, timeout: float = 5.0) -> AmiFacts:
    """Log in and ask; every failure is recorded in the facts, never raised."""
    facts = AmiFacts(address=f"{host}:{port}")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        facts.error = f"cannot connect to {facts.address}: {exc.__class__.__name__}: {exc}"
        return facts
    s = _Session(reader, writer, timeout)
    try:
        facts.banner = await s.banner()
        if not facts.banner.startswith("Asterisk Call Manager/"):
            facts.error = f"{facts.address} is not an AMI (banner {facts.banner[:60]!r})"
            return facts
        login = await s.action("Login", Username=username, Secret=secret, Events="on")
        if _error(login):
            facts.error = f"login as {username!r} refused: {_error(login)}"
            return facts
        cmds = await s.action("ListCommands")
        facts.commands = {k for k, _ in cmds[0].headers if k not in ("Response", "ActionID", "")}
        qs = await s.action("QueueStatus")
        facts.queue_status_error = _error(qs)
        if facts.queue_status_error is None:
            facts.queues = {m.get("Queue") or "": m.as_dict() for m in qs if m.event == "QueueParams"}
        dp = await s.action("ShowDialPlan")
        facts.dialplan_error = _error(dp)
        if facts.dialplan_error is None:
            facts.dialplan = [m.as_dict() for m in dp if m.event == "ListDialplan"]
        cs = await s.action("CoreSettings")
        if _error(cs) is None:
            facts.run_user = cs[0].get("CoreRunUser") or ""
        await s.action("Setvar", Variable="CALLCENTER_DOCTOR", Value=f"{now():.0f}")
        ping = await s.action("Ping")
        facts.ping_local = now()
        if _error(ping) is None and ping[0].get("Timestamp"):
            facts.ping_timestamp = float(ping[0]["Timestamp"])
        await s.drain_events(0.3)
        for ev in s.events:
            facts.events_seen |= {c for c in (ev.get("Privilege") or "").split(",") if c and c != "all"}
        await s.action("Logoff")
    except (OSError, ConnectionError, asyncio.TimeoutError, ProtocolError) as exc:
        facts.error = facts.error or f"AMI session with {facts.address} failed: {exc.__class__.__name__}: {exc}"
    finally:
        writer.close()
    return facts
