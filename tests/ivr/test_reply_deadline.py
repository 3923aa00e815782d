"""A command's reply deadline, on one timer per session (``ReplyDeadline``), over real TCP.

The timer moves only when a deadline comes sooner than it; a later one is looked at
when the timer fires.  Both directions must still end the session exactly at the
command's own deadline, and a cancellation from elsewhere (shutdown) must stay one.
"""
from __future__ import annotations

import asyncio
import time

from ivr_flows.fastagi import AgiApplication, ReplyTimeout

ENV = b"agi_network_script: ivr\nagi_channel: SIP/x\n\n"


async def _serve(route, reply_timeout):
    app = AgiApplication(reply_timeout=reply_timeout, env_timeout=5)
    app.add_route("ivr", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_sooner_deadline_after_a_long_command_is_kept():
    """GET DATA allows 0.3 s + 3 s; the quick SET VARIABLE after it only 0.3 s."""
    got, done = [], asyncio.get_running_loop().create_future()

    async def route(request):
        try:
            got.append(await request.send_command("GET DATA x 3000 1"))
            t0 = time.monotonic()
            try:
                await request.send_command('SET VARIABLE A "1"')
            except ReplyTimeout as exc:
                got.append((str(exc), time.monotonic() - t0))
        finally:
            done.set_result(True)

    server, port = await _serve(route, 0.3)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(ENV)
        assert await asyncio.wait_for(r.readline(), 5) == b"GET DATA x 3000 1\n"
        w.write(b"200 result=1\n")
        assert await asyncio.wait_for(r.readline(), 5) == b'SET VARIABLE A "1"\n'
        await asyncio.wait_for(done, 5)       # no reply sent: the quick deadline ends it
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
    finally:
        server.close()
        await server.wait_closed()
    assert got[0]["result"] == ("1", "")
    what, waited = got[1]
    assert "SET', 'VARIABLE" in what and "0.3 s" in what
    assert 0.25 <= waited < 3.0               # its own 0.3 s, not the GET DATA's 3.3 s


async def test_a_later_deadline_after_a_quick_command_is_waited_for():
    """ANSWER allows 0.3 s; the GET DATA after it 0.3 s + 1.5 s, answered after 0.8 s."""
    got, done = [], asyncio.get_running_loop().create_future()

    async def route(request):
        try:
            got.append(await request.send_command("ANSWER"))
            got.append(await request.send_command("GET DATA x 1500 1"))
        except ReplyTimeout as exc:
            got.append(exc)
        finally:
            done.set_result(True)

    server, port = await _serve(route, 0.3)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(ENV)
        assert await asyncio.wait_for(r.readline(), 5) == b"ANSWER\n"
        w.write(b"200 result=0\n")
        assert await asyncio.wait_for(r.readline(), 5) == b"GET DATA x 1500 1\n"
        await asyncio.sleep(0.8)               # past the ANSWER's timer, within the GET DATA's deadline
        w.write(b"200 result=5\n")
        await asyncio.wait_for(done, 5)
        w.close()
    finally:
        server.close()
        await server.wait_closed()
    assert [g["result"] for g in got] == [("0", ""), ("5", "")]


async def test_a_cancelled_session_is_cancelled_not_timed_out():
    seen, waiting = [], asyncio.get_running_loop().create_future()

    async def route(request):
        waiting.set_result(asyncio.current_task())
        try:
            await request.send_command("ANSWER")
        except ReplyTimeout:
            seen.append("timeout")
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    server, port = await _serve(route, 5.0)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(ENV)
        assert await asyncio.wait_for(r.readline(), 5) == b"ANSWER\n"
        task = await asyncio.wait_for(waiting, 5)
        task.cancel()                            # the server stopping
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen == ["cancelled"]
