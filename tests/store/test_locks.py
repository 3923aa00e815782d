"""get_for_update: a read-modify-write holds against a concurrent writer on every backend."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from callcenter.store.locks import get_for_update
from callcenter.store.models import User


@pytest.mark.postgres
def test_concurrent_read_modify_write_is_not_lost(db):
    with db.session() as s:
        s.add(User(username="u", password_hash="x", role="agent", display_name="0"))

    def bump(session, tag):
        u = get_for_update(session, User, 1)
        u.display_name = u.display_name + tag

    # A holds the row; B starts its own read-modify-write meanwhile and must wait for A.
    a = db.Session()
    a.begin()
    bump(a, "A")
    b_done = threading.Event()

    def b():
        db.call(bump, "B")
        b_done.set()

    t = threading.Thread(target=b)
    t.start()
    assert not b_done.wait(0.5)  # blocked by A's lock
    a.commit()
    a.close()
    t.join(15)
    assert b_done.is_set()
    with db.session() as s:
        assert s.scalar(select(User.display_name)) == "0AB"  # neither update lost
