"""How the reports page reads a year of queue calls: the agents report and both satisfaction
views from one read (per agent on SQLite), each long read from the index it names, and the
figures equal to counting the stored calls one by one.  SQL on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, insert

from callcenter import reporting
from callcenter.queuecalls import satisfaction
from callcenter.queuecalls.models import QueueCall

TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
START, END = dt.date(2026, 11, 16), dt.date(2026, 11, 22)
AGENTS = ["PJSIP/1001", "PJSIP/1002", "Local/1003@sim-agent/n"]
QUEUES = ["complaint", "consultation", "general"]
LEVELS = {"rated": ["satisfied", "neutral", "unsatisfied"], "no_input": [""], "invalid": [""], "hangup": [""]}


def _calls(n: int = 400) -> list[dict]:
    """Calls over the week and just outside it, every outcome, some rated, some outbound."""
    rnd = random.Random(5)
    t0 = dt.datetime.combine(START, dt.time(), TZ).astimezone(UTC) - dt.timedelta(hours=12)
    rows = []
    for i in range(n):
        at = t0 + dt.timedelta(seconds=rnd.random() * 8 * 86400)
        outcome = rnd.choice(["answered", "answered", "answered", "transferred", "abandoned", "timeout",
                              "redirected", "unknown"])
        answered = outcome in ("answered", "transferred") or (outcome == "unknown" and rnd.random() < 0.5)
        agent = rnd.choice(AGENTS) if answered else ""
        wait = None if rnd.random() < 0.05 else round(rnd.random() * 60, 2)
        rating, level = "", ""
        if agent and rnd.random() < 0.6:
            rating = rnd.choice(list(LEVELS))
            level = rnd.choice(LEVELS[rating])
        rows.append({"uniqueid": f"u{i}", "linkedid": f"u{i}", "queue": rnd.choice(QUEUES), "leg": 1,
                     "entered_at": at, "answered_at": at if answered else None, "ended_at": at,
                     "wait_seconds": wait, "agent": agent, "agent_name": f"name {agent[-4:]}" if agent else "",
                     "talk_seconds": round(rnd.random() * 300, 1) if answered else None, "outcome": outcome,
                     "gap": outcome == "unknown", "direction": "outbound" if rnd.random() < 0.05 else "inbound",
                     "rating_outcome": rating, "rating_level": level, "server": rnd.choice(["default", "b"])})
    return rows


def _settings() -> reporting.ReportSettings:
    return reporting.ReportSettings(tz=TZ, target=30.0, short_abandon=5.0, goal=0.8, window_days=30.0,
                                    wrapup=lambda q: {"complaint": 3.0}.get(q, 5.0))


def _compute(db, names, **kw):
    now = dt.datetime.combine(END + dt.timedelta(days=1), dt.time(), TZ).astimezone(UTC)
    return db.call(reporting.compute, names, START, END, settings=_settings(), now=now, **kw)


def _counted(rows, queue=None, server=None):
    """The calls the reports count, one by one (the oracle)."""
    t0, t1 = reporting.bounds(START, END, TZ)
    return [r for r in rows if r["direction"] == "inbound" and t0 <= r["entered_at"] < t1
            and (queue is None or r["queue"] == queue) and (server is None or r["server"] == server)]


def _answered(r) -> bool:  # report_queries.web_answered
    return r["outcome"] in ("answered", "transferred") or (
        r["answered_at"] is not None and r["outcome"] not in ("abandoned", "timeout"))


def _ratings(calls) -> dict:
    n = {k: 0 for k in satisfaction.COUNTS}
    for r in calls:
        for k, v in satisfaction.counts_of(r["rating_outcome"], r["rating_level"]).items():
            n[k] += v
    return satisfaction.figures(n)


@pytest.mark.postgres
@pytest.mark.parametrize("filters", [{}, {"queue": "consultation"}, {"server": "b"}])
def test_agents_and_satisfaction_from_one_read_equal_the_calls_counted_one_by_one(db, filters):
    rows = _calls()
    db.call(lambda s: s.execute(insert(QueueCall), rows))
    got = _compute(db, ("agents", "satisfaction"), **filters)
    calls = _counted(rows, **filters)
    want_agents = []
    for a in sorted({r["agent"] for r in calls if r["agent"] and _answered(r)}):
        mine = [r for r in calls if r["agent"] == a and _answered(r)]
        talk = sum(r["talk_seconds"] or 0.0 for r in mine)
        wrap = sum(_settings().wrapup(r["queue"]) for r in mine)
        rated = _ratings([r for r in calls if r["agent"] == a])
        want_agents.append({"agent": a, "name": f"name {a[-4:]}", "answered": len(mine),
                            "answered_within_target": sum((r["wait_seconds"] or 0.0) <= 30.0 for r in mine),
                            "talk_seconds_total": round(talk, 1), "aht_seconds": round((talk + wrap) / len(mine), 1),
                            "rated": rated["rated"], "satisfaction_rate": rated["satisfaction_rate"],
                            "unsatisfied": rated["unsatisfied"]})
    assert [{k: r[k] for k in want_agents[0]} for r in got["agents"]["rows"]] == want_agents
    offered = [r for r in calls if r["rating_outcome"]]
    want_queues = [{"queue": q, **_ratings([r for r in offered if r["queue"] == q])}
                   for q in sorted({r["queue"] for r in offered})]
    if len(want_queues) > 1:
        want_queues.append({"queue": "*", **_ratings(offered)})
    assert got["satisfaction"]["rows"] == want_queues
    assert len(want_queues) >= (1 if "queue" in filters else 4) and want_agents[0]["rated"] > 0  # there is data


def _queue_call_reads(db, fn):
    """Run ``fn``; return (sql, parameters) of every SELECT it sent that reads queue_calls."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "queue_calls" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def _plans(db, reads) -> list[str]:
    with db.engine.connect() as conn:
        return [" / ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
                for sql, params in reads]


