"""Thread settings of the numerical runtimes, applied where a run starts.

A training step alternates BLAS GEMMs (OpenBLAS threads) with Numba
``prange`` loops (OpenMP threads), many times per step.  By default both
runtimes keep their idle threads spinning for a while after each call, on
the very cores the other one needs next; on a 2-core machine this made a
(n, m, d) = (4096, 4096, 100) step about five times slower.  So idle BLAS
threads sleep after 2^4 cycles and OpenMP threads wait passively.

:func:`apply` sets them; ``import meanfield`` does not (a library leaves the
environment alone): :func:`meanfield.simulate` and the ``meanfield`` command
call it when a run starts.  Each setting is a default: a value already in
the environment wins.  The OpenMP one takes effect if no compiled parallel
loop ran before; the BLAS one only if NumPy was not loaded before (as in the
``meanfield`` command, which applies it first): in a notebook, export
``OPENBLAS_THREAD_TIMEOUT=4`` before starting Python.
"""

import os

DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}


def apply():
    """Set every setting of :data:`DEFAULTS` not already in the environment."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
