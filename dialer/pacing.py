"""Originate pacing on the injected clock, and who may take a call.

:class:`Pacer` hands out send slots on an absolute schedule (slot k = t0 + k/rate),
so rounding and scheduling latency never accumulate into drift: a stall (GC, a slow
query, a busy box) of up to ``catch_up`` seconds is made up by sending the overdue
slots at once; after a longer idle gap it restarts from now instead of bursting.
"""
from __future__ import annotations

from typing import Any

from callcenter.clock import sleep


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
    """Test double / fixed staffing: ``StaticAgents({"consultation": 2})``."""

    def __init__(self, free: dict[str, int] | None = None):
        self.free = dict(free or {})

    def agents_free(self, queue: str) -> int:
        return self.free.get(queue, 0)


_IDLE = {"1", "not_inuse", "not_in_use", "idle", "available", "notinuse"}


class QueueCallsAgents:
    """Free agents from the queue-calls tracker's live view."""

    def __init__(self, tracker: Any):
        self.tracker = tracker

    def agents_free(self, queue: str) -> int:
        try:
            members = (self.tracker.live().get(queue) or {}).get("members", [])
        except Exception:  # noqa: BLE001 - a broken view must not stop the dialer
            return 0
        return sum(1 for m in members
                   if not m.get("paused") and str(m.get("state", "")).strip().lower() in _IDLE)
