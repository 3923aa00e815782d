"""Live feeds: the wallboard (from the "queuecalls" component) and screen pops (AMI).

``build_wallboard`` is pure: the queuecalls live snapshot + today's figures +
the agent users -> what the browser shows.  :class:`WallboardFeed` rebuilds it
when the tracker reports a change (coalesced, so a burst of ~180 AMI events
per call becomes one push) and publishes it to the ``wallboard`` SSE topic.
:class:`ScreenPop` turns ``AgentConnect`` for an agent's interface into a
``pop`` event carrying the caller's record on that agent's topic.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.clock import sleep
from callcenter.logs import mask_name, mask_number
from callcenter.queuecalls import agentstate
from callcenter.queuecalls.reducer import Fact, Finished, Joined
from callcenter.sites import RemoteLive

from . import data, today
from .lookups import audit_view

log = logging.getLogger(__name__)

STATES = agentstate.BOARD_STATES


def member_state(member: dict) -> str:
    """One of STATES for a queuecalls member dict.

    The state is the tracker's (:mod:`callcenter.queuecalls.agentstate`, the one
    vocabulary: ringing/on_call beat a pause, a pause beats wrap-up, wrap-up from
    LastCall + Wrapuptime on the clock); a bare device number (a member dict built
    from a raw event) goes through the same :func:`agentstate.agent_state`."""
    raw = member.get("state")
    if isinstance(raw, int):
        raw = agentstate.agent_state(status=raw, paused=bool(member.get("paused")), now=0.0)
    return agentstate.board_state(str(raw))


def _wait_of(caller: dict, now: float) -> float:
    entered = caller.get("entered_at")
    if isinstance(entered, (int, float)):
        return max(0.0, now - float(entered))
    if isinstance(entered, dt.datetime):
        if entered.tzinfo is None:
            entered = entered.replace(tzinfo=dt.timezone.utc)
        return max(0.0, now - entered.timestamp())
    return float(caller.get("wait") or 0.0)


def build_wallboard(live: dict | None, today: dict[str, dict], agents: list[dict], *, now: float,
                    target: float, tz: ZoneInfo, outbound: list[dict] | None = None,
                    servers: list[str] = ()) -> dict[str, Any]:
    """The wallboard document.  ``today`` maps queue -> summary (plus "" for all queues): the
    inbound hotline only.  ``outbound``: the dialer's figures per campaign
    (:func:`dialer.outbound.campaign_figures`), shown apart; None without the dialer.
    ``servers``: the Asterisk servers, each with its live figures (the live entries name
    theirs); the queues and totals are over all of them."""
    queues = []
    members_by_interface: dict[str, dict] = {}
    names = sorted(set(live or {}) | {q for q in today if q})
    for name in names:
        q = (live or {}).get(name) or {}
        waiting = [{"caller": c.get("caller_number_masked") or mask_number(c.get("caller_number", "")),
                    "wait": round(_wait_of(c, now), 1)} for c in q.get("waiting", [])
                   if c.get("direction", "inbound") == "inbound"]
        longest = max((c["wait"] for c in waiting), default=0.0)
        s = today.get(name) or {}
        queues.append({"name": name, "waiting": len(waiting), "longest_wait": longest,
                       "over_target": longest > target, "callers": waiting,
                       "offered": s.get("offered", 0), "answered": s.get("answered", 0),
                       "abandoned": s.get("abandoned", 0), "service_level": s.get("service_level"),
                       "asa_seconds": s.get("asa_seconds")})
        for m in q.get("members", []):
            iface = m.get("interface", "")
            entry = members_by_interface.setdefault(iface, {
                "interface": iface, "name": m.get("name") or iface, "state": member_state(m),
                "reason": m.get("reason") or "", "queues": []})
            entry["queues"].append(name)
            # busiest state wins when a member is in several queues
            order = agentstate.BUSIEST_FIRST
            st = member_state(m)
            if order.index(st) < order.index(entry["state"]):
                entry["state"], entry["reason"] = st, m.get("reason") or entry["reason"]
    for a in agents:
        iface = a.get("interface") or ""
        if iface and iface in members_by_interface:
            members_by_interface[iface]["name"] = a["name"]
            members_by_interface[iface]["username"] = a["username"]
        elif iface or live is not None:
            members_by_interface.setdefault(iface or f"user:{a['username']}", {
                "interface": iface, "name": a["name"], "username": a["username"],
                "state": "logged_out", "reason": "", "queues": []})
    agent_list = sorted(members_by_interface.values(), key=lambda m: (STATES.index(m["state"]), m["name"]))
    counts = {s: 0 for s in STATES}
    for m in agent_list:
        counts[m["state"]] += 1
    total = today.get("") or {}
    return {
        "at": dt.datetime.fromtimestamp(now, tz).isoformat(timespec="seconds"),
        "live": live is not None, "target": target, "queues": queues, "agents": agent_list,
        "agent_counts": counts,
        "totals": {"waiting": sum(q["waiting"] for q in queues),
                   "longest_wait": max((q["longest_wait"] for q in queues), default=0.0),
                   "offered": total.get("offered", 0), "answered": total.get("answered", 0),
                   "abandoned": total.get("abandoned", 0), "service_level": total.get("service_level"),
                   "asa_seconds": total.get("asa_seconds")},
        "outbound": [_outbound_row(r) for r in outbound or ()],
        "servers": [_server_row(name, live, now) for name in servers],
    }


def _server_row(name: str, live: dict | None, now: float) -> dict:
    """One Asterisk server's live figures (inbound callers; members counted once per interface)."""
    qs = (live or {}).values()
    waiting = [_wait_of(c, now) for q in qs for c in q.get("waiting", [])
               if c.get("server") == name and c.get("direction", "inbound") == "inbound"]
    talking = sum(1 for q in qs for c in q.get("talking", []) if c.get("server") == name)
    members = {m.get("interface") for q in qs for m in q.get("members", []) if m.get("server") == name}
    return {"server": name, "waiting": len(waiting), "longest_wait": round(max(waiting, default=0.0), 1),
            "talking": talking, "members": len(members)}


