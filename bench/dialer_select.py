"""Dialer benchmark: picking the next batch of due contacts, and originate pacing.

1. Claim time: 1,000,000 contacts (70 % pending with due times spread over 60 days,
   30 % finished, 10,000 numbers on the do-not-call list) on SQLite and PostgreSQL;
   time ``dialer.store.claim`` (select due ``FOR UPDATE SKIP LOCKED`` with the do-not-call,
   in-a-call and 60-minute phone-gap guards + update + attempt rows, one transaction)
   for batches of 50, right after the insert (never analysed) and after ANALYZE, a new
   database each round.  Target p95 <= 20 ms.
2. Pacing: the real ``Dialer`` on the real event loop with a fake gateway, 1,000 due
   contacts at ``max_rate = 50``: achieved rate, drift of the last send against the
   ideal schedule, and the worst lateness of a single send.  Target 50 calls/s, no drift.

    .venv/bin/python bench/dialer_select.py [--rows 1000000] [--pg-url postgresql://...]
    .venv/bin/python bench/dialer_select.py --fresh 10000 [--rounds 3] [--beside 1000000]
        # a fresh campaign on PostgreSQL (beside an old one of M contacts)
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

from sqlalchemy import bindparam, text  # noqa: E402

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
        ANALYZE do_not_call;"""
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
        SELECT '+86138' || printf('%08d', x * 97), 'admin', '', '2026-11-01 00:00:00' FROM seq;"""
    with db.engine.begin() as conn:
        for stmt in sql.split(";"):
            if stmt.strip():
                conn.execute(text(stmt))


def time_claims(db: Database, batches: int = 30, size: int = 50, campaign: int = 1) -> list[float]:
    out = []
    for i in range(batches):
        t0 = time.perf_counter()
        got = db.call(lambda s: store.claim(s, campaign_id=campaign, limit=size, now=NOW + i, instance="bench",
                                            guard_seconds=7200, phone_gap=3600))
        out.append((time.perf_counter() - t0) * 1000)
        assert len(got) == size, len(got)
    return out


def time_floor(db: Database, batches: int = 20, size: int = 50) -> list[float]:
    """The floor a claim stands on, in the same run: one transaction that updates 50 contacts
    by primary key and commits (the same pool, session, round trips and commit)."""
    ids = db.call(lambda s: [r[0] for r in s.execute(text(f"SELECT id FROM contacts ORDER BY id LIMIT {size}"))])
    out = []
    for i in range(batches):
        t0 = time.perf_counter()
        db.call(lambda s: s.execute(text("UPDATE contacts SET claimed_by = :by WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)), {"by": f"floor{i}", "ids": ids}))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(ms: list[float]) -> float:
    return sorted(ms)[int(len(ms) * 0.95) - 1]


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def analyse(db: Database) -> None:
    """What autovacuum does soon after an import (the steady state a claim runs in)."""
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE contacts" if db.dialect == "postgresql" else "ANALYZE"))
        if db.dialect == "postgresql":
            conn.execute(text("ANALYZE dial_attempts"))


def hold_autovacuum(db: Database, off: bool) -> None:
    """Keep "right after the import" as it is while it is timed (PostgreSQL)."""
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            for table in ("contacts", "dial_attempts"):
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = {'false' if off else 'true'})"))


def bench_backend(url_of, name: str, rounds: int) -> None:
    """Per round: a new database of ``--rows`` contacts, claims timed right after the insert
    (never analysed) and again after ANALYZE."""
    fresh, analysed, floor, builds, loads = [], [], [], [], [loadavg()]
    for r in range(rounds):
        db = Database(url_of(r))
        if db.dialect == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate.upgrade(db.engine)
        hold_autovacuum(db, True)
        t0 = time.perf_counter()
        populate(db, ARGS.rows)
        builds.append(time.perf_counter() - t0)
        ms = time_claims(db)
        fresh.append(ms)
        analyse(db)
        hold_autovacuum(db, False)
        analysed.append(time_claims(db))
        floor.append(time_floor(db))
        db.close()
        db.engine.dispose()
        loads.append(loadavg())
    for label, runs in (("fresh", fresh), ("analysed", analysed), ("floor", floor)):
        every = [x for r in runs for x in r]
        what = "update 50 by id" if label == "floor" else "claim 50 due"
        print(f"{name:<10} {label:<8} {what} of {ARGS.rows:,}, {rounds} rounds x {len(runs[0])}: "
              f"median {statistics.median(every):5.1f} ms, p95 {p95(every):5.1f} ms "
              f"(per round {spread([p95(r) for r in runs])}), max {max(every):5.1f} ms  "
              f"{'OK' if p95(every) <= 20 else 'OVER 20 ms'}")
    print(f"{name:<10} build {spread(builds)} s a round; load average {' '.join(loads)}")


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


def fresh_campaign(url: str, n: int, rounds: int, beside: int) -> None:
    """A campaign of ``n`` contacts inserted through ``insert_contacts`` (as a materialization
    does) into a fresh database whose do-not-call list (10,000 numbers) is old and analysed,
    ``beside`` an old analysed campaign of that many contacts (70 % pending, all due earlier);
    claims timed right after the insert (not analysed: autovacuum held off) and again after
    ``ANALYZE`` (what autovacuum soon does).  Interleaved rounds."""
    from dialer.campaigns import contact_row, insert_contacts

    fresh, analysed, floor, loads = [], [], [], [loadavg()]
    for r in range(rounds):
        db = Database(url)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate.upgrade(db.engine)
        campaign = 1
        if beside:
            populate(db, beside)   # campaign 1, due from 2026-10-25 on, and the do-not-call list
            analyse(db)
            campaign = 2
        else:
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO do_not_call (phone, source, reason, created_at) "
                                  "SELECT '+86138' || lpad((x * 97)::text, 8, '0'), 'admin', '', now() "
                                  "FROM generate_series(1, 10000) x"))
                conn.execute(text("ANALYZE do_not_call"))
        hold_autovacuum(db, True)

        def seed(s):
            c = create_campaign(s, name="fresh", kind="revisit", mode="survey", state="running")
            base = to_dt(NOW - 86400)
            insert_contacts(s, [contact_row(c.id, f"f{i}", phone=f"+86138{i:08d}", name="", reason="r",
                                            ref_type="t", ref_id=i, due_after=base, due_before=None,
                                            patient_id=None, now=base) for i in range(n)])
        db.call(seed)
        fresh.append(time_claims(db, 20, campaign=campaign))
        analyse(db)
        hold_autovacuum(db, False)
        analysed.append(time_claims(db, 20, campaign=campaign))
        floor.append(time_floor(db))
        db.close()
        loads.append(loadavg())

    where = f" beside an old campaign of {beside:,}" if beside else ""
    every_f = [x for r in fresh for x in r]
    every_a = [x for r in analysed for x in r]
    every_0 = [x for r in floor for x in r]
    print(f"postgresql fresh {n:,}-contact campaign{where}, {rounds} rounds x 20 claims of 50: "
          f"p95 {p95(every_f):.1f} ms (per round {spread([p95(r) for r in fresh])}, max {max(every_f):.1f}), "
          f"after ANALYZE p95 {p95(every_a):.1f} ms (per round {spread([p95(r) for r in analysed])}, "
          f"max {max(every_a):.1f}); {'OK' if max(p95(every_f), p95(every_a)) <= 20 else 'OVER TARGET'} "
          f"(target p95 <= 20 ms); floor (update 50 by id, commit) p95 {p95(every_0):.1f} ms "
          f"(per round {spread([p95(r) for r in floor])}); load average {' '.join(loads)}")


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
    ap.add_argument("--beside", type=int, default=0, metavar="M",
                    help="--fresh: beside an old, analysed campaign of M contacts")
    ap.add_argument("--skip-sqlite", action="store_true")
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
                           .render_as_string(hide_password=False), ARGS.fresh, ARGS.rounds, ARGS.beside)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with tempfile.TemporaryDirectory() as tmp:
        if not ARGS.skip_sqlite:
            bench_backend(lambda r: f"sqlite:///{tmp}/bench{r}.sqlite", "sqlite", ARGS.rounds)
        if ARGS.pg_url:
            import psycopg
            from sqlalchemy.engine import make_url

            base = make_url(ARGS.pg_url)
            name = f"cc_bench_{uuid.uuid4().hex[:8]}"
            admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                url = base.set(database=name, drivername="postgresql+psycopg").render_as_string(hide_password=False)
                bench_backend(lambda r: url, "postgresql", ARGS.rounds)
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
