"""The queue-call rollups: every write path keeps them exact, the reports read from them equal
the previous implementation (``oracle_reports``) on the same calls, in DST and quarter-hour
zones, with periods that cut slots; a rebuild equals what the writes kept; the settings they
were counted with are enforced."""
from __future__ import annotations

import datetime as dt
import json
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from callcenter import reporting
from callcenter.queuecalls import agent_queries as aq
from callcenter.queuecalls import cli as qcli
from callcenter.queuecalls import report_queries as rq
from callcenter.queuecalls import rollup_figures, rollups, store
from callcenter.queuecalls.models import (QueueCall, QueueCallAgentRollup, QueueCallAgentRollupBlock,
                                          QueueCallGroupRollup, QueueCallGroupRollupBlock, QueueCallRollup,
                                          RollupDirty)
from callcenter.queuecalls.reducer import QueueCallRecord
from callcenter.store import migrate
from tests import support

from . import oracle_reports as old
from .test_report_queries import _calls, _same, _same_rows, _stored

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 27, 0, 0, tzinfo=UTC)


def _marks(db) -> int:
    return db.call(lambda s: s.execute(select(func.count()).select_from(RollupDirty)).scalar_one())


def _exact(db) -> None:
    """Nothing left marked, and every rollup row is what a recount from the calls gives."""
    assert _marks(db) == 0
    assert db.call(rollups.differences) == []


def _rec(uid: str, at: float, outcome: str = "answered", wait: float | None = 12.5, *, queue: str = "consultation",
         agent: str = "PJSIP/1001", gap: bool = False, source: str = "ami") -> QueueCallRecord:
    answered = outcome in ("answered", "transferred")
    return QueueCallRecord(uniqueid=uid, linkedid=uid, queue=queue, leg=1, caller_number="+8613800138001",
                           caller_name="", entered_at=at, answered_at=at + (wait or 0) if answered else None,
                           ended_at=at + 200, wait_seconds=wait, agent=agent if answered else "",
                           agent_name="", talk_seconds=180.0 if answered else None, outcome=outcome,
                           position=1, ivr_session_id=None, gap=gap, source=source)


def _figures(db, tz=ZoneInfo("Asia/Shanghai")) -> dict:
    return db.call(qcli.load_figures, None, None, None, tz, 30.0, 5.0)


def _oracle(db, tz=ZoneInfo("Asia/Shanghai")) -> dict:
    rows = _stored(db)
    inbound = [r for r in rows if r["direction"] == "inbound"]
    return {"summary": old.summarize(inbound, 30.0, 5.0), **old.breakdowns(inbound, 30.0, 5.0, tz)}


def _same_groups(db, since, until, queue) -> list:
    """The agents' and satisfaction groups from the rollups equal the same counted from the
    calls (``agent_queries.call_groups``); returns them."""
    def rounded(groups):  # sums of seconds to 1e-6: the order of addition
        return [(g.agent, g.queue, g.answered, round(g.talk, 6), g.within, g.name, g.ratings) for g in groups]
    got = db.call(aq.period_groups, since, until, target=30.0, short_abandon=5.0, queue=queue)
    want = db.call(lambda s: aq.call_groups(s, rq.period_calls(since, until, queue, index=aq.CALL_GROUPS_INDEX), 30.0))
    assert rounded(got) == rounded(want)
    return got


def _same_figures(got: dict, want: dict) -> None:
    _same(got["summary"], want["summary"])
    for name in ("queue", "agent", "hour", "day"):
        _same_rows(got[name], want[name])


