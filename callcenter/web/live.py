"""Live feeds: the wallboard (from the "queuecalls" component) and screen pops (AMI).

``build_wallboard`` is pure: the queuecalls live snapshot + today's figures +
the agent users -> what the browser shows.  :class:`WallboardFeed` rebuilds it
when the tracker reports a change (coalesced, so a burst of ~180 AMI events
per call becomes one push) and publishes what changed to the ``wallboard`` SSE topic.
(The agent's screen pop: :mod:`.screenpop`.)
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.clock import rate, sleep
from callcenter.config import ConfigError
from callcenter.logs import mask_number
from callcenter.queuecalls import agentstate
from callcenter.queuecalls.reducer import Answered, Fact, Finished, Joined
from callcenter.sites import RemoteLive

from . import data, satisfaction_today, today

log = logging.getLogger(__name__)

STATES = agentstate.BOARD_STATES
CLOCK_KEYS = {"at", "now", "clock"}  # change with every snapshot; the pages tick them themselves


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


@dataclass(frozen=True)
class Thresholds:
    """The wallboard's colours: service level green at or above ``sl_goal`` ([web]
    staffing_goal), amber down to ``sl_amber``, red below; abandon rate amber above
    ``abandon_amber``, red above ``abandon_red`` ([wallboard])."""

    sl_goal: float = 0.8
    sl_amber: float = 0.6
    abandon_amber: float = 0.05
    abandon_red: float = 0.10

    @classmethod
    def from_config(cls, config) -> "Thresholds":
        w = config.wallboard
        th = cls(float(config.web.staffing_goal), float(w.sl_amber), float(w.abandon_amber),
                 float(w.abandon_red))
        if not th.sl_amber < th.sl_goal:
            raise ConfigError(f"[wallboard] sl_amber = {th.sl_amber} must be below [web] staffing_goal = "
                              f"{th.sl_goal} (amber is between them)")
        if not th.abandon_amber < th.abandon_red:
            raise ConfigError(f"[wallboard] abandon_amber = {th.abandon_amber} must be below "
                              f"abandon_red = {th.abandon_red}")
        return th

    def service_level(self, v: float | None) -> str | None:
        """``good``/``warn``/``bad`` (green/amber/red), None without a figure."""
        if v is None:
            return None
        return "good" if v >= self.sl_goal else "warn" if v >= self.sl_amber else "bad"

    def abandon_rate(self, v: float | None) -> str | None:
        if v is None:
            return None
        return "bad" if v > self.abandon_red else "warn" if v > self.abandon_amber else "good"


def _figures(s: dict, th: Thresholds) -> dict:
    """Today's figures of a queue (or all) as the board shows them, with their colours."""
    sl, ab = s.get("service_level"), s.get("abandon_rate")
    return {"offered": s.get("offered", 0), "answered": s.get("answered", 0),
            "abandoned": s.get("abandoned", 0), "service_level": sl, "sl_band": th.service_level(sl),
            "abandon_rate": ab, "abandon_band": th.abandon_rate(ab), "asa_seconds": s.get("asa_seconds")}


def _waiting_list(name: str, q: dict, now: float) -> list[dict]:
    """Inbound callers waiting in one queue, in app_queue's order (higher ``QUEUE_PRIO``
    first, then first come): ``position`` is that rank now (the join's Position goes stale
    as callers ahead leave); ``urgent`` = a priority above 0 (the IVR's urgent complaints)."""
    inbound = [c for c in q.get("waiting", []) if c.get("direction", "inbound") == "inbound"]
    inbound.sort(key=lambda c: (-int(c.get("priority") or 0), -_wait_of(c, now)))
    return [{"queue": name, "position": i + 1,
             "caller": c.get("caller_number_masked") or mask_number(c.get("caller_number", "")),
             "wait": round(_wait_of(c, now), 1), "urgent": int(c.get("priority") or 0) > 0}
            for i, c in enumerate(inbound)]


