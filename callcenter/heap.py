"""The cyclic garbage collector and the one event loop: start-up's objects frozen.

A full collection walks every object the collector tracks.  After start-up that is
over 100,000 of them (modules, classes, SQLAlchemy's mappers, flows, holidays), about
0.1 s of one core on the project's machine, and the loop (every FastAGI session, AMI,
the web) stands still meanwhile; callers' sessions keep enough objects alive to bring
one on every few thousand round trips.  What exists when start-up ends lives as long as
the process, so :func:`freeze_long_lived` moves it out of the collector's view
(``gc.freeze``): a full collection then walks only what was made since.  Reference
counting still frees frozen objects; only a cycle among them would stay, and
:func:`thaw` (at stop) gives them back to the collector.
"""
from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect what start-up left as garbage, then freeze the rest; how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Hand the frozen objects back to the collector (the service stopping)."""
    gc.unfreeze()
