r"""The GEMM paths of :mod:`meanfield.kernels.network`: the sums over data by tiles.

Notation of :mod:`meanfield.kernels.network`: :math:`Z = X A^T + b`, S = s(Z),
:math:`H_{ji} = g_j s'(z_{ij})`, outputs :math:`f_j = (\alpha / m) \sum_i c_i S_{ji}`,
and the g-weighted sums ``acc`` :math:`= [X^T H;\ 1^T H;\ S^T g]` ((d + 2, m),
transposed).  No (n, m) array is ever formed.  Two tilings
(:func:`tile_shape` chooses):

* **one pass** (m up to ``MAX_TILE_ELEMS / MIN_TILE_ROWS``): tiles of t data rows
  and all m particles.  Per tile: :math:`Z_t = X_t A^T` (GEMM), one ``prange`` pass
  over its rows (activation, derivative, output, loss, g, H), then
  :math:`S_t^T g_t` (GEMV) and :math:`X_t^T H_t` (GEMM, accumulated in place).
  Two GEMMs of the step's shape in all.
* **two passes** (larger m): tiles of t data rows by mb particles, so that both
  GEMMs keep a useful shape and the accumulator block of mb particles stays in
  cache.  Pass one sums the outputs f over the particle blocks; with f, the
  losses and g known, pass two recomputes each tile's Z and accumulates its
  block of ``acc`` over the data tiles.  Three GEMMs of the step's
  shape, memory O(t mb + n) beyond the inputs and the accumulators.

Each output entry is summed by one thread in a fixed order (row passes
parallelise over rows; BLAS splits only the output entries among its
threads), so results do not depend on the number of threads.
"""

from numba import prange

from .blas import gemm, gemv_t
from .elementwise import act_rows, dot_rows, loss_deriv, loss_value
from .jit import jit, jit_parallel

TILE_ELEMS = 1 << 18
"""Entries of one tile buffer of the one-pass path while that gives ``MIN_TILE_ROWS``
rows (2 MiB; there are two, three for the tangent model)."""

MIN_TILE_ROWS = 64
"""Fewest data rows of a one-pass tile: thinner GEMMs are slow."""

GOOD_TILE_ROWS = 128
"""Data rows of a one-pass tile at large m where ``MAX_TILE_ELEMS`` allows: the backward
GEMM reads and writes the whole accumulator once per tile (at n = 4096, d = 100 a step
at m = 4096 or 16384 is 7-11% faster than with 64 rows)."""

MAX_TILE_ELEMS = 1 << 22
"""Most entries of one tile buffer (32 MiB), whatever m."""

BLOCK_PARTICLES = 4096
"""Particles per block on the two-pass path."""

DIRECT_MAX_WORK = 1 << 16
"""Systems with n * m * d below this use the plain-loop path."""

B_ROW, C_ROW, DB_ROW, CM_ROW = range(4)
"""Rows of the per-particle vectors ``F`` (4, m): biases b, output weights c, bias
displacement db (tangent model) and the multiplier cm of the velocity."""


