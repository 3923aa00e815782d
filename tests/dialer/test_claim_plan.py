"""The claim's pick walks one campaign's due contacts in order and stops at the LIMIT, whatever
the statistics say: right after an import (never analysed), after ANALYZE (autovacuum soon
runs it), a campaign imported into an analysed table (no statistics for it yet), and in a prepared statement's generic plan (psycopg prepares a statement run 5
times; PostgreSQL may then plan it once for any values).

As anti-joins, the do-not-call and "already in a call" checks got a row estimate of 1 once
the campaign was analysed, and PostgreSQL read, checked and sorted every due contact of the
campaign for each claim of 50 (80 ms at 10k contacts, bench/dialer_select.py --fresh); on
``ix_contacts_due`` (state, next_attempt_at) the campaign was a filter, so another campaign's
earlier due contacts were read first.  The plans are read with EXPLAIN ANALYZE (rows each
node read, not times) inside a transaction that is rolled back.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import event, select, text

from dialer import store
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.models import Attempt, Contact
from dialer.timeutil import to_dt

NOW = 1_795_000_000.0
N = 3000          # contacts per campaign
LIMIT = 50
ONE_S = __import__("datetime").timedelta(seconds=1)
DNC = {f"+86138{x * 97:08d}" for x in range(1, 3001)}   # every 97th number of the fresh campaign


def _seed(db, state: str) -> int:
    """An old campaign whose N contacts are all due earlier, then a fresh one: its id.
    ``imported``: the table is analysed between the two (the new campaign has no statistics)."""
    def old(s):
        old = create_campaign(s, name="old", kind="revisit", mode="survey", state="running")
        early = to_dt(NOW - 30 * 86400)
        insert_contacts(s, [contact_row(old.id, f"o{i}", phone=f"+86139{i:08d}", name="", reason="r", ref_type="t",
                                        ref_id=i, due_after=early, due_before=None, patient_id=None, now=early)
                            for i in range(N)])

    def seed(s):
        c = create_campaign(s, name="plan", kind="revisit", mode="survey", state="running")
        due = to_dt(NOW - 86400)
        rows = [contact_row(c.id, f"k{i}", phone=f"+86138{i:08d}", name="", reason="r", ref_type="t",
                            ref_id=i, due_after=due, due_before=None, patient_id=None, now=due) for i in range(N)]
        rows.append(contact_row(c.id, "again", phone="+86138%08d" % 1, name="", reason="r", ref_type="t",
                                ref_id=-1, due_after=due - ONE_S, due_before=None, patient_id=None, now=due))
        insert_contacts(s, rows)
        s.execute(text("INSERT INTO do_not_call (phone, source, reason, created_at) "
                       "SELECT '+86138' || substr('0000000' || (x * 97), length('0000000' || (x * 97)) - 7), 'admin', '', :now "
                       "FROM "
                       "(WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < 3000) "
                       "SELECT x FROM seq) AS seq"), {"now": due})
        return c.id
    db.call(old)
    if state == "imported":
        _analyse(db)
    cid = db.call(seed)
    if state == "analysed":
        _analyse(db)
    return cid


def _analyse(db) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _args(cid, now):
    return dict(campaign_id=cid, limit=LIMIT, now=now, instance="t", guard_seconds=60, phone_gap=3600,
                exclude_phones={"+86138%08d" % 2})


class _Sent(Exception):
    pass


def _as_sent(db, stmt, params) -> tuple[str, object]:
    """The SQL text and parameters the driver gets for ``stmt`` (the statement is not run)."""
    sent = {}

    def grab(conn, cursor, statement, parameters, context, executemany):
        sent.update(sql=statement, params=parameters)
        raise _Sent

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        with db.engine.connect() as conn, pytest.raises(_Sent):
            conn.execute(stmt, params)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    return sent["sql"], sent["params"]


def _pg_plan(db, cid, now, *, generic: bool) -> dict:
    """EXPLAIN (ANALYZE, FORMAT JSON) of the claim statement as shipped, rolled back; ``generic``:
    as a prepared statement under ``plan_cache_mode = force_generic_plan``."""
    import psycopg.sql

    sql, params = _as_sent(db, store.claim_statement(True, True, True), store.claim_params(**_args(cid, now)))
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if generic:
            names: list[str] = []

            def number(m):
                if m.group(1) not in names:
                    names.append(m.group(1))
                return f"${names.index(m.group(1)) + 1}"
            prepared = re.sub(r"%\((\w+)\)s", number, sql)
            raw.execute("SET plan_cache_mode = force_generic_plan")
            raw.execute("PREPARE claim_q AS " + prepared)
            args = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(params[n]) for n in names)
            doc = raw.execute(psycopg.sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_q({})").format(args)
                              ).fetchone()[0]
        else:
            doc = raw.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0]
        conn.rollback()
    return (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _check_pg_plan(plan) -> None:
    nodes = list(_nodes(plan))
    walks = [n for n in nodes if n.get("Relation Name") == "contacts" and n.get("Index Name") == "ix_contacts_campaign_due"]
    assert len(walks) == 1, json.dumps(plan)[:3000]
    walk = walks[0]
    # walked up to the LIMIT: the 50 taken and the few skipped (do-not-call, excluded), not the
    # other campaign's contacts nor every due contact of this one
    read = walk["Actual Rows"] + walk.get("Rows Removed by Filter", 0)
    assert read <= 2 * LIMIT, (read, walk)
    assert not any("Join Type" in n and n["Join Type"] == "Anti" for n in nodes)   # probes, per candidate
    assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "contacts" for n in nodes)
    assert not any(n["Node Type"] == "Sort" and any("next_attempt_at" in k for k in n.get("Sort Key", []))
                   for n in nodes)
    # the in-a-call probe reads only the contacts in a call
    assert any(n.get("Index Name") == "ix_contacts_dialing_phone" for n in nodes)
    # the update finds the chosen contacts by primary key
    assert any(n.get("Index Name") == "pk_contacts" for n in nodes), json.dumps(plan)[:3000]


def _sqlite_plan(db, cid, now) -> str:
    sql, params = _as_sent(db, store.claim_statement(False, True, True), store.claim_params(**_args(cid, now)))
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
    return "\n".join(str(r[-1]) for r in rows)


def _claim_and_check(db, cid, now, expect: int) -> None:
    got = db.call(lambda s: store.claim(s, **_args(cid, now)))
    phones = [c.phone for c in got]
    assert len(got) == expect
    assert len(set(phones)) == len(phones) and not set(phones) & (DNC | {"+86138%08d" % 2})
    assert {c.campaign_id for c in got} == {cid}
    assert [c.attempt_id for c in got] == sorted(c.attempt_id for c in got)
    rows = db.call(lambda s: s.execute(select(Attempt.contact_id, Contact.state).join(
        Contact, Contact.id == Attempt.contact_id).where(Attempt.id.in_([c.attempt_id for c in got]))).all())
    assert sorted(r[0] for r in rows) == sorted(c.contact_id for c in got) and {r[1] for r in rows} == {"dialing"}


@pytest.mark.postgres
@pytest.mark.parametrize("state", ["fresh", "analysed", "imported"])
def test_claim_walks_the_campaigns_due_contacts_up_to_the_limit(db, state):
    cid = _seed(db, state)
    if db.dialect == "postgresql":
        _check_pg_plan(_pg_plan(db, cid, NOW, generic=False))
    else:
        plan = _sqlite_plan(db, cid, NOW)
        assert "ix_contacts_campaign_due" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
        assert "SCAN contacts" not in plan, plan
    _claim_and_check(db, cid, NOW, LIMIT - 1)   # the second contact of +86138…01 is left: one per number
    # a second claim, now with contacts in a call and attempt rows to probe
    _claim_and_check(db, cid, NOW + 1, LIMIT)


@pytest.mark.postgres_only
@pytest.mark.parametrize("state", ["fresh", "analysed", "imported"])
def test_claims_generic_plan_walks_the_same_way(db, state):
    cid = _seed(db, state)
    _claim_and_check(db, cid, NOW, LIMIT - 1)
    _check_pg_plan(_pg_plan(db, cid, NOW + 1, generic=True))
