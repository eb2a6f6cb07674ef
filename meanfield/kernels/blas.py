"""BLAS products on C-contiguous arrays, with accumulation into the output, from Numba code.

``np.dot`` inside Numba allocates its result and always overwrites; the GEMM
path of :mod:`meanfield.kernels.network` needs ``C <- alpha op(A) op(B) + beta C``
into preallocated tile buffers and accumulators.  These wrappers call the
same BLAS that Numba's ``np.dot`` calls (SciPy's, through Numba's
``numba_xxgemm`` / ``numba_xxgemv`` helpers, resolved by symbol name, so the
callers stay cacheable).

Every matrix is float64 with contiguous rows (a row-major (r, c) array is
read by BLAS as the column-major (c, r) array whose leading dimension is the
row stride), vectors are contiguous.  BLAS computes every
output entry with one thread over the whole inner dimension, so the results
do not depend on the number of BLAS threads.
"""

import numpy as np
from numba import types

from .jit import jit

_ptr = types.CPointer(types.float64)
# the signatures of Numba's C helpers (numba/_helperlib.c, as numba.np.linalg declares them)
_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char,       # kind, transa, transb
    types.intp, types.intp, types.intp,       # m, n, k
    _ptr, _ptr, types.intp, _ptr, types.intp,  # alpha, a, lda, b, ldb
    _ptr, _ptr, types.intp))                  # beta, c, ldc
_xxgemv = types.ExternalFunction("numba_xxgemv", types.intc(
    types.char, types.char,                   # kind, trans
    types.intp, types.intp,                   # m, n
    _ptr, _ptr, types.intp,                   # alpha, a, lda
    _ptr, _ptr, _ptr))                        # x, beta, y

_D, _N, _T = ord("d"), ord("n"), ord("t")


@jit
def _ld(A):
    """Leading dimension (row stride in elements) of a 2-D array with unit column stride."""
    r, c = A.shape
    if c > 1 and A.strides[1] != 8:
        raise ValueError("BLAS operand: rows must be contiguous")
    ld = A.strides[0] // 8 if r > 1 else c
    return max(ld, c, 1)


@jit
def gemm(ta, tb, alpha, A, B, beta, C):
    """``C = alpha op(A) op(B) + beta C``; op transposes when ``ta`` / ``tb``.

    With ``beta == 0`` the old content of ``C`` is ignored (it may be garbage).
    """
    M, N = C.shape
    K = A.shape[0] if ta else A.shape[1]
    if (B.shape[1] if tb else B.shape[0]) != K or (A.shape[1] if ta else A.shape[0]) != M \
            or (B.shape[0] if tb else B.shape[1]) != N:
        raise ValueError("gemm: incompatible shapes")
    if M == 0 or N == 0:
        return
    if K == 0:  # BLAS would scale C by beta without reading A, B; do the same here
        for i in range(M):
            for j in range(N):
                C[i, j] = beta * C[i, j] if beta != 0.0 else 0.0
        return
    ab = np.empty(2)
    ab[0] = alpha
    ab[1] = beta
    # row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T
    if _xxgemm(_D, _T if tb else _N, _T if ta else _N, N, M, K,
               ab.ctypes, B.ctypes, _ld(B), A.ctypes, _ld(A),
               ab[1:].ctypes, C.ctypes, _ld(C)) != 0:
        raise RuntimeError("gemm: SciPy's BLAS could not be loaded")


@jit
def gemv_t(alpha, A, x, beta, y):
    """``y = alpha A^T x + beta y`` for a C-contiguous (r, c) ``A``, x (r,), y (c,)."""
    r, c = A.shape
    if c == 0:
        return
    if r == 0:
        for i in range(c):
            y[i] = beta * y[i] if beta != 0.0 else 0.0
        return
    ab = np.empty(2)
    ab[0] = alpha
    ab[1] = beta
    if x.shape[0] != r or y.shape[0] != c:
        raise ValueError("gemv: incompatible shapes")
    # the column-major (c, r) matrix A^T, not transposed (x and y must be contiguous)
    if _xxgemv(_D, _N, c, r, ab.ctypes, A.ctypes, _ld(A), x.ctypes, ab[1:].ctypes,
               y.ctypes) != 0:
        raise RuntimeError("gemv: SciPy's BLAS could not be loaded")
