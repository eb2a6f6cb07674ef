r"""Forward pass and particle velocity of the network and of its tangent model.

For particles :math:`w_i = (a_i, b_i, c_i)` stored as the rows of ``P``
(columns a, [b,] c; the bias column is present iff ``P.shape[1] == d + 2``)

.. math::

    f(x_j) = \frac{\alpha}{m} \sum_i c_i\, s(z_{ij}), \qquad z_{ij} = a_i \cdot x_j + b_i,

and, with :math:`g_j = \ell'(f(x_j), y_j) / (\alpha n)`, the velocity
:math:`v_i = -m \nabla_{w_i} J` is

.. math::

    v_{c,i} = -\sum_j g_j s(z_{ij}) - \lambda c_i, \quad
    v_{a,i} = -c_i \sum_j g_j s'(z_{ij}) x_j - \lambda a_i, \quad
    v_{b,i} = -c_i \sum_j g_j s'(z_{ij}) - \lambda b_i.

The tangent model :math:`Tf(w) = f(w_0) + (w - w_0) \cdot \nabla f(w_0)` is

.. math::

    Tf(x_j) = \frac{\alpha}{m} \sum_i \left[c_i\, s(z^0_{ij})
              + c^0_i\, s'(z^0_{ij})\, (\Delta a_i \cdot x_j + \Delta b_i)\right],

and its velocity is the one above with :math:`z^0` in place of z, :math:`c^0`
in place of the multiplying c, and g taken at Tf.  Both share one
implementation: features (A, b) at w (or w0), output weights c, and for the
tangent model the displacement (dA, db) and c0.

Two paths compute the same sums (:func:`tile_rows` chooses).

* Small systems (n m d < ``DIRECT_MAX_WORK``) run plain loops: no BLAS call,
  no thread launch, no allocation (every buffer lives in a workspace that
  :func:`meanfield.kernels.training.train_chunk` allocates once per chunk).
* Large systems tile over the data, ``t`` rows at a time with ``t m`` about
  ``TILE_ELEMS``, so memory beyond the inputs is O(t m).  A step is two GEMMs
  per tile, :math:`Z = X_t A^T` and
  :math:`[\sum_j g_j s'(z_{ij}) x_j]_{k i} = (X_t^T H)_{k i}` with
  :math:`H_{ji} = g_j s'(z_{ij})` (accumulated in place over the tiles), the
  GEMVs :math:`S^T g` (and :math:`H^T 1` with a bias), and the elementwise
  work (activation, its derivative, the output, the loss, g and H) fused
  into one ``prange`` pass over the rows of the tile in between.  The
  tangent model adds one GEMM :math:`X_t\, \Delta A^T`.

Each output entry is summed by one thread in a fixed order (the row pass
parallelises over rows; BLAS splits only the output entries among its
threads), so results do not depend on the number of threads.
"""

import numpy as np
from numba import prange

from .blas import gemm, gemv_t
from .elementwise import RELU, act_both, loss_deriv, loss_value
from .jit import jit, jit_parallel

TILE_ELEMS = 1 << 18
"""Entries of one (tile rows, m) buffer on the GEMM path (2 MiB each; there are two,
three for the tangent model)."""

DIRECT_MAX_WORK = 1 << 16
"""Systems with n * m * d below this use the plain-loop path."""


