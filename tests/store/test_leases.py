"""The advisory-lock lease of an Asterisk server (callcenter/leases.py) on PostgreSQL.

Two leases of the same server, each on its own session, as two instances would hold
them: one consumes, the other is the standby.  When the active one's lock session is
ended by PostgreSQL (``pg_terminate_backend``: what a dead peer or a dropped link leads
to) it stops consuming at its next check, and the standby takes the lock at its next
poll.  The sites are plain recorders here: what a site does is tested with the product.
"""
from __future__ import annotations

import psycopg
import pytest
from twisted.internet import reactor

from callcenter.clock import ScaledClock
from callcenter.leases import ServerLease, libpq_dsn, lock_key
from callcenter.sites import Site, Sites
from tests.support.waiting import until


class Part:
    def __init__(self, name: str, events: list):
        self.name, self.events = name, events
        self.connected = False

    async def start(self):
        self.events.append(("start", self.name))

    async def stop(self):
        self.events.append(("stop", self.name))


class Recorder(Part):
    """Stands for a gateway and a tracker: what ``Sites.attach`` hands subscribers to."""

    def subscribe(self, *a):
        pass

    def unsubscribe(self, *a):
        pass

    def on_connect(self, *a):
        pass

    def on_disconnect(self, *a):
        pass


def test_lock_keys_are_stable_and_per_server():
    assert lock_key("north") == lock_key("north") != lock_key("south")
    assert -(2 ** 63) <= lock_key("default") < 2 ** 63
    assert libpq_dsn("postgresql+psycopg://u:p@h:5/db") == "postgresql://u:p@h:5/db"


@pytest.mark.postgres_only
@pytest.mark.timeout(30)
async def test_the_standby_takes_over_when_the_active_lock_session_ends(db_url):
    clock = ScaledClock(reactor, 10)  # a 1 s poll is 0.1 s here
    events: list = []

    def lease(label: str) -> ServerLease:
        def make():
            return Site("north", Recorder(f"{label}.ami", events), Recorder(f"{label}.queuecalls", events))
        return ServerLease("north", dsn=libpq_dsn(db_url), make_site=make, sites=Sites(["north"]), clock=clock,
                           poll=1.0, label=f"test {label}")

    a, b = lease("a"), lease("b")
    await a.start()
    await b.start()
    try:
        assert a.holding and not b.holding and sorted(a.sites.active) == ["north"] and not b.sites.active
        assert events == [("start", "a.ami"), ("start", "a.queuecalls")]
        # PostgreSQL drops a lock session whose host vanished without closing it in ~10 s, not hours
        assert a._conn._conn.execute("SHOW tcp_keepalives_idle").fetchone() == ("5",)
        with psycopg.connect(libpq_dsn(db_url), autocommit=True) as admin:
            (pid,) = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'test a'").fetchone()
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await until(lambda: b.holding, "the standby took the lock", limit=10)
        assert not a.holding and not a.sites.active  # it stopped consuming: the lock may be b's now
        assert ("stop", "a.queuecalls") in events  # (within one poll of b's start: either may be first)
        assert a.takeovers == 1 and b.takeovers == 1
        await until(lambda: a._told_standby, "the old active one polls again as a standby", limit=10)
    finally:
        await b.stop()
        await a.stop()
    assert events[-2:] == [("stop", "b.queuecalls"), ("stop", "b.ami")]
