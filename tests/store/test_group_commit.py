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
