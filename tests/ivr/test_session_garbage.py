"""A finished IVR session is freed by reference counting, not left to the cycle collector.

Every object a session leaves in a reference cycle waits for a garbage collection, and
with hundreds of callers those collections run on the event loop while replies wait
(the warm FastAGI bench in README "## Performance").  A hook's bound method kept in the
session's write queue once held the whole session (engine, record, lane, task) in one.
"""
from __future__ import annotations

import asyncio
import gc

import pytest

from ivr_flows.engine import Engine

from tests.support.ivr import agi_server, call


def _alive() -> list[str]:
    from ivr_flows.server import _SessionRecord

    return [type(o).__name__ for o in gc.get_objects() if isinstance(o, (Engine, _SessionRecord))]


@pytest.mark.postgres
async def test_a_finished_session_leaves_no_reference_cycle(db):
    async with agi_server(db) as server:
        gc.collect()
        gc.disable()  # from here on only reference counting frees anything
        try:
            status, _ = await call(server, keys=[(1, "2"), (1, "1")])  # consultation: row, IVR_SESSION, queued
            # the database thread may still hold the last write's closure for a moment
            for _ in range(200):
                left = _alive()
                if not left:
                    break
                await asyncio.sleep(0.01)
        finally:
            gc.enable()
    assert status == "SUCCESS" and server.sessions_total == 1
    assert left == []
