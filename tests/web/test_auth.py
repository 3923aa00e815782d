"""Login, sessions, CSRF, rate limiting, security headers and the authorisation matrix.

All over real HTTP on a TCP port; session expiry and lockouts on an injected clock.
"""
from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from callcenter.web.http import ANY, SUPERVISORS
from callcenter.web.passwords import hash_password, verify_password
from callcenter.web.routes import ROUTES

from tests.support.web import FakeGateway, FakeQueueCalls, Client, add_users, running_web, SSEClient

ROLE_USER = {"agent": "agent1", "supervisor": "sup1", "admin": "admin1"}


def concrete(path: str, route) -> str:
    for name, values in route.enums.items():
        path = path.replace("{" + name + "}", values[0])
    return path.replace("{name}", "app.css").replace("{id}", "1")


def test_password_hash_salted_and_verified():
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("s3cret-pass", a) and not verify_password("s3cret-Pass", a)
    assert not verify_password("x", "garbage") and not verify_password("x", "md5$1$2$3$4$5")


def test_only_login_and_static_are_public():
    public = {(r.method, r.path) for r in ROUTES if r.roles is None}
    assert public == {("GET", "/login"), ("POST", "/login"), ("GET", "/static/{name}")}
    from callcenter.web.views_ops import routes as ops_routes

    ops = {(r.method, r.path): r.roles for r in ops_routes(metrics=None)}  # the product adds these
    assert ops == {("GET", "/healthz"): None, ("GET", "/readyz"): None, ("GET", "/metrics"): SUPERVISORS}


async def test_authorisation_matrix(config, db):
    """Every non-public route: anonymous -> login redirect (pages) or 401; wrong role -> 403;
    right role -> neither."""
    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls(), gateway=FakeGateway()) as web:
        clients = {}
        for role, user in ROLE_USER.items():
            clients[role] = Client(web.port)
            assert (await clients[role].login(user)).status == 303
        anon = Client(web.port)
        checked = 0
        routes = web.app.routes  # the app's one table: recordings' routes included
        assert {"/recordings/", "/recordings/{id}/audio"} <= {r.path for r in routes}
        for route in routes:
            if route.roles is None:
                continue
            path = concrete(route.path, route)
            if route.method == "GET":
                r = await anon.get(path)
            else:
                r = await anon.post(path, {"csrf_token": "x"})
            if route.kind == "page":
                assert r.status == 303 and r.location.startswith("/login?next="), (route.path, r.status)
            else:
                assert r.status == 401, (route.path, r.status)
            for role, client in clients.items():
                if route.method == "POST":
                    r = await client.post(path, {"csrf_token": await client.csrf()})
                elif route.kind == "sse":
                    if role in route.roles:
                        sse = await SSEClient.open(web.port, path, client.cookies)
                        assert sse.status == 200
                        assert sse.headers["content-type"].startswith("text/event-stream")
                        sse.close()
                        checked += 1
                        continue
                    r = await client.get(path)
                else:
                    r = await client.get(path)
                if role in route.roles:
                    assert r.status not in (401, 403), (route.path, role, r.status)
                else:
                    assert r.status == 403, (route.path, role, r.status)
                checked += 1
                if route.path == "/logout":
                    assert (await client.login(ROLE_USER[role])).status == 303
        assert checked == 3 * len([r for r in routes if r.roles is not None])
    from callcenter.store.models import AuditEntry

    with db.session() as s:  # refusals of audited routes are in the audit log
        denied = {(a.actor, a.action) for a in s.query(AuditEntry).filter(AuditEntry.action == "recording.denied")}
    assert {("anonymous", "recording.denied"), ("agent1", "recording.denied")} <= denied


