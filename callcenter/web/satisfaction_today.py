"""Today's post-call satisfaction per queue, for the wallboard's queue table.

Ratings arrive after their queue call has ended (the caller rates once the agent hung
up), so they are not in the tracker's facts the running totals follow (:mod:`.today`):
the figures are one GROUP BY over today's rated calls (:func:`callcenter.queuecalls.
satisfaction.day_by_queue`), read at most once per ``ttl`` clock seconds when the
wallboard is rebuilt, and again when the hospital's local day changes.
"""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from callcenter.queuecalls import satisfaction


class SatisfactionToday:
    def __init__(self, app: Any, *, ttl: float = 15.0):
        self.app = app
        self.ttl = ttl
        self.tz = ZoneInfo(app.config.hospital.timezone)
        self._figures: dict[str, dict] | None = None
        self._at = 0.0

    async def figures(self, now: float, start, end) -> dict[str, dict]:
        """queue -> figures ("" = all queues) for the day ``[start, end)`` (aware UTC)."""
        fresh = self._figures is not None and self._at <= now < self._at + self.ttl \
            and start.timestamp() <= self._at < end.timestamp()
        if not fresh:
            self._figures = await self.app.db.run(satisfaction.day_by_queue, start, end)
            self._at = now
        return self._figures


def columns(figures: dict[str, dict], queue: str) -> dict[str, Any]:
    """What a wallboard queue row (or the totals, queue "") shows of them."""
    f = figures.get(queue) or {}
    return {"satisfaction_rate": f.get("satisfaction_rate"), "rated": f.get("rated", 0)}
