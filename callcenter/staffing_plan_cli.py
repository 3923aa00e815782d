"""``callcenter report staffing-plan``: agents needed per queue and half hour for the next days.

``--since`` is the plan's first day (default: tomorrow in the hospital's
timezone), ``--until`` its last (default: 7 days).  The history is the
complete days before the plan (at most today's start).  Table: the back-test
error, then the plan's staffed half hours; CSV: the whole plan; JSON: plan,
back-test and the past week next to the agents seen answering.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from zoneinfo import ZoneInfo

from .reports_cli import add_report, emit, iter_sections, period


def register(sub, common) -> None:
    p = add_report(sub, common, "staffing-plan",
                   help="forecast and Erlang C agents needed per queue and half hour (next 7 days), with back-test",
                   func=cmd_staffing_plan)
    p.add_argument("--queue", metavar="Q", help="only this queue")


def plan_days(since: dt.datetime | None, until: dt.datetime | None, today: dt.date) -> list[dt.date]:
    first = since.date() if since else today + dt.timedelta(days=1)
    last = (until - dt.timedelta(microseconds=1)).date() if until else first + dt.timedelta(days=6)
    if last < first:
        from .cli import UserError

        raise UserError("--until must be after --since")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def cmd_staffing_plan(args, config) -> int:
    from .cli import UserError
    from .commands import open_db
    from .complaints.workdays import WorkCalendar
    from .forecast import ForecastError
    from .staffing_plan import load_plan

    h = config.hospital
    tz = ZoneInfo(h.timezone)
    today = dt.datetime.fromtimestamp(time.time(), tz).date()  # the command's edge: wall clock once
    days = plan_days(*period(args, config), today)
    end = min(days[0], today)
    cal = WorkCalendar(h.country, h.timezone)
    db = open_db(config)
    try:
        result = db.call(lambda s: load_plan(s, cal, tz=tz, end=end, days=days,
                                             target=float(h.answer_target_seconds),
                                             goal=float(config.web.staffing_goal),
                                             short_abandon=float(h.short_abandon_seconds),
                                             queue=args.queue))
    except ForecastError as e:
        raise UserError(f"staffing plan: {e}") from None
    finally:
        db.close()
    for q, why in result["problems"].items():
        print(f"staffing plan: queue {q} left out: {why}", file=sys.stderr)
    if args.format == "json":
        emit([], "json", json_value=result)
    elif args.format == "csv":
        emit(result["rows"], "csv", columns=result["columns"])
    else:
        bt = result["backtest"]
        head = (f"Back-test ({bt['intervals']} half hours over the last weeks): WAPE "
                f"{_pct(bt['wape'])}, MAPE {_pct(bt['mape'])}; Poisson noise alone: WAPE {_pct(bt['noise_floor_wape'])}")
        staffed = [r for r in result["rows"] if r["agents_needed"] or r["forecast_calls"]]
        iter_sections([
            (head, bt["by_interval"], bt["columns"]),
            (f"Staffing plan {days[0]} .. {days[-1]} (target {h.answer_target_seconds:g} s for "
             f"{config.web.staffing_goal:.0%} of calls)", staffed, result["columns"]),
        ], "table")
    return 0


def _pct(v: float | None) -> str:
    return "n/a (no calls)" if v is None else f"{v * 100:.1f}%"
