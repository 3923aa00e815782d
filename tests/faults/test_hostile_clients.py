"""Slow and greedy clients over real loopback sockets: timeouts, caps, body limits (issue 16.1-2).

The web's connection timers run on a ``task.Clock`` (advanced by the test), the
sockets on the real reactor, so "cut after 10 s" is shown without waiting 10 s.
"""
from __future__ import annotations

import asyncio
import json
import logging
import resource
import subprocess
import sys

import pytest
from twisted.internet import task

from callcenter import fdlimit
from callcenter.logs import RepeatFilter, RepeatLimiter
from callcenter.web.component import limits_from_config
from callcenter.web.guard import HttpLimits
from ivr_flows.fastagi import reply_deadline

from tests.support.web import Client, running_web

LIMITS = HttpLimits(idle_timeout=15, header_timeout=10, body_timeout=30, max_connections=40, max_per_client=30)


class _Web:
    """The web app on a free port with ``limits``, its connection timers on a ``task.Clock``."""

    def __init__(self, config, db, limits=LIMITS):
        self.timers = task.Clock()
        self._cm = running_web(config, db, limits=limits, timers=self.timers)

    async def __aenter__(self):
        self.web = await self._cm.__aenter__()
        return self

    async def __aexit__(self, *exc):
        await self._cm.__aexit__(*exc)

    @property
    def port(self):
        return self.web.port

    async def settle(self):
        for _ in range(5):
            await asyncio.sleep(0.02)


