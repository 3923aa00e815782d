"""The staffing plan from stored queue calls: the SQL half-hour history, the CLI and the HTTP API,
on SQLite and PostgreSQL.  History rows come from the seeded simulation (store-level fixture)."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from twisted.internet.task import Clock

from callcenter.cli import main
from callcenter.queuecalls.history import half_hours
from callcenter.queuecalls.models import QueueCall
from tests.support.web import Client, FakeQueueCalls, add_users, running_web

from .simulated import simulate

TZ = ZoneInfo("Asia/Shanghai")
START = dt.date(2026, 11, 2)          # Monday
END = START + dt.timedelta(weeks=3)   # 2026-11-23: plan 11-23 .. 11-29


def store(db, intervals) -> None:
    """Each simulated half hour as rows: n-1 answered + 1 long abandon (offered n), + 1 short abandon."""
    rows = []
    for iv in intervals:
        t0 = dt.datetime.combine(iv.day, dt.time(iv.slot // 2, 30 * (iv.slot % 2)), TZ).astimezone(dt.timezone.utc)
        for k in range(iv.offered + 1):
            at = t0 + dt.timedelta(seconds=k * 1700 / (iv.offered + 1))
            outcome, wait = ("answered", 10.0) if k < iv.offered - 1 else ("abandoned", 40.0 if k < iv.offered else 2.0)
            ans = outcome == "answered"
            rows.append({"uniqueid": f"{iv.queue}.{at.timestamp():.3f}", "queue": iv.queue, "leg": 1,
                         "entered_at": at, "answered_at": at if ans else None, "ended_at": at,
                         "wait_seconds": wait, "agent": f"PJSIP/{1000 + k % 4}" if ans else "",
                         "talk_seconds": 180.0 if ans else None, "outcome": outcome, "within_target": ans})
    db.call(lambda s: s.execute(insert(QueueCall), rows))


@pytest.fixture
def history(db):
    sim = simulate(START, 21, base=60.0, seed=7)
    store(db, sim)
    return sim


UTC = dt.timezone.utc


def _rows(page: str, table_id: str) -> int:
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return body.count("<tr") - 1  # less the heading row


@pytest.mark.postgres
def test_half_hour_history_is_grouped_in_sql_by_local_half_hour(db, history):
    since = dt.datetime.combine(START, dt.time(), TZ)
    at = dt.datetime.combine(START, dt.time(9, 5), TZ)  # an outbound (dialer) call: not offered inbound
    db.call(lambda s: s.execute(insert(QueueCall), [{
        "uniqueid": "out.1", "queue": "general", "leg": 1, "entered_at": at, "answered_at": at, "ended_at": at,
        "wait_seconds": 1.0, "agent": "PJSIP/2000", "talk_seconds": 60.0, "outcome": "answered",
        "within_target": True, "direction": "outbound"}]))
    got = db.call(half_hours, since, since + dt.timedelta(weeks=3), TZ, short_abandon=5.0)
    assert {(r.day, r.slot): r.offered for r in got} == {(r.day, r.slot): r.offered for r in history}
    one = max(got, key=lambda r: r.offered)
    assert one.answered == one.offered - 1 and one.talk_seconds == 180.0 * one.answered
    assert one.agents_seen == min(4, one.answered)


@pytest.mark.postgres
def test_cli_staffing_plan_json_and_table(db, config, history, capsys):
    assert main(["report", "staffing-plan", "--since", END.isoformat(), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["day"] for r in out["rows"]} == {(END + dt.timedelta(days=i)).isoformat() for i in range(7)}
    monday = {r["time"]: r for r in out["rows"] if r["day"] == END.isoformat()}
    assert monday["09:00"]["agents_needed"] >= 2 and monday["02:00"]["agents_needed"] == 0
    # ~2 calls per half hour: the Poisson noise alone gives a WAPE near 0.56 (docs/forecast.md)
    assert out["backtest"]["intervals"] == 7 * 48 and 0.3 < out["backtest"]["wape"] < 0.8
    assert main(["report", "staffing-plan", "--since", END.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "Back-test" in text and "WAPE" in text and "agents_needed" in text
    assert main(["report", "staffing-plan", "--since", END.isoformat(), "--queue", "nope"]) != 0
    assert "no inbound queue calls" in capsys.readouterr().err


@pytest.mark.postgres
def test_cli_too_little_history_says_what_is_missing(db, config, capsys):
    store(db, simulate(START, 9, base=60.0))
    assert main(["report", "staffing-plan", "--since", (START + dt.timedelta(days=9)).isoformat()]) != 0
    assert "9 days of history" in capsys.readouterr().err


@pytest.mark.postgres
async def test_http_staffing_plan_api_and_reports_page(db, config, history):
    clock = Clock()
    clock.advance(dt.datetime.combine(END, dt.time(10), TZ).timestamp())  # Monday 10:00, plan from Tuesday
    add_users(db)
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        r = await c.get(f"/api/reports/staffing-plan?to={END.isoformat()}")
        assert r.status == 200, r.text
        body = r.json()
        days = {row["day"] for row in body["rows"]}
        assert min(days) == (END + dt.timedelta(days=1)).isoformat() and len(days) == 7
        assert body["backtest"]["wape"] is not None and body["past"]
        csv = (await c.get(f"/reports/staffing-plan.csv?to={END.isoformat()}")).body.decode("utf-8-sig").splitlines()
        assert csv[0] == "Queue,Day,Time,Forecast calls,Handling time (s),Agents needed,Expected service level"
        assert len(csv) == 1 + 7 * 48
        page = (await c.get(f"/reports?to={END.isoformat()}")).text
        assert 'id="report-staffing-plan"' in page and 'id="plan-backtest"' in page and "WAPE" in page
        assert 'id="plan-chart"' in page and "<polyline" in page
        # compact: the 7 days, then one day's half hours (the first), the past week per day and queue
        days = [(END + dt.timedelta(days=i)).isoformat() for i in range(1, 8)]
        assert _rows(page, "table-staffing-plan") == 7 and 'id="plan-made"' in page
        assert all(f"plan_day={d}#plan-day" in page for d in days[1:]) and f"plan_day={days[0]}" not in page
        first_day = _rows(page, "table-staffing-plan-day")
        assert 0 < first_day <= 48 and _rows(page, "table-staffing-plan-past") <= 7 * 1  # one queue: general
        assert len(page) < 60_000, len(page)
        other = (await c.get(f"/reports?to={END.isoformat()}&plan_day={days[6]}")).text
        assert f'<strong aria-current="page">{days[6]}</strong>' in other and f"plan_day={days[0]}#plan-day" in other
        for bad in (START.isoformat(), (END + dt.timedelta(days=8)).isoformat(), "monday"):
            assert (await c.get(f"/reports?to={END.isoformat()}&plan_day={bad}")).status == 400, bad
        # the plan is made once for both views (PlanCache), and again once its minutes are over
        made = web.app.plans.get(next(iter(web.app.plans._plans)))
        assert made is not None and made["made_at"] == dt.datetime.fromtimestamp(clock.seconds(), UTC).isoformat(
            timespec="seconds")
        clock.advance(600)
        assert web.app.plans.get(next(iter(web.app.plans._plans))) is None
        r = await c.get(f"/api/reports/staffing-plan?to={(START + dt.timedelta(days=5)).isoformat()}")
        assert r.status == 200 and "days of history" in r.json()["history_error"]


@pytest.mark.postgres
async def test_the_web_keeps_todays_plan_made_so_no_view_of_the_page_waits_for_it(db, config, history):
    import asyncio

    from sqlalchemy import event

    from callcenter.staffing_plan import load_plan
    from callcenter.web import staffing_plan_view as spv

    made = []

    def count(conn, cursor, statement, *args):  # the plan's history: one GROUP BY per plan made
        if "count(DISTINCT CASE" in statement:
            made.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    clock = Clock()
    clock.advance(dt.datetime.combine(END, dt.time(10), TZ).timestamp())  # today is END
    try:
        async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls()) as web:
            app = web.app
            key = spv._key(app, END + dt.timedelta(days=1))
            for _ in range(1000):  # made at start, before anyone asks
                if app.plans.get(key) is not None:
                    break
                await asyncio.sleep(0.01)
            kept = app.plans.get(key)
            assert kept is not None and len(made) == 1
            assert sorted({r["day"] for r in kept["rows"]}) == [(END + dt.timedelta(days=i)).isoformat()
                                                                 for i in range(8)]
            # the views up to today and up to yesterday take their 7 days from it
            today = await spv.staffing_plan(app, END)
            yesterday = await spv.staffing_plan(app, END - dt.timedelta(days=1))
            assert len(made) == 1
            h = config.hospital
            for plan, first in ((today, END + dt.timedelta(days=1)), (yesterday, END)):
                days = [first + dt.timedelta(days=i) for i in range(7)]
                direct = db.call(load_plan, app.domain.complaints.calendar, tz=TZ, end=END, days=days,
                                 target=float(h.answer_target_seconds), goal=float(config.web.staffing_goal),
                                 short_abandon=float(h.short_abandon_seconds))
                assert {k: plan[k] for k in direct} == direct  # as if made for those 7 days alone
            # made again before the shown one expires: a view a plan's lifetime later still finds one
            del made[:]  # (the direct plans above)
            due = clock.seconds() + spv.REFRESH_SECONDS
            for _ in range(1000):  # the keeper, past its plan, is waiting for the next round
                if any(abs(c.getTime() - due) < 1e-6 for c in clock.getDelayedCalls()):
                    break
                await asyncio.sleep(0.01)
            clock.advance(spv.REFRESH_SECONDS)
            for _ in range(1000):
                if made and not app.plans.making:
                    break
                await asyncio.sleep(0.01)
            assert len(made) == 1
            clock.advance(spv.PLAN_SECONDS - spv.REFRESH_SECONDS)
            assert app.plans.get(key) is not None
            # views of another period at the same time: one plan made for both
            other = END - dt.timedelta(days=3)
            a, b = await asyncio.gather(spv.staffing_plan(app, other), spv.staffing_plan(app, other))
            assert a == b and a["rows"] and len(made) == 2
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
