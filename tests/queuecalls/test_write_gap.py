"""The writer lets calls that finish just after a write began join the next write, instead
of writing them the moment the last write ended: each write recounts the rollup slots it
touches, so a burst written a few rows at a time recounted a busy slot 8-9 times a second."""
from __future__ import annotations

import asyncio

from twisted.internet import task

from callcenter.queuecalls.tracker import QueueCallsTracker


class SlowDb:
    """Records each write's size; a write ends when the test says so."""

    def __init__(self):
        self.writes: list[int] = []
        self.release = asyncio.Event()

    async def run(self, fn, records, *args):
        self.writes.append(len(records))
        await self.release.wait()
        self.release.clear()
        return len(records), 0


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _burst(write_gap: float) -> list[int]:
    clock, db = task.Clock(), SlowDb()
    tracker = QueueCallsTracker(db, clock, write_gap=write_gap, flush_interval=1.0)
    await tracker.start()
    try:
        tracker.buffer.append("call-0")
        clock.advance(1.0)  # the writer's flush interval: the first write begins
        await _turns()
        assert db.writes == [1]
        tracker.buffer.append("call-1")  # finished while the first write is under way
        db.release.set()
        await _turns()
        for i in range(2, 5):  # more calls finish in the next quarter second
            clock.advance(0.05)
            tracker.buffer.append(f"call-{i}")
            await _turns()
        clock.advance(0.1)
        await _turns()
        db.release.set()
        await _turns()
        while len(db.writes) < 10 and tracker.buffer:
            clock.advance(0.25)
            await _turns()
            db.release.set()
            await _turns()
        return db.writes
    finally:
        db.release.set()
        await asyncio.wait_for(tracker.stop(), 5)


async def test_calls_finishing_just_after_a_write_began_share_the_next_one():
    assert await _burst(0.25) == [1, 4]


async def test_without_a_gap_each_is_written_as_soon_as_the_last_write_ended():
    assert (await _burst(0.0))[:2] == [1, 1]
