"""Recordings behind the real web app (login session, roles) over HTTP/TCP."""
from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import re
from urllib.parse import urlencode

from sqlalchemy import select

from callcenter.ami.tracefile import traces_dir
from callcenter.app import build
from callcenter.store.models import AuditEntry, User
from callcenter.web.passwords import hash_password
from recordings import catalog
from recordings.settings import from_config
from recordings.wav import inspect_file

PART1 = traces_dir() / "06-mixmonitor-part1.wav"
PASSWORD = "correct horse 1"


class Browser:
    def __init__(self, port):
        self.port, self.cookies = port, {}

    def _do(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    async def get(self, path, headers=None):
        return await asyncio.to_thread(self._do, "GET", path, None, headers)

    async def login(self, username):
        _s, _h, form = await self.get("/login")
        token = re.search(rb'name="login_token" value="([^"]+)"', form).group(1).decode()
        body = urlencode({"username": username, "password": PASSWORD, "login_token": token}).encode()
        return (await asyncio.to_thread(self._do, "POST", "/login", body,
                                        {"Content-Type": "application/x-www-form-urlencoded"}))[0]


async def test_recordings_through_the_web_app(config, db):
    with db.session() as s:
        for name, role in (("agent1", "agent"), ("sup1", "supervisor")):
            s.add(User(username=name, display_name=name, role=role, interface="", language="en",
                       password_hash=hash_password(PASSWORD, n=2**10), active=True))
    settings = from_config(config)
    rel = "2026/11/22/consultation/1795346754.44.wav"
    (settings.directory / rel).parent.mkdir(parents=True)
    (settings.directory / rel).write_bytes(PART1.read_bytes())
    t0 = dt.datetime(2026, 11, 22, 11, 26, tzinfo=dt.timezone.utc)

    def add(ses):
        rid = catalog.start(ses, rel=rel, kind="queue", uniqueid="1795346754.44", started_at=t0,
                            settings=settings, queue="consultation")
        catalog.finalize(ses, rid, inspect_file(settings.directory / rel), t0)
        return rid

    rid = db.call(add)
    web = build(config.with_overrides({"web": {"port": 0}}), db=db).web  # as serve builds it
    await web.start()
    try:
        anon, agent, sup = Browser(web.port), Browser(web.port), Browser(web.port)
        assert (await anon.get("/recordings/"))[0] == 401
        assert await agent.login("agent1") == 303 and await sup.login("sup1") == 303
        assert (await agent.get("/recordings/"))[0] == 403
        assert (await agent.get(f"/recordings/{rid}/audio"))[0] == 403
        status, _h, body = await sup.get("/recordings/")
        assert status == 200 and b"1795346754.44" in body
        status, h, body = await sup.get(f"/recordings/{rid}/audio", {"Range": "bytes=44-143"})
        assert status == 206 and h["content-range"] == "bytes 44-143/22764"
        assert body == PART1.read_bytes()[44:144]
        status, _h, body = await sup.get("/recordings/..%2f..%2fcallcenter.sqlite")
        assert status == 404 and b"SQLite" not in body
    finally:
        await web.stop()
    actions = db.call(lambda s: [(e.actor, e.action) for e in s.scalars(
        select(AuditEntry).where(AuditEntry.object_type == "recording").order_by(AuditEntry.id))])
    assert actions == [("anonymous", "recording.denied"),  # refused requests are audited too
                       ("agent1", "recording.denied"), ("agent1", "recording.denied"), ("sup1", "recording.list"),
                       ("sup1", "recording.play"), ("sup1", "recording.refused")]


async def test_odd_range_and_offset_get_a_4xx_and_are_audited(config, db):
    """Issue 16.7: ``Range: bytes=\\xb2-`` gave a 500 (200 of 200, none audited); a 20-digit
    offset gave a 500 from the database."""
    with db.session() as s:
        s.add(User(username="sup1", display_name="sup1", role="supervisor", interface="", language="en",
                   password_hash=hash_password(PASSWORD, n=2**10), active=True))
    settings = from_config(config)
    rel = "2026/11/22/consultation/1795346754.44.wav"
    (settings.directory / rel).parent.mkdir(parents=True)
    (settings.directory / rel).write_bytes(PART1.read_bytes())
    t0 = dt.datetime(2026, 11, 22, 11, 26, tzinfo=dt.timezone.utc)

    def add(ses):
        rid = catalog.start(ses, rel=rel, kind="queue", uniqueid="1795346754.44", started_at=t0,
                            settings=settings, queue="consultation")
        catalog.finalize(ses, rid, inspect_file(settings.directory / rel), t0)
        return rid

    rid = db.call(add)
    web = build(config.with_overrides({"web": {"port": 0}}), db=db).web  # as serve builds it
    await web.start()
    try:
        sup = Browser(web.port)
        assert await sup.login("sup1") == 303
        for rng in ("bytes=\xb2-", "bytes=-\xb2", "bytes=1-\u0663"[:9]):
            status, _h, _b = await sup.get(f"/recordings/{rid}/audio", {"Range": rng.encode("latin-1", "replace")
                                                                                 .decode("latin-1")})
            assert status == 416, rng
        status, _h, body = await sup.get("/recordings/?offset=99999999999999999999")
        assert status == 400 and b"offset" in body
    finally:
        await web.stop()
    refused = db.call(lambda s: [(e.detail.get("ok"), e.detail.get("reason")) for e in s.scalars(
        select(AuditEntry).where(AuditEntry.action == "recording.play"))])
    assert refused == [(False, "range not satisfiable")] * 3
