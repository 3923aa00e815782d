"""``callcenter complaints open|list|show|move|reopen|progress|revisit`` and
``callcenter report complaints``.

Operators' commands on the store; times default to now (``--at`` to record a
past moment, e.g. a paper form entered late), in the hospital's timezone.
"""
from __future__ import annotations

import datetime as dt
import getpass
import sys
from zoneinfo import ZoneInfo

from callcenter.cli import UserError
from callcenter.phones import canonical
from callcenter.reports_cli import add_report, emit, iter_sections, parse_when, period

from .deadlines import CHANNELS, SEVERITIES
from .lifecycle import STATES
from .models import CATEGORIES


def register(sub, common) -> None:
    c = sub.add_parser("complaints", parents=[common], help="complaint tickets (投诉工单)")
    cs = c.add_subparsers(dest="complaints_command", metavar="ACTION", required=True)

    def with_actor(p):
        p.add_argument("--actor", default=None, help="who does it (default: your login name)")
        p.add_argument("--at", default=None, metavar="TIME", help="when (ISO time; default now)")
        return p

    p = with_actor(cs.add_parser("open", parents=[common], help="open a ticket"))
    p.add_argument("--category", required=True, choices=CATEGORIES)
    p.add_argument("--severity", default="normal", choices=SEVERITIES)
    p.add_argument("--channel", default="phone", choices=CHANNELS)
    p.add_argument("--department", default="")
    p.add_argument("--summary", required=True)
    p.add_argument("--demand", default="", help="what the patient asks for")
    p.add_argument("--phone", default="", help="patient's phone number")
    p.add_argument("--name", default="", help="patient's name")
    p.add_argument("--tag", action="append", default=[], help="free tag (repeatable)")
    p.add_argument("--call", default=None, metavar="UNIQUEID", help="link the queue call")
    p.add_argument("--recording", default=None, metavar="ID", help="link a recording")
    p.set_defaults(func=cmd_open)

    p = cs.add_parser("list", parents=[common], help="list tickets (patient numbers masked)")
    p.add_argument("--status", choices=STATES, action="append")
    p.add_argument("--open", action="store_true", help="only tickets not yet resolved")
    p.add_argument("--category", choices=CATEGORIES)
    p.add_argument("--department")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_list)

    p = cs.add_parser("show", parents=[common], help="one ticket: deadlines, links, history")
    p.add_argument("ticket", help="number (TS-2026-000123) or id")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_show)

    p = with_actor(cs.add_parser("move", parents=[common], help="move a ticket to another state"))
    p.add_argument("ticket")
    p.add_argument("state", choices=[s for s in STATES if s not in ("received", "revisited")])
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_move)

    p = with_actor(cs.add_parser("reopen", parents=[common], help="reopen a resolved/closed ticket"))
    p.add_argument("ticket")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_reopen)

    p = with_actor(cs.add_parser("progress", parents=[common], help="record a progress update to the patient"))
    p.add_argument("ticket")
    p.add_argument("--note", required=True)
    p.add_argument("--expected", metavar="DATE", help="expected resolution date (YYYY-MM-DD)")
    p.set_defaults(func=cmd_progress)

    p = with_actor(cs.add_parser("revisit", parents=[common], help="record a revisit (回访) made by hand"))
    p.add_argument("ticket")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--satisfied", dest="satisfied", action="store_true")
    g.add_argument("--unsatisfied", dest="satisfied", action="store_false")
    p.add_argument("--score", type=int, choices=range(1, 6), metavar="1-5")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_revisit)

    add_report(sub, common, "complaints", func=cmd_report,
               help="complaints: deadline compliance, handling times, reopen rate, satisfaction")


# -- helpers -------------------------------------------------------------------

def _setup(config):
    """The database and the complaints service as ``serve`` builds it."""
    from callcenter.commands import open_db
    from callcenter.domain import build_domain

    return open_db(config), build_domain(config).complaints


