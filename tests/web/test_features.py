"""Erlang C, report figures and formats, OpenAPI, the users CLI, SSE latency, queue actions."""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from callcenter import staffing
from callcenter.ami.codec import Message
from callcenter.ami.tracefile import read_ami, traces_dir
from callcenter.web import reports
from callcenter.web.openapi import document
from callcenter.web.routes import ROUTES

from tests.support.web import Client, FakeGateway, FakeQueueCalls, SSEClient, add_users, running_web

TZ = ZoneInfo("Asia/Shanghai")


# --- Erlang C: the textbook example (100 calls / 30 min, AHT 180 s = 10 Erlangs, 20 s target) ---
@pytest.mark.parametrize("n,pw,sl,asa", [(11, 0.6821, 0.3896, 122.8), (12, 0.4494, 0.6402, 40.4),
                                         (13, 0.2853, 0.7956, 17.1), (14, 0.1741, 0.8884, 7.8)])
def test_erlang_c_textbook_values(n, pw, sl, asa):
    assert staffing.erlang_c(n, 10.0) == pytest.approx(pw, abs=5e-4)
    assert staffing.service_level(n, 10.0, 180, 20) == pytest.approx(sl, abs=5e-4)
    assert staffing.asa(n, 10.0, 180) == pytest.approx(asa, abs=0.05)


def test_agents_needed():
    adv = staffing.agents_needed(100, 1800, 180, target_seconds=20, goal=0.8)
    assert adv.agents == 14 and adv.traffic_erlangs == 10.0
    assert staffing.agents_needed(0, 3600, 180).agents == 0
    assert staffing.erlang_c(10, 10.0) == 1.0  # cannot keep up
    assert staffing.agents_needed(2000, 3600, 300, goal=0.8).agents > 2000 * 300 / 3600
    with pytest.raises(ValueError):
        staffing.agents_needed(10, 0, 100)


# --- report figures ----------------------------------------------------------------------------
def _call(h, m, wait, outcome, agent="Local/1001@sim-agent/n", talk=60.0, day=23):
    return {"queue": "consultation", "entered_at": dt.datetime(2026, 11, day, h, m, tzinfo=TZ),
            "wait_seconds": wait, "outcome": outcome, "agent": agent if outcome == "answered" else "",
            "agent_name": "Wang", "talk_seconds": talk if outcome == "answered" else None,
            "caller_number": "+8613800138001"}


ROWS = [_call(9, 0, 5, "answered"), _call(9, 10, 40, "answered"), _call(9, 20, 3, "abandoned"),
        _call(10, 0, 50, "abandoned"), _call(10, 5, 12, "answered", day=24), _call(10, 6, 60, "timeout")]


def _reports(db, rows):
    """The queue-call reports over ``rows`` stored as queue calls (the database counts them)."""
    from callcenter.queuecalls.models import QueueCall
    from callcenter.web.views_reports import QUEUE_REPORTS, queue_reports

    with db.session() as s:
        for i, r in enumerate(rows):
            s.add(QueueCall(uniqueid=f"u{i}", linkedid=f"u{i}", queue=r["queue"], leg=1,
                            caller_number=r["caller_number"], caller_name="",
                            entered_at=r["entered_at"].astimezone(dt.timezone.utc),
                            answered_at=None, ended_at=None, wait_seconds=r["wait_seconds"], agent=r["agent"],
                            agent_name=r["agent_name"], talk_seconds=r["talk_seconds"], outcome=r["outcome"],
                            gap=False, source="ami"))
    t0, t1 = dt.datetime(2026, 11, 23, tzinfo=TZ), dt.datetime(2026, 11, 25, tzinfo=TZ)
    return db.call(queue_reports, QUEUE_REPORTS, t0, t1, tz=TZ, target=30.0, short=5.0, days=2, goal=0.8,
                   page=1, per_page=100)


