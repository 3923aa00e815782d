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

A command line run is the same in small: :func:`imports_frozen` keeps the collector off
while the command's modules import (a third of a short report's collections walked the
import's own, live objects) and freezes what they made.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


def freeze_long_lived() -> int:
    """Collect what start-up left as garbage, then freeze the rest; how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Hand the frozen objects back to the collector (the service stopping)."""
    gc.unfreeze()


@contextlib.contextmanager
def imports_frozen() -> Iterator[None]:
    """No collection inside the block (imports: what they make lives as long as the process),
    then freeze it all, uncollected; the collector is back on after, as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()
