"""The agent desk's API: one outcome per call (unknown call 404, repeats, concurrent saves),
configurable pause reasons, the agent's own state pushed on a change, and the queues'
wrap-up time read from Asterisk (the simulator over AMI/TCP answering as Asterisk 22 does)."""
from __future__ import annotations

import asyncio
import threading
import types

import pytest
from sqlalchemy import func, select

from callcenter.ami.codec import Message
from callcenter.complaints.models import ComplaintTicket
from callcenter.config import ConfigError, load_config
from callcenter.web.models import CallOutcome
from callcenter.web.pause_reasons import PauseReasons

from tests.support.web import (Client, FakeGateway, FakeQueueCalls, SSEClient, USERS, add_users, answered_call,
                               running_web)
from tests.support.waiting import until

IFACE = USERS["agent1"][1]
COMPLAINT = {"outcome": "complaint", "note": "waited 20 minutes at radiology", "open_complaint": True,
             "category": "attitude", "caller_number": "13800138001", "caller_name": "李娜"}


def _counts(db):
    return db.call(lambda s: (s.scalar(select(func.count()).select_from(CallOutcome)),
                              s.scalar(select(func.count()).select_from(ComplaintTicket))))


async def _agent(web):
    c = Client(web.port)
    assert (await c.login("agent1")).status == 303
    return c, {"X-CSRF-Token": await c.csrf()}


@pytest.mark.postgres
async def test_one_outcome_and_one_ticket_per_call_even_when_saved_twice_or_at_once(config, db):
    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web:
        c, h = await _agent(web)
        # a call nobody took (not on the screen, not answered by this interface): 404, nothing stored
        r = await c.post("/api/agent/outcome", json_body={"uniqueid": "1795346999.1", **COMPLAINT}, headers=h)
        assert r.status == 404, r.text
        answered_call(db, "1795346999.2", "PJSIP/9999")  # someone else's call
        r = await c.post("/api/agent/outcome", json_body={"uniqueid": "1795346999.2", **COMPLAINT}, headers=h)
        assert r.status == 404 and _counts(db) == (0, 0)

        answered_call(db, "1795347000.1")
        r1 = await c.post("/api/agent/outcome", json_body={"uniqueid": "1795347000.1", **COMPLAINT}, headers=h)
        r2 = await c.post("/api/agent/outcome", json_body={"uniqueid": "1795347000.1", **COMPLAINT}, headers=h)
        assert (r1.status, r2.status) == (201, 200), (r1.text, r2.text)
        assert r1.json()["complaint"]["number"] == r2.json()["complaint"]["number"]
        assert r2.json()["created"] is False and _counts(db) == (1, 1)
        # a different outcome for the same call is refused, naming what is stored
        r3 = await c.post("/api/agent/outcome", json_body={"uniqueid": "1795347000.1", "outcome": "query"},
                          headers=h)
        assert r3.status == 409 and r1.json()["complaint"]["number"] in r3.json()["error"]
        assert _counts(db) == (1, 1)

        # two saves of one call at the same moment (two tabs, a double click): one row, one ticket
        for n in range(2):
            uid = f"1795347100.{n}"
            answered_call(db, uid)
            got = await asyncio.gather(*(c.post("/api/agent/outcome", json_body={"uniqueid": uid, **COMPLAINT},
                                                headers=h) for _ in range(2)))
            assert sorted(r.status for r in got) == [200, 201], [r.text for r in got]
            assert len({r.json()["complaint"]["number"] for r in got}) == 1
        assert _counts(db) == (3, 3)


@pytest.mark.postgres
async def test_a_save_racing_an_uncommitted_one_waits_and_rolls_back_whole(config, db):
    """The database rule itself: the second save of a call blocks on the first one's row,
    then fails before opening a ticket; run again it returns the stored result."""
    import datetime as dt

    from sqlalchemy.exc import IntegrityError

    from callcenter.web import call_outcomes
    from tests import support

    add_users(db)
    answered_call(db, "1795347200.1")
    complaints = support.domain(config).complaints
    user = types.SimpleNamespace(username="agent1", interface=IFACE)
    form = call_outcomes.parse({"uniqueid": "1795347200.1", **COMPLAINT}, "CN")
    now = dt.datetime(2026, 11, 25, 2, 1, tzinfo=dt.timezone.utc)
    args = dict(user=user, form=form, now=now, lang="zh", on_screen=False)
    outcome: dict = {}

    def second():
        try:
            outcome["result"] = db.call(call_outcomes.save, complaints, **args)
        except IntegrityError as exc:
            outcome["error"] = exc

    with db.session() as s:                      # the first save, not committed yet
        first = call_outcomes.save(s, complaints, **args)
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.3)
        assert racer.is_alive(), "the second save should wait for the first one's row"
    racer.join(15)
    assert isinstance(outcome.get("error"), IntegrityError), outcome
    again = db.call(call_outcomes.save, complaints, **args)
    assert again["created"] is False and again["complaint"]["number"] == first["complaint"]["number"]
    assert _counts(db) == (1, 1)


