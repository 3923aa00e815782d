"""The ``callcenter`` command line.

Each package contributes sub-commands from its own ``cli`` module: a
``register(subparsers, common)`` function that adds parsers whose handler is
``func(args, config) -> int``.  Add the module and its commands to ``COMMANDS``.
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

# Each module and the commands it adds (``report <name>``: a report), so that a command
# imports only the module that runs it (the others pull in the web, the IVR, holidays,
# phone numbers: a tenth of a second before a report starts); ``tests/test_cli_commands.py``
# checks this table against what every ``register`` adds.
COMMANDS: dict[str, tuple[str, ...]] = {
    "callcenter.commands": ("serve", "demo", "db", "config"),
    "callcenter.queuecalls.cli": ("report answer-times", "report rebuild-rollups"),
    "callcenter.staffing_plan_cli": ("report staffing-plan",),
    "callcenter.reporting_cli": ("report intervals", "report service-level-daily", "report agents",
                                 "report outcomes", "report abandoned", "report complaint-deadlines"),
    "dialer.cli": ("import", "campaign", "dnc"),
    "ivr_flows.cli": ("ivr", "prompts"),
    "callcenter.complaints.cli": ("complaints", "report complaints"),
    "callcenter.web.cli": ("users", "tokens"),
    "recordings.cli": ("recordings",),
    "callcenter.simulator.cli": ("simulator",),
    "callcenter.doctor.cli": ("doctor",),
}
COMMAND_MODULES = list(COMMANDS)


class UserError(Exception):
    """An error caused by input the operator can fix; printed as one line."""


CONFIG_HELP = "TOML config file ($CALLCENTER_CONFIG)"


def command_words(argv: Sequence[str]) -> list[str]:
    """The command and, for ``report``, the report named in ``argv`` (options and the global
    ``--config``'s value skipped; what comes before a sub-command is only that)."""
    words: list[str] = []
    value = False
    for a in argv:
        if value:
            value = False
        elif a in ("--config", "-c"):
            value = True
        elif a == "--":
            break
        elif not a.startswith("-"):
            words.append(a)
            if words[0] != "report" or len(words) == 2:
                break
    return words


def modules_for(argv: Sequence[str] | None) -> list[str]:
    """The modules whose commands ``argv`` may run: the one that adds its command, or all of
    them (no command, an unknown one, ``report`` alone: the help and the errors list every
    choice)."""
    if argv is None:
        return list(COMMANDS)
    name = " ".join(command_words(argv))
    return [m for m, names in COMMANDS.items() if name in names] or list(COMMANDS)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Global options are accepted before and after the command.  With ``argv``, only the
    modules its command needs are imported (:func:`modules_for`).

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
    for name in modules_for(argv):
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The program (``argv`` None: ``sys.argv``, as the ``callcenter`` script calls it); a
    caller passing ``argv`` (tests) keeps its heap as it is."""
    import contextlib

    from . import heap

    program = argv is None
    if program:
        argv = sys.argv[1:]
    # the command's modules imported without collections, then frozen: no collection walks them
    with heap.imports_frozen() if program else contextlib.nullcontext():
        parser = build_parser(argv)
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
