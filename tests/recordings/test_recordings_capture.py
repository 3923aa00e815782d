"""Capture: trace 06 through the component with a fake gateway and an injected clock."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.ami.tracefile import read_ami, traces_dir
from recordings import capture, catalog
from recordings.models import Recording
from recordings.policy import NONE, Policy, Rule
from recordings.settings import Settings

from rec_fakes import FakeGateway

SPOOL = "/var/spool/asterisk/recordings"
TRACE06 = traces_dir() / "06-mixmonitor.ami"
PART1 = traces_dir() / "06-mixmonitor-part1.wav"
CALLER = "1795346754.44"


def make_settings(tmp_path: Path, **kw) -> Settings:
    return Settings(directory=tmp_path / "rec", spool_dir=Path(SPOOL), **kw)


def trace_events(path=TRACE06):
    tr = read_ami(path)
    return [(e.message, tr.epoch + e.t) for e in tr.received if e.message and e.message.event]


async def run_trace(comp, gw, clock, events):
    for msg, t in events:
        clock.advance(max(0.0, t - clock.seconds()))
        gw.emit(msg, t)
        await comp.idle()


def rows(db):
    return db.call(lambda s: list(s.scalars(select(Recording).order_by(Recording.id))))


async def test_answered_call_is_recorded_and_catalogued(db, tmp_path):
    s = make_settings(tmp_path)
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    events = trace_events()
    clock = Clock()
    clock.advance(events[0][1])
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    await run_trace(comp, gw, clock, events)

    mm = [a for a in gw.sent if a["Action"] == "MixMonitor"]
    assert len(mm) == 1  # one recording per call, though the trace has two MixMonitorStart
    assert mm[0]["Channel"] == "Local/s@sim-caller-00000016;1"
    assert mm[0]["File"] == f"{SPOOL}/2026/11/22/consultation/{CALLER}.wav"
    assert mm[0]["Options"] == "b"
    # The caller hung up; finalisation waits finalize_delay on the injected clock.
    [rec] = rows(db)
    assert rec.status == "recording"
    assert comp.scheduled() == 1
    clock.advance(s.finalize_delay)
    await comp.idle()
    [rec] = rows(db)
    assert rec.status == "ready"
    assert rec.path == f"2026/11/22/consultation/{CALLER}.wav"
    assert rec.size == 22764
    assert rec.duration == pytest.approx(1.42)
    assert rec.sha256 == hashlib.sha256(PART1.read_bytes()).hexdigest()
    assert rec.kind == "queue" and rec.queue == "consultation"
    assert rec.agent == "Local/1001@sim-agent/n" and rec.agent_name == "Agent 1001"
    assert rec.uniqueid == CALLER
    hangup_t = [t for m, t in events if m.event == "Hangup" and m.get("Uniqueid") == CALLER][0]
    assert catalog.as_utc(rec.ended_at).timestamp() == pytest.approx(hangup_t, abs=1e-3)
    assert catalog.as_utc(rec.purge_after) - catalog.as_utc(rec.started_at) == dt.timedelta(days=180)
    await comp.stop()


async def test_missing_file_retries_then_marks_missing(db, tmp_path):
    s = make_settings(tmp_path, finalize_attempts=3, finalize_delay=1.0)
    gw = FakeGateway(spool=SPOOL)  # never writes a file
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = trace_events()
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    for _ in range(10):
        if not comp.scheduled():
            break
        clock.advance(100)
        await comp.idle()
    [rec] = rows(db)
    assert rec.status == "missing"
    assert comp.scheduled() == 0
    await comp.stop()


async def test_refused_mixmonitor_marks_failed(db, tmp_path):
    s = make_settings(tmp_path)
    gw = FakeGateway(spool=SPOOL, refuse=True)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = trace_events()
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    [rec] = rows(db)
    assert rec.status == "failed" and "No such channel" in rec.error
    assert comp.scheduled() == 0
    await comp.stop()


async def test_policy_none_records_nothing(db, tmp_path):
    s = make_settings(tmp_path, policy=Policy(queues={"consultation": NONE}))
    gw = FakeGateway(spool=SPOOL)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = trace_events()
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    assert [a for a in gw.sent if a["Action"] == "MixMonitor"] == []
    assert rows(db) == []
    await comp.stop()


def add_campaign(db, name="revisit", kind="revisit") -> int:
    from dialer.campaigns import create_campaign

    return db.call(lambda ses: create_campaign(ses, name=name, kind=kind, state="running").id)


def _outbound_events(campaign_var: str | None):
    out = []
    for msg, t in trace_events(traces_dir() / "04-outbound-answered-survey.ami"):
        if campaign_var and msg.event == "OriginateResponse":
            # what the dialer's Originate Variable would produce on the channel
            out.append((Message.of(("Event", "VarSet"), ("Channel", msg["Channel"]),
                                   ("Uniqueid", msg["Uniqueid"]), ("Variable", "CAMPAIGN"),
                                   ("Value", campaign_var)), t))
        out.append((msg, t))
    return out


@pytest.mark.parametrize("how", ["variable", "announced", "unknown"])
async def test_answered_outbound_campaign_call(db, tmp_path, how):
    add_campaign(db)   # the CAMPAIGN variable names it; the policy matches its kind
    s = make_settings(tmp_path, policy=Policy(campaigns={"kind:revisit": Rule(100)}))
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    if how == "announced":
        comp.expect_outbound("dial-0001", "revisit")
    events = _outbound_events("revisit" if how == "variable" else None)
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    clock.advance(s.finalize_delay)
    await comp.idle()
    mm = [a for a in gw.sent if a["Action"] == "MixMonitor"]
    if how == "unknown":  # no campaign known: default campaign policy is none
        assert mm == [] and rows(db) == []
    else:
        assert mm[0]["Channel"] == "Local/answer@sim-patient-0000000e;1"
        [rec] = rows(db)
        assert rec.kind == "outbound" and rec.campaign == "revisit" and rec.status == "ready"
        assert rec.path.endswith("/revisit/1795346708.28.wav")
    await comp.stop()


async def test_failed_originate_is_not_recorded(db, tmp_path):
    s = make_settings(tmp_path, policy=Policy(default_campaign=Rule(100)))
    gw = FakeGateway(spool=SPOOL)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    for aid in ("dial-busy", "dial-noanswer"):
        comp.expect_outbound(aid, "revisit")
    events = trace_events(traces_dir() / "05-outbound-failures.ami")
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    assert [a for a in gw.sent if a["Action"] == "MixMonitor"] == []
    await comp.stop()


async def test_reconnect_settles_rows_whose_call_ended_and_adopts_live_ones(db, tmp_path):
    s = make_settings(tmp_path)
    src = PART1.read_bytes()
    # calls begun a few seconds before the reconnect (the fixture holds 1.4 s of audio: a
    # much longer call would be judged cut short)
    started = dt.datetime.fromtimestamp(1795346795, tz=dt.timezone.utc)
    ids = {}
    for uid in ("100.1", "100.2"):
        rel = f"2026/11/22/consultation/{uid}.wav"
        ids[uid] = db.call(lambda ses: catalog.start(ses, rel=rel, kind="queue", uniqueid=uid,
                                                     channel=f"PJSIP/x-{uid}", started_at=started,
                                                     settings=s, queue="consultation"))
        (s.directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (s.directory / rel).write_bytes(src)
    gw = FakeGateway(spool=SPOOL, live={"100.2"})
    clock = Clock()
    clock.advance(1795346800)
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()  # gateway connected: resync runs at once
    await comp.idle()
    got = {r.uniqueid: r.status for r in rows(db)}
    assert got == {"100.1": "ready", "100.2": "recording"}
    # the live one ends later: its Hangup finalises it
    gw.emit(Message.of(("Event", "Hangup"), ("Channel", "PJSIP/x-100.2"), ("Uniqueid", "100.2")), 1795346810)
    await comp.idle()
    clock.advance(s.finalize_delay)
    await comp.idle()
    assert {r.uniqueid: r.status for r in rows(db)} == {"100.1": "ready", "100.2": "ready"}
    await comp.stop()


async def test_assembly_builds_capture_from_config(db, config, monkeypatch):
    from callcenter.app import build

    a = build(config, clock=Clock(), db=db, ami=FakeGateway(spool=SPOOL))
    comp = a.recordings
    await comp.start()
    assert comp.settings.directory == config.data_dir / "recordings" and comp.settings.directory.is_dir()
    assert comp.gateway is a.ami and a.domain.catalog.settings is comp.settings  # one settings object
    assert a.agi.ports.voice_messages is a.domain.catalog
    await comp.stop()
    monkeypatch.setenv("CALLCENTER_RECORDINGS_ENABLED", "false")
    from callcenter.config import load_config

    a = build(load_config(None), clock=Clock(), db=db, ami=FakeGateway(spool=SPOOL))
    assert a.recordings is None and "recordings" not in [p.name for p in a.parts]
    assert a.web.app.recordings is not None  # stored recordings stay reachable on the web


def test_voice_message_not_on_disk_is_missing_at_once(db, tmp_path):
    """RECORD FILE has ended when the IVR catalogues: a file that is not there is `missing`
    then and there (it used to stay `recording` for ever), and `verify` reports it."""
    from recordings.maintenance import verify

    s = make_settings(tmp_path)
    rel = "2026/11/22/voicemail/1795346800.9.wav"
    rid = db.call(lambda ses: catalog.add_voice_message(
        ses, path=f"{SPOOL}/{rel[:-4]}", uniqueid="1795346800.9", caller_number="13400134007",
        started_at=1795346800.0, duration=4.0, settings=s))
    rec = db.call(lambda ses: ses.get(Recording, rid))
    assert (rec.status, rec.path) == ("missing", rel) and rel in rec.error
    why = db.call(lambda ses: catalog.unusable(ses, rid, 1.0))
    assert why.startswith(f"not recorded: recording {rid} is missing (RECORD FILE ended but {rel}")
    report = verify(db, s, now=dt.datetime.fromtimestamp(1795346810, tz=dt.timezone.utc))
    assert [(p.kind, p.recording_id) for p in report.problems] == [("missing", rid)]


@pytest.mark.parametrize("audio_bytes, min_seconds, expected", [
    (0, 1.0, "no message: 0.0 s of audio (under 1 s: nothing said, or hung up at the beep)"),
    (15984, 1.0, "no message: 0.9 s of audio (under 1 s: nothing said, or hung up at the beep)"),
    (48000, 1.0, None),
    (48000, 5.0, "no message: 3.0 s of audio (under 5 s: nothing said, or hung up at the beep)"),
    (0, 0.0, None),
])
def test_a_ready_voice_message_under_min_seconds_of_audio_is_not_usable(db, tmp_path, audio_bytes, min_seconds,
                                                                          expected):
    """A header-only WAV (hung up at the beep) is a good file, ``ready`` and kept, but holds
    no message: judged by the file's duration (was: ``usable`` = ready, so it made a ticket)."""
    from recordings.wav import write_wav

    s = make_settings(tmp_path)
    rel = "voicemail/2026-11-25/voicemsg-1795346800.9.wav"
    write_wav(s.directory / rel, bytes(audio_bytes))
    rid = db.call(lambda ses: catalog.add_voice_message(
        ses, path=f"{SPOOL}/{rel}", uniqueid="1795346800.9", caller_number="13400134007",
        started_at=1795346800.0, duration=6.0, settings=s))  # what the IVR measured, beep to hang-up
    assert db.call(lambda ses: ses.get(Recording, rid).status) == "ready"
    assert db.call(lambda ses: catalog.unusable(ses, rid, min_seconds)) == expected


