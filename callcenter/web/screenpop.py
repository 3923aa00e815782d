"""The agent's call as Asterisk reports it: ringing, connected (with the screen pop), ended.

``AgentCalled`` / ``AgentRingNoAnswer`` / ``AgentConnect`` / ``AgentComplete`` for a member
interface become ``call`` events (and, at connect, the ``pop`` with the caller's record) on
the topic of each user with that interface.  Wrap-up is not a call event: Asterisk sends
nothing when it ends, so the agent's *state* says it (:mod:`.agent_desk`, from the
tracker's ``wrap_up`` with ``wrapup_ends``).  Events are handled one at a time, in the order
they arrived (a lock taken first thing by each task, FIFO), so a slow patient look-up for
the pop never lets an older "ringing" overwrite "connected".

A dialer call (``VarSet ATTEMPT_ID`` on its Linkedid, :class:`dialer.tracker.LinkedAttempts`)
is ``direction: outbound`` and its pop carries the attempt (:mod:`.dialer_calls`).
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
from zoneinfo import ZoneInfo

from callcenter.logs import mask_name, mask_number

from . import data
from .interface_users import InterfaceUsers
from .lookups import audit_view

log = logging.getLogger(__name__)

CALL_STATES = ("ringing", "connected", "ended", "idle")  # idle: rang, not answered
SHOWN_PER_USER = 200  # calls remembered per user as "on their screen" (outcome form)


def _cid_number(caller_id: str) -> str:
    """``"City Hospital" <02100000000>`` -> ``02100000000``."""
    caller_id = caller_id or ""
    if "<" in caller_id and caller_id.endswith(">"):
        return caller_id.rsplit("<", 1)[1][:-1].strip()
    return caller_id.strip()


def _num(v: str | None) -> str:
    return "" if v in (None, "<unknown>") else str(v)


# what ScreenPop.on_ami reads of AMI (and VarSet of the dialer's ATTEMPT_ID)
EVENTS = frozenset(("AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete"))


class ScreenPop:
    """Per user: the current call (``calls``) and the last pop (``current``), for a reload."""

    def __init__(self, app, gateway=None):
        from dialer.tracker import LinkedAttempts

        self.app = app
        self.region = app.config.hospital.region
        self.tz = ZoneInfo(app.config.hospital.timezone)
        self.current: dict[str, dict] = {}   # username -> last pop (for a page reload)
        self.calls: dict[str, dict] = {}     # username -> the call's state
        self._shown: dict[str, collections.deque] = {}
        self.dialer = LinkedAttempts()       # outbound dialer calls: Linkedid -> attempt
        self.dialer_cid = _cid_number(app.config.dialer.caller_id)
        self._order = asyncio.Lock()
        self.users = InterfaceUsers(app.db, app.clock)  # who sits at an interface, a few seconds
        if gateway is not None:
            gateway.subscribe(self.on_ami, EVENTS, self.dialer.VARIABLES)

    def shown_to(self, username: str, uniqueid: str) -> bool:
        """Was this call popped on this user's screen (since the web started)?"""
        return uniqueid in self._shown.get(username, ())

    def on_ami(self, msg, t: float | None = None) -> None:
        event = msg.event
        if event != "VarSet" and self.users.cached(msg.get("Interface") or "") == ():
            # nobody sits there (remembered): what the call's task would do, without a task (3 a
            # call); the tasks still queued touch other users only, and the desk's push is one
            self.app.agent_desk.changed()
            if event == "AgentConnect":
                self._nobody(msg)
            return
        if event == "AgentCalled":
            self.app.spawn(self._call(msg, "ringing"))
        elif event == "AgentRingNoAnswer":
            self.app.spawn(self._call(msg, "idle"))
        elif event == "AgentConnect":
            self.app.spawn(self._pop(msg))
        elif event == "AgentComplete":
            self.app.spawn(self._call(msg, "ended"))
        elif event == "VarSet":
            self.dialer.feed(msg)

    def _now(self) -> float:
        return self.app.clock.seconds()

    def _direction(self, msg) -> str:
        outbound = self.dialer.attempt_for(msg) is not None or (
            bool(self.dialer_cid) and _num(msg.get("CallerIDNum")) == self.dialer_cid)
        return "outbound" if outbound else "inbound"

    async def _call(self, msg, state: str) -> None:
        async with self._order:
            iface = msg.get("Interface") or ""
            uid = msg.get("Linkedid") or msg.get("Uniqueid") or ""
            try:
                users = await self.users.of(iface)
            except Exception:  # noqa: BLE001
                log.exception("call state: user look-up failed for interface %s", iface)
                return
            for username in users:
                before = self.calls.get(username) or {}
                if state in ("idle", "ended") and before.get("uniqueid") not in (None, uid):
                    continue  # about another call (a ring that timed out after the next began)
                call = {"uniqueid": uid, "state": state, "at": self._now(), "queue": msg.get("Queue") or "",
                        "direction": before.get("direction") if before.get("uniqueid") == uid
                        else self._direction(msg),
                        "number": before.get("number") if before.get("uniqueid") == uid
                        else _num(msg.get("CallerIDNum")),
                        "connected_at": before.get("connected_at") if before.get("uniqueid") == uid else None}
                if state == "ended":
                    call["talk_time"] = msg.get("TalkTime")
                    pop = self.current.get(username)
                    if pop is not None and pop.get("uniqueid") == uid:
                        pop["call"] = call
                self.calls[username] = call
                self.app.broker.publish(f"agent:{username}", "call", call)
            self.app.agent_desk.changed()   # its timer counts from the call's own moment

    @staticmethod
    def _nobody(msg) -> None:
        log.info("screen pop for %s (%s) to 0 users", mask_name(_num(msg.get("CallerIDName"))),
                 mask_number(_num(msg.get("CallerIDNum"))))

    async def _pop(self, msg) -> None:
        async with self._order:
            await self._pop_locked(msg)

    async def _pop_locked(self, msg) -> None:
        iface = msg.get("Interface") or ""
        number, name = _num(msg.get("CallerIDNum")), _num(msg.get("CallerIDName"))
        now = dt.datetime.fromtimestamp(self._now(), dt.timezone.utc)
        uid = msg.get("Linkedid") or msg.get("Uniqueid") or ""

        attempt = self.dialer.attempt_for(msg)
        # web restarted mid-call (VarSet not seen): look the call up, only for calls from our caller ID
        lookup = attempt is None and bool(self.dialer_cid) and number == self.dialer_cid

        def load(s, users):
            from . import dialer_calls

            aid = attempt
            if lookup:
                from dialer.store import attempt_by_call

                aid = attempt_by_call(s, [msg.get("Linkedid") or "", msg.get("Uniqueid") or ""])
            ctx = dialer_calls.call_context(s, aid) if aid is not None else None
            num, nm = (ctx["phone"], ctx["name"] or name) if ctx else (number, name)
            record = data.patient_record(s, num, nm, self.region, now, self.tz)
            for username in users:  # each agent the record is shown to has viewed it
                audit_view(s, username, record, via="screen_pop", call=uid)
            return record, ctx

        try:
            users = await self.users.of(iface)
            if not users:  # nobody sits there: no record to look up, nobody viewed one
                self.app.agent_desk.changed()
                self._nobody(msg)
                return
            record, dialer = await self.app.db.run(load, users)
        except Exception:  # noqa: BLE001
            log.exception("screen pop lookup failed for interface %s", iface)
            return
        direction = "outbound" if dialer else "inbound"
        at = self._now()
        call = {"uniqueid": uid, "state": "connected", "at": at, "connected_at": at, "queue": msg.get("Queue") or "",
                "direction": direction, "number": record.get("number") or number}
        pop = {"uniqueid": uid, "queue": msg.get("Queue") or "", "interface": iface, "direction": direction,
               "hold_time": msg.get("HoldTime"), "record": record, "dialer": dialer, "call": call}
        for username in users:
            self.current[username] = pop
            self.calls[username] = call
            self._shown.setdefault(username, collections.deque(maxlen=SHOWN_PER_USER)).append(uid)
            self.app.broker.publish(f"agent:{username}", "pop", pop)
        self.app.agent_desk.changed()
        log.info("screen pop for %s (%s) to %d user(s)", mask_name(name), mask_number(number), len(users))