async def test_unknown_path_404_and_wrong_method_405(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        c = Client(web.port)
        await c.login("sup1")
        assert (await c.get("/nope")).status == 404
        assert (await c.get("/api/nope")).status == 404
        assert (await c.post("/wallboard", {"csrf_token": await c.csrf()})).status == 405
        assert (await c.get("/api/reports/not-a-report")).status == 404


async def test_login_logout_and_csrf(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        c = Client(web.port)
        # login form without its double-submit token is refused
        r = await c.post("/login", {"username": "sup1", "password": "correct horse 1"})
        assert r.status == 403 and "cc_session" not in c.cookies
        r = await c.login("sup1", "wrong password")
        assert r.status == 401 and "用户名或密码错误" in r.text  # default language: [hospital] language
        r = await c.login("sup1")
        assert r.status == 303 and r.location == "/wallboard"
        old = dict(c.cookies)
        # POST without or with a wrong CSRF token: 403, session still valid
        assert (await c.post("/logout")).status == 403
        assert (await c.post("/logout", {"csrf_token": "forged"})).status == 403
        assert (await c.post("/logout", headers={"X-CSRF-Token": "forged"})).status == 403
        assert (await c.get("/api/me")).status == 200
        # JSON API POSTs carry it in a header
        token = await c.csrf()
        r = await c.post("/logout", headers={"X-CSRF-Token": token})
        assert r.status == 303 and r.location == "/login"
        # the old cookie no longer opens anything: sessions end server-side
        replay = Client(web.port, cookies=old)
        assert (await replay.get("/api/me")).status == 401


async def test_next_parameter_is_local_only(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        c = Client(web.port)
        form = await c.get("/login?next=//evil.example/x")
        import re

        token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
        r = await c.post("/login", {"username": "sup1", "password": "correct horse 1",
                                    "login_token": token, "next": "//evil.example/x"})
        assert r.status == 303 and r.location == "/wallboard"


HOSTILE_NEXT = ["/\t/evil.example", "/%09/evil.example", "/\n/evil.example", "/\r\n/evil.example",
                "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "//evil.example", " //evil.example",
                "\t//evil.example", "https://evil.example/", "http:/evil.example", "/\x00/evil.example",
                "/\x7f/evil.example", "javascript:alert(1)", "evil.example", "/login"]


def test_safe_next_accepts_only_same_origin_paths():
    from callcenter.web.views import _safe_next

    for target in HOSTILE_NEXT:
        assert _safe_next(target, "supervisor") == "/wallboard", repr(target)
    assert _safe_next("/reports?from=2026-11-01&to=2026-11-07", "supervisor") == \
        "/reports?from=2026-11-01&to=2026-11-07"
    assert _safe_next("/complaints/TS-2026-000001#x", "agent") == "/complaints/TS-2026-000001#x"
    assert _safe_next("/投诉", "agent") == "/%E6%8A%95%E8%AF%89"   # a Location header is ASCII


async def test_next_is_same_origin_after_login_and_when_already_logged_in(config, db):
    from urllib.parse import quote

    add_users(db)
    async with running_web(config, db) as web:
        c = Client(web.port)
        for target in HOSTILE_NEXT:
            form = await c.get("/login?next=" + quote(target))
            if form.status == 400:   # a NUL or control character: refused at the boundary already
                assert "location" not in form.headers and any(ch < " " for ch in target), target
                continue
            import re

            token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
            r = await c.post("/login", {"username": "sup1", "password": "correct horse 1",
                                        "login_token": token, "next": target})
            assert r.status == 303 and r.location == "/wallboard", (target, r.location)
            r = await c.get("/login?next=" + quote(target))   # already logged in: redirected at once
            assert r.status == 303 and r.location == "/wallboard", (target, r.location)
            c.cookies.clear()


async def test_session_expires_on_the_injected_clock(config, db):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock) as web:
        c = Client(web.port)
        await c.login("sup1")
        assert (await c.get("/wallboard")).status == 200
        clock.advance(config.web.session_hours * 3600 - 1)
        assert (await c.get("/api/wallboard")).status == 200
        clock.advance(2)
        r = await c.get("/wallboard")
        assert r.status == 303 and r.location.startswith("/login")
        assert (await c.get("/api/wallboard")).status == 401


async def test_login_rate_limit(config, db):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock) as web:
        c = Client(web.port)
        for _ in range(5):
            assert (await c.login("sup1", "wrong password")).status == 401
        r = await c.login("sup1")  # even the right password is refused while locked
        assert r.status == 429 and int(r.headers["retry-after"]) > 0
        other = Client(web.port)
        assert (await other.login("agent1")).status == 303  # other users are not locked out
        clock.advance(301)
        assert (await c.login("sup1")).status == 303


async def test_security_headers(config, db):
    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        for path in ("/login", "/static/app.js", "/nope"):
            r = await c.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
        await c.login("agent1")
        for path in ("/agent", "/api/patients?number=13800138001", "/api/agent/status"):
            r = await c.get(path)
            assert r.status == 200, path
            assert r.headers["cache-control"] == "no-store", path
        fresh = Client(web.port)
        r = await fresh.get("/login")
        cookie_header = r.headers["set-cookie"]
        assert "HttpOnly" in cookie_header and "SameSite=Strict" in cookie_header


async def test_language_switch(config, db):
    add_users(db)
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        assert "Live wallboard" in (await c.get("/wallboard")).text
        r = await c.post("/language", {"csrf_token": await c.csrf(), "lang": "zh", "back": "/wallboard"})
        assert r.status == 303 and r.location == "/wallboard"
        page = (await c.get("/wallboard")).text
        assert "实时监控大屏" in page and 'lang="zh-CN"' in page
        assert (await c.post("/language", {"csrf_token": await c.csrf(), "lang": "fr"})).status == 400
        # the login page follows ?lang= for anonymous visitors
        assert "登录" in (await Client(web.port).get("/login?lang=zh")).text
