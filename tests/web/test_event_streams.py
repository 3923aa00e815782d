"""Live event streams through the real web server: a cap per user (429 in the reader's
language) and in all (503), places given back however a stream ends (no leak after many
drops), a client that does not read cut by what is queued for it while the others get
every push, and HTTP/1.1 streams framed as chunks."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest
from sqlalchemy import update

from callcenter.config import ConfigError
from callcenter.store.models import User

from tests.support.web import Client, SSEClient, add_users, running_web


def _caps(config, per_user: int, total: int = 448):
    return config.with_overrides({"web": {"max_streams_per_user": per_user, "max_streams": total}})


async def _refusal(sse: SSEClient) -> dict:
    body = await asyncio.wait_for(sse.reader.read(), 5)
    sse.close()
    return json.loads(body)


async def _settled(caps, open_: int) -> None:
    """Wait (bounded) until the server has seen the closes: ``open_`` places taken."""
    for _ in range(250):
        if caps.open == open_:
            return
        await asyncio.sleep(0.02)
    assert caps.open == open_, caps.by_owner


async def _login(port, user) -> dict:
    c = Client(port)
    assert (await c.login(user)).status == 303
    return c.cookies


async def test_a_users_streams_beyond_the_cap_are_refused_in_their_language(config, db):
    add_users(db)
    with db.session() as s:
        s.execute(update(User).where(User.username == "admin1").values(language="zh"))
    async with running_web(_caps(config, per_user=2), db) as web:
        sup, admin = await _login(web.port, "sup1"), await _login(web.port, "admin1")
        first = [await SSEClient.open(web.port, "/events/wallboard", sup) for _ in range(2)]
        assert [s.status for s in first] == [200, 200]
        await first[1].next_event("wallboard")
        third = await SSEClient.open(web.port, "/events/wallboard", sup)
        assert third.status == 429 and third.headers["retry-after"] == "5"
        body = await _refusal(third)
        assert body["code"] == "too_many_streams" and body["limit"] == 2
        assert body["error"].startswith("You have 2 live views open already")
        # the open streams are untouched: the oldest still gets pushes
        web.app.broker.publish("wallboard", "patch", {"base": 0, "v": 1, "set": {}})
        assert (await first[0].next_event("patch"))[1]["v"] == 1
        # another user has places of their own; the message follows the reader's language
        zh = [await SSEClient.open(web.port, "/events/wallboard", admin) for _ in range(3)]
        assert [s.status for s in zh] == [200, 200, 429]
        assert (await _refusal(zh[2]))["error"].startswith("您已打开 2 个实时页面")
        first[0].close()                      # a tab closed: the next one gets in
        await _settled(web.app.broker.caps, 3)
        again = await SSEClient.open(web.port, "/events/wallboard", sup)
        assert again.status == 200
        for s in [first[1], again, *zh[:2]]:
            s.close()
        await _settled(web.app.broker.caps, 0)


async def test_the_service_wide_cap_leaves_connections_to_pages(config, db):
    add_users(db)
    async with running_web(_caps(config, per_user=8, total=3), db) as web:
        sup, admin = await _login(web.port, "sup1"), await _login(web.port, "admin1")
        streams = [await SSEClient.open(web.port, "/events/wallboard", c) for c in (sup, sup, admin)]
        assert [s.status for s in streams] == [200] * 3
        full = await SSEClient.open(web.port, "/events/wallboard", admin)
        assert full.status == 503
        body = await _refusal(full)
        assert (body["code"], body["limit"]) == ("streams_full", 3)
        assert (await Client(web.port).get("/login")).status == 200   # pages are still served
        for s in streams:
            s.close()
    with pytest.raises(ConfigError, match=r"max_streams = 500 must leave at least 16 of \[web\] max_connections"):
        async with running_web(_caps(config, per_user=8, total=500), db):
            pass


async def test_streams_dropped_many_times_give_their_places_back(config, db):
    """Closed after the first event, reset, or closed before the server answered: 60
    rounds at the cap, then the user can still open as many streams as the cap."""
    add_users(db)
    async with running_web(_caps(config, per_user=3), db) as web:
        sup = await _login(web.port, "sup1")
        caps, cookie = web.app.broker.caps, "; ".join(f"{k}={v}" for k, v in sup.items())
        request = (f"GET /events/wallboard HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n"
                   f"Cookie: {cookie}\r\n\r\n").encode()
        for i in range(60):
            way = i % 3
            if way == 2:                     # gone before the handler answered
                conns = [await asyncio.open_connection("127.0.0.1", web.port) for _ in range(3)]
                for _, w in conns:
                    w.write(request)
                    await w.drain()
                for _, w in conns:
                    w.close()
            else:
                streams = [await SSEClient.open(web.port, "/events/wallboard", sup) for _ in range(3)]
                assert [s.status for s in streams] == [200] * 3, i
                await streams[-1].next_event("wallboard")
                for s in streams:
                    if way == 0:
                        s.close()
                    else:                    # reset, not a polite close
                        s.writer.transport.abort()
            await _settled(caps, 0)
        assert caps.by_owner == {} and web.app.broker.streams == {}
        streams = [await SSEClient.open(web.port, "/events/wallboard", sup) for _ in range(3)]
        assert [s.status for s in streams] == [200] * 3
        for s in streams:
            s.close()
        await _settled(caps, 0)


async def test_a_client_that_does_not_read_is_cut_and_the_others_get_every_push(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        broker = web.app.broker
        sup = await _login(web.port, "sup1")
        cookie = "; ".join(f"{k}={v}" for k, v in sup.items())
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", web.port))
        sock.setblocking(False)
        stalled_r, stalled_w = await asyncio.open_connection(sock=sock)
        stalled_w.write(f"GET /events/wallboard HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n"
                        f"Cookie: {cookie}\r\n\r\n".encode())
        reader = await SSEClient.open(web.port, "/events/wallboard", sup)
        await reader.next_event("wallboard")
        await _settled(broker.caps, 2)
        stalled_w.transport.pause_reading()   # reads nothing more from here on
        blob = "x" * 50_000
        pushed = 0
        while broker.cut_slow == 0 and pushed < 400:
            pushed += 1
            broker.publish("wallboard", "patch", {"n": pushed, "blob": blob})
            _, got = await reader.next_event("patch")
            assert got["n"] == pushed         # the reading client has every push, in order
        assert broker.cut_slow == 1 and broker.count("wallboard") == 1
        # cut after about MAX_QUEUED bytes queued beyond the kernel's buffers, not 20 MB
        assert pushed * 50_000 < 8_000_000
        await _settled(broker.caps, 1)
        reader.close()
        stalled_w.close()


async def test_an_http11_stream_is_framed_as_chunks(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        sup = await _login(web.port, "sup1")
        r, w = await asyncio.open_connection("127.0.0.1", web.port)
        cookie = "; ".join(f"{k}={v}" for k, v in sup.items())
        w.write(f"GET /events/wallboard HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                f"Cookie: {cookie}\r\n\r\n".encode())
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head

        async def events(until: bytes) -> bytes:
            body = b""
            while until not in body:
                size = int((await asyncio.wait_for(r.readline(), 5)).strip(), 16)
                body += await r.readexactly(size)
                assert await r.readexactly(2) == b"\r\n"
            return body
        assert b"event: wallboard" in await events(b"event: wallboard")
        web.app.broker.publish("wallboard", "patch", {"base": 1, "v": 2, "set": {"note": "中文"}})
        patch = (await events(b"event: patch")).split(b"event: patch\n", 1)[1]
        assert json.loads(patch.split(b"data: ", 1)[1].split(b"\n")[0]) == {"base": 1, "v": 2,
                                                                          "set": {"note": "中文"}}
        w.close()


@pytest.mark.browser
@pytest.mark.timeout(90)
@pytest.mark.parametrize("user,page,banner", [("sup1", "/wallboard", "#wb-stale"), ("agent1", "/agent", "#stream-refused")],
                         ids=["wallboard", "agent-desk"])
async def test_a_tab_over_the_cap_says_why_and_connects_when_a_tab_closes(config, db, user, page, banner):
    from tests.web.test_browser import ARGS, CHROMIUM, _login as browser_login, _require_browser

    _require_browser()
    from playwright.async_api import async_playwright, expect

    add_users(db)
    async with running_web(_caps(config, per_user=1), db) as web:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                context = await browser.new_context()
                first = await context.new_page()
                await browser_login(first, f"http://127.0.0.1:{web.port}", user)
                await first.goto(f"http://127.0.0.1:{web.port}{page}")
                await expect(first.locator("body")).to_have_attribute("data-connected", "1", timeout=10000)
                second = await context.new_page()
                await second.goto(f"http://127.0.0.1:{web.port}{page}")
                await expect(second.locator(banner)).to_contain_text("You have 1 live views open already",
                                                                     timeout=10000)
                assert await second.get_attribute("body", "data-connected") == "0"
                await first.close()           # a tab closed: the refused one gets in by itself
                await expect(second.locator("body")).to_have_attribute("data-connected", "1", timeout=15000)
                assert await second.is_hidden(banner)
            finally:
                await browser.close()


async def test_head_on_a_stream_answers_the_headers_and_keeps_no_place(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        sup = await _login(web.port, "sup1")
        r, w = await asyncio.open_connection("127.0.0.1", web.port)
        cookie = "; ".join(f"{k}={v}" for k, v in sup.items())
        w.write(f"HEAD /events/wallboard HTTP/1.0\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
        answer = await asyncio.wait_for(r.read(), 5)     # the server ends the response
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and b"text/event-stream" in head and body == b""
        web.app.broker.publish("wallboard", "patch", {"base": 1, "v": 2, "set": {}})
        await _settled(web.app.broker.caps, 0)
        assert web.app.broker.streams == {}
        w.close()

