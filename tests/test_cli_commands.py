"""The command line imports only the module of the command it runs (``cli.COMMANDS``)."""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from callcenter import cli


def _added_by(module: str) -> set[str]:
    common = argparse.ArgumentParser(add_help=False)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    importlib.import_module(module).register(sub, common)
    out = set()
    for name, p in sub.choices.items():
        if name == "report":
            out |= {f"report {r}" for r in p._report_sub.choices}
        else:
            out.add(name)
    return out


@pytest.mark.parametrize("module", list(cli.COMMANDS))
def test_the_table_says_what_each_module_adds(module):
    assert _added_by(module) == set(cli.COMMANDS[module])


@pytest.mark.parametrize("argv, modules", [
    (["report", "answer-times", "--since", "2026-01-01"], ["callcenter.queuecalls.cli"]),
    (["--config", "x.toml", "report", "--config", "y.toml", "answer-times"], ["callcenter.queuecalls.cli"]),
    (["-c", "x.toml", "report", "complaints"], ["callcenter.complaints.cli"]),
    (["complaints", "list"], ["callcenter.complaints.cli"]),
    (["db", "upgrade"], ["callcenter.commands"]),
    (["report"], list(cli.COMMANDS)),
    (["report", "no-such-report"], list(cli.COMMANDS)),
    (["no-such-command"], list(cli.COMMANDS)),
    (["--help"], list(cli.COMMANDS)),
    ([], list(cli.COMMANDS)),
])
def test_modules_for_a_command(argv, modules):
    assert cli.modules_for(argv) == modules


def test_a_report_does_not_import_the_other_commands():
    code = ("import sys\nfrom callcenter.cli import build_parser\n"
            "build_parser(['report', 'answer-times']).parse_args(['report', 'answer-times'])\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "callcenter.queuecalls.cli" in loaded
    for other in ("callcenter.complaints.cli", "callcenter.web.cli", "ivr_flows.cli", "dialer.cli",
                  "callcenter.simulator.cli", "holidays", "phonenumbers", "twisted"):
        assert other not in loaded


def test_every_command_is_still_listed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for names in cli.COMMANDS.values():
        for name in names:
            assert name.split()[0] in out


def test_the_program_freezes_its_imports_and_a_caller_keeps_its_heap(capsys):
    import gc

    before = gc.get_freeze_count()
    with pytest.raises(SystemExit):
        cli.main(["report", "answer-times", "--help"])
    assert gc.get_freeze_count() == before and gc.isenabled()
    code = ("import gc, sys\nfrom callcenter import cli\n"
            "sys.argv = ['callcenter', 'report', 'answer-times', '--help']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(gc.get_freeze_count(), gc.isenabled(), 'numpy' in sys.modules)")
    frozen, enabled, numpy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split()[-3:]
    assert int(frozen) > 10_000 and enabled == "True"
    assert numpy == "True"  # the report's own heavy imports are among the frozen
