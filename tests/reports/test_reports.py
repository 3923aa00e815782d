"""The supervisor's reports: half-hour intervals, filters, agent performance, outcomes,
complaint deadlines in the reader's language, and the CSV/XLSX downloads (same table as
the page) through the real web app and the command line.  The SQL runs on SQLite and
PostgreSQL; the downloads and the command line (the same SQL, formatted) on SQLite."""
from __future__ import annotations

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest

from callcenter import reporting
from callcenter.queuecalls.agent_log import Closed, Opened
from callcenter.queuecalls.agent_sessions import write_edges
from callcenter.queuecalls.models import QueueCall
from callcenter.report_tables import interval_label, table
from callcenter.web.models import CallOutcome

from tests.support.web import Client, FakeQueueCalls, add_users, running_web

TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
DAY = dt.date(2026, 11, 23)
A1, A2 = "Local/1001@sim-agent/n", "PJSIP/2001"   # agent1 (tests.support.web.USERS) and a second agent


def _at(h, m, s=0, day=DAY):
    return dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=TZ)


CALLS = [  # (local time, queue, wait, outcome, agent, talk)
    (_at(8, 5), "consultation", 5, "answered", A1, 100.0),
    (_at(8, 29, 59), "consultation", 40, "answered", A1, 200.0),
    (_at(8, 30), "consultation", 3, "abandoned", "", None),
    (_at(8, 45), "complaint", 12, "answered", A2, 60.0),
    (_at(9, 10), "consultation", 50, "abandoned", "", None),
    (_at(9, 40), "complaint", 20, "answered", A2, 120.0),
]


def _store(db):
    with db.session() as s:
        for i, (at, queue, wait, outcome, agent, talk) in enumerate(CALLS):
            s.add(QueueCall(uniqueid=f"u{i}", linkedid=f"u{i}", queue=queue, leg=1, caller_number="+8613800138001",
                            caller_name="", entered_at=at.astimezone(UTC), answered_at=None, ended_at=None,
                            wait_seconds=float(wait), agent=agent, agent_name=f"Agent {agent[-6:]}" if agent else "",
                            talk_seconds=talk, outcome=outcome, gap=False, source="ami"))
        made = _at(9, 0).astimezone(UTC)
        for uid, outcome in (("u0", "appointment"), ("u1", "consultation")):  # one outcome per call (unique)
            s.add(CallOutcome(uniqueid=uid, queue="consultation", caller_number="", agent="agent1",
                              outcome=outcome, note="", created_at=made))
    t = lambda h, m: _at(h, m).timestamp()  # noqa: E731
    db.call(write_edges, [Opened(A1, "login", t(8, 0), name="Agent 1001"), Opened(A1, "pause", t(9, 0), reason="meal"),
                          Closed(A1, "pause", t(9, 30)), Opened(A1, "pause", t(9, 45), reason="training"),
                          Closed(A1, "pause", t(9, 50)), Closed(A1, "login", t(10, 0))])


def _settings(wrap=10.0):
    return reporting.ReportSettings(tz=TZ, target=30.0, short_abandon=5.0, goal=0.8, window_days=30.0,
                                    wrapup=lambda queue: wrap)


def _compute(db, names, **kw):
    now = _at(12, 0).astimezone(UTC)
    return db.call(reporting.compute, names, DAY, DAY, settings=_settings(), now=now, **kw)


@pytest.mark.postgres
def test_half_hour_intervals_add_up_to_the_hours_and_filter(db):
    _store(db)
    got = _compute(db, ("intervals", "service-level-hourly"))
    rows = {r["slot"]: r for r in got["intervals"]["rows"]}
    assert sorted(rows) == [16, 17, 18, 19]          # 08:00, 08:30, 09:00, 09:30
    assert interval_label(16) == "08:00–08:30" and interval_label(47) == "23:30–00:00"
    assert (rows[16]["answered"], rows[17]["answered"], rows[17]["short_abandons"]) == (2, 1, 1)  # 08:29:59 | 08:30
    assert rows[16]["aht_seconds"] == pytest.approx(150.0 + 10.0)  # talk + wrap-up
    hours = {r["hour"]: r for r in got["service-level-hourly"]["rows"]}
    for h in (8, 9):
        for k in ("offered", "answered", "abandoned", "answered_within_target"):
            assert rows[2 * h][k] + rows[2 * h + 1][k] == hours[h][k], (h, k)
    only = _compute(db, ("intervals", "agents"), queue="complaint")
    assert [r["slot"] for r in only["intervals"]["rows"]] == [17, 19]
    assert [r["agent"] for r in only["agents"]["rows"]] == [A1, A2]  # A1: logged in, no complaint calls
    mine = _compute(db, ("intervals", "outcomes"), agent=A2)
    assert sum(r["answered"] for r in mine["intervals"]["rows"]) == 2
    assert mine["outcomes"]["rows"] == []            # agent2001 has no user, so no saved outcomes


