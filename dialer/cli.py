"""``callcenter import ...``, ``callcenter campaign ...``, ``callcenter dnc ...``."""
from __future__ import annotations

import json
import sys
import time

from callcenter.cli import UserError


def register(sub, common) -> None:
    p = sub.add_parser("import", parents=[common], help="import patients, treatments or appointments (CSV)")
    p.add_argument("kind", choices=["patients", "treatments", "appointments"])
    p.add_argument("file", help="UTF-8 CSV with a header row (see docs/dialer.md)")
    p.set_defaults(func=cmd_import)

    c = sub.add_parser("campaign", parents=[common],
                       help="outbound campaigns (revisits, no-shows, reminders, notifications, follow-ups)")
    cs = c.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    p = cs.add_parser("create", parents=[common], help="create a campaign (and its due contacts)")
    p.add_argument("name")
    p.add_argument("--kind", required=True, choices=["revisit", "no_show", "reminder", "notification",
                                                     "complaint_followup", "callback"])
    p.add_argument("--mode", default="progressive", choices=["progressive", "survey", "predictive"])
    p.add_argument("--server", default=None,
                   help="the Asterisk server ([[ami]] name) to originate on (default: the first configured)")
    p.add_argument("--queue", default="", help="agent queue (default [dialer] default_queue)")
    p.add_argument("--types", default="", help="revisit: only these treatment types (comma-separated)")
    p.add_argument("--max-attempts", type=int, default=None)
    p.add_argument("--max-channels", type=int, default=None, help="survey mode: calls in flight")
    p.add_argument("--message", default="", help="notification: the message id (ivr_flows/spoken/notifications.yaml)")
    p.add_argument("--days", type=float, default=None, help="notification: days a patient may be called")
    p.add_argument("--start", action="store_true", help="start dialling at once")
    p.set_defaults(func=cmd_create)
    p = cs.add_parser("list", parents=[common], help="list campaigns")
    p.set_defaults(func=cmd_list)
    for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        p = cs.add_parser(action, parents=[common], help=f"{action} a campaign")
        p.add_argument("campaign", help="name or id")
        p.set_defaults(func=cmd_state, state=state, action=action)
    p = cs.add_parser("status", parents=[common], help="progress and results of a campaign (or all)")
    p.add_argument("campaign", nargs="?", help="name or id (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = cs.add_parser("add-patients", parents=[common],
                      help="notification campaign: call these patients (CSV with a patient_id column)")
    p.add_argument("campaign", help="name or id")
    p.add_argument("file", help="UTF-8 CSV with a header row and a patient_id column")
    p.set_defaults(func=cmd_add_patients)
    p = cs.add_parser("plans", parents=[common], help="check and show the revisit plans file")
    p.set_defaults(func=cmd_plans)

    d = sub.add_parser("dnc", parents=[common], help="do-not-call list")
    ds = d.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)
    p = ds.add_parser("add", parents=[common], help="never call this number again (all campaigns)")
    p.add_argument("phone")
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_dnc_add)
    p = ds.add_parser("remove", parents=[common])
    p.add_argument("phone")
    p.set_defaults(func=cmd_dnc_remove)
    p = ds.add_parser("list", parents=[common])
    p.set_defaults(func=cmd_dnc_list)


def _db(config):
    from callcenter.commands import open_db

    return open_db(config)


def _plans(config):
    from .plans import PlanError, load_plans

    try:
        return load_plans(config.dialer.plans_file or None)
    except PlanError as exc:
        raise UserError("revisit plans file has errors:\n" + str(exc)) from None


def _context(config):
    from .campaigns import Settings
    from .compliance import Rules

    return Settings.from_config(config), Rules.from_config(config)


