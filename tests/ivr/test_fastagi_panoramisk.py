"""The FastAGI server is panoramisk's, adapted: checked against the recorded ``.agi`` traces.

A scripted Asterisk replays each trace over real TCP: it reads the server's
command line and answers with exactly the bytes real Asterisk 22 sent after it
(unsolicited ``HANGUP`` and all).  The adapted ``Request.send_command`` must give
one reply per command, in order; panoramisk's stock one is shown off by one.
"""
from __future__ import annotations

import asyncio

import pytest
from panoramisk import fast_agi
from panoramisk.utils import parse_agi_result

from callcenter.ami.tracefile import read_agi, traces_dir
from ivr_flows.agi_transport import AgiConnection
from ivr_flows.fastagi import MAX_REPLY_LINE, AgiApplication, AgiRequest, parse_result, simple_reply, to_reply

from tests.support.ivr import agi_server, call

TRACES = ["04-outbound-answered-survey.agi", "07-fastagi-session.agi", "07b-fastagi-caller-hangup.agi",
          "07c-fastagi-voice-message.agi", "07d-fastagi-no-input.agi"]


@pytest.fixture(params=["protocol", "streams"])
def listen(request):
    """Start a FastAGI listener as the server does (one AgiConnection per connection) or over
    asyncio's streams: the request code must behave the same over both."""
    async def start(handler):
        if request.param == "streams":
            return await asyncio.start_server(handler, "127.0.0.1", 0)
        return await asyncio.get_running_loop().create_server(lambda: AgiConnection(handler), "127.0.0.1", 0)
    return start


def script(name):
    """(env bytes, [(command line, reply bytes as Asterisk sent them)])."""
    entries = [e for e in read_agi(traces_dir() / name) if e.direction in ("<<<", ">>>")]
    out = []
    for e in entries[1:]:
        if e.direction == ">>>":
            out.append([e.raw.decode().rstrip("\n"), b""])
        else:
            out[-1][1] += e.raw
    return entries[0].raw, out


async def replay(name, route, *, app=None, listen=None):
    """Serve ``route`` with ``app`` (default: ours) and play Asterisk's side of trace ``name``."""
    env, steps = script(name)
    app = AgiApplication() if app is None else app
    done = asyncio.get_running_loop().create_future()

    async def run(request):
        try:
            await route(request)
        finally:
            done.set_result(True)

    app.add_route("ivr" if "ivr" in env.decode() else "survey", run)
    server = await (listen or _streams)(app.handler)
    port = server.sockets[0].getsockname()[1]
    seen = []
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(env)
        for cmd, reply in steps:
            line = await asyncio.wait_for(r.readline(), 5)
            if not line:
                break
            seen.append(line.decode().rstrip("\n"))
            assert seen[-1] == cmd
            w.write(reply)
        await asyncio.wait_for(done, 5)  # the route has read every reply
        w.close()
    finally:
        server.close()
        await server.wait_closed()
    return steps, seen


def expected_replies(steps):
    """The reply to each command: its bytes without the unsolicited HANGUP lines."""
    return [b"".join(l for l in reply.splitlines(keepends=True) if l != b"HANGUP\n").decode()
            for _, reply in steps]


async def test_server_app_is_panoramisk_application():
    async with agi_server() as server:
        assert isinstance(server.app, fast_agi.Application)
        assert {"hotline", "revisit_survey"} <= set(server.app._route)
        assert server.app._route["hotline"] == server._run_flow
        status, caller = await call(server, keys=[(0.5, "2"), (0.5, "1")])
        assert status == "SUCCESS" and caller.variables["QUEUE"] == "consultation"


async def test_plain_function_route_is_refused():
    app = AgiApplication()
    with pytest.raises(TypeError, match="async"):
        app.add_route("x", lambda request: None)  # panoramisk 1.4 would crash on 3.11 (PITFALLS 6)
    assert "x" not in app._route


