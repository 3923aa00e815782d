"""The sans-IO engine driven by hand: no sockets, no clock but an injected ``now``."""
from __future__ import annotations

from ivr_flows.agi import Env, parse_reply_line
from ivr_flows.engine import Command, Done, Effect, Engine, luhn_ok, mod11_ok
from ivr_flows.flow import FLOWS_DIR, load_flow

from tests.support.ivr import CLOSED, HOLIDAY, OPEN

ENV = Env({"agi_callerid": "13800138002", "agi_calleridname": "王小明", "agi_uniqueid": "1.2"})


def drive(at, answers):
    """Run the hotline; ``answers`` maps command prefixes to reply lines (default 200 result=0)."""
    engine = Engine(load_flow(FLOWS_DIR / "hotline.yaml"), ENV, now=lambda: at)
    sent, step = [], engine.start()
    while not isinstance(step, Done):
        if isinstance(step, Effect):
            step = engine.send(7 if step.name == "session_id" else None)
            continue
        sent.append(step.line)
        line = next((r for p, r in answers if step.line.startswith(p)), "200 result=0")
        step = engine.send(parse_reply_line(line))
    return engine, sent, step.result


def test_open_hours_consultation():
    engine, sent, result = drive(OPEN, [("GET DATA", "200 result=1")])
    assert result == "queued:consultation"
    assert sent[-3:] == ['SET VARIABLE IVR_LANGUAGE "zh"', 'SET VARIABLE QUEUE_PRIO "0"',
                         'SET VARIABLE QUEUE "consultation"']
    assert 'SET VARIABLE IVR_SESSION "7"' in sent


def test_closed_and_holiday_go_to_voice_message():
    for at in (CLOSED, HOLIDAY):
        engine, sent, result = drive(at, [("GET DATA", "200 result=1"),
                                          ("RECORD FILE", "200 result=35 (dtmf) endpos=0")])
        assert result == "voicemail", at
        assert "after_hours" in engine.path
        assert any(l.startswith('RECORD FILE "') and l.endswith('" wav "#" 120000 0 s=5') for l in sent)


def test_missing_prompt_warns_and_continues():
    engine, sent, result = drive(OPEN, [("STREAM FILE", "200 result=-1 endpos=0"),
                                        ("GET DATA", "200 result=1")])
    assert result == "queued:consultation"
    assert any("missing on the PBX" in w for w in engine.warnings)


def test_511_ends_the_session_as_hangup():
    engine, sent, result = drive(OPEN, [("GET DATA", "511 Command Not Permitted on a dead channel")])
    assert result == "hangup" and engine.path == ["language"]


def test_checksums():
    assert luhn_ok("12345674") and not luhn_ok("12345678")
    assert mod11_ok("123456789") and not mod11_ok("123456780")
    assert not mod11_ok("x1")


def test_digits_keep_every_key_and_mark_the_refused_ones():
    """Issue 14.10: a refused key (menu) or entry (collect) was left out of ``digits``."""
    keys = iter(["7", "1", "2", "2", "12345678", "12345674"])  # 7: no such language; bad Luhn, then good
    engine = Engine(load_flow(FLOWS_DIR / "hotline.yaml"), ENV, now=lambda: OPEN)
    step = engine.start()
    while not isinstance(step, Done):
        if isinstance(step, Effect):
            step = engine.send(7 if step.name == "session_id" else None)
            continue
        line = f"200 result={next(keys)}" if step.line.startswith("GET DATA") else "200 result=0"
        step = engine.send(parse_reply_line(line))
    assert engine.digits == ["7!", "1", "2", "2", "12345678!", "12345674"]
    assert engine.vars["patient_id"] == "12345674" and step.result == "queued:consultation"
    assert engine.caller_number == "+8613800138002"  # the stored form (callcenter.phones)


def _reminder(replies, found=True):
    """The reminder flow on an outbound call; ``replies``: (command prefix, reply) tried in order,
    each used once (default 200 result=0)."""
    engine = Engine(load_flow(FLOWS_DIR / "appointment_reminder.yaml"), ENV, now=lambda: OPEN)
    replies = list(replies)
    sent, effects, step = [], [], engine.start()
    appt = {"appointment_id": 5, "at": OPEN + 86400 - 1800, "department": "dental", "language": "en"}
    while not isinstance(step, Done):
        if isinstance(step, Effect):
            effects.append((step.name, step.args))
            step = engine.send({"appointment": appt if found else None, "appointment_answer": True}.get(step.name))
            continue
        sent.append(step.line)
        hit = next((i for i, (p, _) in enumerate(replies) if step.line.startswith(p)), None)
        line = replies.pop(hit)[1] if hit is not None else "200 result=0"
        if step.line.startswith("GET VARIABLE ATTEMPT_ID"):
            line = "200 result=1 (12)"
        step = engine.send(parse_reply_line(line))
    return engine, sent, effects, step.result


def test_reminder_says_the_appointment_from_segments_in_the_patients_language():
    engine, sent, effects, result = _reminder([("GET DATA", "200 result=1")])
    streams = [line.split(" ")[2] for line in sent if line.startswith("STREAM FILE")]
    # 2026-11-26 09:30 (Thursday), in English (the patient's), then the goodbye
    assert streams == ["callcenter/en/appointment_reminder/greeting"] + [
        f"callcenter/en/segments/{n}" for n in ("weekday_3", "month_11", "day_26", "word_at", "hour_9",
                                               "minute_30", "period_morning", "word_in", "dept_dental")] + [
        "callcenter/en/appointment_reminder/confirmed"]
    assert ("appointment_answer", {"appointment_id": 5, "answer": "confirm", "attempt_id": "12"}) in effects
    assert result == "appointment_confirm" and engine.language == "en"


def test_a_key_pressed_during_the_date_is_the_menus_choice():
    """Asterisk drops keys pressed during a STREAM FILE without escape digits (seen on a real
    Asterisk 22: the patient's 2 during the department name was lost): the segments are
    played with every key as escape digit and the key goes to the menu."""
    engine, sent, effects, result = _reminder([("STREAM FILE callcenter/en/segments/hour_9",
                                                "200 result=51 endpos=800")])   # "3"
    assert all(line.endswith('"0123456789"') for line in sent if "/segments/" in line)
    assert not any(line.startswith("GET DATA") for line in sent)          # no menu prompt needed
    assert "callcenter/en/segments/minute_30" not in " ".join(sent)     # cut short at the key
    assert result == "appointment_cancel" and engine.digits == ["3"]


def test_a_reminder_for_an_appointment_no_longer_booked_says_so():
    engine, sent, effects, result = _reminder([], found=False)
    assert result == "appointment_changed" and not any("segments" in line for line in sent)
    assert [e[0] for e in effects] == ["appointment"]
