"""Campaigns on the web: the campaigns report uses the dialer's own figures, campaign pages
and JSON API, API tokens, the import endpoint.  Real HTTP over TCP; real attempt rows."""
from __future__ import annotations

import datetime as dt

from twisted.internet.task import Clock

from dialer.campaigns import contact_row, create_campaign, insert_contacts, status
from dialer.models import Attempt, Campaign, Contact

from tests.support.web import Client, FakeQueueCalls, add_users, running_web

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
                      connected_at=t if disposition == "reached" else None,  # an agent took it
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
        # the figures `callcenter campaign status` prints, not a disposition nobody writes;
        # reached = an agent took the call (not the survey, opt-out or abandoned answers)
        assert (row["attempts"], row["answered"], row["reached"], row["completed"], row["rebooked"],
                row["opted_out"], row["due"], row["pending"], row["dialled"]) == (5, 4, 1, 2, 1, 1, 1, 2, 4)
        assert row["abandon_rate"] == 0.25 and row["progress"] == 0.6
        assert {k: v for k, v in row.items() if k != "progress"} == {
            k: expected[k] for k in row if k != "progress"}
        csv = (await c.get("/reports/campaigns.csv")).body.decode("utf-8-sig").splitlines()
        # the page's table: headings and words in the user's language, rates as percentages
        assert csv[0].startswith("Campaign,Kind,State,Contacts,Pending,Dialled,Reached an agent")
        assert csv[1].startswith("no-shows,No-show recovery,") and csv[1].endswith(",25.0%,,60.0%")


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
        assert (await c.get("/api/campaigns/" + "9" * 30)).status == 404   # no integer overflow
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
        assert r.status == 303 and r.location == "/campaigns/1"
        one = await c.get("/campaigns/1")
        assert 'id="flash" role="status">Campaign no-shows is now paused.</p>' in one.text   # once
        assert 'id="flash"' not in (await c.get("/campaigns/1")).text
        assert "Please call" not in (await c.get("/campaigns/1?notice=Please+call+0900")).text
        assert 'id="camp-state">paused<' in one.text and 'class="camp-resume"' in one.text
        assert '<tr data-figure="answered"><th>Answered</th><td>4</td>' in one.text
        assert (await c.post("/campaigns/1/pause", {"csrf_token": token})).status == 409
        assert (await c.get("/campaigns/77")).status == 404
        await c.post("/language", {"csrf_token": token, "lang": "zh"})
        zh = (await c.get("/campaigns/1")).text
        assert "外呼活动" in zh and "爽约召回" in zh and "已暂停" in zh


# --- API tokens and the import endpoint --------------------------------------------------------

def audit_rows(db, prefix):
    from callcenter.store.models import AuditEntry

    with db.session() as s:
        return [(a.actor, a.action, a.object_id, a.detail) for a in s.query(AuditEntry).order_by(AuditEntry.id)
                if a.action.startswith(prefix)]


def new_token(name, role, capsys):
    from callcenter.cli import main

    capsys.readouterr()
    assert main(["tokens", "add", name, "--role", role]) == 0
    out = capsys.readouterr()
    assert "shown only now" in out.err
    return out.out.strip()


async def test_api_tokens_cli_bearer_and_audit(config, db, capsys):
    from callcenter.cli import main
    from callcenter.web.models import ApiToken

    add_users(db)
    token = new_token("his", "supervisor", capsys)
    admin_token = new_token("ops", "admin", capsys)
    assert token.startswith("cct_") and len(token) > 40
    with db.session() as s:
        stored = {t.name: t.token_hash for t in s.query(ApiToken)}
    assert token not in stored.values() and len(stored["his"]) == 64   # only the SHA-256 is kept
    assert main(["tokens", "add", "his", "--role", "admin"]) == 2 and "exists" in capsys.readouterr().err
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)       # no session, no CSRF token
        bearer = {"Authorization": f"Bearer {token}"}
        r = await c.get("/api/campaigns", headers=bearer)
        assert r.status == 200 and r.json()["campaigns"] == []
        r = await c.post("/api/campaigns", json_body={"name": "no-shows", "kind": "no_show"}, headers=bearer)
        assert r.status == 201, r.text
        assert (await c.get("/api/me", headers=bearer)).json()["username"] == "token:his"
        # its role is enforced; pages do not take tokens
        assert (await c.get("/api/users", headers=bearer)).status == 403
        assert (await c.get("/api/agent/status", headers=bearer)).status == 403
        r = await c.get("/campaigns", headers=bearer)
        assert r.status == 303 and r.location.startswith("/login")
        # wrong, malformed and revoked tokens are refused
        for bad in ("Bearer cct_nope", "Bearer ", "bearer " + token[:-1]):
            r = await c.get("/api/campaigns", headers={"Authorization": bad})
            assert r.status == 401 and "Bearer" in r.headers["www-authenticate"], bad
        admin = {"Authorization": f"Bearer {admin_token}"}
        listed = (await c.get("/api/tokens", headers=admin)).json()["tokens"]
        assert [(x["name"], x["role"], x["revoked"]) for x in listed] == [("his", "supervisor", False),
                                                                           ("ops", "admin", False)]
        assert token not in json_text(listed) and listed[0]["last_used_at"]
        assert (await c.post("/api/tokens/his/revoke", headers=admin)).status == 200
        assert (await c.get("/api/campaigns", headers=bearer)).status == 401
        assert (await c.post("/api/tokens/nobody/revoke", headers=admin)).status == 404
    uses = audit_rows(db, "api_token")
    assert ("token:his", "api_token_use", "GET /api/campaigns") in [u[:3] for u in uses]
    assert ("token:his", "api_token_use", "POST /api/campaigns") in [u[:3] for u in uses]
    assert [u[:3] for u in uses if u[1] == "api_token_refused"] == [
        ("token:?", "api_token_refused", "GET /api/campaigns")] * 3 + [
        ("token:his", "api_token_refused", "GET /api/campaigns")]
    assert ("ops", "api_token_revoke") not in uses and ("token:ops", "api_token_revoke", "his") in [
        u[:3] for u in uses]
    assert audit_rows(db, "campaign_create")[0][0] == "token:his"
    assert main(["tokens", "list"]) == 0
    out = capsys.readouterr().out
    assert "his\tsupervisor\trevoked" in out and "ops\tadmin\tactive" in out and token not in out
    assert main(["tokens", "revoke", "nobody"]) == 2


