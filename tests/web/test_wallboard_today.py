"""Today's wallboard figures as running totals: equal to ``stats.summarize`` over the stored
rows, reset at the hospital's midnight, each call counted once across loads, and no SQL
per snapshot whatever the day's traffic.  Real database, the real tracker's fact and write
path, an injected ``task.Clock``."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select
from twisted.internet import task

from callcenter.queuecalls import stats
from callcenter.queuecalls.models import QueueCall
from callcenter.queuecalls.reducer import Finished, QueueCallRecord
from callcenter.queuecalls.store import write_calls
from callcenter.queuecalls.tracker import QueueCallsTracker
from callcenter.web import today
from callcenter.web.live import day_bounds

from tests.support.web import add_users, running_web, start_up_plan_made

TZ = ZoneInfo("Asia/Shanghai")  # the config's [hospital] timezone
MON_0800 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=TZ).timestamp()
MIDNIGHT = dt.datetime(2026, 11, 3, 0, 0, tzinfo=TZ).timestamp()
SHOWN = ("offered", "answered", "abandoned", "service_level", "asa_seconds")


def rec(uid, queue, entered, outcome, wait, *, leg=1, gap=False) -> QueueCallRecord:
    answered = entered + wait if outcome in ("answered", "transferred") and wait is not None else None
    return QueueCallRecord(
        uniqueid=uid, linkedid=uid, queue=queue, leg=leg, caller_number="13800138000", caller_name="",
        entered_at=entered, answered_at=answered, ended_at=entered + (wait or 0) + 60, wait_seconds=wait,
        agent="Local/1001@sim-agent/n" if answered else "", agent_name="", talk_seconds=60 if answered else None,
        outcome=outcome, position=1, ivr_session_id=None, gap=gap)


def mixed_day(n: int, start: float, seed: int = 7) -> list[QueueCallRecord]:
    """Answered, transferred, abandoned (short and long), timeouts, redirected, unknown (gap)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        outcome = rnd.choices(["answered", "transferred", "abandoned", "timeout", "redirected", "unknown"],
                              [60, 5, 20, 8, 3, 2])[0]
        wait = None if outcome == "unknown" or rnd.random() < 0.02 else round(rnd.uniform(0, 120), 3)
        out.append(rec(f"1700.{i}", rnd.choice(["consultation", "complaints"]), start + i * 7, outcome, wait,
                       gap=outcome == "unknown"))
    return out


def stored_summaries(db, now: float) -> dict[str, dict]:
    """What ``stats.summarize`` computes from the stored rows of the local day of ``now``."""
    start, end = day_bounds(now, TZ)
    rows = db.call(lambda s: s.scalars(select(QueueCall).where(QueueCall.entered_at >= start,
                                                               QueueCall.entered_at < end)).all())
    out = {"": stats.summarize(rows, 30.0, 5.0)}
    for q in {r.queue for r in rows}:
        out[q] = stats.summarize([r for r in rows if r.queue == q], 30.0, 5.0)
    return out


class Statements:
    """Counts SQL statements on the engine (``before_cursor_execute``)."""

    def __init__(self, engine):
        self.engine, self.n = engine, 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_a):
        self.n += 1

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._count)


def tracker_for(db, clock) -> QueueCallsTracker:
    """The real tracker, fed facts directly (no gateway): its buffer, notify and write path."""
    return QueueCallsTracker(db, clock, flush_interval=0.2)


