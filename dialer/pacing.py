"""Originate pacing on the injected clock, and who may take a call.

:class:`Pacer` hands out send slots on an absolute schedule (slot k = t0 + k/rate),
so rounding and scheduling latency never accumulate into drift: a stall (GC, a slow
query, a busy box) of up to ``catch_up`` seconds is made up by sending the overdue
slots at once; after a longer idle gap it restarts from now instead of bursting.
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol


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


async def sleep(clock: Any, delay: float) -> None:
    """``asyncio.sleep`` on the injected clock (cancellable, leaves no DelayedCall behind)."""
    if delay <= 0.0005:  # below timer resolution; the absolute schedule keeps the average rate
        return
    fut = asyncio.get_running_loop().create_future()
    call = clock.callLater(delay, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        if call.active():
            call.cancel()


class AgentAvailability(Protocol):
    """Who can take a dialled patient now (the queuecalls component provides the data)."""

    def agents_free(self, queue: str) -> int: ...


class StaticAgents:
    """Test double / fixed staffing: ``StaticAgents({"consultation": 2})``."""

    def __init__(self, free: dict[str, int] | None = None):
        self.free = dict(free or {})

    def agents_free(self, queue: str) -> int:
        return self.free.get(queue, 0)


_IDLE = {"1", "not_inuse", "not_in_use", "idle", "available", "notinuse"}


class QueueCallsAgents:
    """Free agents from the ``queuecalls`` component's live view (0 when it is missing,
    so progressive mode never dials without a known free agent)."""

    def __init__(self, service: Any):
        self.service = service

    def agents_free(self, queue: str) -> int:
        qc = self.service.get("queuecalls")
        if qc is None:
            return 0
        try:
            members = (qc.live().get(queue) or {}).get("members", [])
        except Exception:  # noqa: BLE001 - a broken view must not stop the dialer
            return 0
        return sum(1 for m in members
                   if not m.get("paused") and str(m.get("state", "")).strip().lower() in _IDLE)
