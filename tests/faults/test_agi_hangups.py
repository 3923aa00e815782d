"""FastAGI callers hanging up at every step of the hotline flow, over real TCP.

For each path through ``hotline`` (consultation, appointments, complaint, callback,
operator, and after hours: voice message for a complaint / with a callback), a full
call is run once to count its AGI commands; then the call is repeated with the caller
hanging up just before command 1, 2, ... N (so every command meets a dead channel:
unsolicited ``HANGUP``/511).  After each: the session ended, exactly one complete
``ivr_sessions`` row was written, no server exception was logged, and no side effect
(callback request, complaint ticket, recording) was made twice.
"""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import func, select

from callcenter.simulator import agi_client
from ivr_flows.models import IvrSession

from tests.support.ivr import CLOSED, OPEN, agi_server, call

PATHS = {  # name -> (time, caller keys)
    "consultation": (OPEN, [(0.3, "1"), (0.3, "1")]),
    "appointment": (OPEN, [(0.3, "2"), (0.3, "2"), (0.3, "1")]),
    "complaint": (OPEN, [(0.3, "1"), (0.3, "3"), (0.3, "1")]),
    "callback": (OPEN, [(0.3, "1"), (0.3, "4")]),
    "operator": (OPEN, [(0.3, "1"), (0.3, "0")]),
    "after_hours_complaint": (CLOSED, [(0.3, "1"), (0.3, "1"), (3.0, "#")]),
    "after_hours_callback": (CLOSED, [(0.3, "1"), (0.3, "2"), (3.0, "#")]),
}


class Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def side_effects(db) -> dict[str, int]:
    from callcenter.complaints.models import ComplaintTicket as Ticket
    from dialer.models import Contact
    from recordings.models import Recording

    out = {}
    with db.session() as s:
        for name, model in (("contacts", Contact), ("tickets", Ticket), ("recordings", Recording)):
            out[name] = s.scalar(select(func.count()).select_from(model))
    return out


@pytest.mark.timeout(120)
async def test_hangup_at_every_agi_step(db, monkeypatch):
    orig = agi_client.AgiSession.execute
    plan = {"at": None}
    counts: list[int] = []

    async def execute(self, line):
        n = getattr(self, "_fault_n", 0) + 1
        self._fault_n = n
        counts[-1] = n
        if plan["at"] is not None and n == plan["at"]:
            self.ch.hangup()  # the caller is gone just before this command
        return await orig(self, line)

    monkeypatch.setattr(agi_client.AgiSession, "execute", execute)
    errors = Errors()
    logging.getLogger("ivr_flows").addHandler(errors)
    figures: dict[str, dict] = {}
    runs = 0
    try:
        for p, (name, (at, keys)) in enumerate(PATHS.items()):
            uid = lambda k: f"{1795346000 + p * 100 + k}.{k}"  # noqa: E731 - Asterisk-like, unique
            async with agi_server(db, at=at) as server:
                plan["at"] = None
                counts.append(0)
                status, caller = await call(server, keys=list(keys), uniqueid=uid(0))
                full = counts[-1]
                runs += 1
                assert full >= 3, (name, full)
                results = {}
                for k in range(1, full + 1):
                    plan["at"] = k
                    counts.append(0)
                    before = side_effects(db)
                    status, caller = await call(server, keys=list(keys), uniqueid=uid(k))
                    runs += 1
                    after = side_effects(db)
                    assert status == "HANGUP", (name, k, status)
                    assert all(after[x] - before[x] <= 1 for x in after), (name, k, before, after)
                    with db.session() as s:
                        row = s.scalar(select(IvrSession).where(IvrSession.uniqueid == uid(k)))
                    assert row is not None and row.ended_at is not None and row.result, (name, k)
                    results[row.result] = results.get(row.result, 0) + 1
                figures[name] = {"commands": full, "hangup_points": full, "results": results}
    finally:
        logging.getLogger("ivr_flows").removeHandler(errors)
    with db.session() as s:
        rows = list(s.scalars(select(IvrSession)))
    assert len(rows) == runs  # one row per call, none lost, none doubled
    assert all(r.ended_at is not None and r.result for r in rows)
    assert not errors.records, [r.getMessage() for r in errors.records][:5]
    print("\nFIGURES agi_hangups: " + json.dumps({"calls": runs, "paths": figures}))
