"""The "web" service component: twisted.web on ``[web] host/port``.

Serves :class:`~callcenter.web.server.WebApp`, built by the composition root
(:mod:`callcenter.app`) with its collaborators, behind :class:`~.guard.GuardedSite`
(timeouts, connection caps, body limits; ``[web]`` config, docs/reliability.md).
"""
from __future__ import annotations

import asyncio
import logging

from twisted.internet import defer

from callcenter.logs import mask_text

from .guard import GuardedSite, HttpLimits
from .server import WebApp

log = logging.getLogger(__name__)


def _access_log(request) -> None:  # access log without query strings (phone numbers)
    if log.isEnabledFor(logging.DEBUG):
        path = request.path.decode("utf-8", "replace")
        log.debug("%s %s %s", request.method.decode(), mask_text(path), request.code)


class WebComponent:
    name = "web"

    def __init__(self, app: WebApp, *, host: str = "127.0.0.1", port: int = 8080,
                 limits: HttpLimits | None = None, timers=None):
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or HttpLimits()
        self.timers = timers      # IReactorTime for the connection timeouts (default: the reactor)
        self.site: GuardedSite | None = None
        self.listening = None

    async def start(self) -> None:
        self.app.broker.caps.fit(self.limits.max_connections)  # streams leave connections to pages
        self.app.open()
        self.site = GuardedSite(self.app.resource, limits=self.limits, body_limit=self.app.body_limit,
                                reactor=self.timers or self.app.reactor, access_log=_access_log,
                                trusted_proxies=self.app.proxies)
        self.listening = self.app.reactor.listenTCP(self.port, self.site, interface=self.host, backlog=1024)
        self.port = self.listening.getHost().port
        log.info("web listening on http://%s:%d/", self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.app.close()
        if self.listening is not None:
            d = defer.maybeDeferred(self.listening.stopListening)
            await d.asFuture(asyncio.get_running_loop())
            self.listening = None


def limits_from_config(config, open_files: int | None = None) -> HttpLimits:
    """``[web]`` limits, the connection cap fitted beside ``[agi] max_sessions``."""
    from callcenter.fdlimit import web_connection_cap

    cfg = config.web
    cap = web_connection_cap(cfg.max_connections, config.agi.max_sessions, open_files)
    return HttpLimits(idle_timeout=cfg.idle_timeout, header_timeout=cfg.header_timeout,
                      body_timeout=cfg.body_timeout, max_connections=cap,
                      max_per_client=min(cfg.max_connections_per_client, cap))