def test_voice_message_in_a_format_without_a_readable_duration_is_judged_by_its_status(db, tmp_path):
    """A non-WAV file's duration is not read from it (the row carries the call's length, which
    says nothing about the audio): only the status counts, as before."""
    s = make_settings(tmp_path, format="gsm")
    rel = "voicemail/2026-11-25/voicemsg-1795346800.9.gsm"
    (s.directory / rel).parent.mkdir(parents=True)
    (s.directory / rel).write_bytes(b"\xd8" * 33)  # one GSM frame
    rid = db.call(lambda ses: catalog.add_voice_message(
        ses, path=f"{SPOOL}/{rel}", uniqueid="1795346800.9", started_at=1795346800.0, duration=0.2, settings=s))
    assert db.call(lambda ses: (ses.get(Recording, rid).status, ses.get(Recording, rid).duration)) == ("ready", 0.2)
    assert db.call(lambda ses: catalog.unusable(ses, rid, 1.0)) is None


def _dialer_events(uid="1795400000.5", var=("CAMPAIGN_ID", "7"), then_queue=True):
    ch = "Local/13900000001@sim-patient-00000001;1"
    evs = [
        Message.of(("Event", "VarSet"), ("Channel", ch), ("Uniqueid", uid), ("Variable", var[0]), ("Value", var[1])),
        Message.of(("Event", "OriginateResponse"), ("ActionID", "cc-1"), ("Response", "Success"),
                   ("Channel", ch), ("Reason", "4"), ("Uniqueid", uid), ("CallerIDNum", "02100000000")),
    ]
    if then_queue:  # progressive mode: the answered patient is queued to an agent
        evs.append(Message.of(("Event", "AgentConnect"), ("Channel", ch), ("Uniqueid", uid), ("Linkedid", uid),
                              ("Queue", "consultation"), ("Interface", "Local/1001@sim-agent/n"),
                              ("MemberName", "Agent 1001")))
    evs.append(Message.of(("Event", "Hangup"), ("Channel", ch), ("Uniqueid", uid), ("Cause", "16")))
    return [(m, 1795400000.0 + i) for i, m in enumerate(evs)]


