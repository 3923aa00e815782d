"""The simulated Asterisk answers recorded FastAGI sessions byte for byte.

A replay server sends the server-side commands of each real ``.agi`` trace over
TCP to ``run_agi``; the environment block and every reply byte must equal what
real Asterisk 22 sent, including the unsolicited ``HANGUP`` and 511/510/520.
"""
from __future__ import annotations

import asyncio

import pytest
from twisted.internet import reactor

from callcenter.ami.tracefile import read_agi, traces_dir
from callcenter.clock import ScaledClock
from callcenter.simulator.agi_client import ScriptedCaller, run_agi
from ivr_flows.agi import parse_env

CASES = {
    "04-outbound-answered-survey.agi": dict(keys=[(3.2, "4")]),
    "07-fastagi-session.agi": dict(keys=[(1.76, "2")]),
    "07b-fastagi-caller-hangup.agi": dict(hangup_at=1.5),
    "07c-fastagi-voice-message.agi": dict(keys=[(1.76, "4"), (5.9, "#")]),
    "07d-fastagi-no-input.agi": dict(),
}


def segments(entries):
    """(env bytes, [(command bytes, expected reply bytes)])."""
    env = entries[0].raw
    out = []
    for e in entries[1:]:
        if e.direction == ">>>":
            out.append([e.raw, b""])
        elif e.direction == "<<<":
            out[-1][1] += e.raw
    return env, out


@pytest.mark.parametrize("name", sorted(CASES))
async def test_replies_match_trace(name, tmp_path):
    entries = [e for e in read_agi(traces_dir() / name) if e.direction in ("<<<", ">>>")]
    env_raw, script = segments(entries)
    got = {"env": None, "replies": []}
    done = asyncio.get_running_loop().create_future()

    async def replay(reader, writer):
        try:
            got["env"] = await reader.readuntil(b"\n\n")
            for cmd, expected in script:
                writer.write(cmd)
                got["replies"].append(await asyncio.wait_for(reader.readexactly(len(expected)), 5))
            writer.close()
            done.set_result(True)
        except Exception as exc:  # surface in the test, not in the server task
            done.set_exception(exc)

    server = await asyncio.start_server(replay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = parse_env(env_raw).values
    clock = ScaledClock(reactor, 50)
    (tmp_path / "recordings").mkdir()  # the trace's RECORD FILE went to an existing directory
    # the traces' callers are Local channels: no audio (07c: endpos=0, a 44-byte WAV)
    caller = ScriptedCaller(clock, uniqueid=env["agi_uniqueid"], name=env["agi_channel"], spool_dir=tmp_path,
                            audio=False, **CASES[name])
    url = env["agi_request"].replace("127.0.0.1:4573", f"127.0.0.1:{port}")
    env["agi_request"] = url
    status = await run_agi(url, env, caller)
    await done
    caller.close()
    server.close()
    await server.wait_closed()
    assert got["env"] == env_raw.replace(b"127.0.0.1:4573", f"127.0.0.1:{port}".encode())
    assert b"".join(got["replies"]) == b"".join(exp for _, exp in script)
    assert got["replies"] == [exp for _, exp in script] or name.startswith("07b")
    assert status == ("HANGUP" if name[:3] in ("04-", "07b", "07c") else "SUCCESS")


async def test_record_file_into_a_missing_directory_fails_like_asterisk(tmp_path):
    """res_agi handle_recordfile: ast_writefile creates no directory -> ``200 result=-1
    (writefile)`` at once, the session goes on, and AGISTATUS ends FAILURE; into an existing
    directory the file is there (a 44-byte WAV header from a Local channel)."""
    replies = []

    async def script(reader, writer):
        await reader.readuntil(b"\n\n")
        for line in (f'RECORD FILE "{tmp_path}/nodir/msg" wav "#" 120000 0 s=5\n', "NOOP\n",
                     f'RECORD FILE "{tmp_path}/msg" wav "#" 1000 0 s=5\n'):
            writer.write(line.encode())
            replies.append((await reader.readline()).decode())
        writer.close()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    url = f"agi://127.0.0.1:{server.sockets[0].getsockname()[1]}/hotline"
    caller = ScriptedCaller(ScaledClock(reactor, 50), audio=False)
    status = await run_agi(url, {}, caller)
    caller.close()
    server.close()
    await server.wait_closed()
    assert replies == ["200 result=-1 (writefile)\n", "200 result=0\n", "200 result=0 (timeout) endpos=0\n"]
    assert status == "FAILURE"
    assert not (tmp_path / "nodir").exists() and (tmp_path / "msg.wav").stat().st_size == 44


async def test_record_file_from_a_phone_holds_the_seconds_recorded(tmp_path):
    """A caller on a phone sends audio: RECORD FILE writes the seconds recorded (8 kHz 16-bit
    mono, header sizes patched) and answers endpos = the samples, like Asterisk; a message
    ended by a key loses the key's 200 ms (res_agi rewinds); a hang-up at the beep leaves
    nothing but the header (was: always a 44-byte file and endpos=0, as from a Local channel)."""
    import re

    from recordings.wav import inspect_file

    replies = []
    names = ("timeout", "key", "hangup")

    async def script(reader, writer):
        await reader.readuntil(b"\n\n")
        for name in names:
            writer.write(f'RECORD FILE "{tmp_path}/{name}" wav "#" 1000 0 s=5\n'.encode())
            replies.append((await reader.readline()).decode())
        writer.close()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    url = f"agi://127.0.0.1:{server.sockets[0].getsockname()[1]}/hotline"
    # no key in the first message (1 s: the timeout); "#" 0.5 s into the second; gone at the third's beep
    caller = ScriptedCaller(ScaledClock(reactor, 5), keys=[(1.5, "#"), (0.0, "hangup")])
    status = await run_agi(url, {}, caller)
    caller.close()
    server.close()
    await server.wait_closed()
    got = [re.fullmatch(r"200 result=(-?\d+) \((\w+)\) endpos=(\d+)\n", r).groups() for r in replies]
    assert [(res, why) for res, why, _ in got] == [("0", "timeout"), ("35", "dtmf"), ("-1", "hangup")]
    endpos = [int(e) for _, _, e in got]
    # 0.5 s less the key's 0.2 s (give or take the real-time timers of a loaded machine)
    assert endpos[0] == 8000 and 1600 <= endpos[1] <= 3200 and endpos[2] <= 80 and status == "HANGUP"
    files = {n: inspect_file(tmp_path / f"{n}.wav") for n in names}
    for n, e in zip(names, endpos):  # the file holds what endpos claims
        assert (files[n].size, files[n].duration) == (44 + 2 * e, round(e / 8000, 3)), n
