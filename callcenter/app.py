"""The composition root: every feature built with its collaborators, in one place.

``build(config)`` is what ``callcenter serve`` and ``callcenter demo`` run, and what
end-to-end tests start: the AMI gateway, the queue-call tracker, recordings capture,
complaint escalation, the dialer, the FastAGI server and the web, each given what
it uses (typed ports, :mod:`callcenter.ports`) rather than finding it by name.
A collaborator that is missing or lacks a method stops start-up with its name.

The AMI gateway, tracker, recordings capture and dialer are built per Asterisk server
(a :class:`~callcenter.sites.Site` per ``[[ami]]`` entry); on PostgreSQL each site runs
only while this instance holds that server's lease (:mod:`callcenter.leases`), so several
instances can share one database.

Start order matters: the sites first (a site's gateway before its subscribers), the web
last (it starts after, and stops before, the feeds it shows).  ``stop`` runs in reverse.
"""
from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from dialer import compliance
from dialer import store as dialer_store
from dialer.engine import Dialer, DialSettings
from dialer.pacing import QueueCallsAgents
from ivr_flows.server import AgiServer, IvrPorts
from recordings.capture import RecordingsComponent
from recordings.journal import Journal
from recordings.settings import VoiceMessageDirError
from recordings.web import RecordingsHttp

from . import heap, runtime
from .ami.gateway import AmiGateway
from .complaints.escalation import ComplaintsComponent
from .config import Config, ConfigError
from .domain import Domain, build_domain
from .leases import ServerLease, libpq_dsn
from .live_relay import LiveRelay
from .metrics import ServiceMetrics
from .ports import AmiClient, AssemblyError, require
from .queuecalls.agent_recorder import AgentSessionRecorder
from .queuecalls.tracker import QueueCallsTracker
from .sites import Site, Sites
from .store import Database
from .web.component import WebComponent, limits_from_config
from .web.server import WebApp
from .web.views_ops import routes as ops_routes

log = logging.getLogger("callcenter")


