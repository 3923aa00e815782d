"""Patient record access (issue 16.9): who viewed which patient (screen pops and look-ups),
bulk look-ups bounded, cookies Secure when the browser used HTTPS through a trusted proxy."""
from __future__ import annotations

from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.ami.tracefile import read_ami, traces_dir
from callcenter.store.models import AuditEntry, User
from dialer.models import Patient

from tests.support.web import Client, FakeGateway, FakeQueueCalls, SSEClient, add_users, running_web


def _views(db, action="patient.viewed"):
    with db.session() as s:
        return [(e.actor, e.object_id, e.detail) for e in
                s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))]


def _patient(db, phone="+8613800138001"):
    with db.session() as s:
        p = Patient(external_id="P-1", name="王小明", phone=phone, language="zh")
        s.add(p)
        s.flush()
        return p.id


async def test_lookups_are_audited_with_the_patient_and_bulk_reading_is_refused(config, db):
    add_users(db)
    pid = _patient(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock) as web:
        c = Client(web.port)
        await c.login("agent1")
        r = await c.get("/api/patients?number=13800138001")
        assert r.status == 200 and r.json()["patient_id"] == pid
        [(actor, obj, detail)] = _views(db)
        assert actor == "agent1" and obj == str(pid) and detail["via"] == "lookup"
        assert detail["number"] == "13800138001" and detail["found"] is True  # was: the last 4 digits only
        statuses = [(await c.get(f"/api/patients?number=138001380{i:02d}")).status for i in range(40)]
        assert statuses.count(200) == 29 and statuses.count(429) == 11       # 30 per 10 minutes
        assert len(_views(db)) == 30 and len(_views(db, "patient.lookups_limited")) == 1
        r = await c.get("/api/patients?number=13800138001")
        assert r.status == 429 and int(r.headers["retry-after"]) > 0
        other = Client(web.port)
        await other.login("sup1")
        assert (await other.get("/api/patients?number=13800138001")).status == 200   # per user
        clock.advance(601)
        assert (await c.get("/api/patients?number=13800138001")).status == 200


async def test_screen_pop_is_audited_for_the_agent_it_is_shown_to(config, db):
    add_users(db)
    trace = read_ami(traces_dir() / "01-inbound-answered.ami")
    connect = next(m for m in trace.events if m.event == "AgentConnect")
    pid = _patient(db, phone="+86" + connect["CallerIDNum"].lstrip("0")
                   if not connect["CallerIDNum"].startswith("+") else connect["CallerIDNum"])
    with db.session() as s:
        s.query(User).filter_by(username="agent1").one().interface = connect["Interface"]
    gw = FakeGateway()
    async with running_web(config, db, queuecalls=FakeQueueCalls(), gateway=gw) as web:
        c = Client(web.port)
        await c.login("agent1")
        sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
        await sse.next_event("status")
        gw.emit(connect)
        _, pop = await sse.next_event("pop", timeout=2.0)
        sse.close()
    [(actor, obj, detail)] = _views(db)
    assert actor == "agent1" and detail["via"] == "screen_pop" and detail["call"] == connect["Linkedid"]
    assert detail["number"] == connect["CallerIDNum"]
    assert (obj == str(pid)) == (pop["record"]["patient_id"] == pid)


async def test_cookies_secure_when_https_reached_a_trusted_proxy(config, db):
    add_users(db)
    cfg = config.with_overrides({"web": {"trusted_proxies": ["127.0.0.1"]}})
    async with running_web(cfg, db) as web:
        plain = await Client(web.port).get("/login")
        assert "Secure" not in plain.headers["set-cookie"]
        tls = await Client(web.port).get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "; Secure" in tls.headers["set-cookie"]
        c = Client(web.port)
        r = await c.login("sup1")
        assert r.status == 303
    async with running_web(config, db) as web:   # not a trusted proxy: the header is ignored
        r = await Client(web.port).get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in r.headers["set-cookie"]