async def _open(port, source="127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed(reader, timeout=5.0) -> bytes:
    """Everything the server sent until it closed the connection."""
    data = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            return data
        data += chunk


async def _still_open(reader) -> bool:
    try:
        chunk = await asyncio.wait_for(reader.read(1), 0.05)
    except asyncio.TimeoutError:
        return True
    return chunk != b""


async def test_slow_header_clients_are_cut_and_login_still_answers(config, db):
    async with _Web(config, db) as w:
        slow = []
        for _ in range(25):  # dribbling headers: one more byte every few seconds keeps the idle timer fresh
            r, wr = await _open(w.port)
            wr.write(b"GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            slow.append((r, wr))
        await w.settle()
        for step in range(9):
            for _, wr in slow:
                wr.write(b"a")
            await w.settle()
            w.timers.advance(1)
        assert all([await _still_open(r) for r, _ in slow])   # 9 s in: not yet
        assert (await Client(w.port).get("/login")).status == 200  # the form answers meanwhile
        w.timers.advance(1.5)                                     # past the 10 s header deadline
        answers = [await _closed(r) for r, _ in slow]
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[0]
        await w.settle()
        assert w.web.site.open_total == 0
        for _, wr in slow:
            wr.close()


async def test_idle_and_slow_body_clients_are_cut(config, db):
    async with _Web(config, db) as w:
        r_idle, w_idle = await _open(w.port)          # connects, never sends a byte
        r_body, w_body = await _open(w.port)          # headers at once, the body never completes
        w_body.write(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100\r\n\r\nusername=")
        await w.settle()
        w.timers.advance(14)
        assert await _still_open(r_idle) and await _still_open(r_body)
        w_body.write(b"x")                            # a byte: its idle timer starts again
        await w.settle()
        w.timers.advance(1.5)                         # idle timeout 15 s
        assert await _closed(r_idle) == b""
        for _ in range(14):                           # the body keeps trickling, still cut at 30 s
            w_body.write(b"x")
            await w.settle()
            w.timers.advance(1)
        assert await _still_open(r_body)
        w.timers.advance(15)
        assert (await _closed(r_body)).startswith(b"HTTP/1.1 408 ")
        w_idle.close()
        w_body.close()


async def _state(reader) -> str:
    """"open", "closed", or the status line the server sent before closing."""
    try:
        data = await asyncio.wait_for(reader.read(65536), 0.05)
    except asyncio.TimeoutError:
        return "open"
    return data.split(b"\r\n", 1)[0].decode() if data else "closed"


async def test_connection_caps_shed_the_oldest_idle_connections(config, db):
    limits = HttpLimits(max_connections=12, max_per_client=5)
    async with _Web(config, db, limits) as w:
        conns = {src: [await _open(w.port, src) for _ in range(7)] for src in ("127.0.0.2", "127.0.0.3")}
        await w.settle()
        for src, cs in conns.items():   # 5 kept per address; the 2 oldest made room for the newer ones
            states = [await _state(r) for r, _ in cs]
            assert states == ["HTTP/1.1 503 Service Unavailable"] * 2 + ["open"] * 5, (src, states)
        more = [await _open(w.port, "127.0.0.4") for _ in range(4)]
        await w.settle()
        assert [await _state(r) for r, _ in more] == ["open"] * 4
        assert w.web.site.open_total == 12   # the total cap: two more of the oldest idle ones went
        assert sum([await _state(r) != "open" for r, _ in conns["127.0.0.2"]]) == 4
        assert (await Client(w.port).get("/login")).status == 200  # a new client is always served
        for cs in [*conns.values(), more]:
            for _, wr in cs:
                wr.close()
        await w.settle()
        assert w.web.site.open_total == 0 and w.web.site.open_by_client == {}


def test_connection_cap_refuses_when_every_connection_is_busy():
    from twisted.internet.address import IPv4Address
    from twisted.web.resource import Resource

    from callcenter.web.guard import GuardedSite

    site = GuardedSite(Resource(), limits=HttpLimits(max_connections=6, max_per_client=2),
                       body_limit=lambda m, p: 1, reactor=task.Clock(), trusted_proxies={"10.0.0.1"})

    def busy(host):
        ch = site.buildProtocol(IPv4Address("TCP", host, 40000))
        if ch is not None:
            site.busy(ch)            # handling a request (an event stream, a handler): not shed
        return ch
    a = [busy("192.0.2.1") for _ in range(2)]
    assert busy("192.0.2.1") is None                        # per-client cap, nothing to shed
    assert all(busy("10.0.0.1") is not None for _ in range(4))  # a trusted proxy: no per-client cap
    assert busy("192.0.2.2") is None                        # total cap, nothing to shed
    site.closed(a[0])
    assert busy("192.0.2.2") is not None and site.open_total == 6


async def _post_headers(port, path, length, ctype="application/json", extra=b""):
    r, wr = await _open(port)
    wr.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
             f"Content-Length: {length}\r\n\r\n".encode() + extra)
    return r, wr


async def test_huge_bodies_refused_by_content_length_before_reading(config, db):
    async with _Web(config, db) as w:
        for path in ("/login", "/api/complaints", "/api/import/patients"):
            r, wr = await _post_headers(w.port, path, 300_000_000)  # no body byte sent
            answer = await _closed(r)
            assert answer.startswith(b"HTTP/1.1 413 "), (path, answer[:80])
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == 413
            wr.close()
        # per route: 300 KB is over the default (256 KiB) but within the import limit (20 MB)
        body = json.dumps([{"x": "y" * 300_000}]).encode()
        r, wr = await _post_headers(w.port, "/api/complaints", len(body), extra=body)
        assert (await _closed(r)).startswith(b"HTTP/1.1 413 ")
        wr.close()
        reply = await Client(w.port).post("/api/import/patients", json_body=[{"x": "y" * 300_000}])
        assert reply.status == 401   # read and refused for who sent it, not for its size
        r, wr = await _post_headers(w.port, "/login", 20_000, ctype="application/x-www-form-urlencoded")
        assert (await _closed(r)).startswith(b"HTTP/1.1 413 ")  # login: 16 KiB
        wr.close()


async def test_chunked_body_over_the_limit_is_cut(config, db):
    async with _Web(config, db) as w:
        r, wr = await _open(w.port)
        wr.write(b"POST /api/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        for _ in range(5):
            wr.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = await _closed(r)
        assert answer.startswith(b"HTTP/1.1 413 ")
        wr.close()


def test_web_cap_leaves_room_for_fastagi(config, caplog):
    assert fdlimit.web_connection_cap(512, 256, limit=1024) == 512
    with caplog.at_level(logging.WARNING):
        assert fdlimit.web_connection_cap(512, 256, limit=700) == 700 - 256 - fdlimit.RESERVE
    assert "lowered" in caplog.text
    with pytest.raises(fdlimit.BudgetError, match="max_sessions"):
        fdlimit.web_connection_cap(512, 256, limit=300)
    limits = limits_from_config(config, open_files=1024)
    assert limits.max_connections + config.agi.max_sessions + fdlimit.RESERVE <= 1024


def test_soft_open_files_limit_raised_to_hard_at_start():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.fail(f"hard open-files limit {hard} too low to show the raise")
    code = ("import resource; from callcenter.fdlimit import raise_soft_limit; before, after = raise_soft_limit(); "
            "print(before, after, resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    before, after, now = map(int, out.stdout.split())
    assert before == 256 and after == now and now > 256


def test_repeated_errors_logged_once_per_interval_with_a_count():
    f = RepeatFilter(interval=60)
    passed = []
    for i in range(5000):
        rec = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                (), (OSError, OSError(24, "Too many open files"), None))
        rec.created = 1000.0 + i * 0.004  # 5,000 in 20 s
        if f.filter(rec):
            passed.append(rec)
    assert len(passed) == 1
    rec = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                            (), (OSError, OSError(24, "x"), None))
    rec.created = 1061.0
    assert f.filter(rec) and "4999 more like this" in rec.getMessage()

    clock = task.Clock()
    lines = []
    logger = logging.getLogger("test.repeat")
    handler = logging.Handler()
    handler.emit = lines.append
    logger.addHandler(handler)
    try:
        lim = RepeatLimiter(logger, clock, interval=60)
        for _ in range(100):
            lim.warning("cap", "refused")
        clock.advance(61)
        lim.warning("cap", "refused")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in lines] == ["refused", "refused (99 more in the last 60 s)"]


def test_agi_reply_deadline_covers_the_commands_own_time():
    assert reply_deadline("ANSWER", 120) == 10 and reply_deadline("SET VARIABLE QUEUE x", 120) == 10  # quick
    assert reply_deadline("EXEC Playback x", 120) == 120
    assert reply_deadline("GET DATA callcenter/zh/menu 5000 1", 120) == 125
    assert reply_deadline("GET DATA callcenter/zh/number 5000 12", 120) == 180
    assert reply_deadline('RECORD FILE "/x/y" wav "#" 120000 0 BEEP s=5', 120) == 240
    assert reply_deadline("STREAM FILE callcenter/zh/hello \"\"", 30) == 30


_ENV = (b"agi_network: yes\nagi_network_script: hotline\nagi_request: agi://127.0.0.1/hotline\n"
        b"agi_channel: PJSIP/trunk-00000001\nagi_uniqueid: 1795346775.48\nagi_callerid: 13800138002\n"
        b"agi_calleridname: unknown\nagi_context: hotline\nagi_extension: s\nagi_priority: 1\n\n")


async def test_fastagi_session_cap_sheds_silent_and_stalled_sessions_then_refuses():
    from tests.support.ivr import agi_server

    async with agi_server(None, max_sessions=3) as server:
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        await _settle()
        states = [await _still_open(r) for r, _ in silent]
        # no environment sent: not Asterisk; the oldest two made room for the newer ones
        assert states == [False, False, True, True, True] and server.shed == 2 and server.refused == 0
        callers = []
        for n in range(3):  # callers in a flow (each holds at the menu) take the place of the silent ones
            r, wr = await asyncio.open_connection("127.0.0.1", server.port)
            wr.write(_ENV)
            assert (await asyncio.wait_for(r.readline(), 5)) == b"ANSWER\n"
            callers.append((r, wr))
        assert server.shed == 5
        r, wr = await asyncio.open_connection("127.0.0.1", server.port)  # all in a flow, none stalled: refused
        assert await _closed(r) == b"" and server.refused == 1
        assert all([await _still_open(cr) for cr, _ in callers])
        await asyncio.sleep(2.1)   # the callers stay silent after ANSWER: no PBX takes 2 s for that
        r2, wr2 = await asyncio.open_connection("127.0.0.1", server.port)
        wr2.write(_ENV)
        assert (await asyncio.wait_for(r2.readline(), 5)) == b"ANSWER\n"   # the oldest stalled one made room
        assert server.shed == 6 and [await _still_open(cr) for cr, _ in callers] == [False, True, True]
        wr2.close()
        for _, w in [*silent, *callers, (r, wr)]:
            w.close()


async def _settle():
    for _ in range(10):
        await asyncio.sleep(0.02)


async def test_fastagi_command_without_reply_ends_the_session(db):
    from sqlalchemy import select

    from ivr_flows.models import IvrSession

    from tests.support.ivr import agi_server

    async with agi_server(db, reply_timeout=0.3) as server:
        r, wr = await asyncio.open_connection("127.0.0.1", server.port)
        wr.write(_ENV)
        assert (await asyncio.wait_for(r.readline(), 5)) == b"ANSWER\n"
        assert await _closed(r) == b""      # no reply: dropped after the deadline (was: 3,600 s)
        wr.close()
        for _ in range(50):
            if server.active == 0:
                break
            await asyncio.sleep(0.02)
        assert server.active == 0
    with db.session() as s:
        rows = s.scalars(select(IvrSession)).all()
    assert len(rows) == 1 and rows[0].ended_at is not None


def test_repeat_filter_keeps_different_messages_of_one_template():
    f = RepeatFilter(interval=60)
    recs = [logging.LogRecord("callcenter", logging.INFO, __file__, 1, "stopped %s", (name,), None)
            for name in ("web", "dialer", "ami")]
    assert all(f.filter(r) for r in recs)   # "stopped web", "stopped dialer", ... all kept