def build_wallboard(live: dict | None, today: dict[str, dict], agents: list[dict], *, now: float,
                    target: float, tz: ZoneInfo, outbound: list[dict] | None = None,
                    thresholds: Thresholds = Thresholds(), answered_by: dict[str, int] | None = None,
                    series: list[dict] | None = None, rate: float = 1.0,
                    satisfaction: dict[str, dict] | None = None, servers: list[str] = ()) -> dict[str, Any]:
    """The wallboard document.  ``today`` maps queue -> summary (plus "" for all queues): the
    inbound hotline only.  ``outbound``: the dialer's figures per campaign
    (:func:`dialer.outbound.campaign_figures`), shown apart; None without the dialer.
    ``answered_by``: interface -> calls answered today; ``series``: today per half hour
    (:meth:`.today.TodayFigures.half_hours`); ``rate``: clock seconds per real second, so the
    browser's timers count at the clock's pace between pushes.  Each agent carries
    ``call`` (caller, queue, answered at) while talking; ``since`` is stamped by the feed.
    ``satisfaction``: today's post-call ratings per queue (:mod:`.satisfaction_today`).
    ``servers``: the Asterisk servers, each with its live figures (the live entries name
    theirs); the queues and totals are over all of them."""
    sat = satisfaction or {}
    queues = []
    members_by_interface: dict[str, dict] = {}
    names = sorted(set(live or {}) | {q for q in today if q})
    callers: list[dict] = []
    for name in names:
        q = (live or {}).get(name) or {}
        waiting = _waiting_list(name, q, now)
        callers.extend(waiting)
        longest = max((c["wait"] for c in waiting), default=0.0)
        queues.append({"name": name, "waiting": len(waiting), "longest_wait": longest,
                       "over_target": longest > target,
                       "callers": [{"caller": c["caller"], "wait": c["wait"]} for c in waiting],
                       **_figures(today.get(name) or {}, thresholds), **satisfaction_today.columns(sat, name),
                       "agents": {}})
        talks = {c.get("agent"): c for c in q.get("talking", []) if c.get("agent")}
        for m in q.get("members", []):
            iface = m.get("interface", "")
            entry = members_by_interface.setdefault(iface, {
                "interface": iface, "name": m.get("name") or iface, "username": "", "state": member_state(m),
                "reason": m.get("reason") or "", "queues": [], "call": None})
            entry["queues"].append(name)
            # busiest state wins when a member is in several queues
            order = agentstate.BUSIEST_FIRST
            st = member_state(m)
            if order.index(st) < order.index(entry["state"]):
                entry["state"], entry["reason"] = st, m.get("reason") or entry["reason"]
            talk = talks.get(iface)
            if talk is not None and talk.get("since") is not None:
                entry["call"] = {"queue": name, "caller": talk.get("caller_number_masked") or "",
                                 "since": talk["since"], "outbound": talk.get("direction") == "outbound"}
    for a in agents:
        iface = a.get("interface") or ""
        if iface and iface in members_by_interface:
            members_by_interface[iface]["name"] = a["name"]
            members_by_interface[iface]["username"] = a["username"]
        elif iface or live is not None:
            members_by_interface.setdefault(iface or f"user:{a['username']}", {
                "interface": iface, "name": a["name"], "username": a["username"],
                "state": "logged_out", "reason": "", "queues": [], "call": None})
    for m in members_by_interface.values():
        if m["state"] != "on_call":
            m["call"] = None  # a talk that ended a moment ago (wrap-up) is not a call
        if m["state"] != "paused":
            m["reason"] = ""
        m["answered_today"] = (answered_by or {}).get(m["interface"], 0) if m["interface"] else 0
    agent_list = sorted(members_by_interface.values(), key=lambda m: (STATES.index(m["state"]), m["name"]))
    counts = {s: 0 for s in STATES}
    for m in agent_list:
        counts[m["state"]] += 1
    by_queue = {q["name"]: q for q in queues}
    for m in agent_list:
        for name in m["queues"]:
            per = by_queue[name]["agents"]
            per[m["state"]] = per.get(m["state"], 0) + 1
    callers.sort(key=lambda c: (not c["urgent"], -c["wait"]))
    total = today.get("") or {}
    local = dt.datetime.fromtimestamp(now, tz)
    return {
        "at": local.isoformat(timespec="seconds"), "now": now, "clock": local.strftime("%H:%M:%S"),
        "timezone": tz.key, "rate": rate,
        "live": live is not None, "target": target, "queues": queues, "agents": agent_list,
        "agent_counts": counts, "callers": callers,
        "thresholds": {"sl_goal": thresholds.sl_goal, "sl_amber": thresholds.sl_amber,
                       "abandon_amber": thresholds.abandon_amber, "abandon_red": thresholds.abandon_red},
        "totals": {"waiting": sum(q["waiting"] for q in queues),
                   "longest_wait": max((q["longest_wait"] for q in queues), default=0.0),
                   **_figures(total, thresholds), **satisfaction_today.columns(sat, "")},
        "series": series or [],
        "outbound": [_outbound_row(r) for r in outbound or ()],
        "servers": [_server_row(name, live, now) for name in servers],
    }