@pytest.mark.postgres
def test_agent_performance_and_outcomes(db):
    add_users(db)
    _store(db)
    got = _compute(db, ("agents", "outcomes"))
    a1, a2 = got["agents"]["rows"]
    assert (a1["agent"], a1["name"], a1["answered"]) == (A1, "Agent1", 2)
    assert a1["login_seconds"] == pytest.approx(7200, abs=0.01)
    assert a1["pause_by_reason"] == {"meal": pytest.approx(1800, abs=0.01), "training": pytest.approx(300, abs=0.01)}
    assert a1["aht_seconds"] == pytest.approx((100 + 200 + 2 * 10) / 2)
    assert a1["occupancy"] == pytest.approx(320 / (7200 - 2100), abs=1e-4)
    assert a1["outcomes"] == 2                        # two calls, one outcome each
    assert a2["login_seconds"] is None and a2["occupancy"] is None and a2["answered"] == 2
    assert got["outcomes"]["rows"] == [{"outcome": "appointment", "calls": 1, "share": 0.5},
                                       {"outcome": "consultation", "calls": 1, "share": 0.5}]
    tb = table("agents", reporting.wrap("agents", DAY, DAY, got["agents"]), "zh", TZ)
    assert tb.headings[:3] == ["姓名", "坐席", "接通"] and "暂停：用餐" in tb.headings and "暂停：培训" in tb.headings
    row = dict(zip(tb.keys, tb.rows[0]))
    assert (row["agent"].text, row["login_seconds"].text, row["occupancy"].text) == ("1001", "2:00:00", "6.3%")
    assert row["login_seconds"].value == pytest.approx(2 / 24) and row["login_seconds"].fmt == "[h]:mm:ss"


def test_complaint_deadlines_in_the_readers_language_and_time():
    due = dt.datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)
    result = {"rows": [{"ticket": "TS-2026-0001", "category": "attitude", "severity": "urgent", "status": "received",
                        "deadline": "ack", "due_at": due, "hours_left": -1.5, "overdue": True, "level": "overdue"}]}
    zh = table("complaints", result, "zh", TZ)
    assert zh.headings == ["工单号", "类别", "级别", "状态", "时限", "截止时间", "剩余小时", "预警"]
    assert [c.text for c in zh.rows[0]] == ["TS-2026-0001", "服务态度类", "紧急", "已受理", "确认受理",
                                             "2026-11-23 17:00:00", "-1.5", "已超时"]
    assert zh.classes == ["over"]
    en = table("complaints", result, "en", TZ)
    assert "False" not in str([c.text for c in en.rows[0]]) and en.rows[0][5].text == "2026-11-23 17:00:00"
    assert en.rows[0][5].value == dt.datetime(2026, 11, 23, 17, 0, 0)  # local, no zone, no microseconds


def _csv(body: bytes) -> list[list[str]]:
    import csv

    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