@pytest.mark.postgres
def test_every_write_path_keeps_the_rollups_exact(db):
    t = T0.timestamp() + 3600
    # the tracker's batches (store.write_batch): new calls, with the checkpoint
    db.call(store.write_batch, [_rec(f"1.{i}", t + 61 * i, ["answered", "abandoned", "unknown"][i % 3],
                                     wait=[3.0, 40.0, None][i % 3]) for i in range(30)], 30.0, t + 2000, "default")
    _exact(db)
    assert db.call(lambda s: s.execute(select(func.count()).select_from(QueueCallRollup)).scalar_one()) > 1
    # merges: an unknown outcome replaced, a measured row kept against a guess, a call whose entry
    # time a resync corrected (it leaves its slot for another one)
    db.call(store.write_calls, [_rec("1.2", t + 122, "answered", 31.0), _rec("1.0", t, "abandoned", 2.0, gap=True),
                                _rec("1.3", t + 183 + 3600, "timeout", 50.0, agent="")], 30.0, "default")
    _exact(db)
    # a queue_log recovery: reconstructed rows (gap), new and replacing an unknown
    db.call(store.write_batch, [_rec("1.5", t + 305, "abandoned", 7.0, gap=True, source="queue_log"),
                                _rec("2.1", t + 7000, "answered", 9.0, gap=True, source="queue_log",
                                     agent="PJSIP/1002")], 30.0, None, "default")
    _exact(db)
    rows = {r["uniqueid"]: r for r in _stored(db)}
    assert rows["1.2"]["outcome"] == "answered" and rows["1.0"]["outcome"] == "answered"
    assert rows["1.5"]["outcome"] == "abandoned" and rows["1.3"]["entered_at"].timestamp() == t + 183 + 3600
    _same_figures(_figures(db), _oracle(db))

    # a post-call rating counts only in the agents' and satisfaction reports: it marks that
    # call's group day alone ("g"), and the next report recounts it
    ratings = support.domain().ratings
    with db.session() as s:
        ratings.record_rating(s, uniqueid="1.6", queue="consultation", agent="PJSIP/1001", outcome="rated",
                              score=1, level="satisfied", at=t + 900, ivr_session_id=None)
        day = int(t + 6 * 61) // 86400 * 86400
        assert [tuple(r) for r in s.execute(select(RollupDirty.kind, RollupDirty.agent, RollupDirty.slot))] == [
            ("g", "PJSIP/1001", day)]
    assert [k for k, _ in db.call(rollups.differences)] == ["queue_call_group_rollups"]  # not recounted yet
    groups = db.call(aq.period_groups, None, None, target=30.0, short_abandon=5.0)
    assert sum(g.ratings["rated"] for g in groups) == 1 and _same_groups(db, None, None, None) == groups
    _exact(db)

    # any other writer (a hand-made fix in SQL): the triggers mark the rows, the next report recounts
    for fix in (update(QueueCall).where(QueueCall.uniqueid == "1.4").values(outcome="abandoned", wait_seconds=1.0),
                update(QueueCall).where(QueueCall.uniqueid == "1.7").values(direction="outbound"),
                update(QueueCall).where(QueueCall.uniqueid == "1.8").values(queue="complaint", agent="PJSIP/1009"),
                delete(QueueCall).where(QueueCall.uniqueid == "1.9"),
                insert(QueueCall).values(uniqueid="3.1", linkedid="3.1", queue="appts", leg=1, outcome="answered",
                                         entered_at=T0, wait_seconds=4.0, agent="PJSIP/1001")):
        db.call(lambda s: s.execute(fix))
        assert _marks(db) > 0 and db.call(rollups.differences) != []
        _same_figures(_figures(db), _oracle(db))
        _exact(db)


