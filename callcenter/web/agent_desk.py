"""The agent's own state on their desk: what it is, since when, why paused, when wrap-up ends.

The state is the tracker's (:mod:`callcenter.queuecalls.agentstate`, the one vocabulary),
the busiest over the agent's queues; ``since`` is when this process first saw the agent
in that state (with that pause reason).  ``wrapup_ends`` is the tracker's ``LastCall`` +
wrap-up time (the queue's ``wrapuptime`` as Asterisk reads queues.conf, or the member's
own): the desk counts it down.  The tracker's changes are coalesced into one ``status``
push per watched agent whose state changed (topic ``agent:<username>``).  Times are the
injected clock's; ``rate`` is how fast it runs against the wall clock (a time-scaled
simulator), so the browser's timers tick at the same pace.
"""
from __future__ import annotations

import logging
from typing import Any

from callcenter.clock import ScaledClock, sleep
from callcenter.queuecalls import agentstate

from .live import member_state
from .pause_reasons import PauseReasons

log = logging.getLogger(__name__)


def extension(interface: str) -> str:
    """The number people use for a member interface: ``Local/1001@sim-agent/n`` and
    ``PJSIP/1001`` -> ``1001``."""
    resource = interface.split("/", 1)[1] if "/" in interface else interface
    return resource.split("@", 1)[0].split("/", 1)[0]


def own_state(members: list[dict]) -> tuple[str, str, float | None]:
    """(state, pause reason code, wrap-up end) of one interface over its queues' members."""
    if not members:
        return "logged_out", "", None
    order = agentstate.BUSIEST_FIRST
    states = sorted(((member_state(m), m) for m in members), key=lambda sm: order.index(sm[0]))
    state, top = states[0]
    reason = next((m.get("reason") or "" for st, m in states if m.get("paused")), "") if state == "paused" else ""
    ends = [m["wrapup_ends"] for st, m in states if st == "wrap_up" and m.get("wrapup_ends")]
    return state, reason, (max(ends) if state == "wrap_up" and ends else None)


class AgentDesk:
    def __init__(self, app, live: Any, reasons: PauseReasons, *, coalesce: float = 0.05):
        self.app = app
        self.live = live
        self.reasons = reasons
        self.coalesce = coalesce
        self.rate = app.clock.scale if isinstance(app.clock, ScaledClock) else 1.0
        self._since: dict[str, tuple[tuple[str, str], float]] = {}   # interface -> ((state, reason), t)
        self.watching: dict[str, tuple[Any, str]] = {}                # username -> (user, lang)
        self._last: dict[str, tuple] = {}
        self._pending = None
        live.subscribe(self._changed)

    # -- the document ------------------------------------------------------------------
    def _members(self) -> dict[str, list[tuple[str, dict]]]:
        out: dict[str, list[tuple[str, dict]]] = {}
        for queue, q in (self.live.live() or {}).items():
            for m in q.get("members", []):
                out.setdefault(m.get("interface") or "", []).append((queue, m))
        return out

    def _since_of(self, interface: str, key: tuple[str, str], now: float) -> float:
        seen = self._since.get(interface)
        if seen is None or seen[0] != key:
            self._since[interface] = (key, now)
            return now
        return seen[1]

    def status(self, user, lang: str, queues: list[str]) -> dict:
        """This agent's desk status: own state, per-queue membership (``queues``: those the
        agent may log in to, in order)."""
        now = self.app.clock.seconds()
        mine = self._members().get(user.interface, []) if user.interface else []
        state, reason, ends = own_state([m for _, m in mine])
        by_queue = {q: m for q, m in mine}
        names = list(queues) + [q for q in by_queue if q not in queues]
        rows = []
        for q in names:
            m = by_queue.get(q)
            code = (m.get("reason") or "") if m and m.get("paused") else ""
            rows.append({"queue": q, "member": m is not None, "paused": bool(m and m.get("paused")),
                         "state": member_state(m) if m else "logged_out",
                         "reason": code, "reason_label": self.reasons.label(code, lang) if code else ""})
        since = self._since_of(user.interface or f"user:{user.username}", (state, reason), now)
        call = self.app.screenpop.calls.get(user.username) or {}
        if (state, call.get("state")) in (("on_call", "connected"), ("ringing", "ringing")):
            since = call["at"]   # the call's own moment (the desk may have opened mid-call)
        return {"interface": user.interface, "extension": extension(user.interface) if user.interface else "",
                "name": user.display_name or user.username, "state": state, "since": since,
                "reason": reason, "reason_label": self.reasons.label(reason, lang) if reason else "",
                "wrapup_ends": ends, "now": now, "rate": self.rate, "queues": rows,
                "live": self.live.live() is not None, "ami_connected": bool(self.app.ami.connected),
                "queue_config_error": self.live.queue_config_error,
                "pause_reasons": self.reasons.options(lang)}

    # -- pushes -------------------------------------------------------------------------
    def watch(self, user, lang: str) -> None:
        """Push this agent's status from now on (their desk is open)."""
        self.watching[user.username] = (user, lang)

    def changed(self) -> None:
        """Something the status reads changed outside the tracker (the call on screen)."""
        self._changed()

    def _changed(self, fact=None) -> None:
        if self._pending is None or self._pending.done():
            self._pending = self.app.spawn(self._push_later())

    def close(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()

    async def _push_later(self) -> None:
        await sleep(self.app.clock, self.coalesce)
        try:
            self.push()
        except Exception:  # noqa: BLE001 - the next change tries again
            log.exception("agent desk status push failed")

    def push(self) -> None:
        from .views_live import _queues

        queues = _queues(self.app)
        for username, (user, lang) in list(self.watching.items()):
            doc = self.status(user, lang, queues)
            key = (doc["state"], doc["since"], doc["reason"], doc["wrapup_ends"],
                   tuple((r["queue"], r["member"], r["paused"], r["reason"]) for r in doc["queues"]))
            if self._last.get(username) != key:
                self._last[username] = key
                self.app.broker.publish(f"agent:{username}", "status", doc)
