"""NUL and other unstorable characters at every boundary; tracebacks and SQL parameters masked
in logs (issue 16.5).  Run on SQLite and PostgreSQL (PostgreSQL is the one that refuses NUL)."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from callcenter.ami.codec import Parser
from callcenter.logs import MaskingFilter
from callcenter.text import clean, unstorable
from ivr_flows.agi import parse_env
from ivr_flows.models import IvrSession

from tests.support.ivr import agi_server, call
from tests.support.web import Client, add_users, running_web


def test_unstorable_names_the_character():
    assert unstorable("ab\x00c") == "contains NUL (U+0000) at position 3"
    assert "lone surrogate" in unstorable("x\ud800")
    assert unstorable("tab\tand\nnewline\r ok 王") is None
    assert clean("138\x000013\x018002") == "13800138002"


@pytest.mark.postgres
async def test_web_refuses_unstorable_text_with_a_400_naming_the_field(config, db):
    add_users(db)
    async with running_web(config, db) as web:
        c = Client(web.port)
        assert (await c.login("sup1")).status == 303
        h = {"X-CSRF-Token": await c.csrf()}
        r = await c.post("/api/complaints", json_body={"summary": "noise\x00", "patient_name": "王\x00"}, headers=h)
        assert r.status == 400 and "NUL" in r.json()["error"] and "summary" in r.json()["error"]
        r = await c.post("/api/complaints", json_body={"summary": "x", "tags": ["a\x00b"]}, headers=h)
        assert r.status == 400 and "tags" in r.json()["error"]
        r = await c.get("/api/patients?number=1380013%008002")
        assert r.status == 400 and "number" in r.json()["error"]
        r = await c.get("/complaints?status=open%00")
        assert r.status == 400
        r = await c.post("/api/import/patients", json_body=[{"patient_id": "P\x001", "name": "王小明",
                                                              "phone": "13800138001"}], headers=h)
        assert r.status == 422 and r.json()["errors"] == [
            {"line": 1, "field": "patient_id", "reason": "contains NUL (U+0000) at position 2"}]
        for body in ([None], [1], ["x"]):
            r = await c.post("/api/import/patients", json_body=body, headers=h)
            assert r.status == 422 and r.json()["errors"][0]["reason"] == "row must be an object", body
        r = await c.post("/api/import/patients", json_body=[{"patient_id": {"a": 1}, "name": ["x"],
                                                              "phone": True}], headers=h)
        assert r.status == 422
        reasons = {e["field"]: e["reason"] for e in r.json()["errors"]}
        assert reasons == {"patient_id": "must be text or a number, not an object",
                           "name": "must be text or a number, not an array",
                           "phone": "must be text or a number, not true/false"}


@pytest.mark.postgres
async def test_nul_in_the_caller_id_keeps_the_ivr_session_row(db):
    async with agi_server(db) as server:
        status, caller = await call(server, number="1380013\x008002", name="王\x00小明", keys=[(1, "2"), (1, "1")])
    with db.session() as s:
        rows = s.scalars(select(IvrSession)).all()
    assert len(rows) == 1 and rows[0].caller_number == "+8613800138002" and rows[0].ended_at is not None


def test_pbx_fields_are_cleaned():
    env = parse_env(b"agi_callerid: 1380013\x008002\nagi_calleridname: \xe7\x8e\x8b\x00\n")
    assert env.get("agi_callerid") == "13800138002" and env.get("agi_calleridname") == "王"
    msgs = Parser().feed(b"Event: QueueCallerJoin\r\nCallerIDNum: 138\x0000138002\r\nCallerIDName: A\x01B\r\n\r\n")
    assert msgs[0]["CallerIDNum"] == "13800138002" and msgs[0]["CallerIDName"] == "AB"


@pytest.mark.postgres
def test_sql_parameters_never_in_an_exception_text(db):
    with pytest.raises(StatementError) as info:
        with db.session() as s:
            s.execute(text("INSERT INTO no_such_table (phone, name) VALUES (:p, :n)"),
                      {"p": "13800138001", "n": "王小明"})
    assert "13800138001" not in str(info.value) and "王小明" not in str(info.value)


def test_tracebacks_are_masked_in_the_log():
    try:
        raise RuntimeError("database is locked [parameters: ('13800138001', 'x')] password=hunter2")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "write failed for %s", ("+86 138 0013 8001",),
                                sys.exc_info())
    MaskingFilter().filter(rec)
    out = logging.Formatter("%(message)s").format(rec)
    assert "13800138001" not in out and "138 0013 8001" not in out and "hunter2" not in out
    assert "*******8001" in out and "Traceback" in out


@pytest.mark.postgres
async def test_nul_in_the_caller_name_keeps_the_voice_message_and_its_ticket(db):
    from callcenter.complaints.models import ComplaintTicket

    from tests.support.ivr import CLOSED

    async with agi_server(db, at=CLOSED) as server:
        _, caller = await call(server, number="13800138002", name="王\x00小明",
                               keys=[(0.5, "1"), (1, "1"), (4, "#")])
        await server.writes.drained()
    [row] = _sessions(db)
    assert row.result == "voicemail" and row.detail.get("ticket_id")   # was: lost on PostgreSQL
    with db.session() as s:
        ticket = s.get(ComplaintTicket, row.detail["ticket_id"])
        assert ticket.patient_name == "王小明" and ticket.channel == "voicemail"


def _sessions(db):
    with db.session() as s:
        return s.scalars(select(IvrSession)).all()