@pytest.mark.postgres
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"])
def test_reports_from_rollups_equal_the_old_figures(db, zone):
    """DST (Berlin and New York change on 29 and 8 March; Lord Howe by half an hour on 5 April),
    +05:45 (Kathmandu); calls updated after being rolled up; periods cutting slots."""
    tz = ZoneInfo(zone)
    calls = _calls(1500, seed=3)
    rnd = random.Random(4)
    for c in calls:  # around the changes: 27 March - 12 April
        if c["entered_at"] is not None:
            c["entered_at"] = T0 + dt.timedelta(seconds=rnd.uniform(0, 16 * 86400))
    with db.session() as s:
        s.execute(insert(QueueCall), calls)
    _figures(db, tz)  # rolled up
    with db.session() as s:  # then changed
        s.execute(update(QueueCall).where(QueueCall.id % 7 == 0).values(outcome="abandoned", wait_seconds=4.5))
        s.execute(update(QueueCall).where(QueueCall.id % 11 == 0).values(
            entered_at=QueueCall.entered_at + dt.timedelta(minutes=47)) if db.dialect == "postgresql" else
            text("UPDATE queue_calls SET entered_at = strftime('%Y-%m-%d %H:%M:%f000', entered_at, '+47 minutes') "
                 "WHERE id % 11 = 0"))
    rows = _stored(db)
    periods = [(None, None, None),
               (dt.datetime(2026, 3, 28, 10, 7, 13, 250000, tzinfo=tz), dt.datetime(2026, 4, 6, 17, 52, 1, tzinfo=tz),
                None),
               (dt.datetime(2026, 3, 29, tzinfo=tz), dt.datetime(2026, 4, 9, tzinfo=tz), "complaint"),
               # holds a whole packed block of agent days (16 UTC days from 1 April)
               (dt.datetime(2026, 3, 27, 5, 3, tzinfo=tz), dt.datetime(2026, 4, 20, tzinfo=tz), None),
               (dt.datetime(2026, 4, 2, 9, 1, tzinfo=tz), dt.datetime(2026, 4, 2, 11, 8, tzinfo=tz), None),
               (dt.datetime(2026, 4, 2, 9, 1, tzinfo=tz), dt.datetime(2026, 4, 2, 9, 14, tzinfo=tz), None),
               (None, dt.datetime(2026, 4, 5, 3, 17, tzinfo=tz), None)]
    for since, until, queue in periods:
        picked = [r for r in rows if (queue is None or r["queue"] == queue)
                  and (since is None or (r["entered_at"] is not None and r["entered_at"] >= since))
                  and (until is None or (r["entered_at"] is not None and r["entered_at"] < until))]
        assert picked or until - since < dt.timedelta(minutes=15)  # within one slot: maybe no call
        want = {"summary": old.summarize(picked, 30.0, 5.0), **old.breakdowns(picked, 30.0, 5.0, tz)}
        _same_figures(db.call(qcli.load_figures, since, until, queue, tz, 30.0, 5.0), want)
        assert _same_groups(db, since, until, queue) or not picked
    # the web's reports over local days: hourly, daily, distribution, staffing, half hours, agents
    t0, t1 = dt.datetime(2026, 3, 28, tzinfo=tz), dt.datetime(2026, 4, 8, tzinfo=tz)
    _same_groups(db, t0, t1, None)
    days = [r for r in rows if r["entered_at"] is not None and t0 <= r["entered_at"] < t1]
    got = db.call(reporting.queue_reports, ("answer-times", "service-level-hourly", "service-level-daily",
                                            "staffing"), rq.utc(t0), rq.utc(t1), tz=tz, target=30.0, short=5.0,
                  days=11, goal=0.8, page=1, per_page=None)
    assert got["answer-times"]["rows"] == old.answer_time_distribution(days)
    _same(got["answer-times"]["summary"], old.summarize(days, 30.0, 5.0))
    _same_rows(got["service-level-hourly"]["rows"], old.service_level_by(days, "hour", tz, 30.0, 5.0))
    _same_rows(got["service-level-daily"]["rows"], old.service_level_by(days, "day", tz, 30.0, 5.0))
    want = old.staffing_by_hour(days, tz, days=11, target=30.0, goal=0.8)
    assert [{**r, "aht_seconds": None} for r in got["staffing"]["rows"]] == [{**r, "aht_seconds": None} for r in want]

    def half(r):
        local = r["entered_at"].astimezone(tz)
        return local.hour * 2 + (local.minute >= 30)
    halves = db.call(rq.by_half_hour, rq.utc(t0), rq.utc(t1), tz, target=30.0, short_abandon=5.0)
    _same_rows(rq.sorted_groups(halves, 30.0, 5.0, fmt=lambda k: f"{k:02d}"),
               old.group_by(days, lambda r: f"{half(r):02d}", 30.0, 5.0))
    # one agent's figures come from that agent's calls
    mine = [r for r in days if r["agent"] == "PJSIP/1001"]
    f = db.call(rq.period_figures, rq.utc(t0), rq.utc(t1), tz, target=30.0, short_abandon=5.0, agent="PJSIP/1001")
    _same(f.whole.summary(30.0, 5.0), old.summarize(mine, 30.0, 5.0))
    _exact(db)


