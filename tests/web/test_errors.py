"""Typed errors: one mapping from domain errors to HTTP answers, and the 500s that are now
a clear 4xx/503 (issue 16.7, issue 13 "typed errors with stable codes")."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from twisted.internet.task import Clock

from callcenter import errors
from callcenter.complaints import lifecycle
from callcenter.complaints import service as svc
from callcenter.complaints.forms import FieldErrors

from tests.support.flaky_db import FlakyDatabase
from tests.support.web import Client, FakeQueueCalls, add_users, running_web

WEB = Path(__file__).resolve().parents[2] / "callcenter" / "web"


def test_each_code_has_one_status_and_domain_errors_keep_their_base_classes():
    assert errors.CODES == {"error": 400, "invalid_input": 400, "not_found": 404, "forbidden": 403,
                            "conflict": 409, "unavailable": 503}
    e = svc.ComplaintError("unknown 'food'", field="category")
    assert isinstance(e, ValueError) and e.to_dict() == {
        "error": "Invalid input: category: unknown 'food'", "code": "invalid_input", "status": 400,
        "fields": {"category": "unknown 'food'"}}
    assert isinstance(svc.TicketNotFound("x"), LookupError) and svc.TicketNotFound("x").status == 404
    assert lifecycle.IllegalTransition("closed", "received").code == "conflict"
    assert FieldErrors({"a": "b"}).to_dict()["fields"] == {"a": "b"}


def test_views_catch_domain_errors_only():
    """No view catches a bare ValueError, matches an exception's class name or message text."""
    bad = []
    for path in sorted(WEB.glob("views*.py")):
        text = path.read_text()
        for pattern in (r"except \(?ValueError", r"__name__ ==", r"str\(exc\)\.startswith", r"_FIELD_MSG"):
            if re.search(pattern, text):
                bad.append(f"{path.name}: {pattern}")
    assert bad == []


async def _sup(port):
    c = Client(port)
    assert (await c.login("sup1")).status == 303
    return c, {"X-CSRF-Token": await c.csrf()}


async def test_domain_errors_answer_with_their_code_and_status(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        c, h = await _sup(web.port)
        r = await c.post("/api/complaints", json_body={"summary": "noisy ward"}, headers=h)
        tid = r.json()["id"]
        r = await c.post(f"/api/complaints/{tid}/transition", json_body={"action": "close"}, headers=h)
        assert r.status == 409 and r.json()["code"] == "conflict"
        r = await c.get("/api/complaints/TS-2026-999999")
        assert r.status == 404 and r.json()["code"] == "not_found"
        r = await c.post("/api/complaints", json_body={"summary": "x", "category": "food"}, headers=h)
        assert r.status == 400 and r.json()["code"] == "invalid_input" and "category" in r.json()["fields"]


async def test_huge_offsets_are_a_400_not_a_500(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        c, _ = await _sup(web.port)
        for path in ("/api/complaints?offset=99999999999999999999", "/complaints?offset=99999999999999999999",
                     "/api/complaints?limit=99999999999999999999", "/api/complaints?offset=-1"):
            r = await c.get(path)
            assert r.status == 400, (path, r.status)
        assert (await c.get("/api/complaints?offset=1000000000")).status == 200


async def test_wallboard_answers_503_while_the_database_refuses(config, db, caplog):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls()) as web:
        c, _ = await _sup(web.port)
        assert (await c.get("/api/wallboard")).status == 200
        web.app.db = FlakyDatabase(db, clock, [(clock.seconds() + 10, clock.seconds() + 100)])
        web.app.wallboard._agents = None   # the next snapshot reads the database
        clock.advance(20)
        caplog.set_level(logging.WARNING)
        for _ in range(3):
            r = await c.get("/api/wallboard")
            assert r.status == 503 and r.json()["code"] == "unavailable" and r.headers["retry-after"] == "5"
        page = await c.get("/wallboard")  # a page says it in the reader's language (sup1: zh)
        assert page.status == 503 and "系统暂时无法访问数据库" in page.text, page.text[-400:]
        clock.advance(100)
        assert (await c.get("/api/wallboard")).status == 200
    assert not [rec for rec in caplog.records if rec.exc_info or "never retrieved" in rec.getMessage()]
