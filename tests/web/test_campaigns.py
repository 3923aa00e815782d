"""Campaigns on the web: the campaigns report uses the dialer's own figures, campaign pages
and JSON API, API tokens, the import endpoint.  Real HTTP over TCP; real attempt rows."""
from __future__ import annotations

import datetime as dt

from twisted.internet.task import Clock

from dialer.campaigns import contact_row, create_campaign, insert_contacts, status
from dialer.models import Attempt, Campaign, Contact

from .helpers import Client, FakeQueueCalls, add_users, running_web

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)  # 11:00 in Shanghai


def utc_clock() -> Clock:
    c = Clock()
    c.advance(NOW.timestamp())
    return c


def seed_campaign(s, name="no-shows", kind="no_show"):
    """Five contacts with real attempt rows as the dialer writes them (dispositions per
    docs: there is no final disposition 'answered'; answered = answered_at set)."""
    c = create_campaign(s, name=name, kind=kind, mode="progressive", queue="consultation", state="running")
    before = NOW - dt.timedelta(hours=2)
    insert_contacts(s, [contact_row(c.id, f"a{i}", phone=f"+861380013800{i}", name=f"P{i}", reason=kind,
                                    ref_type="appointment", ref_id=i, due_after=before, due_before=None,
                                    patient_id=None, now=before) for i in range(1, 6)])
    cs = {x.phone[-1]: x for x in s.query(Contact).filter(Contact.campaign_id == c.id)}
    t = before + dt.timedelta(minutes=5)

    def attempt(contact, disposition, answered=False, abandoned=False):
        s.add(Attempt(contact_id=contact.id, campaign_id=c.id, phone=contact.phone, state="ended",
                      disposition=disposition, started_at=t, answered_at=t if answered else None,
                      ended_at=t, abandoned=abandoned))
        contact.attempts += 1
    attempt(cs["1"], "busy")
    attempt(cs["1"], "reached", answered=True)
    cs["1"].state, cs["1"].outcome = "done", "rebooked"
    attempt(cs["2"], "completed", answered=True)
    cs["2"].state, cs["2"].outcome = "done", "completed"
    attempt(cs["3"], "abandoned", answered=True, abandoned=True)
    cs["3"].next_attempt_at = NOW + dt.timedelta(hours=1)
    attempt(cs["5"], "opted_out", answered=True)
    cs["5"].state, cs["5"].outcome = "done", "opted_out"
    s.flush()
    return c.id


async def test_campaigns_report_counts_what_the_dialer_writes(config, db):
    add_users(db)
    db.call(seed_campaign)
    with db.session() as s:
        expected = status(s, s.query(Campaign).one(), now=NOW.timestamp(),
                          abandon_days=config.dialer.predictive_window_days)
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        r = await c.get("/api/reports/campaigns?to=2026-11-25")
        assert r.status == 200, r.text
        row, = r.json()["rows"]
        # the figures `callcenter campaign status` prints, not a disposition nobody writes
        assert (row["attempts"], row["answered"], row["reached"], row["completed"], row["rebooked"],
                row["opted_out"], row["due"], row["pending"], row["dialled"]) == (5, 4, 4, 2, 1, 1, 1, 2, 4)
        assert row["abandon_rate"] == 0.25 and row["progress"] == 0.6
        assert {k: v for k, v in row.items() if k != "progress"} == {
            k: expected[k] for k in row if k != "progress"}
        csv = (await c.get("/reports/campaigns.csv")).body.decode("utf-8-sig").splitlines()
        assert csv[0].startswith("campaign,kind,mode,state,contacts,due") and csv[1].startswith("no-shows,no_show")


def seed_missed_appointment(s):
    from dialer.models import Appointment, Patient

    p = Patient(external_id="P1", name="Zhang San", phone="+8613800138001", language="zh")
    s.add(p)
    s.flush()
    s.add(Appointment(external_id="A1", patient_id=p.id, scheduled_at=NOW - dt.timedelta(hours=3),
                      status="missed", department="dental"))


def audit_actions(db):
    from callcenter.store.models import AuditEntry

    with db.session() as s:
        return [(a.actor, a.action, a.object_id) for a in s.query(AuditEntry).order_by(AuditEntry.id)
                if a.action.startswith("campaign_")]