@jit
def tile_shape(n, m, d):
    """(data rows, particles) of a tile: (0, m) for the plain-loop path, (t, m) for
    the one-pass path, (t, mb) with mb < m for the two-pass path."""
    if n * m * d < DIRECT_MAX_WORK:
        return 0, m
    m = max(m, 1)
    if MIN_TILE_ROWS * m <= MAX_TILE_ELEMS:
        rows = max(TILE_ELEMS // m, min(GOOD_TILE_ROWS, MAX_TILE_ELEMS // m))
        return max(1, min(n, rows)), m
    return max(1, min(n, MAX_TILE_ELEMS // BLOCK_PARTICLES)), BLOCK_PARTICLES


@jit
def row_features(act, tangent, F, S, H, DZ, r):
    """Row r of a tile: S[r] <- s(S[r] + b), H[r] <- s'(S[r] + b); returns the output sum.

    The output sum is sum_i c_i s(z_i) (plus sum_i cm_i s'(z_i) (DZ[r, i] + db_i)
    for the tangent model, with DZ[r, i] <- s'(z_i) (DZ[r, i] + db_i)); b, c, db, cm
    are the rows of ``F``.  (Rows are indexed in place and only plain arrays are
    passed: a view or a structure of arrays costs a reference count per call.)
    """
    m = S.shape[1]
    for i in range(m):
        S[r, i] += F[B_ROW, i]
    act_rows(act, S, r, H, r, 1)
    acc = dot_rows(F, C_ROW, S, r)
    if tangent:
        for i in range(m):
            DZ[r, i] = H[r, i] * (DZ[r, i] + F[DB_ROW, i])
        acc += dot_rows(F, CM_ROW, DZ, r)
    return acc


@jit
def _gemms(Q, model, Xt, ws, i0, S, DZ):
    """Z_t = X_t A^T of the particles i0, ..., into S (and X_t dA^T into DZ, tangent model)."""
    d = Xt.shape[1]
    w = S.shape[1]
    gemm(False, True, 1.0, Xt, Q[i0:i0 + w, :d], 0.0, S)
    if model.tangent:
        gemm(False, True, 1.0, Xt, ws.dA[i0:i0 + w], 0.0, DZ)


@jit
def _accumulate(Xt, g, ws, i0, S, H, beta, bias):
    """The tile's part of acc = [X^T H; 1^T H; S^T g] for the particles i0, ..."""
    d = Xt.shape[1]
    w = S.shape[1]
    t = Xt.shape[0]
    gemv_t(1.0, S, g, beta, ws.acc[d + 1, i0:i0 + w])
    gemm(True, False, 1.0, Xt, H, beta, ws.acc[:d, i0:i0 + w])
    if bias:
        gemv_t(1.0, H, ws.ones[:t], beta, ws.acc[d, i0:i0 + w])


# --------------------------------------------------------------------- one pass
@jit_parallel
def _tile_pass(model, grad, ws, y, j0, t):
    """The elementwise work of one tile of t rows starting at data row j0, in parallel over rows.

    Outputs to ``ws.f``; with ``grad`` also the losses to ``ws.fl``, g to ``ws.g``,
    and row r of ``H`` is scaled by g_r.  (The arrays are taken out of ``ws``
    before the parallel loop, one statement each: Numba loses writes through a tuple
    field there, and through names bound by one tuple assignment when the loop body
    has no inner loop.)
    """
    S = ws.S
    H = ws.H
    DZ = ws.DZ
    F = ws.F
    f = ws.f
    fl = ws.fl
    g = ws.g
    act, loss, tangent = model.act, model.loss, model.tangent
    scale = model.alpha / S.shape[1]
    gscale = 1.0 / (model.alpha * y.shape[0])
    for r in prange(t):
        fr = scale * row_features(act, tangent, F, S, H, DZ, r)
        f[r] = fr
        if grad:
            yj = y[j0 + r]
            fl[r] = loss_value(loss, fr, yj)
            gr = loss_deriv(loss, fr, yj) * gscale
            g[r] = gr
            for i in range(H.shape[1]):
                H[r, i] *= gr


@jit_parallel
def one_pass(P, model, X, y, ws, grad, out):
    """One-pass path: outputs into ``out`` (forward), or sum_j loss_j and the
    g-weighted sums (``grad``)."""
    n, d = X.shape
    t = ws.S.shape[0]
    Q = model.P0 if model.tangent else P
    bias = P.shape[1] == d + 2
    total = 0.0
    for j0 in range(0, n, t):
        tt = min(t, n - j0)
        Xt = X[j0:j0 + tt]
        _gemms(Q, model, Xt, ws, 0, ws.S[:tt], ws.DZ[:tt])
        _tile_pass(model, grad, ws, y, j0, tt)
        if grad:
            for r in range(tt):
                total += ws.fl[r]
            _accumulate(Xt, ws.g[:tt], ws, 0, ws.S[:tt], ws.H[:tt], 0.0 if j0 == 0 else 1.0,
                        bias)
        else:
            out[j0:j0 + tt] = ws.f[:tt]
    return total


# -------------------------------------------------------------------- two passes
@jit_parallel
def _block_pass(model, scale, F, S, H, DZ, f, g):
    """Rows of one (t, mb) tile in parallel: pass one adds ``scale`` sum_i c_i s(z_ri)
    (over the block) to ``f[r]``; pass two (``g`` not empty) scales row r of H by g_r."""
    act, tangent = model.act, model.tangent
    for r in prange(S.shape[0]):
        fr = row_features(act, tangent, F, S, H, DZ, r)
        if g.shape[0] == 0:
            f[r] += scale * fr
        else:
            for i in range(H.shape[1]):
                H[r, i] *= g[r]


@jit_parallel
def _sweep(P, model, X, ws, second, bias):
    """One pass over every (data tile, particle block): the outputs into ``ws.f`` (first
    pass), or the g-weighted sums from ``ws.g`` (second pass)."""
    n, d = X.shape
    m = P.shape[0]
    t, mb = ws.S.shape
    Q = model.P0 if model.tangent else P
    scale = model.alpha / m
    f, g = ws.f[:n], ws.g[:n]
    if not second:
        f[:] = 0.0
    for i0 in range(0, m, mb):
        w = min(mb, m - i0)
        F = ws.F[:, i0:i0 + w]
        for j0 in range(0, n, t):
            tt = min(t, n - j0)
            Xt = X[j0:j0 + tt]
            S, H, DZ = ws.S[:tt, :w], ws.H[:tt, :w], ws.DZ[:tt, :w]
            _gemms(Q, model, Xt, ws, i0, S, DZ)
            if second:
                _block_pass(model, scale, F, S, H, DZ, f[j0:j0 + tt], g[j0:j0 + tt])
                _accumulate(Xt, g[j0:j0 + tt], ws, i0, S, H, 0.0 if j0 == 0 else 1.0, bias)
            else:
                _block_pass(model, scale, F, S, H, DZ, f[j0:j0 + tt], g[:0])


@jit_parallel
def two_passes(P, model, X, y, ws, grad, out):
    """Two-pass path, same contract as :func:`one_pass`."""
    n, d = X.shape
    _sweep(P, model, X, ws, False, False)
    f = ws.f
    if not grad:
        out[:n] = f[:n]
        return 0.0
    gscale = 1.0 / (model.alpha * n)
    total = 0.0
    for j in range(n):
        total += loss_value(model.loss, f[j], y[j])
        ws.g[j] = loss_deriv(model.loss, f[j], y[j]) * gscale
    _sweep(P, model, X, ws, True, P.shape[1] == d + 2)
    return total
