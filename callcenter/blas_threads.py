"""One OpenBLAS thread per process, set before numpy and scipy load their OpenBLAS.

The service's numpy and scipy work is many small calls: the rollups' sums, and the staffing
plan's Holt-Winters fits (scipy's L-BFGS-B, 24 fits of a few parameters each).  OpenBLAS
starts a thread per core and hands each of those tiny calls to all of them; on a busy
2-core machine the threads wait for each other, and the plan's forecast took 6-12 s of
wall time for 3 s of CPU (one thread: 1.2-1.5 s for 0.5 s), holding a core the event
loop needs.  OpenBLAS reads the setting once, when its library loads, so this runs when
the ``callcenter`` package is imported; a value the operator set is kept.
"""
from __future__ import annotations

import os

VARIABLE = "OPENBLAS_NUM_THREADS"


def limit() -> None:
    os.environ.setdefault(VARIABLE, "1")
