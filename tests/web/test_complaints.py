"""Complaint tickets on the web: JSON API (validation per field, 409 from the life cycle),
supervisor pages with CSRF-protected forms, the agent's own tickets, audit, and deadline
alerts pushed to the wallboard over SSE.  Real HTTP over TCP, injected clock."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.complaints import escalation
from callcenter.store.models import AuditEntry
from callcenter.web.i18n import MESSAGES

from tests.support.web import Client, FakeQueueCalls, SSEClient, add_users, answered_call, running_web

from tests import support

svc = support.complaints()  # the service as the product builds it (default policy)

SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=SH)   # a Wednesday, working day


def _clock(at: dt.datetime = T0) -> Clock:
    c = Clock()
    c.advance(at.timestamp())
    return c


async def _login(port, user):
    c = Client(port)
    assert (await c.login(user)).status == 303
    return c, {"X-CSRF-Token": await c.csrf()}


async def test_open_through_the_api_validates_each_field(config, db):
    add_users(db)
    clock = _clock()
    async with running_web(config, db, clock=clock) as web:
        c, h = await _login(web.port, "sup1")
        bad = {"category": "food", "severity": "meh", "channel": "fax", "tags": ["x" * 40],
               "patient_phone": "call me maybe", "received_at": "2027-01-01T00:00:00+08:00",
               "recording_id": "abc", "call_uniqueid": "1; DROP"}
        r = await c.post("/api/complaints", json_body=bad, headers=h)
        assert r.status == 400
        fields = r.json()["fields"]
        assert set(fields) == {"summary", "category", "severity", "channel", "tags", "patient_phone",
                               "received_at", "recording_id", "call_uniqueid"}
        assert "medical" in fields["category"] and fields["summary"] == "required"
        assert fields["received_at"] == "is in the future"
        r = await c.post("/api/complaints", json_body={"summary": "x", "received_at": "yesterday"}, headers=h)
        assert r.status == 400 and list(r.json()["fields"]) == ["received_at"]
        # a valid online complaint: 201, Location, deadlines computed from the clock's now
        r = await c.post("/api/complaints", json_body={
            "summary": "nobody answers the billing desk", "category": "fees", "channel": "online",
            "tags": ["billing", "wait"], "patient_phone": "13800138001", "patient_name": "王小明",
            "department": "billing"}, headers=h)
        assert r.status == 201, r.text
        t = r.json()
        assert r.headers["location"] == f"/api/complaints/{t['id']}"
        assert t["number"].startswith("TS-2026-") and t["status"] == "received" and t["created_by"] == "sup1"
        kinds = {d["kind"]: d for d in t["deadlines"]}
        assert set(kinds) == {"ack", "start", "answer"}
        assert kinds["ack"]["due_at"] == (T0 + dt.timedelta(hours=1)).astimezone(dt.timezone.utc).isoformat()
        assert kinds["ack"]["state"] == "due" and t["tags"] == ["billing", "wait"]
        # a form-encoded body with comma-separated tags works too
        r = await c.post("/api/complaints", {"summary": "dirty toilets", "category": "environment",
                                             "tags": "hygiene, ward 3", "csrf_token": h["X-CSRF-Token"]})
        assert r.status == 201 and r.json()["tags"] == ["hygiene", "ward 3"]
        # agents may open tickets through the API too, and see only their own
        a, ah = await _login(web.port, "agent1")
        r = await a.post("/api/complaints", json_body={"summary": "rude porter", "category": "attitude"},
                         headers=ah)
        assert r.status == 201 and r.json()["created_by"] == "agent1"
        mine = (await a.get("/api/agent/complaints")).json()
        assert [x["summary"] for x in mine["tickets"]] == ["rude porter"]
        assert (await a.get(f"/api/complaints/{t['id']}")).status == 403
        # without the CSRF token: refused before anything is stored
        r = await c.post("/api/complaints", json_body={"summary": "x"})
        assert r.status == 403
        assert (await c.get("/api/complaints")).json()["total"] == 3


async def test_life_cycle_over_the_api_409_and_audit(config, db):
    add_users(db)
    clock = _clock()
    async with running_web(config, db, clock=clock) as web:
        c, h = await _login(web.port, "sup1")
        r = await c.post("/api/complaints", json_body={"summary": "charged twice", "category": "fees",
                                                       "channel": "email", "patient_phone": "13800138001"},
                         headers=h)
        tid = r.json()["id"]
        url = f"/api/complaints/{tid}/transition"
        # illegal move: 409 with the life cycle's message, nothing changed
        r = await c.post(url, json_body={"action": "close"}, headers=h)
        assert r.status == 409
        assert r.json()["error"].startswith("cannot move a complaint ticket from 'received' to 'closed'")
        r = await c.post(url, json_body={"action": "fly"}, headers=h)
        assert r.status == 400 and "acknowledge" in r.json()["fields"]["action"]
        r = await c.post(url, json_body={"action": "reopen"}, headers=h)
        assert r.status == 400 and r.json()["fields"] == {"note": "required"}
        r = await c.post(url, json_body={"action": "progress", "note": "x", "expected_resolution": "soon"},
                         headers=h)
        assert r.status == 400 and "expected_resolution" in r.json()["fields"]
        assert (await c.post("/api/complaints/999/transition", json_body={"action": "acknowledge"},
                             headers=h)).status == 404
        assert (await c.get("/api/complaints/TS-2026-999999")).status == 404
        assert (await c.get("/api/complaints/..%2Fetc")).status == 404
        # the proper path; "to" (a state) works as well as "action"
        clock.advance(600)
        r = await c.post(url, json_body={"action": "acknowledge", "note": "called the patient"}, headers=h)
        assert r.status == 200 and r.json()["status"] == "acknowledged"
        ack = [d for d in r.json()["deadlines"] if d["kind"] == "ack"][0]
        assert ack["state"] == "met" and ack["on_time"] is True
        r = await c.post(url, json_body={"to": "investigating"}, headers=h)
        assert r.json()["status"] == "investigating"
        r = await c.post(url, json_body={"action": "progress", "note": "asked billing",
                                         "expected_resolution": "2026-11-30"}, headers=h)
        assert r.status == 200 and r.json()["expected_resolution"] == "2026-11-30"
        r = await c.post(url, json_body={"action": "resolve", "note": "refunded"}, headers=h)
        t = r.json()
        assert t["status"] == "resolved" and [d["kind"] for d in t["deadlines"] if d["state"] == "due"] == ["revisit"]
        assert t["followups"][0]["status"] == "scheduled"     # the dialer got the revisit call
        r = await c.post(url, json_body={"action": "resolve"}, headers=h)
        assert r.status == 409 and "'resolved' to 'resolved'" in r.json()["error"]
        r = await c.post(url, json_body={"action": "revisit", "satisfied": "maybe"}, headers=h)
        assert r.status == 400 and "satisfied" in r.json()["fields"]
        r = await c.post(url, json_body={"action": "revisit", "satisfied": False, "score": 2,
                                         "note": "still charged"}, headers=h)
        t = r.json()
        assert t["status"] == "investigating" and t["reopen_count"] == 1 and t["satisfied"] is False
        # classification changes are audited; severity is fixed
        r = await c.post(f"/api/complaints/{tid}/edit", json_body={"severity": "urgent"}, headers=h)
        assert r.status == 400 and "severity" in r.json()["fields"]
        r = await c.post(f"/api/complaints/{tid}/edit", json_body={"department": "billing",
                                                                   "assigned_to": "sup1"}, headers=h)
        assert r.status == 200 and r.json()["department"] == "billing"
        view = (await c.get(f"/api/complaints/{tid}")).json()
        assert view["patient_phone"] == "13800138001"     # the handler sees the number; lists mask it
        actions = [(e["actor"], e["action"], e["to"]) for e in view["events"]]
        assert ("sup1", "moved", "acknowledged") in actions and ("sup1", "revisit", "False") in actions
        assert ("sup1", "changed", "billing") in actions
    with db.session() as s:
        audit = [(a.actor, a.action) for a in s.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "complaint").order_by(AuditEntry.id))]
    assert ("sup1", "complaint.moved") in audit and ("sup1", "complaint.reopened") in audit
    assert ("sup1", "complaint.viewed") in audit and ("sup1", "complaint.changed") in audit
    assert all(actor == "sup1" or action in ("complaint.followup",) for actor, action in audit), audit


def _seed(s):
    """A spread of tickets over the last week (received times on the injected clock)."""
    out = {}
    out["old"] = svc.open_ticket(s, actor="sup1", category="fees", severity="normal", channel="phone",
                                 summary="old bill", received_at=T0 - dt.timedelta(days=6),
                                 patient_phone="13800138001", patient_name="王小明").number
    out["urgent"] = svc.open_ticket(s, actor="agent1", category="medical", severity="urgent", channel="phone",
                                    summary="bleeding", received_at=T0 - dt.timedelta(minutes=10)).number
    vm = svc.open_from_voice_message(s, caller_number="13900139003", caller_name="", recording_id=None,
                                     received_at=T0 - dt.timedelta(minutes=30), language="zh")
    out["voice"] = svc.get_ticket(s, vm).number
    done = svc.open_ticket(s, actor="sup1", category="fees", channel="phone", summary="fixed",
                           received_at=T0 - dt.timedelta(days=1))
    svc.transition(s, done.id, "investigating", actor="sup1", at=T0 - dt.timedelta(hours=20))
    svc.transition(s, done.id, "resolved", actor="sup1", at=T0 - dt.timedelta(hours=19))
    svc.transition(s, done.id, "closed", actor="sup1", at=T0 - dt.timedelta(hours=18), note="no phone")
    out["closed"] = done.number
    return out


async def test_lists_filters_and_agent_view(config, db, monkeypatch):
    add_users(db)
    n = db.call(_seed)
    async with running_web(config, db, clock=_clock()) as web:
        c, _ = await _login(web.port, "sup1")

        async def numbers(query):
            r = await c.get("/api/complaints" + query)
            assert r.status == 200, r.text
            return {x["number"] for x in r.json()["tickets"]}
        assert await numbers("") == set(n.values())
        assert await numbers("?status=open") == {n["old"], n["urgent"], n["voice"]}
        assert await numbers("?status=closed") == {n["closed"]}
        assert await numbers("?category=fees") == {n["old"], n["closed"]}
        assert await numbers("?category=none") == {n["voice"]}
        assert await numbers("?severity=urgent") == {n["urgent"]}
        # overdue now: the old ticket's start/answer, and the urgent one's 1-hour start? not yet (10 min)
        assert await numbers("?overdue=1") == {n["old"]}
        assert await numbers("?status=open&category=fees&overdue=1") == {n["old"]}
        page = (await c.get("/api/complaints?limit=2")).json()
        assert page["total"] == 4 and len(page["tickets"]) == 2
        r = await c.get("/api/complaints?severity=bad")
        assert r.status == 400 and r.json()["error"].startswith("Invalid input: severity")
        assert (await c.get("/api/complaints?status=lost")).status == 400
        body = (await c.get("/api/complaints")).text
        assert "13800138001" not in body and "王小明" not in body and "*******8001" in body
        old = [x for x in (await c.get("/api/complaints")).json()["tickets"] if x["number"] == n["old"]][0]
        assert old["overdue"] and old["next_deadline"]["state"] == "overdue"
        # the pages show the same
        html = (await c.get("/complaints?overdue=1")).text
        assert n["old"] in html and n["voice"] not in html
        html = (await c.get("/complaints?category=none")).text
        assert n["voice"] in html and "not classified" in html
        # the agent sees the tickets they opened, nobody else's
        a, _ = await _login(web.port, "agent1")
        mine = (await a.get("/api/agent/complaints")).json()
        assert [x["number"] for x in mine["tickets"]] == [n["urgent"]]
        html = (await a.get("/agent/complaints")).text
        assert n["urgent"] in html and n["old"] not in html
        assert "/agent/complaints" in (await a.get("/agent")).text


async def test_pages_and_forms(config, db, tmp_path):
    add_users(db)
    async with running_web(config, db, clock=_clock(), queuecalls=FakeQueueCalls()) as web:
        c, h = await _login(web.port, "sup1")
        token = h["X-CSRF-Token"]
        html = (await c.get("/complaints")).text
        assert 'id="cp-new"' in html and f'name="csrf_token" value="{token}"' in html
        # the new-ticket form: errors shown next to the form (400), values kept
        r = await c.post("/complaints", {"csrf_token": token, "summary": "", "department": "ward 3"})
        assert r.status == 400 and "summary: required" in r.text and 'value="ward 3"' in r.text
        r = await c.post("/complaints", {"csrf_token": token, "summary": "lost glasses", "category": "environment",
                                         "channel": "online", "patient_phone": "13700137004"})
        assert r.status == 303 and re.match(r"^/complaints/\d+$", r.location)  # no text in the URL
        tid = int(r.location.split("/")[2])
        page = await c.get(r.location)
        assert page.status == 200 and 'id="flash"' in page.text and "opened" in page.text
        assert 'data-kind="ack"' in page.text
        assert 'data-state="due"' in page.text and "13700137004" in page.text
        # a step through the form: redirect back; a refused one: the page with the message (409)
        r = await c.post(f"/complaints/{tid}/transition", {"csrf_token": token, "action": "close"})
        assert r.status == 409 and "cannot move a complaint ticket from &#39;received&#39; to &#39;closed&#39;" in r.text
        r = await c.post(f"/complaints/{tid}/transition", {"csrf_token": "forged", "action": "acknowledge"})
        assert r.status == 403
        r = await c.post(f"/complaints/{tid}/transition", {"csrf_token": token, "action": "acknowledge"})
        assert r.status == 303 and r.location == f"/complaints/{tid}"
        r = await c.post(f"/complaints/{tid}/edit", {"csrf_token": token, "category": "fees",
                                                     "department": "billing", "assigned_to": "", "tags": "a, b"})
        assert r.status == 303
        page = (await c.get(f"/complaints/{tid}")).text
        assert 'data-status="acknowledged"' in page and "billing" in page and 'data-action="changed"' in page
        assert (await c.get("/complaints/99999")).status == 404
        # Chinese
        await c.post("/language", {"csrf_token": token, "lang": "zh"})
        page = (await c.get(f"/complaints/{tid}")).text
        assert "处理时限" in page and "已确认" in page and "费用类" in page
        assert "投诉工单" in (await c.get("/complaints")).text


async def test_ticket_page_shows_a_failed_recording_and_why_not_a_play_link(config, db):
    """Issue 14.8: a recording that failed (a full disk left it empty) is shown to the
    supervisor as failed, with the reason, instead of a play link to nothing."""
    from recordings.models import Recording

    add_users(db)

    def seed(s):
        tid = svc.open_ticket(s, summary="noise at night", category="environment", channel="phone", actor="sup1",
                              received_at=T0.astimezone(dt.timezone.utc)).id
        for path, status, error in (("2026/11/25/complaint/1.1.wav", "failed", "empty file (0 bytes): disk full?"),
                                    ("2026/11/25/complaint/1.2.wav", "ready", "")):
            s.add(Recording(path=path, kind="complaint", uniqueid=path[-7:-4], started_at=T0, status=status,
                            error=error, legal_hold=False, ticket_id=tid, size=0 if error else 16044))
        s.flush()
        return tid, [r.id for r in s.scalars(select(Recording).order_by(Recording.id))]
    tid, (bad, good) = db.call(seed)
    async with running_web(config, db, clock=_clock(), queuecalls=FakeQueueCalls()) as web:
        c, _ = await _login(web.port, "sup1")
        page = (await c.get(f"/complaints/{tid}")).text
    assert "recording failed" in page and "empty file (0 bytes): disk full?" in page
    assert f"/recordings/{bad}/audio" not in page and f"/recordings/{good}/audio" in page


def test_every_message_key_used_by_the_templates_exists():
    root = Path(__file__).resolve().parents[2] / "callcenter" / "web" / "templates"
    used = set()
    for f in root.glob("*.html"):
        used |= set(re.findall(r"(?<![\w.])t\('([a-z_.\-]+)'\)", f.read_text()))
    static = {k for k in used if not k.endswith(".")}
    assert static <= set(MESSAGES), static - set(MESSAGES)
    from callcenter.complaints import lifecycle
    from callcenter.complaints.deadlines import CHANNELS, KINDS, SEVERITIES
    from callcenter.complaints.forms import ACTIONS

    for prefix, values in (("cp.state.", lifecycle.STATES), ("cp.sev.", SEVERITIES), ("cp.ch.", CHANNELS),
                           ("cp.dl.", KINDS), ("cp.do.", ACTIONS),
                           ("cp.dls.", ("due", "approaching", "overdue", "met", "replaced")),
                           ("cp.recording_status.", ("recording", "missing", "failed", "purged"))):
        for v in values:
            assert prefix + v in MESSAGES, prefix + v


async def test_deadline_alerts_pushed_to_the_wallboard(config, db, monkeypatch):
    add_users(db)
    clock = _clock()
    comp = escalation.ComplaintsComponent(db, clock, complaints=svc, interval=60)
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls(), escalation=comp) as web:
        await comp.start()
        try:
            c, h = await _login(web.port, "sup1")
            r = await c.post("/api/complaints", json_body={"summary": "no parking", "category": "environment",
                                                           "channel": "online"}, headers=h)
            number, tid = r.json()["number"], r.json()["id"]
            sse = await SSEClient.open(web.port, "/events/wallboard", c.cookies)
            _, first = await sse.next_event("complaints")
            assert first["alerts"] == [] and first["available"]
            # online ack due 10:00; warned at 80 % = 09:48
            clock.advance(49 * 60)
            await comp.idle()
            _, pushed = await sse.next_event("complaints", timeout=2)
            assert [(a["ticket"], a["deadline"], a["state"]) for a in pushed["alerts"]] == [
                (number, "ack", "approaching")]
            assert pushed["approaching"] == 1 and pushed["alerts"][0]["due_local"] == "11-25 10:00"
            clock.advance(12 * 60)
            await comp.idle()
            _, pushed = await sse.next_event("complaints", timeout=2)
            assert pushed["alerts"][0]["state"] == "overdue" and pushed["overdue"] == 1
            board = (await c.get("/api/wallboard")).json()
            assert board["complaints"]["alerts"][0]["ticket"] == number
            page = (await c.get("/wallboard")).text
            assert f'data-ticket="{number}"' in page and f'href="/complaints/{tid}"' in page
            # acknowledging clears it at once (no waiting for the next periodic check)
            r = await c.post(f"/api/complaints/{tid}/transition", json_body={"action": "acknowledge"},
                             headers=h)
            assert r.status == 200
            _, pushed = await sse.next_event("complaints", timeout=2)
            assert pushed["alerts"] == [] and comp.alerts() == []
            sse.close()
        finally:
            await comp.stop()


async def test_agent_opens_a_ticket_from_the_outcome_form(config, db):
    add_users(db)
    answered_call(db, "1795346775.48")  # the agent's call: an unknown one is 404
    async with running_web(config, db, clock=_clock(), queuecalls=FakeQueueCalls()) as web:
        a, h = await _login(web.port, "agent1")
        form = {"csrf_token": h["X-CSRF-Token"], "uniqueid": "1795346775.48", "outcome": "complaint",
                "note": "X-ray results lost twice", "caller_number": "13800138001", "caller_name": "王小明",
                "open_complaint": "1", "category": "medical", "severity": "complex", "department": "radiology"}
        r = await a.post("/agent/outcome", {**form, "severity": "huge"})
        assert r.status == 400 and "severity" in r.text
        r = await a.post("/agent/outcome", form)
        assert r.status == 303 and r.location == "/agent"
        assert re.search(r'id="flash" role="status">Outcome saved\. Complaint ticket TS-2026-\d+ opened\.</p>',
                         (await a.get("/agent")).text)
        mine = (await a.get("/api/agent/complaints")).json()["tickets"]
        assert [(x["severity"], x["department"], x["status"]) for x in mine] == [
            ("complex", "radiology", "acknowledged")]       # phone: acknowledged on the call
        s, _ = await _login(web.port, "sup1")
        view = (await s.get(f"/api/complaints/{mine[0]['id']}")).json()
        assert {d["kind"] for d in view["deadlines"]} == {"start", "progress"}
        assert ("call", "1795346775.48") in {(lk["kind"], lk["ref"]) for lk in view["links"]}
        assert view["patient_phone"] == "+8613800138001"  # stored in E.164 like every number
        from callcenter.web.models import CallOutcome
        assert [o.caller_number for o in db.call(lambda ses: list(ses.scalars(select(CallOutcome))))] == [
            "+8613800138001"]
