"""The administrator's users page over real HTTP: add, change role/phone/language,
disable/enable, new password; admin only, CSRF, audited; the account rules of
``callcenter.web.users`` (shared with ``callcenter users``)."""
from __future__ import annotations

import re

from sqlalchemy import select

from callcenter.store.models import AuditEntry, User

from tests.support.web import Client, add_users, running_web

NEW_PASSWORD = "a much longer secret 9"


async def _admin(port, name="admin1"):
    c = Client(port)
    assert (await c.login(name)).status == 303
    return c, await c.csrf()


def _audit(db, actions):
    q = select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)
    return [(e.actor, e.action, e.object_id, e.detail) for e in db.call(lambda s: list(s.scalars(q)))]


def _error(page: str) -> tuple[str, str]:
    m = re.search(r'id="user-error" data-field="([a-z_]*)">([^<]*)<', page)
    return (m.group(1), m.group(2)) if m else ("", "")


async def test_admin_adds_a_user_who_then_logs_in(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        admin, token = await _admin(web.port)
        page = await admin.get("/admin/users")
        assert page.status == 200 and 'id="user-add"' in page.text and 'data-user="agent1"' in page.text
        form = {"username": "wang.fang", "name": "王芳", "role": "agent", "interface": "PJSIP/1007",
                "language": "zh", "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
        # no CSRF token, a forged one: refused, nothing added
        assert (await admin.post("/admin/users", form)).status == 403
        assert (await admin.post("/admin/users", {**form, "csrf_token": "forged"})).status == 403
        # other roles may not even see the page
        sup = Client(web.port)
        await sup.login("sup1")
        assert (await sup.get("/admin/users")).status == 403
        assert (await sup.post("/admin/users", {**form, "csrf_token": await sup.csrf()})).status == 403
        r = await admin.post("/admin/users", {**form, "csrf_token": token})
        assert r.status == 303 and r.location == "/admin/users"
        page = (await admin.get("/admin/users")).text
        assert 'id="flash"' in page and "User wang.fang added." in page and 'data-user="wang.fang"' in page
        assert 'id="flash"' not in (await admin.get("/admin/users")).text    # once only
        # the same name again: 409, the field named
        r = await admin.post("/admin/users", {**form, "csrf_token": token})
        assert r.status == 409 and _error(r.text) == ("username", "User name: this user name is already taken.")
        # the new user logs in, in their language, with their phone
        new = Client(web.port)
        assert (await new.login("wang.fang", NEW_PASSWORD)).status == 303
        me = (await new.get("/api/me")).json()
        assert (me["role"], me["interface"], me["language"], me["name"]) == ("agent", "PJSIP/1007", "zh", "王芳")
        assert "坐席工作台" in (await new.get("/agent")).text
    row = _audit(db, ("user_add",))
    assert [(a, o, d["role"], d["interface"]) for a, _x, o, d in row] == [("admin1", "wang.fang", "agent", "PJSIP/1007")]


async def test_errors_name_the_field(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        admin, token = await _admin(web.port)
        good = {"csrf_token": token, "username": "li", "role": "agent", "language": "en",
                "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
        for change, field in (({"username": "has space"}, "username"), ({"role": "boss"}, "role"),
                              ({"interface": "1001"}, "interface"), ({"language": "fr"}, "language"),
                              ({"password": "short", "password2": "short"}, "password"),
                              ({"password2": "something else"}, "password"), ({"name": "x" * 129}, "name")):
            r = await admin.post("/admin/users", {**good, **change})
            assert r.status == 400 and _error(r.text)[0] == field, (change, r.text[-400:])
        r = await admin.post("/admin/users", {**good, "interface": "1001"})
        assert _error(r.text)[1] == "Phone: an Asterisk phone such as PJSIP/1001, or empty."
        assert 'value="li"' in r.text                                   # what was typed is kept
        r = await admin.post("/admin/users/agent1/edit", {"csrf_token": token, "role": "agent",
                                                          "interface": "bad phone", "language": "en"})
        assert r.status == 400 and _error(r.text)[0] == "interface"
        r = await admin.post("/admin/users/nobody/disable", {"csrf_token": token})
        assert r.status == 404 and _error(r.text)[0] == "username"
        assert (await admin.post("/admin/users/agent1/explode", {"csrf_token": token})).status == 404
        await admin.post("/language", {"csrf_token": token, "lang": "zh"})
        r = await admin.post("/admin/users", {**good, "interface": "1001"})
        assert _error(r.text)[1] == "分机：须为 Asterisk 分机，例如 PJSIP/1001，或留空。"
    assert db.call(lambda s: s.scalar(select(User).where(User.username == "li"))) is None  # nothing half-made


async def test_change_disable_enable_and_reset_password(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        admin, token = await _admin(web.port)
        agent = Client(web.port)
        await agent.login("agent1")
        assert (await agent.get("/agent")).status == 200
        r = await admin.post("/admin/users/agent1/edit", {"csrf_token": token, "name": "Agent One", "role": "agent",
                                                          "interface": "PJSIP/1001", "language": "zh"})
        assert r.status == 303
        assert "User agent1 saved." in (await admin.get("/admin/users")).text
        assert (await agent.get("/api/me")).json()["interface"] == "PJSIP/1001"   # same session, new phone
        # a new password ends the user's sessions; the old one no longer works, the new one does
        r = await admin.post("/admin/users/agent1/password", {"csrf_token": token, "password": NEW_PASSWORD,
                                                              "password2": NEW_PASSWORD})
        assert r.status == 303
        assert (await agent.get("/api/me")).status == 401
        assert (await Client(web.port).login("agent1")).status == 401
        assert (await agent.login("agent1", NEW_PASSWORD)).status == 303
        # disable: sessions end, login refused; enable: back
        assert (await admin.post("/admin/users/agent1/disable", {"csrf_token": token})).status == 303
        assert (await agent.get("/api/me")).status == 401
        assert (await Client(web.port).login("agent1", NEW_PASSWORD)).status == 401
        assert 'data-user="agent1" class="disabled"' in (await admin.get("/admin/users")).text
        assert (await admin.post("/admin/users/agent1/enable", {"csrf_token": token})).status == 303
        assert (await Client(web.port).login("agent1", NEW_PASSWORD)).status == 303
        # a role change ends the sessions too (what they may open changed)
        r = await admin.post("/admin/users/agent1/edit", {"csrf_token": token, "name": "Agent One",
                                                          "role": "supervisor", "interface": "", "language": "zh"})
        assert r.status == 303 and (await agent.get("/api/me")).status == 401
    rows = _audit(db, ("user_update", "user_passwd", "user_disable", "user_enable"))
    assert [(a, act, o) for a, act, o, _d in rows] == [
        ("admin1", "user_update", "agent1"), ("admin1", "user_passwd", "agent1"),
        ("admin1", "user_disable", "agent1"), ("admin1", "user_enable", "agent1"),
        ("admin1", "user_update", "agent1")]
    assert rows[0][3]["interface"] == {"from": "Local/1001@sim-agent/n", "to": "PJSIP/1001"}
    assert NEW_PASSWORD not in str(rows)


async def test_an_admin_cannot_lock_the_admins_out(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        admin, token = await _admin(web.port)
        page = (await admin.get("/admin/users")).text
        assert 'id="disable-admin1"' not in page                        # not offered for oneself
        r = await admin.post("/admin/users/admin1/disable", {"csrf_token": token})
        assert r.status == 409 and _error(r.text) == ("username", "User name: you cannot disable your own account.")
        r = await admin.post("/admin/users/admin1/edit", {"csrf_token": token, "role": "supervisor",
                                                          "language": "en"})
        assert r.status == 409 and _error(r.text)[0] == "role"
        # with a second admin, the first may be disabled (by the second)
        form = {"csrf_token": token, "username": "admin2", "role": "admin", "language": "en",
                "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
        assert (await admin.post("/admin/users", form)).status == 303
        c2 = Client(web.port)
        assert (await c2.login("admin2", NEW_PASSWORD)).status == 303
        t2 = await c2.csrf()
        assert (await c2.post("/admin/users/admin1/disable", {"csrf_token": t2})).status == 303
        # now admin2 is the last active admin: it cannot be demoted (by itself or anyone)
        r = await c2.post("/admin/users/admin2/edit", {"csrf_token": t2, "role": "agent", "language": "en"})
        assert r.status == 409 and _error(r.text)[0] == "role"
    assert db.call(lambda s: s.scalar(select(User).where(User.username == "admin2")).role) == "admin"
