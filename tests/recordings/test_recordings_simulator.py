"""End to end over real TCP: simulated Asterisk (AMI server writing real WAVs for
MixMonitor) ↔ AMI gateway ↔ recordings component ↔ database and disk; time-scaled."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from twisted.internet import reactor

from callcenter.ami.gateway import AmiGateway
from callcenter import simulator
from callcenter.clock import ScaledClock
from recordings import capture, catalog, maintenance
from recordings.models import Recording
from recordings.policy import Policy, Rule
from recordings.settings import Settings


SPOOL = "/var/spool/asterisk/recordings"  # as the PBX sees it; the simulator maps it below its spool_dir


async def _setup(tmp_path, **settings_kw):
    clock = ScaledClock(reactor, 20.0)
    pbx = simulator.SimulatedPBX(clock, seed=1, spool_dir=tmp_path / "pbx")
    await pbx.start(host="127.0.0.1", ami_port=0)
    gw = AmiGateway("127.0.0.1", pbx.ami_port, "bridge", "bridge-secret", clock=clock, ping_interval=60)
    await gw.start()
    await gw.wait_connected(10)
    s = Settings(directory=tmp_path / "pbx" / "recordings", spool_dir=Path(SPOOL), finalize_delay=1.0,
                 **settings_kw)
    return clock, pbx, gw, s


async def _teardown(comp, gw, pbx):
    await comp.stop()
    await gw.stop()
    await pbx.stop()


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_answered_call_recorded_catalogued_and_verified(db, tmp_path):
    clock, pbx, gw, s = await _setup(tmp_path)
    pbx.globals["AGENT_SAY"] = "hello-world"  # the agent greets: the only audio a Local channel carries
    seen = []
    gw.subscribe(lambda m, t: seen.append(m) if m.event in ("MixMonitorStart", "MixMonitorStop", "Hangup",
                                                             "AgentConnect", "VarSet") else None,
                 ("MixMonitorStart", "MixMonitorStop", "Hangup", "AgentConnect", "VarSet"))
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    try:
        call = pbx.inbound_call("13600136005", "Chen Jie", context="hotline-plain", digits="1",
                                digit_delay=1, patience=60)
        rec_id = await comp.wait_finalized(call.uniqueid, timeout=40)
        rec = db.call(lambda ses: ses.get(Recording, rec_id))
        assert rec.status == "ready", rec.error

        mine = [m for m in seen if m.get("Uniqueid") == call.uniqueid]
        kinds = [m.event for m in mine if m.event != "VarSet"]
        assert kinds.index("AgentConnect") < kinds.index("MixMonitorStart") < kinds.index("Hangup")
        filename = [m["Value"] for m in mine if m.event == "VarSet" and m["Variable"] == "MIXMONITOR_FILENAME"]
        assert filename == [f"{SPOOL}/{rec.path}"]

        connect = next(m for m in mine if m.event == "AgentConnect")
        local = dt.datetime.fromtimestamp(catalog.as_utc(rec.started_at).timestamp(), ZoneInfo(s.timezone))
        assert rec.path == f"{local:%Y/%m/%d}/consultation/{call.uniqueid}.wav"
        assert (rec.queue, rec.agent, rec.kind) == ("consultation", connect["Interface"], "queue")
        assert rec.caller_number == "+8613600136005"  # E.164, like queue_calls (was 13600136005)
        f = s.directory / rec.path
        data = f.read_bytes()
        assert data[:4] == b"RIFF" and rec.size == len(data) >= 44
        assert rec.sha256 == hashlib.sha256(data).hexdigest()
        # 8 kHz 16-bit mono: 16000 bytes per second after the 44-byte header
        assert rec.duration == pytest.approx((len(data) - 44) / 16000, abs=0.001)
        assert rec.ended_at is not None and rec.ended_at > rec.started_at

        now = dt.datetime.now(dt.timezone.utc)
        assert maintenance.verify(db, s, now=now).ok
        f.unlink()
        orphan = s.directory / "2020/01/01/consultation/1.1.wav"
        orphan.parent.mkdir(parents=True)
        orphan.write_bytes(data)
        problems = {(p.kind, p.recording_id) for p in maintenance.verify(db, s, now=now).problems}
        assert problems == {("missing", rec_id), ("orphan", None)}
    finally:
        await _teardown(comp, gw, pbx)


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_policy_and_outbound_campaign_through_the_simulator(db, tmp_path):
    from dialer.campaigns import create_campaign

    db.call(lambda ses: create_campaign(ses, name="revisit", kind="revisit", state="running"))
    clock, pbx, gw, s = await _setup(tmp_path, policy=Policy(
        queues={"consultation": Rule(0)}, campaigns={"kind:revisit": Rule(100)}))
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    try:
        pbx.set_patient("13900000001", outcome="answer", ring=1)
        resp = await gw.originate("dial-rec-1", "Local/13900000001@sim-patient", application="Playback",
                                  data="hello-world", timeout_ms=20000, caller_id='"City Hospital" <02100000000>',
                                  variables={"CAMPAIGN": "revisit", "ATTEMPT_ID": "7"})
        assert resp.get("Response") == "Success"
        # an inbound call in a queue whose policy is none: never recorded
        call = pbx.inbound_call("13600136006", "Li Lei", context="hotline-plain", digits="1", digit_delay=1,
                                patience=60)
        loop = asyncio.get_running_loop()
        finalized, caller_gone = loop.create_future(), loop.create_future()
        comp.subscribe(lambda what, rid, uid, status: finalized.done() or what != "finalized"
                       or finalized.set_result(uid))
        gw.subscribe(lambda m, t: caller_gone.done() or m.event != "Hangup"
                     or m.get("Uniqueid") != call.uniqueid or caller_gone.set_result(t), ("Hangup",))
        uid = await asyncio.wait_for(finalized, 40)
        await asyncio.wait_for(caller_gone, 40)
        await comp.idle()
        assert comp.scheduled() == 0
        rows = db.call(lambda ses: [(r.kind, r.campaign, r.status, r.uniqueid) for r in catalog.query(ses)])
        assert rows == [("outbound", "revisit", "ready", uid)]
        rows = [r[:3] for r in rows]
        assert rows == [("outbound", "revisit", "ready")]
    finally:
        await _teardown(comp, gw, pbx)


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_full_disk_recording_is_failed_logged_and_verified(db, tmp_path, caplog):
    """Issue 14.8: on a full disk Asterisk's MixMonitor still creates the file and answers
    Success, but writes nothing into it.  The 0-byte file is ``failed`` (was: ``ready`` with
    the sha256 of an empty file and an INFO line), logged as an error, listed with its
    reason, and ``verify`` reports it."""
    clock, pbx, gw, s = await _setup(tmp_path)
    pbx.globals["AGENT_SAY"] = "hello-world"
    pbx.disk_full = True
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    try:
        call = pbx.inbound_call("13600136007", "Wang Fang", context="hotline-plain", digits="1",
                                digit_delay=1, patience=60)
        rec_id = await comp.wait_finalized(call.uniqueid, timeout=40)
    finally:
        await _teardown(comp, gw, pbx)
    rec = db.call(lambda ses: ses.get(Recording, rec_id).as_dict())
    assert (rec["status"], rec["size"]) == ("failed", 0) and "0 bytes" in rec["error"]
    assert (s.directory / rec["path"]).stat().st_size == 0  # what Asterisk left
    errors = [r for r in caplog.records if r.levelname == "ERROR" and f"recording {rec_id} " in r.getMessage()]
    assert errors and "0 bytes" in errors[0].getMessage()
    problems = maintenance.verify(db, s, now=dt.datetime.now(dt.timezone.utc)).problems
    assert [(p.kind, p.recording_id) for p in problems] == [("failed", rec_id)]
    assert "0 bytes" in problems[0].detail