async def test_outcome_of_the_call_on_screen_and_repeat_by_form(config, db):
    add_users(db)
    gw = FakeGateway()
    async with running_web(config, db, queuecalls=FakeQueueCalls(), gateway=gw) as web:
        c, h = await _agent(web)
        sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
        await sse.next_event("status")
        gw.event(Event="AgentCalled", Interface=IFACE, Queue="consultation", Uniqueid="1795347300.5",
                 Linkedid="1795347300.5", CallerIDNum="13800138001", CallerIDName="Li Na")
        _, call = await sse.next_event("call")
        assert (call["state"], call["direction"], call["number"]) == ("ringing", "inbound", "13800138001")
        gw.event(Event="AgentConnect", Interface=IFACE, Queue="consultation", Uniqueid="1795347300.5",
                 Linkedid="1795347300.5", CallerIDNum="13800138001", CallerIDName="Li Na", HoldTime="3")
        _, pop = await sse.next_event("pop")
        assert (pop["direction"], pop["call"]["state"]) == ("inbound", "connected")
        gw.event(Event="AgentComplete", Interface=IFACE, Queue="consultation", Uniqueid="1795347300.5",
                 Linkedid="1795347300.5", TalkTime="40", Reason="caller")
        _, call = await sse.next_event("call")
        assert (call["state"], call["connected_at"] is not None) == ("ended", True)
        assert "pop-ended" in (page := (await c.get("/agent")).text) and "Inbound call" in page
        sse.close()
        form = {"csrf_token": h["X-CSRF-Token"], "uniqueid": "1795347300.5", "outcome": "appointment",
                "note": "moved to Friday"}
        r1 = await c.post("/agent/outcome", form)
        r2 = await c.post("/agent/outcome", form)
        assert r1.status == r2.status == 303
        assert "already" in (await c.get(r2.location)).text
        assert _counts(db) == (1, 0)


