"""Restarts and rotations through the simulated PBX over real TCP, on a stepped clock.

1. Asterisk restarts (``core restart now``): the new one accepts the login while it is
   still booting and refuses QueueStatus ("Invalid/unknown command") until app_queue is
   loaded, then sends FullyBooted.  The resync waits for it (or retries with backoff when
   FullyBooted does not come), the outage is stored and recovered from queue_log, nothing
   is logged at ERROR; the calls the crash cut off end at the link loss, with their talk.
2. ``logger rotate`` during an outage: the calls that moved to ``queue_log.0`` (or a
   gzipped predecessor) are recovered; when the file holding the span is gone the outage
   is flagged as a gap, not reported as recovered.
3. Rows rebuilt from queue_log keep the caller's name and IVR session known live or
   stored in ``ivr_sessions``.
"""
from __future__ import annotations

import datetime as dt
import logging
import os

import pytest
from sqlalchemy import select
from twisted.internet import task

from callcenter.queuecalls.models import AmiOutage, QueueCall
from callcenter.simulator import DayProfile, SimulatedPBX, run_traffic
from ivr_flows.models import IvrSession

from tests.support.harness import EPOCH, Stepper, accounting, make_bridge
from .test_ami_faults import SIM, slow_config_agents

pytestmark = pytest.mark.slow


def _ts(v: dt.datetime | None) -> float | None:
    if v is None:
        return None
    return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).timestamp()


def _rows(db) -> list[QueueCall]:
    with db.session() as s:
        return list(s.scalars(select(QueueCall)))


def _outages(db) -> list[AmiOutage]:
    with db.session() as s:
        return list(s.scalars(select(AmiOutage)))


async def _asterisk_restart(db, tmp_path, *, boot_seconds: float, boot_timeout: float):
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    old = SimulatedPBX(clock, seed=31, config=SIM, queue_log=qlog)
    await old.start()
    port = old.ami_port
    gw, tracker = make_bridge(db, clock, port, queue_log=str(qlog))
    gw.boot_timeout = boot_timeout
    st = Stepper(clock, [old], gw, tracker)
    profile = DayProfile(calls=80, hourly_weights={10: 1.0}, agents={"consultation": 2}, talk_mean=90,
                         talk_sd=20, patience_mean=120)
    traffic = run_traffic(old, profile, seed=31)
    slow_config_agents(old)
    await tracker.start()
    await gw.start()
    new = traffic2 = None
    try:
        await st.until_connected()
        await st.run_for(600)
        while sum(1 for c in tracker.state.calls.values() if c.answered_at is not None) < 2 \
                or len(tracker.state.calls) < 3:
            await st.run_for(5)
        cut_off = {u: c.answered_at for u, c in tracker.state.calls.items()}
        lost_at = clock.seconds()
        traffic.cancel()
        await old.stop()                     # Shutdown, the connection closes, the channels die
        await st.wait_lost()
        await st.run_for(3)                  # the restart's exec: port refused a moment
        new = SimulatedPBX(clock, seed=32, config=SIM, queue_log=qlog)
        await new.start(ami_port=port, boot_seconds=boot_seconds)
        st.pbxs.append(new)
        st.rebase()
        while not gw.connected:
            await st.run_for(0.5)
        assert new.fully_booted == (boot_seconds == 0)  # logged in while Asterisk boots
        await st.until_connected()
        assert new.fully_booted
        traffic2 = run_traffic(new, DayProfile(calls=20, hourly_weights={10: 1.0}, agents={"consultation": 2},
                                               talk_mean=60, talk_sd=15, patience_mean=120), seed=33)
        slow_config_agents(new)
        await st.run_for(3600 + 600)
        assert traffic2.finished
        await tracker.flush()
    finally:
        await gw.stop()
        await tracker.stop()
        if traffic2 is not None:
            traffic2.cancel()
        if new is not None:
            await new.stop()
    return accounting(db, qlog), cut_off, lost_at, gw


@pytest.mark.timeout(90)
@pytest.mark.parametrize("boot_timeout", [300.0, 4.0], ids=["waits-for-FullyBooted", "retries-refused-resync"])
async def test_asterisk_restart_during_boot_is_resynced_and_recovered(db, tmp_path, caplog, boot_timeout):
    caplog.set_level(logging.INFO)
    acc, cut_off, _, gw = await _asterisk_restart(db, tmp_path, boot_seconds=20, boot_timeout=boot_timeout)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage()) for r in errors]
    (o,) = _outages(db)
    assert o.recovered_from_queue_log, o.note
    assert gw.connects == 2
    assert acc.exact, (acc.missing[:5], acc.extra[:5], acc.duplicated[:5], acc.wrong_outcome[:5])
    refused = [r for r in caplog.records if "resync refused" in r.getMessage()]
    if boot_timeout < 20:
        assert refused and all(r.levelno == logging.WARNING and not r.exc_info for r in refused)
    else:
        assert not refused


