"""numpy's and scipy's OpenBLAS run one thread in the service's process (callcenter/blas_threads.py)."""
from __future__ import annotations

import os
import subprocess
import sys

CODE = r"""
import ctypes
import callcenter.forecast  # numpy, scipy and statsmodels, as the web loads them
SYMBOL = {"libscipy_openblas64_": "scipy_openblas_get_num_threads64_",  # numpy's wheel
          "libscipy_openblas-": "scipy_openblas_get_num_threads"}        # scipy's
counts = {}
for line in open("/proc/self/maps"):
    path = line.split()[-1]
    if "openblas" in path and path not in counts:
        (symbol,) = [v for k, v in SYMBOL.items() if k in path.rsplit("/", 1)[-1]]  # an unknown one fails
        counts[path] = getattr(ctypes.CDLL(path), symbol)()
print(sorted(counts.values()), len(counts))
"""


def _run(env: dict) -> str:
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_openblas_runs_one_thread_unless_the_operator_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    counts, libs = _run(env).rsplit(" ", 1)
    assert int(libs) == 2 and counts == str([1] * int(libs))  # numpy's and scipy's libraries
    counts, libs = _run({**env, "OPENBLAS_NUM_THREADS": "2"}).rsplit(" ", 1)
    assert counts == str([2] * int(libs))
