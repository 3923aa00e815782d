"""Agent states (available, ringing, on_call, wrap_up, paused, unavailable): the pure
function on trace-shaped events, and one agent through the simulator over real AMI TCP."""
from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from twisted.internet import task

from callcenter.ami.codec import Message
from callcenter.ami.gateway import AmiGateway
from callcenter.ami.tracefile import read_ami, traces_dir
from callcenter.queuecalls.agentstate import agent_state, in_wrapup, wrapup_ends
from callcenter.queuecalls.reducer import MemberChanged, TrackerState, reduce
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.simulator import SimConfig, SimulatedPBX
from callcenter.web.live import build_wallboard, member_state

from tests.support.harness import Stepper


def _state_of(st: TrackerState, queue: str, iface: str, now: float, queue_wrapup: float = 0.0) -> str:
    m = st.members[queue][iface]
    return agent_state(status=m.state, paused=m.paused, in_call=m.in_call, last_call=m.last_call,
                       wrapuptime=m.wrapuptime, now=now, activity=st.activity.get(iface),
                       queue_wrapup=queue_wrapup)


def _replay(name: str, edit=None):
    """Feed a trace's events to the reducer; yield (event, state, t) after each member-related one."""
    trace = read_ami(traces_dir() / name)
    st = TrackerState()
    for e in trace.received:
        m = e.message
        if m is None or not m.event:
            continue
        if edit is not None:
            m = edit(m)
        t = trace.epoch + e.t
        reduce(st, m, t)
        yield m, st, t


def _with(m: Message, **changes) -> Message:
    return Message([(k, changes.get(k, v)) for k, v in m.headers])


# ---------------------------------------------------------------- the pure function
def test_pure_function_precedence_and_device_numbers():
    now = 1795346700.4
    base = dict(status=1, paused=False, in_call=False, last_call=0, wrapuptime=0, now=now)
    assert agent_state(**base) == "available"
    assert agent_state(**{**base, "status": 6}) == "ringing"          # PJSIP member ringing
    assert agent_state(**{**base, "status": 2}) == "on_call"          # device in use
    assert agent_state(**{**base, "status": 5}) == "unavailable"
    assert agent_state(**{**base, "status": 4}) == "unavailable"
    assert agent_state(**{**base, "paused": True}) == "paused"
    assert agent_state(**{**base, "status": 2, "activity": "ringing"}) == "ringing"  # Local member ringing
    assert agent_state(**{**base, "paused": True, "activity": "on_call"}) == "on_call"
    assert agent_state(**{**base, "in_call": True, "status": 2}) == "on_call"        # QueueStatus InCall 1
    # wrap-up: app_queue's time(NULL) - lastcall < wrapuptime, whole seconds
    assert agent_state(**{**base, "last_call": 1795346690, "wrapuptime": 15}) == "wrap_up"
    assert agent_state(**{**base, "last_call": 1795346690, "wrapuptime": 10}) == "available"
    assert agent_state(**{**base, "last_call": 1795346690, "wrapuptime": 0, "queue_wrapup": 11}) == "wrap_up"
    assert agent_state(**{**base, "last_call": 1795346690, "wrapuptime": 5, "queue_wrapup": 60}) == "available"
    assert agent_state(**{**base, "last_call": 1795346690, "wrapuptime": 15, "paused": True}) == "paused"
    assert in_wrapup(1795346690, 11, 1795346700.99) and not in_wrapup(1795346690, 11, 1795346701.0)
    assert wrapup_ends(1795346690, 11, now) == 1795346701
    assert wrapup_ends(1795346690, 10, now) is None


def test_trace_01_ringing_on_call_then_available():
    """01: AgentCalled + QueueMemberStatus Status 2 (Local member ringing shows INUSE), no
    member event at connect, AgentComplete + Status 1 with LastCall; Wrapuptime 0 -> available."""
    iface = "Local/1001@sim-agent/n"
    seen = []
    for m, st, t in _replay("01-inbound-answered.ami"):
        if iface in st.members.get("consultation", {}):
            s = _state_of(st, "consultation", iface, t)
            if not seen or seen[-1][0] != s:
                seen.append((s, m.event))
    assert seen == [("ringing", "QueueMemberStatus"), ("on_call", "AgentConnect"),
                    ("available", "QueueMemberStatus")]


def test_trace_01_with_member_wrapuptime_goes_through_wrap_up():
    """The same events with the member's ``Wrapuptime: 20``: wrap-up from LastCall for 20 s."""
    iface = "Local/1001@sim-agent/n"

    def edit(m):
        return _with(m, Wrapuptime="20") if m.event == "QueueMemberStatus" else m

    last = None
    for m, st, t in _replay("01-inbound-answered.ami", edit):
        last = (st, t)
    st, t = last
    member = st.members["consultation"][iface]
    assert member.last_call == 1795346604 and member.wrapuptime == 20
    assert _state_of(st, "consultation", iface, t) == "wrap_up"
    assert _state_of(st, "consultation", iface, 1795346604 + 19.9) == "wrap_up"
    assert _state_of(st, "consultation", iface, 1795346604 + 20.0) == "available"
    # Wrapuptime 0 in the event: the queue's wrapuptime (queues.conf) applies
    plain = None
    for m, st2, t2 in _replay("01-inbound-answered.ami"):
        plain = (st2, t2)
    assert _state_of(plain[0], "consultation", iface, plain[1], queue_wrapup=30) == "wrap_up"