@pytest.mark.parametrize("campaign_rule, recorded", [("none", False), ("all", True)])
async def test_campaign_policy_governs_dialer_calls_queued_to_agents(db, tmp_path, campaign_rule, recorded):
    from recordings.policy import parse_rule

    add_campaign(db)
    s = make_settings(tmp_path, policy=Policy(campaigns={"name:revisit": parse_rule(campaign_rule)},
                                              default_queue=Rule(100)))
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = _dialer_events(var=("CAMPAIGN", "revisit"))
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    clock.advance(s.finalize_delay)
    await comp.idle()
    got = [(r.kind, r.campaign, r.queue, r.agent, r.agent_name, r.status) for r in rows(db)]
    # recorded under the campaign policy, with the queue and agent the patient was put through to
    assert got == ([("outbound", "revisit", "consultation", "Local/1001@sim-agent/n", "Agent 1001", "ready")]
                   if recorded else [])
    await comp.stop()


async def test_campaign_id_without_a_known_campaign_uses_a_fallback_name(db, tmp_path):
    s = make_settings(tmp_path, policy=Policy(default_campaign=Rule(100)))
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = _dialer_events(var=("CAMPAIGN_ID", "99999"), then_queue=False)
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    clock.advance(s.finalize_delay)
    await comp.idle()
    [rec] = rows(db)
    assert (rec.kind, rec.campaign, rec.status) == ("outbound", "campaign-99999", "ready")
    assert "/campaign-99999/" in rec.path
    await comp.stop()


