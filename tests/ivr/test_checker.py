"""``callcenter ivr check``: every problem named with file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.cli import main
from ivr_flows.flow import FLOWS_DIR, check_file, load_flow, parse_text

GOOD = """\
flow: t
start: m
languages: [zh, en]
prompts:
  p: {zh: "你好", en: "hello"}
nodes:
  m:
    type: menu
    prompt: p
    options:
      "1": q
    default: q
  q:
    type: queue
    queue: consultation
"""


def problems(text):
    return [str(p) for p in parse_text(text, "f.yaml")[0]]


def test_shipped_flows_are_clean():
    for path in sorted(FLOWS_DIR.glob("*.yaml")):
        assert check_file(path) == [], path


def test_good_flow_passes():
    assert problems(GOOD) == []


@pytest.mark.parametrize("old,new,expected", [
    ("    type: queue\n", "    type: queu\n", "f.yaml:14: node 'q': unknown node type 'queu'"),
    ('      "1": q\n', '      "1": nowhere\n', "f.yaml:11: node 'm': option 1 goes to missing node 'nowhere'"),
    ('      "1": q\n    default: q\n', '      "1": m\n    default: m\n', "f.yaml:7: menu 'm' has no way out"),
    ('  p: {zh: "你好", en: "hello"}\n', '  p: {zh: "你好"}\n', "f.yaml:5: prompt 'p' has no text for language 'en'"),
    ("    prompt: p\n", "    prompt: nope\n", "f.yaml:9: node 'm': prompt 'nope' is not declared"),
    ("    options:\n      \"1\": q\n", "    options: {}\n", "f.yaml:10: menu 'm' has no options: no way out"),
    ("    queue: consultation\n", "    queue: consultation\n  orphan:\n    type: hangup\n",
     "f.yaml:16: node 'orphan' is unreachable from start 'm'"),
    ("    prompt: p\n", "    prompt: p\n    retries: many\n", "f.yaml:10: node 'm': retries must be a number"),
    ("start: m\n", "start: m\nstart: q\n", "f.yaml:3: not valid YAML: duplicate key 'start'"),
])
def test_each_problem_has_file_and_line(old, new, expected):
    assert old in GOOD
    found = problems(GOOD.replace(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_loop_without_exit_is_reported():
    text = GOOD.replace("    default: q\n", "    default: m\n").replace('      "1": q\n', '      "1": m2\n') + \
        "  m2:\n    type: play\n    prompt: p\n    next: m\n"
    found = problems(text)
    assert any("has no way out" in p for p in found), found


def test_cli_check_exit_codes(tmp_path, capsys, config_env):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("    type: queue\n", "    type: teleport\n"))
    assert main(["ivr", "check", str(FLOWS_DIR / "hotline.yaml")]) == 0
    assert main(["ivr", "check", str(bad), str(FLOWS_DIR / "revisit_survey.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:14: node 'q': unknown node type 'teleport'" in out
    assert "revisit_survey.yaml: ok" in out


def test_prompts_build_renders_8khz(tmp_path, capsys, config_env):
    import shutil
    import wave

    flow = tmp_path / "t.yaml"
    flow.write_text(GOOD)
    assert main(["prompts", "build", str(flow), "--out", str(tmp_path / "out")]) == 0
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        assert "not installed" in capsys.readouterr().err
        return
    with wave.open(str(tmp_path / "out" / "zh" / "t" / "p.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 1000
    assert main(["prompts", "build", str(flow), "--out", str(tmp_path / "out")]) == 0
    assert "0 rendered, 2 unchanged" in capsys.readouterr().out


def test_shipped_flows_pass_the_check_and_need_their_spoken_segments(tmp_path, capsys, config_env):
    from ivr_flows.prompts import missing_files

    shipped = sorted(FLOWS_DIR.glob("*.yaml"))
    assert {p.stem for p in shipped} >= {"hotline", "revisit_survey", "appointment_reminder", "voice_notification"}
    assert main(["ivr", "check", *map(str, shipped)]) == 0
    reminder, notification = (load_flow(FLOWS_DIR / f"{n}.yaml") for n in ("appointment_reminder",
                                                                           "voice_notification"))
    missing = missing_files([reminder, notification], tmp_path, "callcenter")
    for name in ("callcenter/zh/segments/month_12", "callcenter/en/segments/dept_dental",
                 "callcenter/en/segments/minute_5", "callcenter/zh/notifications/flu_vaccine",
                 "callcenter/en/appointment_reminder/greeting"):
        assert name in missing
    # a flow that says no appointment needs no segments
    assert not any("/segments/" in n for n in missing_files([load_flow(FLOWS_DIR / "revisit_survey.yaml")],
                                                              tmp_path, "callcenter"))


def test_appointment_nodes_are_checked():
    bad = GOOD.replace("    type: queue\n    queue: consultation\n",
                       "    type: lookup_appointment\n    by: telepathy\n    found: q\n    missing: q\n")
    found = problems(bad)
    assert any("by must be one of call, caller, patient_number" in p for p in found), found


VOICEMAIL = """\
flow: t
start: vm
languages: [zh]
prompts:
  p: {zh: "请留言"}
nodes:
  vm:
    type: voicemail
    prompt: p
    max_seconds: 60
    min_seconds: 2.5
    next: bye
    failed: bye
  bye:
    type: hangup
"""


@pytest.mark.parametrize("value,expected", [
    ("-1", "f.yaml:11: node 'vm': min_seconds must be a number >= 0"),
    ("a second", "f.yaml:11: node 'vm': min_seconds must be a number >= 0"),
    ("yes", "f.yaml:11: node 'vm': min_seconds must be a number >= 0"),
    ("60", "f.yaml:11: voicemail 'vm': min_seconds (60) must be below max_seconds (60)"),
])
def test_voicemail_min_seconds_is_checked(value, expected):
    """min_seconds: the least audio a voice message must hold to be acted on; a bad value is
    refused naming the file, the line and the field (was: 'unknown field' for any value)."""
    found = problems(VOICEMAIL.replace("min_seconds: 2.5", f"min_seconds: {value}"))
    assert any(p.startswith(expected) for p in found), found


def test_voicemail_min_seconds_reaches_the_voicemail_effect():
    """The engine hands the node's min_seconds (default 1 s) to the adapter with the message."""
    from ivr_flows.agi import Env, parse_reply_line
    from ivr_flows.engine import Command, Effect, Engine

    def effect_of(text):
        problems_, flow = parse_text(text, "f.yaml")
        assert problems_ == [] and flow is not None
        eng = Engine(flow, Env({"agi_uniqueid": "1795346775.48", "agi_callerid": "13800138002"}),
                     now=lambda: 1795346775.0, recordings_dir="/var/spool/asterisk/recordings")
        step = eng.start()
        for _ in range(20):
            if isinstance(step, Effect) and step.name == "voicemail":
                return step.args
            if isinstance(step, Effect):
                step = eng.send(None)
            elif isinstance(step, Command) and step.line.startswith("RECORD FILE"):
                step = eng.send(parse_reply_line("200 result=-1 (hangup) endpos=0"))
            else:
                step = eng.send(parse_reply_line("200 result=0"))
        raise AssertionError("no voicemail effect")

    assert effect_of(VOICEMAIL)["min_seconds"] == 2.5
    assert effect_of(VOICEMAIL.replace("    min_seconds: 2.5\n", ""))["min_seconds"] == 1.0
