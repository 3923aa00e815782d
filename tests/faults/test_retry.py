"""The shared retry helper (callcenter/store/retry.py) and the IVR's write lanes on a task.Clock."""
from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from twisted.internet import task

from callcenter.store.retry import retrying
from ivr_flows.writes import SessionWrites

from tests.support.flaky_db import FlakyDatabase


class ScriptedDb:
    """``run`` raises the scripted exceptions in turn, then returns fn's value."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    async def run(self, fn, *args):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return fn(None, *args)


def op_error():
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


async def settle(n=20):
    for _ in range(n):
        await asyncio.sleep(0)


async def test_retrying_backs_off_on_the_clock_and_keeps_the_result():
    clock = task.Clock()
    db = ScriptedDb(op_error(), InterfaceError("connect", {}, Exception("gone")), op_error(), op_error())
    seen = []
    run = asyncio.ensure_future(retrying(db, lambda s, x: x * 2, 21, clock=clock, base_delay=0.125, max_delay=0.5,
                                         on_failure=lambda exc, d: seen.append((type(exc).__name__, d))))
    await settle()
    assert db.calls == 1 and not run.done()
    eps = 1 / 1024  # binary fractions: exact clock arithmetic
    for expected_calls, step in ((2, 0.125), (3, 0.25), (4, 0.5), (5, 0.5)):  # doubling, capped
        clock.advance(step - eps)
        await settle()
        assert db.calls == expected_calls - 1  # not before its delay
        clock.advance(eps)
        await settle()
        assert db.calls == expected_calls
    assert await run == 42
    assert seen == [("OperationalError", 0.125), ("InterfaceError", 0.25), ("OperationalError", 0.5),
                    ("OperationalError", 0.5)]
    assert clock.getDelayedCalls() == []


async def test_retrying_raises_other_errors_and_gives_up_when_told():
    clock = task.Clock()
    db = ScriptedDb(IntegrityError("INSERT", {}, Exception("dup")))
    with pytest.raises(IntegrityError):
        await retrying(db, lambda s: 1, clock=clock)
    assert db.calls == 1
    db = ScriptedDb(op_error(), op_error())
    stopping = {"now": False}
    run = asyncio.ensure_future(retrying(db, lambda s: 1, clock=clock, give_up=lambda: stopping["now"]))
    await settle()
    stopping["now"] = True
    clock.advance(0.1)
    with pytest.raises(OperationalError):
        await run
    assert db.calls == 2 and clock.getDelayedCalls() == []
    # retry_on widens what is retried (the queue-call writer keeps data on any failure)
    db = ScriptedDb(ValueError("x"))
    run = asyncio.ensure_future(retrying(db, lambda s: "ok", clock=clock, retry_on=Exception))
    await settle()
    clock.advance(0.1)
    assert await run == "ok"


def _setup(db):
    with db.session() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS retry_probe (lane INTEGER, seq INTEGER)"))


def _insert(lane, seq):
    def fn(s):
        s.execute(text("INSERT INTO retry_probe (lane, seq) VALUES (:l, :q)"), {"l": lane, "q": seq})
        return seq
    return fn


async def test_lanes_keep_order_through_an_outage_and_never_make_the_caller_wait(db):
    clock = task.Clock()
    clock.advance(1000)
    _setup(db)
    flaky = FlakyDatabase(db, clock, [(1010, 1040)])
    writes = SessionWrites(flaky, clock, base_delay=0.5, max_delay=2.0)
    lanes = [writes.lane() for _ in range(3)]
    first = lanes[0].submit(_insert(0, 0), "probe 0/0")
    assert await writes.wait(first, "default") == 0  # database up: the caller gets the result
    clock.advance(15)  # down now
    handles = [lane.submit(_insert(i, q), f"probe {i}/{q}") for q in range(1, 4) for i, lane in enumerate(lanes)]
    assert await writes.wait(handles[-1], "queued") == "queued"  # no waiting during the outage
    assert writes.down and writes.pending == 9
    for _ in range(80):  # 40 s of outage and recovery, half a second at a time
        clock.advance(0.5)
        await asyncio.sleep(0.002)
        if not writes.pending:
            break
    await writes.drained()
    assert not writes.down and flaky.failures >= 3
    with db.session() as s:
        got = s.execute(text("SELECT lane, seq FROM retry_probe ORDER BY rowid")).all()
    assert sorted(got) == [(0, 0)] + [(i, q) for i in range(3) for q in range(1, 4)]  # each exactly once
    for i in range(3):
        assert [q for lane, q in got if lane == i and q] == [1, 2, 3]  # in order within a lane
    assert [await writes.wait(h) for h in handles] == [q for q in range(1, 4) for _ in range(3)]
    assert await writes.close() == []
    assert clock.getDelayedCalls() == []


async def test_close_flushes_what_it_can_and_logs_the_rest_masked(db, caplog):
    clock = task.Clock()
    clock.advance(1000)
    _setup(db)
    flaky = FlakyDatabase(db, clock, [(1000, 2000)])
    writes = SessionWrites(flaky, clock)
    lane = writes.lane()
    lane.submit(_insert(7, 1), "callback request (hotline, caller *******8002)")
    lane.submit(_insert(7, 2), "IVR session end (hotline, caller *******8002)")
    await settle()
    assert writes.down
    with caplog.at_level(logging.ERROR, logger="ivr_flows.writes"):
        lost = await writes.close(timeout=5)
    assert lost == ["callback request (hotline, caller *******8002)",
                    "IVR session end (hotline, caller *******8002)"]
    assert "2 database write(s) not stored at shutdown" in caplog.text and "13800138002" not in caplog.text
    assert clock.getDelayedCalls() == []
    # the database back at shutdown: what is queued is written, in order
    flaky.windows = []
    writes = SessionWrites(flaky, clock)
    lane = writes.lane()
    flaky.windows = [(1000, 2000)]
    lane.submit(_insert(8, 1), "a")
    lane.submit(_insert(8, 2), "b")
    await settle()
    flaky.windows = []
    assert await writes.close(timeout=5) == []
    with db.session() as s:
        assert s.execute(text("SELECT seq FROM retry_probe WHERE lane = 8 ORDER BY rowid")).scalars().all() == [1, 2]


async def test_a_write_wakes_every_caller_waiting_on_it_and_a_bad_write_does_not_stop_its_lane(db, caplog):
    clock = task.Clock()
    clock.advance(1000)
    _setup(db)
    writes = SessionWrites(db, clock)
    lane = writes.lane()

    def bad(s):
        raise ValueError("bad caller data")
    first = lane.submit(_insert(9, 1), "a")
    broken = lane.submit(bad, "b")
    last = lane.submit(_insert(9, 3), "c")
    assert await asyncio.gather(writes.wait(first), writes.wait(first), writes.wait(last)) == [1, 1, 3]
    with pytest.raises(ValueError, match="bad caller data"):
        await writes.wait(broken)
    assert "IVR: b failed" in caplog.text  # nobody was waiting when it failed: logged
    assert writes.pending == 0 and writes.written == 2 and not writes.lanes
    with db.session() as s:
        assert s.execute(text("SELECT seq FROM retry_probe WHERE lane = 9 ORDER BY rowid")).scalars().all() == [1, 3]
    assert await writes.close() == [] and clock.getDelayedCalls() == []
