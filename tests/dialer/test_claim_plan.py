"""The claim's pick walks the due index and stops at the LIMIT, whatever the statistics say.

As anti-joins, the do-not-call and "already in a call" checks got a row estimate of 1 once
the campaign was analysed, and PostgreSQL read, checked and sorted every due contact of the
campaign for each claim of 50 (80 ms at 10k contacts, bench/dialer_select.py --fresh); and
``id IN (pick)`` was hash-joined against a scan of every contact.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, text, update

from dialer import store
from dialer.campaigns import contact_row, create_campaign, insert_contacts
from dialer.models import Contact
from dialer.timeutil import to_dt

NOW = 1_795_000_000.0


def _seed(db, n=3000):
    def seed(s):
        c = create_campaign(s, name="plan", kind="revisit", mode="survey", state="running")
        due = to_dt(NOW - 86400)
        insert_contacts(s, [contact_row(c.id, f"k{i}", phone=f"+86138{i:08d}", name="", reason="r", ref_type="t",
                                        ref_id=i, due_after=due, due_before=None, patient_id=None, now=due)
                            for i in range(n)])
        s.execute(text("INSERT INTO do_not_call (phone, source, reason, created_at) "
                       "SELECT '+86138' || substr('00000000' || (x * 97), -8), 'admin', '', :now FROM "
                       "(WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < 3000) "
                       "SELECT x FROM seq) AS seq"), {"now": due})
        return c.id
    cid = db.call(seed)
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return cid


def _plan(db, stmt) -> str:
    prefix = "EXPLAIN " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.begin() as conn:
        return "\n".join(str(r[-1] if db.dialect == "sqlite" else r[0]) for r in conn.execute(text(prefix + sql)))


@pytest.mark.postgres
def test_claim_pick_walks_the_due_index(db):
    cid = _seed(db)
    pg = db.dialect == "postgresql"
    pick = store.due_ids_query(cid, to_dt(NOW), 50, lock=pg, phone_gap=3600)
    plan = _plan(db, pick)
    if pg:
        assert "ix_contacts_due" in plan and "Sort" not in plan, plan
        chosen = update(Contact).where(Contact.id == func.any(func.array(pick.scalar_subquery()))).values(claimed_by="x")
        plan = _plan(db, chosen)
        assert "Seq Scan on contacts" not in plan and "pk_contacts" in plan, plan
    else:
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    got = db.call(lambda s: store.claim(s, campaign_id=cid, limit=50, now=NOW, instance="t", guard_seconds=60,
                                        phone_gap=3600))
    assert len(got) == 50 and not {c.phone for c in got} & {f"+86138{x * 97:08d}" for x in range(1, 3001)}