@pytest.mark.postgres
def test_a_rebuild_equals_the_rollups_the_writes_kept(db):
    t = T0.timestamp()
    rnd = random.Random(8)
    for batch in range(12):
        recs = [_rec(f"{batch}.{i}", t + rnd.uniform(0, 3 * 86400), rnd.choice(["answered", "abandoned", "timeout",
                                                                                  "transferred", "unknown"]),
                     wait=rnd.choice([None, round(rnd.uniform(0, 120), 3)]), queue=rnd.choice(["a", "b"]),
                     agent=rnd.choice(["PJSIP/1001", "PJSIP/1002"])) for i in range(40)]
        db.call(store.write_calls, recs, 30.0, rnd.choice(["default", "east"]))

    def snapshot(s):  # every row, its counters unpacked (sums of seconds to 1e-6: the order of addition)
        out = {}
        for table in (QueueCallRollup, QueueCallAgentRollup, QueueCallAgentRollupBlock):
            rows = []
            for m in s.execute(select(table.__table__)).mappings():
                counts = {k: (None if v is None else round(v, 6)) for k, v in rollups.unpack_counts(m["counts"]).items()}
                rows.append((tuple(v for k, v in m.items() if k not in ("counts", "waits")), counts,
                             rollups.unpack(m["waits"])))
            out[table.__tablename__] = sorted(rows, key=str)
        for table in (QueueCallGroupRollup, QueueCallGroupRollupBlock):
            out[table.__tablename__] = sorted((tuple(round(v, 6) if isinstance(v, float) else v for v in r)
                                               for r in s.execute(select(table.__table__))), key=str)
        return out
    kept = db.call(snapshot)
    assert kept["queue_call_rollups"] and kept["queue_call_agent_rollups"] and kept["queue_call_group_rollup_blocks"]
    # 0999g: a block is one record, the sum of its days' (unpack_counts refuses any other length)
    for key, counts, waits in kept["queue_call_agent_rollup_blocks"]:
        days = [(c, w) for k, c, w in kept["queue_call_agent_rollups"]
                if k[:3] == key[:3] and key[3] <= k[3] < key[3] + rollups.BLOCK]
        assert days and counts["answered"] == sum(c["answered"] for c, _ in days)
        assert counts["max_wait"] == max((c["max_wait"] for c, _ in days if c["max_wait"] is not None), default=None)
        assert waits == sorted(w for _, ws in days for w in ws)
    db.call(rollups.rebuild, rollups.Settings(30.0, 5.0))
    assert db.call(snapshot) == kept
    assert {k[0][0] for k in kept["queue_call_rollups"]} == {"default", "east"}
    east = db.call(rq.period_figures, None, None, ZoneInfo("Asia/Shanghai"), target=30.0, short_abandon=5.0,
                   server="east")
    want = old.summarize([r for r in _stored(db) if r["server"] == "east"], 30.0, 5.0)
    _same(east.whole.summary(30.0, 5.0), want)


