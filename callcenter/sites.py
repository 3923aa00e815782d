"""Several Asterisk servers: each one's consumers (a :class:`Site`), and the views over all.

A site is what consumes one Asterisk server: its AMI gateway, its queue-call tracker,
its recordings capture and its dialer (originating only the campaigns assigned to that
server).  It runs in one service instance at a time (:mod:`callcenter.leases`); while
it runs it is *attached* to the :class:`Sites` hub, which is what the web, the IVR and
the metrics are given: the live queues, the queue load and an AMI client over every
site attached here, each entry naming its ``server``.

Subscribers of the hub (the wallboard, the screen pop, the metrics) are handed on to
every site's gateway and tracker when it attaches, and taken off when it detaches, so
a site taken over from another instance feeds them like one started here.  ``remote``
holds the live queues of servers consumed by *other* instances (``callcenter/live_relay.py``,
PostgreSQL NOTIFY), shown beside the local ones and announced as :class:`RemoteLive`.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .ami.gateway import AmiError, AmiNotSent
from .ami.interest import Interest
from .ports import QueueLoadInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteLive:
    """Another instance published ``server``'s live queues (``finished``: and stored calls)."""

    server: str
    finished: bool = False


@dataclass
class Site:
    """One Asterisk server's consumers, in start order (``None``: that feature is off)."""

    server: str
    ami: Any
    queuecalls: Any
    recordings: Any = None
    dialer: Any = None
    agent_sessions: Any = None   # agents' login/pause history from the tracker's member facts

    @property
    def name(self) -> str:
        return f"Asterisk server {self.server}"

    @property
    def parts(self) -> list:
        return [p for p in (self.ami, self.queuecalls, self.agent_sessions, self.recordings, self.dialer)
                if p is not None]

    async def start(self) -> None:
        started = []
        try:
            for part in self.parts:
                await part.start()
                started.append(part)
                log.info("started %s of Asterisk server %s", part.name, self.server)
        except BaseException:
            for part in reversed(started):
                await _stop(part, self.server)
            raise

    async def stop(self) -> None:
        """Reverse order: the dialer and capture first, the tracker flushes, the link last."""
        for part in reversed(self.parts):
            await _stop(part, self.server)


async def _stop(part: Any, server: str) -> None:
    try:
        await part.stop()
        log.info("stopped %s of Asterisk server %s", part.name, server)
    except Exception:  # noqa: BLE001 - the others still stop
        log.exception("error while stopping %s of Asterisk server %s", part.name, server)


class Sites:
    """The sites attached in this instance: ``ami`` (an ``AmiClient`` over them) and
    ``queues`` (``LiveQueues`` and ``QueueLoad`` over their trackers) are what the web,
    the IVR and the metrics are given."""

    def __init__(self, servers: list[str]):
        self.servers = list(servers)       # every configured server, in the config's order
        self.active: dict[str, Site] = {}  # the ones consumed here now
        # server -> (live queues, published at, finished count) as its consumer elsewhere published them
        self.remote: dict[str, tuple[dict, float, bool]] = {}
        self.ami = SitesAmi(self)
        self.queues = SitesQueues(self)                      # with the other instances' (the web's)
        self.local_queues = SitesQueues(self, remote=False)  # this instance's only (its metrics)

    def attach(self, site: Site) -> None:
        """``site`` runs here now: hand it every subscriber of the hub."""
        self.active[site.server] = site
        self.remote.pop(site.server, None)
        gw, tracker = site.ami, site.queuecalls
        for cb, events, variables, when in self.ami._events:
            gw.subscribe(cb, events, variables, when)
        for cb in self.ami._counters:
            gw.count_events(cb)
        for cb in self.ami._disconnects:
            gw.on_disconnect(cb)
        for fn in self.ami._connects:
            gw.on_connect(fn)
            if gw.connected:
                asyncio.ensure_future(fn())
        for kinds, cb in self.queues._subs + self.local_queues._subs:
            tracker.subscribe(cb, *kinds)

    def detach(self, server: str) -> Site | None:
        """The site stopped here (or is consumed elsewhere now): its subscribers go with it."""
        site = self.active.pop(server, None)
        if site is not None:
            for cb, *_ in self.ami._events:
                site.ami.unsubscribe(cb)
        return site

    def set_remote(self, server: str, live: dict, at: float, *, finished: bool = False) -> None:
        """``server``'s live queues as the instance consuming it published them at ``at``."""
        self.remote[server] = (live, at, finished)
        self.queues._announce(RemoteLive(server, finished))

    def drop_remote(self, server: str) -> None:
        if self.remote.pop(server, None) is not None:
            self.queues._announce(RemoteLive(server))

    def link_states(self) -> dict[str, bool | None]:
        """Per configured server: logged in (True/False) here, or None: consumed elsewhere."""
        return {name: (self.active[name].ami.connected if name in self.active else None)
                for name in self.servers}