def _outbound_row(r: dict) -> dict:
    today, window = r.get("today") or r["total"], r["window"]
    return {"campaign": r["campaign"], "mode": r["mode"], "queue": r["queue"], "state": r["state"],
            "answered": today["answered"], "connected": today["connected"], "abandoned": today["abandoned"],
            "connect_p90": today["connect_seconds_p90"], "abandon_rate_window": window["abandon_rate"],
            "abandon_rate_total": r["total"]["abandon_rate"], "window_days": r["window_days"]}


def day_bounds(now: float, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    local = dt.datetime.fromtimestamp(now, tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(days=1)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


class WallboardFeed:
    """Keeps the latest wallboard and pushes it to the ``wallboard`` topic on every change.

    Today's figures are running totals (:mod:`.today`) fed by the tracker's ``finished``
    facts; the database is read once at start and again when the hospital's local day
    changes.  A load collects the facts that arrive meanwhile and applies, in order, the
    stored rows, the tracker's unwritten buffer (copied before the SELECT, so a batch
    written during the load is in one or the other) and those facts: each call counts
    once.  The agent users are cached for ``agents_ttl`` clock seconds.  So a snapshot
    runs no SQL between loads, whatever the day's traffic.  Without a tracker (no facts
    to follow) each snapshot reads the day from the database as before.  After every AMI
    login (``gateway.on_connect``, run after the tracker's resync) the day is reloaded
    once: calls recovered from ``queue_log`` are buffered without a fact.
    """

    def __init__(self, app, queuecalls=None, *, gateway=None, coalesce: float = 0.1, agents_ttl: float = 60.0,
                 outbound_ttl: float = 30.0):
        self.app = app
        self.queuecalls = queuecalls
        self.coalesce = coalesce
        self.agents_ttl = agents_ttl
        self.latest: dict | None = None
        self._pending: asyncio.Task | None = None
        self.pushes = 0
        self.loads = 0
        cfg = app.config.hospital
        self.tz = ZoneInfo(cfg.timezone)
        self.target = float(cfg.answer_target_seconds)
        self.short = float(cfg.short_abandon_seconds)
        self.figures: today.TodayFigures | None = None
        self._facts: list | None = []   # finished calls waiting for a load (None: applied directly)
        self._load_lock = asyncio.Lock()
        self._agents: list[dict] | None = None
        self._agents_at = 0.0
        self.outbound_ttl = outbound_ttl   # the dialer's per-campaign figures: one query per ttl
        self._outbound: list[dict] | None = None
        self._outbound_at = 0.0
        self._outbound_dirty = False   # a dialer call joined/left a queue since the last read
        if queuecalls is not None:
            queuecalls.subscribe(self._changed)
            if gateway is not None:
                # awaited after the tracker's resync: calls it recovered from queue_log after an
                # outage reach its buffer without a ``Finished`` fact, so reload once
                gateway.on_connect(self._reconnected)

    async def _reconnected(self) -> None:
        if self._facts is None:
            self._facts = []
        self._changed()

    def _changed(self, fact: Fact | None = None) -> None:
        if isinstance(fact, (Joined, Finished)):
            call = fact.record if isinstance(fact, Finished) else fact.call
            if call.direction == "outbound":
                self._outbound_dirty = True
        if isinstance(fact, Finished):
            self._finished(fact.record)
        if isinstance(fact, RemoteLive) and fact.finished and self._facts is None:
            self._facts = []  # another instance stored calls: today's figures are read again
        if self._pending is None or self._pending.done():
            self._pending = self.app.spawn(self._refresh_later())  # None once the app is closed

    def _finished(self, rec) -> None:
        if self._facts is None and self.figures is not None and self._stale(self.app.clock.seconds()):
            self._facts = []  # the local day changed: the next snapshot reloads
        if self._facts is not None:
            self._facts.append(rec)
        else:
            self.figures.apply_record(rec)

    def _stale(self, now: float) -> bool:
        f = self.figures
        return f is None or not (f.start <= now < f.end)

    def close(self) -> None:
        """Drop a coalescing refresh that is still waiting: nobody will see it (the app is
        closing), and on a test's clock its wait may never end."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()

    async def _refresh_later(self) -> None:
        await sleep(self.app.clock, self.coalesce)
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - the next change tries again
            log.exception("wallboard refresh failed")

    def _live(self, server: str | None = None) -> dict | None:
        if self.queuecalls is None:
            return None
        try:
            live = self.queuecalls.live()
            if server is None:
                return live
            return {queue: {k: [e for e in q[k] if e.get("server") == server]
                            for k in ("waiting", "talking", "members")} for queue, q in live.items()}
        except Exception:  # noqa: BLE001
            log.exception("queuecalls.live() failed")
            return None

    async def _today(self, now: float) -> dict[str, dict]:
        """Today's summaries by queue ("" = all), (re)loading when due."""
        if self._facts is not None or self._stale(now):
            async with self._load_lock:
                if self._facts is not None or self._stale(now):
                    await self._load(now)
        return self.figures.summaries()

    async def _load(self, now: float) -> None:
        if self._facts is None:
            self._facts = []
        start, end = day_bounds(now, self.tz)
        buffered = list(self.queuecalls.buffer)  # before the SELECT
        rows = await self.app.db.run(today.load_rows, start, end)
        figures = today.TodayFigures(start.timestamp(), end.timestamp(), self.target, self.short)
        for r in rows or ():
            figures.apply_row(r)
        for rec in buffered:
            figures.apply_record(rec)
        for rec in self._facts:
            figures.apply_record(rec)
        self.figures, self._facts = figures, None
        self.loads += 1
        log.info("wallboard: %d queue calls of today loaded", len(figures.calls))

    async def _agent_users(self, now: float) -> list[dict]:
        if self._agents is None or not (self._agents_at <= now < self._agents_at + self.agents_ttl):
            self._agents = await self.app.db.run(data.agent_users)
            self._agents_at = now
        return self._agents

    async def _today_from_db(self, now: float, server: str | None = None) -> dict[str, dict]:
        start, end = day_bounds(now, self.tz)
        rows = await self.app.db.run(today.load_rows, start, end, server)
        figures = today.TodayFigures(start.timestamp(), end.timestamp(), self.target, self.short)
        for r in rows or ():
            figures.apply_row(r)
        return figures.summaries()

    async def snapshot(self, server: str | None = None) -> dict:
        """The wallboard; ``server``: one Asterisk server's (its stored calls of today, read
        afresh, and its live entries) instead of all of them."""
        now = self.app.clock.seconds()
        if self.queuecalls is None or server is not None:
            summaries = await self._today_from_db(now, server)
        else:
            summaries = await self._today(now)
        agents = await self._agent_users(now)
        servers = [s.name for s in self.app.config.ami_servers]
        return build_wallboard(self._live(server), summaries, agents, now=now, target=self.target, tz=self.tz,
                               outbound=await self._outbound_figures(now),
                               servers=[server] if server is not None else servers)

    async def _outbound_figures(self, now: float) -> list[dict] | None:
        """Read when a dialer call changed (the tracker's outbound facts), at most once per
        ``outbound_ttl``: no dialer traffic, no SQL."""
        due = self._outbound_dirty and not (self._outbound_at <= now < self._outbound_at + self.outbound_ttl)
        if self._outbound is None or due or (self.queuecalls is None and self._outbound_at + self.outbound_ttl <= now):
            self._outbound_dirty = False
            start, _ = day_bounds(now, self.tz)
            dialer = self.app.config.dialer
            self._outbound = await self.app.db.run(data.outbound_figures, now, start.timestamp(),
                                                   float(dialer.predictive_window_days),
                                                   float(dialer.abandon_connect_seconds))
            self._outbound_at = now
        return self._outbound

    async def refresh(self) -> dict:
        self.latest = await self.snapshot()
        self.pushes += 1
        self.app.broker.publish("wallboard", "wallboard", self.latest)
        return self.latest


class ScreenPop:
    """``AgentConnect`` on an agent's interface -> ``pop`` to that agent's browser."""

    def __init__(self, app, gateway=None):
        from dialer.tracker import LinkedAttempts

        self.app = app
        self.region = app.config.hospital.region
        self.tz = ZoneInfo(app.config.hospital.timezone)
        self.current: dict[str, dict] = {}   # username -> last pop (for a page reload)
        self.dialer = LinkedAttempts()       # outbound dialer calls: Linkedid -> attempt
        self.dialer_cid = _cid_number(app.config.dialer.caller_id)
        if gateway is not None:
            gateway.subscribe(self.on_ami)

    def on_ami(self, msg, t: float | None = None) -> None:
        event = msg.event
        if event == "AgentConnect":
            self.app.spawn(self._pop(msg))
        elif event == "AgentComplete":
            self.app.spawn(self._complete(msg))
        elif event == "VarSet":
            self.dialer.feed(msg)

    async def _pop(self, msg) -> None:
        iface = msg.get("Interface") or ""
        number = msg.get("CallerIDNum") or ""
        name = msg.get("CallerIDName") or ""
        if number in ("<unknown>",):
            number = ""
        if name in ("<unknown>",):
            name = ""
        now = dt.datetime.fromtimestamp(self.app.clock.seconds(), dt.timezone.utc)

        attempt = self.dialer.attempt_for(msg)
        # web restarted mid-call (VarSet not seen): look the call up, only for calls from our caller ID
        lookup = attempt is None and bool(self.dialer_cid) and number == self.dialer_cid

        def load(s):
            from . import dialer_calls

            aid = attempt
            if lookup:
                from dialer.store import attempt_by_call

                aid = attempt_by_call(s, [msg.get("Linkedid") or "", msg.get("Uniqueid") or ""])
            ctx = dialer_calls.call_context(s, aid) if aid is not None else None
            num, nm = (ctx["phone"], ctx["name"] or name) if ctx else (number, name)
            users = data.users_with_interface(s, iface)
            record = data.patient_record(s, num, nm, self.region, now, self.tz)
            for username in users:  # each agent the record is shown to has viewed it
                audit_view(s, username, record, via="screen_pop",
                           call=msg.get("Linkedid") or msg.get("Uniqueid") or "")
            return users, record, ctx

        try:
            users, record, dialer = await self.app.db.run(load)
        except Exception:  # noqa: BLE001
            log.exception("screen pop lookup failed for interface %s", iface)
            return
        pop = {"uniqueid": msg.get("Linkedid") or msg.get("Uniqueid") or "", "queue": msg.get("Queue") or "",
               "interface": iface, "hold_time": msg.get("HoldTime"), "record": record, "dialer": dialer}
        for username in users:
            self.current[username] = pop
            self.app.broker.publish(f"agent:{username}", "pop", pop)
        log.info("screen pop for %s (%s) to %d user(s)", mask_name(name), mask_number(number), len(users))

    async def _complete(self, msg) -> None:
        iface = msg.get("Interface") or ""
        users = await self.app.db.run(data.users_with_interface, iface)
        for username in users:
            self.app.broker.publish(f"agent:{username}", "complete",
                                    {"queue": msg.get("Queue") or "", "talk_time": msg.get("TalkTime")})


def _cid_number(caller_id: str) -> str:
    """``"City Hospital" <02100000000>`` -> ``02100000000``."""
    caller_id = caller_id or ""
    if "<" in caller_id and caller_id.endswith(">"):
        return caller_id.rsplit("<", 1)[1][:-1].strip()
    return caller_id.strip()
