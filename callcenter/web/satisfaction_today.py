"""Today's post-call satisfaction per queue, for the wallboard's queue table.

Ratings arrive after their queue call has ended (the caller rates once the agent hung up),
so they are not in the tracker's facts the other running totals follow (:mod:`.today`).
They come from the ratings service instead (``CallRatings.watch``: a ``Rated`` fact once a
rating is committed).  Like :class:`.today.TodayFigures`, the day's rated calls are read
once (and again when the hospital's local day changes); facts arriving meanwhile are applied
after the rows; a call is counted once (keyed like ``queue_calls``).  So a wallboard
snapshot runs no SQL for them between loads.
"""
from __future__ import annotations

import asyncio

from typing import Any, Callable

from callcenter.queuecalls import satisfaction

Key = tuple[str, str, int]


class SatisfactionToday:
    def __init__(self, app: Any, ratings: Any, on_change: Callable[[], Any]):
        self.app, self.ratings, self.on_change = app, ratings, on_change
        self.start = self.end = 0.0
        self.calls: dict[Key, tuple[str, str, str]] = {}   # key -> (queue, outcome, level)
        self._pending: list | None = []                     # facts waiting for a load (None: loaded)
        self._loading = asyncio.Lock()
        ratings.watch(self._rated)

    def close(self) -> None:
        self.ratings.unwatch(self._rated)

    def _rated(self, fact: Any) -> None:
        if fact.direction != "inbound":
            return
        if self._pending is not None:
            self._pending.append(fact)
        else:
            self._apply(fact)
        self.on_change()

    def _apply(self, fact: Any) -> None:
        if fact.entered_at is not None and self.start <= fact.entered_at < self.end:
            self.calls[(fact.uniqueid, fact.queue, int(fact.leg or 1))] = (fact.queue, fact.outcome, fact.level)

    async def figures(self, now: float, start, end) -> dict[str, dict]:
        """queue -> figures ("" = all queues) for the day ``[start, end)`` (aware UTC) that holds ``now``."""
        async with self._loading:  # two snapshots at once (a push and an API call) load once
            if self._pending is not None or not (self.start <= now < self.end):
                if self._pending is None:
                    self._pending = []
                rows = await self.app.db.run(satisfaction.day_calls, start, end)
                self.start, self.end = start.timestamp(), end.timestamp()
                self.calls = {(u, q, int(leg or 1)): (q, outcome, level) for u, q, leg, outcome, level in rows}
                for fact in self._pending:
                    self._apply(fact)
                self._pending = None
        counts: dict[str, dict[str, int]] = {}
        for queue, outcome, level in self.calls.values():
            add = satisfaction.counts_of(outcome, level)
            for q in (queue, ""):
                c = counts.setdefault(q, dict.fromkeys(satisfaction.COUNTS, 0))
                for k, v in add.items():
                    c[k] += v
        return {q: satisfaction.figures(c) for q, c in counts.items()}


def columns(figures: dict[str, dict], queue: str) -> dict[str, Any]:
    """What a wallboard queue row (or the totals, queue "") shows of them."""
    f = figures.get(queue) or {}
    return {"satisfaction_rate": f.get("satisfaction_rate"), "rated": f.get("rated", 0)}
