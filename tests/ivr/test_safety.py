"""Caller-supplied data never becomes an AGI command; bad environments are survived."""
from __future__ import annotations

import asyncio
import re

from hypothesis import given, strategies as st

from ivr_flows.agi import clean, parse_args, parse_env, quote

from tests.support.ivr import agi_server, call

EVIL_FLOW = """
flow: evil
start: note
languages: [en]
prompts:
  ask: {en: "Enter digits"}
nodes:
  note:
    type: set
    channel: {CALLER_NOTE: "{caller_name} / {caller_number}"}
    next: ask
  ask:
    type: collect
    prompt: ask
    var: entered
    min_length: 1
    max_length: 6
    next: save
    default: save
  save:
    type: set
    channel: {ENTERED: "{entered}"}
    next: bye
  bye:
    type: hangup
"""


@given(st.text())
def test_quote_round_trips_through_asterisk_parser(value):
    line = f"SET VARIABLE X {quote(value)}"
    assert "\n" not in line and "\r" not in line
    assert parse_args(line) == ["SET", "VARIABLE", "X", clean(value)]


def test_parse_args_matches_asterisk_examples():
    assert parse_args('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert parse_args('SET VARIABLE V "a \\"b\\" c"') == ["SET", "VARIABLE", "V", 'a "b" c']
    assert parse_args('VERBOSE "IVR routed caller to queue" 1') == ["VERBOSE", "IVR routed caller to queue", "1"]


def test_env_first_value_wins_and_junk_is_counted():
    block = (b"agi_network_script: hotline\nagi_calleridname: x\nagi_network_script: ../../evil\n"
             b"EXEC System rm -rf /\n\xff\xfe: bad\n")
    env = parse_env(block)
    assert env.script == "hotline" and env.malformed == 3
    assert parse_env(b"agi_request: agi://h:4573/../../etc/passwd\n").script is None
    assert parse_env(b"agi_request: agi://h:4573/hotline?x=1\n").script == "hotline"


def _parse_env_line_by_line(block: bytes) -> tuple[dict, int]:
    """parse_env's definition, one line at a time (what the one-pass parse must equal)."""
    values, bad = {}, 0
    text = re.sub(r"[\x00-\x09\x0b-\x1f\x7f]", "", block.decode("utf-8", "replace"))
    for line in text.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or re.fullmatch(r"agi_[a-z0-9_]+", key) is None or key in values:
            bad += 1
            continue
        values[key] = value[1:] if value.startswith(" ") else value
    return values, bad


ENV_PIECES = ["agi_callerid", "agi_calleridname", "agi_x1", "agi_", "AGI_callerid", "agi_caller-id", ":", ": ",
              "  ", " ", "\n", "\n\n", "\r\n", "\x00", "\x85", "\u2028", "王", "1380013", "agi://h/x?y", "\t"]


@given(st.lists(st.sampled_from(ENV_PIECES) | st.text(max_size=4), max_size=30))
def test_env_parse_is_the_line_by_line_definition(pieces):
    block = "".join(pieces).encode("utf-8", "surrogatepass") + b"\n"
    env = parse_env(block)
    assert (env.values, env.malformed) == _parse_env_line_by_line(block)


async def test_newline_in_caller_id_does_not_execute(tmp_path):
    (tmp_path / "evil.yaml").write_text(EVIL_FLOW)
    evil_name = 'Bob"\nEXEC System touch /tmp/pwned\nSET VARIABLE PWNED 1'
    async with agi_server(flows_dir=tmp_path) as server:
        executed = []
        from callcenter.simulator import agi_client

        orig = agi_client.AgiSession.execute

        async def spy(self, line):
            executed.append(line)
            return await orig(self, line)

        agi_client.AgiSession.execute = spy
        try:
            status, caller = await call(server, "evil", name=evil_name, number="1\n2 ANSWER",
                                        keys=[(0.5, "1"), (0.1, "2"), (0.1, "#")])
        finally:
            agi_client.AgiSession.execute = orig
    assert "PWNED" not in caller.variables
    assert not any(l.startswith(("EXEC", "SET VARIABLE PWNED")) for l in executed)
    # the caller's text reached the channel only as the (cleaned) value of one variable
    assert caller.variables["CALLER_NOTE"] == 'Bob" / 1'
    assert caller.variables["ENTERED"] == "12"
    assert all("\n" not in l for l in executed)


async def test_garbage_and_early_close_do_not_hurt_the_server():
    async with agi_server() as server:
        # 1: closes before the end of the environment; 2: binary junk; 3: unknown flow
        for payload in (b"agi_network: yes\n", b"\x00\xff\n\n", b"agi_network_script: nosuch\n\n"):
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(payload)
            await w.drain()
            w.write_eof()
            assert await asyncio.wait_for(r.read(), 5) == b""  # server closes, sends nothing
            w.close()
        # a well-formed call still works afterwards
        _, caller = await call(server, keys=[(0.5, "1"), (0.5, "1")])
        assert caller.variables["QUEUE"] == "consultation"
