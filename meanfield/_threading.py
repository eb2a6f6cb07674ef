"""Thread settings of the numerical runtimes, set before they load.

A training step alternates BLAS GEMMs (OpenBLAS threads) with Numba
``prange`` loops (OpenMP threads), many times per step.  By default both
runtimes keep their idle threads spinning for a while after each call, on
the very cores the other one needs next; on a 2-core machine this made a
(n, m, d) = (4096, 4096, 100) step about five times slower.  So idle BLAS
threads sleep after 2^4 cycles and OpenMP threads wait passively.

Each setting is a default: a value already in the environment wins.  The
BLAS one takes effect only where meanfield is imported before NumPy (as by
the ``meanfield`` command and the sweep workers); in a notebook that imported
NumPy first, export ``OPENBLAS_THREAD_TIMEOUT=4`` before starting Python.
"""

import os

DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}

for _key, _value in DEFAULTS.items():
    os.environ.setdefault(_key, _value)
