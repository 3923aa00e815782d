"""Dropped connections, resync on reconnect, queue_log recovery, write failures."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from callcenter.ami.tracefile import read_ami, traces_dir

QUEUE_LOG = str(traces_dir() / "queue_log")
EV = lambda name: (lambda m: m.event == name)  # noqa: E731


def recorded_list(trace: str, action_id: str):
    tr = read_ami(traces_dir() / trace)
    return [e.message.headers for e in tr.received
            if e.message is not None and e.message.get("ActionID") == action_id]


async def test_drop_mid_call_then_resync_keeps_the_call_once(bridge):
    """01: link lost while the caller waits; answered during the outage; completed after it."""
    channels = [[("Response", "Success"), ("EventList", "start"), ("Message", "Channels will follow")],
                [("Event", "CoreShowChannel"), ("Channel", "Local/s@sim-caller-00000000;1"),
                 ("CallerIDNum", "13800138001"), ("CallerIDName", "Li Na"),
                 ("Uniqueid", "1795346592.0"), ("Linkedid", "1795346592.0"),
                 ("Application", "Queue"), ("ApplicationData", "consultation"),
                 ("Duration", "00:00:06"), ("BridgeId", "82e87a64")],
                [("Event", "CoreShowChannelsComplete"), ("EventList", "Complete"), ("ListItems", "1")]]
    lost = []

    def responder(action):
        if action.get("Action") == "CoreShowChannels" and lost:
            return channels
        return None

    b = bridge("01-inbound-answered.ami", server_kw={"responder": responder})
    join = b.index(EV("QueueCallerJoin"))
    complete = b.index(EV("AgentComplete"))
    b.server.drop_at, b.server.skip_after_drop = [join + 1], complete - (join + 1)
    async with b:
        b.gw.on_disconnect(lost.append)
        await b.until(lambda: lost)
        assert [c.caller_name for c in b.tracker.state.calls.values()] == ["Li Na"]
        b.clock.advance(3)  # past the reconnect backoff (jitter in [0.5, 1] s)
        await b.replayed()
        rows = await b.settle()
        assert b.server.connections == 2
        assert len(rows) == 1
        r = rows[0]
        assert (r.outcome, r.caller_name, r.agent, r.gap) == (
            "answered", "Li Na", "Local/1001@sim-agent/n", True)
        assert r.wait_seconds == pytest.approx(3.0)          # Asterisk's HoldTime
        assert r.within_target is True
        assert r.talk_seconds == pytest.approx(11.920 - 3.410 - 3.0, abs=0.01)
        (o,) = b.outages()
        assert not o.recovered_from_queue_log and "no queue_log" in o.note
        assert (o.end - o.start).total_seconds() == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("with_queue_log", [True, False])
async def test_call_entirely_inside_an_outage(bridge, with_queue_log):
    """The whole call happens while AMI is down: queue_log recovers it, else the gap is recorded."""
    b = bridge("01-inbound-answered.ami",
               tracker_kw={"queue_log": QUEUE_LOG if with_queue_log else ""})
    join = b.index(EV("QueueCallerJoin"))
    last = b.index(lambda m: m.get("Response") == "Goodbye")
    b.server.drop_at, b.server.skip_after_drop = [join], last - join
    lost = []
    async with b:
        b.gw.on_disconnect(lost.append)
        await b.until(lambda: lost)
        b.clock.advance(13)  # the call happens meanwhile
        await b.replayed()
        await b.until(lambda: b.outages())
        rows = await b.settle()
        (o,) = b.outages()
        if not with_queue_log:
            assert rows == [] and not o.recovered_from_queue_log
            return
        assert o.recovered_from_queue_log and o.recovered_calls == 1
        (r,) = rows
        assert (r.uniqueid, r.queue, r.outcome, r.source, r.gap) == (
            "1795346592.0", "consultation", "answered", "queue_log", True)
        assert (r.wait_seconds, r.talk_seconds, r.agent_name) == (3.0, 6.0, "Agent 1001")
        assert r.caller_number == "+8613800138001" and r.within_target is True


async def test_first_connect_adopts_waiting_and_connected_callers(bridge):
    """08 joined mid-recording: QueueStatus/CoreShowChannels rebuild the state, no double count."""
    qs, csc = recorded_list("08-queue-status.ami", "qs-all"), recorded_list("08-queue-status.ami", "csc-1")

    def responder(action):
        return {"QueueStatus": qs, "CoreShowChannels": csc}.get(action.get("Action"))

    b = bridge("08-queue-status.ami", server_kw={"responder": responder})
    start = b.index(lambda m: m.get("ActionID") == "qs-all")
    b.__init__(b.db, "08-queue-status.ami", server_kw={"responder": responder}, start_at=start)
    async with b:
        await b.gw.wait_connected(5)
        live = b.tracker.live()["consultation"]
        assert [w["uniqueid"] for w in live["waiting"]] == ["1795346807.60"]
        assert live["waiting"][0]["uncertain"] and live["waiting"][0]["wait"] == pytest.approx(3, abs=0.01)
        assert {t["agent"] for t in live["talking"]} == {"Local/1001@sim-agent/n", "Local/1002@sim-agent/n"}
        await b.replayed()
        rows = {r.caller_name: r for r in await b.settle()}
    assert set(rows) == {"Caller One", "Caller Two", "Caller Three"}
    assert all(r.gap for r in rows.values())
    three = rows["Caller Three"]
    assert three.outcome == "redirected" and three.wait_seconds == pytest.approx(3.005, abs=0.01)
    one, two = rows["Caller One"], rows["Caller Two"]
    assert (one.outcome, one.agent, one.wait_seconds) == ("answered", "Local/1002@sim-agent/n", 1.0)
    assert (two.outcome, two.agent, two.wait_seconds) == ("answered", "Local/1001@sim-agent/n", 1.0)
    assert two.talk_seconds == pytest.approx(9.0)  # the AgentComplete without channel fields


async def test_database_errors_are_retried_nothing_dropped(bridge, db):
    from sqlalchemy.exc import OperationalError

    class FlakyDb:
        def __init__(self, real, failures):
            self.real, self.failures = real, failures

        async def run(self, fn, *a):
            if self.failures:
                self.failures -= 1
                raise OperationalError("INSERT", {}, Exception("database is locked"))
            return await self.real.run(fn, *a)

        async def run_blocking(self, fn, *a):
            return await self.real.run_blocking(fn, *a)

    b = bridge("01b-inbound-two-overlapping.ami", tracker_kw={"retry_base_delay": 0.001})
    async with b:
        b.tracker.db = FlakyDb(db, 3)
        await b.replayed()
        rows = await b.settle()
        assert len(rows) == 2 and b.tracker.write_errors == 3 and b.tracker.buffer == []


async def test_restart_of_the_bridge_is_an_outage_recovered_from_queue_log(bridge, db):
    """The service was down since its checkpoint; queue_log fills in what it missed."""
    from callcenter.queuecalls.reducer import QueueCallRecord
    from callcenter.queuecalls.store import save_checkpoint, write_calls

    before = QueueCallRecord("1795346400.1", "1795346400.1", "consultation", 1, "+8613800138009", "",
                             1795346400.0, 1795346402.0, 1795346410.0, 2.0, "Local/1001@sim-agent/n",
                             "Agent 1001", 8.0, "answered", 1, None, False)
    db.call(write_calls, [before], 30.0, "default")
    db.call(save_checkpoint, 1795346410.0, "default")
    b = bridge("01-inbound-answered.ami", tracker_kw={"queue_log": QUEUE_LOG})
    after = b.index(lambda m: m.get("Response") == "Goodbye")
    b.__init__(db, "01-inbound-answered.ami", tracker_kw={"queue_log": QUEUE_LOG}, start_at=after)
    async with b:
        await b.gw.wait_connected(5)
        await b.until(lambda: b.outages())
        rows = await b.settle()
    (o,) = b.outages()
    assert o.recovered_from_queue_log and o.recovered_calls == 1
    start = o.start if o.start.tzinfo else o.start.replace(tzinfo=dt.timezone.utc)
    assert start.timestamp() == pytest.approx(1795346410.0)  # the checkpoint
    assert sorted((r.uniqueid, r.source) for r in rows) == [
        ("1795346400.1", "ami"), ("1795346592.0", "queue_log")]
