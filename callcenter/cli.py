"""The ``callcenter`` command line.

Each package contributes sub-commands from its own ``cli`` module: a
``register(subparsers, common)`` function that adds parsers whose handler is
``func(args, config) -> int``.  Add the module to ``COMMAND_MODULES``.
Errors the operator can fix (config, migrations, input files) print one line
and exit non-zero; tracebacks are for bugs.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .config import ConfigError, load_config

COMMAND_MODULES = [
    "callcenter.commands",
    "callcenter.queuecalls.cli",
    "callcenter.staffing_plan_cli",
    "callcenter.reporting_cli",
    "dialer.cli",
    "ivr_flows.cli",
    "callcenter.complaints.cli",
    "callcenter.web.cli",
    "recordings.cli",
    "callcenter.simulator.cli",
    "callcenter.doctor.cli",
]


class UserError(Exception):
    """An error caused by input the operator can fix; printed as one line."""


CONFIG_HELP = "TOML config file ($CALLCENTER_CONFIG)"


def build_parser() -> argparse.ArgumentParser:
    """Global options are accepted before and after the command.

    The sub-commands' copy of ``--config`` defaults to ``SUPPRESS``: argparse copies
    a sub-parser's defaults over the namespace, so a ``None`` default there would
    silently discard ``callcenter --config F cmd``.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP)
    parser = argparse.ArgumentParser(
        prog="callcenter",
        description="Hospital hotline bridge for Asterisk: IVR, queues, answer times, "
        "outbound revisits, complaints and recordings.",
    )
    parser.add_argument("--config", "-c", metavar="FILE", default=None, help=CONFIG_HELP)
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:
        parser.print_help()
        return 2
    try:
        config = load_config(args.config)
        from .logs import setup_logging

        setup_logging(config.values["service"]["log_level"])
        return int(args.func(args, config) or 0)
    except (ConfigError, UserError) as exc:
        print(f"callcenter: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `callcenter report ... | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence for operator-facing errors
        from .store import MigrationRequired

        if isinstance(exc, MigrationRequired):
            print(f"callcenter: error: {exc}", file=sys.stderr)
            return 2
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            logging.getLogger("callcenter").debug("database error", exc_info=True)
            print(f"callcenter: error: cannot use the database: {exc.orig.__class__.__name__}: "
                  f"{str(exc.orig).splitlines()[0] if exc.orig else exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