def test_sqlite_reads_each_long_report_from_the_index_it_names(db):
    """SQLite's own choice changes with ANALYZE statistics (a skip scan of a non-covering
    index took seconds); the agents' period ends, one agent's calls, the abandoned list and
    the plan's history name theirs."""
    assert db.dialect == "sqlite"
    db.call(lambda s: s.execute(insert(QueueCall), _calls()))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    reads = _queue_call_reads(db, lambda: _compute(db, ("agents", "satisfaction", "abandoned")))
    plans = _plans(db, reads)
    named = {sql.split("INDEXED BY ", 1)[1].split()[0] for sql, _ in reads if "INDEXED BY" in sql}
    assert named == {"ix_queue_calls_report", "ix_queue_calls_abandoned"}  # the hints are rendered
    # the agents: whole days from the rollups, the local days' two ends (8 and 16 hours) from the calls
    groups = [p for (sql, _), p in zip(reads, plans) if "GROUP BY calls.agent, calls.queue" in sql]
    assert len(groups) == 1 and groups[0].count(
        "COVERING INDEX ix_queue_calls_report (direction=? AND entered_at>? AND entered_at<?)") == 2, groups
    assert "SEARCH queue_call_group_rollups USING INDEX ix_queue_call_group_rollups_day" in groups[0], groups
    abandoned = [p for (sql, _), p in zip(reads, plans) if "'timeout'" in sql and "GROUP BY" not in sql]
    assert len(abandoned) == 2 and all("ix_queue_calls_abandoned" in p for p in abandoned), abandoned
    # one agent's figures: that agent's calls, a range of the agents' index per agent value
    reads = _queue_call_reads(db, lambda: _compute(db, ("agents",), agent=AGENTS[0]))
    groups = [p for (sql, _), p in zip(reads, _plans(db, reads)) if "GROUP BY calls.agent, calls.queue" in sql]
    assert groups and all("COVERING INDEX ix_queue_calls_agents (direction=? AND agent=?" in p for p in groups), groups

    from callcenter.queuecalls.history import half_hours

    since = dt.datetime.combine(START, dt.time(), TZ)
    reads = _queue_call_reads(db, lambda: db.call(half_hours, since, since + dt.timedelta(days=7), TZ,
                                                  short_abandon=5.0))
    assert ["INDEXED BY ix_queue_calls_report" in sql for sql, _ in reads] == [True]
    assert ["COVERING INDEX ix_queue_calls_report" in p for p in _plans(db, reads)] == [True]


def test_the_web_loads_the_forecast_libraries_before_it_serves():
    """numpy and statsmodels hold the GIL while they load: on a worker thread at the first
    staffing plan that kept the event loop waiting 90-180 ms."""
    code = ("import sys\nfrom callcenter.web.routes import ROUTES\n"
            "print(sorted(m for m in ('numpy', 'scipy', 'statsmodels.tsa.holtwinters') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['numpy', 'scipy', 'statsmodels.tsa.holtwinters']"


def test_the_period_reports_read_the_slot_rollups_once_per_transaction(db):
    """The page's answer times, days, staffing and half hours are groupings of the same slots:
    one read of them; a call written in the same transaction is seen by the next report."""
    rows = _calls()
    db.call(lambda s: s.execute(insert(QueueCall), rows))
    seen = []

    def record(conn, cursor, statement, *args):
        if "queue_call_rollup_days" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        got = _compute(db, ("answer-times", "intervals", "service-level-daily", "staffing"))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len([q for q in seen if q.lstrip().upper().startswith(("SELECT", "WITH"))]) == 1
    offered = sum(r["offered"] for r in got["intervals"]["rows"])
    assert offered == got["answer-times"]["summary"]["offered"] > 0

    t0, t1 = reporting.bounds(START, END, TZ)

    def twice(s):
        st = _settings()
        first = reporting.intervals(s, t0, t1, st, queue=None, agent=None)
        s.execute(insert(QueueCall), [{**rows[0], "uniqueid": "extra", "entered_at": t0 + dt.timedelta(hours=30),
                                       "direction": "inbound", "outcome": "answered"}])
        return first, reporting.intervals(s, t0, t1, st, queue=None, agent=None)
    first, second = db.call(twice)
    assert sum(r["offered"] for r in second) == sum(r["offered"] for r in first) + 1
