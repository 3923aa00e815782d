"""The product as the composition root builds it (``callcenter.app.build``), against the
simulated Asterisk over real AMI and FastAGI, on one time-scaled clock.

Nothing here is replaced: the IVR reads the queue load from the live queue-call
tracker and asks the real dialer API for the callback, the way ``serve`` runs.
"""
from __future__ import annotations

import gc

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.app import build
from callcenter.clock import ScaledClock
from callcenter.ports import AssemblyError
from tests.support.product import simulated_product
from tests.support.waiting import until

pytestmark = pytest.mark.slow

OPEN = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # a Wednesday


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_long_consultation_queue_offers_a_callback_and_1_creates_it(config, db, tmp_path):
    from dialer.models import Contact
    from ivr_flows.models import IvrSession

    clock, pbx, product = await simulated_product(config, db, tmp_path, scale=60, start=OPEN, seed=3)
    try:
        gc.unfreeze()  # whatever an earlier test's start-up froze
        await product.start()
        assert gc.get_freeze_count() > 10_000  # start-up's heap is out of the collector's walks (heap.py)
        pbx.agi_port = product.agi.port
        await product.ami.wait_connected(10)
        for agent in ("1001", "1002"):  # nobody answers consultation: its queue grows
            pbx.pause_member(f"Local/{agent}@sim-agent/n", True, "meal")

        # A: Chinese, then 1 (consultation): queued, waits
        first = pbx.inbound_call("13800138001", "王小明", digits="1w1", digit_delay=1, patience=3600)

        async def waiting_long():
            load = product.queuecalls.queue_load("consultation")
            return load is not None and load.longest_wait > 300
        await until(waiting_long, "a consultation caller waiting over the flow's 300 s")

        # B: Chinese, consultation -> the long-wait branch offers a callback -> 1 (yes)
        second = pbx.inbound_call("13900139002", "李娜", digits="1w1w1", digit_delay=1, patience=600)

        def session_of(s, call):
            return s.scalars(select(IvrSession).where(IvrSession.uniqueid == call.uniqueid)).first()

        async def second_done():
            row = await db.run(session_of, second)
            return row is not None and row.ended_at is not None
        await until(second_done, "the second caller's IVR session ends")

        def facts(s):
            row = session_of(s, second)
            contacts = list(s.scalars(select(Contact).where(Contact.reason == "callback requested in the hotline IVR")))
            return row.path, row.result, row.detail, [(c.phone, c.name, c.ref_id) for c in contacts]
        path, result, detail, contacts = await db.run(facts)
        assert path[-4:] == ["consultation_load", "offer_callback", "callback", "goodbye"], path
        assert result == "callback" and detail["contact_id"]
        assert contacts == [("+8613900139002", "李娜", str((await db.run(session_of, second)).id))]
        first_path = (await db.run(session_of, first)).path
        assert "offer_callback" not in first_path  # nobody was waiting when A called
    finally:
        await product.stop()
        await pbx.stop()


def test_a_collaborator_without_its_method_stops_the_build(config, db):
    """No guessing with getattr: a part that does not fill its port is named at build time."""

    class NotAnAmiClient:
        connected = True

        def subscribe(self, cb):
            pass

    with pytest.raises(AssemblyError, match=r"AMI client: NotAnAmiClient is not a AmiClient \(missing "
                                            r"unsubscribe, count_events, on_connect, on_disconnect, action\)"):
        build(config, db=db, ami=NotAnAmiClient())


def test_ivr_ports_are_checked(config):
    from ivr_flows.server import IvrPorts
    from tests import support

    good = support.ivr_ports(config=config)
    with pytest.raises(AssemblyError, match="IVR queue_load: object is not a QueueLoad"):
        IvrPorts(queue_load=object(), voice_messages=good.voice_messages, tickets=good.tickets,
                 callbacks=good.callbacks, surveys=good.surveys, ratings=good.ratings,
                 appointments=good.appointments)


@pytest.mark.timeout(60)
async def test_an_answered_call_is_recorded_with_its_audio(config, db, tmp_path):
    """The demo's path: MixMonitor from the recordings component on the simulated PBX, the
    file covers the talk time (scaled clock) and the catalogue keeps it as ``ready``."""
    from callcenter.simulator import SimConfig, SimulatedPBX
    from recordings.models import Recording

    clock = ScaledClock(reactor, 60, start=OPEN)
    sim = SimConfig()
    pbx = SimulatedPBX(clock, seed=4, spool_dir=tmp_path / "pbx", agi_port=1, config=sim)
    await pbx.start(host="127.0.0.1", ami_port=0)
    pbx.globals["AGENT_SAY"] = "hello-world"
    for agent in ("1001", "1002"):
        pbx.set_agent(agent, answer_delay=2, talk_time=90)
    talk = []
    pbx.listeners.append(lambda h: talk.append(int(dict(h)["TalkTime"])) if dict(h).get("Event") == "AgentComplete"
                         else None)
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username, "secret": sim.secret},
        "agi": {"host": "127.0.0.1", "port": 0},
        "recordings": {"directory": str(tmp_path / "rec"), "spool_dir": str(tmp_path / "rec")},
        "dialer": {"enabled": False},
        "web": {"host": "127.0.0.1", "port": 0},
    })
    product = build(cfg, clock=clock, db=db)
    try:
        await product.start()
        await product.ami.wait_connected(10)
        call = pbx.inbound_call("13800138001", "王小明", context="hotline-plain", digits="1", digit_delay=1,
                                patience=600, stay_when_connected=True)
        rec_id = await product.recordings.wait_finalized(call.uniqueid, timeout=30)
        rec = await db.run(lambda s: s.get(Recording, rec_id).as_dict())
    finally:
        await product.stop()
        await pbx.stop()
    assert call.outcome == "answered"
    assert rec["status"] == "ready" and not rec["error"], rec
    # 90 s of talk (1.5 s on the x60 clock); the file starts when MixMonitor arrives, a
    # moment after AgentConnect (on a loaded machine that lag is simulated seconds)
    assert talk and talk[0] >= 90 and 60 <= rec["duration"] <= talk[0] + 1, (rec, talk)
    assert (tmp_path / "rec" / rec["path"]).stat().st_size == rec["size"]
    assert rec["size"] == pytest.approx(44 + rec["duration"] * 16000, abs=16)  # duration: ms


@pytest.mark.timeout(60)
async def test_start_up_objects_are_frozen_out_of_the_collector_until_stop(config, db, tmp_path):
    """callcenter/heap.py: once started, what start-up built (the served flows among it) is
    out of the cycle collector's view, so a full collection no longer walks it on the loop;
    stopping gives it back."""
    import gc


    clock, pbx, product = await simulated_product(config, db, tmp_path, scale=60, start=OPEN, seed=5)
    try:
        await product.start()
        frozen = gc.get_freeze_count()
        hotline = product.agi.flow("hotline")
        collected = any(o is hotline for o in gc.get_objects())  # the collector's generations only
    finally:
        await product.stop()
        await pbx.stop()
    assert frozen > 10_000 and not collected
    assert gc.get_freeze_count() == 0