async def test_campaign_id_is_looked_up_in_the_dialer(db, tmp_path):
    from dialer.models import Campaign

    cid = db.call(lambda ses: (lambda c: (ses.add(c), ses.flush(), c.id)[2])(
        Campaign(name="complaint-callbacks", kind="complaint_followup", mode="progressive", state="running",
                 queue="complaint", settings={})))
    s = make_settings(tmp_path, policy=Policy(campaigns={"name:complaint-callbacks": Rule(100)}))
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = _dialer_events(var=("CAMPAIGN_ID", str(cid)))
    clock.advance(events[0][1])
    await run_trace(comp, gw, clock, events)
    clock.advance(s.finalize_delay)
    await comp.idle()
    [rec] = rows(db)
    assert (rec.kind, rec.campaign, rec.status) == ("complaint", "complaint-callbacks", "ready")
    assert "/complaint-callbacks/" in rec.path
    assert catalog.as_utc(rec.purge_after) - catalog.as_utc(rec.started_at) == dt.timedelta(days=1095)
    await comp.stop()


async def _started_with_slow_finalise(db, tmp_path):
    """A started capture (finalisation 30 s after a hang-up), its gateway, clock and trace 06."""
    s = make_settings(tmp_path, finalize_delay=30.0)
    gw = FakeGateway(spool=SPOOL, directory=s.directory, wav_source=PART1)
    clock = Clock()
    comp = capture.RecordingsComponent(s, db=db, clock=clock, gateway=gw)
    await comp.start()
    events = trace_events()
    clock.advance(events[0][1])
    return comp, gw, clock, events