@pytest.mark.timeout(60)
async def test_calls_cut_off_by_an_asterisk_crash_end_at_the_link_loss(db, tmp_path):
    acc, cut_off, lost_at, _ = await _asterisk_restart(db, tmp_path, boot_seconds=0, boot_timeout=300)
    rows = {r.uniqueid: r for r in _rows(db) if r.uniqueid in cut_off}
    assert set(rows) == set(cut_off) and all(r.gap for r in rows.values())
    for uid, answered in cut_off.items():
        r = rows[uid]
        assert _ts(r.ended_at) == pytest.approx(lost_at, abs=0.01), (uid, r.outcome)
        if answered is not None:
            assert r.talk_seconds == pytest.approx(lost_at - answered, abs=0.01)


async def _outage(st: Stepper, seconds: float, during=None) -> None:
    """The link is cut and the port refuses connections for ``seconds``; ``during(i)``
    runs at each third of it."""
    ami = st.pbx.ami
    port = ami.port
    ami._server.close()
    await ami._server.wait_closed()
    for s in list(ami.sessions):
        s.transport.abort()
    await st.wait_lost()
    for i in range(3):
        await st.run_for(seconds / 3)
        if during is not None:
            during(i)
    await ami.start("127.0.0.1", port)
    st.rebase()
    await st.until_connected()


async def _rotation_run(db, tmp_path, rotate):
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    pbx = SimulatedPBX(clock, seed=41, config=SIM, queue_log=qlog)
    await pbx.start()
    gw, tracker = make_bridge(db, clock, pbx.ami_port, queue_log=str(qlog))
    st = Stepper(clock, [pbx], gw, tracker)
    traffic = run_traffic(pbx, DayProfile(calls=150, hourly_weights={10: 1.0}, agents={"consultation": 3},
                                          talk_mean=60, talk_sd=20, patience_mean=60), seed=41)
    slow_config_agents(pbx)
    await tracker.start()
    await gw.start()
    try:
        await st.until_connected()
        await st.run_for(600)
        await _outage(st, 1200, during=lambda i: rotate(pbx, i))
        await st.run_for(3600 + 600 - (clock.seconds() - EPOCH))
        assert traffic.finished
        await tracker.flush()
    finally:
        traffic.cancel()
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    return qlog


@pytest.mark.timeout(60)
@pytest.mark.parametrize("strategy,compress", [("sequential", False), ("rotate", True)])
async def test_outage_across_logger_rotate_recovers_from_the_rotated_files(db, tmp_path, strategy, compress):
    def rotate(pbx, i):
        if i < 2:  # twice during the outage
            pbx.logger_rotate(strategy, compress=compress)

    qlog = await _rotation_run(db, tmp_path, rotate)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("queue_log.")) == (
        ["queue_log.0", "queue_log.1"] if not compress else ["queue_log.0.gz", "queue_log.1.gz"])
    acc = accounting(db, qlog)
    (o,) = _outages(db)
    assert o.recovered_from_queue_log and o.recovered_calls >= 20, (o.recovered_calls, o.note)
    assert acc.exact, (acc.missing[:5], acc.extra[:5], acc.duplicated[:5], acc.wrong_outcome[:5])


@pytest.mark.timeout(60)
async def test_outage_whose_queue_log_span_is_gone_is_flagged_not_recovered(db, tmp_path):
    aside = tmp_path / "aside"
    aside.mkdir()

    def rotate(pbx, i):
        if i == 1:  # the file with the outage's start is rotated and then removed
            os.rename(pbx.logger_rotate("sequential"), aside / "queue_log.0")

    qlog = await _rotation_run(db, tmp_path, rotate)
    (o,) = _outages(db)
    assert not o.recovered_from_queue_log
    assert "older files were removed" in o.note
    assert o.recovered_calls > 0  # what the current file holds is stored all the same
    os.rename(aside / "queue_log.0", tmp_path / "queue_log.0")
    acc = accounting(db, qlog)
    assert acc.missing and not acc.duplicated  # lost with the file: the gap row says so


