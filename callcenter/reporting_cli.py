"""``callcenter report intervals|agents|outcomes|service-level-daily|abandoned|complaint-deadlines``.

The supervisor's page reports on the command line, computed by the same code
(:mod:`callcenter.reporting`) and shown as the same table (:mod:`callcenter.report_tables`):
headings in ``--lang`` (default ``[hospital] language``), local times, percentages.
``--format csv`` and ``--format xlsx --output FILE`` write exactly the files the page's
download links give; ``json`` prints the raw result (fractions, UTC), as the API does.

    callcenter report intervals --since 2026-11-01 --until 2026-11-30 --queue consultation
    callcenter report agents --agent PJSIP/1001 --format xlsx --output agents.xlsx
"""
from __future__ import annotations

import datetime as dt
import json
import sys

from .reports_cli import add_report, emit

# command name -> the report's name in the web (the page's sections, /reports/<name>.csv)
COMMANDS = {
    "intervals": ("intervals", "service level, ASA, handling time per half hour of the day"),
    "service-level-daily": ("service-level-daily", "service level per day"),
    "agents": ("agents", "agent performance: calls, handling time, login and pause time, occupancy, outcomes"),
    "outcomes": ("outcomes", "call outcomes the agents saved, per outcome"),
    "abandoned": ("abandoned", "abandoned and timed-out calls (numbers masked)"),
    "complaint-deadlines": ("complaints", "open complaint deadlines, most urgent first"),
}


def register(sub, common) -> None:
    for command, (_, help_) in COMMANDS.items():
        p = add_report(sub, common, command, help=help_, func=cmd_report,
                       formats=("table", "csv", "xlsx", "json"))
        p.add_argument("--queue", metavar="Q", help="only this queue")
        p.add_argument("--agent", metavar="IFACE", help="only this agent (queue interface, e.g. PJSIP/1001)")
        p.add_argument("--lang", choices=["zh", "en"], help="headings and words (default [hospital] language)")
        p.add_argument("--output", "-o", metavar="FILE", help="write the CSV/XLSX here (xlsx: required)")


def _day(text: str | None, name: str) -> dt.date | None:
    if not text:
        return None
    from .cli import UserError

    try:
        return dt.date.fromisoformat(text[:10]) if len(text) == 10 else _bad(name, text)
    except ValueError:
        return _bad(name, text)


def _bad(name: str, text: str):
    from .cli import UserError

    raise UserError(f"--{name}: not a date (YYYY-MM-DD): {text!r}; these reports count whole local days")


def name_needs_wrapup(report: str) -> bool:
    return COMMANDS[report][0] in ("intervals", "agents")


def cmd_report(args, config) -> int:
    from . import reporting
    from .clock import WallClock
    from .cli import UserError
    from .commands import open_db
    from .report_tables import table
    from .web import reports

    # The queues' wrapuptime is read from Asterisk by the running service; this command has
    # no AMI link, so its handling times are talk only (said on stderr, not silently).
    st = reporting.ReportSettings.from_config(config, wrapup=lambda queue: 0.0)
    if name_needs_wrapup(args.report):
        print("report: handling time here is talk time only (wrap-up is read from Asterisk by the "
              "running service: see the web's report)", file=sys.stderr)
    now = dt.datetime.fromtimestamp(WallClock().seconds(), dt.timezone.utc)  # the command's edge
    until = _day(args.until, "until") or now.astimezone(st.tz).date()
    since = _day(args.since, "since") or until - dt.timedelta(days=6)
    if since > until:
        raise UserError("--since must not be after --until")
    if args.format == "xlsx" and not args.output:
        raise UserError("--format xlsx needs --output FILE (a workbook is not text)")
    name = COMMANDS[args.report][0]
    lang = args.lang or (config.hospital.language if config.hospital.language in ("zh", "en") else "zh")
    with open_db(config) as db:
        result = db.call(reporting.compute, (name,), since, until, settings=st, now=now, queue=args.queue,
                         agent=args.agent, per_page=None)[name]
    result = reporting.wrap(name, since, until, result, queue=args.queue, agent=args.agent)
    if args.format == "json":
        emit([], "json", json_value=result)
        return 0
    tb = table(name, result, lang, st.tz)
    if args.format in ("csv", "xlsx"):
        body = (reports.table_csv(tb) if args.format == "csv"
                else reports.tables_xlsx([(_title(lang, name), tb)]))
        if args.output:
            with open(args.output, "wb") as f:
                f.write(body)
        else:
            sys.stdout.write(body.decode("utf-8-sig"))
        return 0
    rows = [{h: c.text for h, c in zip(tb.headings, row)} for row in tb.rows]
    scope = " · ".join(x for x in (args.queue, args.agent) if x)
    emit(rows, "table", columns=tb.headings,
         title=f"{_title(lang, name)} {since} .. {until}{' · ' + scope if scope else ''}")
    if not result["available"]:
        print(_text(lang, "rep.unavailable"))
    return 0


def _title(lang: str, name: str) -> str:
    return _text(lang, "rep." + name)


def _text(lang: str, key: str) -> str:
    from .web.i18n import t

    return t(lang, key)
