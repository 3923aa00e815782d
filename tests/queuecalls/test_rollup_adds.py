"""A write of new calls adds them to the rollups (:mod:`callcenter.queuecalls.rollup_adds`)
instead of recounting their slots: the rows equal a rebuild from the calls after every write,
the slots are not recounted, and a row another writer left marked is recounted as before."""
from __future__ import annotations

import dataclasses
import random

import pytest
from sqlalchemy import insert, select, update

from callcenter.queuecalls import rollup_adds, rollups, store
from callcenter.queuecalls.models import QueueCall, QueueCallGroupRollup, QueueCallRollup

from .test_rollups import T0, _exact, _marks, _rec


def _no_recount(monkeypatch) -> list:
    """``rollups.settle`` made to fail loudly, and every add counted: the add path alone runs."""
    def settle(conn):
        raise AssertionError("the rollups were recounted")
    adds: list[int] = []
    add = rollup_adds.add
    monkeypatch.setattr(rollups, "settle", settle)
    monkeypatch.setattr(rollup_adds, "add", lambda conn, ids: adds.append(add(conn, ids)) or adds[-1])
    return adds


def _batches(rnd: random.Random, n: int, size: int) -> list:
    """Calls crowding a few slots and agent days (each batch adds to rows already there), with
    every kind of outcome, unknown waits, outbound calls, agent names and ratings."""
    t = T0.timestamp() + 9 * 3600
    out = []
    for b in range(n):
        recs = []
        for i in range(size):
            outcome = rnd.choice(["answered", "answered", "abandoned", "timeout", "transferred", "unknown"])
            r = _rec(f"{b}.{i}", t + rnd.choice([0, 60, 899, 900, 86400 - 30, 86400 + 5, 17 * 86400]) + rnd.random(),
                     outcome, wait=rnd.choice([None, 0.0, round(rnd.uniform(0, 90), 3)]),
                     queue=rnd.choice(["consultation", "appts"]), agent=rnd.choice(["PJSIP/1001", "PJSIP/1002"]))
            recs.append(dataclasses.replace(r, agent_name=rnd.choice(["", "Li Na", "Wang Wei"]) if r.agent else ""))
        out.append(recs)
    return out


def test_new_calls_are_added_and_equal_a_rebuild_after_every_write(db, monkeypatch):
    adds = _no_recount(monkeypatch)
    rnd = random.Random(19)
    for recs in _batches(rnd, 8, 30):
        db.call(store.write_batch, recs, 30.0, None, rnd.choice(["default", "east"]))
        _exact(db)  # nothing marked, every row as a recount from the calls gives it
    assert len(adds) == 8 and all(adds)
    crowded = db.call(lambda s: max(len(rollups.unpack(w)) for (w,) in s.execute(select(QueueCallRollup.waits))))
    assert crowded > 20  # rows really were added to, not only made
    assert db.call(lambda s: set(s.scalars(select(QueueCallGroupRollup.agent_name)))) >= {"Li Na", "Wang Wei"}
    kept = db.call(rollups.differences)
    db.call(rollups.rebuild, rollups.Settings(30.0, 5.0))
    assert kept == [] and db.call(rollups.differences) == []


def test_new_calls_whose_ids_are_not_one_run_are_added_by_their_ids(db):
    """A write's own INSERT gives consecutive ids, counted as a range; ids around calls of
    before (here 0 and 5 around 1-3) are counted by their list, or the old ones counted twice."""
    recs = _batches(random.Random(5), 1, 5)[0]
    db.call(store.write_batch, recs[:3], 30.0, None, "default")

    def write(s):
        assert rollup_adds.begin(s)
        conn = s.connection()
        conn.execute(insert(QueueCall), [dict(store.row_of(r, 30.0, "default"), id=i)
                                         for i, r in zip((0, 5), recs[3:])])
        return rollup_adds.add(conn, [0, 5])
    assert db.call(write) > 0
    _exact(db)
    assert db.call(lambda s: sorted(s.scalars(select(QueueCall.id)))) == [0, 1, 2, 3, 5]


@pytest.mark.postgres
def test_a_row_left_marked_by_another_writer_is_recounted_and_the_new_calls_counted(db):
    db.call(store.write_batch, _batches(random.Random(3), 1, 20)[0], 30.0, None, "default")
    _exact(db)
    # a hand-made fix in SQL: marked by the triggers, not recounted
    db.call(lambda s: s.execute(update(QueueCall).where(QueueCall.uniqueid == "0.1")
                                .values(outcome="abandoned", wait_seconds=2.0, agent="")))
    assert _marks(db) > 0 and db.call(rollups.differences) != []
    assert db.call(lambda s: rollup_adds.begin(s)) is False
    more = [dataclasses.replace(r, uniqueid="9." + r.uniqueid) for r in _batches(random.Random(4), 1, 20)[0]]
    db.call(store.write_batch, more, 30.0, None, "default")
    _exact(db)


@pytest.mark.postgres
def test_a_batch_updating_a_stored_call_is_recounted(db, monkeypatch):
    first = _batches(random.Random(5), 1, 10)[0]
    db.call(store.write_batch, first, 30.0, None, "default")
    settled: list[int] = []
    settle = rollups.settle
    monkeypatch.setattr(rollups, "settle", lambda conn: settled.append(settle(conn)) or settled[-1])
    again = [dataclasses.replace(first[0], outcome="answered", wait_seconds=7.0, gap=False),
             _rec("new.1", T0.timestamp() + 9 * 3600, "abandoned", 3.0)]
    db.call(store.write_batch, again, 30.0, None, "default")
    assert settled and settled[-1] > 0
    _exact(db)


@pytest.mark.postgres_only
def test_postgresql_recounts_a_batch_of_new_calls(db, monkeypatch):
    """There a concurrent fix could mark the same row unseen: the writer recounts, exactly."""
    settled: list[int] = []
    settle = rollups.settle
    monkeypatch.setattr(rollups, "settle", lambda conn: settled.append(settle(conn)) or settled[-1])
    db.call(store.write_batch, _batches(random.Random(6), 1, 10)[0], 30.0, None, "default")
    assert settled and settled[-1] > 0
    _exact(db)