class StateClock:
    """Since when each agent has been in its state, as the feed saw it change: a call's
    ``since`` is its answer time; otherwise the first snapshot that showed the new state
    (pushes follow every change within the coalescing delay).  After a restart the
    states found are timed from then (Asterisk does not say since when)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, float]] = {}

    def stamp(self, agents: list[dict], now: float) -> None:
        for a in agents:
            key = a["interface"] or a.get("username", "")
            state = a["state"] + ":" + a["reason"]  # a new pause reason restarts the timer
            old = self.seen.get(key)
            since = old[1] if old is not None and old[0] == state else now
            if a["call"] is not None:
                since = a["call"]["since"]
            self.seen[key] = (state, since)
            a["since"] = since


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


def _apply(figures: today.TodayFigures, item) -> None:
    if isinstance(item, dict):
        figures.apply_answered(item)
    else:
        figures.apply_record(item)


def day_bounds(now: float, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    local = dt.datetime.fromtimestamp(now, tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(days=1)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


class WallboardFeed:
    """Keeps the latest wallboard and pushes it to the ``wallboard`` topic on every change.

    Today's figures are running totals (:mod:`.today`) fed by the tracker's ``answered``
    and ``finished`` facts (a call counts as answered when it is answered); the database is read once at start and again when the hospital's local day
    changes.  A load collects the facts that arrive meanwhile and applies, in order, the
    stored rows, the tracker's unwritten buffer (copied before the SELECT, so a batch
    written during the load is in one or the other), the calls being talked and those
    facts: each call counts once.  The agent users are cached for ``agents_ttl`` clock seconds.  So a snapshot
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
        self.latest: dict | None = None   # the last document pushed, with its version ``v``
        self.version = 0
        self._parts: dict[str, str] = {}  # its top-level parts as JSON, to find what changed
        self._pending: asyncio.Task | None = None
        self.pushes = 0
        self.loads = 0
        cfg = app.config.hospital
        self.tz = ZoneInfo(cfg.timezone)
        self.target = float(cfg.answer_target_seconds)
        self.short = float(cfg.short_abandon_seconds)
        self.thresholds = Thresholds.from_config(app.config)
        self.chart_start = int(app.config.wallboard.chart_start.split(":")[0])
        self.states = StateClock()
        self.figures: today.TodayFigures | None = None
        # finished records and answered calls waiting for a load (None: applied directly)
        self._facts: list | None = []
        self._load_lock = asyncio.Lock()
        self._agents: list[dict] | None = None
        self._agents_at = 0.0
        self.outbound_ttl = outbound_ttl   # the dialer's per-campaign figures: one query per ttl
        self._outbound: list[dict] | None = None
        self._outbound_at = 0.0
        self._outbound_dirty = False   # a dialer call joined/left a queue since the last read
        self.satisfaction = satisfaction_today.SatisfactionToday(app, app.domain.ratings, self._changed)
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
            self._count(fact.record)
        elif isinstance(fact, Answered):
            c = fact.call  # the tracker's live call, still changing: keep what it is now
            self._count({"direction": c.direction, "uniqueid": c.uniqueid, "queue": c.queue, "leg": c.leg,
                         "entered_at": c.entered_at, "since": c.answered_at, "agent": c.agent,
                         "uncertain": c.uncertain})
        if isinstance(fact, RemoteLive) and fact.finished and self._facts is None:
            self._facts = []  # another instance stored calls: today's figures are read again
        if self._pending is None or self._pending.done():
            self._pending = self.app.spawn(self._refresh_later())  # None once the app is closed

    def _count(self, item) -> None:
        """A finished record, or an answered call (a dict: :meth:`today.TodayFigures.apply_answered`)."""
        if self._facts is None and self.figures is not None and self._stale(self.app.clock.seconds()):
            self._facts = []  # the local day changed: the next snapshot reloads
        if self._facts is not None:
            self._facts.append(item)
        else:
            _apply(self.figures, item)

    def _stale(self, now: float) -> bool:
        f = self.figures
        return f is None or not (f.start <= now < f.end)

    def close(self) -> None:
        """Drop a coalescing refresh that is still waiting: nobody will see it (the app is
        closing), and on a test's clock its wait may never end."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self.satisfaction.close()

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

    async def _today(self, now: float) -> today.TodayFigures:
        """Today's figures, (re)loading when due."""
        if self._facts is not None or self._stale(now):
            async with self._load_lock:
                if self._facts is not None or self._stale(now):
                    await self._load(now)
        return self.figures

    async def _load(self, now: float) -> None:
        if self._facts is None:
            self._facts = []
        start, end = day_bounds(now, self.tz)
        buffered = list(self.queuecalls.buffer)  # before the SELECT
        talking = [t for q in (self._live() or {}).values() for t in q.get("talking", [])]
        rows = await self.app.db.run(today.load_rows, start, end)
        figures = today.TodayFigures(start.timestamp(), end.timestamp(), self.target, self.short)
        for r in rows or ():
            figures.apply_row(r)
        for rec in buffered:
            figures.apply_record(rec)
        for call in talking:
            figures.apply_answered(call)
        for item in self._facts:
            _apply(figures, item)
        self.figures, self._facts = figures, None
        self.loads += 1
        log.info("wallboard: %d queue calls of today loaded", len(figures.calls))

    async def _agent_users(self, now: float) -> list[dict]:
        if self._agents is None or not (self._agents_at <= now < self._agents_at + self.agents_ttl):
            self._agents = await self.app.db.run(data.agent_users)
            self._agents_at = now
        return self._agents

    async def _today_from_db(self, now: float, server: str | None = None) -> today.TodayFigures:
        start, end = day_bounds(now, self.tz)
        rows = await self.app.db.run(today.load_rows, start, end, server)
        figures = today.TodayFigures(start.timestamp(), end.timestamp(), self.target, self.short)
        for r in rows or ():
            figures.apply_row(r)
        return figures

    async def snapshot(self, server: str | None = None) -> dict:
        """The wallboard; ``server``: one Asterisk server's (its stored calls of today, read
        afresh, and its live entries) instead of all of them."""
        now = self.app.clock.seconds()
        if self.queuecalls is None or server is not None:
            figures = await self._today_from_db(now, server)
        else:
            figures = await self._today(now)
        agents = await self._agent_users(now)
        servers = [s.name for s in self.app.config.ami_servers]
        board = build_wallboard(self._live(server), figures.summaries(), agents, now=now, target=self.target,
                                tz=self.tz, outbound=await self._outbound_figures(now),
                                thresholds=self.thresholds, answered_by=figures.by_agent,
                                series=figures.half_hours(now, self.tz, self.chart_start),
                                rate=rate(self.app.clock),
                                satisfaction=await self.satisfaction.figures(now, *day_bounds(now, self.tz)),
                                servers=[server] if server is not None else servers)
        self.states.stamp(board["agents"], now)
        return board

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
        """A new snapshot; pushed as a ``patch`` of the parts that changed (``set``: top-level
        keys, ``base`` -> ``v`` versions), serialised once for every client by the broker.  A
        snapshot where only the clock moved is kept (``latest``) but not pushed: the pages
        advance their clocks themselves.  A client whose version is not the patch's base
        reconnects and starts from the full document (:func:`views_live.wallboard_events`)."""
        board = await self.snapshot()
        parts = {k: json.dumps(v, sort_keys=True, default=str) for k, v in board.items()}
        changed = [k for k, part in parts.items() if self._parts.get(k) != part]
        if self.latest is not None and set(changed) <= CLOCK_KEYS:
            self.latest = {**board, "v": self.version}
            return self.latest
        base = self.version if self.latest is not None else None
        self.version += 1
        self.latest, self._parts = {**board, "v": self.version}, parts
        self.pushes += 1
        if base is not None:
            self.app.broker.publish("wallboard", "patch", {"base": base, "v": self.version,
                                                           "set": {k: board[k] for k in changed}})
        return self.latest