@pytest.mark.postgres
async def test_running_totals_equal_stats_summarize_over_stored_rows(config, db):
    clock = task.Clock()
    clock.advance(MON_0800)
    calls = mixed_day(400, MON_0800 - 7 * 3600)   # from 01:00 local through the day
    yesterday = [rec("1699.1", "consultation", MON_0800 - 9 * 3600, "answered", 3.0)]  # 23:00 the day before
    tr = tracker_for(db, clock)
    # before the web starts: written, and one batch still in the tracker's unwritten buffer
    db.call(write_calls, calls[:150] + yesterday, 30.0, "default")
    tr.buffer.extend(calls[150:200])
    async with running_web(config, db, clock=clock, queuecalls=tr) as web:
        feed = web.app.wallboard
        await feed.snapshot()
        # after start: finished facts, some of them again for calls already stored or buffered
        tr._facts([Finished(r) for r in calls[140:320]])
        # a reconstructed (gap) copy of a measured call must not replace it; an unknown is replaced
        tr._facts([Finished(rec(calls[0].uniqueid, calls[0].queue, calls[0].entered_at, "abandoned", 1.0,
                                gap=True))])
        late = [r for r in calls[320:] if r.outcome == "unknown"]
        tr._facts([Finished(r) for r in calls[320:]])
        tr._facts([Finished(rec(r.uniqueid, r.queue, r.entered_at, "answered", 12.5, gap=True))
                   for r in late])
        await tr.flush()
        board = await feed.snapshot()
        expected = stored_summaries(db, clock.seconds())
        assert feed.figures.summaries() == expected
        assert expected[""]["short_abandons"] > 0 and expected[""]["timeouts"] > 0 and late
        assert expected[""]["gaps"] >= len(late) and expected[""]["redirected"] > 0
        totals = {k: board["totals"][k] for k in SHOWN}
        assert totals == {k: expected[""][k] for k in SHOWN}
        for q in board["queues"]:
            assert {k: q[k] for k in SHOWN} == {k: expected[q["name"]][k] for k in SHOWN}
        assert feed.loads == 1


@pytest.mark.postgres
async def test_day_rolls_over_at_the_hospitals_midnight(config, db):
    clock = task.Clock()
    clock.advance(MIDNIGHT - 600)  # Monday 23:50 in Shanghai (15:50 UTC)
    tr = tracker_for(db, clock)
    add_users(db)
    async with running_web(config, db, clock=clock, queuecalls=tr) as web:
        feed = web.app.wallboard
        tr._facts([Finished(rec("m.1", "consultation", MIDNIGHT - 500, "answered", 10.0)),
                   Finished(rec("m.2", "consultation", MIDNIGHT - 400, "abandoned", 40.0))])
        board = await feed.snapshot()
        assert board["totals"]["offered"] == 2 and board["totals"]["service_level"] == 0.5
        clock.advance(590)  # 23:59:50: a call entering before midnight ends after it
        tr._facts([Finished(rec("m.3", "consultation", MIDNIGHT - 5, "answered", 20.0))])
        assert (await feed.snapshot())["totals"]["offered"] == 3
        clock.advance(30)  # Tuesday 00:00:20
        tr._facts([Finished(rec("t.1", "consultation", MIDNIGHT + 1, "answered", 50.0))])
        await tr.flush()
        board = await feed.snapshot()
        assert board["at"].startswith("2026-11-03T00:00")
        assert board["totals"]["offered"] == 1 and board["totals"]["answered"] == 1
        assert board["totals"]["service_level"] == 0.0 and board["totals"]["asa_seconds"] == 50.0
        assert feed.loads == 2
        assert feed.figures.summaries() == stored_summaries(db, clock.seconds())
        tr._facts([Finished(rec("t.2", "consultation", MIDNIGHT + 10, "answered", 5.0))])
        assert (await feed.snapshot())["totals"]["offered"] == 2 and feed.loads == 2


async def test_no_double_count_across_a_reload(config, db):
    clock = task.Clock()
    clock.advance(MON_0800)
    calls = mixed_day(60, MON_0800 - 3600, seed=3)
    tr = tracker_for(db, clock)
    async with running_web(config, db, clock=clock, queuecalls=tr) as web:
        feed = web.app.wallboard
        tr._facts([Finished(r) for r in calls[:30]])
        await feed.snapshot()
        await tr.flush()
        # an AMI re-login reloads the day: stored calls and facts already counted meet again
        await feed._reconnected()
        tr._facts([Finished(r) for r in calls[20:45]])     # facts while the reload is due
        await feed.snapshot()
        tr._facts([Finished(r) for r in calls[40:]])       # and after it, partly repeated
        await tr.flush()
        await feed._reconnected()
        await feed.snapshot()
        assert feed.loads == 3
        assert len(feed.figures.calls) == 60
        assert feed.figures.summaries() == stored_summaries(db, clock.seconds())