def _now(args, config) -> dt.datetime:
    tz = ZoneInfo(config.hospital.timezone)
    if getattr(args, "at", None):
        return parse_when(args.at, tz)
    from callcenter.clock import WallClock, local_datetime

    return local_datetime(WallClock(), tz)


def _actor(args) -> str:
    return args.actor or f"cli:{getpass.getuser()}"


def _local(t, tz) -> str:
    from .workdays import to_datetime

    return to_datetime(t).astimezone(tz).strftime("%Y-%m-%d %H:%M") if t else ""


def _run(db, fn):
    from callcenter.errors import DomainError

    try:
        return db.call(fn)
    except DomainError as exc:
        raise UserError(str(exc)) from None
    finally:
        db.close()


# -- commands ------------------------------------------------------------------

def cmd_open(args, config) -> int:
    db, svc = _setup(config)
    at = _now(args, config)

    def go(s):
        t = svc.open_ticket(s, actor=_actor(args), category=args.category, severity=args.severity,
                            channel=args.channel, department=args.department, summary=args.summary,
                            demand=args.demand, patient_phone=canonical(args.phone or "", config.hospital.region), patient_name=args.name,
                            tags=args.tag, received_at=at, call_uniqueid=args.call,
                            recording_id=args.recording)
        return t.number, t.status

    number, status = _run(db, go)
    print(f"{number} {status}")
    return 0


def cmd_list(args, config) -> int:
    from sqlalchemy import select

    from callcenter.logs import mask_name, mask_number

    from .lifecycle import OPEN_STATES
    from .models import ComplaintTicket as T

    db, _ = _setup(config)
    tz = ZoneInfo(config.hospital.timezone)

    def go(s):
        q = select(T).order_by(T.received_at.desc()).limit(args.limit)
        if args.status:
            q = q.where(T.status.in_(args.status))
        if args.open:
            q = q.where(T.status.in_(OPEN_STATES))
        if args.category:
            q = q.where(T.category == args.category)
        if args.department:
            q = q.where(T.department == args.department)
        rows = []
        for t in s.scalars(q):
            dues = [d for d in (t.ack_due, t.start_due, t.progress_due, t.answer_due) if d]
            rows.append({"number": t.number, "status": t.status, "severity": t.severity,
                         "category": t.category or "-", "department": t.department, "channel": t.channel,
                         "received": _local(t.received_at, tz),
                         "answer_due": _local(t.answer_due or t.progress_due, tz),
                         "patient": f"{mask_name(t.patient_name)} {mask_number(t.patient_phone)}".strip(),
                         "reopened": t.reopen_count})
        return rows

    rows = _run(db, go)
    cols = ["number", "status", "severity", "category", "department", "channel", "received",
            "answer_due", "patient", "reopened"]
    emit(rows, args.format, columns=cols)
    return 0


def cmd_show(args, config) -> int:
    import json

    db, svc = _setup(config)
    tz = ZoneInfo(config.hospital.timezone)

    def go(s):
        t = svc.get_ticket(s, args.ticket)
        info = {k: getattr(t, k) for k in (
            "number", "status", "severity", "category", "tags", "channel", "department", "summary",
            "demand", "patient_name", "patient_phone", "assigned_to", "reopen_count", "satisfied",
            "satisfaction", "expected_resolution")}
        for k in ("received_at", "acknowledged_at", "started_at", "progress_at", "answered_at",
                  "resolved_at", "revisited_at", "closed_at"):
            info[k] = _local(getattr(t, k), tz)
        dls = [{"deadline": d.kind, "round": d.round, "due": _local(d.due_at, tz),
                "met": _local(d.met_at, tz), "state": d.level, "active": d.active}
               for d in svc.ticket_deadlines(s, t.id)]
        lks = [{"kind": l.kind, "ref": l.ref} for l in svc.links(s, t.id)]
        evs = [{"at": _local(e.at, tz), "actor": e.actor, "action": e.action, "field": e.field,
                "from": e.from_value or "", "to": e.to_value or "", "note": e.note} for e in svc.events(s, t.id)]
        return info, dls, lks, evs

    info, dls, lks, evs = _run(db, go)
    if args.format == "json":
        json.dump({"ticket": info, "deadlines": dls, "links": lks, "events": evs}, sys.stdout,
                  ensure_ascii=False, indent=2, default=str)
        print()
        return 0
    for k, v in info.items():
        print(f"{k:>20}: {', '.join(v) if isinstance(v, list) else ('' if v is None else v)}")
    print()
    iter_sections([("deadlines", dls, ["deadline", "round", "due", "met", "state", "active"]),
                   ("links", lks, ["kind", "ref"]),
                   ("history", evs, ["at", "actor", "action", "field", "from", "to", "note"])], "table")
    return 0


