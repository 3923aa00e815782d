"""A withheld caller ID pressing "call me back" (issue 16.8): the flow asks for a number and
stores the request with it, or says a callback is not possible; nothing is confirmed that
is not stored."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from dialer.models import Contact
from ivr_flows.engine import callable_number
from ivr_flows.models import IvrSession

from tests.support.ivr import agi_server, call

WITHHELD = ["", "unknown", "anonymous", "Restricted", "+", "0"]
MENU = [(1, "2"), (1, "4")]          # English, then 4 = call me back


def _contacts(db):
    with db.session() as s:
        return [(c.phone, c.reason) for c in s.scalars(select(Contact))]


def _session(db):
    with db.session() as s:
        return s.scalars(select(IvrSession)).one()


def test_withheld_caller_ids_are_not_callable():
    assert not any(callable_number(n) for n in WITHHELD)
    assert callable_number("13800138002") and callable_number("+8613800138002")


@pytest.mark.parametrize("withheld", WITHHELD)
async def test_withheld_number_is_asked_for_and_stored(db, withheld, caplog):
    digits = [(0.3, d) for d in "13800138009#"]
    async with agi_server(db) as server:
        status, caller = await call(server, number=withheld, name="", keys=MENU + digits)
        await server.writes.drained()
    assert _contacts(db) == [("+8613800138009", "callback requested in the hotline IVR")]
    assert "callcenter/en/hotline/callback_enter_number" in caller.played
    assert "callcenter/en/hotline/callback_confirm" in caller.played
    row = _session(db)
    assert row.result == "callback" and row.detail["callback_number"] == "entered"
    assert "13800138009" not in row.digits          # the number is not kept as menu digits
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("withheld", ["", "anonymous", "0"])
async def test_no_usable_number_says_a_callback_is_not_possible(db, withheld, caplog):
    tries = [(0.3, "1"), (0.3, "#"), (0.3, "#"), (0.3, "#")]   # "1#" is too short, then nothing
    async with agi_server(db) as server:
        status, caller = await call(server, number=withheld, name="", keys=MENU + tries)
        await server.writes.drained()
    assert _contacts(db) == []
    assert "callcenter/en/hotline/callback_confirm" not in caller.played   # was: confirmed, nothing stored
    assert "callcenter/en/hotline/callback_unavailable" in caller.played
    row = _session(db)
    assert row.result == "transfer:operator" or row.path[-1] == "operator"
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.postgres
async def test_a_number_the_dialer_refuses_is_not_confirmed(db, caplog):
    """Digits that look like a number but are none (phonenumbers says so): not stored, not confirmed."""
    digits = [(0.3, d) for d in "999999#"]
    async with agi_server(db) as server:
        status, caller = await call(server, number="anonymous", name="", keys=MENU + digits)
        await server.writes.drained()
    assert _contacts(db) == []
    assert "callcenter/en/hotline/callback_confirm" not in caller.played
    assert "callcenter/en/hotline/callback_unavailable" in caller.played
    assert _session(db).result.startswith("transfer") or _session(db).path[-1] == "operator"
    assert not [r for r in caplog.records if r.exc_info]
