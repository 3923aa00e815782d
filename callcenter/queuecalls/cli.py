"""``callcenter report answer-times``: service level, ASA, abandons, waits.

The figures are counted by the database (:mod:`.report_queries`: one GROUP BY for
the summary, queues, hours and days, one for the agents) with the definitions of
:mod:`.stats`, so a million calls cost a scan, not a million dicts.  Table (default):
summary, per queue, per agent, per hour and per day, and the AMI outages (gaps) in
the period.  CSV: one line per call (streamed).  JSON: ``summary``, ``calls`` and the
breakdowns.
"""
from __future__ import annotations

import datetime as dt
import sys
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from ..reports_cli import add_report, emit, iter_sections, period, report_subparsers
from . import report_queries as rq
from . import rollup_figures  # noqa: F401 - imported with the parser: before the CLI freezes its heap
from . import stats
from .models import AmiOutage

CALL_FIELDS = ("uniqueid", "linkedid", "queue", "caller_number", "caller_name", "entered_at",
               "answered_at", "ended_at", "wait_seconds", "agent", "agent_name", "talk_seconds",
               "outcome", "within_target", "position", "ivr_session_id", "gap", "source", "direction")
GROUP_COLUMNS = ("key", "offered", "answered", "abandoned", "short_abandons", "timeouts",
                 "answered_within_target", "service_level", "sl_asterisk", "sl2", "asa_seconds",
                 "max_wait_seconds", "p90_wait_seconds", "abandon_rate")


def register(sub, common) -> None:
    p = add_report(sub, common, "answer-times",
                   help="answer times: service level (ours and Asterisk SL/SL2), ASA, abandons, waits",
                   func=cmd_answer_times)
    p.add_argument("--queue", metavar="Q", help="only this queue")
    p = report_subparsers(sub, common).add_parser(
        "rebuild-rollups", parents=[common],
        help="recount the queue-call rollups the period reports read, with the configured answer target "
             "and short-abandon seconds (after changing them)")
    p.set_defaults(func=cmd_rebuild_rollups)


def cmd_rebuild_rollups(args, config) -> int:
    import time

    from ..commands import open_db
    from . import rollups

    settings = rollups.Settings(float(config.hospital.answer_target_seconds),
                                float(config.hospital.short_abandon_seconds))
    with open_db(config) as db:
        t = time.perf_counter()
        slots, agent_days = db.call(rollups.rebuild, settings)
        print(f"queue-call rollups rebuilt in {time.perf_counter() - t:.1f} s: {slots} slot rows, "
              f"{agent_days} agent-day rows (answer target {settings.answer_target:g} s, "
              f"short abandon {settings.short_abandon:g} s)")
    return 0


def load_outages(session, since, until) -> list[dict]:
    q = select(AmiOutage)
    if until is not None:
        q = q.where(AmiOutage.start < until)
    if since is not None:
        q = q.where(or_(AmiOutage.end.is_(None), AmiOutage.end >= since))
    return [{"start": o.start, "end": o.end, "recovered_from_queue_log": o.recovered_from_queue_log,
             "recovered_calls": o.recovered_calls, "note": o.note}
            for o in session.scalars(q.order_by(AmiOutage.start))]


def _iso(v, tz: ZoneInfo):
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return v.astimezone(tz).isoformat(timespec="milliseconds")
    return v


def load_figures(session, since, until, queue, tz: ZoneInfo, target: float, short: float) -> dict:
    """Summary and breakdowns (the JSON's shape) of the period, counted by the database."""
    f, agents = rq.with_agents(session, since, until, tz, target=target, short_abandon=short, queue=queue)
    return {"summary": f.whole.summary(target, short),
            "queue": rq.sorted_groups(f.by_queue, target, short),
            "agent": rq.sorted_groups(agents, target, short),
            "hour": rq.sorted_groups(f.by_hour, target, short, fmt=lambda h: f"{h:02d}:00"),
            "day": rq.sorted_groups(f.by_day, target, short)}


def cmd_answer_times(args, config) -> int:
    from ..commands import open_db

    tz = ZoneInfo(config.hospital.timezone)
    since, until = period(args, config)
    target = float(config.hospital.answer_target_seconds)
    short = float(config.hospital.short_abandon_seconds)
    with open_db(config) as db:
        if args.format == "csv":
            db.call(lambda s: emit((_shown(r, tz) for r in rq.iter_calls(
                s, rq.period_calls(since, until, args.queue), CALL_FIELDS)), "csv", columns=CALL_FIELDS))
            return 0
        def load(s):
            calls = None
            if args.format == "json":
                calls = [_shown(r, tz) for r in rq.iter_calls(s, rq.period_calls(since, until, args.queue),
                                                              CALL_FIELDS)]
            return (load_figures(s, since, until, args.queue, tz, target, short),
                    load_outages(s, rq.utc(since), rq.utc(until)), calls)

        figures, outages, calls = db.call(load)
    summary, groups = figures["summary"], figures
    out_rows = [{k: _iso(v, tz) for k, v in o.items()} for o in outages]
    if args.format == "json":
        emit([], "json", json_value={
            "period": {"since": _iso(since, tz), "until": _iso(until, tz), "queue": args.queue,
                       "timezone": config.hospital.timezone},
            "summary": summary, "calls": calls,
            "by_queue": groups["queue"], "by_agent": groups["agent"],
            "by_hour": groups["hour"], "by_day": groups["day"], "outages": out_rows})
        return 0
    title = (f"Answer times {_iso(since, tz) or 'start'} .. {_iso(until, tz) or 'now'}"
             f"{' queue ' + args.queue if args.queue else ''} (target {target:g} s, "
             f"short abandon < {short:g} s)")
    metrics = [{"metric": k, "value": _fmt(summary[k], k)} for k in stats.SUMMARY_KEYS]
    metrics.append({"metric": "gaps (reconstructed/uncertain calls)", "value": summary["gaps"]})
    sections = [(title, metrics, ("metric", "value"))]
    for name in ("queue", "agent", "hour", "day"):
        rows = [{c: _fmt(g.get(c), c) for c in GROUP_COLUMNS} for g in groups[name]]
        sections.append((f"By {name}", rows, GROUP_COLUMNS))
    if out_rows:
        sections.append(("AMI outages in the period (calls inside are recovered or missing)",
                         out_rows, ("start", "end", "recovered_from_queue_log", "recovered_calls",
                                    "note")))
    iter_sections(sections, "table", out=sys.stdout)
    return 0


def _shown(row, tz: ZoneInfo) -> dict:
    return {k: _iso(v, tz) for k, v in row._mapping.items()}


def _fmt(v, key: str):
    if v is None:
        return "-"
    if key in ("service_level", "sl_asterisk", "sl2", "abandon_rate"):
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:.1f}"
    return v