@pytest.mark.postgres
def test_summary_and_breakdowns(db):
    got = _reports(db, ROWS)
    s = got["answer-times"]["summary"]
    # 6 calls, one short abandon (3 s) not offered -> 5 offered, 2 of 3 answered within 30 s
    assert (s["offered"], s["answered"], s["abandoned"], s["short_abandons"], s["timeouts"]) == (5, 3, 2, 1, 1)
    assert s["service_level"] == pytest.approx(2 / 5)
    assert s["asa_seconds"] == pytest.approx((5 + 40 + 12) / 3, abs=1e-3)
    hours = {r["hour"]: r for r in got["service-level-hourly"]["rows"]}
    assert hours[9]["offered"] == 2 and hours[9]["service_level"] == 0.5
    assert hours[10]["answered"] == 1
    days = [r["day"] for r in got["service-level-daily"]["rows"]]
    assert days == ["2026-11-23", "2026-11-24"]
    dist = got["answer-times"]["rows"]
    assert sum(d["answered"] for d in dist) == 3 and sum(d["abandoned"] for d in dist) == 3
    assert dist[0]["answered"] == 1 and dist[1]["answered"] == 1  # 5 s in 0-10, 12 s in 10-20
    agents = got["agents"]["rows"]
    assert agents[0]["answered"] == 3 and agents[0]["answered_within_target"] == 2
    ab = got["abandoned"]
    assert ab["total"] == 3 and len(ab["rows"]) == 3 and all("13800138001" not in r["caller"] for r in ab["rows"])
    st = got["staffing"]["rows"]
    assert [r["hour"] for r in st] == [9, 10] and all(r["agents_needed"] >= 1 for r in st)


def test_csv_bom_and_no_formula_injection():
    body = reports.to_csv([{"name": "=HYPERLINK(\"x\")", "n": -3, "who": "王小明"}])
    text = body.decode("utf-8")
    assert text.startswith("\ufeffname,n,who\r\n")
    assert "'=HYPERLINK" in text and ",-3," in text and "王小明" in text


def test_svg_chart_is_plain_svg():
    from callcenter.queuecalls.report_queries import BUCKETS

    dist = [{"from_seconds": lo, "label": f"{lo}s", "answered": i % 3, "abandoned": i % 2}
            for i, lo in enumerate(BUCKETS)]
    svg = reports.histogram_svg(dist, target=30, title="A<b>",
                                answered_label="answered", abandoned_label="abandoned")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "script" not in svg and "style=" not in svg and "A&lt;b&gt;" in svg
    assert len([e for e in root.iter() if e.tag.endswith("rect") and "bar-" in e.get("class", "")]) >= 4


# --- OpenAPI ---------------------------------------------------------------------------------
def test_openapi_generated_from_routes():
    doc = document(ROUTES)
    assert doc["openapi"].startswith("3.")
    for r in ROUTES:
        if r.kind == "static":
            continue
        op = doc["paths"][r.path][r.method.lower()]
        if r.roles is not None:
            assert sorted(r.roles) == op["x-roles"] and "403" in op["responses"]
    assert doc["paths"]["/api/reports/{name}"]["get"]["parameters"][0]["schema"]["enum"][0] == "answer-times"
    assert {p for p in doc["paths"] if p.startswith("/api/")} == {r.path for r in ROUTES
                                                                 if r.path.startswith("/api/")}


