"""``callcenter ivr check FILE...`` and ``callcenter prompts build``."""
from __future__ import annotations

import sys
from pathlib import Path

from callcenter.cli import UserError

from .flow import FLOWS_DIR, FlowError, check_file, load_flow


def register(sub, common) -> None:
    ivr = sub.add_parser("ivr", parents=[common], help="IVR flows")
    isub = ivr.add_subparsers(dest="ivr_command", metavar="ACTION", required=True)
    p = isub.add_parser("check", parents=[common],
                        help="validate flow files; errors as file:line: message")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_check)

    pr = sub.add_parser("prompts", parents=[common], help="IVR prompt audio")
    psub = pr.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    p = psub.add_parser("build", parents=[common],
                        help="render prompts to 8 kHz WAV with espeak-ng + sox")
    p.add_argument("files", nargs="*", metavar="FLOW", help="flow files (default: all served flows)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: <data_dir>/prompts)")
    p.add_argument("--force", action="store_true", help="render even unchanged prompts")
    p.set_defaults(func=cmd_prompts_build)


def cmd_check(args, config) -> int:
    bad = 0
    for name in args.files:
        problems = check_file(name)
        for problem in problems:
            print(problem)
        if problems:
            bad += 1
        else:
            print(f"{name}: ok")
    return 1 if bad else 0


def _flow_files(args, config) -> list[Path]:
    if args.files:
        return [Path(f) for f in args.files]
    d = Path(config.agi.flows_dir) if config.agi.flows_dir else FLOWS_DIR
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")])


def cmd_prompts_build(args, config) -> int:
    from .prompts import build

    flows = []
    for path in _flow_files(args, config):
        try:
            flows.append(load_flow(path))
        except FlowError as exc:
            raise UserError(str(exc).splitlines()[0] + " (run: callcenter ivr check)") from None
    out = Path(args.out) if args.out else config.data_dir / "prompts"
    report = build(flows, out, force=args.force)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"prompts: {len(report.built)} rendered, {len(report.skipped)} unchanged, in {out}")
    return 0