@pytest.mark.postgres
def test_the_settings_are_enforced_and_a_rebuild_takes_new_ones(db, config_env, monkeypatch, capsys):
    from callcenter import app
    from callcenter.cli import main
    from callcenter.config import load_config

    t = T0.timestamp()
    db.call(store.write_calls, [_rec("1.1", t, "answered", 25.0), _rec("1.2", t + 60, "abandoned", 8.0)],
            30.0, "default")
    with pytest.raises(rollups.RollupsStale, match="callcenter report rebuild-rollups"):
        db.call(qcli.load_figures, None, None, None, ZoneInfo("Asia/Shanghai"), 20.0, 5.0)
    monkeypatch.setenv("CALLCENTER_HOSPITAL_ANSWER_TARGET_SECONDS", "20")
    monkeypatch.setenv("CALLCENTER_HOSPITAL_SHORT_ABANDON_SECONDS", "10")
    with pytest.raises(rollups.RollupsStale, match="answer target 30 s and short abandon 5 s, the configuration "
                                                    "says 20 s and 10 s; run: callcenter report rebuild-rollups"):
        app._check_schema(load_config(None))  # `callcenter serve` and the demo refuse to start
    assert main(["report", "answer-times", "--format", "json"]) == 2
    assert "run: callcenter report rebuild-rollups" in capsys.readouterr().err
    assert main(["report", "rebuild-rollups"]) == 0
    assert "1 slot rows, 1 agent-day rows (answer target 20 s, short abandon 10 s)" in capsys.readouterr().out
    assert main(["report", "answer-times", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)["summary"]
    assert (out["answered_within_target"], out["short_abandons"]) == (0, 1)  # 25 s > 20 s; 8 s < 10 s
    app._check_schema(load_config(None))
    _exact(db)


@pytest.mark.postgres
def test_a_database_without_calls_takes_the_running_settings_at_start(db):
    db.call(rollups.check_at_start, 20.0, 3.0)
    assert db.call(rollups.stored_settings) == rollups.Settings(20.0, 3.0)
    db.call(rollups.rebuild, rollups.Settings(30.0, 5.0))  # as migrated, for the next test on PostgreSQL


def test_a_zone_whose_offset_is_not_quarter_hours_is_refused(db):
    tz = ZoneInfo("Africa/Monrovia")  # UTC-0:44:30 until 1972
    with db.session() as s:
        s.execute(insert(QueueCall).values(uniqueid="1", linkedid="1", queue="q", leg=1, outcome="answered",
                                           entered_at=dt.datetime(1971, 6, 1, 12, tzinfo=UTC), wait_seconds=3.0))
    with pytest.raises(rollup_figures.ZoneNotQuarterHours, match="Africa/Monrovia"):
        db.call(qcli.load_figures, dt.datetime(1971, 6, 1, tzinfo=tz), dt.datetime(1971, 6, 2, tzinfo=tz), None,
                tz, 30.0, 5.0)


def test_the_migration_counts_the_stored_calls(tmp_path):
    from callcenter.store import Database

    db = Database(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        migrate.upgrade(db.engine, "0998_asterisk_servers")
        with db.session() as s:
            s.execute(insert(QueueCall), [{k: v for k, v in c.items()} for c in _calls(300)])
        migrate.upgrade(db.engine, rollup_settings=(20.0, 4.0))
        assert db.call(rollups.stored_settings) == rollups.Settings(20.0, 4.0)
        assert db.call(lambda s: s.execute(select(func.count()).select_from(QueueCallRollup)).scalar_one()) > 50
        _exact(db)
        tz = ZoneInfo("Asia/Shanghai")
        rows = [r for r in _stored(db)]
        _same(db.call(qcli.load_figures, None, None, None, tz, 20.0, 4.0)["summary"], old.summarize(rows, 20.0, 4.0))
        migrate.downgrade(db.engine, "0998_asterisk_servers")  # and back: triggers and tables gone
        with db.session() as s:
            s.execute(insert(QueueCall).values(uniqueid="x", linkedid="x", queue="q", leg=1, outcome="answered"))
        assert "queue_call_rollups" not in db.table_names()
    finally:
        db.close()


@pytest.mark.postgres_only
def test_the_packed_rows_are_stored_uncompressed_on_postgresql(db):
    """0999e_rollup_storage: the rows a report reads whole are not decompressed at every read,
    those the writer packs later included (SQLite never compresses)."""
    columns = {"queue_call_rollup_days": ("slots", "counts", "nwaits", "waits"),
               "queue_call_agent_rollup_blocks": ("counts", "waits")}

    def storage(s):
        return {(t, c): s.execute(text("SELECT attstorage FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                                       "AND attname = :c"), {"t": t, "c": c}).scalar_one()
                for t, cols in columns.items() for c in cols}

    assert set(db.call(storage).values()) == {"e"}
    recs = [_rec(f"u{i}", T0.timestamp() + 37 * i, "answered" if i % 3 else "abandoned", wait=float(i % 90))
            for i in range(3000)]
    db.call(store.write_calls, recs, 30.0, "default")
    compressed = db.call(lambda s: s.execute(text(
        "SELECT count(*) FILTER (WHERE pg_column_compression(counts) IS NOT NULL), count(*) "
        "FROM queue_call_rollup_days")).one())
    assert compressed[0] == 0 and compressed[1] > 0
    _exact(db)


@pytest.mark.postgres
def test_the_agent_blocks_migration_sums_the_stored_blocks_and_downgrade_packs_them_again(db):
    """0999g_agent_block_sums: a block was its agent-day records run together, one each; after
    the upgrade it is one record, their sum, and a recount agrees."""
    t = T0.timestamp()
    db.call(store.write_calls, [_rec(f"b{i}", t + 5400 * i, ["answered", "transferred", "abandoned"][i % 3],
                                     wait=float(i % 50), agent=["PJSIP/1001", "PJSIP/1002"][i % 2])
                                for i in range(400)], 30.0, "default")  # 25 days: two blocks or more
    size = rollups.LAYOUT.itemsize

    def blocks(s):
        return {tuple(r[:4]): (len(r[4]) // size, rollups.unpack(r[5])) for r in s.execute(select(
            *[QueueCallAgentRollupBlock.__table__.c[k] for k in ("server", "queue", "agent", "block", "counts",
                                                                 "waits")]))}

    def days(s):
        out: dict = {}
        for server, queue, agent, day, waits in s.execute(select(
                QueueCallAgentRollup.server, QueueCallAgentRollup.queue, QueueCallAgentRollup.agent,
                QueueCallAgentRollup.day, QueueCallAgentRollup.waits)):
            n, w = out.get((server, queue, agent, day - day % rollups.BLOCK), (0, []))
            out[(server, queue, agent, day - day % rollups.BLOCK)] = (n + 1, w + rollups.unpack(waits))
        return out

    summed = db.call(blocks)
    assert len({k[3] for k in summed}) >= 2 and {n for n, _ in summed.values()} == {1}
    try:
        migrate.downgrade(db.engine, "0999f_call_group_rollups")
        packed, per_day = db.call(blocks), db.call(days)
        assert ({k: (n, sorted(w)) for k, (n, w) in packed.items()}
                == {k: (n, sorted(w)) for k, (n, w) in per_day.items()})
        assert max(n for n, _ in packed.values()) > 1
    finally:
        migrate.upgrade(db.engine)
    assert db.call(blocks) == summed
    _exact(db)


@pytest.mark.postgres
def test_the_agents_read_beside_the_slots_equals_the_calls(db, monkeypatch):
    """The answer-times report reads "By agent" on a second connection while it reads the slots
    (PostgreSQL), unless its transaction recounted marked rows, which only it can see; SQLite
    reads both in turn.  Each way the figures are the calls'."""
    t = T0.timestamp()
    db.call(store.write_calls, [_rec(f"p{i}", t + 1800 * i, ["answered", "transferred", "abandoned"][i % 3],
                                     wait=float(i % 70), agent=["PJSIP/1001", "PJSIP/1002", "PJSIP/1003"][i % 3])
                                for i in range(900)], 30.0, "default")
    apart = []
    real = rollup_figures._agents_apart
    monkeypatch.setattr(rollup_figures, "_agents_apart", lambda *a: apart.append(a) or real(*a))
    tz = ZoneInfo("Asia/Shanghai")
    since, until = dt.datetime(2026, 3, 28, 9, 7, tzinfo=tz), dt.datetime(2026, 4, 30, tzinfo=tz)

    def want():
        rows = [r for r in _stored(db) if since <= r["entered_at"] < until]
        return {"summary": old.summarize(rows, 30.0, 5.0), **old.breakdowns(rows, 30.0, 5.0, tz)}
    _same_figures(db.call(qcli.load_figures, since, until, None, tz, 30.0, 5.0), want())
    assert len(apart) == (db.dialect == "postgresql")
    # a hand-made fix: this report's transaction recounts it, so it reads the agents itself
    db.call(lambda s: s.execute(update(QueueCall).where(QueueCall.uniqueid == "p60").values(agent="PJSIP/1009")))
    assert _marks(db) > 0
    got = db.call(qcli.load_figures, since, until, None, tz, 30.0, 5.0)
    assert len(apart) == (db.dialect == "postgresql") and "PJSIP/1009" in [g["key"] for g in got["agent"]]
    _same_figures(got, want())
    _exact(db)
    # a session on one connection (a caller's own transaction): read in turn, what it wrote seen
    from sqlalchemy.orm import Session

    with db.engine.connect() as conn, Session(conn) as s:
        s.execute(update(QueueCall).where(QueueCall.uniqueid == "p60").values(agent="PJSIP/1010"))
        rollups.settle(s)
        got = qcli.load_figures(s, since, until, None, tz, 30.0, 5.0)
        s.rollback()
    assert len(apart) == (db.dialect == "postgresql") and "PJSIP/1010" in [g["key"] for g in got["agent"]]


@pytest.mark.postgres
def test_hours_and_days_without_calls_are_not_groups(db):
    """A local hour or day between two with calls, that has none, is no row of "By hour" or
    "By day" (the groups are numbered over the range of keys; the empty ones are left out)."""
    tz = ZoneInfo("Asia/Shanghai")
    at = [dt.datetime(2026, 4, d, h, 20, tzinfo=tz).timestamp() for d in (1, 3) for h in (9, 11)]
    db.call(store.write_calls, [_rec(f"e{i}", t, "answered", wait=5.0 + i) for i, t in enumerate(at)], 30.0, "default")
    got = _figures(db, tz)
    assert [g["key"] for g in got["hour"]] == ["09:00", "11:00"]
    assert [g["key"] for g in got["day"]] == ["2026-04-01", "2026-04-03"]
    _same_figures(got, _oracle(db, tz))