async def test_stop_settles_pending_finalisations_at_once(db, tmp_path):
    comp, gw, clock, events = await _started_with_slow_finalise(db, tmp_path)
    await run_trace(comp, gw, clock, events)
    assert comp.scheduled() == 1
    await comp.stop()
    assert clock.getDelayedCalls() == [] or not any(c.active() for c in clock.getDelayedCalls())
    [rec] = rows(db)
    hangup_t = [t for m, t in events if m.event == "Hangup" and m.get("Uniqueid") == CALLER][0]
    assert rec.status == "ready" and catalog.as_utc(rec.ended_at).timestamp() == pytest.approx(hangup_t, abs=1e-3)


def test_recover_starts_answered_queue_calls_nobody_records():
    """CoreShowChannels after a reconnect (fields as in trace 08): the bridged caller in Queue
    is recorded per its queue's policy; a waiting caller, the caller's ;2 half, a call we
    already record and a queue whose policy is none are not; a campaign call waits for the
    campaign policy (its id)."""
    def chan(uid, name, app, data, bridge, state="6"):
        return Message.of(("Event", "CoreShowChannel"), ("Channel", name), ("ChannelState", state),
                          ("CallerIDNum", "13100131002"), ("Uniqueid", uid), ("Application", app),
                          ("ApplicationData", data), ("BridgeId", bridge))
    s = Settings(directory=Path("/x"), spool_dir=Path(SPOOL), policy=Policy(queues={"quiet": NONE}))
    tr = capture.CaptureTracker(s)
    tr.adopt(capture.Start("5.0", "Local/s@c-5;1", "queue", "consultation", 1.0))
    channels = [chan("1.0", "Local/s@c-1;1", "Queue", "consultation", "b-1"),
                chan("1.1", "Local/s@c-1;2", "Wait", "300", "b-1"),
                chan("2.0", "Local/s@c-2;1", "Queue", "consultation", ""),  # still waiting
                chan("3.0", "Local/s@c-3;1", "Queue", "quiet,,,,", "b-3"),
                chan("4.0", "Local/02100@p-4;1", "Queue", "consultation", "b-4"),
                chan("5.0", "Local/s@c-5;1", "Queue", "consultation", "b-5")]
    got = tr.recover(channels, 100.0, {"4.0": "7"})
    assert [(c.uniqueid, c.kind, c.queue, c.campaign_id, c.t) for c in got] == [
        ("1.0", "queue", "consultation", None, 100.0), ("4.0", "outbound", None, "7", 100.0)]
    assert tr.recover(channels, 101.0, {}) == []  # now tracked: not started twice


async def test_a_hangup_after_stop_starts_no_work_on_the_closed_journal(db, tmp_path, caplog):
    """serve stops the components before the AMI link: a Hangup read in between used to start
    a journal write on the closed file thread ("cannot schedule new futures after shutdown")."""
    comp, gw, clock, events = await _started_with_slow_finalise(db, tmp_path)
    cut = next(i for i, (m, _) in enumerate(events) if m.event == "Hangup" and m.get("Uniqueid") == CALLER)
    await run_trace(comp, gw, clock, events[:cut])
    [rec] = rows(db)
    assert rec.status == "recording"
    await comp.stop()
    with caplog.at_level("ERROR", logger="recordings"):
        for msg, t in events[cut:]:
            gw.emit(msg, t)
        await asyncio.sleep(0.05)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert comp.scheduled() == 0 and rows(db)[0].status == "recording"  # the next start settles it
