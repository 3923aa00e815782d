"""The "web" service component: twisted.web on ``[web] host/port``.

Serves :class:`~callcenter.web.server.WebApp`, built by the composition root
(:mod:`callcenter.app`) with its collaborators.
"""
from __future__ import annotations

import asyncio
import logging

from twisted.internet import defer
from twisted.web.server import Site

from callcenter.logs import mask_text

from .server import WebApp

log = logging.getLogger(__name__)


class _Site(Site):
    displayTracebacks = False

    def log(self, request) -> None:  # access log without query strings (phone numbers)
        if log.isEnabledFor(logging.DEBUG):
            path = request.path.decode("utf-8", "replace")
            log.debug("%s %s %s", request.method.decode(), mask_text(path), request.code)


class WebComponent:
    name = "web"

    def __init__(self, app: WebApp, *, host: str = "127.0.0.1", port: int = 8080):
        self.app = app
        self.host = host
        self.port = port
        self.listening = None

    async def start(self) -> None:
        self.listening = self.app.reactor.listenTCP(self.port, _Site(self.app.resource), interface=self.host)
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
