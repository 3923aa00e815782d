"""The reports counted by the database give the figures the old row-by-row code gave.

``oracle_reports`` is the previous implementation, kept verbatim; both read the same
stored calls (SQLite and PostgreSQL).  Counts, rates, max and p90 must be equal; the
ASA may differ in its last rounded digit only, because the database adds the waits in
another order (float addition is not associative); so may the staffing report's mean
handling time.
"""
from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from callcenter.queuecalls import cli as qcli
from callcenter.queuecalls import report_queries as rq
from callcenter.queuecalls.models import QueueCall
from callcenter.queuecalls import satisfaction
from callcenter.web import views_reports

from . import oracle_reports as old

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 27, 0, 0, tzinfo=UTC)  # Berlin changes to summer time on the 29th


def _calls(n: int, seed: int = 13) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        outcome = rnd.choice(["answered"] * 6 + ["transferred", "abandoned", "abandoned", "timeout",
                                                 "redirected", "unknown"])
        wait = None if rnd.random() < 0.05 else rnd.choice([round(rnd.uniform(0, 200), 3), 5.0, 30.0, 4.999])
        entered = T0 + dt.timedelta(seconds=rnd.uniform(0, 4 * 86400))
        bridged = outcome in ("answered", "transferred") or (outcome in ("redirected", "unknown")
                                                             and rnd.random() < 0.3)
        agent = rnd.choice(["PJSIP/1001", "PJSIP/1002", "Local/1003@agents", ""]) if bridged else ""
        out.append({
            "uniqueid": f"u{i}", "linkedid": f"u{i}", "queue": rnd.choice(["consultation", "complaint", "appts"]),
            "leg": 1, "caller_number": f"+86138{i:08d}", "caller_name": "",
            "entered_at": None if i % 97 == 5 else entered,
            "answered_at": entered + dt.timedelta(seconds=wait or 0) if bridged else None,
            "ended_at": entered + dt.timedelta(seconds=300), "wait_seconds": wait, "agent": agent,
            "agent_name": rnd.choice(["", "Wang", "Li"]) if agent else "",
            "talk_seconds": rnd.choice([None, 0.0, round(rnd.uniform(1, 600), 1)]) if bridged else None,
            "outcome": outcome, "within_target": None, "position": 1, "ivr_session_id": None,
            "gap": outcome == "unknown" or rnd.random() < 0.05, "source": "ami"})
    return out


def _store(db, calls):
    with db.session() as s:
        s.execute(insert(QueueCall), calls)


def _stored(db) -> list[dict]:
    """The rows as the old code loaded them (entry order; datetimes aware UTC)."""
    t = QueueCall.__table__

    def load(s):
        rows = []
        for r in s.execute(select(t).order_by(t.c.entered_at, t.c.id)):
            d = dict(r._mapping)
            for k in ("entered_at", "answered_at", "ended_at"):
                if d[k] is not None:
                    d[k] = d[k].replace(tzinfo=UTC) if d[k].tzinfo is None else d[k].astimezone(UTC)
            rows.append(d)
        return rows

    return db.call(load)


def _same(new: dict, want: dict) -> None:
    assert new.keys() == want.keys()
    for k, v in want.items():
        if k == "asa_seconds" and v is not None:
            assert new[k] == pytest.approx(v, abs=1.01e-3), k
        else:
            assert new[k] == v, k


def _same_rows(new: list[dict], want: list[dict]) -> None:
    assert [r.get("key", r.get("hour", r.get("day"))) for r in new] == \
        [r.get("key", r.get("hour", r.get("day"))) for r in want]
    for a, b in zip(new, want):
        _same(a, b)


@pytest.mark.postgres
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
def test_answer_times_equal_the_old_figures(db, zone):
    tz = ZoneInfo(zone)
    _store(db, _calls(1500))
    rows = _stored(db)
    for since, until, queue in [(None, None, None),
                                (dt.datetime(2026, 3, 28, 6, tzinfo=tz), dt.datetime(2026, 3, 30, tzinfo=tz), None),
                                (None, dt.datetime(2026, 3, 29, 12, tzinfo=tz), "complaint")]:
        picked = [r for r in rows if (queue is None or r["queue"] == queue)
                  and (since is None or (r["entered_at"] is not None and r["entered_at"] >= since))
                  and (until is None or (r["entered_at"] is not None and r["entered_at"] < until))]
        assert picked
        want = {"summary": old.summarize(picked, 30.0, 5.0), **old.breakdowns(picked, 30.0, 5.0, tz)}
        got = db.call(qcli.load_figures, since, until, queue, tz, 30.0, 5.0)
        _same(got["summary"], want["summary"])
        for name in ("queue", "agent", "hour", "day"):
            _same_rows(got[name], want[name])


