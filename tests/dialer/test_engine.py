"""The dialer against a fake gateway on a test clock: claims, dispositions, retries,
compliance, progressive pacing, crash/restart reconciliation, concurrent claimers."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from twisted.internet.task import Clock

from dialer import store
from dialer.campaigns import status
from dialer.compliance import Rules
from dialer.engine import Dialer, DialSettings
from dialer.models import Attempt, Campaign, Contact, DoNotCall
from dialer.pacing import StaticAgents
from dialer.timeutil import to_dt, to_ts

from tests.support.dialer import PHONES, T0, FakeGateway, seed, ts

from tests import support

api = support.domain().dialer  # the dialer API as serve wires it

def make(db, clock, gw, **kw):
    return Dialer(db=db, clock=clock, gateway=gw, rules=Rules(), autotick=False, instance=kw.pop("instance", "a"),
                  dial=DialSettings(max_rate=1e6), agents=kw.pop("agents", StaticAgents()), **kw)


def contacts(db):
    return db.call(lambda s: {c.id: (c.state, c.outcome, c.attempts, to_ts(c.next_attempt_at))
                              for c in s.scalars(select(Contact).order_by(Contact.id))})


@pytest.mark.postgres
async def test_survey_campaign_dispositions_and_retries(db):
    seed(db)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    committed = []
    orig = gw.originate

    async def originate(action_id, channel, **kw):
        # the attempt row is committed before the Originate goes out
        committed.append(db.call(lambda s: s.get(Attempt, int(action_id)).state))
        return await orig(action_id, channel, **kw)

    gw.originate = originate
    d = make(db, clock, gw)
    await d.start()
    await d.run_once()
    assert committed == ["dialing"] * 3
    assert [o["action_id"] for o in gw.originates] == ["1", "2", "3"]
    o = gw.originates[0]
    assert o["context"] == "survey" and o["exten"] == "s" and o["variables"]["ATTEMPT_ID"] == "1"
    assert o["channel"] == "PJSIP/13800138001@trunk" and o["caller_id"] == '"City Hospital" <02100000000>'
    # nothing more while the three are in flight? (survey: channels allow more, but no contact is due)
    await d.run_once()
    assert len(gw.originates) == 3

    gw.fail("1", reason=5, cause=17, linkedid="100.1")          # busy
    gw.answer("2", uniqueid="100.2")                               # answered -> survey -> hang-up
    db.call(lambda s: api.record_survey_result(s, attempt_id=2, answers={"q1": 4, "q2": 5}, opted_out=False))
    clock.advance(40)
    gw.hangup("100.2")
    gw.fail("3", reason=3, cause=19, linkedid="100.3")          # no answer
    await d.idle()
    st = contacts(db)
    assert st[1][:3] == ("pending", "", 1) and st[1][3] == T0 + 15 * 60
    assert st[2][:2] == ("done", "completed")
    assert st[3][:3] == ("pending", "", 1) and st[3][3] == T0 + 40 + 60 * 60
    a = db.call(lambda s: {x.id: (x.state, x.disposition, x.reason_code, x.hangup_cause)
                           for x in s.scalars(select(Attempt))})
    assert a[1] == ("ended", "busy", 5, 17)
    assert a[2][:2] == ("ended", "completed")
    assert a[3] == ("ended", "no_answer", 3, 19)

    clock.advance(15 * 60)          # busy retry due; no-answer not yet
    await d.run_once()
    assert [o["action_id"] for o in gw.originates[3:]] == ["4"]
    assert gw.originates[3]["channel"] == "PJSIP/13800138001@trunk"
    s = db.call(lambda s: status(s, s.get(Campaign, 1), now=clock.seconds()))
    # the survey answered without an agent: answered, not reached (issue 22.6)
    assert s["dialled"] == 3 and s["completed"] == 1 and s["answered"] == 1 and s["reached"] == 0
    assert s["survey_score_avg"] == 4.5 and s["survey_question_avg"] == {"q1": 4.0, "q2": 5.0}
    assert s["attempts"] == 4 and s["attempts_per_contact"] == round(4 / 3, 2)
    await d.stop()


async def test_max_attempts_gives_up_as_unreachable(db):
    seed(db, n=1, max_attempts=2)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = make(db, clock, gw)
    await d.start()
    for i in range(2):
        await d.run_once()
        gw.fail(gw.originates[-1]["action_id"], reason=5, cause=17, linkedid=f"9.{i}")
        await d.idle()
        clock.advance(16 * 60)
    await d.run_once()
    assert len(gw.originates) == 2
    assert contacts(db)[1][:3] == ("done", "unreachable", 2)
    await d.stop()


async def test_no_calls_outside_window_or_on_holidays(db):
    seed(db, due=ts(2026, 9, 30, 8))
    clock = Clock()
    clock.advance(ts(2026, 9, 30, 20, 0))     # closing time
    gw = FakeGateway(clock)
    d = make(db, clock, gw)
    await d.start()
    delay = await d.run_once()
    assert gw.originates == []
    # next window: Oct 1-3 holidays, Oct 4 (Sunday) 09:00 -- capped at 5 minutes per check
    assert delay == 300.0
    clock.advance(ts(2026, 10, 1, 10) - clock.seconds())
    await d.run_once()
    assert gw.originates == []
    clock.advance(ts(2026, 10, 4, 8, 59, 59) - clock.seconds())
    await d.run_once()
    assert gw.originates == []
    clock.advance(1)
    await d.run_once()
    assert len(gw.originates) == 3
    await d.stop()


async def test_progressive_dials_only_for_free_agents(db):
    seed(db, mode="progressive")
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    agents = StaticAgents({"consultation": 0})
    d = make(db, clock, gw, agents=agents)
    await d.start()
    await d.run_once()
    assert gw.originates == []                       # nobody free: nobody dialled
    agents.free["consultation"] = 1
    await d.run_once()
    await d.run_once()
    assert len(gw.originates) == 1                   # one free agent, one call ringing
    o = gw.originates[0]
    assert o["context"] == "dialer-agent" and o["variables"]["QUEUE"] == "consultation"
    gw.answer("1", uniqueid="5.1")
    gw.event(Event="AgentConnect", Uniqueid="5.1", Linkedid="5.1", MemberName="Agent Li", Queue="consultation")
    await d.idle()
    db.call(lambda s: api.record_outcome(s, contact_id=1, outcome="rebooked", by="li"))
    gw.hangup("5.1")
    await d.idle()
    assert contacts(db)[1][:2] == ("done", "rebooked")
    a = db.call(lambda s: s.get(Attempt, 1))
    assert a.agent == "Agent Li" and a.disposition == "reached"
    await d.run_once()
    assert len(gw.originates) == 2
    await d.stop()


async def test_attempt_is_stamped_when_its_agent_was_seen_free(db):
    """Time passes inside a tick (the database slow under load) before the dialer looks at
    the agents: the attempt's start is that look or later, never the tick's start; stamped
    at the tick's start, a progressive call read as dialled before its agent was free."""
    seed(db, mode="progressive", n=1)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    looked = []

    class SlowToLook(StaticAgents):
        def free_agents(self, queue):
            clock.advance(7)                          # 7 s of the tick gone before the look
            looked.append(clock.seconds())
            return super().free_agents(queue)

    d = make(db, clock, gw, agents=SlowToLook({"consultation": 1}))
    await d.start()
    await d.run_once()
    assert len(gw.originates) == 1
    started = db.call(lambda s: to_ts(s.get(Attempt, 1).started_at))
    assert started >= looked[0] > T0
    await d.stop()


