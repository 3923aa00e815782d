"""Who may record a dialer call's result (issue 22.4), over real HTTP.

Attempts are tied to the agent by the queue member interface the dialer stored from
``AgentConnect`` (the member *name* is free text); an agent may record any of their own
calls — not only the one on screen — until the contact is closed; other people's are 403."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.store.models import User
from callcenter.web.passwords import hash_password
from dialer import store
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.compliance import Rules
from dialer.models import Attempt, Contact
from dialer.timeutil import to_dt
from dialer.tracker import AttemptTracker

from tests.support.web import PASSWORD, Client, FakeGateway, FakeQueueCalls, add_users, running_web

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
AGENT1 = "Local/1001@sim-agent/n"   # agent1's interface in helpers.USERS
AGENT2 = "Local/1002@sim-agent/n"


def m(**h) -> Message:
    return Message([(k, str(v)) for k, v in h.items()])


def place_call(db, tracker: AttemptTracker, n: int, *, interface: str, member: str, t: float) -> int:
    """A no-show call as the dialer records it: claim, then the AMI events of an answered
    call queued to ``member`` at ``interface``, then the patient's hang-up."""
    def claim(s):
        c = create_campaign(s, name=f"no-shows-{n}", kind="no_show", queue="consultation", state="running")
        insert_contacts(s, [contact_row(c.id, f"appointment:{n}", phone=f"+861380013800{n}", name="", reason="no_show",
                                        ref_type="appointment", ref_id=n, due_after=to_dt(t - 60), due_before=None,
                                        patient_id=None, now=to_dt(t - 60))])
        return store.claim(s, campaign_id=c.id, limit=1, now=t, instance="web", guard_seconds=3600)[0].attempt_id
    aid = db.call(claim)
    uid = f"{int(t)}.{n}"
    tracker.expect(aid)
    facts = []
    for i, ev in enumerate([
            m(Event="VarSet", Channel=f"Local/1380013800{n}@trunk-1;1", Uniqueid=uid, Linkedid=uid,
              Variable="ATTEMPT_ID", Value=aid),
            m(Event="OriginateResponse", ActionID=aid, Response="Success", Reason=4, Uniqueid=uid,
              Channel=f"Local/1380013800{n}@trunk-1;1"),
            m(Event="AgentConnect", Uniqueid=uid, Linkedid=uid, Queue="consultation", Interface=interface,
              MemberName=member, HoldTime=2),
            m(Event="Hangup", Uniqueid=uid, Linkedid=uid, Cause=16)]):
        facts += tracker.feed(ev, t + i)
    rules = Rules()
    for f in facts:
        db.call(lambda s, f=f: store.apply_fact(s, f, rules))
    return aid


async def test_agent_records_own_earlier_calls_and_never_someone_elses(config, db):
    add_users(db)   # agent1 at AGENT1
    with db.session() as s:
        for username, display, iface in (("agent2", "Li Wei", AGENT2),
                                         # display name equal to the member name of agent2's queue entry
                                         ("agent3", "Agent 1002", "Local/1003@sim-agent/n")):
            s.add(User(username=username, display_name=display, role="agent", interface=iface, language="en",
                       password_hash=hash_password(PASSWORD, n=2**10), active=True))
    clock = Clock()
    clock.advance(OPEN)
    tracker = AttemptTracker()
    first = place_call(db, tracker, 1, interface=AGENT1, member="Agent 1001", t=OPEN - 600)
    second = place_call(db, tracker, 2, interface=AGENT1, member="Agent 1001", t=OPEN - 300)
    theirs = place_call(db, tracker, 3, interface=AGENT2, member="Agent 1002", t=OPEN - 120)
    with db.session() as s:
        rows = {a.id: (a.agent, a.agent_interface, a.disposition) for a in s.scalars(select(Attempt))}
    assert rows[theirs] == ("Agent 1002", AGENT2, "reached")

    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls(), gateway=FakeGateway()) as web:
        a1, a2, a3 = Client(web.port), Client(web.port), Client(web.port)
        for c, name in ((a1, "agent1"), (a2, "agent2"), (a3, "agent3")):
            await c.login(name)

        async def record(c, aid, outcome="declined"):
            return await c.post("/api/agent/dialer-outcome", json_body={"attempt_id": aid, "outcome": outcome},
                                headers={"X-CSRF-Token": await c.csrf()})
        # the display name "Agent 1002" is not the member at AGENT2: someone else's call
        r = await record(a3, theirs)
        assert r.status == 403, r.text
        # no call on screen: agent1's earlier calls are still theirs to record
        r = await record(a1, first, "rebooked")
        assert r.status == 201, r.text
        r = await record(a1, second)
        assert r.status == 201, r.text
        r = await record(a1, theirs)
        assert r.status == 403, r.text
        r = await record(a2, theirs)
        assert r.status == 201, r.text
        # once the result is recorded the contact is closed
        r = await record(a1, first, "declined")
        assert r.status == 409 and "rebooked" in r.json()["error"], r.text
    with db.session() as s:
        got = {s.get(Attempt, aid).id: s.get(Contact, s.get(Attempt, aid).contact_id).outcome
               for aid in (first, second, theirs)}
    assert got == {first: "rebooked", second: "declined", theirs: "declined"}