@pytest.mark.postgres
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
def test_web_reports_equal_the_old_ones(db, zone):
    tz = ZoneInfo(zone)
    _store(db, _calls(1200, seed=5))
    t0, t1 = dt.datetime(2026, 3, 27, tzinfo=tz), dt.datetime(2026, 3, 31, tzinfo=tz)
    rows = [r for r in _stored(db) if r["entered_at"] is not None and t0 <= r["entered_at"] < t1]
    got = db.call(views_reports.queue_reports, views_reports.QUEUE_REPORTS, t0.astimezone(UTC), t1.astimezone(UTC),
                  tz=tz, target=30.0, short=5.0, days=4, goal=0.8, page=1, per_page=None)
    assert got["answer-times"]["rows"] == old.answer_time_distribution(rows)
    _same(got["answer-times"]["summary"], old.summarize(rows, 30.0, 5.0))
    _same_rows(got["service-level-hourly"]["rows"], old.service_level_by(rows, "hour", tz, 30.0, 5.0))
    _same_rows(got["service-level-daily"]["rows"], old.service_level_by(rows, "day", tz, 30.0, 5.0))
    mine = satisfaction.AGENT_COLUMNS  # the post-call rating's columns: no call here was rated
    assert [{k: v for k, v in r.items() if k not in mine} for r in got["agents"]["rows"]] == old.per_agent(rows, 30.0)
    assert {tuple(r[k] for k in mine) for r in got["agents"]["rows"]} == {(0, None, 0)}
    assert got["satisfaction"]["rows"] == []
    assert got["abandoned"]["rows"] == old.abandoned_calls(rows, tz)
    want = old.staffing_by_hour(rows, tz, days=4, target=30.0, goal=0.8)
    assert [{**r, "aht_seconds": None} for r in got["staffing"]["rows"]] == [{**r, "aht_seconds": None} for r in want]
    assert [r["aht_seconds"] for r in got["staffing"]["rows"]] == pytest.approx([r["aht_seconds"] for r in want],
                                                                                 abs=0.101)

    every = old.abandoned_calls(rows, tz)
    page = db.call(views_reports.queue_reports, ("abandoned",), t0.astimezone(UTC), t1.astimezone(UTC), tz=tz,
                   target=30.0, short=5.0, days=4, goal=0.8, page=3, per_page=25)["abandoned"]
    assert page["total"] == len(every) > 75
    assert page["rows"] == every[50:75]


@pytest.mark.postgres
def test_empty_period(db):
    tz = ZoneInfo("Asia/Shanghai")
    got = db.call(qcli.load_figures, None, None, None, tz, 30.0, 5.0)
    assert got["summary"] == old.summarize([], 30.0, 5.0)
    assert got["queue"] == got["agent"] == got["hour"] == got["day"] == []


def test_cli_since_is_the_hospital_day_on_sqlite(db, config, capsys):
    """``--since 2026-11-22`` means midnight in Shanghai (16:00 UTC the day before): a call at
    01:00 local time is in, one at 23:00 local the day before is out.  The old code bound the
    local time as if it were UTC on SQLite, eight hours off."""
    import json

    from callcenter.cli import main

    calls = _calls(2)
    calls[0].update(entered_at=dt.datetime(2026, 11, 21, 17, 0, tzinfo=UTC), outcome="answered", wait_seconds=3.0)
    calls[1].update(entered_at=dt.datetime(2026, 11, 21, 15, 0, tzinfo=UTC), outcome="answered", wait_seconds=3.0)
    _store(db, calls)
    assert main(["report", "answer-times", "--format", "json", "--since", "2026-11-22"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["uniqueid"] for c in out["calls"]] == ["u0"]
    assert out["summary"]["answered"] == 1


def test_offsets_find_the_dst_change():
    tz = ZoneInfo("Europe/Berlin")
    spans = rq.offsets(tz, dt.datetime(2026, 3, 27, tzinfo=UTC), dt.datetime(2026, 4, 2, tzinfo=UTC))
    assert spans == [(dt.datetime(2026, 3, 27, tzinfo=UTC), 3600), (dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 7200)]
