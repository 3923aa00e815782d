"""GroupCommit: concurrent writes share transactions; one bad write loses nobody else's."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from callcenter.store.group_commit import GroupCommit
from callcenter.store.models import User


def _add(name: str):
    def write(s):
        u = User(username=name, password_hash="x", role="agent", display_name=name)
        s.add(u)
        s.flush()
        return u.id
    return write


def _count(s):
    return s.scalar(select(func.count()).select_from(User))


@pytest.mark.postgres
async def test_a_burst_of_writes_is_a_few_transactions_each_with_its_own_result(db):
    group = GroupCommit(db)
    ids = await asyncio.gather(*(group.run(_add(f"u{i}")) for i in range(300)))
    assert len(set(ids)) == 300
    assert group.transactions <= 3  # 256 a transaction at most; was 300 transactions
    assert await db.run(_count) == 300


@pytest.mark.postgres
async def test_a_failing_write_is_taken_out_and_the_others_are_committed(db):
    group = GroupCommit(db)

    def broken(s):
        raise ValueError("bad caller data")
    futs = [group.run(_add("a")), group.run(broken), group.run(_add("b")), group.run(_add("a"))]
    got = await asyncio.gather(*futs, return_exceptions=True)
    assert isinstance(got[0], int) and isinstance(got[2], int)
    assert isinstance(got[1], ValueError)
    assert isinstance(got[3], IntegrityError)  # the duplicate user name is its own failure
    with db.session() as s:
        assert sorted(s.scalars(select(User.username))) == ["a", "b"]


async def test_an_unavailable_database_fails_every_write_of_the_transaction(db):
    group = GroupCommit(db)

    def down(s):
        raise OperationalError("INSERT", {}, Exception("database is locked"))
    got = await asyncio.gather(group.run(_add("a")), group.run(down), return_exceptions=True)
    assert all(isinstance(g, OperationalError) for g in got)
    assert await db.run(_count) == 0  # nothing half-written: the caller retries both
    assert await group.run(_add("a")) and await db.run(_count) == 1


def _add_many(s, names: list[str]) -> list[int]:
    calls.append(list(names))
    users = [User(username=n, password_hash="x", role="agent", display_name=n) for n in names]
    s.add_all(users)
    s.flush()
    return [u.id for u in users]


calls: list[list[str]] = []


@pytest.mark.postgres
async def test_items_of_one_kind_share_a_call_and_each_gets_its_own_result(db):
    calls.clear()
    group = GroupCommit(db)
    plain = group.run(_add("solo"))
    ids = await asyncio.gather(*(group.run_many(_add_many, f"m{i}") for i in range(5)))
    assert calls == [[f"m{i}" for i in range(5)]]  # one call for the five, in order
    assert len(set(ids)) == 5 and await plain not in ids
    assert group.transactions == 1
    with db.session() as s:
        got = {u.username: u.id for u in s.scalars(select(User))}
    assert [got[f"m{i}"] for i in range(5)] == ids


@pytest.mark.postgres
async def test_a_failing_call_of_many_runs_each_item_alone_so_only_the_bad_one_fails(db):
    calls.clear()
    group = GroupCommit(db)
    await group.run(_add("taken"))
    got = await asyncio.gather(*(group.run_many(_add_many, n) for n in ("a", "taken", "b")),
                               return_exceptions=True)
    assert isinstance(got[0], int) and isinstance(got[2], int)
    assert isinstance(got[1], IntegrityError)  # the duplicate name, alone
    # together once; then alone: "a", "taken" (fails), and the rest again without it
    assert calls == [["a", "taken", "b"], ["a"], ["taken"], ["a"], ["b"]]
    with db.session() as s:
        assert sorted(s.scalars(select(User.username))) == ["a", "b", "taken"]


async def test_a_call_of_many_must_answer_for_every_item(db):
    group = GroupCommit(db)
    got = await asyncio.gather(*(group.run_many(lambda s, items: [], i) for i in range(2)),
                               return_exceptions=True)
    assert all(isinstance(g, ValueError) for g in got)


def _add_core(name: str):
    def write(conn):
        from sqlalchemy import Connection, insert
        assert isinstance(conn, Connection)  # a Core write gets a connection, never a session
        return conn.execute(insert(User.__table__).values(username=name, password_hash="x", role="agent",
                                                          display_name=name)).inserted_primary_key[0]
    return write


class _Counting:
    """The database, counting how its transactions were opened (with or without a Session)."""

    def __init__(self, db):
        self._db, self.kinds = db, []

    def submit(self, fn, *args, connection=False, **kw):
        self.kinds.append("connection" if connection else "session")
        return self._db.submit(fn, *args, connection=connection, **kw)


@pytest.mark.postgres
async def test_core_writes_run_without_a_session_and_share_one_with_orm_writes(db):
    counting = _Counting(db)
    group = GroupCommit(counting)
    ids = await asyncio.gather(*(group.run(_add_core(f"c{i}"), connection=True) for i in range(20)))
    assert len(set(ids)) == 20 and counting.kinds == ["connection"]  # one transaction, no ORM session
    # mixed: the Core writes get the session's connection, all in one transaction
    got = await asyncio.gather(group.run(_add_core("m0"), connection=True), group.run(_add("m1")),
                               group.run(_add_core("m2"), connection=True))
    assert counting.kinds == ["connection", "session"] and len(set(got)) == 3
    assert await db.run(_count) == 23


@pytest.mark.postgres
async def test_a_failing_core_write_is_taken_out_and_the_others_are_committed(db):
    group = GroupCommit(db)
    futs = [group.run(_add_core("a"), connection=True), group.run(_add_core("a"), connection=True),
            group.run(_add_core("b"), connection=True)]
    got = await asyncio.gather(*futs, return_exceptions=True)
    assert isinstance(got[0], int) and isinstance(got[2], int)
    assert isinstance(got[1], IntegrityError)  # the duplicate, on its own
    with db.session() as s:
        assert sorted(s.scalars(select(User.username))) == ["a", "b"]


async def test_with_a_gap_a_write_after_a_quiet_spell_goes_at_once_and_the_next_ones_wait_together(db):
    """``gap``: the start of one transaction to the next (writes nobody waits on at once);
    what is queued meanwhile goes in one transaction, not one a landing.  (Loop turns and
    lower bounds only: nothing here depends on how loaded the machine is.)"""
    loop = asyncio.get_running_loop()
    sent = []

    class Timed:
        def __getattr__(self, name):
            return getattr(db, name)

        def submit(self, fn, *args, **kw):
            sent.append(loop.time())
            return db.submit(fn, *args, **kw)
    group = GroupCommit(Timed(), gap=0.2)
    first = group.run(_add("first"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(sent) == 1                                # after a quiet spell: sent at once
    await first
    later = []
    for i in range(5):                                   # five writes, one after another
        later.append(group.run(_add(f"u{i}")))
        await asyncio.sleep(0.01)
    await asyncio.gather(*later)
    assert group.transactions == 2 and len(sent) == 2    # the five together
    assert sent[1] - sent[0] >= 0.2                      # ... once the gap had passed
    assert await db.run(_count) == 6
    await group.close()
