"""The wallboard's data, fast: a call counts as answered when it is answered (AMI events
through the real reducer and tracker into the feed), today per half hour, the colours
against the goal and thresholds, the waiting list in app_queue's order with the urgent
flag, each agent's call, time in state and answered calls, and pushes of only what changed."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from twisted.internet import task

from callcenter.ami.codec import Message
from callcenter.config import ConfigError
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.web import today
from callcenter.web.live import StateClock, Thresholds, build_wallboard

from tests.support.web import Client, FakeQueueCalls, SSEClient, add_users, running_web

TZ = ZoneInfo("Asia/Shanghai")
MON_1000 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TZ).timestamp()
MIDNIGHT = dt.datetime(2026, 11, 2, 0, 0, tzinfo=TZ).timestamp()
AGENT = "Local/1001@sim-agent/n"


def ev(name: str, **headers) -> Message:
    return Message([("Event", name), *((k, str(v)) for k, v in headers.items())])


def join(uid: str, queue: str = "consultation", number: str = "13800138001") -> Message:
    return ev("QueueCallerJoin", Channel=f"Local/s@sim-caller-{uid};2", Uniqueid=uid, Linkedid=uid, Queue=queue,
              CallerIDNum=number, CallerIDName="", Position=1, Count=1)


def connect(uid: str, queue: str = "consultation", hold: int = 12) -> Message:
    return ev("AgentConnect", Uniqueid=uid, Linkedid=uid, Queue=queue, Interface=AGENT, MemberName="Agent 1001",
              HoldTime=hold, CallerIDNum="13800138001")


def member(paused: bool = False, reason: str = "", status: int = 1) -> Message:
    return ev("QueueMemberStatus", Queue="consultation", Interface=AGENT, MemberName="Agent 1001", Status=status,
              Paused=int(paused), PausedReason=reason, InCall=0, LastCall=0, Wrapuptime=0)


@pytest.mark.postgres
async def test_a_call_counts_as_answered_when_an_agent_takes_it_not_when_it_ends(config, db):
    add_users(db)  # agent1 is AGENT
    clock = task.Clock()
    clock.advance(MON_1000)
    tr = QueueCallsTracker(db, clock, flush_interval=0.2)
    t = clock.seconds()
    tr.on_event(member(), t)
    tr.on_event(join("a.1"), t - 300)
    tr.on_event(ev("QueueCallerLeave", Uniqueid="a.1", Queue="consultation", Position=1, Count=0), t - 288)
    tr.on_event(connect("a.1"), t - 288)                       # talking since 09:55:12, before the web started
    async with running_web(config, db, clock=clock, queuecalls=tr) as web:
        feed = web.app.wallboard
        board = await feed.snapshot()
        assert (board["totals"]["offered"], board["totals"]["answered"]) == (1, 1)  # loaded from the live view
        tr.on_event(join("b.1"), t)
        clock.advance(40)
        tr.on_event(ev("QueueCallerLeave", Uniqueid="b.1", Queue="consultation", Position=1, Count=0), t + 40)
        tr.on_event(connect("b.1", hold=40), t + 40)             # the Answered fact, mid-call
        board = await feed.snapshot()
        q = board["queues"][0]
        assert (q["offered"], q["answered"], q["service_level"]) == (2, 2, 0.5)  # one of two within 30 s
        assert board["totals"]["asa_seconds"] == 26.0
        assert feed.figures.by_agent == {AGENT: 2}
        # the calls end: the finished records replace the answered ones, nothing counts twice
        clock.advance(60)
        tr.on_event(ev("AgentComplete", Uniqueid="a.1", Queue="consultation", Interface=AGENT, HoldTime=12,
                       TalkTime=348, Reason="caller"), clock.seconds())
        tr.on_event(ev("AgentComplete", Uniqueid="b.1", Queue="consultation", Interface=AGENT, HoldTime=40,
                       TalkTime=60, Reason="transfer"), clock.seconds())
        await tr.flush()
        board = await feed.snapshot()
        assert (board["totals"]["offered"], board["totals"]["answered"]) == (2, 2)
        assert len(feed.figures.calls) == 2 and feed.figures.by_agent == {AGENT: 2}
        await feed._reconnected()                                # a reload from the stored rows agrees
        assert (await feed.snapshot())["totals"]["answered"] == 2 and feed.figures.by_agent == {AGENT: 2}


def test_half_hours_from_the_chart_start_to_now_in_local_time():
    f = today.TodayFigures(MIDNIGHT, MIDNIGHT + 86400, 30.0, 5.0)
    at = lambda h, m: MIDNIGHT + h * 3600 + m * 60  # noqa: E731
    calls = [("1", at(8, 5), "answered", 10.0), ("2", at(8, 20), "answered", 45.0), ("3", at(8, 29), "abandoned", 50.0),
             ("4", at(8, 29), "abandoned", 2.0),  # short abandon: not offered
             ("5", at(9, 40), "answered", 5.0)]
    for uid, entered, outcome, wait in calls:
        f.apply((uid, "consultation", 1), entered, today.Contribution("consultation", outcome, wait, False))
    series = f.half_hours(at(10, 12), TZ, first_hour=8)
    assert [s["slot"] for s in series] == ["08:00–08:30", "08:30–09:00", "09:00–09:30", "09:30–10:00",
                                           "10:00–10:30"]
    first = series[0]
    assert (first["offered"], first["answered"], first["abandoned"], first["service_level"]) == (3, 2, 2, 0.3333)
    assert series[1]["service_level"] is None and series[3]["service_level"] == 1.0
    # a call before the chart start widens it; a day with no calls shows the opening half hour only
    f.apply(("0", "complaint", 1), at(7, 10), today.Contribution("complaint", "answered", 3.0, False))
    assert f.half_hours(at(8, 1), TZ, first_hour=8)[0]["slot"] == "07:00–07:30"
    empty = today.TodayFigures(MIDNIGHT, MIDNIGHT + 86400, 30.0, 5.0)
    assert [s["slot"] for s in empty.half_hours(at(6, 0), TZ, first_hour=8)] == ["06:00–06:30"]


def test_service_level_and_abandon_colours_against_goal_and_thresholds(config):
    th = Thresholds.from_config(config)  # [web] staffing_goal 0.8, [wallboard] defaults
    assert [th.service_level(v) for v in (None, 0.95, 0.8, 0.79, 0.6, 0.59)] == [
        None, "good", "good", "warn", "warn", "bad"]
    assert [th.abandon_rate(v) for v in (None, 0.0, 0.05, 0.051, 0.10, 0.11)] == [
        None, "good", "good", "warn", "warn", "bad"]
    board = build_wallboard({}, {"": {"offered": 10, "service_level": 0.7, "abandon_rate": 0.2}}, [],
                            now=MON_1000, target=30, tz=TZ, thresholds=th)
    assert (board["totals"]["sl_band"], board["totals"]["abandon_band"]) == ("warn", "bad")
    assert board["clock"] == "10:00:00" and board["timezone"] == "Asia/Shanghai"
    with pytest.raises(ConfigError, match=r"sl_amber = 0.85 must be below \[web\] staffing_goal = 0.8"):
        Thresholds.from_config(config.with_overrides({"wallboard": {"sl_amber": 0.85}}))
    with pytest.raises(ConfigError, match="abandon_amber"):
        Thresholds.from_config(config.with_overrides({"wallboard": {"abandon_amber": 0.2}}))


def test_waiting_list_in_app_queue_order_and_agent_detail():
    now = MON_1000
    live = {"complaint": {
        "waiting": [
            {"caller_number_masked": "*******9002", "entered_at": now - 90, "priority": 0, "direction": "inbound"},
            {"caller_number_masked": "*******7003", "entered_at": now - 20, "priority": 10, "direction": "inbound"},
            {"caller_number_masked": "*******0000", "entered_at": now - 99, "priority": 10, "direction": "outbound"},
        ],
        "talking": [{"agent": AGENT, "caller_number_masked": "*******8001", "since": now - 65,
                     "direction": "inbound"}],
        "members": [{"interface": AGENT, "name": "Agent 1001", "state": "on_call", "paused": False, "reason": ""},
                    {"interface": "Local/2002@sim-agent/n", "name": "B", "state": "paused", "paused": True,
                     "reason": "meal"}]}}
    board = build_wallboard(live, {}, [{"interface": AGENT, "name": "Wang", "username": "agent1"}], now=now,
                            target=30, tz=TZ, answered_by={AGENT: 7})
    assert [(c["position"], c["caller"], c["urgent"], c["wait"]) for c in board["callers"]] == [
        (1, "*******7003", True, 20.0), (2, "*******9002", False, 90.0)]  # the dialer's patient is not listed
    by = {a["interface"]: a for a in board["agents"]}
    talking = by[AGENT]
    assert (talking["name"], talking["state"], talking["answered_today"]) == ("Wang", "on_call", 7)
    assert talking["call"] == {"queue": "complaint", "caller": "*******8001", "since": now - 65, "outbound": False}
    assert by["Local/2002@sim-agent/n"]["reason"] == "meal" and by["Local/2002@sim-agent/n"]["call"] is None
    assert board["queues"][0]["agents"] == {"on_call": 1, "paused": 1}

    clocks = StateClock()
    clocks.stamp(board["agents"], now)
    assert by[AGENT]["since"] == now - 65            # on a call: since the answer
    assert by["Local/2002@sim-agent/n"]["since"] == now
    later = build_wallboard(live, {}, [], now=now + 30, target=30, tz=TZ)
    clocks.stamp(later["agents"], now + 30)
    assert {a["interface"]: a["since"] for a in later["agents"]}["Local/2002@sim-agent/n"] == now  # still paused
    live["complaint"]["members"][1]["reason"] = "training"  # another reason: the timer starts again
    again = build_wallboard(live, {}, [], now=now + 40, target=30, tz=TZ)
    clocks.stamp(again["agents"], now + 40)
    assert {a["interface"]: a["since"] for a in again["agents"]}["Local/2002@sim-agent/n"] == now + 40


def test_the_ivrs_queue_priority_reaches_the_waiting_caller():
    tr = QueueCallsTracker(None, task.Clock())
    tr.on_event(ev("VarSet", Channel="Local/s@sim-caller-1;2", Uniqueid="u.1", Variable="QUEUE_PRIO", Value="10"), 1.0)
    tr.on_event(join("u.1", "complaint"), 2.0)
    assert tr.live()["complaint"]["waiting"][0]["priority"] == 10


async def test_pushes_carry_only_what_changed_and_not_the_clock_alone(config, db):
    add_users(db)
    qc = FakeQueueCalls()
    qc.state = {"consultation": {"waiting": [], "members": []}}
    async with running_web(config, db, queuecalls=qc) as web:  # the reactor's clock, as served
        c = Client(web.port)
        await c.login("sup1")
        sse = await SSEClient.open(web.port, "/events/wallboard", c.cookies)
        _, first = await sse.next_event("wallboard")          # the full document, with its version
        feed = web.app.wallboard
        await feed.refresh()                                   # only the clock moved: nothing pushed
        assert feed.latest["now"] > first["now"] and feed.latest["v"] == first["v"] == feed.version
        qc.state["consultation"]["waiting"] = [{"caller_number_masked": "*******8001",
                                                "entered_at": feed.latest["now"] - 5, "priority": 0,
                                                "direction": "inbound"}]
        await feed.refresh()
        _, patch = await sse.next_event("patch")
        assert (patch["base"], patch["v"]) == (first["v"], first["v"] + 1)
        assert {"queues", "callers", "totals"} <= set(patch["set"]) and not {"outbound", "series"} & set(patch["set"])
        assert 5.0 <= patch["set"]["callers"][0]["wait"] < 7
        sse.close()