async def test_abandoned_in_queue_counts_for_the_abandon_rate(db):
    cid = seed(db, mode="predictive", n=1)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = make(db, clock, gw, agents=StaticAgents({"consultation": 1}))
    await d.start()
    await d.run_once()
    gw.answer("1", uniqueid="6.1")
    gw.event(Event="QueueCallerAbandon", Uniqueid="6.1", Linkedid="6.1", Queue="consultation", HoldTime=4)
    gw.hangup("6.1")
    await d.idle()
    assert db.call(lambda s: store.abandon_counts(s, cid, T0 - 86400)) == (1, 1)
    assert contacts(db)[1][0] == "pending"
    assert db.call(lambda s: s.get(Attempt, 1).disposition) == "abandoned"
    await d.stop()


async def test_opt_out_stops_every_campaign(db):
    seed(db, n=1, phones=[PHONES[0]])
    seed(db, n=1, phones=[PHONES[0]], name="c2", kind="no_show", due=T0 + 3600)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = make(db, clock, gw)
    await d.start()
    await d.run_once()
    gw.answer("1", uniqueid="7.1")
    db.call(lambda s: api.record_survey_result(s, attempt_id=1, answers={}, opted_out=True))
    gw.hangup("7.1")
    await d.idle()
    assert db.call(lambda s: api.is_do_not_call(s, "138 0013 8001"))
    assert contacts(db)[1][:2] == ("done", "opted_out") and contacts(db)[2][:2] == ("done", "opted_out")
    clock.advance(2 * 3600)
    await d.run_once()
    assert len(gw.originates) == 1
    # a later follow-up for that number is refused
    assert db.call(lambda s: api.schedule_followup(s, phone=PHONES[0], ref_type="complaint", ref_id=9)) is None
    await d.stop()