class SitesAmi:
    """``AmiClient`` over the sites attached here (subscribers reach every one of them)."""

    def __init__(self, sites: Sites):
        self.sites = sites
        self._events: list[tuple[Callable, Any, Any, Any]] = []  # (callback, events, variables, when)
        self._counters: list[Callable[[int], Any]] = []
        self._connects: list[Callable[[], Awaitable[Any]]] = []
        self._disconnects: list[Callable[[float], Any]] = []

    @property
    def connected(self) -> bool:
        """Every server consumed here is logged in (none here: nothing of ours is down)."""
        return all(s.ami.connected for s in self.sites.active.values())

    def subscribe(self, callback: Callable[[Any, float], Any], events: Any = None, variables: Any = (),
                  when: Any = ()) -> Any:
        """Every site's events ``callback`` declares (:meth:`AmiGateway.subscribe`)."""
        when = tuple(when)
        Interest.declared(callback, events, variables, when)  # refused here too, with no site attached
        self._events.append((callback, events, variables, when))
        for site in self.sites.active.values():
            site.ami.subscribe(callback, events, variables, when)
        return callback

    def unsubscribe(self, callback: Callable[[Any, float], Any]) -> None:
        self._events = [e for e in self._events if e[0] != callback]
        for site in self.sites.active.values():
            site.ami.unsubscribe(callback)

    def count_events(self, callback: Callable[[int], Any]) -> None:
        self._counters.append(callback)
        for site in self.sites.active.values():
            site.ami.count_events(callback)

    def on_connect(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        self._connects.append(coro_fn)
        for site in self.sites.active.values():
            site.ami.on_connect(coro_fn)

    def on_disconnect(self, callback: Callable[[float], Any]) -> None:
        self._disconnects.append(callback)
        for site in self.sites.active.values():
            site.ami.on_disconnect(callback)

    async def action(self, headers: Any, *, timeout: float | None = None) -> Any:
        """An agent's queue action goes to the server that has the interface as a member
        (or the only server); with several and none known, it is refused saying so."""
        site = self._site_for(_header(headers, "Interface"))
        return await site.ami.action(headers, timeout=timeout)

    def _site_for(self, interface: str | None) -> Site:
        servers, active = self.sites.servers, self.sites.active
        if len(servers) == 1:
            if servers[0] not in active:
                raise AmiNotSent(f"Asterisk server {servers[0]} is consumed by another service instance")
            return active[servers[0]]
        owners = [s for s in active.values() if interface and any(
            interface in ms for ms in s.queuecalls.state.members.values())]
        if len(owners) == 1:
            return owners[0]
        if not owners:
            raise AmiError(f"interface {interface!r} is a queue member on no Asterisk server consumed by "
                           f"this instance (here: {', '.join(active) or 'none'}); with several servers "
                           "it is added to a queue on its own server first")
        raise AmiError(f"interface {interface!r} is a member on several Asterisk servers: "
                       f"{', '.join(s.server for s in owners)}")


class SitesQueues:
    """``LiveQueues`` and ``QueueLoad`` over the trackers of the sites attached here."""

    def __init__(self, sites: Sites, *, remote: bool = True):
        self.sites = sites
        self.remote = remote
        self._subs: list[tuple[tuple, Callable]] = []

    @property
    def buffer(self) -> list:
        return [r for s in self.sites.active.values() for r in s.queuecalls.buffer]

    def wrapup_of(self, queue: str) -> float:
        """The queue's wrap-up seconds: the longest the servers consumed here read."""
        return max((s.queuecalls.wrapup_of(queue) for s in self.sites.active.values()), default=0.0)

    @property
    def queue_config_error(self) -> str | None:
        """Why some server's queues' wrap-up time could not be read (each error named by server)."""
        errors = [f"{name}: {s.queuecalls.queue_config_error}" if len(self.sites.active) > 1
                  else s.queuecalls.queue_config_error
                  for name, s in self.sites.active.items() if s.queuecalls.queue_config_error]
        return "; ".join(errors) or None

    def subscribe(self, cb: Callable[[Any], Any], *kinds: type) -> None:
        """The trackers' facts of ``kinds`` (all: also :class:`RemoteLive`)."""
        self._subs.append((kinds, cb))
        for site in self.sites.active.values():
            site.queuecalls.subscribe(cb, *kinds)

    def _announce(self, fact: RemoteLive) -> None:
        for kinds, cb in self._subs:
            if not kinds or RemoteLive in kinds:
                try:
                    cb(fact)
                except Exception:  # noqa: BLE001
                    log.exception("live queues subscriber %r failed", cb)

    def live(self, server: str | None = None) -> dict[str, dict[str, Any]]:
        """Queue -> waiting/talking/members over the servers consumed here (or just
        ``server``), each entry carrying its ``server``."""
        out: dict[str, dict[str, Any]] = {}
        here = {name: site.queuecalls.live() for name, site in self.sites.active.items()}
        there = {name: live for name, (live, _, _) in self.sites.remote.items()
                 if name not in here and self.remote}
        for name, live in {**here, **there}.items():
            if server is not None and name != server:
                continue
            for queue, q in live.items():
                into = out.setdefault(queue, {"waiting": [], "talking": [], "members": []})
                for key in ("waiting", "talking", "members"):
                    into[key] += [{**e, "server": name} for e in q[key]]
        for q in out.values():
            q["waiting"].sort(key=lambda w: w["wait"] or 0.0, reverse=True)
        return out

    def queue_load(self, queue: str) -> QueueLoadInfo | None:
        """The IVR's view over the servers here: the longest wait of any, agents free in all
        (a FastAGI request does not say which server it came from)."""
        loads = [x for s in self.sites.active.values() if (x := s.queuecalls.queue_load(queue)) is not None]
        if not loads:
            return None
        return QueueLoadInfo(longest_wait=max(x.longest_wait for x in loads),
                             agents_available=sum(x.agents_available for x in loads))


def _header(headers: Any, name: str) -> str | None:
    items = headers.items() if isinstance(headers, dict) else headers
    for k, v in items:
        if k.lower() == name.lower():
            return v
    return None