def cmd_import(args, config) -> int:
    from .importer import CsvEncodingError, decode_csv, import_rows, parse_csv

    try:
        with open(args.file, "rb") as fh:
            text, encoding = decode_csv(fh.read(), args.file)
    except FileNotFoundError:
        raise UserError(f"{args.file}: no such file") from None
    except CsvEncodingError as exc:
        raise UserError(str(exc)) from None
    if encoding != "utf-8":
        print(f"{args.file}: read as Chinese GBK/GB18030 (not UTF-8)", file=sys.stderr)
    rows, lines = parse_csv(text)
    settings, rules = _context(config)
    plans = _plans(config) if args.kind == "treatments" else None
    started = time.monotonic()
    last = [0.0]

    def progress(stage, done, total):
        t = time.monotonic()
        if stage == "applied" and (t - last[0] >= 1.0 or done == total):
            last[0] = t
            print(f"{args.kind}: {done}/{total} rows applied", file=sys.stderr)

    with _db(config) as db:
        result = db.call(lambda s: import_rows(s, args.kind, rows, args.file, lines=lines,
                                               region=config.hospital.region, plans=plans, rules=rules,
                                               settings=settings, progress=progress))
    if result.errors:
        for e in result.errors[:200]:
            print(f"{args.file}:{e.line}: {e.field}: {e.reason}", file=sys.stderr)
        more = len(result.errors) - 200
        if more > 0:
            print(f"... and {more} more", file=sys.stderr)
        raise UserError(f"{args.file}: {len(result.errors)} problem(s); nothing imported")
    print(f"{args.kind}: {result.rows} rows: {result.inserted} inserted, {result.updated} updated, "
          f"{result.unchanged} unchanged; {result.contacts_created} contacts created, "
          f"{result.contacts_closed} closed "
          f"({time.monotonic() - started:.1f} s)")
    return 0


def cmd_create(args, config) -> int:
    from .campaigns import CampaignError, create_campaign, materialize

    settings, rules = _context(config)
    plans = _plans(config) if args.kind == "revisit" else None
    extra = {}
    if args.types and args.kind != "revisit":
        raise UserError("--types is for revisit campaigns")
    if args.types:
        extra["treatment_types"] = [t.strip() for t in args.types.split(",") if t.strip()]
        unknown = [t for t in extra["treatment_types"] if t not in plans]
        if unknown:
            raise UserError(f"unknown treatment type(s) {unknown} (known: {', '.join(plans)})")
    if args.max_channels:
        extra["max_channels"] = args.max_channels
    if (args.message or args.days is not None) and args.kind != "notification":
        raise UserError("--message and --days are for notification campaigns")
    if args.message:
        extra["message"] = args.message
    if args.days is not None:
        extra["days"] = args.days
    server = config.ami_server(args.server).name if args.server else config.ami_servers[0].name
    with _db(config) as db:
        def work(s):
            c = create_campaign(s, name=args.name, kind=args.kind, mode=args.mode,
                                queue=args.queue or config.dialer.default_queue,
                                max_attempts=args.max_attempts, settings=extra,
                                state="running" if args.start else "draft", server=server)
            n = materialize(s, c, now=time.time(), plans=plans, settings=settings, rules=rules)
            return c.id, c.state, n
        try:
            cid, state, n = db.call(work)
        except CampaignError as exc:
            raise UserError(str(exc)) from None
    print(f"campaign {args.name} (id {cid}) created, {state}; {n} contacts")
    return 0