@pytest.mark.postgres
async def test_crash_restart_never_redials_within_retry_delay(db):
    seed(db, n=2)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d1 = make(db, clock, gw, instance="box1")
    await d1.start()
    await d1.run_once()
    assert len(gw.originates) == 2
    # crash: d1 vanishes without its responses; a new process with the same name starts
    gw.routes.clear()
    clock.advance(10)
    d2 = make(db, clock, gw, instance="box1")
    await d2.start()
    a = db.call(lambda s: [(x.state, x.disposition) for x in s.scalars(select(Attempt))])
    assert a == [("unknown", "unknown")] * 2
    assert [v[0] for v in contacts(db).values()] == ["pending", "pending"]
    for minutes in (1, 30, 119):
        clock.advance(T0 + minutes * 60 - clock.seconds())
        await d2.run_once()
        assert len(gw.originates) == 2, minutes
    # late responses for the old attempts change nothing and dial nobody
    gw.fail("1", reason=5, cause=17, linkedid="1.1")
    await d2.idle()
    clock.advance(T0 + 10 + 120 * 60 - clock.seconds())   # restart time + longest retry delay
    await d2.run_once()
    assert len(gw.originates) == 4
    await d2.stop()
    await d1.stop()


async def test_stale_attempts_of_a_dead_instance_are_reconciled(db):
    seed(db, n=1)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    dead = make(db, clock, gw, instance="dead")
    await dead.start()
    await dead.run_once()
    gw.routes.clear()
    other = make(db, clock, gw, instance="other")
    await other.start()                       # not its attempt, not stale yet: left alone
    assert db.call(lambda s: s.get(Attempt, 1).state) == "dialing"
    clock.advance(200)
    await other.run_once()                    # maintenance: stale -> unknown
    assert db.call(lambda s: s.get(Attempt, 1).state) == "unknown"
    assert len(gw.originates) == 1
    await dead.stop()
    await other.stop()


async def test_not_connected_releases_the_attempt(db):
    seed(db, n=1)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)

    from callcenter.ami.gateway import AmiNotSent

    gw.fail_with = AmiNotSent("AMI not connected to 127.0.0.1:5038")   # typed: no message matching
    d = make(db, clock, gw)
    await d.start()
    await d.run_once()
    assert contacts(db)[1][:3] == ("pending", "", 0)
    assert db.call(lambda s: s.get(Attempt, 1).disposition) == "not_sent"
    gw.fail_with = None
    clock.advance(31)
    await d.run_once()
    assert len(gw.originates) == 1
    await d.stop()


