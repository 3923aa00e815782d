"""Shared fixtures.

* ``db``: a freshly migrated database.  SQLite always; tests marked
  ``@pytest.mark.postgres`` run a second time against PostgreSQL when one answers
  (``CALLCENTER_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``).
  The session header says which backends are in use.
* ``async def`` tests run as asyncio tasks on the shared loop (Twisted's asyncio
  reactor), so they may await asyncio futures and (via ``d.asFuture(loop)``) Deferreds.
* Every test must leave no pending reactor ``DelayedCall`` (PITFALLS 9).
"""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer

from callcenter.store import Database, migrate

PG_URL = os.environ.get("CALLCENTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_pg_state: dict = {}


def _postgres_available() -> bool:
    if "ok" not in _pg_state:
        if os.environ.get("CALLCENTER_TEST_POSTGRES", "auto") == "off":
            _pg_state["ok"], _pg_state["why"] = False, "disabled by CALLCENTER_TEST_POSTGRES=off"
            return False
        try:
            import psycopg

            with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
                pass
            _pg_state["ok"], _pg_state["why"] = True, PG_URL
        except Exception as exc:  # noqa: BLE001
            _pg_state["ok"], _pg_state["why"] = False, f"not reachable at {PG_URL}: {exc.__class__.__name__}"
            if os.environ.get("CALLCENTER_TEST_POSTGRES") == "required":
                raise
    return _pg_state["ok"]


def pytest_report_header(config):
    if _postgres_available():
        return f"database backends: sqlite + postgresql ({_pg_state['why']})"
    return f"database backends: sqlite only (PostgreSQL {_pg_state['why']})"


def pytest_generate_tests(metafunc):
    if "db_backend" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("postgres_only"):  # e.g. several instances: PostgreSQL's
            backends = ["postgresql"] if _postgres_available() else []
        else:
            backends = ["sqlite"]
            if metafunc.definition.get_closest_marker("postgres") and _postgres_available():
                backends.append("postgresql")
        metafunc.parametrize("db_backend", backends, scope="function")


def pytest_collection_modifyitems(config, items):
    """End-to-end tests (marked ``slow``) first: the two xdist workers then finish together,
    not one idling while the other runs a long test it was handed last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("dbtemplate") / "template.sqlite"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.close()
    return path


@pytest.fixture(scope="session")
def _pg_database():
    """One throw-away PostgreSQL database per test session, migrated once."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL)
    name = f"cc_test_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # a throw-away database: a commit need not wait for its WAL to reach the disk (the
        # server is never killed under a test, so what a test reads back is the same)
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = base.set(database=name, drivername="postgresql+psycopg").render_as_string(hide_password=False)
    db = Database(url)
    migrate.upgrade(db.engine)
    db.close()
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(db: Database) -> None:
    from sqlalchemy import text

    from callcenter.queuecalls import rollups
    from callcenter.queuecalls.models import RollupSettings
    from callcenter.store import Base, load_all_models
    from callcenter.store.migrate import DEFAULT_ROLLUP_SETTINGS

    load_all_models()
    # Only the tables a test wrote to (a TRUNCATE of all ~30 costs 0.2-0.7 s a test, mostly
    # new files for tables that were empty anyway); every sequence back to 1, as migrated.
    # The rollups' settings row stays, as migrated (the configuration's defaults), unless a
    # test recounted them with others.
    keep = RollupSettings.__table__.name
    probe = " UNION ALL ".join(f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")"
                               for t in Base.metadata.sorted_tables if t.name != keep)
    with db.engine.begin() as conn:
        written = [row[0] for row in conn.execute(text(probe))]
        if written:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in written) + " CASCADE"))
        conn.execute(text("SELECT setval(c.oid, 1, false) FROM pg_class c "
                          "JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE c.relkind = 'S' AND n.nspname = current_schema()"))
        migrated = rollups.Settings(*DEFAULT_ROLLUP_SETTINGS)
        if rollups.stored_settings(conn) != migrated:
            rollups.rebuild(conn, migrated)


@pytest.fixture
def db_backend():  # replaced by parametrisation in pytest_generate_tests
    return "sqlite"


@pytest.fixture
def db_url(request, db_backend, tmp_path, _sqlite_template):
    if db_backend == "sqlite":
        path = tmp_path / "callcenter.sqlite"
        shutil.copy(_sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_pg_database")
    db = Database(url)
    _truncate_all(db)
    db.close()
    return url


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.close()


@pytest.fixture
def config_env(tmp_path, db_url, monkeypatch):
    """Environment for CLI/service tests: data dir and database of this test."""
    env = {
        "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
        "CALLCENTER_DATABASE_URL": db_url,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CALLCENTER_CONFIG", raising=False)
    return env


@pytest.fixture
def config(config_env):
    from callcenter.config import load_config

    return load_config(None)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests as asyncio tasks on the reactor's loop."""
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    timeout = float(getattr(pyfuncitem.get_closest_marker("timeout"), "args", [60])[0])

    async def guarded():
        return await asyncio.wait_for(fn(**kwargs), timeout)

    d = defer.Deferred.fromFuture(asyncio.ensure_future(guarded()))
    pytest_twisted.blockon(d)
    return True


@pytest.fixture(autouse=True)
def _no_leaked_delayed_calls():
    yield
    from twisted.internet import reactor

    leaked = [c for c in reactor.getDelayedCalls() if c.active()]
    for c in leaked:
        c.cancel()
    assert not leaked, f"test left pending reactor calls: {leaked}"


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): limit for an async test (default 60)")


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(pytest_report_header(None))
