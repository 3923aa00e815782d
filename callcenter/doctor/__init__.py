"""``callcenter doctor``: check a live installation and say what to fix (docs/operations.md)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from callcenter.config import Config
from dialer.campaigns import DEFAULT_SURVEY_FLOW, SURVEY_FLOWS
from recordings.settings import VoiceMessageDirError

from . import checks
from .ami_probe import probe
from .checks import FAIL, Result

__all__ = ["run", "Result", "FAIL"]


def _database(config: Config) -> Result:
    from sqlalchemy.exc import SQLAlchemyError

    from callcenter.store import Database, migrate

    from sqlalchemy.engine import make_url

    u = make_url(config.database_url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") \
            and not Path(u.database).exists():  # opening it would create an empty file
        return checks.check_database(f"sqlite file {u.database}", None, migrate.heads(), "it does not exist")
    try:
        db = Database(config.database_url)
    except SQLAlchemyError as exc:
        return checks.check_database("[database] url", None, migrate.heads(), _why(exc))
    with db:
        try:
            current, heads = migrate.current_and_heads(db.engine)
        except SQLAlchemyError as exc:
            return checks.check_database(db.safe_url, None, migrate.heads(), _why(exc))
        return checks.check_database(db.safe_url, current, heads, None)


def _why(exc: Exception) -> str:
    from sqlalchemy.exc import DBAPIError

    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{orig.__class__.__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"


def _flows(config: Config) -> list:
    from ivr_flows.flow import FLOWS_DIR, load_flow

    root = Path(config.agi.flows_dir) if config.agi.flows_dir else FLOWS_DIR
    return [load_flow(p) for p in sorted([*root.glob("*.yaml"), *root.glob("*.yml")])]


def expected_queues(config: Config, flows: list) -> list[str]:
    """The queues the flows send callers to, and the dialer's default queue."""
    names: list[str] = []
    for flow in flows:
        for node in flow.nodes.values():
            if node.get("type") == "queue" and node.get("queue") and node["queue"] not in names:
                names.append(node["queue"])
    if config.dialer.enabled and config.dialer.default_queue not in names:
        names.append(config.dialer.default_queue)
    return names


async def run(config: Config, *, now: Callable[[], float] = time.time) -> list[Result]:
    """Every check, in the order an operator fixes things (database, AMI, Asterisk's set-up, files)."""
    from recordings.settings import from_config as recording_settings

    results = [_database(config)]
    flows = _flows(config)
    rec = recording_settings(config)
    servers = config.ami_servers
    first_facts = None
    for a in servers:  # each Asterisk server ([[ami]] entry): its link, its set-up, its queue_log
        facts = await probe(a.host, a.port, a.username, a.secret, now=now)
        first_facts = first_facts or facts
        per = [
            checks.check_ami_login(facts, a.username),
            checks.check_ami_actions(facts, checks.needed_actions(dialer=config.dialer.enabled,
                                                                  recordings=rec.enabled), a.username),
            checks.check_ami_events(facts, a.username),
            checks.check_queues(facts, expected_queues(config, flows), config.hospital.answer_target_seconds),
            checks.check_dialplan(facts, agi_host=config.agi.host, agi_port=config.agi.port,
                                  flows=[f.name for f in flows],
                                  contexts=[config.dialer.survey_context, config.dialer.agent_context]
                                  if config.dialer.enabled else [],
                                  dialer_flows=[DEFAULT_SURVEY_FLOW, *SURVEY_FLOWS.values()]
                                  if config.dialer.enabled else []),
            checks.check_clock(facts),
        ]
        if len(servers) > 1:
            per = [dataclasses.replace(r, check=f"{r.check} [{a.name}]") for r in per]
        results += per
    facts = first_facts
    results += [
        checks.check_timezone(config.hospital.timezone, (config.dialer.window_start, config.dialer.window_end),
                              now()),
        checks.check_prompts(config.agi.sounds_dir, flows, config.agi.prompt_base),
    ]
    run_user = facts.run_user or None
    results.append(checks.check_directory("recordings directory", rec.directory, "[recordings] directory",
                                          run_user))
    try:
        vm = Path(rec.voice_message_dir(config.agi.recordings_dir))
    except VoiceMessageDirError as exc:
        results.append(Result("voice-message directory", FAIL, str(exc)))
        vm = None
    if vm is None or vm == rec.directory:
        pass  # refused above, or the recordings directory itself: checked above
    elif rec.spool_dir != rec.directory and not config.agi.recordings_dir:
        results.append(Result("voice-message directory", checks.SKIP,
                              f"not checked: {vm} is Asterisk's path on another host ([recordings] spool_dir)"))
    else:
        results.append(checks.check_directory("voice-message directory", vm, "[agi] recordings_dir", run_user))
    for a in servers:
        r = checks.check_queue_log(a.queue_log, now())
        results.append(dataclasses.replace(r, check=f"{r.check} [{a.name}]") if len(servers) > 1 else r)
    return results