@pytest.mark.timeout(60)
async def test_rows_rebuilt_from_queue_log_keep_caller_name_and_ivr_session(db, tmp_path):
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    pbx = SimulatedPBX(clock, seed=51, config=SIM, queue_log=qlog)
    await pbx.start()
    gw, tracker = make_bridge(db, clock, pbx.ami_port, queue_log=str(qlog))
    st = Stepper(clock, [pbx], gw, tracker)
    await tracker.start()
    await gw.start()
    try:
        await st.until_connected()
        for agent in ("1001", "1002", "2001"):
            pbx.set_agent(agent, answer_delay=12, talk_time=50)
        waiting = pbx.inbound_call("13800138002", "王小明", context="hotline-plain", digits="1", patience=600)
        await st.run_for(4)
        pbx.setvar(waiting.channel, "IVR_SESSION", "901")  # what the IVR sets before Queue()
        await st.run_for(4)
        assert [c.ivr_session_id for c in tracker.state.calls.values()] == [901]
        inside: list = []

        def call_inside(i):
            if i == 0:  # joins and ends while the link is down; its IVR session is stored
                inside.append(pbx.inbound_call("13900139003", "Zhang Min", context="hotline-plain",
                                               digits="1", patience=600))
                sid = db.call(lambda s: _ivr_row(s, inside[0].uniqueid, clock.seconds()))
                inside.append(sid)

        await _outage(st, 240, during=call_inside)
        await st.run_for(300)
        await tracker.flush()
    finally:
        await gw.stop()
        await tracker.stop()
        await pbx.stop()
    rows = {r.uniqueid: r for r in _rows(db)}
    w, i = rows[waiting.uniqueid], rows[inside[0].uniqueid]
    assert (w.source, w.outcome) == ("queue_log", "answered") and (i.source, i.outcome) == ("queue_log", "answered")
    assert (w.caller_name, w.ivr_session_id) == ("王小明", 901)
    assert i.ivr_session_id == inside[1]


def _ivr_row(s, uniqueid: str, t: float) -> int:
    row = IvrSession(flow="hotline", uniqueid=uniqueid, caller_number="13900139003",
                     started_at=dt.datetime.fromtimestamp(t, dt.timezone.utc), path=[], digits="1",
                     result="queued:consultation", language="zh", detail={})
    s.add(row)
    s.flush()
    return row.id


@pytest.mark.timeout(60)
async def test_calls_cut_off_by_a_crash_during_an_outage_are_bounded_by_queue_log(db, tmp_path):
    """The link is down when Asterisk crashes: the calls it cut off ended after its last
    queue_log line (not at the link loss), and a caller connected in the outage was answered."""
    clock = task.Clock()
    clock.advance(EPOCH)
    qlog = tmp_path / "queue_log"
    old = SimulatedPBX(clock, seed=71, config=SIM, queue_log=qlog)
    await old.start()
    port = old.ami_port
    gw, tracker = make_bridge(db, clock, port, queue_log=str(qlog))
    st = Stepper(clock, [old], gw, tracker)
    await tracker.start()
    await gw.start()
    new = None
    try:
        await st.until_connected()
        old.set_agent("1001", answer_delay=2, talk_time=300)
        old.set_agent("1002", answer_delay=2, talk_time=300)
        old.pause_member("Local/1002@sim-agent/n", True, "break")
        a = old.inbound_call("13800138001", "Li Na", context="hotline-plain", digits="1", patience=600)
        await st.run_for(10)
        b = old.inbound_call("13800138002", "王小明", context="hotline-plain", digits="1", patience=600)
        await st.run_for(10)
        assert tracker.state.calls[a.uniqueid].answered_at and not tracker.state.calls[b.uniqueid].answered_at
        a_answered = tracker.state.calls[a.uniqueid].answered_at
        old.ami._server.close()                          # the network goes
        await old.ami._server.wait_closed()
        for s in list(old.ami.sessions):
            s.transport.abort()
        await st.wait_lost()
        lost_at = clock.seconds()
        await st.run_for(10)
        old.pause_member("Local/1002@sim-agent/n", False)  # b is answered while we are away
        await st.run_for(30)
        await old.stop()                                 # then Asterisk crashes
        await st.run_for(10)
        new = SimulatedPBX(clock, seed=72, config=SIM, queue_log=qlog)
        await new.start(ami_port=port)
        st.pbxs.append(new)
        st.rebase()
        await st.until_connected()
        await st.run_for(30)
        await tracker.flush()
    finally:
        await gw.stop()
        await tracker.stop()
        if new is not None:
            await new.stop()
    lines = [ln.split("|") for ln in qlog.read_text().splitlines()]
    restart = max(i for i, p in enumerate(lines) if p[4] == "QUEUESTART")
    died_at = float(lines[restart - 1][0])
    connect = next(float(p[0]) for p in lines if p[1] == b.uniqueid and p[4] == "CONNECT")
    assert lost_at < connect <= died_at
    rows = {r.uniqueid: r for r in _rows(db)}
    ra, rb = rows[a.uniqueid], rows[b.uniqueid]
    assert (ra.outcome, ra.gap, _ts(ra.ended_at)) == ("answered", True, died_at)
    assert ra.talk_seconds == pytest.approx(died_at - a_answered)
    assert (rb.outcome, rb.gap, _ts(rb.ended_at), _ts(rb.answered_at)) == ("answered", True, died_at, connect)
    assert rb.agent == "Local/1002@sim-agent/n" and rb.talk_seconds == pytest.approx(died_at - connect)
    assert (rb.caller_name, ra.caller_name) == ("王小明", "Li Na")
