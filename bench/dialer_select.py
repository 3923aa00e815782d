"""Dialer benchmark: picking the next batch of due contacts, and originate pacing.

1. Claim time: 1,000,000 contacts (70 % pending with due times spread over 60 days,
   30 % finished, 10,000 numbers on the do-not-call list) on SQLite and PostgreSQL;
   time ``dialer.store.claim`` (select due ``FOR UPDATE SKIP LOCKED`` with the do-not-call,
   in-a-call and 60-minute phone-gap guards + update + attempt rows, one transaction)
   for batches of 50.  Target <= 50 ms.
2. Pacing: the real ``Dialer`` on the real event loop with a fake gateway, 1,000 due
   contacts at ``max_rate = 50``: achieved rate, drift of the last send against the
   ideal schedule, and the worst lateness of a single send.  Target 50 calls/s, no drift.

    .venv/bin/python bench/dialer_select.py [--rows 1000000] [--pg-url postgresql://...]
    .venv/bin/python bench/dialer_select.py --fresh 10000 [--rounds 3]   # fresh campaign, PostgreSQL
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from callcenter.store import Database, migrate  # noqa: E402
from dialer import store  # noqa: E402
from dialer.campaigns import create_campaign  # noqa: E402
from dialer.timeutil import to_dt  # noqa: E402

NOW = to_dt(0).replace(year=2026, month=11, day=24, hour=2).timestamp()  # 10:00 Shanghai


def populate(db: Database, rows: int) -> None:
    db.call(lambda s: create_campaign(s, name="bench", kind="revisit", mode="survey", state="running"))
    if db.dialect == "postgresql":
        sql = f"""
        INSERT INTO contacts (campaign_id, patient_id, dedupe_key, phone, name, reason, ref_type, ref_id,
            due_after, due_before, next_attempt_at, state, outcome, attempts, last_disposition, claimed_by,
            claim_token, created_at)
        SELECT 1, NULL, 'k' || x, '+86138' || lpad(x::text, 8, '0'), '', 'revisit', 't', x::text,
            timestamptz '2026-10-25 00:00+00' + (x % 5184000) * interval '1 second', NULL,
            timestamptz '2026-10-25 00:00+00' + (x % 5184000) * interval '1 second',
            CASE WHEN x % 10 < 7 THEN 'pending' ELSE 'done' END, '', 0, '', '', '', now()
        FROM generate_series(1, {rows}) AS x;
        INSERT INTO do_not_call (phone, source, reason, created_at)
        SELECT '+86138' || lpad((x * 97)::text, 8, '0'), 'admin', '', now() FROM generate_series(1, 10000) x;
        ANALYZE contacts; ANALYZE do_not_call;"""
    else:
        sql = f"""
        WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < {rows})
        INSERT INTO contacts (campaign_id, patient_id, dedupe_key, phone, name, reason, ref_type, ref_id,
            due_after, due_before, next_attempt_at, state, outcome, attempts, last_disposition, claimed_by,
            claim_token, created_at)
        SELECT 1, NULL, 'k' || x, '+86138' || printf('%08d', x), '', 'revisit', 't', x,
            strftime('%Y-%m-%d %H:%M:%f000', '2026-10-25', '+' || (x % 5184000) || ' seconds'), NULL,
            strftime('%Y-%m-%d %H:%M:%f000', '2026-10-25', '+' || (x % 5184000) || ' seconds'),
            CASE WHEN x % 10 < 7 THEN 'pending' ELSE 'done' END, '', 0, '', '', '', '2026-11-01 00:00:00'
        FROM seq;
        WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < 10000)
        INSERT INTO do_not_call (phone, source, reason, created_at)
        SELECT '+86138' || printf('%08d', x * 97), 'admin', '', '2026-11-01 00:00:00' FROM seq;
        ANALYZE;"""
    with db.engine.begin() as conn:
        for stmt in sql.split(";"):
            if stmt.strip():
                conn.execute(text(stmt))


def time_claims(db: Database, batches: int = 30, size: int = 50) -> list[float]:
    out = []
    for i in range(batches):
        t0 = time.perf_counter()
        got = db.call(lambda s: store.claim(s, campaign_id=1, limit=size, now=NOW + i, instance="bench",
                                            guard_seconds=7200, phone_gap=3600))
        out.append((time.perf_counter() - t0) * 1000)
        assert len(got) == size, len(got)
    return out


def report(name: str, ms: list[float], build: float) -> None:
    ms_sorted = sorted(ms)
    p95 = ms_sorted[int(len(ms_sorted) * 0.95) - 1]
    print(f"{name:<11} claim 50 due of {ARGS.rows:,}: median {statistics.median(ms):6.1f} ms, "
          f"p95 {p95:6.1f} ms, max {max(ms):6.1f} ms  (load {build:.0f} s)  "
          f"{'OK' if p95 <= 50 else 'OVER TARGET'}")


def bench_backend(url: str, name: str) -> None:
    db = Database(url)
    migrate.upgrade(db.engine)
    t0 = time.perf_counter()
    populate(db, ARGS.rows)
    build = time.perf_counter() - t0
    time_claims(db, 3)  # warm caches
    report(name, time_claims(db), build)
    db.close()


async def pacing(url: str, n: int = 1000, rate: float = 50.0) -> None:
    from twisted.internet import reactor

    from dialer.campaigns import contact_row, insert_contacts
    from dialer.compliance import Rules
    from dialer.engine import Dialer, DialSettings
    from dialer.pacing import StaticAgents

    db = Database(url)
    migrate.upgrade(db.engine)
    now = reactor.seconds()

    def seed(s):
        c = create_campaign(s, name="pace", kind="revisit", mode="survey", state="running",
                            settings={"max_channels": n})
        insert_contacts(s, [contact_row(c.id, f"p{i}", phone=f"+86139{i:08d}", name="", reason="r",
                                        ref_type="t", ref_id=i, due_after=to_dt(now - 60), due_before=None,
                                        patient_id=None, now=to_dt(now)) for i in range(n)])
    db.call(seed)

    from callcenter.ami.fake import FakeAmi as Gateway

    always = Rules(window_start=__import__("datetime").time(0, 0), window_end=__import__("datetime").time(23, 59, 59),
                   skip_holidays=False)
    d = Dialer(db=db, clock=reactor, gateway=Gateway(), rules=always, autotick=False, instance="pace",
               dial=DialSettings(max_rate=rate, max_channels=n), agents=StaticAgents())
    await d.start()
    t0 = time.perf_counter()
    await d.run_once()
    wall = time.perf_counter() - t0
    await d.stop()
    db.close()
    ts, lag = d.send_times, d.send_lag
    achieved = (len(ts) - 1) / (ts[-1] - ts[0])
    ideal = (len(ts) - 1) / rate
    lag_sorted = sorted(lag)
    print(f"pacing     {len(ts)} originates at max_rate {rate:g}/s: achieved {achieved:.3f}/s over "
          f"{ts[-1] - ts[0]:.2f} s (ideal {ideal:.2f} s, drift {(ts[-1] - ts[0] - ideal) * 1000:+.1f} ms); "
          f"lag behind slot: median {statistics.median(lag) * 1000:.2f} ms, "
          f"p99 {lag_sorted[int(len(lag) * 0.99) - 1] * 1000:.2f} ms, max {max(lag) * 1000:.2f} ms "
          f"(claim+send wall {wall:.1f} s)")


def fresh_campaign(url: str, n: int, rounds: int) -> None:
    """A campaign of ``n`` contacts inserted through ``insert_contacts`` (as a materialization
    does) into a fresh database whose do-not-call list (10,000 numbers) is old and analysed;
    claims timed right after the insert (no ANALYZE by the bench, autovacuum has not run)
    and, as the anchor, again after an explicit ``ANALYZE contacts``.  Interleaved rounds."""
    from dialer.campaigns import contact_row, insert_contacts

    fresh, anchor = [], []
    for r in range(rounds):
        db = Database(url)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate.upgrade(db.engine)
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO do_not_call (phone, source, reason, created_at) "
                              "SELECT '+86138' || lpad((x * 97)::text, 8, '0'), 'admin', '', now() "
                              "FROM generate_series(1, 10000) x"))
            conn.execute(text("ANALYZE do_not_call"))

        def seed(s):
            c = create_campaign(s, name="fresh", kind="revisit", mode="survey", state="running")
            base = to_dt(NOW - 86400)
            insert_contacts(s, [contact_row(c.id, f"f{i}", phone=f"+86138{i:08d}", name="", reason="r",
                                            ref_type="t", ref_id=i, due_after=base, due_before=None,
                                            patient_id=None, now=base) for i in range(n)])
        db.call(seed)
        fresh.extend(time_claims(db, 20))
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE contacts"))
        anchor.extend(time_claims(db, 20))
        db.close()

    def p95(ms):
        return sorted(ms)[int(len(ms) * 0.95) - 1]

    print(f"postgresql fresh {n:,}-contact campaign, {rounds} rounds x 20 claims of 50: "
          f"p95 {p95(fresh):.1f} ms (max {max(fresh):.1f}), after ANALYZE p95 {p95(anchor):.1f} ms "
          f"(max {max(anchor):.1f}); ratio {p95(fresh) / p95(anchor):.2f}  "
          f"{'OK' if p95(fresh) <= 20 else 'OVER TARGET'} (target p95 <= 20 ms)")


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test",
                    help="server to create a throw-away database on ('' to skip PostgreSQL)")
    ap.add_argument("--skip-pacing", action="store_true")
    ap.add_argument("--fresh", type=int, default=0, metavar="N",
                    help="only the fresh-campaign claim on PostgreSQL with N contacts (e.g. 10000)")
    ap.add_argument("--rounds", type=int, default=3)
    ARGS = ap.parse_args()
    if ARGS.fresh:
        import psycopg
        from sqlalchemy.engine import make_url

        base = make_url(ARGS.pg_url)
        name = f"cc_bench_{uuid.uuid4().hex[:8]}"
        admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            fresh_campaign(base.set(database=name, drivername="postgresql+psycopg")
                           .render_as_string(hide_password=False), ARGS.fresh, ARGS.rounds)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench_backend(f"sqlite:///{tmp}/bench.sqlite", "sqlite")
        if ARGS.pg_url:
            import psycopg
            from sqlalchemy.engine import make_url

            base = make_url(ARGS.pg_url)
            name = f"cc_bench_{uuid.uuid4().hex[:8]}"
            admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                bench_backend(base.set(database=name, drivername="postgresql+psycopg")
                              .render_as_string(hide_password=False), "postgresql")
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not ARGS.skip_pacing:
            from callcenter.runtime import run

            async def go(_stop):
                await pacing(f"sqlite:///{tmp}/pace.sqlite")
                return 0
            run(go)


if __name__ == "__main__":
    main()
