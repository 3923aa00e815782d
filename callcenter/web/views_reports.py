"""Handlers: reports as a page, JSON, CSV, XLSX and an SVG chart (all from the same computation).

The figures are counted by the database (:mod:`callcenter.reporting`) in one ``db.run``
per request, on a worker thread; rendering the page and writing a CSV or XLSX file also
run off the event loop, so a year of calls never stalls the wallboard or calls.  The
page, the CSV and the XLSX show the same :class:`~callcenter.report_tables.Table`: the
same columns and headings in the user's language, local times, rates as percentages.
The abandoned-call list is paginated (``page``, ``per_page``; the downloads have them all).
``queue`` and ``agent`` (an interface) filter the call reports.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlencode

from sqlalchemy import text

from callcenter import reporting
from callcenter.queuecalls import report_queries as rq
from callcenter.report_tables import plan_day_table, table
from callcenter.staffing_plan import day_grid, day_totals, past_totals

from . import data, reports
from .http import BadRequest, Req, Response, as_json
from .i18n import t
from .params import MAX_OFFSET, date_arg, int_arg
from .staffing_plan_view import PLAN_DAYS, PLAN_SECONDS, plan_svg, staffing_plan

REPORTS = reporting.REPORTS
QUEUE_REPORTS = reporting.QUEUE_REPORTS
queue_reports = reporting.queue_reports  # the oracle test's entry point (tests/queuecalls)
MAX_DAYS = 366
MIN_DATE, MAX_DATE = dt.date(1970, 1, 2), dt.date(2999, 12, 31)
PER_PAGE, MAX_PER_PAGE = 100, 1000


def period(app, req: Req) -> tuple[dt.date, dt.date]:
    tz = settings(app).tz
    today = dt.datetime.fromtimestamp(app.clock.seconds(), tz).date()
    end = date_arg(req.args, "to", today)
    _in_range("to", end)
    start = date_arg(req.args, "from", None)
    if start is None:
        start = end - dt.timedelta(days=6)
    _in_range("from", start)
    if start > end:
        raise BadRequest("from must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(f"period longer than {MAX_DAYS} days")
    return start, end


def _in_range(name: str, d: dt.date) -> None:
    """9999-12-31 + 1 day (or 0001-01-01 - 6 days) would overflow into a 500."""
    if not MIN_DATE <= d <= MAX_DATE:
        raise BadRequest(f"{name}: outside {MIN_DATE.isoformat()} .. {MAX_DATE.isoformat()}")


def paging(req: Req) -> tuple[int, int]:
    """(page >= 1, per_page 1..MAX_PER_PAGE) of the abandoned-call list."""
    per_page = int_arg(req.args, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
    return int_arg(req.args, "page", 1, 1, MAX_OFFSET // per_page), per_page


def settings(app) -> "reporting.ReportSettings":
    """The reports' settings; handling time adds each queue's wrap-up as the live trackers read it."""
    return reporting.ReportSettings.from_config(app.config, wrapup=app.live.wrapup_of)


def _wrapups(app, queue: str | None, queues: list[str]) -> str:
    """The wrap-up seconds the handling times add, as the page says them ("5", "consultation 5, complaint 3")."""
    names = [queue] if queue else queues
    values = {q: app.live.wrapup_of(q) for q in names}
    if len(set(values.values())) <= 1:
        return f"{next(iter(values.values()), 0.0):g}"
    return ", ".join(f"{q} {w:g}" for q, w in values.items())


def filters(req: Req) -> tuple[str | None, str | None]:
    """(queue, agent interface) from the query; empty = all."""
    out = []
    for name, longest in (("queue", 64), ("agent", 128)):
        v = (req.args.get(name) or "").strip()
        if len(v) > longest or any(ord(ch) < 32 for ch in v):
            raise BadRequest(f"{name}: at most {longest} printable characters")
        out.append(v or None)
    return out[0], out[1]


def known_queues(s) -> list[str]:
    """Every queue with stored calls: a skip scan over the (queue, entered_at) index, so it
    costs one index probe per queue, not a scan of the calls."""
    sql = text("WITH RECURSIVE q(queue) AS (SELECT MIN(queue) FROM queue_calls UNION ALL "
               "SELECT (SELECT MIN(queue) FROM queue_calls WHERE queue > q.queue) FROM q "
               "WHERE q.queue IS NOT NULL) SELECT queue FROM q WHERE queue IS NOT NULL")
    return [r[0] for r in s.execute(sql)]


async def compute_many(app, names: tuple[str, ...], start: dt.date, end: dt.date, *, page: int = 1,
                       per_page: int | None = PER_PAGE, queue: str | None = None,
                       agent: str | None = None, server: str | None = None) -> dict[str, dict]:
    """Reports by name: {"rows": [...], "columns": [...], "available": bool, ...} each;
    ``server``: the queue-call reports of one Asterisk server only."""
    st = settings(app)
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    figures = app.db.run(reporting.compute, tuple(n for n in names if n != "staffing-plan"), start, end,
                         settings=st, now=now, queue=queue, agent=agent, page=page, per_page=per_page,
                         server=server)
    if "staffing-plan" in names:  # the 7 days after `to`: its forecast (Python) on another worker
        # while the database counts the other reports (the SQL does not hold the GIL)
        results, plan = await asyncio.gather(figures, staffing_plan(app, end))
        results["staffing-plan"] = plan
    else:
        results = await figures
    if "staffing" in results:
        board = app.wallboard._live()
        logged = {m.get("interface") for q in (board or {}).values() for m in q.get("members", [])}
        results["staffing"]["agents_logged_in"] = len(logged) if board is not None else None
    return {n: reporting.wrap(n, start, end, results[n], queue=queue, agent=agent) for n in names}


async def compute(app, name: str, start: dt.date, end: dt.date, **kw) -> dict:
    """One report: {"rows": [...], "columns": [...], "available": bool, ...}."""
    return (await compute_many(app, (name,), start, end, **kw))[name]


def plan_day_arg(req: Req, end: dt.date) -> dt.date:
    """``?plan_day=``: the plan day whose half hours the page shows, one of the 7 after ``end``
    (the period's ``to``); absent: the first."""
    first, last = end + dt.timedelta(days=1), end + dt.timedelta(days=PLAN_DAYS)
    day = date_arg(req.args, "plan_day", first)
    if not first <= day <= last:
        raise BadRequest(f"plan_day: not a day of the staffing plan ({first.isoformat()} .. {last.isoformat()})")
    return day


async def reports_page(app, req: Req) -> Response:
    start, end = period(app, req)
    page, per_page = paging(req)
    queue, agent = filters(req)
    server = server_arg(app, req)
    plan_day = plan_day_arg(req, end).isoformat()
    results, stored_queues, agents = await asyncio.gather(
        compute_many(app, reporting.PAGE_REPORTS, start, end, page=page, per_page=per_page, queue=queue,
                     agent=agent, server=server),
        app.db.run(known_queues), app.db.run(data.agent_users))
    queues = sorted(set(stored_queues) | ({queue} if queue else set()))
    plan = results["staffing-plan"]
    plan_days = day_totals(plan["rows"])
    dist = results["answer-times"]
    target = float(app.config.hospital.answer_target_seconds)
    tz = settings(app).tz
    query = urlencode({k: v for k, v in (("from", start.isoformat()), ("to", end.isoformat()),
                                         ("queue", queue), ("agent", agent), ("server", server)) if v})

    def render() -> Response:  # a year of days and a page of calls: rendered off the loop
        chart = ""
        if dist["available"] and dist["rows"]:
            chart = reports.histogram_svg(dist["rows"], target=target, title=t(req.lang, "rep.answer-times"),
                                          answered_label=t(req.lang, "wb.answered"),
                                          abandoned_label=t(req.lang, "wb.abandoned"))
        plan_chart = plan_svg(plan["rows"], title=t(req.lang, "rep.plan_chart"))
        tables = {n: table(n, results[n], req.lang, tz) for n in reporting.PAGE_REPORTS if n != "staffing-plan"}
        # the plan compact: its days, then one day's half hours (?plan_day=), the past week per day
        tables["staffing-plan"] = table("staffing-plan-days", {"rows": plan_days}, req.lang, tz)
        tables["staffing-plan-day"] = plan_day_table(*day_grid(plan["rows"], plan_day), req.lang, tz)
        tables["staffing-plan-past"] = table(
            "staffing-plan-past", {"rows": past_totals(plan.get("past", []))}, req.lang, tz,
            lambda row: bool(row.get("actual_calls") or row.get("agents_needed_forecast")))
        return app.render(req, "reports.html", results=results, tables=tables, names=reporting.PAGE_REPORTS,
                          plan_day=plan_day, plan_days=[d["day"] for d in plan_days],
                          plan_made=dt.datetime.fromisoformat(plan["made_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                          plan_minutes=f"{PLAN_SECONDS / 60:g}",
                          chart=chart, plan_chart=plan_chart, start=start.isoformat(), end=end.isoformat(),
                          queue=queue or "", agent=agent or "", queues=queues, agents=agents, query=query,
                          server=server or "", servers=[a.name for a in app.config.ami_servers],
                          wrapup=_wrapups(app, queue, queues))

    return await app.db.run_blocking(render)


def server_arg(app, req: Req) -> str | None:
    """``?server=``: one Asterisk server ([[ami]] name), checked; absent: all of them."""
    server = req.arg("server") or None
    names = [s.name for s in app.config.ami_servers]
    if server is not None and server not in names:
        raise BadRequest(f"server: unknown Asterisk server {server!r} (known: {', '.join(names)})")
    return server


async def report_api(app, req: Req) -> Response:
    start, end = period(app, req)
    page, per_page = paging(req)
    queue, agent = filters(req)
    result = await compute(app, req.params["name"], start, end, page=page, per_page=per_page,
                           queue=queue, agent=agent, server=server_arg(app, req))
    result["server"] = server_arg(app, req)
    return await app.db.run_blocking(as_json, result)


async def _download(app, req: Req, ext: str) -> Response:
    start, end = period(app, req)
    queue, agent = filters(req)
    name = req.params["name"]
    result = await compute(app, name, start, end, per_page=None, queue=queue, agent=agent,  # every row
                           server=server_arg(app, req))
    tz = settings(app).tz

    def write() -> bytes:
        tb = table(name, result, req.lang, tz)  # every row (the page leaves out empty plan intervals)
        if ext == "csv":
            return reports.table_csv(tb)
        return reports.tables_xlsx([(t(req.lang, "rep." + name), tb)])

    body = await app.db.run_blocking(write)
    kind = "text/csv; charset=utf-8" if ext == "csv" else reports.XLSX_TYPE
    return Response(200, body, kind, headers={
        "Content-Disposition": f'attachment; filename="{name}_{start}_{end}.{ext}"'})


async def report_csv(app, req: Req) -> Response:
    return await _download(app, req, "csv")


async def report_xlsx(app, req: Req) -> Response:
    return await _download(app, req, "xlsx")


async def answer_chart(app, req: Req) -> Response:
    start, end = period(app, req)
    queue, agent = filters(req)
    result = await compute(app, "answer-times", start, end, queue=queue, agent=agent)
    svg = reports.histogram_svg(result["rows"] or rq.distribution(rq.Group()),
                                target=float(app.config.hospital.answer_target_seconds),
                                title=t(req.lang, "rep.answer-times"),
                                answered_label=t(req.lang, "wb.answered"),
                                abandoned_label=t(req.lang, "wb.abandoned"))
    return Response(200, svg.encode("utf-8"), "image/svg+xml; charset=utf-8")
