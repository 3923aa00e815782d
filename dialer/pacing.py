"""Originate pacing on the injected clock, and who may take a call.

:class:`Pacer` hands out send slots on an absolute schedule (slot k = t0 + k/rate),
so rounding and scheduling latency never accumulate into drift: a stall (GC, a slow
query, a busy box) of up to ``catch_up`` seconds is made up by sending the overdue
slots at once; after a longer idle gap it restarts from now instead of bursting.
"""
from __future__ import annotations

from typing import Any

from callcenter.clock import sleep
from callcenter.ports import FreeAgents
from callcenter.queuecalls.agentstate import can_take_call


class Pacer:
    def __init__(self, clock: Any, rate: float, catch_up: float = 1.0):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.clock = clock
        self.interval = 1.0 / rate
        self.catch_up = catch_up  # a stall shorter than this is made up, so the mean rate holds
        self._next: float | None = None

    def reserve(self) -> float:
        """Reserve the next slot; returns how long to wait for it (<= 0: go now)."""
        now = self.clock.seconds()
        if self._next is None or self._next < now - max(self.catch_up, self.interval):
            self._next = now  # idle (or hopelessly behind): start a fresh schedule
        at = self._next
        self._next = at + self.interval
        return at - now


async def wait_for_slot(clock: Any, delay: float) -> None:
    """Wait ``delay`` on the clock; below timer resolution not at all (the absolute
    schedule keeps the average rate)."""
    if delay > 0.0005:
        await sleep(clock, delay)


class StaticAgents:
    """Test double / fixed staffing: ``StaticAgents({"consultation": 2})`` (2 free members
    ``Static/consultation-1``, ``-2``); ``waiting`` inbound callers per queue."""

    def __init__(self, free: dict[str, int] | None = None, waiting: dict[str, int] | None = None):
        self.free = dict(free or {})
        self.waiting = dict(waiting or {})

    def free_agents(self, queue: str) -> FreeAgents:
        n = self.free.get(queue, 0)
        return FreeAgents(tuple(f"Static/{queue}-{i + 1}" for i in range(n)), self.waiting.get(queue, 0))


class QueueCallsAgents:
    """Free members and waiting inbound callers from the queue-calls tracker's live view
    (member states are :mod:`~callcenter.queuecalls.agentstate`'s, the one vocabulary; a
    dialer patient waiting is not an inbound caller: its agent is reserved for it)."""

    def __init__(self, tracker: Any):
        self.tracker = tracker

    def free_agents(self, queue: str) -> FreeAgents:
        q = self.tracker.live().get(queue) or {}
        members = q.get("members", [])
        free = tuple(m["interface"] for m in members if can_take_call(m["state"]))
        waiting = sum(1 for c in q.get("waiting", []) if c["direction"] == "inbound")
        in_call = frozenset(m["interface"] for m in members
                            if m["state"] in ("ringing", "on_call") or m["in_wrapup"])
        return FreeAgents(free, waiting, in_call)
