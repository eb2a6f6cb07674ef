"""The one place where meanfield configures Numba.

Every kernel is compiled lazily (no eager signatures), in float64, with
``cache=True`` so that a second process loads machine code from the cache
(``NUMBA_CACHE_DIR`` chooses where) instead of compiling.

* :data:`jit` compiles scalar helpers and loops that call no parallel kernel.
* :data:`jit_parallel` compiles every kernel that has a ``prange`` loop *or
  calls one that has*: a cached non-parallel function calling a parallel one
  can crash when it is loaded back from the cache (numba issue #8578), so
  the whole calling chain is compiled as parallel.  Numba's warning that a
  caller of this kind has nothing of its own to parallelise is silenced.
"""

import warnings

from numba import njit
from numba.core.errors import NumbaPerformanceWarning

jit = njit(cache=True)
jit_parallel = njit(cache=True, parallel=True)

warnings.filterwarnings("ignore", category=NumbaPerformanceWarning,
                        message=r"(?s).*parallel=True.*no transformation")
