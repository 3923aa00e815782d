"""Issue 14.9: a call answered while the AMI link is down is recorded once the link is back.

Over real AMI TCP with the simulated Asterisk: the link drops (the port refuses
connections for 15 s), a caller is answered by an agent meanwhile (no ``AgentConnect``
reaches us), the link returns while they still talk.  On reconnect the recordings
component finds the caller in ``CoreShowChannels`` (``Queue``, bridged, ``Up``) and starts
MixMonitor from then on (was: never recorded).  A call answered and ended inside the
outage cannot be recorded at all (docs/recordings.md).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet import reactor

from callcenter import simulator
from callcenter.ami.gateway import AmiGateway
from callcenter.clock import ScaledClock
from callcenter.store.retry import sleep
from recordings import capture, catalog
from recordings.settings import Settings
from tests.support.waiting import until

pytestmark = pytest.mark.slow
SPOOL = "/var/spool/asterisk/recordings"


@pytest.mark.timeout(60)
async def test_call_answered_during_an_ami_outage_is_recorded_after_reconnect(db, tmp_path):
    clock = ScaledClock(reactor, 20.0)
    pbx = simulator.SimulatedPBX(clock, seed=9, spool_dir=tmp_path / "pbx")
    await pbx.start(host="127.0.0.1", ami_port=0)
    for agent in ("1001", "1002"):
        pbx.globals[f"AGENT_TALK_{agent}"] = "40"  # still talking when the link returns
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock, ping_interval=60,
                    reconnect_base_delay=0.5, reconnect_max_delay=2)
    await gw.start()
    await gw.wait_connected(10)
    s = Settings(directory=tmp_path / "pbx" / "recordings", spool_dir=Path(SPOOL), finalize_delay=1.0)
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    monitors = []
    gw.subscribe(lambda m, t: monitors.append((m["Uniqueid"], t)) if m.event == "MixMonitorStart" else None,
                 ("MixMonitorStart",))
    await comp.start()
    finalized = {}
    comp.subscribe(lambda what, rid, uid, st: finalized.setdefault(uid, rid) if what == "finalized" else None)
    try:
        port = pbx.ami.port
        pbx.ami._server.close()
        await pbx.ami._server.wait_closed()
        pbx.ami.disconnect_all()
        await until(lambda: not gw.connected, "the gateway noticed the lost link")
        call = pbx.inbound_call("13600136009", "Zhao Lei", context="hotline-plain", digits="1",
                                digit_delay=1, patience=120)
        await until(lambda: call.channel.bridge is not None, "the agent answered")
        await sleep(clock, 10.0)
        back = clock.seconds()
        await pbx.ami.start("127.0.0.1", port)
        await gw.wait_connected(20)
        await until(lambda: [u for u, _ in monitors] == [call.uniqueid], "MixMonitor after reconnect")
        assert not call.done  # recorded while still talking
        await until(lambda: call.uniqueid in finalized, "recording settled after the hang-up", 60)
    finally:
        await comp.stop()
        await gw.stop()
        await pbx.stop()
    [rec] = db.call(lambda ses: [r.as_dict() for r in catalog.query(ses)])
    assert (rec["uniqueid"], rec["status"], rec["kind"], rec["queue"]) == (
        call.uniqueid, "ready", "queue", "consultation")
    assert monitors[0][1] >= back and (s.directory / rec["path"]).is_file()
