"""Post-call satisfaction through the product (``callcenter.app.build``) and the simulated
Asterisk over real AMI and FastAGI, on one time-scaled clock.

The hotline dialplan runs ``Queue(${QUEUE},c)``: when the agent hangs up the caller goes on
to the ``satisfaction`` flow, presses a key, and the rating lands on the queue call it
rates, linked to the agent who answered; the agents report shows it.  A caller who hangs
up while still talking to the agent is never asked.  An unsatisfied rating of a
complaint-queue call flags the complaint ticket opened on that call.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.app import build
from callcenter.clock import ScaledClock
from tests.support.waiting import until
from tests.support.web import Client, add_users

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # a Wednesday


async def _product(config, db, tmp_path):
    from callcenter.simulator import SimConfig, SimulatedPBX

    clock = ScaledClock(reactor, 30, start=OPEN)
    sim = SimConfig(hotline_queue_options="c")  # [hotline] of docs/asterisk/extensions.conf
    pbx = SimulatedPBX(clock, seed=7, spool_dir=tmp_path / "pbx", agi_port=1, config=sim)
    await pbx.start(host="127.0.0.1", ami_port=0)
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username, "secret": sim.secret},
        "agi": {"host": "127.0.0.1", "port": 0},
        "recordings": {"enabled": False, "directory": str(tmp_path / "rec"), "spool_dir": str(tmp_path / "rec")},
        "dialer": {"enabled": False}, "complaints": {"enabled": False},
        "web": {"host": "127.0.0.1", "port": 0},
    })
    product = build(cfg, clock=clock, db=db)
    await product.start()
    pbx.agi_port = product.agi.port
    await product.ami.wait_connected(10)
    for agent in ("1001", "1002", "2001", "2002"):
        pbx.globals[f"AGENT_DELAY_{agent}"] = "2"
        pbx.globals[f"AGENT_TALK_{agent}"] = "20"
    return product, pbx


def _call(s, uniqueid):
    from callcenter.queuecalls.models import QueueCall

    return s.scalars(select(QueueCall).where(QueueCall.uniqueid == uniqueid)).first()


def _rating_session(s, uniqueid):
    from ivr_flows.models import IvrSession

    return s.scalars(select(IvrSession).where(IvrSession.uniqueid == uniqueid,
                                              IvrSession.flow == "satisfaction")).first()


@pytest.mark.timeout(90)
async def test_caller_rates_the_agent_after_the_call_and_the_agents_report_shows_it(config, db, tmp_path):
    product, pbx = await _product(config, db, tmp_path)
    try:
        add_users(db)
        # Chinese, 1 consultation; stays with the agent, who hangs up after 20 s; presses 1 (satisfied)
        rated = pbx.inbound_call("13800138001", "王小明", digits="1w1", digit_delay=1, stay_when_connected=True,
                                 rate="1")
        # the same, then only a key that is not on the scale (7), twice
        wrong = pbx.inbound_call("13900139002", "李娜", digits="1w1", digit_delay=1, stay_when_connected=True,
                                 rate="7wwwwwwwwwwwwwwwwwwww7")

        async def rated_both():
            a, b = await db.run(_call, rated.uniqueid), await db.run(_call, wrong.uniqueid)
            return a is not None and a.rating_outcome and b is not None and b.rating_outcome
        await until(rated_both, "both queue calls carry their rating")
        row = await db.run(_call, rated.uniqueid)
        assert (row.outcome, row.queue, row.rating_outcome, row.rating_score, row.rating_level) == \
            ("answered", "consultation", "rated", 1, "satisfied")
        assert row.agent == rated.agent and row.agent.startswith("Local/100")  # the agent who answered
        assert row.rated_at is not None and row.rated_at >= row.ended_at
        other = await db.run(_call, wrong.uniqueid)
        assert (other.rating_outcome, other.rating_score, other.rating_level) == ("invalid", None, "")

        async def session_ended():
            s = await db.run(_rating_session, rated.uniqueid)
            return s is not None and s.ended_at is not None
        await until(session_ended, "the rating session is stored")
        session = await db.run(_rating_session, rated.uniqueid)
        assert session.result == "rated:satisfied" and session.digits == "1" and session.language == "zh"
        assert row.rating_session_id == session.id

        c = Client(product.web.port)
        await c.login("sup1")
        r = await c.get("/api/reports/agents?from=2026-11-25&to=2026-11-25")
        agents = {a["agent"]: a for a in r.json()["rows"]}
        assert agents[row.agent]["rated"] == 1 and agents[row.agent]["satisfaction_rate"] == 1.0
        assert agents[row.agent]["unsatisfied"] == 0
        csv = (await c.get("/reports/agents.csv?from=2026-11-25&to=2026-11-25")).text
        assert "Satisfaction rate" in csv.splitlines()[0]  # the headings as on the page (en)
        sat = (await c.get("/api/reports/satisfaction?from=2026-11-25&to=2026-11-25")).json()["rows"]
        assert sat == [{"queue": "consultation", "ratings_offered": 2, "rated": 1, "satisfied": 1, "neutral": 0,
                        "unsatisfied": 0, "no_rating": 0, "invalid_rating": 1, "hung_up_before_rating": 0,
                        "satisfaction_rate": 1.0, "response_rate": 0.5}]
        board = (await c.get("/api/wallboard")).json()
        consultation = next(q for q in board["queues"] if q["name"] == "consultation")
        assert (consultation["rated"], consultation["satisfaction_rate"]) == (1, 1.0)
    finally:
        await product.stop()
        await pbx.stop()


@pytest.mark.timeout(90)
async def test_a_caller_who_hangs_up_first_stores_no_rating(config, db, tmp_path):
    product, pbx = await _product(config, db, tmp_path)
    try:
        # hangs up 12 s after pressing its keys: still talking to the agent (who talks 20 s)
        call = pbx.inbound_call("13700137003", "赵磊", digits="1w1", digit_delay=1, patience=12)

        async def stored():
            row = await db.run(_call, call.uniqueid)
            return row is not None and call.done
        await until(stored, "the queue call is stored and the call over")
        row = await db.run(_call, call.uniqueid)
        assert row.outcome == "answered" and row.agent
        assert (row.rating_outcome, row.rating_score, row.rated_at) == ("", None, None)
        assert await db.run(_rating_session, call.uniqueid) is None  # the rating flow never ran
    finally:
        await product.stop()
        await pbx.stop()


@pytest.mark.timeout(90)
async def test_an_unsatisfied_complaint_call_flags_the_ticket_opened_on_it(config, db, tmp_path):
    from callcenter.complaints.models import ComplaintEvent, ComplaintTicket
    from callcenter.complaints.service import UNSATISFIED_TAG

    product, pbx = await _product(config, db, tmp_path)
    try:
        add_users(db, {"agent2": ("agent", "Local/2001@sim-agent/n")})
        pbx.pause_member("Local/2002@sim-agent/n", True, "meal")  # 2001 answers
        # talks 90 s (3 s real): the agent's outcome (and ticket) is saved before the rating
        pbx.set_agent("2001", talk_time=90)
        # Chinese, 3 complaint menu, 1 complaint; presses 3 (not satisfied) after the agent hangs up
        call = pbx.inbound_call("13600136004", "陈洁", digits="1w3w1", digit_delay=1, stay_when_connected=True,
                                rate="3")
        await until(lambda: call.outcome == "answered", "the complaint agent answers")
        c = Client(product.web.port)
        await c.login("agent2")
        r = await c.post("/api/agent/outcome", json_body={
            "uniqueid": call.uniqueid, "outcome": "complaint", "note": "rude at the registration desk",
            "caller_number": "13600136004", "open_complaint": True, "category": "attitude"},
            headers={"X-CSRF-Token": await c.csrf()})
        assert r.status == 201, r.text
        ticket_id = r.json()["complaint"]["id"]

        async def rated():
            row = await db.run(_call, call.uniqueid)
            return row is not None and row.rating_outcome
        await until(rated, "the complaint call carries its rating")
        row = await db.run(_call, call.uniqueid)
        assert (row.queue, row.agent, row.rating_outcome, row.rating_level) == \
            ("complaint", "Local/2001@sim-agent/n", "rated", "unsatisfied")

        def ticket(s):
            t = s.get(ComplaintTicket, ticket_id)
            evs = [(e.action, e.actor, e.note) for e in s.scalars(select(ComplaintEvent).where(
                ComplaintEvent.ticket_id == ticket_id).order_by(ComplaintEvent.id))]
            return t.status, list(t.tags), evs
        status, tags, evs = await db.run(ticket)
        assert status == "acknowledged" and UNSATISFIED_TAG in tags  # still open: flagged, not reopened
        flagged = [e for e in evs if e[0] == "flagged"]
        assert len(flagged) == 1 and flagged[0][1] == "ivr" and "post-call rating" in flagged[0][2]
        assert f"queue call {row.id}" in flagged[0][2]
    finally:
        await product.stop()
        await pbx.stop()
