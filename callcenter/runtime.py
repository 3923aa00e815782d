"""One event loop: asyncio with Twisted's asyncio reactor installed on it.

panoramisk (AMI, FastAGI) is asyncio; twisted.web is Twisted.  Installing the
asyncio reactor on the same loop lets both run in one thread (docs/architecture.md, principle 3).
"""
from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import Any, Awaitable, Callable


def install_reactor(loop: asyncio.AbstractEventLoop | None = None) -> Any:
    """Install (once) Twisted's AsyncioSelectorReactor on ``loop``; return the reactor."""
    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        return reactor
    from twisted.internet import asyncioreactor

    if loop is None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


def freeze_startup_heap() -> None:
    """Move what start-up built (modules, numpy/statsmodels, SQLAlchemy's and Jinja's caches:
    about 220,000 objects) out of the garbage collector's reach (``gc.freeze``).  A full
    collection walks every tracked object while it holds the interpreter lock: during a
    /reports page over a year of calls those collections kept the event loop waiting
    140-920 ms (about 35 ms after the freeze, the machine's own lag).  What is built later is
    collected as before; cycles among the frozen objects are never collected, and start-up
    makes few."""
    gc.collect()
    gc.freeze()


def run(main: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Run ``main(stop_event)`` on the shared loop until it returns.

    SIGINT/SIGTERM set ``stop_event``: ``main`` then stops taking new work,
    finishes writes and closes connections before returning.
    """
    from .fdlimit import raise_soft_limit

    raise_soft_limit()  # before any socket: the web's and FastAGI's caps are sized on it
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    reactor = install_reactor(loop)
    reactor.startRunning(installSignalHandlers=False)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    try:
        return int(loop.run_until_complete(main(stop)) or 0)
    finally:
        # Cancel what is left (e.g. a FastAGI session whose caller is mid-menu) and let
        # it unwind *before* the reactor's shutdown, which stops the loop.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        try:
            reactor._justStopped = True
            reactor.fireSystemEvent("shutdown")
        except Exception:  # pragma: no cover
            pass
        loop.close()
