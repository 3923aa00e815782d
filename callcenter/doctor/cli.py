"""``callcenter doctor [--json]``: one line per check with its remedy; exit 1 if any failed."""
from __future__ import annotations

import asyncio
import json
import sys

from callcenter.config import Config

MARK = {"ok": "OK  ", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}


def register(sub, common) -> None:
    p = sub.add_parser("doctor", parents=[common],
                       help="check the installation (database, AMI permissions, queues, dialplan, prompts, "
                            "directories, clock) and say what to fix")
    p.add_argument("--json", action="store_true", help="machine-readable output for monitoring")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args, config: Config) -> int:
    from . import run

    results = asyncio.run(run(config))
    failed = any(r.status == "fail" for r in results)
    if args.json:
        json.dump({"ok": not failed, "checks": [r.as_dict() for r in results]}, sys.stdout, indent=2,
                  ensure_ascii=False)
        print()
    else:
        for r in results:
            print(f"{MARK[r.status]} {r.check}: {r.detail}")
            if r.remedy and r.status != "ok":
                print(f"     fix: {r.remedy}")
        print("doctor: " + ("problems found" if failed else "all checks passed"))
    return 1 if failed else 0
