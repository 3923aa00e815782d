"""How many live event streams (``/events/...``) may be open: per user, and in all.

Each stream holds a connection and gets every push, so one user's forgotten tabs, or a
script reconnecting in a loop, must not take the connections pages and log-ins need.
A stream takes a :class:`Slot` before its handler runs (checked and counted in one step
on the loop, so concurrent opens cannot all pass); the slot is given back when the
stream ends, however it ends (:class:`callcenter.web.sse.Broker`).

The N+1th stream of a user is refused (429), not made room for by closing the oldest:
the oldest is typically the wall screen or the tab left open on purpose, and a browser
reconnects a closed ``EventSource`` by itself (``retry: 2000``), so closing the oldest
would make N+1 tabs evict each other every two seconds.  Refused, the new tab says why
and tries again on its own, and gets in as soon as another tab is closed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from callcenter.config import ConfigError

log = logging.getLogger(__name__)

ROOM = 16   # connections always left to pages, log-ins and the API beside the streams


class StreamRefused(Exception):
    """No slot: ``scope`` is ``user`` (this user's cap, 429) or ``total`` (the service's, 503)."""

    def __init__(self, scope: str, limit: int):
        super().__init__(f"{scope} stream cap {limit} reached")
        self.scope = scope
        self.limit = limit


@dataclass
class Slot:
    """One open (or opening) stream of ``owner``; :meth:`release` is idempotent."""
    caps: "StreamCaps"
    owner: str
    released: bool = False
    held_by_stream: bool = False     # the broker holds it: the stream's end releases it

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.caps._give_back(self.owner)


class StreamCaps:
    def __init__(self, per_user: int, total: int):
        if per_user < 1 or total < 1:
            raise ConfigError(f"[web] max_streams_per_user = {per_user} and max_streams = {total} "
                              f"must be at least 1")
        self.per_user = per_user
        self.total = total
        self.open = 0
        self.by_owner: dict[str, int] = {}
        self.refused = {"user": 0, "total": 0}

    @classmethod
    def from_config(cls, web) -> "StreamCaps":
        """``[web] max_streams_per_user`` and ``max_streams``, the latter leaving :data:`ROOM` of
        ``max_connections`` (at the connection cap every socket is busy: nobody could log in)."""
        per_user, total, conns = int(web.max_streams_per_user), int(web.max_streams), int(web.max_connections)
        if total > conns - ROOM:
            raise ConfigError(f"[web] max_streams = {total} must leave at least {ROOM} of [web] "
                              f"max_connections = {conns} for pages, log-ins and the API "
                              f"(at most {conns - ROOM})")
        return cls(per_user, total)

    def fit(self, connections: int) -> None:
        """Lower the total to the connection cap the web really got (``[web] max_connections``
        may be lowered at start to fit the open-files limit: :func:`callcenter.fdlimit.web_connection_cap`)."""
        room = max(1, connections - min(ROOM, connections // 2))
        if self.total > room:
            log.warning("[web] max_streams %d lowered to %d: the web holds %d connections", self.total, room,
                        connections)
            self.total = room
            self.per_user = min(self.per_user, room)

    def take(self, owner: str) -> Slot:
        """A slot for a new stream of ``owner``, or :class:`StreamRefused`."""
        if self.by_owner.get(owner, 0) >= self.per_user:
            self.refused["user"] += 1
            raise StreamRefused("user", self.per_user)
        if self.open >= self.total:
            self.refused["total"] += 1
            raise StreamRefused("total", self.total)
        self.open += 1
        self.by_owner[owner] = self.by_owner.get(owner, 0) + 1
        return Slot(self, owner)

    def _give_back(self, owner: str) -> None:
        self.open -= 1
        left = self.by_owner[owner] - 1
        if left:
            self.by_owner[owner] = left
        else:
            del self.by_owner[owner]
