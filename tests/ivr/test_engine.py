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