def json_text(obj) -> str:
    import json

    return json.dumps(obj, default=str)


PATIENTS = [{"patient_id": "H001", "name": "张三", "phone": "138 0013 8001"},
            {"patient_id": "H002", "name": "Li Si", "phone": "+86 139 0013 9002", "language": "en"}]


async def test_import_endpoint_all_or_nothing(config, db, capsys):
    from dialer.models import Appointment, Contact, Patient, Treatment

    add_users(db)
    token = new_token("his", "supervisor", capsys)
    h = {"Authorization": f"Bearer {token}"}
    async with running_web(config, db, clock=utc_clock(), queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        assert (await c.post("/api/campaigns", json_body={"name": "no-shows", "kind": "no_show", "start": True},
                             headers=h)).status == 201
        r = await c.post("/api/import/patients", json_body=PATIENTS, headers=h)
        assert r.status == 201, r.text
        assert {k: r.json()[k] for k in ("applied", "rows", "inserted", "updated", "unchanged", "errors")} == {
            "applied": True, "rows": 2, "inserted": 2, "updated": 0, "unchanged": 0, "errors": []}
        r = await c.post("/api/import/patients", json_body={"rows": PATIENTS}, headers=h)   # idempotent
        assert r.status == 200 and (r.json()["inserted"], r.json()["unchanged"]) == (0, 2)
        # one bad row among good ones: every problem reported, nothing written
        rows = [{"treatment_id": "T1", "patient_id": "H001", "type": "implant", "treated_at": "2026-11-20"},
                {"treatment_id": "T2", "patient_id": "H999", "type": "implant", "treated_at": "2026-11-20"},
                {"treatment_id": "T3", "patient_id": "H002", "type": "brain_surgery", "treated_at": "2026-02-30"},
                "not an object"]
        r = await c.post("/api/import/treatments", json_body=rows, headers=h)
        assert r.status == 422 and r.json()["applied"] is False and "nothing imported" in r.json()["error"]
        errs = {(e["line"], e["field"]) for e in r.json()["errors"]}
        assert errs == {(2, "patient_id"), (3, "type"), (3, "treated_at"), (4, "*")}, r.json()["errors"]
        assert all(e["reason"] for e in r.json()["errors"])
        with db.session() as s:
            assert s.query(Treatment).count() == 0
        r = await c.post("/api/import/treatments", json_body=rows[:1], headers=h)
        assert r.status == 201 and r.json()["inserted"] == 1
        # a missed appointment becomes a contact of the running no-show campaign at once
        r = await c.post("/api/import/appointments", json_body=[
            {"appointment_id": "A1", "patient_id": "H002", "scheduled_at": "2026-11-25 09:00",
             "status": "missed", "department": "dental"}], headers=h)
        assert r.status == 201 and r.json()["contacts_created"] == 1
        # malformed bodies
        for body, ctype in ((b'{"a": 1}', "application/json"), (b"[1,", "application/json"),
                            (b"patient_id=1", "application/x-www-form-urlencoded")):
            r = await raw_post(c, "/api/import/patients", body, {**h, "Content-Type": ctype})
            assert r.status == 400 and r.json()["error"], body
        assert (await c.post("/api/import/doctors", json_body=[], headers=h)).status == 404
        # a browser session may import too, but only with its CSRF token
        s = Client(web.port)
        await s.login("sup1")
        assert (await s.post("/api/import/patients", json_body=PATIENTS)).status == 403
        r = await s.post("/api/import/patients", json_body=PATIENTS, headers={"X-CSRF-Token": await s.csrf()})
        assert r.status == 200 and r.json()["unchanged"] == 2
        agent = Client(web.port)
        await agent.login("agent1")
        r = await agent.post("/api/import/patients", json_body=PATIENTS, headers={"X-CSRF-Token": await agent.csrf()})
        assert r.status == 403
    with db.session() as s:
        assert {p.external_id: p.phone for p in s.query(Patient)} == {"H001": "+8613800138001",
                                                                     "H002": "+8613900139002"}
        assert s.query(Appointment).count() == 1
        contact = s.query(Contact).one()
        assert (contact.phone, contact.ref_type) == ("+8613900139002", "appointment")
    imports = audit_rows(db, "import")
    assert [(a[0], a[2], a[3]["applied"], a[3]["errors"]) for a in imports][:3] == [
        ("token:his", "api:token:his", True, 0), ("token:his", "api:token:his", True, 0),
        ("token:his", "api:token:his", False, len(errs))]


async def raw_post(client, path, body, headers):
    import asyncio

    return await asyncio.to_thread(client._do, "POST", path, body, headers)