@dataclass
class Assembly:
    """The running product: its parts by role, and the order they start in.

    ``sites`` holds what consumes each Asterisk server (:mod:`callcenter.sites`); on
    PostgreSQL each one runs while this instance holds its lease (``leases``)."""

    config: Config
    clock: Any
    db: Database
    domain: Domain
    sites: Sites
    agi: AgiServer
    escalation: ComplaintsComponent | None
    web: WebComponent | None
    metrics: ServiceMetrics | None = None
    leases: list[ServerLease] = field(default_factory=list)
    parts: list = field(default_factory=list)
    _started: list = field(default_factory=list)

    def site(self, server: str | None = None) -> Site:
        """The site of ``server`` (default: the first configured) consumed here now."""
        name = server or self.sites.servers[0]
        if name not in self.sites.active:
            raise AssemblyError(f"Asterisk server {name} is not consumed by this instance "
                                f"(here: {', '.join(self.sites.active) or 'none'})")
        return self.sites.active[name]

    # the first server's parts: what a one-server installation (and its tests) reads
    @property
    def ami(self) -> Any:
        return self.site().ami

    @property
    def queuecalls(self) -> QueueCallsTracker:
        return self.site().queuecalls

    @property
    def recordings(self) -> RecordingsComponent | None:
        return self.site().recordings

    @property
    def dialer(self) -> Dialer | None:
        return self.site().dialer

    async def start(self) -> None:
        self.db.check_migrated()
        _check_rollups(self.config, self.db)
        if self.config.dialer.enabled:
            for campaign, server in self.db.call(dialer_store.unknown_servers, self.sites.servers):
                log.error("campaign %s is assigned to Asterisk server %r, which is not configured "
                          "([[ami]] names: %s): it is not dialled", campaign, server, ", ".join(self.sites.servers))
        if not self.leases:
            log.warning("database %s: one service instance only (standby instances need PostgreSQL); "
                        "consuming Asterisk server(s) %s", self.db.engine.dialect.name, ", ".join(self.sites.servers))
        heap.freeze_long_lived()  # before any part listens: the long collection is over by then
        for part in self.parts:
            await part.start()
            self._started.append(part)
            log.info("started %s", part.name)
        # what start-up built (flows, holidays, numpy/statsmodels, caches) out of the collector's
        # walks: full collections of it kept the loop waiting 70-920 ms (FastAGI, /reports)
        heap.freeze_long_lived()

    async def stop(self) -> None:
        """Stop in reverse order: inputs first, the store's writers last."""
        heap.thaw()
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
    ``ami`` replaces the gateway (a test's own AMI client; one server only), nothing else
    is replaceable.  On PostgreSQL every Asterisk server is consumed under a lease."""
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    clock = clock or reactor
    db = db or Database(config.database_url)
    domain = build_domain(config, clock=clock)
    servers = config.ami_servers
    if ami is not None:
        require(ami, AmiClient, "AMI client")
        if len(servers) > 1:
            raise AssemblyError("a test's own AMI client replaces the gateway of one Asterisk server; "
                                f"the config has {len(servers)}")
    h = config.hospital
    sites = Sites([s.name for s in servers])

    def site_of(srv: Any) -> Callable[[], Site]:
        def make() -> Site:
            gw = ami if ami is not None else AmiGateway.from_config(srv, clock=clock)
            tracker = QueueCallsTracker(
                db, clock, gateway=gw, server=srv.name, answer_target=h.answer_target_seconds,
                short_abandon=h.short_abandon_seconds, region=h.region, queue_log=srv.queue_log)
            agent_sessions = AgentSessionRecorder(db, clock, tracker=tracker, gateway=gw)
            recordings = None
            if domain.recording_settings.enabled:
                journal = None if len(servers) == 1 else Journal(
                    f"{domain.recording_settings.journal_path}.{srv.name}")
                recordings = RecordingsComponent(domain.recording_settings, db=db, clock=clock, gateway=gw,
                                                 journal=journal, server=srv.name)
            dialer = None
            if config.dialer.enabled:
                # one dialer per server: each reconciles its own attempts at start
                instance = config.dialer.instance if len(servers) == 1 else \
                    f"{config.dialer.instance or socket.gethostname()[:48]}/{srv.name}"
                dialer = Dialer(db=db, clock=clock, gateway=gw, agents=QueueCallsAgents(tracker),
                                rules=compliance.Rules.from_config(config), dial=DialSettings.from_config(config),
                                settings=domain.dialer_settings, region=h.region, server=srv.name,
                                instance=instance)
            return Site(srv.name, gw, tracker, recordings, dialer, agent_sessions)
        return make

    leases: list[ServerLease] = []
    consumers: list = []
    if db.engine.dialect.name == "postgresql":
        dsn = libpq_dsn(config.database_url)
        leases = [ServerLease(srv.name, dsn=dsn, make_site=site_of(srv), sites=sites, clock=clock,
                              poll=config.service.standby_poll_seconds) for srv in servers]
        consumers = list(leases)
        if config.web.enabled:  # every instance's wallboard shows every server's live queues
            consumers.append(LiveRelay(sites, db=db, clock=clock, dsn=dsn))
    else:  # one instance: every server's site runs for the process's life
        for srv in servers:
            site = site_of(srv)()
            sites.attach(site)
            consumers.append(site)
    c = config.values["complaints"]
    escalation = (ComplaintsComponent(db, clock, complaints=domain.complaints, interval=c["check_seconds"])
                  if c["enabled"] else None)
    try:
        voice_dir = domain.recording_settings.voice_message_dir(config.agi.recordings_dir)
    except VoiceMessageDirError as exc:
        raise ConfigError(f"{config.source or 'configuration'}: {exc}") from None
    agi = AgiServer(
        config.agi.host, config.agi.port, clock=clock, db=db, flows_dir=config.agi.flows_dir or None,
        timezone=h.timezone, country=h.country, region=h.region, prompt_base=config.agi.prompt_base,
        recordings_dir=voice_dir,
        max_sessions=config.agi.max_sessions, reply_timeout=config.agi.reply_timeout,
        sounds_dir=config.agi.sounds_dir or None,
        ports=IvrPorts(queue_load=sites.queues, voice_messages=domain.catalog, tickets=domain.complaints,
                       callbacks=domain.dialer, surveys=domain.dialer, ratings=domain.ratings,
                       appointments=domain.dialer))
    metrics = ServiceMetrics(ami=sites.ami, queuecalls=sites.local_queues, db=db, clock=clock,
                             timer=time.perf_counter, answer_target=h.answer_target_seconds,
                             servers=sites.link_states)
    web = None
    if config.web.enabled:
        app = WebApp(config, db, clock, ami=sites.ami, live=sites.queues, escalation=escalation, domain=domain,
                     recordings=RecordingsHttp(db, settings=domain.recording_settings, clock=clock),
                     reactor=reactor, ops=ops_routes(metrics))
        web = WebComponent(app, host=config.web.host, port=config.web.port, limits=limits_from_config(config))
    parts = [p for p in (*consumers, agi, escalation, web) if p is not None]
    return Assembly(config=config, clock=clock, db=db, domain=domain, sites=sites, agi=agi,
                    escalation=escalation, web=web, metrics=metrics, leases=leases, parts=parts)


def _check_rollups(config: Config, db: Database) -> None:
    """The queue-call rollups were counted with the configured report settings (else
    :class:`~callcenter.queuecalls.rollups.RollupsStale`, naming the rebuild command)."""
    from callcenter.queuecalls import rollups

    h = config.hospital
    db.call(rollups.check_at_start, h.answer_target_seconds, h.short_abandon_seconds)


def _check_schema(config: Config) -> None:
    with Database(config.database_url) as db:
        db.check_migrated()
        _check_rollups(config, db)


def serve(config: Config) -> int:
    """``callcenter serve``: the product against a real Asterisk until SIGINT/SIGTERM."""
    _check_schema(config)  # before the loop: a one-line error, no half-started service

    async def main(stop) -> int:
        assembly = build(config)
        try:
            await assembly.start()
            log.info("callcenter serving: AMI %s, FastAGI %s:%s, web http://%s:%s/",
                     ", ".join(f"{s.name}={s.host}:{s.port}" for s in config.ami_servers),
                     config.agi.host, config.agi.port, config.web.host, config.web.port)
            await stop.wait()
            log.info("stopping: no new work, flushing writes")
        finally:
            await assembly.stop()
            assembly.db.close()
        return 0

    return runtime.run(main)
