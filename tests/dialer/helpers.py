"""Shared helpers for the dialer tests: a fake AMI gateway and data set-up."""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.ami.codec import Message

SH = ZoneInfo("Asia/Shanghai")


def ts(y, mo, d, h=0, mi=0, s=0) -> float:
    """Epoch seconds of a Shanghai wall-clock time."""
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=SH).timestamp()


def msg(**headers) -> Message:
    return Message([(k, str(v)) for k, v in headers.items()])


class FakeGateway:
    """Records Originates; the test plays Asterisk by emitting events to subscribers."""

    name = "ami"

    def __init__(self, clock):
        self.clock = clock
        self.connected = True
        self.originates: list[dict] = []
        self.subscribers = []
        self.fail_with: Exception | None = None
        self.connect_hooks = []
        self.actions: list = []
        self.channels: list[str] = []   # Uniqueids CoreShowChannels reports

    def on_connect(self, coro_fn):
        self.connect_hooks.append(coro_fn)

    async def action(self, headers, **kw):
        self.actions.append(list(headers))
        if dict(headers).get("Action") == "CoreShowChannels":
            return ([msg(Response="Success", EventList="start")]
                    + [msg(Event="CoreShowChannel", Uniqueid=u) for u in self.channels]
                    + [msg(Event="CoreShowChannelsComplete", EventList="Complete")])
        return msg(Response="Success")

    def subscribe(self, cb):
        self.subscribers.append(cb)
        return cb

    def unsubscribe(self, cb):
        if cb in self.subscribers:
            self.subscribers.remove(cb)

    async def originate(self, action_id, channel, **kw):
        if self.fail_with is not None:
            raise self.fail_with
        self.originates.append(dict(action_id=action_id, channel=channel, t=self.clock.seconds(), **kw))
        return None

    def emit(self, **headers):
        m = msg(**headers)
        for cb in list(self.subscribers):
            cb(m, self.clock.seconds())

    # Asterisk-like outcomes (traces 04/05)
    def answer(self, action_id, uniqueid):
        self.emit(Event="VarSet", Channel=f"PJSIP/x-{uniqueid};1", Uniqueid=uniqueid, Linkedid=uniqueid,
                  Variable="ATTEMPT_ID", Value=action_id)
        self.emit(Event="OriginateResponse", ActionID=action_id, Response="Success",
                  Channel=f"PJSIP/x-{uniqueid}", Reason=4, Uniqueid=uniqueid)

    def fail(self, action_id, reason, cause, linkedid):
        self.emit(Event="VarSet", Channel="PJSIP/x;1", Uniqueid=linkedid, Linkedid=linkedid,
                  Variable="ATTEMPT_ID", Value=action_id)
        self.emit(Event="Hangup", Channel="PJSIP/x;2", Uniqueid=linkedid + "1", Linkedid=linkedid, Cause=cause)
        self.emit(Event="OriginateResponse", ActionID=action_id, Response="Failure", Channel="PJSIP/x",
                  Reason=reason, Uniqueid="<unknown>")
        self.emit(Event="Hangup", Channel="PJSIP/x;1", Uniqueid=linkedid, Linkedid=linkedid, Cause=0)

    def hangup(self, uniqueid, cause=16):
        self.emit(Event="Hangup", Channel=f"PJSIP/x-{uniqueid}", Uniqueid=uniqueid, Linkedid=uniqueid, Cause=cause)


async def until(pred, clock=None, step=0.0, limit=2000):
    """Yield to the loop (and advance a test clock by ``step``) until ``pred()``."""
    for _ in range(limit):
        if pred():
            return
        if clock is not None and step:
            clock.advance(step)
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")