async def test_snapshot_runs_no_sql_whatever_the_days_traffic(config, db):
    add_users(db)
    clock = task.Clock()
    clock.advance(MON_0800 + 9 * 3600)  # 17:00
    tr = tracker_for(db, clock)
    async with running_web(config, db, clock=clock, queuecalls=tr) as web:
        feed = web.app.wallboard
        await start_up_plan_made(web.app)  # its SQL is not the wallboard's
        sql = Statements(db.engine)
        try:
            first = await feed.snapshot()
            at_start = sql.n
            assert at_start > 0  # the one load (and the agent users)
            per_day = {}
            for n in (10, 3000):  # a quiet morning, then a busy day's worth of calls
                day = mixed_day(n, MON_0800 - 7 * 3600 + 1, seed=n)
                tr._facts([Finished(r) for r in day])
                sql.n = 0
                for _ in range(20):
                    board = await feed.snapshot()
                    clock.advance(1)
                per_day[n] = sql.n
                assert board["totals"]["offered"] > first["totals"]["offered"]
            assert per_day == {10: 0, 3000: 0}
        finally:
            sql.close()
        assert feed.loads == 1


def test_totals_remove_what_they_added():
    f = today.TodayFigures(0.0, 86400.0, 30.0, 5.0)
    key = ("u", "q", 1)
    assert f.apply(key, 10.0, today.Contribution("q", "unknown", None, True))
    assert f.apply(key, 10.0, today.Contribution("q", "answered", 12.0, False))
    assert not f.apply(key, 10.0, today.Contribution("q", "abandoned", 2.0, True))  # gap never wins
    assert not f.apply(("v", "q", 1), 86400.0, today.Contribution("q", "answered", 1.0, False))  # tomorrow
    s = f.summaries()["q"]
    assert (s["offered"], s["answered"], s["gaps"], s["max_wait_seconds"]) == (1, 1, 0, 12.0)
    assert s == stats.summarize([SimpleNamespace(outcome="answered", wait_seconds=12.0, gap=False)], 30.0, 5.0)


async def test_dialer_calls_are_shown_apart_from_the_hotline(config, db):
    """An outbound queue call (a dialer patient) changes no hotline figure; the campaign's
    outbound figures (answered, connected, abandoned under the 2 s rule) are their own section,
    re-read when a dialer call changed."""
    from dialer.campaigns import contact_row, create_campaign, insert_contacts
    from dialer.models import Attempt, Contact
    from dialer.timeutil import to_dt

    add_users(db)
    clock = task.Clock()
    clock.advance(MON_0800 + 3600)
    t = clock.seconds()

    def seed(s):
        c = create_campaign(s, name="no-shows", kind="no_show", mode="progressive", queue="consultation",
                            state="running")
        insert_contacts(s, [contact_row(c.id, "k", phone="+8613800138001", name="P", reason="no_show",
                                        ref_type="t", ref_id="1", due_after=to_dt(t - 600), due_before=None,
                                        patient_id=None, now=to_dt(t - 600))])
        k = s.scalar(select(Contact))
        for i, delay in enumerate((0.8, 1.4, 3.5, None)):  # the last two: abandoned (> 2 s, never)
            s.add(Attempt(contact_id=k.id, campaign_id=c.id, phone=k.phone, state="ended", disposition="reached",
                          started_at=to_dt(t - 300 + i), answered_at=to_dt(t - 290 + i),
                          connected_at=None if delay is None else to_dt(t - 290 + i + delay)))
    db.call(seed)
    tr = tracker_for(db, clock)
    async with running_web(config, db, clock=clock, queuecalls=tr) as web:
        feed = web.app.wallboard
        before = await feed.snapshot()
        assert [(o["campaign"], o["answered"], o["connected"], o["abandoned"]) for o in before["outbound"]] == [
            ("no-shows", 4, 3, 2)]
        out = rec("1800.1", "consultation", t - 100, "answered", 1.0)
        out.direction, out.attempt_id, out.campaign_id = "outbound", 9, 1
        tr._facts([Finished(rec("1800.2", "consultation", t - 100, "answered", 20.0)), Finished(out)])
        after = await feed.snapshot()
        assert after["totals"]["offered"] == before["totals"]["offered"] + 1   # the hotline call only
        assert feed._outbound_dirty                       # re-read at most once per 30 s
        clock.advance(31)
        await feed.snapshot()
        assert feed._outbound_dirty is False and feed._outbound_at == clock.seconds()