@jit
def tile_rows(n, m, d):
    """Rows of data per tile on the GEMM path, or 0 for the plain-loop path."""
    if n * m * d < DIRECT_MAX_WORK:
        return 0
    return max(1, min(n, TILE_ELEMS // max(m, 1)))


@jit
def workspace(n, m, d, tangent):
    """Every buffer that a forward or velocity evaluation on n inputs needs.

    Returns the tuple (A, b, c, dA, db, cm, acc, accc, S, H, DZ, ones, fl, g):
    features and output weights (the tangent model's displacement dA, db and
    multiplier cm); the accumulators, transposed, [sum_j g_j s' x_j, sum_j g_j s']^T
    (d + 1, m) and sum_j g_j s (m,); the tile buffers s(z) and g_j s'(z) (t, m)
    (one row each on the plain-loop path), X_t dA^T (tangent model only), a
    vector of ones, the loss or output of each row and g (t,).  ``ones`` is
    empty on the plain-loop path.  (The transposed accumulator makes the
    backward GEMM ``acc = X_t^T H``, with the big tile H as its untransposed
    right operand: the fast form for BLAS.)
    """
    t = tile_rows(n, m, d)
    r = max(t, 1)
    mt = m if tangent else 0
    return (np.empty((m, d)), np.empty(m), np.empty(m),
            np.empty((mt, d)), np.empty(mt), np.empty(m),
            np.empty((d + 1, m)), np.empty(m),
            np.empty((r, m)), np.empty((r, m)), np.empty((r if tangent else 0, m)),
            np.ones(t), np.empty(r), np.empty(r))


@jit
def _features(P, P0, tangent, A, b, c, dA, db, cm):
    """Fill (A, b, c, dA, db, cm) from the particles.

    Network: features at w, cm = c.  Tangent model: features at w0,
    dA = A - A0, db = b - b0, cm = c0.
    """
    m, D = P.shape
    d = A.shape[1]
    bias = D == d + 2
    Q = P0 if tangent else P
    for i in range(m):
        for k in range(d):
            A[i, k] = Q[i, k]
        b[i] = Q[i, d] if bias else 0.0
        c[i] = P[i, D - 1]
        cm[i] = Q[i, D - 1]
        if tangent:
            for k in range(d):
                dA[i, k] = P[i, k] - P0[i, k]
            db[i] = P[i, d] - P0[i, d] if bias else 0.0


# ----------------------------------------------------------------- plain-loop path
@jit
def _row_output(A, dA, tangent, X, j, act, alpha, b, c, db, cm, S, H, DZ):
    """Output at input ``X[j]``; fills s(z_i) and s'(z_i) into ``S[0]`` and ``H[0]``.

    The loops over particles are innermost, so that they vectorise.
    """
    m, d = A.shape
    for i in range(m):
        S[0, i] = 0.0
        if tangent:
            DZ[0, i] = 0.0
    for k in range(d):
        x = X[j, k]
        for i in range(m):
            S[0, i] += A[i, k] * x
        if tangent:
            for i in range(m):
                DZ[0, i] += dA[i, k] * x
    return alpha / m * _row_features(act, tangent, S, H, DZ, 0, b, c, db, cm)


@jit
def _outputs_direct(A, b, c, dA, db, cm, tangent, X, act, alpha, S, H, DZ, out):
    for j in range(X.shape[0]):
        out[j] = _row_output(A, dA, tangent, X, j, act, alpha, b, c, db, cm, S, H, DZ)


@jit
def _accumulate_direct(X, y, A, b, c, dA, db, cm, tangent, act, loss, alpha, gscale,
                       acc, accc, S, H, DZ):
    """Plain-loop path: returns sum_j loss_j and sets the g-weighted sums."""
    n, d = X.shape
    m = A.shape[0]
    accc[:] = 0.0
    acc[:] = 0.0
    total = 0.0
    for j in range(n):
        f = _row_output(A, dA, tangent, X, j, act, alpha, b, c, db, cm, S, H, DZ)
        total += loss_value(loss, f, y[j])
        g = loss_deriv(loss, f, y[j]) * gscale
        for i in range(m):
            accc[i] += g * S[0, i]
        for k in range(d):
            gx = g * X[j, k]
            for i in range(m):
                acc[k, i] += gx * H[0, i]
        for i in range(m):
            acc[d, i] += g * H[0, i]
    return total


# ---------------------------------------------------------------------- GEMM path
@jit
def _row_features(act, tangent, S, H, DZ, r, b, c, db, cm):
    """Row r of a tile: S[r] <- s(S[r] + b), H[r] <- s'(S[r] + b); returns the output sum.

    The output sum is sum_i c_i s(z_i) (plus sum_i cm_i s'(z_i) (DZ[r, i] + db_i)
    for the tangent model).  Relu, the common case, has its own branch-free
    loop.
    """
    m = S.shape[1]
    acc = 0.0
    if tangent:
        for i in range(m):
            s, ds = act_both(act, S[r, i] + b[i])
            S[r, i] = s
            H[r, i] = ds
            acc += c[i] * s + cm[i] * ds * (DZ[r, i] + db[i])
    elif act == RELU:
        for i in range(m):
            z = S[r, i] + b[i]
            pos = z > 0.0
            s = z if pos else 0.0
            S[r, i] = s
            H[r, i] = 1.0 if pos else 0.0
            acc += c[i] * s
    else:
        for i in range(m):
            s, ds = act_both(act, S[r, i] + b[i])
            S[r, i] = s
            H[r, i] = ds
            acc += c[i] * s
    return acc


@jit_parallel
def _tile_pass(act, loss, alpha, gscale, tangent, grad, S, H, DZ, b, c, db, cm,
               y, j0, t, fl, g, out):
    """The elementwise work of one tile of t rows starting at data row j0, in parallel over rows.

    Forward only (``grad`` false): the outputs go to ``out[j0 + r]``.  With
    ``grad``: the losses to ``fl``, g to ``g``, and row r of ``H`` is scaled by g_r.
    """
    m = S.shape[1]
    scale = alpha / m
    for r in prange(t):
        f = scale * _row_features(act, tangent, S, H, DZ, r, b, c, db, cm)
        if grad:
            j = j0 + r
            fl[r] = loss_value(loss, f, y[j])
            gr = loss_deriv(loss, f, y[j]) * gscale
            g[r] = gr
            for i in range(m):
                H[r, i] *= gr
        else:
            out[j0 + r] = f


@jit_parallel
def _tiles(X, y, A, b, c, dA, db, cm, tangent, act, loss, alpha, gscale, grad, bias,
           acc, accc, S, H, DZ, ones, fl, g, out):
    """GEMM path over data tiles: outputs into ``out`` (forward), or sum_j loss_j and the
    g-weighted sums (``grad``; the bias row of ``acc`` only with ``bias``)."""
    n, d = X.shape
    t = S.shape[0]
    total = 0.0
    for j0 in range(0, n, t):
        tt = min(t, n - j0)
        Xt = X[j0:j0 + tt]
        St = S[:tt]
        gemm(False, True, 1.0, Xt, A, 0.0, St)
        if tangent:
            gemm(False, True, 1.0, Xt, dA, 0.0, DZ[:tt])
        _tile_pass(act, loss, alpha, gscale, tangent, grad, S, H, DZ, b, c, db, cm,
                   y, j0, tt, fl, g, out)
        if grad:
            for r in range(tt):
                total += fl[r]
            beta = 0.0 if j0 == 0 else 1.0
            gemv_t(1.0, St, g[:tt], beta, accc)
            gemm(True, False, 1.0, Xt, H[:tt], beta, acc[:d])
            if bias:
                gemv_t(1.0, H[:tt], ones[:tt], beta, acc[d])
    return total


# ------------------------------------------------------------------- entry points
@jit
def _velocity(P, cm, acc, accc, lam, V):
    """V = -m grad_w J from the g-weighted sums."""
    m, D = P.shape
    d = acc.shape[0] - 1
    for i in range(m):
        for k in range(d):
            V[i, k] = -cm[i] * acc[k, i] - lam * P[i, k]
        if D == d + 2:
            V[i, d] = -cm[i] * acc[d, i] - lam * P[i, d]
        V[i, D - 1] = -accc[i] - lam * P[i, D - 1]


@jit_parallel
def model_outputs(P, P0, tangent, X, act, alpha, ws, out):
    """Outputs of the network (or of its tangent model at P0) at the rows of X, into ``out``.

    ``ws`` is a :func:`workspace` for (n, m, d) of at least this size and the same path.
    """
    A, b, c, dA, db, cm, acc, accc, S, H, DZ, ones, fl, g = ws
    _features(P, P0, tangent, A, b, c, dA, db, cm)
    if ones.shape[0] == 0:
        _outputs_direct(A, b, c, dA, db, cm, tangent, X, act, alpha, S, H, DZ, out)
    else:
        _tiles(X, out, A, b, c, dA, db, cm, tangent, act, 0, alpha, 0.0, False, False,
               acc, accc, S, H, DZ, ones, fl, g, out)


@jit_parallel
def model_risk_and_velocity_ws(P, P0, tangent, X, y, act, loss, alpha, lam, V, ws):
    """:func:`model_risk_and_velocity` with a preallocated :func:`workspace` for X's shape."""
    n = X.shape[0]
    A, b, c, dA, db, cm, acc, accc, S, H, DZ, ones, fl, g = ws
    _features(P, P0, tangent, A, b, c, dA, db, cm)
    gscale = 1.0 / (alpha * n)
    if ones.shape[0] == 0:
        total = _accumulate_direct(X, y, A, b, c, dA, db, cm, tangent, act, loss, alpha,
                                   gscale, acc, accc, S, H, DZ)
    else:
        total = _tiles(X, y, A, b, c, dA, db, cm, tangent, act, loss, alpha, gscale, True,
                       P.shape[1] == X.shape[1] + 2, acc, accc, S, H, DZ, ones, fl, g, y)
    _velocity(P, cm, acc, accc, lam, V)
    return total / n


@jit_parallel
def _forward(P, P0, tangent, X, act, alpha):
    X = np.ascontiguousarray(X)
    n, d = X.shape
    out = np.empty(n)
    model_outputs(P, P0, tangent, X, act, alpha, workspace(n, P.shape[0], d, tangent), out)
    return out


@jit_parallel
def forward(P, X, act, alpha):
    """Network output f(x_j) for every row of ``X`` (eq. 1).

    Parameters
    ----------
    P : (m, D) float64 particles; X : (n, d) float64 inputs;
    act : activation id; alpha : output scale.
    """
    return _forward(P, P, False, X, act, alpha)


@jit_parallel
def tangent_forward(P, P0, X, act, alpha):
    """Tangent-model output T f(w)(x_j) = f(w0)(x_j) + (w - w0) . grad f(w0)(x_j)."""
    return _forward(P, P0, True, X, act, alpha)


@jit_parallel
def model_risk_and_velocity(P, P0, tangent, X, y, act, loss, alpha, lam, V):
    """Risk and velocity of the network (``tangent`` false) or of its tangent model at P0.

    Writes v = -m grad_w J into ``V`` (m, D) and returns R on (X, y).
    """
    X = np.ascontiguousarray(X)
    n, d = X.shape
    ws = workspace(n, P.shape[0], d, tangent)
    return model_risk_and_velocity_ws(P, P0, tangent, X, y, act, loss, alpha, lam, V, ws)


@jit_parallel
def risk_and_velocity(P, X, y, act, loss, alpha, lam, V):
    """Empirical risk R = mean_j loss(f(x_j), y_j); writes v = -m grad J into ``V``.

    Parameters
    ----------
    P : (m, D) particles; X : (n, d); y : (n,); act, loss : ids;
    alpha : output scale; lam : weight decay; V : (m, D) output.

    Returns
    -------
    float
        R(f) on (X, y) at the current particles.
    """
    return model_risk_and_velocity(P, P, False, X, y, act, loss, alpha, lam, V)


@jit
def mean_loss(f, y, loss):
    """mean_j loss(f_j, y_j)."""
    total = 0.0
    for j in range(f.shape[0]):
        total += loss_value(loss, f[j], y[j])
    return total / f.shape[0]


@jit_parallel
def risk(P, X, y, act, loss, alpha):
    """Empirical risk R = mean_j loss(f(x_j), y_j)."""
    return mean_loss(forward(P, X, act, alpha), y, loss)
