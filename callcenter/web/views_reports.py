"""Handlers: reports as a page, JSON, CSV and an SVG chart (all from the same computation)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from . import data, reports
from .http import BadRequest, Req, Response, as_json
from .i18n import t
from .params import date_arg

REPORTS = ("answer-times", "service-level-hourly", "service-level-daily", "agents", "abandoned",
           "campaigns", "complaints", "staffing")
MAX_DAYS = 366
MIN_DATE, MAX_DATE = dt.date(1970, 1, 2), dt.date(2999, 12, 31)


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


async def compute(app, name: str, start: dt.date, end: dt.date) -> dict:
    """One report: {"rows": [...], "columns": [...], "available": bool, ...}."""
    cfg = app.config.hospital
    tz = ZoneInfo(cfg.timezone)
    target, short = float(cfg.answer_target_seconds), float(cfg.short_abandon_seconds)
    t0 = dt.datetime.combine(start, dt.time(), tz).astimezone(dt.timezone.utc)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.timezone.utc)
    now = dt.datetime.fromtimestamp(app.clock.seconds(), dt.timezone.utc)
    out: dict = {"report": name, "from": start.isoformat(), "to": end.isoformat(), "available": True}
    if name == "campaigns":
        rows = await app.db.run(data.campaign_progress, app.clock.seconds(),
                                float(app.config.dialer.predictive_window_days))
    elif name == "complaints":
        rows = await app.db.run(data.complaint_deadlines, now)
    else:
        calls = await app.db.run(data.queue_calls, t0, t1)
        if calls is None:
            rows = None
        elif name == "answer-times":
            rows = reports.answer_time_distribution(calls)
            out["summary"] = reports.summarize(calls, target, short)
        elif name == "service-level-hourly":
            rows = reports.service_level_by(calls, "hour", tz, target, short)
        elif name == "service-level-daily":
            rows = reports.service_level_by(calls, "day", tz, target, short)
        elif name == "agents":
            rows = reports.per_agent(calls, target)
        elif name == "abandoned":
            rows = reports.abandoned_calls(calls, tz)
        else:  # staffing
            goal = float(getattr(app.config.web, "staffing_goal", 0.8))
            rows = reports.staffing_by_hour(calls, tz, days=(end - start).days + 1, target=target, goal=goal)
            out["goal"], out["target"] = goal, target
            board = app.wallboard._live()
            logged = {m.get("interface") for q in (board or {}).values() for m in q.get("members", [])}
            out["agents_logged_in"] = len(logged) if board is not None else None
    if rows is None:
        out.update(available=False, rows=[], columns=[])
    else:
        out["rows"] = rows
        out["columns"] = list(rows[0].keys()) if rows else []
    return out


async def reports_page(app, req: Req) -> Response:
    start, end = period(app, req)
    results = {name: await compute(app, name, start, end) for name in REPORTS}
    dist = results["answer-times"]
    chart = ""
    if dist["available"] and dist["rows"]:
        chart = reports.histogram_svg(dist["rows"], target=float(app.config.hospital.answer_target_seconds),
                                      title=t(req.lang, "rep.answer-times"),
                                      answered_label=t(req.lang, "wb.answered"),
                                      abandoned_label=t(req.lang, "wb.abandoned"))
    return app.render(req, "reports.html", results=results, names=REPORTS, chart=chart,
                      start=start.isoformat(), end=end.isoformat())


async def report_api(app, req: Req) -> Response:
    start, end = period(app, req)
    return as_json(await compute(app, req.params["name"], start, end))


async def report_csv(app, req: Req) -> Response:
    start, end = period(app, req)
    name = req.params["name"]
    result = await compute(app, name, start, end)
    body = reports.to_csv(result["rows"], result["columns"] or None)
    return Response(200, body, "text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}_{start}_{end}.csv"'})


async def answer_chart(app, req: Req) -> Response:
    start, end = period(app, req)
    result = await compute(app, "answer-times", start, end)
    svg = reports.histogram_svg(result["rows"] or reports.answer_time_distribution([]),
                                target=float(app.config.hospital.answer_target_seconds),
                                title=t(req.lang, "rep.answer-times"),
                                answered_label=t(req.lang, "wb.answered"),
                                abandoned_label=t(req.lang, "wb.abandoned"))
    return Response(200, svg.encode("utf-8"), "image/svg+xml; charset=utf-8")