# --- users CLI -------------------------------------------------------------------------------
def test_users_cli(config_env, db, monkeypatch, capsys):
    from callcenter.cli import main
    from callcenter.web.passwords import verify_password
    from callcenter.store.models import User

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-horse\n"))
    assert main(["users", "add", "wang", "--role", "agent", "--interface", "PJSIP/1001",
                 "--password-stdin"]) == 0
    out = capsys.readouterr()
    assert "s3cret-horse" not in out.out + out.err
    u = db.call(lambda s: s.query(User).filter_by(username="wang").one())
    assert u.role == "agent" and verify_password("s3cret-horse", u.password_hash)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "passwd", "wang", "--password-stdin"]) == 2
    assert "at least 8" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("another-pass\n"))
    assert main(["users", "add", "wang", "--role", "admin", "--password-stdin"]) == 2
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("another-pass\n"))
    assert main(["users", "passwd", "wang", "--password-stdin"]) == 0
    assert main(["users", "list"]) == 0
    listing = capsys.readouterr().out
    assert "wang\tagent\tPJSIP/1001" in listing and "another-pass" not in listing
    u = db.call(lambda s: s.query(User).filter_by(username="wang").one())
    assert verify_password("another-pass", u.password_hash)
    assert main(["users", "disable", "wang"]) == 0
    assert db.call(lambda s: s.query(User).filter_by(username="wang").one()).active is False
    assert main(["users", "disable", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


# --- live: wallboard push latency, screen pop from the recorded trace, queue actions ------------
async def test_wallboard_pushed_within_one_second(config, db):
    add_users(db)
    qc = FakeQueueCalls()
    qc.state = {"consultation": {"waiting": [], "members": [
        {"interface": "Local/1001@sim-agent/n", "name": "1001", "state": 1, "paused": False, "reason": ""}]}}
    async with running_web(config, db, queuecalls=qc) as web:
        c = Client(web.port)
        await c.login("sup1")
        sse = await SSEClient.open(web.port, "/events/wallboard", c.cookies)
        _, first = await sse.next_event("wallboard")
        assert first["totals"]["waiting"] == 0 and first["agent_counts"]["available"] == 1
        now = time.time()
        qc.state["consultation"]["waiting"] = [
            {"uniqueid": "1.1", "caller_number_masked": "*******8001", "entered_at": now - 45, "wait": 45}]
        qc.state["consultation"]["members"][0].update(paused=True, reason="meal")
        t0 = time.monotonic()
        qc.changed()
        _, patch = await sse.next_event("patch", timeout=1.0)   # only what changed
        assert time.monotonic() - t0 < 1.0
        assert patch["base"] == first["v"] and patch["v"] == first["v"] + 1
        assert "outbound" not in patch["set"] and "agent_counts" in patch["set"]
        board = {**first, **patch["set"]}
        q = board["queues"][0]
        assert q["waiting"] == 1 and q["over_target"] and q["longest_wait"] >= 45
        assert board["agent_counts"]["paused"] == 1 and board["agents"][0]["reason"] == "meal"
        sse.close()


def _trace_event(name):
    trace = read_ami(traces_dir() / "01-inbound-answered.ami")
    return next(m for m in trace.events if m.event == name)


async def test_screen_pop_from_trace_and_queue_actions(config, db):
    add_users(db)
    connect = _trace_event("AgentConnect")
    interface = connect["Interface"]
    with db.session() as s:
        from callcenter.store.models import User

        s.query(User).filter_by(username="agent1").one().interface = interface
    gw = FakeGateway()
    async with running_web(config, db, queuecalls=FakeQueueCalls(), gateway=gw) as web:
        c = Client(web.port)
        await c.login("agent1")
        sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
        await sse.next_event("status")
        gw.emit(connect)
        _, pop = await sse.next_event("pop", timeout=2.0)
        assert pop["record"]["number"] == connect["CallerIDNum"] and pop["record"]["name"] == "Li Na"
        assert pop["uniqueid"] == connect["Linkedid"] and pop["queue"] == "consultation"
        sse.close()
        # queue log-in/pause act on the agent's own interface only
        token = await c.csrf()
        r = await c.post("/api/agent/queue", json_body={"action": "login", "queue": "consultation",
                                                        "interface": "PJSIP/evil"},
                         headers={"X-CSRF-Token": token})
        assert r.status == 200 and r.json()["ok"]
        r = await c.post("/agent/queue", {"csrf_token": token, "action": "pause", "reason": "meal"})
        assert r.status == 303 and r.location == "/agent?reason=meal"
        assert gw.sent == [
            {"Action": "QueueAdd", "Queue": "consultation", "Interface": interface, "MemberName": "Agent1",
             "Paused": "false"},
            {"Action": "QueuePause", "Interface": interface, "Paused": "true", "Reason": "meal"}]
        r = await c.post("/api/agent/queue", json_body={"action": "login", "queue": "nope"},
                         headers={"X-CSRF-Token": token})
        assert r.status == 400 and "queue" in r.json()["error"]
        # outcome + complaint ticket through the complaints service
        r = await c.post("/api/agent/outcome", json_body={
            "uniqueid": connect["Linkedid"], "outcome": "complaint", "note": "waited too long",
            "caller_number": connect["CallerIDNum"], "open_complaint": True, "category": "attitude"},
            headers={"X-CSRF-Token": token})
        assert r.status == 201, r.text
        ticket = r.json()["complaint"]
        assert ticket["number"].startswith("TS-")
        r = await c.get(f"/api/patients?number={connect['CallerIDNum']}")
        assert [x["number"] for x in r.json()["complaints"]] == [ticket["number"]]
        assert r.json()["outcomes"][0]["outcome"] == "complaint"


async def test_reports_api_csv_and_chart(config, db):
    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        for name in ("answer-times", "service-level-hourly", "agents", "campaigns", "complaints", "staffing"):
            r = await c.get(f"/api/reports/{name}")
            assert r.status == 200 and r.json()["report"] == name
            r = await c.get(f"/reports/{name}.csv")
            assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
            assert "attachment" in r.headers["content-disposition"]
        r = await c.get("/reports/answer-times.svg")
        assert r.status == 200 and r.headers["content-type"].startswith("image/svg+xml")
        ET.fromstring(r.body)
        r = await c.get("/api/reports/agents?from=2026-13-01")
        assert r.status == 400 and "from" in r.json()["error"]
        assert (await c.get("/reports")).status == 200
        for bad in ("page=0", "page=x", "per_page=0", "per_page=1001", "page=999999999999"):
            r = await c.get(f"/api/reports/abandoned?{bad}")
            assert r.status == 400 and bad.split("=")[0] in r.json()["error"], bad
        r = await c.get("/api/reports/abandoned?page=2&per_page=10")
        assert r.status == 200 and (r.json()["total"], r.json()["page"], r.json()["per_page"]) == (0, 2, 10)
        assert (await c.get("/reports?page=x")).status == 400


async def test_report_column_headings_follow_the_language(config, db):
    import time as _time

    from callcenter.queuecalls.reducer import QueueCallRecord
    from callcenter.queuecalls.store import write_calls
    from callcenter.web.i18n import column

    assert column("zh", "service_level") == "服务水平" and column("en", "asa_seconds") == "ASA (s)"
    assert column("zh", "no_such_column") == "no_such_column"
    now = _time.time() - 3600
    db.call(write_calls, [QueueCallRecord(
        uniqueid="1.1", linkedid="1.1", queue="consultation", leg=1, caller_number="13800138000",
        caller_name="", entered_at=now, answered_at=now + 12, ended_at=now + 72, wait_seconds=12.0,
        agent="Local/1001@sim-agent/n", agent_name="Agent 1001", talk_seconds=60.0, outcome="answered",
        position=1, ivr_session_id=None, gap=False)], 30.0, "default")
    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        page = (await c.get("/reports")).text
        assert 'data-key="service_level" class="k-pct">Service level</th>' in page
        r = await c.post("/language", {"csrf_token": await c.csrf(), "lang": "zh", "back": "/reports"})
        assert r.status == 303
        page = (await c.get("/reports")).text
        assert 'data-key="service_level" class="k-pct">服务水平</th>' in page


def test_patient_record_times_in_the_hospitals_timezone(db):
    from zoneinfo import ZoneInfo

    from callcenter.web import data
    from dialer.campaigns import Settings
    from dialer.importer import import_rows

    def seed(s):
        assert import_rows(s, "patients", [{"patient_id": "P1", "name": "李娜", "phone": "13800138001"}],
                           "test", region="CN", settings=Settings()).applied
        assert import_rows(s, "treatments", [{"treatment_id": "T1", "patient_id": "P1", "type": "filling",
                                              "treated_at": "2026-11-20 09:30"}], "test", region="CN",
                           settings=Settings()).applied
    db.call(seed)
    rec = db.call(data.patient_record, "13800138001", "", "CN", None, ZoneInfo("Asia/Shanghai"))
    at = rec["treatments"][0]["at"]
    assert (at.hour, at.minute, at.utcoffset().total_seconds()) == (9, 30, 8 * 3600)  # as entered, local
    assert rec["name"] == "李娜"