def cmd_add_patients(args, config) -> int:
    import csv

    from .campaigns import CampaignError, get_campaign
    from .notifications import add_patients

    try:
        with open(args.file, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if "patient_id" not in (reader.fieldnames or []):
                raise UserError(f"{args.file}:1: patient_id: required column missing from the header")
            ids = [row["patient_id"] or "" for row in reader]
    except FileNotFoundError:
        raise UserError(f"{args.file}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{args.file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    _settings, rules = _context(config)
    with _db(config) as db:
        try:
            added = db.call(lambda s: add_patients(s, get_campaign(s, args.campaign), ids, now=time.time(),
                                                   rules=rules))
        except CampaignError as exc:
            raise UserError(f"{args.file}: {exc}") from None
    print(f"{added.created} contacts created, {added.already} already listed, "
          f"{added.do_not_call} on the do-not-call list")
    return 0


def cmd_list(args, config) -> int:
    from .campaigns import list_campaigns

    with _db(config) as db:
        rows = db.call(lambda s: [(c.id, c.name, c.kind, c.mode, c.state, c.queue) for c in list_campaigns(s)])
    print(f"{'id':>4}  {'name':<24} {'kind':<19} {'mode':<12} {'state':<8} queue")
    for r in rows:
        print(f"{r[0]:>4}  {r[1]:<24} {r[2]:<19} {r[3]:<12} {r[4]:<8} {r[5]}")
    return 0


def cmd_state(args, config) -> int:
    from .campaigns import CampaignError, set_state

    with _db(config) as db:
        try:
            name = db.call(lambda s: set_state(s, args.campaign, args.state).name)
        except CampaignError as exc:
            raise UserError(str(exc)) from None
    print(f"campaign {name}: {args.state}")
    return 0


def cmd_status(args, config) -> int:
    from .campaigns import CampaignError, get_campaign, list_campaigns, status

    now = time.time()
    days = config.dialer.predictive_window_days
    with _db(config) as db:
        def work(s):
            cs = [get_campaign(s, args.campaign)] if args.campaign else list_campaigns(s)
            return [status(s, c, now=now, abandon_days=days) for c in cs]
        try:
            out = db.call(work)
        except CampaignError as exc:
            raise UserError(str(exc)) from None
    if args.json:
        json.dump(out if not args.campaign else out[0], sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for st in out:
        print(f"{st['campaign']} ({st['kind']}, {st['mode']}, {st['state']})")
        print(f"  contacts {st['contacts']}: due {st['due']}, pending {st['pending']}, in call {st['in_call']}")
        print(f"  dialled {st['dialled']}, reached an agent {st['reached']}, completed {st['completed']}, "
              f"rebooked {st['rebooked']}, declined {st['declined']}, opted out {st['opted_out']}, "
              f"unreachable {st['unreachable']}, expired {st['expired']}")
        print(f"  attempts {st['attempts']} (answered {st['answered']}, {st['attempts_per_contact']} per contact), "
              f"abandoned rate {st['abandon_rate'] * 100:.1f}% ({days:g} days)")
        if st.get("answers"):
            print("  answers: " + ", ".join(f"{k} {v}" for k, v in st["answers"].items()))
        if st["survey_responses"]:
            qs = ", ".join(f"{k} {v}" for k, v in st["survey_question_avg"].items())
            print(f"  survey: {st['survey_responses']} responses, average {st['survey_score_avg']} ({qs})")
    return 0


def cmd_plans(args, config) -> int:
    plans = _plans(config)
    for p in plans.values():
        steps = ", ".join(f"day {s.day} {s.name} ({s.window_days:g} d)" for s in p.steps)
        print(f"{p.treatment_type:<14} {p.label}: {steps}")
    return 0


def cmd_dnc_add(args, config) -> int:
    from callcenter.domain import build_domain
    from callcenter.phones import PhoneError

    api = build_domain(config).dialer
    with _db(config) as db:
        try:
            n = db.call(lambda s: api.add_do_not_call(s, args.phone, source="admin", reason=args.reason))
        except PhoneError as exc:
            raise UserError(f"{args.phone!r}: {exc}") from None
    print(f"added to the do-not-call list; {n} open contact(s) closed")
    return 0


def cmd_dnc_remove(args, config) -> int:
    from callcenter.domain import build_domain

    api = build_domain(config).dialer
    with _db(config) as db:
        ok = db.call(lambda s: api.remove_do_not_call(s, args.phone))
    if not ok:
        raise UserError("that number is not on the do-not-call list")
    print("removed from the do-not-call list")
    return 0


def cmd_dnc_list(args, config) -> int:
    from sqlalchemy import select

    from callcenter.logs import mask_number

    from .models import DoNotCall

    with _db(config) as db:
        rows = db.call(lambda s: [(d.phone, d.source, d.created_at) for d in
                                  s.scalars(select(DoNotCall).order_by(DoNotCall.id))])
    for phone, source, at in rows:
        print(f"{mask_number(phone)}  {source:<8} {at:%Y-%m-%d %H:%M}")
    return 0
