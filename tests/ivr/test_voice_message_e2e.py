"""Issue 14.1: after-hours voice messages through the whole service and the simulated
Asterisk (real AMI and FastAGI TCP), whose RECORD FILE, like Asterisk's, creates no
directory and answers ``200 result=-1 (writefile)`` when the directory is missing.

* the IVR makes the day's directory before RECORD FILE: the message is recorded, the
  recording is ``ready`` and the complaint ticket is opened (was: writefile, a ticket for a
  message that does not exist, the row ``recording`` for ever, ``verify`` silent);
* a message that cannot be recorded (the IVR's name for the directory is not Asterisk's,
  or the directory cannot be made) opens no ticket and no callback; the caller hears an
  apology, is offered a callback, and gets one only by asking (key 1); no row is left
  ``recording``.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from tests.support.waiting import until

pytestmark = pytest.mark.slow

AFTER_HOURS = dt.datetime(2026, 11, 25, 22, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


async def run_calls(config, db, tmp_path, callers, *, recordings, agi_recordings_dir=None, disk_full=False,
                    media="phones"):
    """Start the service against a simulated PBX (spool ``tmp_path/pbx``); run ``callers``
    ((number, digits) after hours) on phones, or on the rig's Local channels (``media="local"``:
    no audio); return (calls, sessions, recordings, tickets, contacts)."""
    from callcenter.complaints.models import ComplaintTicket
    from callcenter.app import build
    from callcenter.simulator import SimConfig, SimulatedPBX
    from dialer.models import Contact
    from ivr_flows.models import IvrSession
    from recordings.models import Recording

    clock = ScaledClock(reactor, 20, start=AFTER_HOURS)
    sim = SimConfig(media=media)
    pbx = SimulatedPBX(clock, seed=3, spool_dir=tmp_path / "pbx", agi_port=1, config=sim)
    pbx.disk_full = disk_full
    await pbx.start(host="127.0.0.1", ami_port=0)
    cfg = config.with_overrides({
        "ami": {"host": "127.0.0.1", "port": pbx.ami_port, "username": sim.username, "secret": sim.secret},
        "agi": {"host": "127.0.0.1", "port": 0, "recordings_dir": agi_recordings_dir or ""},
        "recordings": recordings,
        "dialer": {"channel_template": "Local/{number}@sim-patient", "instance": "vm"},
        "web": {"host": "127.0.0.1", "port": 0},
    })
    service = build(cfg, clock=clock, db=db)
    try:
        await service.start()
        pbx.agi_port = service.agi.port
        await service.ami.wait_connected(10)
        calls = [pbx.inbound_call(n, "王小明", context="hotline", digits=d, digit_delay=1, patience=20)
                 for n, d in callers]

        def ended(s):
            return [r.ended_at for r in s.scalars(select(IvrSession).where(
                IvrSession.uniqueid.in_([c.uniqueid for c in calls])))]

        async def all_done():
            got = await db.run(ended)
            return all(c.done for c in calls) and len(got) == len(calls) and all(got)
        await until(all_done, "every IVR session stored and ended")
        await service.agi.writes.drained()

        def snapshot(s):
            return ({r.uniqueid: r for r in s.scalars(select(IvrSession))},
                    list(s.scalars(select(Recording))), list(s.scalars(select(ComplaintTicket))),
                    list(s.scalars(select(Contact))))
        return (calls, *await db.run(snapshot))
    finally:
        await service.stop()
        await pbx.stop()


@pytest.mark.timeout(60)
async def test_after_hours_message_is_recorded_into_a_directory_the_ivr_made(config, db, tmp_path):
    spool = tmp_path / "pbx" / "recordings"  # Asterisk's /var/spool/asterisk/recordings
    calls, sessions, recs, tickets, contacts = await run_calls(
        config, db, tmp_path, [("13800138001", "1w1")],
        recordings={"directory": str(spool), "spool_dir": "/var/spool/asterisk/recordings"},
        agi_recordings_dir="/var/spool/asterisk/recordings")
    [call] = calls
    row = sessions[call.uniqueid]
    assert row.result == "voicemail", row.detail
    [rec] = recs
    day = dt.datetime.fromtimestamp(AFTER_HOURS, tz=ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
    assert rec.path == f"voicemail/{day}/voicemsg-{call.uniqueid}.wav"
    assert (spool / rec.path).is_file() and rec.status == "ready"
    assert [t.id for t in tickets] == [row.detail["ticket_id"]] and contacts == []
    # a phone sends audio: the message holds the ~19 s the caller stayed (was: 0.0 s, a header)
    assert 15 < rec.duration < 21 and (rec.size - 44) / 16000 == pytest.approx(rec.duration, abs=0.001)


@pytest.mark.timeout(60)
async def test_message_that_cannot_be_recorded_opens_nothing_and_offers_a_callback(config, db, tmp_path):
    from recordings.maintenance import verify
    from recordings.settings import from_config

    # Our [recordings] directory is not where Asterisk writes (a wrong mount): the IVR
    # makes its directory there, Asterisk's RECORD FILE finds none and answers (writefile).
    ours = tmp_path / "ours"
    rec_cfg = {"directory": str(ours), "spool_dir": "/var/spool/asterisk/recordings"}
    calls, sessions, recs, tickets, contacts = await run_calls(
        config, db, tmp_path, [("13800138001", "1w1ww1"),  # complaint message, then "1": call me back
                               ("13900139002", "1w2")],  # message for a callback, no key after the apology
        recordings=rec_cfg, agi_recordings_dir="/var/spool/asterisk/recordings")
    wants_callback, silent = (sessions[c.uniqueid] for c in calls)
    for row in (wants_callback, silent):
        i = row.path.index("message_failed")
        assert row.path[i - 1] in ("message_complaint", "message_callback")
        assert "writefile" in row.detail["voice_message_error"]
        assert "ticket_id" not in row.detail and "recording_id" not in row.detail
    assert wants_callback.result == "callback" and wants_callback.path[-2:] == ["callback", "goodbye"]
    assert silent.result == "voicemail_failed" and silent.path[-1] == "call_again"
    assert tickets == [] and recs == []  # nothing stands for a message that does not exist
    assert [(c.phone, c.ref_id) for c in contacts] == [("+8613800138001", str(wants_callback.id))]
    assert not list((tmp_path / "pbx").rglob("voicemsg-*"))  # Asterisk wrote nothing
    report = verify(db, from_config(config.with_overrides({"recordings": rec_cfg})),
                    now=dt.datetime.fromtimestamp(AFTER_HOURS + 600, tz=dt.timezone.utc))
    assert report.ok, report.problems


@pytest.mark.timeout(60)
async def test_message_recorded_onto_a_full_disk_is_failed_and_opens_no_ticket(config, db, tmp_path):
    """Issue 14.8 for voice messages: Asterisk creates the file but cannot write into it."""
    spool = tmp_path / "pbx" / "recordings"
    calls, sessions, recs, tickets, contacts = await run_calls(
        config, db, tmp_path, [("13800138001", "1w1wwwwww#")],  # speaks ~3 s, ends the message with #
        recordings={"directory": str(spool), "spool_dir": "/var/spool/asterisk/recordings"},
        agi_recordings_dir="/var/spool/asterisk/recordings", disk_full=True)
    [call] = calls
    row = sessions[call.uniqueid]
    [rec] = recs
    assert (rec.status, rec.size) == ("failed", 0) and "0 bytes" in rec.error
    assert row.result == "voicemail_failed" and row.path[-2:] == ["message_failed", "call_again"]
    assert row.detail["recording_id"] == rec.id and "ticket_id" not in row.detail
    assert tickets == [] and contacts == []


@pytest.mark.timeout(60)
async def test_message_from_a_local_channel_holds_no_audio_and_opens_nothing(config, db, tmp_path):
    """The real rig (Asterisk 22.10.1, callers on Local channels, trace 07c): RECORD FILE
    answers endpos=0 and leaves a 44-byte WAV, ``ready`` in the catalogue.  Such a message
    is not acted on: no ticket, no callback request, ``voicemail_failed: no message``; a
    caller still on the line hears the apology and gets a callback by asking (key 1)."""
    spool = tmp_path / "pbx" / "recordings"
    calls, sessions, recs, tickets, contacts = await run_calls(
        config, db, tmp_path, [("13800138001", "1w1"),  # complaint message, stays ~19 s, hangs up
                               ("13900139002", "1w2wwwwww#ww1")],  # callback message ended by #, then "1"
        recordings={"directory": str(spool), "spool_dir": "/var/spool/asterisk/recordings"},
        agi_recordings_dir="/var/spool/asterisk/recordings", media="local")
    gone, asks = (sessions[c.uniqueid] for c in calls)
    nothing = "no message: 0.0 s of audio (under 1 s: nothing said, or hung up at the beep)"
    assert gone.result == "voicemail_failed" and gone.detail["voice_message_error"] == nothing
    assert gone.path[-1] == "message_complaint"  # hung up while recording: nobody to apologise to
    assert asks.result == "callback" and asks.detail["voice_message_error"] == nothing
    assert asks.path[-4:] == ["message_callback", "message_failed", "callback", "goodbye"]
    assert tickets == [] and [(c.phone, c.ref_id) for c in contacts] == [("+8613900139002", str(asks.id))]
    # both files stay catalogued as Asterisk left them (retention unchanged), linked to nothing
    assert sorted((r.status, r.size, r.duration, r.ticket_id) for r in recs) == [("ready", 44, 0.0, None)] * 2
    assert {r.id for r in recs} == {gone.detail["recording_id"], asks.detail["recording_id"]}
