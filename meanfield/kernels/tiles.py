r"""The GEMM paths of :mod:`meanfield.kernels.network`: the sums over data by tiles.

Notation of :mod:`meanfield.kernels.network`: :math:`Z = X A^T + b`, S = s(Z),
:math:`H_{ji} = g_j s'(z_{ij})`, outputs :math:`f_j = (\alpha / m) \sum_i c_i S_{ji}`,
and the g-weighted sums ``acc`` :math:`= [X^T H;\ 1^T H;\ S^T g]` ((d + 2, m),
transposed).  No (n, m) array is ever formed.  Two tilings
(:func:`tile_shape` chooses):

* **one pass** (m up to ``MAX_TILE_ELEMS / MIN_TILE_ROWS``): tiles of t data rows
  and all m particles, in one buffer.  Per tile: :math:`Z_t = X_t A^T` (GEMM)
  into the buffer, one parallel pass over its rows (:func:`_row_pass`), then
  :math:`X_t^T H_t` (GEMM, accumulated in place).  Each row is finished while
  it is in cache: activation and derivative, output, loss and g, its shares of
  :math:`1^T H` and :math:`S^T g`, and the row of H written over it.  Two GEMMs
  of the step's shape in all.
* **two passes** (larger m): tiles of t data rows by mb particles, so that both
  GEMMs keep a useful shape and the accumulator block of mb particles stays in
  cache.  Pass one sums the outputs f over the particle blocks; with f, the
  losses and g known, pass two recomputes each tile's Z and does the row work
  with the known g.  Three GEMMs of the step's shape, memory O(t mb + n)
  beyond the inputs and the accumulators.

The row pass runs in a fixed number of lanes (:func:`lanes`, not the number of
threads): lane q takes rows q, q + L, ... in order and adds their shares of
:math:`1^T H` and :math:`S^T g` into its own partial sums ``part[q]``, which are
added in lane order when a particle block has seen every data tile.  BLAS
computes each output entry with one thread over the whole inner dimension.  So
every sum has a fixed order and the results do not depend on the number of
threads.
"""

from collections import namedtuple

from numba import prange

from .blas import gemm
from .elementwise import act_rows, dot_rows, loss_deriv, loss_value
from .jit import jit, jit_parallel

TILE_ELEMS = 1 << 18
"""Entries of the tile buffer of the one-pass path while that gives ``GOOD_TILE_ROWS``
rows or more (2 MiB)."""

MIN_TILE_ROWS = 64
"""Fewest data rows of a one-pass tile: thinner GEMMs are slow."""

GOOD_TILE_ROWS = 128
"""Data rows of a one-pass tile at large m where ``MAX_TILE_ELEMS`` allows: the forward
GEMM packs all of A once per tile, and the backward GEMM reads and writes the whole
accumulator once per tile."""

MAX_TILE_ELEMS = 1 << 23
"""Most entries of the tile buffer (64 MiB; the tangent model has a second), whatever m."""

BLOCK_PARTICLES = 4096
"""Particles per block on the two-pass path."""

LANES = 8
"""Lanes of the row pass (fewer when a tile has fewer rows): a constant, not the number
of threads, so that the order of the lanes' sums never changes."""

DIRECT_MAX_WORK = 1 << 16
"""Systems with n * m * d below this use the plain-loop path."""

B_ROW, C_ROW, DB_ROW, CM_ROW = range(4)
"""Rows of the per-particle vectors ``F`` (4, m): biases b, output weights c, bias
displacement db (tangent model) and the multiplier cm of the velocity."""

Tile = namedtuple("Tile", ["F", "S", "H", "DZ", "part", "bias"])
Tile.__doc__ = """The buffers of the particles of one tile: their rows of ``F`` (4, w), the
tile ``S`` (t, w) (Z, then H), the derivative rows ``H`` (L, w) and partial sums ``part``
(L, 2, w) of the lanes, and ``DZ`` (t, w) (tangent model); ``bias``: whether the
particles have biases (else the rows skip adding b and summing 1^T H)."""


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
def lanes(t):
    """Lanes of the row pass of a tile of t rows."""
    return max(1, min(LANES, t))


@jit
def _features(act, tangent, tile, r, q):
    """Row r of a tile: S[r] <- s(S[r] + b) and lane row H[q] <- s'(S[r] + b); returns
    the output sum sum_i c_i s(z_i).

    For the tangent model the sum also has sum_i cm_i s'(z_i) (DZ[r, i] + db_i), with
    DZ[r, i] <- s'(z_i) (DZ[r, i] + db_i); b, c, db, cm are the rows of ``tile.F``.
    (Rows are indexed in place, not taken as views: a view costs a reference count
    per call.)
    """
    F = tile.F
    S = tile.S
    H = tile.H
    if tile.bias:
        for i in range(S.shape[1]):
            S[r, i] += F[B_ROW, i]
    act_rows(act, S, r, H, q, 1)
    acc = dot_rows(F, C_ROW, S, r)
    if tangent:
        DZ = tile.DZ
        for i in range(S.shape[1]):
            DZ[r, i] = H[q, i] * (DZ[r, i] + F[DB_ROW, i])
        acc += dot_rows(F, CM_ROW, DZ, r)
    return acc


@jit
def _backward_row(tile, r, q, g):
    """Lane q's partial sums part[q] += g [s'(z); s(z)] of row r, and S[r] <- g s'(z):
    the row of H, the backward GEMM's operand."""
    S = tile.S
    H = tile.H
    part = tile.part
    if tile.bias:
        for i in range(S.shape[1]):
            h = g * H[q, i]
            part[q, 0, i] += h
            part[q, 1, i] += g * S[r, i]
            S[r, i] = h
    else:
        for i in range(S.shape[1]):
            part[q, 1, i] += g * S[r, i]
            S[r, i] = g * H[q, i]