def test_trace_02_ring_no_answer_and_abandon_leave_the_agent_available():
    states = set()
    final = None
    for m, st, t in _replay("02-inbound-abandoned.ami"):
        for iface in st.members.get("complaint", {}):
            states.add(_state_of(st, "complaint", iface, t))
        final = (st, t)
    st, t = final
    assert "ringing" in states and "on_call" not in states
    assert {_state_of(st, "complaint", i, t) for i in st.members["complaint"]} == {"available"}


def test_trace_08_queue_status_in_call_and_10_pause():
    """08: QueueMember list items (resync) with InCall 1 -> on_call; 10: QueueMemberPause."""
    on_call = set()
    for m, st, t in _replay("08-queue-status.ami"):
        if m.event == "QueueMember" and m["InCall"] == "1":
            assert _state_of(st, m["Queue"], m["Location"], t) == "on_call"
            on_call.add(m["Location"])
    assert on_call == {"Local/1001@sim-agent/n", "Local/1002@sim-agent/n"}
    paused = []
    for m, st, t in _replay("10-misc-actions.ami"):
        if m.event == "QueueMemberPause":
            paused.append((m["Paused"], _state_of(st, m["Queue"], m["Interface"], t),
                           st.members[m["Queue"]][m["Interface"]].reason))
    assert paused == [("1", "paused", "lunch"), ("0", "available", "")]


def test_wallboard_counts_named_states():
    live = {"consultation": {"waiting": [], "members": [
        {"interface": "Local/1001@sim-agent/n", "name": "A", "state": "wrap_up", "paused": False},
        {"interface": "Local/1002@sim-agent/n", "name": "B", "state": "on_call", "paused": True},
        {"interface": "Local/1003@sim-agent/n", "name": "C", "state": "unavailable", "paused": False}]}}
    board = build_wallboard(live, {}, [], now=1795346700, target=30, tz=ZoneInfo("Asia/Shanghai"))
    c = board["agent_counts"]
    assert (c["wrap_up"], c["on_call"], c["paused"], c["logged_out"]) == (1, 1, 0, 1)
    assert member_state({"state": 1, "paused": True}) == "paused"  # device number + pause flag


# ---------------------------------------------------------------- through the simulator
@pytest.mark.timeout(60)
async def test_simulated_agent_on_call_wrap_up_available(db, tmp_path):
    clock = task.Clock()
    clock.advance(1_795_400_000)
    pbx = SimulatedPBX(clock, seed=4, config=SimConfig(queues={"consultation": [("1001", "Agent 1001")]}))
    pbx.set_agent("1001", answer_delay=2, talk_time=6, wrapup=20)
    await pbx.start()
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock,
                    ping_interval=3600, action_timeout=600, reconnect_base_delay=1, rng=random.Random(5))
    tracker = QueueCallsTracker(db, clock, gateway=gw)
    notes: list[tuple[float, MemberChanged]] = []
    tracker.subscribe(lambda fact: notes.append((clock.seconds(), fact)), MemberChanged)
    member_events = []
    gw.subscribe(lambda msg, t: member_events.append(msg) if msg.event == "QueueMemberStatus" else None,
                 ("QueueMemberStatus",))
    drv = Stepper(clock, [pbx], gw, tracker)
    await tracker.start()
    await gw.start()
    seen: list[tuple[str, float]] = []
    wrapup_board = None
    try:
        await gw.wait_connected(5)
        await drv.run_for(0.5)
        pbx.inbound_call("13800138001", "Li Na", context="hotline-plain", digits="1", digit_delay=1,
                         patience=300, stay_when_connected=True)
        for _ in range(80):  # 40 s in half-second steps
            await drv.run_for(0.5)
            state = tracker.live()["consultation"]["members"][0]["state"]
            if not seen or seen[-1][0] != state:
                seen.append((state, clock.seconds()))
            if state == "wrap_up" and wrapup_board is None:
                wrapup_board = build_wallboard(tracker.live(), {}, [], now=clock.seconds(), target=30,
                                               tz=ZoneInfo("Asia/Shanghai"))
    finally:
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    assert [s for s, _ in seen] == ["available", "ringing", "on_call", "wrap_up", "available"], seen
    end_call = member_events[-1]
    assert (end_call["Status"], end_call["Wrapuptime"], end_call["InCall"]) == ("1", "20", "0")
    last_call = int(end_call["LastCall"])
    t_wrap = dict(seen)["wrap_up"]
    t_free = [t for s, t in seen if s == "available"][-1]
    assert last_call <= t_wrap < last_call + 1
    assert last_call + 20 <= t_free <= last_call + 20.5  # app_queue's whole-second wrap-up
    # Asterisk sends nothing when the wrap-up ends: the tracker's own timer told subscribers
    assert any(t == last_call + 20 and fact.member.interface == "Local/1001@sim-agent/n" for t, fact in notes)
    assert wrapup_board["agent_counts"]["wrap_up"] == 1
    assert wrapup_board["agents"][0]["state"] == "wrap_up"
    assert dt.datetime.fromtimestamp(last_call).year >= 2026
