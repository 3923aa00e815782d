"""Emitting AMI events the way Asterisk 22 does (field order of the traces)."""
from __future__ import annotations

import logging
from typing import Any, Iterable

from .channels import CAUSE_TEXT, Channel
from .profiles import Headers
from .queues import Member, Queue

log = logging.getLogger("callcenter.simulator.pbx")  # one logger for the whole PBX


class EventsMixin:
    """Part of :class:`~callcenter.simulator.pbx.SimulatedPBX` (a mixin: ``self`` is the PBX)."""

    # ------------------------------------------------------------------ event helpers
    def emit(self, headers: Headers) -> None:
        for fn in list(self.listeners):
            try:
                fn(headers)
            except Exception:  # a broken listener must not break the PBX
                log.exception("AMI event listener failed")

    def ev(self, name: str, fields: Iterable[tuple[str, str]], priv: str = "call,all") -> None:
        self.emit([("Event", name), ("Privilege", priv), *fields])

    def chev(self, name: str, ch: Channel, *extra: tuple[str, str], priv: str = "call,all") -> None:
        self.ev(name, [*ch.snapshot(), *extra], priv)

    def newexten(self, ch: Channel, app: str, data: str = "", *, priority: int | None = None,
                 extension: str | None = None) -> None:
        if priority is not None:
            ch.priority = priority
        ch.app, ch.appdata = app, data
        self.chev("Newexten", ch, ("Extension", extension or ch.exten), ("Application", app),
                  ("AppData", data), priv="dialplan,all")

    def varset(self, ch: Channel, var: str, value: Any) -> None:
        ch.variables[var] = str(value)
        self.chev("VarSet", ch, ("Variable", var), ("Value", str(value)), priv="dialplan,all")

    def newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        self.chev("Newstate", ch)

    def dsc(self, device: str, state: str) -> None:
        self.ev("DeviceStateChange", [("Device", device), ("State", state)])

    def hangup_event(self, ch: Channel, cause: int) -> None:
        if ch.data.get("hangup_sent"):
            return
        ch.data["hangup_sent"] = True
        ch.hung_up = True
        self.chev("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")))
        self.channels.pop(ch.name, None)
        self._end_mixmonitors(ch, stop_event=False)

    def _hangup_local(self, ch: Channel, cause: int) -> None:
        sent = ch.data.get("hangup_sent")
        self.hangup_event(ch, cause)
        if not sent:
            self.dsc(ch.name.rsplit("-", 1)[0], "NOT_INUSE")

    def soft_hangup_request(self, ch: Channel, cause: int = 16) -> None:
        self.chev("SoftHangupRequest", ch, ("Cause", str(cause)))

    def hangup_request(self, ch: Channel, cause: int = 16) -> None:
        self.chev("HangupRequest", ch, ("Cause", str(cause)))

    def member_status(self, q: Queue, m: Member) -> None:
        self.ev("QueueMemberStatus", m.event_fields(q.name), "agent,all")