@jit_parallel
def _row_pass(model, tile, ws, y, j0, t, grad, blocks):
    """The t rows of a tile (data rows j0, ...) in parallel over lanes.

    One pass (not ``blocks``): f_j into ``ws.f``, and with ``grad`` the loss into
    ``ws.fl``, g_j into ``ws.g`` and the backward rows.  Two passes: the block's
    share of f_j is added to ``ws.f`` (pass one), or, with ``grad``, the backward rows
    use the g_j of ``ws.g`` (pass two).  (The arrays that the loop body itself writes
    are taken out of ``ws`` before the loop, one statement each: Numba can lose the
    writes of a ``prange`` loop through a tuple field, or through names bound by one
    tuple assignment; the row helpers, plain functions, take theirs from the tile.)
    """
    f = ws.f
    fl = ws.fl
    g = ws.g
    L = tile.H.shape[0]
    act, loss, tangent = model.act, model.loss, model.tangent
    scale = model.alpha / ws.F.shape[1]
    gscale = 1.0 / (model.alpha * y.shape[0])
    for q in prange(L):
        for r in range(q, t, L):
            j = j0 + r
            fr = scale * _features(act, tangent, tile, r, q)
            if blocks:
                if not grad:
                    f[j] += fr
            else:
                f[j] = fr
                if grad:
                    fl[j] = loss_value(loss, fr, y[j])
                    g[j] = loss_deriv(loss, fr, y[j]) * gscale
            if grad:
                _backward_row(tile, r, q, g[j])


@jit
def _forward_gemms(Q, model, Xt, ws, i0, tile):
    """Z_t = X_t A^T of the particles i0, ..., into the tile (and X_t dA^T into DZ,
    tangent model)."""
    t, d = Xt.shape
    w = tile.S.shape[1]
    gemm(False, True, 1.0, Xt, Q[i0:i0 + w, :d], 0.0, tile.S[:t])
    if model.tangent:
        gemm(False, True, 1.0, Xt, ws.dA[i0:i0 + w], 0.0, tile.DZ[:t])


@jit
def _lane_sums(tile, acc, i0):
    """acc[d] = 1^T H and acc[d + 1] = S^T g of the particles i0, ...: the lanes' partial
    sums, added in lane order."""
    part = tile.part
    d = acc.shape[0] - 2
    for k in range(2):
        for i in range(part.shape[2]):
            total = 0.0
            for q in range(part.shape[0]):
                total += part[q, k, i]
            acc[d + k, i0 + i] = total


@jit_parallel
def _sweep(P, model, X, y, ws, tile, i0, grad):
    """The particles i0, ... of ``tile`` against every data tile: the rows' work
    (:func:`_row_pass`) and with ``grad`` the g-weighted sums of these particles into
    ``ws.acc``."""
    n, d = X.shape
    t = tile.S.shape[0]
    w = tile.S.shape[1]
    Q = model.P0 if model.tangent else P
    blocks = w < P.shape[0]
    if grad:
        tile.part[:] = 0.0
    for j0 in range(0, n, t):
        tt = min(t, n - j0)
        Xt = X[j0:j0 + tt]
        _forward_gemms(Q, model, Xt, ws, i0, tile)
        _row_pass(model, tile, ws, y, j0, tt, grad, blocks)
        if grad:
            gemm(True, False, 1.0, Xt, tile.S[:tt], 0.0 if j0 == 0 else 1.0,
                 ws.acc[:d, i0:i0 + w])
    if grad:
        _lane_sums(tile, ws.acc, i0)


@jit
def _loss_sum(ws, n):
    """sum_j loss_j over the n rows, in order."""
    total = 0.0
    for j in range(n):
        total += ws.fl[j]
    return total


@jit_parallel
def one_pass(P, model, X, y, ws, grad, out):
    """One-pass path: outputs into ``out`` (forward), or sum_j loss_j and the
    g-weighted sums (``grad``)."""
    n = X.shape[0]
    tile = Tile(ws.F, ws.S, ws.H, ws.DZ, ws.part, P.shape[1] == X.shape[1] + 2)
    _sweep(P, model, X, y, ws, tile, 0, grad)
    if not grad:
        out[:n] = ws.f[:n]
        return 0.0
    return _loss_sum(ws, n)


@jit_parallel
def _blocks(P, model, X, y, ws, grad):
    """:func:`_sweep` over every particle block (two-pass path)."""
    m = P.shape[0]
    mb = ws.S.shape[1]
    for i0 in range(0, m, mb):
        w = min(mb, m - i0)
        tile = Tile(ws.F[:, i0:i0 + w], ws.S[:, :w], ws.H[:, :w], ws.DZ[:, :w],
                    ws.part[:, :, :w], P.shape[1] == X.shape[1] + 2)
        _sweep(P, model, X, y, ws, tile, i0, grad)


@jit_parallel
def two_passes(P, model, X, y, ws, grad, out):
    """Two-pass path, same contract as :func:`one_pass`."""
    n = X.shape[0]
    f = ws.f
    f[:n] = 0.0
    _blocks(P, model, X, y, ws, False)
    if not grad:
        out[:n] = f[:n]
        return 0.0
    gscale = 1.0 / (model.alpha * n)
    for j in range(n):
        ws.fl[j] = loss_value(model.loss, f[j], y[j])
        ws.g[j] = loss_deriv(model.loss, f[j], y[j]) * gscale
    _blocks(P, model, X, y, ws, True)
    return _loss_sum(ws, n)
