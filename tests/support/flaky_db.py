"""A Database whose ``run``/``run_blocking``/``submit`` fail while injected time is inside a window.

What a PostgreSQL failover or a locked SQLite file looks like to the code on the
event loop: every call raises ``OperationalError`` until the database is back.
Everything else (``session``, ``call``) is the real database, for the test's own reads.
"""
from __future__ import annotations

import concurrent.futures
import sqlite3

from sqlalchemy.exc import OperationalError


class FlakyDatabase:
    def __init__(self, db, clock, windows: list[tuple[float, float]]):
        self._db, self._clock, self.windows = db, clock, list(windows)
        self.failures = 0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._db, name)

    def down(self) -> bool:
        now = self._clock.seconds()
        return any(a <= now < b for a, b in self.windows)

    def _check(self) -> None:
        self.calls += 1
        if self.down():
            self.failures += 1
            raise OperationalError("(injected) INSERT ...", {}, sqlite3.OperationalError("database is locked"))

    async def run(self, fn, *args, **kw):
        self._check()
        return await self._db.run(fn, *args, **kw)

    def submit(self, fn, *args, **kw):
        """As the real one: the failure comes back in the future (the group commit's path)."""
        try:
            self._check()
        except OperationalError as exc:
            failed = concurrent.futures.Future()
            failed.set_exception(exc)
            return failed
        return self._db.submit(fn, *args, **kw)

    async def run_blocking(self, fn, *args):
        self._check()
        return await self._db.run_blocking(fn, *args)