@pytest.mark.postgres
def test_two_concurrent_claimers_never_share_a_contact(db):
    n = 400
    phones = [f"+86138{i:08d}" for i in range(n)]
    seed(db, n=n, phones=phones)
    start, first_done = threading.Barrier(2), threading.Barrier(2)
    got: dict[str, list[int]] = {"a": [], "b": []}

    def worker(name):
        # Both claim at once; the second barrier keeps one thread (SQLite serialises writers,
        # so one can drain all 400 before the other is scheduled) from finishing alone.
        start.wait()
        first = True
        while True:
            batch = db.call(lambda s: store.claim(s, campaign_id=1, limit=7, now=T0, instance=name,
                                                  guard_seconds=7200))
            if first:
                first_done.wait()
                first = False
            if not batch:
                return
            got[name].extend(c.contact_id for c in batch)

    threads = [threading.Thread(target=worker, args=(k,)) for k in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a, b = set(got["a"]), set(got["b"])
    assert not (a & b)
    assert len(got["a"]) + len(got["b"]) == n and a | b == set(range(1, n + 1))
    assert got["a"] and got["b"]   # both actually got work
    owners = db.call(lambda s: {c.id: c.claimed_by for c in s.scalars(select(Contact))})
    assert all(owners[i] == "a" for i in a) and all(owners[i] == "b" for i in b)
    assert db.call(lambda s: len(s.scalars(select(Attempt.id)).all())) == n


def test_same_phone_is_never_in_two_calls_and_dnc_is_never_claimed(db):
    seed(db, n=4, phones=[PHONES[0], PHONES[0], PHONES[1], PHONES[2]])
    db.call(lambda s: s.add(DoNotCall(phone=PHONES[2], source="admin", reason="", created_at=to_dt(T0))))
    claimed = db.call(lambda s: store.claim(s, campaign_id=1, limit=10, now=T0, instance="x", guard_seconds=60))
    # the NOT EXISTS guard sees the table before this statement: two rows with the same phone can
    # be claimed by one statement; later statements skip a phone already in a call
    again = db.call(lambda s: store.claim(s, campaign_id=1, limit=10, now=T0, instance="x", guard_seconds=60))
    assert PHONES[2] not in {c.phone for c in claimed + again}
    assert again == [] or all(c.phone != PHONES[1] for c in again)


@pytest.mark.postgres
async def test_two_dialer_instances_share_the_work_without_double_dialling(db):
    import asyncio

    n = 300
    seed(db, n=n, phones=[f"+86138{i:08d}" for i in range(n)], settings={"max_channels": 25})
    clock = Clock()
    clock.advance(T0)
    gws = [FakeGateway(clock), FakeGateway(clock)]
    ds = [make(db, clock, gws[0], instance="east"), make(db, clock, gws[1], instance="west")]
    for d in ds:
        await d.start()
    seen = [0, 0]
    for _ in range(40):
        await asyncio.gather(*(d.run_once() for d in ds))
        new = 0
        for i, gw in enumerate(gws):
            for o in gw.originates[seen[i]:]:
                gw.fail(o["action_id"], reason=8, cause=34, linkedid=f"l{o['action_id']}")
                new += 1
            seen[i] = len(gw.originates)
        for d in ds:
            await d.idle()
        if not new:
            break
    channels = [o["channel"] for gw in gws for o in gw.originates]
    assert len(channels) == n and len(set(channels)) == n     # everyone once, nobody twice
    assert gws[0].originates and gws[1].originates
    instances = db.call(lambda s: {a.instance for a in s.scalars(select(Attempt))})
    assert instances == {"east", "west"}
    for d in ds:
        await d.stop()


def test_free_agents_come_from_the_queuecalls_live_view():
    """Named states (queuecalls/agentstate.py, the one vocabulary): only ``available`` members
    can take a patient — wrap-up ("Not in use" on the device) is not free; inbound callers
    already waiting are counted, dialer patients waiting are not (their agent is reserved)."""
    from dialer.pacing import QueueCallsAgents

    class Tracker:
        def live(self):
            return {"consultation": {"members": [
                {"interface": "PJSIP/1001", "state": "available", "paused": False, "in_wrapup": False},
                {"interface": "PJSIP/1002", "state": "on_call", "paused": False, "in_wrapup": False},
                {"interface": "PJSIP/1003", "state": "paused", "paused": True, "in_wrapup": True},
                {"interface": "PJSIP/1004", "state": "available", "paused": False, "in_wrapup": False},
                {"interface": "PJSIP/1005", "state": "wrap_up", "paused": False, "in_wrapup": True},
            ], "waiting": [{"direction": "inbound"}, {"direction": "outbound"}]}}

    from callcenter.ports import FreeAgents

    assert QueueCallsAgents(Tracker()).free_agents("consultation") == FreeAgents(
        ("PJSIP/1001", "PJSIP/1004"), 1, frozenset({"PJSIP/1002", "PJSIP/1003", "PJSIP/1005"}))
    assert QueueCallsAgents(Tracker()).free_agents("complaint") == FreeAgents((), 0)


async def test_predictive_overdials_only_while_the_abandon_rate_allows(db):
    cid = seed(db, mode="predictive", n=40, phones=[f"+86138{i:08d}" for i in range(40)])

    def history(s, answered, abandoned):
        c = s.scalar(select(Contact))
        for i in range(answered):
            # abandoned = answered and no agent within 2 s (the regulatory definition)
            s.add(Attempt(contact_id=c.id, campaign_id=cid, phone=c.phone, state="ended", disposition="reached",
                          started_at=to_dt(T0 - 86400), answered_at=to_dt(T0 - 86400),
                          connected_at=None if i < abandoned else to_dt(T0 - 86400 + 1.5),
                          abandoned=i < abandoned))
    db.call(history, 200, 0)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = make(db, clock, gw, agents=StaticAgents({"consultation": 10}))
    await d.start()
    await d.run_once()
    assert len(gw.originates) == 11            # 10 free agents x ratio 1.1 (first step up)
    await d.stop()
    # same campaign with 4 % abandoned in the last 30 days: back to one call per free agent
    db.call(history, 100, 12)
    d2 = make(db, clock, FakeGateway(clock), agents=StaticAgents({"consultation": 10}))
    await d2.start()
    await d2.run_once()
    assert len(d2.gateway.originates) == 10
    await d2.stop()


def test_contacts_past_their_deadline_expire(db):
    cid = seed(db, n=2)

    def setup(s):
        for c in s.scalars(select(Contact)):
            c.due_before = to_dt(T0 - 1)
        s.scalars(select(Contact)).first().attempts = 1
    db.call(setup)
    assert db.call(lambda s: store.expire(s, T0)) == 2
    assert sorted(v[1] for v in contacts(db).values()) == ["expired", "unreachable"]
    assert cid


async def test_reconnect_resync_closes_calls_that_ended_during_the_outage(db):
    seed(db, n=2)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = make(db, clock, gw)
    await d.start()
    await d.run_once()
    gw.answer("1", uniqueid="3.1")
    gw.answer("2", uniqueid="3.2")
    await d.idle()
    # link lost; call 1 hangs up unseen, call 2 is still up when we are back
    gw.live = ["3.2"]
    assert len(gw.connect_hooks) == 1
    await gw.connect_hooks[0]()
    await d.idle()
    a = db.call(lambda s: {x.id: (x.state, x.disposition) for x in s.scalars(select(Attempt))})
    assert a == {1: ("ended", "hungup"), 2: ("answered", "")}
    assert contacts(db)[1][0] == "pending" and contacts(db)[2][0] == "dialing"
    assert d.inflight[1] == {2}
    await d.stop()


async def test_one_number_is_not_called_for_two_reasons_back_to_back(db):
    seed(db, n=1, phones=[PHONES[0]])                                       # revisit
    seed(db, n=1, phones=[PHONES[0]], name="c2", kind="no_show", due=T0 + 60)
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = make(db, clock, gw)       # DialSettings default: 60 minutes between different contacts
    await d.start()
    for _ in range(24 * 6):       # four hours in 10-minute steps; every call fails (congestion)
        await d.run_once()
        for o in gw.originates:
            if not o.get("done"):
                o["done"] = True
                gw.fail(o["action_id"], reason=8, cause=34, linkedid=f"c.{o['action_id']}")
        await d.idle()
        clock.advance(600)
    rows = db.call(lambda s: [(a.contact_id, to_ts(a.started_at)) for a in
                              s.scalars(select(Attempt).order_by(Attempt.id))])
    assert {c for c, _ in rows} == {1, 2} and len(rows) == 6      # 3 attempts each, then unreachable
    for (c1, t1), (c2, t2) in zip(rows, rows[1:]):
        if c1 != c2:
            assert t2 - t1 >= 3600, rows                            # other reason: an hour apart
        else:
            assert t2 - t1 >= 5 * 60                                # same contact: its retry delay
    await d.stop()


def test_one_claim_never_takes_the_same_number_twice(db):
    seed(db, n=3, phones=[PHONES[0]])
    got = db.call(lambda s: store.claim(s, campaign_id=1, limit=10, now=T0, instance="x", guard_seconds=60))
    assert len(got) == 1
    assert sorted(v[0] for v in contacts(db).values()) == ["dialing", "pending", "pending"]
    assert sorted(v[2] for v in contacts(db).values()) == [0, 0, 1]


async def test_stop_mid_batch_hands_back_the_unsent_claims(db):
    from dialer.engine import Dialer

    from tests.support.dialer import until

    seed(db, n=5, phones=[f"+86138{i:08d}" for i in range(5)])
    clock = Clock()
    clock.advance(T0)
    gw = FakeGateway(clock)
    d = Dialer(db=db, clock=clock, gateway=gw, rules=Rules(), instance="a", dial=DialSettings(max_rate=1.0),
               agents=StaticAgents())
    await d.start()
    clock.advance(0)                                   # first tick: claims 5, sends 1, paces the rest
    await until(lambda: len(gw.originates) == 1)
    await d.stop()
    st = sorted((v[0], v[2]) for v in contacts(db).values())
    assert st == [("dialing", 1)] + [("pending", 0)] * 4
    assert db.call(lambda s: sorted(a.disposition for a in s.scalars(select(Attempt)))) == [""] + ["not_sent"] * 4
