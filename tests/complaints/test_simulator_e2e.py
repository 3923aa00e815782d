"""Issue 7 end to end, through the whole service as it runs in production.

``Service`` with every real component (AMI gateway, queue calls, FastAGI IVR, recordings,
complaint escalation, dialer, web) against the simulated Asterisk over real TCP (AMI and
FastAGI), time-scaled on one :class:`ScaledClock` (Wednesday 18:30 in Shanghai: the
hotline is closed, the dialer's calling window still open):

1. two callers reach the ``hotline`` IVR after hours and leave a complaint voice message;
2. each message is catalogued as a recording, and a ticket is opened automatically and
   linked to the recording, the call and the IVR session;
3. a supervisor finds the tickets through the web API over HTTP, classifies them and
   resolves them (which asks the dialer for the revisit call, due within 24 h);
4. the dialer places both revisit calls through the simulator; the patients answer the
   ``revisit_survey``: one is satisfied (5/5) -> the ticket is revisited and closed, the
   other is not (2/5) -> the ticket reopens with a new round of deadlines.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock

from tests.support.web import Client, add_users
from tests.support.waiting import until

pytestmark = pytest.mark.slow

AFTER_HOURS = dt.datetime(2026, 11, 25, 18, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
HAPPY, UNHAPPY = "13800138001", "13900139002"


@pytest.mark.timeout(90)
async def test_voice_message_to_closed_or_reopened_ticket(config, db, tmp_path):
    from callcenter.complaints.models import ComplaintTicket
    from callcenter.app import build
    from callcenter.simulator import SimConfig, SimulatedPBX
    from dialer.campaigns import create_campaign
    from dialer.models import Attempt, Contact
    from ivr_flows.models import IvrSession
    from recordings.models import Recording

    clock = ScaledClock(reactor, 20, start=AFTER_HOURS)
    sim = SimConfig()
    spool = tmp_path / "recordings"
    pbx = SimulatedPBX(clock, seed=7, spool_dir=tmp_path / "pbx", agi_port=1, config=sim)
    await pbx.start(host="127.0.0.1", ami_port=0)
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username, "secret": sim.secret},
        "agi": {"host": "127.0.0.1", "port": 0},
        "recordings": {"directory": str(spool), "spool_dir": str(spool)},
        "dialer": {"channel_template": "Local/{number}@sim-patient", "dial_format": "national",
                   "instance": "e2e"},
        "web": {"host": "127.0.0.1", "port": 0},
    })
    add_users(db)
    # The operator's one-time set-up: complaint revisits are made by the automated survey
    # (`callcenter campaign create complaint-revisits --kind complaint_followup --mode survey --start`);
    # without it the dialer creates the campaign in progressive (agent) mode.
    db.call(lambda s: create_campaign(s, name="complaint-revisits", kind="complaint_followup", mode="survey",
                                      state="running"))
    service = build(cfg, clock=clock, db=db)
    try:
        await service.start()
        pbx.agi_port = service.agi.port
        await service.ami.wait_connected(10)
        for number, digits in ((HAPPY, "1w4w5"), (UNHAPPY, "1w4w2")):
            pbx.set_patient(number, "answer", ring=2, survey_digits=digits, hold=30, delay=1)

        # 1. after hours: language 1 (zh), after-hours menu 1 (complaint message), speak, hang up
        calls = [pbx.inbound_call(HAPPY, "王小明", context="hotline", digits="1w1", digit_delay=1, patience=15),
                 pbx.inbound_call(UNHAPPY, "李娜", context="hotline", digits="1w1", digit_delay=1, patience=15)]

        def tickets(s):
            return list(s.scalars(select(ComplaintTicket).order_by(ComplaintTicket.id)))

        def ivr_results(s):
            return [r.result for r in s.scalars(select(IvrSession).where(
                IvrSession.uniqueid.in_([c.uniqueid for c in calls])))]

        async def two_tickets():
            return (all(c.done for c in calls) and len(await db.run(tickets)) == 2
                    and all(await db.run(ivr_results)))
        await until(two_tickets, "two voice-message tickets, IVR sessions finished")

        # 2. catalogued and linked
        def snapshot(s):
            sessions = {r.uniqueid: r for r in s.scalars(select(IvrSession))}
            recs = {r.uniqueid: r for r in s.scalars(select(Recording))}
            return sessions, recs
        sessions, recs = await db.run(snapshot)
        by_phone = {}
        for call, number in zip(calls, (HAPPY, UNHAPPY)):
            assert sessions[call.uniqueid].result == "voicemail"
            rec = recs[call.uniqueid]
            assert (rec.kind, rec.status) == ("voice_message", "ready")
            assert (spool / rec.path).is_file()
            by_phone[number] = (call, rec)

        # 3. the supervisor, over HTTP: finds the unclassified tickets, opens each, resolves it
        web = Client(service.web.port)
        assert (await web.login("sup1")).status == 303
        h = {"X-CSRF-Token": await web.csrf()}
        listed = (await web.get("/api/complaints?category=none&status=open")).json()["tickets"]
        assert len(listed) == 2 and all(t["channel"] == "voicemail" for t in listed)
        ids = {}
        for t in listed:
            view = (await web.get(f"/api/complaints/{t['id']}")).json()
            assert view["patient_phone"].startswith("+86")  # stored in E.164 like every number
            call, rec = by_phone[view["patient_phone"][3:]]
            ids[view["patient_phone"][3:]] = t["id"]
            assert {(lk["kind"], lk["ref"]) for lk in view["links"]} == {
                ("recording", str(rec.id)), ("call", call.uniqueid),
                ("ivr_session", str(sessions[call.uniqueid].id))}
            assert [r["id"] for r in view["recordings"]] == [rec.id]
            assert {d["kind"] for d in view["deadlines"]} == {"ack", "start", "answer"}
            url = f"/api/complaints/{t['id']}"
            r = await web.post(url + "/edit", json_body={"category": "attitude", "department": "outpatient"},
                               headers=h)
            assert r.status == 200, r.text
            r = await web.post(url + "/transition", json_body={"action": "investigate"}, headers=h)
            assert r.status == 200 and r.json()["status"] == "investigating"
            r = await web.post(url + "/transition", json_body={"action": "resolve", "note": "apologised"},
                               headers=h)
            assert r.status == 200, r.text
            resolved = r.json()
            assert resolved["status"] == "resolved" and resolved["followups"][0]["status"] == "scheduled"
        # the recordings know their tickets now (complaint retention)
        recs = (await db.run(snapshot))[1]
        assert {recs[c.uniqueid].ticket_id for c, _ in by_phone.values()} == set(ids.values())

        # 4. the dialer calls both patients through the simulator; the survey reports back
        def ended(s):
            return [a.state == "ended" for a in s.scalars(select(Attempt))]

        async def both_revisited():
            ts = {t.id: t for t in await db.run(tickets)}
            done = await db.run(ended)
            return all(ts[i].revisited_at is not None for i in ids.values()) and len(done) == 2 and all(done)
        await until(both_revisited, "both revisit calls made, reported and hung up")

        def results(s):
            attempts = {a.phone: a for a in s.scalars(select(Attempt))}
            contacts = {c.phone: c for c in s.scalars(select(Contact))}
            return attempts, contacts
        attempts, contacts = await db.run(results)
        happy = (await web.get(f"/api/complaints/{ids[HAPPY]}")).json()
        unhappy = (await web.get(f"/api/complaints/{ids[UNHAPPY]}")).json()
    finally:
        await service.stop()
        await pbx.stop()

    for number in (HAPPY, UNHAPPY):
        a = attempts["+86" + number]
        assert a.disposition == "completed" and a.uniqueid, (a.disposition, a.state)
        assert contacts["+86" + number].ref_id == str(ids[number])
    assert attempts["+86" + HAPPY].survey == {"recovery": "4", "satisfaction": "5"}
    # satisfied: revisited, then closed
    assert happy["status"] == "closed" and happy["satisfied"] is True and happy["satisfaction"] == 5
    moves = [(e["actor"], e["from"], e["to"]) for e in happy["events"] if e["action"] == "moved"]
    assert moves[-2:] == [("dialer", "resolved", "revisited"), ("dialer", "revisited", "closed")]
    assert [d["state"] for d in happy["deadlines"] if d["kind"] == "revisit"] == ["met"]
    # not satisfied: recorded, and the ticket reopens with a new answer deadline (round 1)
    assert unhappy["status"] == "investigating" and unhappy["reopen_count"] == 1
    assert unhappy["satisfied"] is False and unhappy["satisfaction"] == 2
    assert [e["action"] for e in unhappy["events"]][-2:] == ["revisit", "reopened"]
    assert [(d["kind"], d["state"]) for d in unhappy["deadlines"] if d["round"] == 1] == [("answer", "due")]
