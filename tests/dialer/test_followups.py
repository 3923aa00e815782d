"""Complaint follow-up and callbacks: the contracts with complaints and the IVR."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from twisted.internet.task import Clock

from tests import support
from dialer.models import Attempt, Campaign, Contact
from dialer.timeutil import to_ts

from tests.support.dialer import FakeGateway, ts
from .test_engine import make

_domain = support.domain()  # the dialer API and complaints service as serve wires them
api, svc = _domain.dialer, _domain.complaints

T0 = ts(2026, 11, 24, 10, 0)


def resolve_ticket(s, phone="13800138001"):

    t = svc.open_ticket(s, actor="agent", category="fees", channel="phone", summary="overcharged",
                        received_at=T0 - 7200, patient_phone=phone, patient_name="王小明")
    svc.transition(s, t.id, "investigating", actor="a", at=T0 - 3600)
    svc.transition(s, t.id, "resolved", actor="a", at=T0 - 60)
    return t.id


async def test_resolved_complaint_is_revisited_within_24h_and_reported_back(db):
    from callcenter.complaints.models import ComplaintTicket

    tid = db.call(resolve_ticket)
    c = db.call(lambda s: s.scalar(select(Contact)))
    assert (c.reason, c.ref_type, c.ref_id, c.phone) == ("complaint_followup", "complaint", str(tid),
                                                         "+8613800138001")
    assert to_ts(c.due_before) - to_ts(c.due_after) <= 24 * 3600
    camp = db.call(lambda s: s.get(Campaign, c.campaign_id))
    assert (camp.kind, camp.state) == ("complaint_followup", "running")
    # schedule_followup is idempotent per reference
    again = db.call(lambda s: api.schedule_followup(s, phone="13800138001", ref_type="complaint", ref_id=tid))
    assert again == c.id

    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    camp_mode = db.call(lambda s: setattr(s.get(Campaign, c.campaign_id), "mode", "survey"))
    assert camp_mode is None
    d = make(db, clock, gw)
    await d.start()
    await d.run_once()
    assert len(gw.originates) == 1
    gw.answer("1", uniqueid="8.1")
    db.call(lambda s: api.record_survey_result(s, attempt_id=1, answers={"recovery": "4", "satisfaction": "5"},
                                               opted_out=False, completed=True, at=T0 + 30))
    gw.hangup("8.1")
    await d.idle()
    await d.stop()
    t = db.call(lambda s: s.get(ComplaintTicket, tid))
    assert t.satisfied is True and t.satisfaction == 5 and t.status in ("revisited", "closed")


def test_unsatisfied_revisit_reopens_the_ticket(db):
    from callcenter.complaints.models import ComplaintTicket

    tid = db.call(resolve_ticket)

    def call(s):
        c = s.scalar(select(Contact))
        a = Attempt(contact_id=c.id, campaign_id=c.campaign_id, phone=c.phone, state="answered",
                    started_at=dt.datetime.fromtimestamp(T0, dt.timezone.utc))
        s.add(a)
        s.flush()
        c.state = "dialing"
        api.record_survey_result(s, attempt_id=a.id, answers={"satisfaction": "2"}, opted_out=False, at=T0)
    db.call(call)
    t = db.call(lambda s: s.get(ComplaintTicket, tid))
    assert t.satisfied is False and t.reopen_count == 1


def test_partial_or_agent_surveys_do_not_finish_the_contact(db):
    tid = db.call(resolve_ticket)

    def call(s, answers, completed):
        c = s.scalar(select(Contact))
        a = Attempt(contact_id=c.id, campaign_id=c.campaign_id, phone=c.phone, state="answered",
                    started_at=dt.datetime.fromtimestamp(T0, dt.timezone.utc))
        s.add(a)
        s.flush()
        c.state = "dialing"
        api.record_survey_result(s, attempt_id=a.id, answers=answers, opted_out=False, completed=completed)
        return c.state, a.disposition
    assert db.call(call, {"recovery": "3"}, False) == ("dialing", "")
    assert db.call(call, {"recovery": None}, True) == ("dialing", "")   # pressed 0 for an agent
    assert tid


def test_callback_requests_one_open_per_number_and_respect_dnc(db):
    at = dt.datetime.fromtimestamp(T0, dt.timezone.utc)
    a = db.call(lambda s: api.request_callback(s, phone="13900139002", name="Li", reason="voice message",
                                               requested_at=at, ivr_session_id=5))
    b = db.call(lambda s: api.request_callback(s, phone="+8613900139002", name="Li", requested_at=at,
                                               ivr_session_id=6))
    assert a == b and a is not None
    c = db.call(lambda s: s.get(Contact, a))
    assert (c.reason, c.ref_type, c.ref_id) == ("voice message", "ivr_session", "5")
    db.call(lambda s: api.add_do_not_call(s, "13900139002", source="agent"))
    assert db.call(lambda s: s.get(Contact, a).outcome) == "opted_out"
    assert db.call(lambda s: api.request_callback(s, phone="13900139002", requested_at=at)) is None
    assert db.call(lambda s: api.is_do_not_call(s, "139 0013 9002"))
    assert not db.call(lambda s: api.is_do_not_call(s, "garbage"))
