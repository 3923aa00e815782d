"""What tests share: the product's own services as the composition root builds them,
and small doubles for the edges a test must drive itself.

Import from here (and its modules), not from another test folder:
``web`` (the web app on a free port, an HTTP client, an SSE reader), ``ivr`` (a FastAGI
server and scripted calls), ``dialer`` (dialer fixtures and the AMI double's outcomes),
``harness`` (stepping a ``task.Clock`` against the simulator: ``Stepper``, ``until``),
``flaky_db`` (a database that fails on cue).  The one AMI test double is
:mod:`callcenter.ami.fake`.
"""
from __future__ import annotations

from typing import Any, Callable

from callcenter.clock import WallClock
from callcenter.complaints.deadlines import Policy
from callcenter.complaints.service import Complaints
from callcenter.config import Config, load_config
from callcenter.domain import Domain, build_domain


def domain(config: Config | None = None, *, clock: Any = None) -> Domain:
    """The store-side services (complaints, dialer API, recordings catalogue), wired as
    ``serve`` wires them; ``config`` defaults to the built-in defaults plus environment."""
    return build_domain(config or load_config(None), clock=clock or WallClock())


class FunctionFollowups:
    """A ``Followups`` port answering with ``fn(session, **kw)`` (the dialer's side, driven
    by a test: refusals, do-not-call answers, what was asked)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def schedule_followup(self, session, **kw: Any) -> Any:
        return self.fn(session, **kw)


def complaints(policy: Policy | None = None, *, followups: Any = None, config: Config | None = None) -> Complaints:
    """A complaints service with ``policy`` (default: the hospital's defaults) and the real
    dialer API and catalogue, unless ``followups`` replaces the dialer."""
    d = domain(config)
    if policy is None and followups is None:
        return d.complaints
    c = Complaints(policy or Policy(), followups=followups or d.dialer, recordings=d.catalog)
    if followups is None:
        d.dialer.connect(c)
    return c


class StaticQueueLoad:
    """A ``QueueLoad`` port with fixed figures per queue (unknown queues: ``None``)."""

    def __init__(self, loads: dict | None = None):
        self.loads = dict(loads or {})

    def queue_load(self, queue: str):
        from callcenter.ports import QueueLoadInfo

        v = self.loads.get(queue)
        if v is None or isinstance(v, QueueLoadInfo):
            return v
        return QueueLoadInfo(longest_wait=float(v.get("longest_wait", 0)),
                             agents_available=int(v.get("agents_available", 0)))


def ivr_ports(queue_load: Any = None, *, config: Config | None = None, clock: Any = None):
    """The IVR's ports as the product wires them, with the live queues replaced by
    ``queue_load`` (default: no queue known) when the test has no tracker."""
    from ivr_flows.server import IvrPorts

    d = domain(config, clock=clock)
    return IvrPorts(queue_load=queue_load if queue_load is not None else StaticQueueLoad(),
                    voice_messages=d.catalog, tickets=d.complaints, callbacks=d.dialer, surveys=d.dialer,
                    ratings=d.ratings, appointments=d.dialer)


def agi_server(*, clock: Any, db: Any = None, queue_load: Any = None, config: Config | None = None,
               recordings_dir: str | None = None, **kw: Any):
    """A FastAGI server on a free loopback port, wired like the product's."""
    from ivr_flows.server import AgiServer

    cfg = config or load_config(None)
    d = domain(cfg, clock=clock)
    return AgiServer("127.0.0.1", 0, clock=clock, db=db,
                     ports=ivr_ports(queue_load, config=cfg, clock=clock),
                     recordings_dir=recordings_dir or str(d.recording_settings.spool_dir), **kw)
