"""``callcenter recordings list|verify|purge|hold|release``."""
from __future__ import annotations

import getpass
import json
import sys

from callcenter.clock import WallClock, utc_datetime


def register(sub, common) -> None:
    r = sub.add_parser("recordings", parents=[common], help="call recordings: catalogue, retention, legal hold")
    rs = r.add_subparsers(dest="recordings_command", metavar="ACTION", required=True)

    p = rs.add_parser("list", parents=[common], help="list catalogued recordings (newest first)")
    p.add_argument("--status", choices=["recording", "ready", "missing", "failed", "purged"])
    p.add_argument("--kind", choices=["queue", "complaint", "voice_message", "outbound"])
    p.add_argument("--queue")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = rs.add_parser("verify", parents=[common],
                      help="reconcile catalogue and disk: missing, orphan, size/checksum mismatch (exit 1 on problems)")
    p.add_argument("--quick", action="store_true", help="compare sizes only, skip sha256")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = rs.add_parser("purge", parents=[common],
                      help="delete files past their retention (never under legal hold); audited")
    p.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_purge)

    for name, hold in (("hold", True), ("release", False)):
        p = rs.add_parser(name, parents=[common],
                          help="put a recording under legal hold" if hold else "lift a legal hold")
        p.add_argument("id", type=int)
        p.add_argument("--reason", default="")
        p.set_defaults(func=cmd_hold, hold=hold)


def _setup(config):
    from callcenter.commands import open_db

    from .settings import from_config

    return open_db(config), from_config(config)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001
        return "cli"


def _now():
    return utc_datetime(WallClock().seconds())


def cmd_list(args, config) -> int:
    from . import catalog

    db, _ = _setup(config)
    try:
        rows = db.call(lambda s: [r.as_dict() for r in catalog.query(
            s, status=args.status, kind=args.kind, queue=args.queue,
            include_purged=args.status == "purged", limit=args.limit)])
    finally:
        db.close()
    if args.json:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(f"{'id':>6} {'status':9} {'kind':13} {'started (UTC)':19} {'dur s':>6} {'hold':4}  path")
    for r in rows:
        dur = f"{r['duration']:.1f}" if r["duration"] is not None else "-"
        print(f"{r['id']:>6} {r['status']:9} {r['kind']:13} {r['started_at'][:19]:19} {dur:>6} "
              f"{'yes' if r['legal_hold'] else '':4}  {r['path']}")
    return 0


def cmd_verify(args, config) -> int:
    from .maintenance import verify

    db, settings = _setup(config)
    try:
        report = verify(db, settings, now=_now(), check_hash=not args.quick)
    finally:
        db.close()
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        print()
    else:
        for p in report.problems:
            ident = f"#{p.recording_id}" if p.recording_id is not None else "-"
            print(f"{p.kind:18} {ident:>7}  {p.path}  ({p.detail})")
        print(f"{report.checked} catalogued, {report.files_on_disk} files on disk, "
              f"{len(report.problems)} problem(s) in {settings.directory}")
    return 0 if report.ok else 1


def cmd_purge(args, config) -> int:
    from .maintenance import purge

    db, settings = _setup(config)
    try:
        items = purge(db, settings, now=_now(), actor=_actor(), dry_run=args.dry_run)
    finally:
        db.close()
    if args.json:
        json.dump([i.__dict__ for i in items], sys.stdout, indent=2)
        print()
    else:
        verb = "would delete" if args.dry_run else "deleted"
        for i in items:
            note = f"  ERROR: {i.error}" if i.error else ("" if args.dry_run or i.removed_file else "  (file was already gone)")
            print(f"{verb} #{i.recording_id} {i.kind} expired {i.purge_after[:10]} {i.path}{note}")
        print(f"{len(items)} recording(s) {verb}")
    return 1 if any(i.error for i in items) else 0


def cmd_hold(args, config) -> int:
    from callcenter.cli import UserError

    from . import catalog

    db, _ = _setup(config)
    try:
        rec = db.call(lambda s: catalog.set_hold(s, args.id, args.hold, actor=_actor(), reason=args.reason).as_dict())
    except LookupError as exc:
        raise UserError(str(exc)) from None
    finally:
        db.close()
    state = "under legal hold" if rec["legal_hold"] else "released from legal hold"
    print(f"recording #{rec['id']} ({rec['path']}) is {state}")
    return 0
