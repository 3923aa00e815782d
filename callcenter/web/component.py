"""The "web" service component: twisted.web on ``[web] host/port``.

Wires the live feeds to the other components (``queuecalls`` for the
wallboard, ``ami`` for screen pops and queue actions) and mounts
``recordings.web.RecordingsResource`` at ``/recordings`` when installed.
"""
from __future__ import annotations

import logging

from callcenter.logs import mask_text

from .complaint_alerts import ComplaintAlertsFeed
from .guard import GuardedSite, HttpLimits
from .live import ScreenPop, WallboardFeed
from .server import WebApp, authorize

log = logging.getLogger(__name__)


def _access_log(request) -> None:  # access log without query strings (phone numbers)
    if log.isEnabledFor(logging.DEBUG):
        path = request.path.decode("utf-8", "replace")
        log.debug("%s %s %s", request.method.decode(), mask_text(path), request.code)


class WebComponent:
    name = "web"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8080, clock=None, reactor=None,
                 limits: HttpLimits | None = None, timers=None):
        self.host = host
        self.port = port
        self.clock = clock
        self.reactor = reactor
        self.limits = limits or HttpLimits()
        self.timers = timers      # IReactorTime for the connection timeouts (default: the reactor)
        self.site: GuardedSite | None = None
        self.app: WebApp | None = None
        self.listening = None

    async def start(self, service) -> None:
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        app = WebApp(service, clock=self.clock, reactor=self.reactor)
        app.extensions["wallboard"] = WallboardFeed(app, service.get("queuecalls"),
                                                   gateway=service.get("ami"))
        app.extensions["screenpop"] = ScreenPop(app, service.get("ami"))
        app.extensions["complaints"] = ComplaintAlertsFeed(app, service.get("complaints"))
        app.recordings = _recordings(service)
        self.app = app
        self.site = GuardedSite(app.resource, limits=self.limits, body_limit=app.body_limit,
                                reactor=self.timers or self.reactor, access_log=_access_log,
                                trusted_proxies=app.proxies)
        self.listening = self.reactor.listenTCP(self.port, self.site, interface=self.host, backlog=1024)
        self.port = self.listening.getHost().port
        log.info("web listening on http://%s:%d/", self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self.app is not None:
            gw = self.app.service.get("ami")
            if gw is not None and hasattr(gw, "unsubscribe"):
                try:
                    gw.unsubscribe(self.app.extensions["screenpop"].on_ami)
                except (ValueError, KeyError):
                    pass
            self.app.extensions["complaints"].close()
            await self.app.close()
        if self.listening is not None:
            from twisted.internet import defer

            d = defer.maybeDeferred(self.listening.stopListening)
            await d.asFuture(__import__("asyncio").get_running_loop())
            self.listening = None


def _recordings(service):
    try:
        from recordings.web import RecordingsResource
    except ImportError:
        return None
    try:
        return RecordingsResource(service, authorize)
    except Exception:  # noqa: BLE001 - the rest of the web works without recordings
        log.exception("recordings web resource could not be created")
        return None


def from_service(service) -> WebComponent | None:
    cfg = service.config.web
    if not getattr(cfg, "enabled", True):
        return None
    return WebComponent(host=cfg.host, port=cfg.port, limits=limits_from_config(service.config))


def limits_from_config(config, open_files: int | None = None) -> HttpLimits:
    """``[web]`` limits, the connection cap fitted beside ``[agi] max_sessions``."""
    from callcenter.fdlimit import web_connection_cap

    cfg = config.web
    cap = web_connection_cap(cfg.max_connections, config.agi.max_sessions, open_files)
    return HttpLimits(idle_timeout=cfg.idle_timeout, header_timeout=cfg.header_timeout,
                      body_timeout=cfg.body_timeout, max_connections=cap,
                      max_per_client=min(cfg.max_connections_per_client, cap))
