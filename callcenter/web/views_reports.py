"""Handlers: reports as a page, JSON, CSV and an SVG chart (all from the same computation).

The figures are counted by the database (:mod:`callcenter.queuecalls.report_queries`) in
one ``db.run`` per request, on a worker thread; rendering the page and writing a CSV
also run off the event loop, so a year of calls never stalls the wallboard or calls.
The abandoned-call list is paginated (``page``, ``per_page``; the CSV has them all).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.queuecalls import report_queries as rq
from callcenter.queuecalls import satisfaction

from . import data, reports
from .http import BadRequest, Req, Response, as_json
from .i18n import t
from .params import MAX_OFFSET, date_arg, int_arg
from .staffing_plan_view import plan_svg, staffing_plan

REPORTS = ("answer-times", "service-level-hourly", "service-level-daily", "agents", "satisfaction", "abandoned",
           "campaigns", "complaints", "staffing", "staffing-plan")
MAX_DAYS = 366
MIN_DATE, MAX_DATE = dt.date(1970, 1, 2), dt.date(2999, 12, 31)
QUEUE_REPORTS = ("answer-times", "service-level-hourly", "service-level-daily", "agents", "satisfaction", "abandoned",
                 "staffing")
PER_PAGE, MAX_PER_PAGE = 100, 1000
NEEDS = {"answer-times": {"whole"}, "service-level-hourly": {"hour"}, "service-level-daily": {"day"},
         "staffing": {"whole", "hour"}}  # the period_figures parts each report shows


def period(app, req: Req) -> tuple[dt.date, dt.date]:
    tz = ZoneInfo(app.config.hospital.timezone)
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


def queue_reports(s, names: tuple[str, ...], t0: dt.datetime, t1: dt.datetime, *, tz: ZoneInfo, target: float,
                  short: float, days: int, goal: float, page: int, per_page: int | None,
                  server: str | None = None) -> dict[str, dict]:
    """The queue-call reports in ``names`` (one transaction, on the database thread), of
    one Asterisk ``server`` or of all."""
    out: dict[str, dict] = {}
    src = rq.period_calls(t0, t1, server=server)
    parts = set()
    for name in names:
        parts |= NEEDS.get(name, set())
    f = None
    if parts:  # one scan for all of them; only the groups these reports show
        f = rq.period_figures(s, t0, t1, tz, target=target, short_abandon=short, parts=sorted(parts), server=server,
                              extras=bool({"answer-times", "staffing"} & set(names)))
    for name in names:
        r: dict = {}
        if name == "answer-times":
            r["rows"], r["summary"] = rq.distribution(f.whole), f.whole.summary(target, short)
        elif name == "service-level-hourly":
            r["rows"] = rq.sorted_groups(f.by_hour, target, short, "hour")
            r["rows"].sort(key=lambda x: x["hour"])
        elif name == "service-level-daily":
            r["rows"] = rq.sorted_groups(f.by_day, target, short, "day")
        elif name == "agents":  # with the post-call satisfaction columns
            r["rows"] = satisfaction.with_agent_columns(s, src, rq.agent_rows(s, src, target))
        elif name == "satisfaction":
            r["rows"] = satisfaction.queue_rows(s, src)
        elif name == "abandoned":
            if per_page is None:
                total, rows = rq.abandoned_page(s, src, offset=0, limit=None)
            else:
                total, rows = rq.abandoned_page(s, src, offset=(page - 1) * per_page, limit=per_page)
            r["rows"] = rq.abandoned_rows(rows, tz)
            r["total"], r["page"], r["per_page"] = total, page, per_page
        elif name == "staffing":
            r["rows"] = rq.staffing_rows(f, days=days, target=target, goal=goal)
            r["goal"], r["target"] = goal, target
        out[name] = r
    return out


async def compute_many(app, names: tuple[str, ...], start: dt.date, end: dt.date, *, page: int = 1,
                       per_page: int | None = PER_PAGE, server: str | None = None) -> dict[str, dict]:
    """Reports by name: {"rows": [...], "columns": [...], "available": bool, ...} each;
    ``server``: the queue-call reports of one Asterisk server only."""
    cfg = app.config.hospital
    tz = ZoneInfo(cfg.timezone)
    target, short = float(cfg.answer_target_seconds), float(cfg.short_abandon_seconds)
    t0 = dt.datetime.combine(start, dt.time(), tz).astimezone(dt.timezone.utc)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.timezone.utc)
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    goal = float(getattr(app.config.web, "staffing_goal", 0.8))
    results: dict[str, dict] = {}
    queue_names = tuple(n for n in names if n in QUEUE_REPORTS)
    if queue_names:
        results.update(await app.db.run(queue_reports, queue_names, t0, t1, tz=tz, target=target, short=short,
                                        days=(end - start).days + 1, goal=goal, page=page, per_page=per_page,
                                        server=server))
    if "staffing" in results:
        board = app.wallboard._live()
        logged = {m.get("interface") for q in (board or {}).values() for m in q.get("members", [])}
        results["staffing"]["agents_logged_in"] = len(logged) if board is not None else None
    for name in names:
        if name == "campaigns":
            rows = await app.db.run(data.campaign_progress, app.clock.seconds(),
                                    float(app.config.dialer.predictive_window_days))
            results[name] = {"rows": rows} if rows is not None else {"rows": None}
        elif name == "complaints":
            rows = await app.db.run(data.complaint_deadlines, now)
            results[name] = {"rows": rows} if rows is not None else {"rows": None}
        elif name == "staffing-plan":  # the 7 days after `to`
            results[name] = await staffing_plan(app, end)
    out = {}
    for name in names:
        r = {"report": name, "from": start.isoformat(), "to": end.isoformat(), "available": True, **results[name]}
        if r["rows"] is None:
            r.update(available=False, rows=[], columns=[])
        else:
            r["columns"] = list(r["rows"][0].keys()) if r["rows"] else []
        out[name] = r
    return out


async def compute(app, name: str, start: dt.date, end: dt.date, **kw) -> dict:
    """One report: {"rows": [...], "columns": [...], "available": bool, ...}."""
    return (await compute_many(app, (name,), start, end, **kw))[name]


async def reports_page(app, req: Req) -> Response:
    start, end = period(app, req)
    page, per_page = paging(req)
    results = await compute_many(app, REPORTS, start, end, page=page, per_page=per_page)
    dist = results["answer-times"]
    target = float(app.config.hospital.answer_target_seconds)

    def render() -> Response:  # a year of days and a page of calls: rendered off the loop
        chart = ""
        if dist["available"] and dist["rows"]:
            chart = reports.histogram_svg(dist["rows"], target=target, title=t(req.lang, "rep.answer-times"),
                                          answered_label=t(req.lang, "wb.answered"),
                                          abandoned_label=t(req.lang, "wb.abandoned"))
        plan_chart = plan_svg(results["staffing-plan"]["rows"], title=t(req.lang, "rep.plan_chart"))
        return app.render(req, "reports.html", results=results, names=REPORTS, chart=chart,
                          plan_chart=plan_chart, start=start.isoformat(), end=end.isoformat())

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
    result = await compute(app, req.params["name"], start, end, page=page, per_page=per_page,
                           server=server_arg(app, req))
    result["server"] = server_arg(app, req)
    return await app.db.run_blocking(as_json, result)


async def report_csv(app, req: Req) -> Response:
    start, end = period(app, req)
    name = req.params["name"]
    result = await compute(app, name, start, end, per_page=None,  # the download has every row
                           server=server_arg(app, req))
    body = await app.db.run_blocking(reports.to_csv, result["rows"], result["columns"] or None)
    return Response(200, body, "text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}_{start}_{end}.csv"'})


async def answer_chart(app, req: Req) -> Response:
    start, end = period(app, req)
    result = await compute(app, "answer-times", start, end)
    svg = reports.histogram_svg(result["rows"] or rq.distribution(rq.Group()),
                                target=float(app.config.hospital.answer_target_seconds),
                                title=t(req.lang, "rep.answer-times"),
                                answered_label=t(req.lang, "wb.answered"),
                                abandoned_label=t(req.lang, "wb.abandoned"))
    return Response(200, svg.encode("utf-8"), "image/svg+xml; charset=utf-8")
