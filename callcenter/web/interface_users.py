"""Which web users sit at a queue-member interface, remembered for a few seconds.

The screen pop asks it for every ``AgentCalled``, ``AgentConnect``, ``AgentRingNoAnswer`` and
``AgentComplete`` (3-4 times per answered call): each a database round trip on a worker
thread that shares the GIL with the event loop, for an answer that changes only when an
administrator edits an account.  So each interface's answer is kept :data:`SECONDS` on the
injected clock (at most :data:`MAX` interfaces, the oldest dropped first), and an account
change made through this web forgets them all at once (:meth:`InterfaceUsers.forget`); one
made with ``callcenter users`` (another process) is seen within :data:`SECONDS`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from . import data

SECONDS = 10.0
MAX = 1024


class InterfaceUsers:
    """``await users.of(interface)``: the active usernames with that interface (cached)."""

    def __init__(self, db: Any, clock: Any, *, seconds: float = SECONDS, size: int = MAX):
        self.db, self.clock, self.seconds, self.size = db, clock, seconds, size
        self._known: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._generation = 0  # bumped by forget(): a read under way then is not remembered
        self.lookups = 0  # database look-ups made (tests)

    def cached(self, interface: str) -> tuple[str, ...] | None:
        """The remembered answer, or None when there is none younger than :attr:`seconds`."""
        hit = self._known.get(interface)
        if hit is None or self.clock.seconds() - hit[0] >= self.seconds:
            return None
        return hit[1]

    async def of(self, interface: str) -> tuple[str, ...]:
        users = self.cached(interface)
        if users is None:
            asked, generation = self.clock.seconds(), self._generation
            self.lookups += 1
            users = tuple(await self.db.run(data.users_with_interface, interface))
            if generation == self._generation:  # no account changed while it was read
                self._remember(interface, users, asked)
        return users

    def _remember(self, interface: str, users: tuple[str, ...], at: float) -> None:
        self._known[interface] = (at, users)
        self._known.move_to_end(interface)
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    def forget(self) -> None:
        """An account changed here (interface, role, disabled): ask the database again."""
        self._known.clear()
        self._generation += 1
