"""The running service: configuration, store, clock, and its components.

A component is any object with ``name``, ``async start(service)`` and
``async stop()``.  Packages contribute them through ``COMPONENT_FACTORIES``
(``"module:function"``; the function takes the service and returns a component,
or ``None`` when it is disabled).  Components find each other by name through
``service.components`` after start-up, in list order.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from .config import Config
from .store import Database

log = logging.getLogger(__name__)

COMPONENT_FACTORIES: list[str] = [
    "callcenter.ami.gateway:from_service",
    "callcenter.queuecalls.tracker:from_service",
    "ivr_flows.server:from_service",
    "recordings.capture:from_service",
    "callcenter.complaints.escalation:from_service",
    "dialer.engine:from_service",
    "callcenter.web.component:from_service",  # last: starts after, stops before its sources
]


class Component(Protocol):
    name: str

    async def start(self, service: "Service") -> None: ...

    async def stop(self) -> None: ...


class Service:
    def __init__(self, config: Config, *, clock: Any = None, db: Database | None = None,
                 factories: list[str] | None = None):
        self.config = config
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.clock = clock
        self.db = db or Database(config.database_url)
        self.components: dict[str, Any] = {}
        self._factories = COMPONENT_FACTORIES if factories is None else factories
        self._started: list[Any] = []

    def add(self, component: Any) -> Any:
        self.components[component.name] = component
        return component

    def get(self, name: str) -> Any:
        return self.components.get(name)

    async def start(self) -> None:
        self.db.check_migrated()
        for spec in self._factories:
            mod, _, fn = spec.partition(":")
            comp = getattr(importlib.import_module(mod), fn)(self)
            if comp is not None:
                self.add(comp)
        for comp in list(self.components.values()):
            await comp.start(self)
            self._started.append(comp)
            log.info("started %s", comp.name)

    async def stop(self) -> None:
        """Stop in reverse order: inputs first, the store's writers last."""
        while self._started:
            comp = self._started.pop()
            try:
                await comp.stop()
                log.info("stopped %s", comp.name)
            except Exception:
                log.exception("error while stopping %s", comp.name)