async def test_pause_reasons_come_from_the_config(config_env, db, tmp_path):
    bad = tmp_path / "cc.toml"
    bad.write_text('[web]\npause_reasons = ["lunch=午餐|Lunch", "Coffee Break=咖啡|Coffee"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(bad, env={})
    assert str(bad) in str(err.value) and "[web] pause_reasons" in str(err.value) and "item 2" in str(err.value)
    old = tmp_path / "old.toml"
    old.write_text("[ami]\nwrapup_seconds = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[ami\] wrapup_seconds is no longer used: .*GetConfig queues.conf"):
        load_config(old, env={})
    good = tmp_path / "ok.toml"
    good.write_text('[web]\npause_reasons = ["lunch=午餐|Lunch", "huddle=班前会|Team huddle"]\n', encoding="utf-8")
    config = load_config(good, env={})
    reasons = PauseReasons.from_config(config)
    assert reasons.codes == ("lunch", "huddle")
    assert (reasons.label("huddle", "zh"), reasons.label("huddle", "en")) == ("班前会", "Team huddle")
    assert reasons.label("set in the CLI", "zh") == "set in the CLI"   # not a code: as Asterisk has it
    assert reasons.label("dialer:42", "zh") == "外呼预留"                # the dialer's reservation

    add_users(db)
    gw = FakeGateway()
    live = FakeQueueCalls()
    async with running_web(config, db, queuecalls=live, gateway=gw) as web:
        c, h = await _agent(web)
        r = await c.post("/api/agent/queue", json_body={"action": "pause", "reason": "meal"}, headers=h)
        assert r.status == 400 and "lunch, huddle" in r.json()["error"] and gw.sent == []
        r = await c.post("/agent/queue", {"csrf_token": h["X-CSRF-Token"], "action": "pause", "reason": "huddle"})
        assert r.status == 303 and gw.sent[-1]["Reason"] == "huddle"
        page = (await c.get(r.location)).text
        assert '<option value="huddle" selected>Team huddle</option>' in page   # stays as chosen
        # the tracker reports the pause: the agent's own state, with the label, pushed to the desk
        sse = await SSEClient.open(web.port, "/events/agent", c.cookies)
        _, st = await sse.next_event("status")
        assert (st["state"], st["extension"], st["name"]) == ("logged_out", "1001", "Agent1")
        live.state = {"consultation": {"waiting": [], "talking": [], "members": [
            {"interface": IFACE, "name": "Agent 1001", "state": "paused", "paused": True, "reason": "huddle",
             "wrapup_ends": None}]}}
        live.changed()
        _, st = await sse.next_event("status")
        assert (st["state"], st["reason"], st["reason_label"]) == ("paused", "huddle", "Team huddle")
        assert [p["code"] for p in st["pause_reasons"]] == ["lunch", "huddle"]
        assert "Local/1001@sim-agent/n" not in (await c.get("/agent")).text.split("initial-status")[0]
        sse.close()


def test_wrapuptime_from_a_getconfig_answer():
    from callcenter.queuecalls.queueconf import QueueConfigError, wrapup_by_queue

    msg = Message(headers=[("Response", "Success"), ("ActionID", "1"), ("Category-000000", "general"),
                           ("Line-000000-000000", "wrapuptime=99"), ("Category-000001", "consultation"),
                           ("Line-000001-000000", "strategy=rrmemory"), ("Line-000001-000001", "wrapuptime=5"),
                           ("Category-000002", "complaint"), ("Line-000002-000000", "wrapuptime=abc"),
                           ("Category-000003", "night"), ("Line-000003-000000", "wrapuptime=3"),
                           ("Line-000003-000001", "wrapuptime=12")])
    assert wrapup_by_queue(msg) == {"consultation": 5.0, "complaint": 0.0, "night": 12.0}
    with pytest.raises(QueueConfigError):
        wrapup_by_queue([msg])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("write", ["all", "call,agent,reporting"])
async def test_tracker_reads_the_queues_wrapuptime_from_asterisk(db, tmp_path, write):
    """Over AMI from the simulator, as from Asterisk 22: ``GetConfig queues.conf``; without
    the ``config``/``system`` write class it is refused and the error names it."""
    from twisted.internet import reactor

    from callcenter.ami.gateway import AmiError, AmiGateway
    from callcenter.queuecalls.tracker import QueueCallsTracker
    from callcenter.simulator import SimConfig, SimulatedPBX

    pbx = SimulatedPBX(reactor, spool_dir=tmp_path, config=SimConfig(wrapuptime=5, write_perm=write))
    await pbx.start()
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=reactor)
    tracker = QueueCallsTracker(db, reactor, gateway=gw)
    try:
        await tracker.start()
        await gw.start()
        await gw.wait_connected(10)
        await until(lambda: tracker._synced, "the first resync")
        if write == "all":
            assert tracker.queue_wrapup == {"consultation": 5.0, "complaint": 5.0}
            assert tracker.queue_config_error is None
            refused = {}   # what a real Asterisk 22.10.1 answered to each
            for name in ("", "nope.conf", "../x.conf", "/etc/passwd"):
                with pytest.raises(AmiError) as err:
                    await gw.action({"Action": "GetConfig", **({"Filename": name} if name else {})})
                refused[name] = str(err.value)
            assert refused == {"": "Filename not specified", "nope.conf": "Config file not found",
                               "../x.conf": "Config file not found",
                               "/etc/passwd": "File requires escalated privileges"}
        else:
            assert tracker.queue_wrapup == {}
            assert "GetConfig queues.conf" in tracker.queue_config_error
            assert "Permission denied" in tracker.queue_config_error
    finally:
        await tracker.stop()
        await gw.stop()
        await pbx.stop()


@pytest.mark.postgres
def test_the_upgrade_keeps_outcomes_stored_twice_and_then_holds_one_per_call(db):
    """Rows saved twice before the rule are kept, renamed ``#2``...; after it a second row of
    a call is refused by the database itself."""
    import datetime as dt

    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from callcenter.store import migrate

    migrate.downgrade(db.engine, "0960_queuecall_checkpoint")   # the revision before ours
    at = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)
    with db.engine.begin() as conn:
        for uid, outcome in (("1795347400.1", "complaint"), ("1795347400.1", "complaint"), ("1795347400.2", "query"),
                             ("1795347400.1", "other")):
            conn.execute(text("INSERT INTO call_outcomes (uniqueid, queue, caller_number, agent, outcome, note, "
                              "created_at) VALUES (:u, '', '', 'agent1', :o, '', :at)"), {"u": uid, "o": outcome, "at": at})
    migrate.upgrade(db.engine)
    rows = db.call(lambda s: [(o.uniqueid, o.outcome) for o in s.scalars(select(CallOutcome).order_by(CallOutcome.id))])
    assert rows == [("1795347400.1", "complaint"), ("1795347400.1#2", "complaint"), ("1795347400.2", "query"),
                    ("1795347400.1#3", "other")]
    with pytest.raises(IntegrityError):
        db.call(lambda s: s.add(CallOutcome(uniqueid="1795347400.2", agent="agent1", outcome="query", created_at=at)))
