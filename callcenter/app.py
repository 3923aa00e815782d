"""The composition root: every feature built with its collaborators, in one place.

``build(config)`` is what ``callcenter serve`` and ``callcenter demo`` run, and what
end-to-end tests start: the AMI gateway, the queue-call tracker, recordings capture,
complaint escalation, the dialer, the FastAGI server and the web, each given what
it uses (typed ports, :mod:`callcenter.ports`) rather than finding it by name.
A collaborator that is missing or lacks a method stops start-up with its name.

Start order matters: the gateway first (others subscribe to it), the web last (it
starts after, and stops before, the feeds it shows).  ``stop`` runs in reverse.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dialer import compliance
from dialer.engine import Dialer, DialSettings
from dialer.pacing import QueueCallsAgents
from ivr_flows.server import AgiServer, IvrPorts
from recordings.capture import RecordingsComponent
from recordings.web import RecordingsHttp

from . import runtime
from .ami.gateway import AmiGateway
from .complaints.escalation import ComplaintsComponent
from .config import Config
from .domain import Domain, build_domain
from .metrics import ServiceMetrics
from .ports import AmiClient, require
from .queuecalls.tracker import QueueCallsTracker
from .store import Database
from .web.component import WebComponent, limits_from_config
from .web.server import WebApp
from .web.views_ops import routes as ops_routes

log = logging.getLogger("callcenter")


@dataclass
class Assembly:
    """The running product: its parts by role, and the order they start in."""

    config: Config
    clock: Any
    db: Database
    domain: Domain
    ami: AmiClient
    queuecalls: QueueCallsTracker
    agi: AgiServer
    recordings: RecordingsComponent | None
    escalation: ComplaintsComponent | None
    dialer: Dialer | None
    web: WebComponent | None
    metrics: ServiceMetrics | None = None
    parts: list = field(default_factory=list)
    _started: list = field(default_factory=list)

    async def start(self) -> None:
        self.db.check_migrated()
        for part in self.parts:
            await part.start()
            self._started.append(part)
            log.info("started %s", part.name)

    async def stop(self) -> None:
        """Stop in reverse order: inputs first, the store's writers last."""
        while self._started:
            part = self._started.pop()
            try:
                await part.stop()
                log.info("stopped %s", part.name)
            except Exception:
                log.exception("error while stopping %s", part.name)


def build(config: Config, *, clock: Any = None, db: Database | None = None, reactor: Any = None,
          ami: AmiClient | None = None) -> Assembly:
    """Build the product from ``config``.  ``clock``/``reactor`` default to Twisted's reactor;
    ``ami`` replaces the gateway (a test's own AMI client), nothing else is replaceable."""
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    clock = clock or reactor
    db = db or Database(config.database_url)
    domain = build_domain(config, clock=clock)
    ami = require(ami, AmiClient, "AMI client") if ami is not None else AmiGateway.from_config(config.ami, clock=clock)
    h = config.hospital
    queuecalls = QueueCallsTracker(
        db, clock, gateway=ami, answer_target=h.answer_target_seconds, short_abandon=h.short_abandon_seconds,
        region=h.region, queue_log=config.ami.queue_log, queue_wrapup=config.ami.wrapup_seconds)
    recordings = None
    if domain.recording_settings.enabled:
        recordings = RecordingsComponent(domain.recording_settings, db=db, clock=clock, gateway=ami)
    c = config.values["complaints"]
    escalation = (ComplaintsComponent(db, clock, complaints=domain.complaints, interval=c["check_seconds"])
                  if c["enabled"] else None)
    dialer = None
    if config.dialer.enabled:
        dialer = Dialer(db=db, clock=clock, gateway=ami, agents=QueueCallsAgents(queuecalls),
                        rules=compliance.Rules.from_config(config), dial=DialSettings.from_config(config),
                        settings=domain.dialer_settings, instance=config.dialer.instance, region=h.region)
    agi = AgiServer(
        config.agi.host, config.agi.port, clock=clock, db=db, flows_dir=config.agi.flows_dir or None,
        timezone=h.timezone, country=h.country, region=h.region, prompt_base=config.agi.prompt_base,
        recordings_dir=config.agi.recordings_dir or str(domain.recording_settings.spool_dir),
        max_sessions=config.agi.max_sessions, reply_timeout=config.agi.reply_timeout,
        sounds_dir=config.agi.sounds_dir or None,
        ports=IvrPorts(queue_load=queuecalls, voice_messages=domain.catalog, tickets=domain.complaints,
                       callbacks=domain.dialer, surveys=domain.dialer, appointments=domain.dialer))
    metrics = ServiceMetrics(ami=ami, queuecalls=queuecalls, db=db, clock=clock, timer=time.perf_counter,
                             answer_target=h.answer_target_seconds)
    web = None
    if config.web.enabled:
        app = WebApp(config, db, clock, ami=ami, live=queuecalls, escalation=escalation, domain=domain,
                     recordings=RecordingsHttp(db, settings=domain.recording_settings),
                     reactor=reactor, ops=ops_routes(metrics))
        web = WebComponent(app, host=config.web.host, port=config.web.port, limits=limits_from_config(config))
    parts = [p for p in (ami, queuecalls, agi, recordings, escalation, dialer, web) if p is not None]
    return Assembly(config=config, clock=clock, db=db, domain=domain, ami=ami, queuecalls=queuecalls,
                    agi=agi, recordings=recordings, escalation=escalation, dialer=dialer, web=web,
                    metrics=metrics, parts=parts)


def _check_schema(config: Config) -> None:
    with Database(config.database_url) as db:
        db.check_migrated()


def serve(config: Config) -> int:
    """``callcenter serve``: the product against a real Asterisk until SIGINT/SIGTERM."""
    _check_schema(config)  # before the loop: a one-line error, no half-started service

    async def main(stop) -> int:
        assembly = build(config)
        try:
            await assembly.start()
            log.info("callcenter serving: AMI %s:%s, FastAGI %s:%s, web http://%s:%s/",
                     config.ami.host, config.ami.port, config.agi.host, config.agi.port,
                     config.web.host, config.web.port)
            await stop.wait()
            log.info("stopping: no new work, flushing writes")
        finally:
            await assembly.stop()
            assembly.db.close()
        return 0

    return runtime.run(main)