def cmd_move(args, config) -> int:
    db, svc = _setup(config)
    at = _now(args, config)
    number, status = _run(db, lambda s: (lambda t: (t.number, t.status))(
        svc.transition(s, args.ticket, args.state, actor=_actor(args), at=at, note=args.note)))
    print(f"{number} {status}")
    return 0


def cmd_reopen(args, config) -> int:
    db, svc = _setup(config)
    at = _now(args, config)
    number, status = _run(db, lambda s: (lambda t: (t.number, t.status))(
        svc.reopen(s, args.ticket, actor=_actor(args), at=at, reason=args.reason)))
    print(f"{number} {status}")
    return 0


def cmd_progress(args, config) -> int:
    db, svc = _setup(config)
    at = _now(args, config)
    try:
        expected = dt.date.fromisoformat(args.expected) if args.expected else None
    except ValueError:
        raise UserError(f"--expected: not a date (YYYY-MM-DD): {args.expected!r}") from None
    number, status = _run(db, lambda s: (lambda t: (t.number, t.status))(
        svc.record_progress(s, args.ticket, actor=_actor(args), at=at, note=args.note,
                            expected_resolution=expected)))
    print(f"{number} {status}")
    return 0


def cmd_revisit(args, config) -> int:
    db, svc = _setup(config)
    at = _now(args, config)
    number, status = _run(db, lambda s: (lambda t: (t.number, t.status))(
        svc.record_revisit(s, args.ticket, args.satisfied, args.note, at, actor=_actor(args),
                           score=args.score, strict=True)))
    print(f"{number} {status}")
    return 0


def cmd_report(args, config) -> int:
    from . import reports

    db, _ = _setup(config)
    since, until = period(args, config)
    now = _now(args, config)
    rep = _run(db, lambda s: reports.report(s, since, until, now))
    if args.format == "json":
        emit([], "json", json_value=rep)
    elif args.format == "csv":
        emit(reports.flat_rows(rep), "csv", columns=["section", "key", "metric", "value"])
    else:
        pct = lambda v: "" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        head = [{"tickets": rep["tickets"], "compliance": pct(rep["compliance"]),
                 "reopen_rate": pct(rep["reopen"]["reopen_rate"]),
                 "satisfaction": pct(rep["satisfaction"]["rate"]),
                 "revisits": rep["satisfaction"]["revisits"],
                 "mean_score": rep["satisfaction"]["mean_score"]}]
        comp_cols = ["tickets", "deadlines", "on_time", "late", "missed", "pending", "compliance"]

        def fmt(rows):
            return [{**r, "compliance": pct(r["compliance"])} for r in rows]

        p = rep["period"]
        iter_sections([
            (f"complaints received {p['since'] or '(start)'} .. {p['until'] or '(now)'}", head,
             list(head[0])),
            ("deadline compliance by category", fmt(rep["compliance_by_category"]), ["category"] + comp_cols),
            ("deadline compliance by department", fmt(rep["compliance_by_department"]),
             ["department"] + comp_cols),
            ("deadline compliance by deadline", fmt(rep["compliance_by_deadline"]), ["deadline"] + comp_cols),
            ("time from receipt (hours)", rep["times"],
             ["measure", "count", "mean_hours", "median_hours", "p90_hours"]),
        ], "table")
    return 0
