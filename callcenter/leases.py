"""Which service instance consumes an Asterisk server: a PostgreSQL advisory lock each.

Several ``callcenter serve`` instances may share one PostgreSQL database.  For each
Asterisk server exactly one of them is the active consumer (its AMI link, queue-call
tracker, recordings capture, dialer): the one holding the session-level advisory lock
``pg_try_advisory_lock(lock_key(server))`` on a connection of its own.  PostgreSQL does
the deciding; nothing here votes or times out leases.  When the holder dies, the kernel
closes its socket, PostgreSQL ends the session and the lock is free; a standby polling
every ``poll`` seconds takes it, starts the site, and the tracker's start-up recovery
(checkpoint -> queue_log, :mod:`callcenter.queuecalls.tracker`) fills the gap.

An active instance that loses its lock connection stops consuming at once (another may
hold the lock by then); it tries again on the next poll like a standby.  Every instance
serves the web and the API whatever it holds.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from typing import Any, Callable

from sqlalchemy.engine import make_url

from .clock import sleep
from .sites import Site, Sites

log = logging.getLogger(__name__)


def lock_key(server: str) -> int:
    """The advisory lock's bigint for ``server`` (stable across versions and hosts)."""
    digest = hashlib.sha256(f"callcenter.ami-consumer:{server}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def libpq_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def instance_label() -> str:
    return f"callcenter {socket.gethostname()}:{os.getpid()}"[:63]


# The server's side of the lock session: a host that vanishes without closing its socket
# (power loss, a cut cable) is dropped by PostgreSQL within ~10 s instead of the OS
# default of hours, so its lock is freed for a standby (user-settable per session).
SERVER_KEEPALIVE = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2"


class LockConnection:
    """One dedicated PostgreSQL session for the advisory locks (blocking; used from a thread).
    TCP keepalives on both sides make a vanished peer noticed in about 10 s."""

    def __init__(self, dsn: str, label: str):
        import psycopg

        self._conn = psycopg.connect(dsn, autocommit=True, application_name=label, connect_timeout=5,
                                     keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                     keepalives_count=2, options=SERVER_KEEPALIVE)

    def try_lock(self, key: int) -> bool:
        return bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])

    def holder(self, key: int) -> str:
        """Who holds ``key`` (its application_name and backend pid), for the standby's log."""
        row = self._conn.execute(
            "SELECT a.application_name, l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s", (key,)).fetchone()
        return f"{row[0] or '?'} (backend {row[1]})" if row else "nobody (just released)"

    def check(self) -> None:
        self._conn.execute("SELECT 1")

    def close(self) -> None:
        self._conn.close()


class ServerLease:
    """A part of the assembly: consume ``server`` whenever this instance holds its lock.

    ``make_site()`` builds a fresh :class:`Site` each time the lock is taken (a new
    tracker recovers from the checkpoint); ``sites`` is the hub the web reads."""

    def __init__(self, server: str, *, dsn: str, make_site: Callable[[], Site], sites: Sites, clock: Any,
                 poll: float = 2.0, label: str | None = None,
                 connect: Callable[[str, str], Any] = LockConnection):
        self.server, self.dsn, self.make_site, self.sites, self.clock = server, dsn, make_site, sites, clock
        self.poll = poll
        self.label = label or instance_label()
        self.key = lock_key(server)
        self._connect = connect
        self._conn: Any = None
        self.site: Site | None = None
        self.acquired_at: float | None = None   # clock time this instance last took the lock
        self.takeovers = 0
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._told_standby = False

    @property
    def name(self) -> str:
        return f"lease of Asterisk server {self.server}"

    @property
    def holding(self) -> bool:
        return self.site is not None

    async def start(self) -> None:
        self._stopping = False
        await self._poll_once()  # the first answer before start() returns: logs say which role
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._give_up("stopping")  # the site flushes before the lock is released

    async def _loop(self) -> None:
        while not self._stopping:
            await sleep(self.clock, self.poll)
            await self._poll_once()

    async def _poll_once(self) -> None:
        try:
            if self._conn is None:
                self._conn = await asyncio.to_thread(self._connect, self.dsn, self.label)
            if self.site is not None:
                await asyncio.to_thread(self._conn.check)
                return
            if await asyncio.to_thread(self._conn.try_lock, self.key):
                await self._take()
            elif not self._told_standby:
                self._told_standby = True
                holder = await asyncio.to_thread(self._conn.holder, self.key)
                log.warning("standby for Asterisk server %s: consumed by %s; taking over when it stops",
                            self.server, holder)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - psycopg.Error, OSError: the session is gone
            log.error("lock connection for Asterisk server %s failed (%s: %s)%s", self.server,
                      exc.__class__.__name__, str(exc).strip()[:200],
                      ": stopped consuming it (another instance may hold it now)" if self.site else "")
            await self._give_up("lock connection lost")

    async def _take(self) -> None:
        self.acquired_at = self.clock.seconds()
        self.takeovers += 1
        self._told_standby = False
        log.warning("active consumer of Asterisk server %s (its advisory lock held by %s)",
                    self.server, self.label)
        site = self.make_site()
        try:
            await site.start()
        except Exception:
            # closing the session frees the lock: another instance (or our next poll) tries
            log.exception("could not start consuming Asterisk server %s; lock released", self.server)
            await self._give_up("start failed")
            return
        self.site = site
        self.sites.attach(site)

    async def _give_up(self, why: str) -> None:
        site, self.site = self.site, None
        if site is not None:
            self.sites.detach(self.server)
            await site.stop()
            log.warning("no longer consuming Asterisk server %s (%s)", self.server, why)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.to_thread(conn.close)  # ends the session: the lock is free
            except Exception:  # noqa: BLE001
                log.exception("closing the lock connection of %s", self.server)
