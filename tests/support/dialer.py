"""Shared helpers for the dialer tests: a fake AMI gateway and data set-up."""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.ami.codec import Message
from callcenter.ami.fake import FakeAmi
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.timeutil import to_dt

SH = ZoneInfo("Asia/Shanghai")


def ts(y, mo, d, h=0, mi=0, s=0) -> float:
    """Epoch seconds of a Shanghai wall-clock time."""
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=SH).timestamp()


def msg(**headers) -> Message:
    return Message([(k, str(v)) for k, v in headers.items()])


class FakeGateway(FakeAmi):
    """Records Originates; the test plays Asterisk with ``event(...)`` (and the outcomes below)."""

    # Asterisk-like outcomes (traces 04/05)
    def answer(self, action_id, uniqueid):
        self.event(Event="VarSet", Channel=f"PJSIP/x-{uniqueid};1", Uniqueid=uniqueid, Linkedid=uniqueid,
                   Variable="ATTEMPT_ID", Value=action_id)
        self.event(Event="OriginateResponse", ActionID=action_id, Response="Success",
                   Channel=f"PJSIP/x-{uniqueid}", Reason=4, Uniqueid=uniqueid)

    def fail(self, action_id, reason, cause, linkedid):
        self.event(Event="VarSet", Channel="PJSIP/x;1", Uniqueid=linkedid, Linkedid=linkedid,
                   Variable="ATTEMPT_ID", Value=action_id)
        self.event(Event="Hangup", Channel="PJSIP/x;2", Uniqueid=linkedid + "1", Linkedid=linkedid, Cause=cause)
        self.event(Event="OriginateResponse", ActionID=action_id, Response="Failure", Channel="PJSIP/x",
                   Reason=reason, Uniqueid="<unknown>")
        self.event(Event="Hangup", Channel="PJSIP/x;1", Uniqueid=linkedid, Linkedid=linkedid, Cause=0)

    def hangup(self, uniqueid, cause=16):
        self.event(Event="Hangup", Channel=f"PJSIP/x-{uniqueid}", Uniqueid=uniqueid, Linkedid=uniqueid, Cause=cause)


async def until(pred, clock=None, step=0.0, limit=2000):
    """Yield to the loop (and advance a test clock by ``step``) until ``pred()``."""
    for _ in range(limit):
        if pred():
            return
        if clock is not None and step:
            clock.advance(step)
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")


T0 = ts(2026, 11, 24, 10, 0)  # a Tuesday, inside the 09:00-20:00 window
PHONES = ["+8613800138001", "+8613800138002", "+8613800138003"]


def seed(db, *, mode="survey", n=3, phones=PHONES, name="c1", kind="revisit", due=T0 - 60, **kw) -> int:
    def work(s):
        c = create_campaign(s, name=name, kind=kind, mode=mode, queue="consultation", state="running", **kw)
        rows = [contact_row(c.id, f"k{i}", phone=phones[i % len(phones)], name=f"P{i}", reason=kind,
                            ref_type="t", ref_id=str(i), due_after=to_dt(due), due_before=None,
                            patient_id=None, now=to_dt(due)) for i in range(n)]
        insert_contacts(s, rows)
        return c.id
    return db.call(work)
