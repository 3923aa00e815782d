"""AMI faults through the simulated PBX over real TCP, on a stepped clock.

1. A busy hour (about 300 queue calls, 8 agents) with the link cut 10 times: 5 plain
   drops (reconnect at once) and 5 where the port also refuses connections for
   30-90 s.  Calls joining or ending while the link is down are recovered from
   queue_log.
2. Asterisk "restarts": the AMI port refuses connections for 2 minutes, the calls in
   progress are cut off, and a fresh PBX comes back on the same port with its own
   event stream (a new Uniqueid sequence, same queue_log file).

After each, every queue call in the simulator's own record (queue_log) is stored
exactly once with the simulator's outcome; calls cut off by the crash are stored
once, flagged as a gap.  The figures are printed (``-s``) for docs/reliability.md.
"""
from __future__ import annotations

import json
import time

import pytest
from twisted.internet import task

from callcenter.simulator import DayProfile, SimConfig, SimulatedPBX, run_traffic

from tests.support.harness import EPOCH, Stepper, accounting, drop_link, make_bridge

pytestmark = pytest.mark.slow

SIM = SimConfig(queues={"consultation": [("1001", "Agent 1001"), ("1002", "Agent 1002")],
                        "complaint": [("2001", "Agent 2001")]})


def slow_config_agents(pbx) -> None:
    for agent in ("1001", "1002", "2001"):  # the config's agents talk as long as the others
        pbx.set_agent(agent, talk_time=75, answer_delay=4)


def report(name: str, acc, **extra) -> None:
    print(f"\nFIGURES {name}: " + json.dumps({**{k: v for k, v in vars(acc).items()
                                                   if not isinstance(v, list)},
                                                "missing": len(acc.missing), "extra": len(acc.extra),
                                                "duplicated": len(acc.duplicated),
                                                "wrong_outcome": len(acc.wrong_outcome), **extra}))


@pytest.mark.timeout(120)
async def test_busy_hour_with_ten_link_drops(db, tmp_path):
    t0 = time.monotonic()
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    pbx = SimulatedPBX(clock, seed=11, config=SIM, queue_log=qlog)
    await pbx.start()
    gw, tracker = make_bridge(db, clock, pbx.ami_port, queue_log=str(qlog))
    st = Stepper(clock, [pbx], gw, tracker)
    # one busy hour: ~300 calls, 8 agents (3 from the config + 5 more)
    traffic = run_traffic(pbx, DayProfile(calls=300, hourly_weights={10: 1.0}, agents={"consultation": 4,
                                                                                     "complaint": 1},
                                          talk_mean=75, talk_sd=25, patience_mean=60), seed=11)
    slow_config_agents(pbx)
    await tracker.start()
    await gw.start()
    try:
        await st.until_connected()
        refused = [0, 45, 0, 90, 0, 30, 0, 60, 0, 75]
        for i, refuse in enumerate(refused):
            await st.run_for(330)           # a drop every ~6 minutes of the hour
            await drop_link(st, refuse_for=refuse)
        await st.run_for(3600 + 900 - (clock.seconds() - EPOCH))  # the hour, then drain
        assert traffic.finished, traffic.summary()
        await tracker.flush()
    finally:
        traffic.cancel()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    acc = accounting(db, qlog)
    report("ami_drops", acc, connects=gw.connects, steps=st.steps, calls=traffic.summary(),
           wall_seconds=round(time.monotonic() - t0, 2))
    assert gw.connects == 11 and acc.outages == 10
    assert acc.expected >= 250
    assert acc.exact, (acc.missing[:5], acc.extra[:5], acc.duplicated[:5], acc.wrong_outcome[:5])
    assert acc.recovered_from_queue_log > 0  # the refusals really hid calls from AMI


@pytest.mark.timeout(90)
async def test_asterisk_restart_fresh_event_stream(db, tmp_path):
    t0 = time.monotonic()
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    old = SimulatedPBX(clock, seed=21, config=SIM, queue_log=qlog)
    await old.start()
    port = old.ami_port
    gw, tracker = make_bridge(db, clock, port, queue_log=str(qlog))
    st = Stepper(clock, [old], gw, tracker)
    profile = DayProfile(calls=120, hourly_weights={10: 1.0}, agents={"consultation": 2}, talk_mean=90,
                         talk_sd=20, patience_mean=90)
    traffic = run_traffic(old, profile, seed=21)
    slow_config_agents(old)
    await tracker.start()
    await gw.start()
    new = None
    try:
        await st.until_connected()
        await st.run_for(900)
        while len(tracker.state.calls) < 3:  # crash while several calls are in a queue
            await st.run_for(5)
        live_at_crash = set(tracker.state.calls)
        assert live_at_crash  # calls are waiting or talking when Asterisk goes down
        # crash: the listener goes, connections drop, every channel is gone
        traffic.cancel()
        await old.stop()
        await st.wait_lost()
        await st.run_for(120)                      # connection refused meanwhile (backoff)
        assert not gw.connected
        new = SimulatedPBX(clock, seed=22, config=SIM, queue_log=qlog)
        await new.start(ami_port=port)
        st.pbxs.append(new)
        st.rebase()
        traffic2 = run_traffic(new, DayProfile(calls=60, hourly_weights={10: 1.0}, agents={"consultation": 2},
                                               talk_mean=90, talk_sd=20, patience_mean=90), seed=23)
        slow_config_agents(new)
        await st.until_connected()
        assert new._uid_seq < 50  # a fresh Uniqueid sequence
        await st.run_for(3600 + 600)
        assert traffic2.finished
        await tracker.flush()
    finally:
        await gw.stop()
        await tracker.stop()
        if new is not None:
            traffic2.cancel()
            await new.stop()
    acc = accounting(db, qlog)
    report("asterisk_restart", acc, connects=gw.connects, cut_off=len(live_at_crash),
           wall_seconds=round(time.monotonic() - t0, 2))
    assert gw.connects == 2 and acc.outages == 1
    assert acc.exact, (acc.missing[:5], acc.extra[:5], acc.duplicated[:5], acc.wrong_outcome[:5])
    assert acc.reconstructed >= len(live_at_crash)  # the cut-off calls are there once, as gaps