async def test_downloads_are_the_page_table_csv_and_xlsx(config, db):
    from openpyxl import load_workbook

    add_users(db)
    _store(db)
    q = f"from={DAY}&to={DAY}"
    async with running_web(config, db, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        await c.login("sup1")
        r = await c.post("/language", {"csrf_token": await c.csrf(), "lang": "zh", "back": "/reports"})
        page = (await c.get(f"/reports?{q}&queue=consultation")).text
        assert '<option value="consultation" selected>' in page and "08:00–08:30" in page
        assert "08:30–09:00" in page and 'data-key="service_level"' in page and "服务水平" in page
        section = page.split('id="table-intervals"')[1].split("</table>")[0]
        assert "66.7%" in section or "100.0%" in section      # rates as percentages
        assert "complaint" not in section.split("<tbody>")[0]  # no queue column repeated
        for name in ("intervals", "agents", "outcomes", "complaints", "abandoned"):
            csv_r = await c.get(f"/reports/{name}.csv?{q}")
            xlsx_r = await c.get(f"/reports/{name}.xlsx?{q}")
            assert csv_r.status == xlsx_r.status == 200, name
            assert xlsx_r.headers["content-type"].startswith("application/vnd.openxmlformats")
            assert f'{name}_{DAY}_{DAY}.xlsx' in xlsx_r.headers["content-disposition"]
            rows = _csv(csv_r.body)
            ws = load_workbook(io.BytesIO(xlsx_r.body)).active
            sheet = [list(r) for r in ws.iter_rows(values_only=True)]
            assert sheet[0] == rows[0], name                      # the same headings, in Chinese
            assert len(sheet) == len(rows), name
            for got, want in zip(sheet[1:], rows[1:]):
                for v, text in zip(got, want):
                    _same_cell(v, text)
        head = _csv((await c.get(f"/reports/agents.csv?{q}")).body)[0]
        assert head[:3] == ["姓名", "坐席", "接通"] and "暂停：用餐" in head
        ws = load_workbook(io.BytesIO((await c.get(f"/reports/agents.xlsx?{q}")).body)).active
        assert isinstance(ws["C2"].value, int) and ws["G2"].number_format == "[h]:mm:ss"
        api = (await c.get(f"/api/reports/intervals?{q}&agent={A2.replace('/', '%2F')}")).json()
        assert api["agent"] == A2 and sum(r["answered"] for r in api["rows"]) == 2
        assert (await c.get(f"/api/reports/intervals?queue={'x' * 65}")).status == 400


def _same_cell(v, text: str) -> None:
    """An XLSX value against the CSV text of the same cell (numbers as numbers)."""
    if text == "":
        assert v is None
    elif isinstance(v, str):
        assert v == text and not re.fullmatch(r"-?\d+\.\d|.*%", text)  # identifiers (extension 1001) stay text
    elif text.endswith("%"):
        assert v == pytest.approx(float(text[:-1]) / 100, abs=0.0006)
    elif re.fullmatch(r"\d+:\d\d:\d\d", text):
        h, m, s = map(int, text.split(":"))  # a number of days shown [h]:mm:ss (openpyxl: a timedelta)
        assert v.total_seconds() == pytest.approx(h * 3600 + m * 60 + s, abs=1)
    elif re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text):
        assert v == dt.datetime.fromisoformat(text)
    elif re.fullmatch(r"-?\d+(\.\d+)?", text):
        assert isinstance(v, (int, float)) and v == pytest.approx(float(text), abs=0.05)
    else:
        assert v == text


def test_cli_writes_the_same_files(db, config, tmp_path, capsys):
    from openpyxl import load_workbook

    from callcenter.cli import main

    add_users(db)
    _store(db)
    args = ["report", "agents", "--since", str(DAY), "--until", str(DAY), "--lang", "en"]
    assert main([*args, "--format", "csv", "--output", str(tmp_path / "a.csv")]) == 0
    assert main([*args, "--format", "xlsx", "--output", str(tmp_path / "a.xlsx")]) == 0
    rows = _csv((tmp_path / "a.csv").read_bytes())
    sheet = [list(r) for r in load_workbook(tmp_path / "a.xlsx").active.iter_rows(values_only=True)]
    assert rows[0] == sheet[0] and rows[0][:3] == ["Name", "Agent", "Answered"] and "Paused: Meal" in rows[0]
    assert rows[1][:3] == ["Agent1", "1001", "2"]
    capsys.readouterr()
    assert main(["report", "intervals", "--since", str(DAY), "--until", str(DAY), "--queue", "complaint",
                 "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "时段" in out and "08:30–09:00" in out and "09:30–10:00" in out and "08:00–08:30" not in out
    assert main([*args, "--format", "xlsx"]) == 2  # a workbook needs --output


def test_a_report_gains_the_columns_its_rows_carry():
    row = {"agent": A1, "name": "Wang", "answered": 3, "login_seconds": None, "pause_by_reason": {}}
    plain = table("agents", {"rows": [row]}, "en", TZ)
    rated = table("agents", {"rows": [{**row, "rated": 2, "satisfaction_rate": 0.5, "unsatisfied": 1}]}, "en", TZ)
    assert rated.keys == plain.keys + ["rated", "satisfaction_rate", "unsatisfied"]
    assert [c.text for c in rated.rows[0][-3:]] == ["2", "50.0%", "1"]
