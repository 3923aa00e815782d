"""Progressive capacity per queue, agent reservation, and real call state — on a fake gateway.

* capacity is per queue across campaigns and dialer instances, net of inbound callers
  waiting (issue 22.1: two campaigns dialled 3 patients for 2 free agents);
* an agent is reserved (QueuePause Reason dialer:<attempt>) before the patient is
  dialled, unpaused when the answered patient joins the queue, released whatever the
  outcome, and reservations a crash left behind are released at start-up;
* a patient on a call is not dialled; an IVR callback waits for the end of the call
  plus ``callback_after_call_seconds``.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet.task import Clock

from dialer import reservations
from dialer.api import DialerApi
from dialer.campaigns import Settings
from dialer.models import AgentReservation
from dialer.pacing import StaticAgents
from dialer.timeutil import to_dt

from tests.support.dialer import FakeGateway, msg
from .test_engine import T0, make, seed

PHONES_B = ["+8613800138011", "+8613800138012", "+8613800138013"]


class Gateway(FakeGateway):
    """FakeGateway that also answers QueueStatus with the members given."""

    def __init__(self, clock, members=()):
        super().__init__(clock)
        self.members = list(members)   # (interface, paused, reason)
        self.log: list[tuple] = []      # ("pause"/"unpause", iface, reason) and ("originate", aid)

    async def action(self, headers, **kw):
        h = dict(headers)
        if h.get("Action") == "QueuePause":
            self.log.append(("pause" if h["Paused"] == "true" else "unpause", h["Interface"], h.get("Reason", "")))
        if h.get("Action") == "QueueStatus":
            self.sent.append(h)
            return ([msg(Response="Success", EventList="start")]
                    + [msg(Event="QueueMember", Queue="consultation", Name=i, Location=i, Paused="1" if p else "0",
                           PausedReason=r) for i, p, r in self.members]
                    + [msg(Event="QueueStatusComplete", EventList="Complete")])
        return await super().action(headers, **kw)

    async def originate(self, action_id, channel, **kw):
        self.log.append(("originate", action_id))
        return await super().originate(action_id, channel, **kw)


def held(db):
    return db.call(lambda s: sorted((r.attempt_id, r.interface, r.instance)
                                    for r in s.scalars(select(AgentReservation))))


@pytest.mark.postgres
async def test_two_progressive_campaigns_and_two_instances_share_one_queue(db):
    """2 free agents, 1 inbound caller already waiting: one patient may be dialled, whatever
    the number of campaigns and dialer instances (old code: 2 per campaign -> 4)."""
    seed(db, mode="progressive", name="no-shows", kind="no_show")
    seed(db, mode="progressive", name="revisits", kind="revisit", phones=PHONES_B)
    clock = Clock()
    clock.advance(T0)
    agents = StaticAgents({"consultation": 2}, waiting={"consultation": 1})
    gw_a, gw_b = Gateway(clock), Gateway(clock)
    a = make(db, clock, gw_a, agents=agents, instance="east")
    b = make(db, clock, gw_b, agents=agents, instance="west")
    await a.start()
    await b.start()
    await a.run_once()
    await b.run_once()
    assert len(gw_a.originates) + len(gw_b.originates) == 1
    assert len(held(db)) == 1                         # the one call holds one agent
    agents.waiting["consultation"] = 0                # the inbound caller got the other agent
    await b.run_once()
    await a.run_once()
    assert len(gw_a.originates) + len(gw_b.originates) == 2
    assert len({iface for _, iface, _ in held(db)}) == 2   # never the same agent twice
    await a.stop()
    await b.stop()


async def test_agent_reserved_before_dialling_and_released_whatever_the_outcome(db):
    seed(db, mode="progressive", n=2, name="no-shows", kind="no_show")
    clock = Clock()
    clock.advance(T0)
    gw = Gateway(clock)
    d = make(db, clock, gw, agents=StaticAgents({"consultation": 2}))
    await d.start()
    await d.run_once()
    first, second = gw.log[0:2], gw.log[2:4]
    assert first == [("pause", "Static/consultation-1", "dialer:1"), ("originate", "1")]
    assert second == [("pause", "Static/consultation-2", "dialer:2"), ("originate", "2")]
    v = gw.originates[0]["variables"]
    assert v["PATIENT_NUMBER"] == "+8613800138001" and int(v["QUEUE_PRIO"]) > 0 and v["CONNECT_TIMEOUT"]
    # attempt 1: the patient answers and joins the queue (the join may precede the
    # OriginateResponse; the VarSet's Linkedid ties it) -> its agent is unpaused for it
    gw.event(Event="VarSet", Channel="PJSIP/x-8.1", Uniqueid="8.1", Linkedid="8.1", Variable="ATTEMPT_ID", Value="1")
    gw.event(Event="QueueCallerJoin", Channel="PJSIP/x-8.1", Uniqueid="8.1", Linkedid="8.1", Queue="consultation")
    await d.idle()
    assert gw.log[4] == ("unpause", "Static/consultation-1", "dialer:1")
    gw.answer("1", uniqueid="8.1")
    gw.event(Event="AgentConnect", Uniqueid="8.1", Linkedid="8.1", MemberName="Agent 1", Queue="consultation",
            Interface="Static/consultation-1")
    await d.idle()
    assert [r[0] for r in held(db)] == [2]            # connected: attempt 1 holds nothing now
    # attempt 2: busy -> unpaused and released at once
    gw.fail("2", reason=5, cause=17, linkedid="9.1")
    await d.idle()
    assert gw.log[-1] == ("unpause", "Static/consultation-2", "dialer:2")
    assert held(db) == [] and d.reserved == {}
    assert [x[0] for x in gw.log].count("unpause") == 2   # attempt 1 was not unpaused twice
    await d.stop()


async def test_reservations_left_by_a_crash_are_released_at_start(db):
    """A run died between the pause and the release: its row (this instance) and a member
    still paused with a dialer: reason that no row explains are both released."""
    seed(db, mode="progressive", n=1, name="no-shows", kind="no_show")
    clock = Clock()
    clock.advance(T0)
    db.call(lambda s: s.add(AgentReservation(interface="PJSIP/1001", queue="consultation", attempt_id=41,
                                             instance="a", reserved_at=to_dt(T0 - 100))))
    db.call(lambda s: s.add(AgentReservation(interface="PJSIP/1009", queue="consultation", attempt_id=50,
                                             instance="other", reserved_at=to_dt(T0 - 1))))
    gw = Gateway(clock, members=[("PJSIP/1001", True, "dialer:41"), ("PJSIP/1002", True, "dialer:17"),
                                 ("PJSIP/1003", True, "lunch"), ("PJSIP/1009", True, "dialer:50")])
    d = make(db, clock, gw, agents=StaticAgents({}))
    await d.start()
    unpaused = sorted(x[1] for x in gw.log if x[0] == "unpause")
    assert unpaused == ["PJSIP/1001", "PJSIP/1002"]      # not the lunch break, not the live other instance
    assert held(db) == [(50, "PJSIP/1009", "other")]
    await d.stop()


async def test_patient_on_a_call_is_not_dialled_and_a_callback_waits_for_the_end_of_the_call(db):
    seed(db, mode="survey", n=1, name="revisits", kind="revisit")      # +8613800138001
    clock = Clock()
    clock.advance(T0)
    gw = Gateway(clock)
    d = make(db, clock, gw, agents=StaticAgents({"consultation": 1}))   # callbacks are progressive
    await d.start()
    # the patient is on an inbound call to the hotline (caller ID = their number)
    gw.event(Event="Newchannel", Channel="PJSIP/trunk-1", Uniqueid="7.1", Linkedid="7.1",
            CallerIDNum="13800138002")
    gw.event(Event="Newchannel", Channel="PJSIP/trunk-2", Uniqueid="7.2", Linkedid="7.2",
            CallerIDNum="13800138001")
    # ... and asks the IVR for a callback during that call
    api = DialerApi(Settings(), region="CN", clock=clock)
    db.call(lambda s: api.request_callback(s, phone="13800138002", requested_at=to_dt(T0), ivr_session_id=5))
    await d.run_once()
    assert gw.originates == []                        # both patients are on a call
    gw.event(Event="Hangup", Uniqueid="7.2", Linkedid="7.2", Cause=16)
    gw.event(Event="Hangup", Uniqueid="7.1", Linkedid="7.1", Cause=16)
    await d.run_once()
    assert [o["variables"]["PATIENT_NUMBER"] for o in gw.originates] == ["+8613800138001"]
    clock.advance(d.dial.callback_after_call_seconds - 5)
    await d.run_once()
    assert len(gw.originates) == 1                    # the callback waits after the call's end
    clock.advance(10)
    await d.run_once()
    assert [o["variables"]["PATIENT_NUMBER"] for o in gw.originates][1:] == ["+8613800138002"]
    await d.stop()


def test_reservation_row_is_unique_per_interface(db):
    def work(s):
        got = [reservations.reserve(s, ["PJSIP/1", "PJSIP/2"], queue="q", attempt_id=i, instance="x", now=T0)
               for i in (1, 2, 3)]
        return got
    assert db.call(work) == ["PJSIP/1", "PJSIP/2", None]
    db.call(lambda s: reservations.release(s, 1))
    assert db.call(lambda s: reservations.reserve(s, ["PJSIP/1"], queue="q", attempt_id=4, instance="x",
                                                  now=T0)) == "PJSIP/1"




async def test_keep_free_agents_leaves_agents_to_inbound(db):
    from dialer.engine import DialSettings

    seed(db, mode="progressive", name="no-shows", kind="no_show")
    clock = Clock()
    clock.advance(T0)
    gw = Gateway(clock)
    d = make(db, clock, gw, agents=StaticAgents({"consultation": 2}))
    d.dial = DialSettings(max_rate=1e6, keep_free_agents=1)
    await d.start()
    await d.run_once()
    assert len(gw.originates) == 1 and held(db)[0][1] == "Static/consultation-2"
    await d.stop()


async def test_campaigns_on_one_queue_take_turns(db):
    seed(db, mode="progressive", name="no-shows", kind="no_show")
    seed(db, mode="progressive", name="revisits", kind="revisit", phones=PHONES_B)
    clock = Clock()
    clock.advance(T0)
    gw = Gateway(clock)
    d = make(db, clock, gw, agents=StaticAgents({"consultation": 1}))
    await d.start()
    for aid in (1, 2):
        await d.run_once()
        gw.fail(str(aid), reason=5, cause=17, linkedid=f"9.{aid}")   # busy: the agent is free again
        await d.idle()
    assert [o["variables"]["CAMPAIGN_ID"] for o in gw.originates] == ["1", "2"]
    await d.stop()
