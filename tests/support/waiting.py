"""Waiting, bounded in real time, for the simulated world to get somewhere (no fixed sleeps)."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable


async def until(pred: Callable[[], Any], what: str = "the condition", limit: float = 60.0) -> None:
    """Poll ``pred()`` (plain or async) until it is true; fail naming ``what`` after ``limit``
    real seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        ok = pred()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return
        assert loop.time() < end, f"timed out waiting for: {what}"
        await asyncio.sleep(0.01)