async def test_07b_hangup_sequence_one_reply_per_command(listen):
    got = []

    async def route(request):
        assert isinstance(request, AgiRequest) and isinstance(request, fast_agi.Request)
        assert request.headers["agi_callerid"] == "13500135006"
        for cmd, _ in script("07b-fastagi-caller-hangup.agi")[1]:
            got.append((await request.send_command(cmd), request.hungup))

    steps, seen = await replay("07b-fastagi-caller-hangup.agi", route, listen=listen)
    assert seen == [c for c, _ in steps]
    by_cmd = dict(zip(seen, got))
    # GET DATA: caller hung up (-1), not yet announced
    res, hung = by_cmd["GET DATA beep 3000 1"]
    assert res["status_code"] == 200 and res["result"] == ("-1", "") and res["error"] == "AGIAppError"
    assert not hung
    # HANGUP arrives before SET VARIABLE's reply: noted, and the reply is still SET VARIABLE's
    res, hung = by_cmd["SET VARIABLE QUEUE consultation"]
    assert hung and res["status_code"] == 200 and res["result"] == ("1", "") and "error" not in res
    assert by_cmd["GET VARIABLE QUEUE"][0]["result"] == ("1", "consultation")
    assert by_cmd["GET FULL VARIABLE ${CALLERID(name)}"][0]["result"] == ("1", "Zhao Lei")
    assert by_cmd["CHANNEL STATUS"][0]["status_code"] == 511
    assert by_cmd["CHANNEL STATUS"][0]["error"] == "AGIResultHangup"
    assert by_cmd["NO SUCH COMMAND"][0]["error"] == "AGIInvalidCommand"
    assert by_cmd["GET DATA"][0]["status_code"] == 511
    assert [r["lines"] for r, _ in got] == [[l] for l in (x.rstrip("\n") for x in expected_replies(steps))]


async def test_07b_stock_panoramisk_request_is_off_by_one():
    """Why the adaptation: panoramisk's own Request takes the HANGUP line as SET VARIABLE's
    reply, and from then on each command gets the previous command's reply."""
    got = []

    async def route(request):
        assert type(request) is fast_agi.Request
        for cmd, _ in script("07b-fastagi-caller-hangup.agi")[1][:5]:
            got.append(await request.send_command(cmd))

    class Stock(fast_agi.Application):
        pass

    await replay("07b-fastagi-caller-hangup.agi", route, app=Stock())
    assert got[3]["error"] == "AGIResultHangup"          # SET VARIABLE "answered" HANGUP
    assert got[4].get("result") == ("1", "")               # Playback gets SET VARIABLE's 200 result=1


@pytest.mark.parametrize("name", TRACES)
async def test_every_trace_reply_lines_in_order(name, listen):
    got = []

    async def route(request):
        for cmd, _ in script(name)[1]:
            res = await request.send_command(cmd)
            got.append("\n".join(res["lines"]) + "\n")
        got.append(request.hungup)

    steps, seen = await replay(name, route, listen=listen)
    assert seen == [c for c, _ in steps]
    assert got[:-1] == expected_replies(steps)
    assert got[-1] == any(b"HANGUP\n" in reply.splitlines(keepends=True) for _, reply in steps)


async def test_520_usage_block_is_one_reply(listen):
    got = []

    async def route(request):
        for cmd, _ in script("07d-fastagi-no-input.agi")[1]:
            got.append(await request.send_command(cmd))

    await replay("07d-fastagi-no-input.agi", route, listen=listen)
    usage = got[-1]
    assert usage["status_code"] == 520 and usage["error"] == "AGIUsageError" and len(usage["lines"]) == 4
    assert usage["lines"][-1] == "520 End of proper usage."
    assert to_reply(usage).code == 520
    timeout = got[2]  # GET DATA: "200 result= (timeout)"
    assert timeout["result"] == ("", "timeout") and to_reply(timeout).data == "timeout"


async def _streams(handler):
    return await asyncio.start_server(handler, "127.0.0.1", 0)


async def serving(listen, route):
    """Our app with ``route`` as flow "ivr", listening as ``listen`` does: (server, port)."""
    app = AgiApplication(env_timeout=5)
    app.add_route("ivr", route)
    server = await listen(app.handler)
    return server, server.sockets[0].getsockname()[1]


async def test_eof_mid_session_and_mid_environment(listen):
    got = []

    async def route(request):
        got.append(await request.send_command("ANSWER"))
        got.append(await request.send_command("ANSWER"))

    server, port = await serving(listen, route)
    try:
        # closed before the blank line: the handler ends (panoramisk's would spin forever), no route runs
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"agi_network_script: ivr\nagi_channel: x")
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 5) == b""
        assert got == []
        # garbage lines tolerated; closed after the first reply + a partial line: EOF reply
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"\xff\xfe junk\nagi_network_script: ivr\nno colon\n\n")
        assert await asyncio.wait_for(r.readline(), 5) == b"ANSWER\n"
        w.write(b"200 result=0\n200 res")
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 5) == b"ANSWER\n"
    finally:
        server.close()
        await server.wait_closed()
    assert got[0]["result"] == ("0", "") and got[1]["eof"] and to_reply(got[1]) is None


