"""The one place where meanfield configures Numba.

Every kernel is compiled lazily (no eager signatures), in float64, with
``cache=True`` so that a second process loads machine code from the cache
(``NUMBA_CACHE_DIR`` chooses where) instead of compiling; a change to any kernel
module recompiles them all (:mod:`meanfield.kernels.cache`).

* :data:`jit` compiles scalar helpers and loops that call no parallel kernel.
* :data:`jit_vector` compiles the elementwise functions meant to vectorise: with
  NumPy's error model a float division by zero gives inf or nan instead of raising
  ZeroDivisionError, so the division carries no branch to an exception path, which
  would keep LLVM from vectorising the loop around it.
* :data:`jit_inline` compiles the scalar functions that those loops call
  (:mod:`meanfield.kernels.vecmath`): inlined into the caller by Numba itself,
  since LLVM would leave a call that is too large for its inliner, and a call
  in the loop body keeps the loop scalar.
* :data:`jit_sum` compiles dot products: with reassociation allowed (and no other
  fast-math license) LLVM keeps several vector partial sums instead of one chain of
  dependent additions, four times faster; the order is fixed by the machine code,
  the same on every call and on every thread.
* :func:`threads_for` runs small ``prange`` loops on one thread (and
  :mod:`meanfield._threading` keeps idle OpenMP and BLAS threads from
  spinning on each other's cores).
* :data:`jit_parallel` compiles every kernel that has a ``prange`` loop *or
  calls one that has*: a cached non-parallel function calling a parallel one
  can crash when it is loaded back from the cache (numba issue #8578), so
  the whole calling chain is compiled as parallel.  Numba's warning that a
  caller of this kind has nothing of its own to parallelise is expected;
  :func:`quiet_numba` silences it where kernels are compiled (inside
  :func:`threads_for` always), without a process-wide filter.
"""

import warnings
from contextlib import contextmanager

from numba import get_num_threads, njit, set_num_threads
from numba.core.errors import NumbaPerformanceWarning

from . import cache  # noqa: F401  (every kernel stamped by all kernel modules)

jit = njit(cache=True)
jit_parallel = njit(cache=True, parallel=True)
jit_vector = njit(cache=True, error_model="numpy")
jit_inline = njit(cache=True, error_model="numpy", inline="always")
jit_sum = njit(cache=True, fastmath={"reassoc"})

PARALLEL_MIN_WORK = 1 << 17
"""Elementwise operations per parallel loop below which a kernel runs on one
thread: a parallel launch would cost more than it saves, and it stalls on a
barrier whenever another process holds one of the cores (a local sweep, a
shared node)."""


def parallel_work(algorithm, m, rows, m0):
    """Elementwise operations in one parallel loop of a training step.

    ``rows`` of data (the training set for GD, the batch for SGD) times m;
    for the population flow (``algorithm == "population"``) the
    (m + m0)^2 kernel entries, each worth some 16 operations (an arccos or an exp).
    """
    return 16 * (m + m0) ** 2 if algorithm == "population" else rows * m


@contextmanager
def threads_for(work):
    """Run the kernels called inside on one thread if ``work < PARALLEL_MIN_WORK``.

    ``work`` is the number of elementwise operations of one parallel loop of
    those kernels.  (Numba cannot cache a kernel that changes its own thread
    count, so the caller decides.)  Each output of a ``prange`` loop is
    computed by one thread whatever the count, so results do not change.
    """
    saved = get_num_threads()
    if work < PARALLEL_MIN_WORK:
        set_num_threads(1)
    try:
        with quiet_numba():
            yield
    finally:
        set_num_threads(saved)


@contextmanager
def quiet_numba():
    """Silence, inside the block only, Numba's note that a ``jit_parallel`` caller has
    nothing of its own to parallelise (issued when such a kernel is compiled)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NumbaPerformanceWarning,
                                message=r"(?s).*parallel=True.*no transformation")
        yield
