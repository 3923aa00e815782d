"""Core sub-commands: serve, demo, db, config."""
from __future__ import annotations

import json
import sys

from .config import Config


def register(sub, common) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the service against a real Asterisk")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", parents=[common],
                       help="run the simulated PBX and the service together (SQLite, localhost)")
    from .demo import DEFAULT_SCALE, STATUS_EVERY

    p.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                   help=f"simulated seconds per real second (default {DEFAULT_SCALE:g}: a caller every few seconds)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--calls", type=float, default=400, help="inbound calls over the simulated day")
    p.add_argument("--duration", type=float, default=0,
                   help="stop after this many real seconds (0: run until Ctrl-C)")
    p.add_argument("--verbose", action="store_true", help="log every call (IVR path, screen pop, recording)")
    p.add_argument("--status-every", type=float, default=STATUS_EVERY, metavar="SECONDS",
                   help=f"real seconds between status lines (default {STATUS_EVERY:g})")
    p.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", parents=[common], help="database schema")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = dbsub.add_parser("upgrade", parents=[common], help="create or migrate the schema")
    p.set_defaults(func=cmd_db_upgrade)
    p = dbsub.add_parser("status", parents=[common], help="show the schema revision")
    p.set_defaults(func=cmd_db_status)
    p = dbsub.add_parser("downgrade", parents=[common],
                         help="migrate the schema back to REVISION (before installing older code)")
    p.add_argument("revision", help="the revision the older release's code is at (its `callcenter db status`)")
    p.set_defaults(func=cmd_db_downgrade)

    c = sub.add_parser("config", parents=[common], help="configuration")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    p = csub.add_parser("show", parents=[common], help="print the effective configuration, secrets masked")
    p.add_argument("--format", choices=["toml", "json"], default="toml")
    p.set_defaults(func=cmd_config_show)


def open_db(config: Config, *, migrated: bool = True):
    from .store import Database

    db = Database(config.database_url)
    if migrated:
        db.check_migrated()
    return db


def cmd_db_upgrade(args, config: Config) -> int:
    from .store import Database, migrate

    db = Database(config.database_url)
    migrate.upgrade(db.engine, phone_region=config.hospital.region,
                    rollup_settings=(config.hospital.answer_target_seconds, config.hospital.short_abandon_seconds))
    current, _ = migrate.current_and_heads(db.engine)
    print(f"database {db.safe_url} is at {', '.join(sorted(current))}")
    db.close()
    return 0


def cmd_db_downgrade(args, config: Config) -> int:
    from .store import Database, migrate

    from alembic.util import CommandError

    from .cli import UserError

    with Database(config.database_url) as db:
        try:
            migrate.downgrade(db.engine, args.revision)
        except CommandError as exc:
            raise UserError(f"cannot downgrade to {args.revision!r}: {exc}") from None
        current, _ = migrate.current_and_heads(db.engine)
        print(f"database {db.safe_url} is at {', '.join(sorted(current)) or 'nothing (empty schema)'}")
    return 0


def cmd_db_status(args, config: Config) -> int:
    from .store import Database, migrate

    db = Database(config.database_url)
    current, heads = migrate.current_and_heads(db.engine)
    state = "up to date" if set(current) == set(heads) else "needs: callcenter db upgrade"
    print(f"database {db.safe_url}: at {sorted(current) or 'nothing'}; code {sorted(heads)}; {state}")
    db.close()
    return 0 if set(current) == set(heads) else 1


def cmd_config_show(args, config: Config) -> int:
    masked = config.masked()
    if args.format == "json":
        json.dump(masked, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(f"# effective configuration (source: {config.source or 'defaults + environment'})")
    for sec, keys in masked.items():
        for entry, header in ([(e, f"[[{sec}]]") for e in keys] if isinstance(keys, list) else [(keys, f"[{sec}]")]):
            print(f"\n{header}")
            for k, v in entry.items():
                print(f"{k} = {json.dumps(v, ensure_ascii=False)}")
    return 0


def cmd_serve(args, config: Config) -> int:
    from .app import serve

    return serve(config)


def cmd_demo(args, config: Config) -> int:
    from .cli import UserError
    from .demo import run_demo

    if args.scale <= 0:
        raise UserError("--scale must be > 0")
    if args.status_every <= 0:
        raise UserError("--status-every must be > 0")
    return run_demo(config, scale=args.scale, seed=args.seed, duration=args.duration, calls=args.calls,
                    verbose=args.verbose, status_every=args.status_every)