async def test_a_reply_line_without_end_is_a_closed_connection(listen):
    """More than ``MAX_REPLY_LINE`` bytes without a line end is no Asterisk: the command gets
    the EOF reply (the session ends) instead of buffering without bound."""
    got = []

    async def route(request):
        got.append(await request.command("ANSWER"))
        got.append(request._buf[:1])

    server, port = await serving(listen, route)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"agi_network_script: ivr\n\n")
        assert await asyncio.wait_for(r.readline(), 5) == b"ANSWER\n"
        w.write(b"2" * (MAX_REPLY_LINE + 70000))  # no LF: the server gives up after the limit
        try:  # and closes (a reset: what it did not read is dropped)
            assert await asyncio.wait_for(r.read(), 5) == b""
        except ConnectionResetError:
            pass
    finally:
        w.close()
        server.close()
        await server.wait_closed()
    assert got == [None, b"2"]


@pytest.mark.parametrize("line", ["200 result=0", "200 result=0 endpos=3520", "200 result=1 (consultation)",
                                  "200 result=35 (dtmf) endpos=0", "200 result=1 (王小明)",
                                  "510 Invalid or unknown command",
                                  "520-Invalid command syntax.  Proper usage follows:"])
def test_parse_result_is_panoramisks_where_it_is_right(line):
    assert parse_result(line) == parse_agi_result(line)


def test_parse_result_overrides():
    assert parse_agi_result("200 result= (timeout)")["result"] == ("", "")  # panoramisk loses it
    assert parse_result("200 result= (timeout)")["result"] == ("", "timeout")
    assert "status_code" not in parse_agi_result("200 result=-1 (hangup) endpos=8000")
    r = parse_result("200 result=-1 (hangup) endpos=8000")
    assert r["status_code"] == 200 and r["endpos"] == ("8000", "") and r["error"] == "AGIResultHangup"
    assert to_reply(dict(r, lines=["x"])).endpos == 8000
    assert parse_agi_result("200 result=1 (hangup)")["error"] == "AGIResultHangup"
    assert parse_result("200 result=1 (hangup)")["result"] == ("1", "hangup")  # a variable's value
    with pytest.raises(ValueError):
        parse_agi_result("garbage")
    assert parse_result("garbage")["status_code"] == 0
    assert parse_agi_result("511 Command Not Permitted")["error"] == "AGIUnknownError"
    assert parse_result("511 Command Not Permitted")["error"] == "AGIResultHangup"


async def test_endless_reply_line_ends_the_session_as_a_hangup(listen):
    app = AgiApplication()
    got = []

    async def route(request):
        got.append(await request.send_command("ANSWER"))

    app.add_route("ivr", route)
    server = await listen(app.handler)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        w.write(b"agi_network_script: ivr\n\n")
        assert await asyncio.wait_for(r.readline(), 5) == b"ANSWER\n"
        w.write(b"2" * (1024 * 1024 + 70000))  # no line end: not Asterisk
        try:  # the server closed (with our bytes unread, so possibly a reset)
            assert await asyncio.wait_for(r.read(), 5) == b""
        except ConnectionResetError:
            pass
        w.close()
    finally:
        server.close()
        await server.wait_closed()
    assert got and got[0]["eof"]


SIMPLE_LINES = ["200 result=0", "200 result=1", "200 result=49", "200 result=-1", "200 result=0 endpos=8000",
                "200 result=-1 endpos=0", "200 result=35 endpos=12", "200 result=1234567", "200 result=007",
                "200 result=-01 endpos=00"]
NOT_SIMPLE = ["200 result=", "200 result= (timeout)", "200 result=1 (consultation)", "200 result=-1 (hangup)",
              "200 result=0 endpos=8000 ", "200 result=0  endpos=1", "200 result=1 endpos=-5", "200 result=a",
              "511 Command Not Permitted", "510 Invalid or unknown command", "100 result=0 Trying...",
              "200 result=0 (x) endpos=1", "200 result=0 endpos=1 (x)", "2000 result=1", " 200 result=1", "200"]


@pytest.mark.parametrize("line", SIMPLE_LINES + NOT_SIMPLE)
def test_simple_reply_is_to_reply_of_parse_result(line):
    """The server's direct read of ``200 result=N[ endpos=M]`` gives the Reply the dict path gives."""
    got = simple_reply(line)
    if line in NOT_SIMPLE:
        assert got is None
    else:
        assert got == to_reply(dict(parse_result(line), lines=[line]))


@pytest.mark.parametrize("name", TRACES)
async def test_command_replies_are_send_command_replies(name):
    """``AgiRequest.command`` (the server's path) and ``send_command`` read every trace alike."""
    as_dicts, as_replies = [], []

    async def by_dict(request):
        for cmd, _ in script(name)[1]:
            as_dicts.append(to_reply(await request.send_command(cmd)))
        as_dicts.append(request.hungup)

    async def by_reply(request):
        for cmd, _ in script(name)[1]:
            as_replies.append(await request.command(cmd))
        as_replies.append(request.hungup)

    await replay(name, by_dict)
    await replay(name, by_reply)
    assert as_replies == as_dicts and len(as_replies) == len(script(name)[1]) + 1
