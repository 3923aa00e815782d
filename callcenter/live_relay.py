"""Live queues across instances: PostgreSQL ``LISTEN/NOTIFY`` (several instances only).

The instance consuming an Asterisk server publishes that server's live queues (its
tracker's ``live()``) to ``live_snapshots`` and, in the same transaction,
``pg_notify('callcenter_live', server)`` — coalesced to one write per ``coalesce``
seconds while calls change, and every ``heartbeat`` seconds on a quiet line (waits grow).
Every instance LISTENs on a connection of its own; a notification for a server it does not
consume reads the row into :class:`~callcenter.sites.Sites` ``remote``, and the wallboard
refreshes (:class:`~callcenter.sites.RemoteLive`).  So a standby's wallboard shows the
active one's callers and agents.  A snapshot older than ``max_age`` is dropped: its
publisher is gone, and the board says nothing rather than something stale.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .clock import sleep
from .queuecalls.models import LiveSnapshot
from .sites import RemoteLive, Sites

log = logging.getLogger(__name__)

CHANNEL = "callcenter_live"


def publish(session: Any, server: str, body: str, at: float) -> None:
    """Upsert ``server``'s snapshot and notify every listener when this commits."""
    when = dt.datetime.fromtimestamp(at, dt.timezone.utc)
    session.execute(pg_insert(LiveSnapshot).values(server=server, body=body, at=when)
                    .on_conflict_do_update(index_elements=["server"], set_={"body": body, "at": when}))
    session.execute(text("SELECT pg_notify(:channel, :server)"), {"channel": CHANNEL, "server": server})


def snapshots(session: Any, servers: list[str]) -> dict[str, tuple[str, float]]:
    rows = session.execute(select(LiveSnapshot.server, LiveSnapshot.body, LiveSnapshot.at)
                           .where(LiveSnapshot.server.in_(servers)))
    return {server: (body, at.timestamp()) for server, body, at in rows}


class LiveRelay:
    name = "live relay"

    def __init__(self, sites: Sites, *, db: Any, clock: Any, dsn: str, coalesce: float = 0.5,
                 heartbeat: float = 5.0, max_age: float = 15.0):
        self.sites, self.db, self.clock, self.dsn = sites, db, clock, dsn
        self.coalesce, self.heartbeat, self.max_age = coalesce, heartbeat, max_age
        self.published = 0
        self.heard = 0
        self._pending: asyncio.Task | None = None
        self._beat: asyncio.Task | None = None
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._written: dict[str, int] = {}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self.sites.queues.subscribe(self._changed)
        ready = threading.Event()
        self._listener = threading.Thread(target=self._listen, args=(ready,), name="live-relay-listen", daemon=True)
        self._listener.start()
        await asyncio.to_thread(ready.wait, 10)
        for server in await self.db.run(lambda s: list(snapshots(s, self.sites.servers))):
            self._heard(server)
        self._beat = asyncio.ensure_future(self._heartbeat())

    async def stop(self) -> None:
        self._stop.set()
        for task in (self._beat, self._pending):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)

    # -- publishing what this instance consumes ----------------------------------------------
    def _changed(self, fact: Any = None) -> None:
        if isinstance(fact, RemoteLive):
            return  # another instance's news: not ours to publish
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._publish_later())

    async def _publish_later(self) -> None:
        await sleep(self.clock, self.coalesce)
        await self._publish()

    async def _publish(self) -> None:
        for server, site in list(self.sites.active.items()):
            tracker = site.queuecalls
            body = json.dumps({"live": tracker.live(), "written": tracker.written + len(tracker.buffer)})
            try:
                await self.db.run(publish, server, body, self.clock.seconds())
                self.published += 1
            except Exception as exc:  # noqa: BLE001 - the next change or heartbeat tries again
                log.warning("live relay: cannot publish %s (%s)", server, exc.__class__.__name__)

    async def _heartbeat(self) -> None:
        while True:
            await sleep(self.clock, self.heartbeat)
            await self._publish()
            now = self.clock.seconds()
            for server, (_, at, _) in list(self.sites.remote.items()):
                if now - at > self.max_age:
                    self.sites.drop_remote(server)

    # -- hearing what the others consume --------------------------------------------------------
    def _listen(self, ready: threading.Event) -> None:
        """Blocking, on its own thread: LISTEN, hand each notification to the loop."""
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, application_name="callcenter live relay",
                                     connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.5):
                            self._loop.call_soon_threadsafe(self._heard, n.payload)
            except Exception as exc:  # noqa: BLE001 - reconnect; the heartbeat refreshes what was missed
                log.warning("live relay: LISTEN connection failed (%s); again in 2 s", exc.__class__.__name__)
                ready.set()
                self._stop.wait(2)

    def _heard(self, server: str) -> None:
        self.heard += 1
        if server in self.sites.active or server not in self.sites.servers:
            return
        asyncio.ensure_future(self._fetch(server))

    async def _fetch(self, server: str) -> None:
        try:
            got = (await self.db.run(snapshots, [server])).get(server)
        except Exception as exc:  # noqa: BLE001
            log.warning("live relay: cannot read %s (%s)", server, exc.__class__.__name__)
            return
        if got is None or server in self.sites.active:
            return
        body, at = got
        if self.clock.seconds() - at > self.max_age:
            return
        doc = json.loads(body)
        finished = doc["written"] != self._written.get(server)
        self._written[server] = doc["written"]
        self.sites.set_remote(server, doc["live"], at, finished=finished)
