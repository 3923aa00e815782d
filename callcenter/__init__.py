"""Hospital hotline bridge for Asterisk (AMI + FastAGI)."""

from . import blas_threads

blas_threads.limit()  # before any module loads numpy (its OpenBLAS reads this once)

__version__ = "0.1.0"
