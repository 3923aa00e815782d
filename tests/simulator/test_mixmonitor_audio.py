"""MixMonitor on a bridged call writes what Asterisk writes with phones on the line: the
mixed audio of the whole bridge (silence and voices), block by block, sizes patched at the end."""
from __future__ import annotations

import struct
from array import array

from twisted.internet import task

from callcenter.simulator import SimConfig, SimulatedPBX
from recordings import quality
from recordings.wav import inspect_file


def _advance(clock, seconds: float) -> None:
    end = clock.seconds() + seconds
    while clock.seconds() < end:
        due = [c.getTime() for c in clock.getDelayedCalls()]
        clock.advance(max(0.0, min([end, *due]) - clock.seconds()))


def _rms(samples) -> float:
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def _call(tmp_path, media: str, talk: float, say: str = "hello-world"):
    clock = task.Clock()
    clock.advance(1795346592)
    pbx = SimulatedPBX(clock, seed=1, spool_dir=tmp_path, config=SimConfig(media=media))
    pbx.globals["AGENT_SAY"] = say
    pbx.set_agent("1001", answer_delay=2, talk_time=talk)
    pbx.set_agent("1002", answer_delay=2, talk_time=talk)
    seen: dict = {}

    def on_event(h):
        ev = dict(h)
        if ev.get("Event") == "AgentConnect" and "connect" not in seen:
            seen["connect"] = clock.seconds()
            pbx.mixmonitor_start(pbx.find_channel(ev["Channel"]), "/var/spool/asterisk/recordings/q/1.wav")
        if ev.get("Event") == "AgentComplete":
            seen["talk"] = int(ev["TalkTime"])

    pbx.listeners.append(on_event)
    pbx.inbound_call("13600136005", "Chen Jie", context="hotline-plain", digits="1", digit_delay=1,
                     patience=talk + 60, stay_when_connected=True)
    return clock, pbx, seen, tmp_path / "recordings" / "q" / "1.wav"


def test_bridged_call_file_covers_the_talk_time_with_voices(tmp_path):
    clock, pbx, seen, path = _call(tmp_path, "phones", talk=150)
    _advance(clock, 40)
    assert "connect" in seen and "talk" not in seen
    during = path.read_bytes()
    # while the call is up: header sizes still 0, audio reaches the disk in 32 KiB blocks
    assert struct.unpack("<I", during[4:8])[0] == 0 and struct.unpack("<I", during[40:44])[0] == 0
    assert len(during) > 44 and (len(during) - 44) % 32768 == 0
    _advance(clock, 200)
    assert seen["talk"] >= 150
    data = path.read_bytes()
    assert struct.unpack("<I", data[40:44])[0] == len(data) - 44  # patched on hang-up
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    info = inspect_file(path)
    assert abs(info.duration - seen["talk"]) < 1.5, (info.duration, seen["talk"])
    assert quality.judge(info, "wav", seen["talk"]) == ("ready", "")
    pcm = array("h", data[44:])
    seconds = [_rms(pcm[i:i + 8000]) for i in range(0, len(pcm) - 7999, 8000)]
    assert seconds[0] > 300  # the agent's greeting (AGENT_SAY)
    speech = sum(r > 300 for r in seconds)
    assert 0.4 * len(seconds) < speech < len(seconds)  # people talk, with pauses (silence frames)
    assert any(r == 0 for r in seconds) or min(seconds) < 50
    # deterministic: the same seed writes the same audio
    clock2, pbx2, seen2, path2 = _call(tmp_path / "again", "phones", talk=150)
    _advance(clock2, 240)
    assert path2.read_bytes() == data


def test_local_channels_record_only_what_is_played(tmp_path):
    """The trace harness (real 22.10.1, Local channels): 1.42 s of hello-world in a 14 s call."""
    clock, pbx, seen, path = _call(tmp_path, "local", talk=12)
    _advance(clock, 60)
    info = inspect_file(path)
    assert seen["talk"] >= 12 and info.duration == 1.42


def test_full_disk_leaves_an_empty_file(tmp_path):
    clock, pbx, seen, path = _call(tmp_path, "phones", talk=150)
    pbx.disk_full = True
    _advance(clock, 240)
    assert path.stat().st_size == 0
    assert quality.judge(inspect_file(path), "wav", seen["talk"])[0] == "failed"


def test_disk_filling_during_the_call_cuts_the_audio_short(tmp_path):
    clock, pbx, seen, path = _call(tmp_path, "phones", talk=150)
    _advance(clock, 12)
    pbx.disk_full = True
    _advance(clock, 230)
    info = inspect_file(path)
    assert 0 < info.duration < 10 and (path.stat().st_size - 44) % 32768 == 0
    assert quality.judge(info, "wav", seen["talk"])[0] == "failed"


def test_option_b_keeps_only_the_bridged_time(tmp_path):
    """Started while the caller waits in the queue: without ``b`` the wait (silence, music)
    is in the file too, with ``b`` (what the recordings component sends) only the bridge."""
    clock = task.Clock()
    clock.advance(1795346592)
    pbx = SimulatedPBX(clock, seed=2, spool_dir=tmp_path)
    pbx.set_agent("1001", answer_delay=12, talk_time=30)
    pbx.set_agent("1002", answer_delay=12, talk_time=30)
    seen: dict = {}

    def on_event(h):
        ev = dict(h)
        if ev.get("Event") == "QueueCallerJoin":
            ch = pbx.find_channel(ev["Channel"])
            pbx.mixmonitor_start(ch, "all.wav")
            pbx.mixmonitor_start(ch, "bridged.wav", "b")
        if ev.get("Event") == "AgentComplete":
            seen["hold"], seen["talk"] = int(ev["HoldTime"]), int(ev["TalkTime"])

    pbx.listeners.append(on_event)
    pbx.inbound_call("13600136005", "Chen Jie", context="hotline-plain", digits="1", digit_delay=1,
                     patience=200, stay_when_connected=True)
    _advance(clock, 120)
    whole, bridged = inspect_file(tmp_path / "all.wav").duration, inspect_file(tmp_path / "bridged.wav").duration
    assert seen["hold"] >= 12 and abs(bridged - seen["talk"]) < 1.5, (bridged, seen)
    assert abs(whole - (seen["hold"] + seen["talk"])) < 2, (whole, seen)


async def test_shutdown_finishes_the_files_of_calls_still_up(tmp_path):
    clock, pbx, seen, path = _call(tmp_path, "phones", talk=150)
    _advance(clock, 40)
    await pbx.stop()  # like `core stop now`: the channels go, MixMonitor writes the sizes
    data = path.read_bytes()
    assert struct.unpack("<I", data[40:44])[0] == len(data) - 44 > 30 * 16000
