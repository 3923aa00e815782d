"""Who sits at a member interface, as the screen pop asks it: remembered a few seconds on
the injected clock, bounded, forgotten when an account changes here."""
from __future__ import annotations

import asyncio

from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.store.models import AuditEntry, User
from callcenter.web.interface_users import InterfaceUsers

from tests.support.web import USERS, Client, FakeGateway, FakeQueueCalls, add_users, running_web

AGENT1 = USERS["agent1"][1]


def _set_interface(db, username: str, interface: str) -> None:
    with db.session() as s:
        s.scalars(select(User).where(User.username == username)).one().interface = interface


async def test_answers_are_kept_for_their_seconds_bounded_and_forgotten(db):
    add_users(db)
    clock = Clock()
    users = InterfaceUsers(db, clock, seconds=10.0, size=2)
    assert await users.of(AGENT1) == ("agent1",) and users.lookups == 1
    _set_interface(db, "agent1", "PJSIP/9999")  # changed by another process (callcenter users)
    clock.advance(9.9)
    assert await users.of(AGENT1) == ("agent1",) and users.lookups == 1  # within the 10 s
    clock.advance(0.1)
    assert await users.of(AGENT1) == () and users.lookups == 2
    assert await users.of("PJSIP/9999") == ("agent1",) and users.lookups == 3
    await users.of("PJSIP/7777")  # a third interface: the oldest one goes
    assert users.cached(AGENT1) is None and users.cached("PJSIP/9999") == ("agent1",)
    users.forget()  # an account changed through this web
    assert users.cached("PJSIP/9999") is None and users.cached("PJSIP/7777") is None


async def test_a_read_under_way_when_an_account_changes_is_not_remembered(db):
    add_users(db)
    users = InterfaceUsers(db, Clock())
    reading = asyncio.ensure_future(users.of(AGENT1))
    await asyncio.sleep(0)  # the read is on the database thread
    users.forget()
    assert await reading == ("agent1",)
    assert users.cached(AGENT1) is None


def _in_flight(app) -> list:
    """The app's tasks but the staffing-plan keeper (it lives as long as the web)."""
    return [t for t in app._tasks if t is not app._plan_keeper]


async def test_nobody_at_the_interface_no_record_looked_up_and_one_lookup_per_call(config, db):
    add_users(db)
    gw = FakeGateway()
    call = [("Interface", "PJSIP/4444"), ("Queue", "consultation"), ("Uniqueid", "1.1"), ("Linkedid", "1.1"),
            ("CallerIDNum", "13800138001"), ("CallerIDName", "X")]
    async with running_web(config, db, queuecalls=FakeQueueCalls(), gateway=gw) as web:
        pop = web.app.screenpop
        for event in ("AgentCalled", "AgentConnect", "AgentComplete"):
            gw.emit(Message([("Event", event), *call]))
        while _in_flight(web.app):
            await asyncio.sleep(0.01)
        assert pop.users.lookups == 1 and pop.current == {} and pop.calls == {}
        # the next call at that interface, while the answer is remembered: no task per event
        # (only the agent desk's push), nothing shown, nothing looked up
        for event in ("AgentCalled", "AgentConnect", "AgentComplete"):
            gw.emit(Message([("Event", event), *call]))
        assert [t for t in _in_flight(web.app) if t.get_coro().__qualname__.startswith("ScreenPop.")] == []
        while _in_flight(web.app):
            await asyncio.sleep(0.01)
        assert pop.users.lookups == 1 and pop.current == {} and pop.calls == {}
        c = Client(web.port)  # an admin gives agent1 that interface: the next call pops
        await c.login("admin1")
        r = await c.post("/admin/users/agent1/edit", {"csrf_token": await c.csrf(), "role": "agent",
                                                     "interface": "PJSIP/4444", "language": "en", "name": "Agent1"})
        assert r.status == 303
        gw.emit(Message([("Event", "AgentConnect"), *call]))
        while _in_flight(web.app):
            await asyncio.sleep(0.01)
        assert pop.users.lookups == 2 and pop.current["agent1"]["interface"] == "PJSIP/4444"
    with db.session() as s:
        views = list(s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "patient.viewed")))
    assert views == ["agent1"]  # the pop nobody saw was not audited as a view
