"""Engine, sessions, and running database work off the event loop.

SQLAlchemy here is synchronous; every call made from the service goes through
:meth:`Database.run`, which executes it in a worker thread (PITFALLS 11 in docs/asterisk-pitfalls.md) inside
one transaction, so a slow disk or a PostgreSQL round trip never stalls calls
in flight (or :meth:`Database.submit`, the same as a concurrent future, for the
group commit's callbacks).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# Every package that owns tables is listed here (import side effect: table registration).
MODEL_MODULES = [
    "callcenter.store.models",
    "callcenter.queuecalls.models",
    "ivr_flows.models",
    "callcenter.complaints.models",
    "dialer.models",
    "recordings.models",
    "callcenter.web.models",
]


def load_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


class MigrationRequired(RuntimeError):
    """The database schema is behind the code; the message says what to run."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class _SQLiteCompiler(SQLiteCompiler):
    """SQLite's compiler, rendering ``select.with_hint(table, "INDEXED BY ix", "sqlite")``
    (SQLAlchemy's own drops table hints on SQLite).  The reports name the index of their
    few year-long reads (``report_queries.period_calls(index=...)``): SQLite's choice among
    covering, partial and skip-scan indexes changes with ``ANALYZE`` statistics, and a wrong
    one costs seconds; a named index that does not exist is an error, never a slow plan."""

    def get_from_hint_text(self, table, text):
        return text


def make_engine(url: str, **kw: Any) -> Engine:
    # SQL parameters are patient data (numbers, names): never in an exception's text,
    # so no traceback can log them whatever the log filter misses.
    kw.setdefault("hide_parameters", True)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)
        engine.dialect.statement_compiler = _SQLiteCompiler
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        url = u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kw)


class Database:
    """One engine, a session factory, and a small thread pool for blocking work."""

    def __init__(self, url: str, *, workers: int = 4, echo: bool = False):
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits when the block succeeds, rolls back otherwise."""
        with self.Session.begin() as s:
            yield s

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run ``fn(session, *args)`` in one transaction, in *this* thread."""
        with self.session() as s:
            return fn(s, *args, **kw)

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run ``fn(session, *args)`` in one transaction on a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.call(fn, *args, **kw))

    def call_on_connection(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run ``fn(connection, *args)`` in one transaction, in *this* thread: for Core
        statements only, without an ORM ``Session`` (its set-up, unit of work and commit
        bookkeeping cost more on the database thread than the statements themselves)."""
        with self.engine.begin() as conn:
            return fn(conn, *args, **kw)

    def submit(self, fn: Callable[..., T], *args: Any, connection: bool = False,
               **kw: Any) -> "concurrent.futures.Future[T]":
        """``fn(session, *args)`` in one transaction on a worker thread, as a concurrent
        future: for code that takes the outcome in a callback (the group commit) instead of
        awaiting a task and an asyncio future per call.  ``connection=True``: ``fn`` gets a
        Connection instead (:meth:`call_on_connection`); one entry point either way, so a
        wrapper that fails ``submit`` (an outage in the fault tests) fails both."""
        return self._pool.submit(self.call_on_connection if connection else self.call, fn, *args, **kw)

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Any other blocking work (file hashing, engine calls) off the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args))

    def check_migrated(self) -> None:
        """Raise :class:`MigrationRequired` unless the schema is at the code's heads (read
        without Alembic: :mod:`.schema_version`)."""
        from . import schema_version

        with self.engine.connect() as conn:
            current = schema_version.stored_revisions(conn)
        heads = schema_version.script_heads()
        if set(current) != set(heads):
            where = self.safe_url
            if not current:
                raise MigrationRequired(
                    f"database {where} has no schema; run: callcenter db upgrade"
                )
            raise MigrationRequired(
                f"database {where} is at {sorted(current)}, code needs {sorted(heads)}; "
                "run: callcenter db upgrade"
            )

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
