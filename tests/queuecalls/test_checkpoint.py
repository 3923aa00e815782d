"""The tracker's checkpoint and the merge of what was known live, on both databases."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select

from callcenter.queuecalls import store
from callcenter.queuecalls.models import QueueCall
from callcenter.queuecalls.reducer import QueueCallRecord
from ivr_flows.models import IvrSession


def rec(uid, *, name="", sid=None, gap=False, outcome="answered", source="ami"):
    return QueueCallRecord(uid, uid, "consultation", 1, "+8613800138001", name, 100.0, 104.0, 160.0, 4.0,
                           "Local/1001@sim-agent/n", "Agent 1001", 56.0, outcome, 1, sid, gap, source)


@pytest.mark.postgres
def test_checkpoint_moves_forward_only_with_the_batch(db):
    assert db.call(store.load_checkpoint, "default") is None
    db.call(store.write_batch, [rec("1.1")], 30.0, 1_795_400_010.5, "default")
    assert db.call(store.load_checkpoint, "default") == pytest.approx(1_795_400_010.5)
    db.call(store.write_batch, [rec("1.2")], 30.0, 1_795_400_005.0, "default")  # a late batch: never rewinds
    db.call(store.save_checkpoint, 1_795_400_020.25, "default")
    assert db.call(store.load_checkpoint, "default") == pytest.approx(1_795_400_020.25)


@pytest.mark.postgres
def test_a_rebuilt_row_keeps_the_name_and_ivr_session_it_replaces(db):
    def ivr(s):
        row = IvrSession(flow="hotline", uniqueid="1.4", caller_number="13800138001",
                         started_at=dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc), path=[], digits="",
                         result="", language="zh", detail={})
        s.add(row)
        s.flush()
        return row.id
    sid = db.call(ivr)
    db.call(store.write_calls, [rec("1.3", name="王小明", sid=7, gap=True, outcome="unknown")], 30.0, "default")
    db.call(store.write_calls, [rec("1.3", gap=True, source="queue_log")], 30.0, "default")
    assert db.call(store.known_of, ["1.3", "1.4", "1.5"], "default") == {"1.3": ("王小明", 7), "1.4": ("", sid)}

    with db.session() as s:
        (row,) = s.scalars(select(QueueCall))
    assert (row.outcome, row.source, row.caller_name, row.ivr_session_id) == ("answered", "queue_log", "王小明", 7)


@pytest.mark.postgres
def test_the_upgrade_seeds_the_checkpoint_from_the_newest_stored_call(db):
    """An install upgraded to the checkpoint recovers the downtime of the upgrade itself."""
    from callcenter.store import migrate

    migrate.downgrade(db.engine, "0950_phone_numbers_e164")  # the revision before ours
    row = {k: v for k, v in store.row_of(rec("2.1"), 30.0, "default").items() if k != "server"}  # 0950's columns
    db.call(lambda s: s.execute(insert(QueueCall), [row]))  # ended at 160.0
    migrate.upgrade(db.engine)
    # and 0998 (several Asterisk servers): the rows and the checkpoint are the "default" server's
    assert db.call(store.load_checkpoint, "default") == pytest.approx(160.0)
    assert db.call(lambda s: s.scalars(select(QueueCall.server)).all()) == ["default"]