async def test_campaign_api_create_start_pause_resume(config, db):
    add_users(db)
    db.call(seed_missed_appointment)
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        h = {"X-CSRF-Token": await c.csrf()}
        r = await c.post("/api/campaigns", json_body={"name": "no-shows", "kind": "no_show",
                                                      "mode": "progressive", "queue": "consultation"}, headers=h)
        assert r.status == 201, r.text
        made = r.json()
        assert (made["state"], made["kind"], made["queue"], made["contacts_created"], made["contacts"],
                made["due"]) == ("draft", "no_show", "consultation", 1, 1, 1)
        cid = made["id"]
        # invalid input names the field; a taken name is a conflict
        for body, field in (({"name": "x", "kind": "callback"}, "kind"), ({"name": "", "kind": "revisit"}, "name"),
                            ({"name": "y", "kind": "no_show", "types": ["implant"]}, "types"),
                            ({"name": "y", "kind": "revisit", "types": ["brain_surgery"]}, "types"),
                            ({"name": "y", "kind": "revisit", "mode": "robocall"}, "mode"),
                            ({"name": "y", "kind": "revisit", "max_attempts": 0}, "max_attempts"),
                            ({"name": "y", "kind": "revisit", "queue": "a b"}, "queue")):
            r = await c.post("/api/campaigns", json_body=body, headers=h)
            assert r.status == 400 and r.json()["error"].startswith(f"Invalid input: {field}:"), (body, r.text)
        r = await c.post("/api/campaigns", json_body={"name": "no-shows", "kind": "revisit"}, headers=h)
        assert r.status == 409 and "exists" in r.json()["error"]
        r = await c.post("/api/campaigns", json_body={"name": "implants", "kind": "revisit", "mode": "survey",
                                                      "types": ["implant", "root_canal"], "start": True}, headers=h)
        assert r.status == 201 and r.json()["state"] == "running"
        assert r.json()["settings"]["treatment_types"] == ["implant", "root_canal"]
        # life cycle: start (draft) -> pause -> resume; wrong steps are 409
        assert (await c.post(f"/api/campaigns/{cid}/resume", headers=h)).status == 409
        r = await c.post(f"/api/campaigns/{cid}/start", headers=h)
        assert r.status == 200 and r.json()["state"] == "running"
        assert (await c.post(f"/api/campaigns/{cid}/start", headers=h)).status == 409
        assert (await c.post(f"/api/campaigns/{cid}/pause", headers=h)).json()["state"] == "paused"
        assert (await c.post(f"/api/campaigns/{cid}/resume", headers=h)).json()["state"] == "running"
        assert (await c.post("/api/campaigns/999/start", headers=h)).status == 404
        assert (await c.post(f"/api/campaigns/{cid}/stop", headers=h)).status == 404
        # read back: the same figures as the dialer's status
        r = await c.get(f"/api/campaigns/{cid}")
        with db.session() as s:
            expected = status(s, s.get(Campaign, cid), now=NOW.timestamp(),
                              abandon_days=config.dialer.predictive_window_days)
        assert {k: r.json()[k] for k in expected} == expected
        assert (await c.get("/api/campaigns/no-shows")).json()["id"] == cid
        assert (await c.get("/api/campaigns/nope")).status == 404
        listed = (await c.get("/api/campaigns")).json()
        assert listed["available"] and [x["campaign"] for x in listed["campaigns"]] == ["no-shows", "implants"]
    assert audit_actions(db) == [("sup1", "campaign_create", str(cid)), ("sup1", "campaign_create", str(cid + 1)),
                                 ("sup1", "campaign_start", str(cid)), ("sup1", "campaign_pause", str(cid)),
                                 ("sup1", "campaign_resume", str(cid))]


async def test_campaign_pages_and_forms_in_both_languages(config, db):
    add_users(db)
    db.call(seed_campaign)
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("admin1")
        page = await c.get("/campaigns")
        assert page.status == 200 and 'data-campaign="no-shows" data-state="running"' in page.text
        assert "Outbound campaigns" in page.text and 'class="camp-pause"' in page.text
        token = await c.csrf()
        r = await c.post("/campaigns", {"csrf_token": token, "name": "revisits", "kind": "revisit",
                                        "mode": "survey", "types": "implant, extraction"})
        assert r.status == 303 and r.location.startswith("/campaigns/")
        detail = await c.get(r.location)
        assert detail.status == 200 and "Campaign revisits created" in detail.text
        assert 'id="camp-state">draft<' in detail.text and 'class="camp-start"' in detail.text
        r = await c.post("/campaigns", {"csrf_token": token, "name": "revisits", "kind": "revisit"})
        assert r.status == 409 and "exists already" in r.text
        r = await c.post("/campaigns", {"csrf_token": token, "name": "z", "kind": "nonsense"})
        assert r.status == 400 and "kind" in r.text
        assert (await c.post("/campaigns/1/pause", {"csrf_token": "forged"})).status == 403
        r = await c.post("/campaigns/1/pause", {"csrf_token": token})
        assert r.status == 303 and r.location.startswith("/campaigns/1?")
        one = await c.get("/campaigns/1")
        assert 'id="camp-state">paused<' in one.text and 'class="camp-resume"' in one.text
        assert '<tr data-figure="answered"><th>Answered</th><td>4</td>' in one.text
        assert (await c.post("/campaigns/1/pause", {"csrf_token": token})).status == 409
        assert (await c.get("/campaigns/77")).status == 404
        await c.post("/language", {"csrf_token": token, "lang": "zh"})
        zh = (await c.get("/campaigns/1")).text
        assert "外呼活动" in zh and "爽约召回" in zh and "已暂停" in zh
