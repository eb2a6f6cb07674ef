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
from .elementwise import act_rows, dot, loss_deriv, loss_value
from .jit import jit, jit_parallel
from .structs import Model, Workspace

TILE_ELEMS = 1 << 18
"""Entries of one (tile rows, m) buffer on the GEMM path while m is small enough for
``MIN_TILE_ROWS`` rows (2 MiB each; there are two, three for the tangent model)."""

MIN_TILE_ROWS = 64
"""Fewest data rows of a tile (while ``MAX_TILE_ELEMS`` allows): thinner GEMMs are slow."""

MAX_TILE_ELEMS = 1 << 22
"""Most entries of one tile buffer (32 MiB), whatever m."""

DIRECT_MAX_WORK = 1 << 16
"""Systems with n * m * d below this use the plain-loop path."""


@jit
def tile_rows(n, m, d):
    """Rows of data per tile on the GEMM path, or 0 for the plain-loop path."""
    if n * m * d < DIRECT_MAX_WORK:
        return 0
    m = max(m, 1)
    t = TILE_ELEMS // m
    if t < MIN_TILE_ROWS:
        t = min(MIN_TILE_ROWS, MAX_TILE_ELEMS // m)
    return max(1, min(n, t))


@jit
def workspace(n, m, d, tangent):
    """Every buffer that an evaluation on n inputs needs, as a :class:`Workspace`.

    Fields: ``A`` (d, m) the input weights, transposed (plain-loop path only; the GEMM
    path reads them from the particles); ``dA`` their displacement (tangent model only;
    (d, m) on the plain-loop path, (m, d) on the GEMM path); ``b``, ``c``, ``db``, ``cm`` (m,) biases, output weights, bias displacement
    and the multiplier of the velocity (c, or c0 for the tangent model); the
    accumulators, transposed, ``acc`` = [sum_j g_j s' x_j, sum_j g_j s']^T (d + 1, m)
    and ``accc`` = sum_j g_j s (m,); the tile buffers ``S`` = s(z), ``H`` = g_j s'(z)
    and ``DZ`` = X_t dA^T (tangent model) (t, m) (one row each on the plain-loop
    path); ``ones`` (t,) (empty on the plain-loop path); ``fl``, ``g`` and ``f``
    (t,) the loss, g and output of each row.  (The transposed accumulator makes the
    backward GEMM ``acc = X_t^T H``, with the big tile H as its untransposed right
    operand: the fast form for BLAS.)
    """
    t = tile_rows(n, m, d)
    r = max(t, 1)
    direct = d if t == 0 else 0
    dA = (np.empty((d, m)) if t == 0 else np.empty((m, d))) if tangent else np.empty((0, m))
    return Workspace(np.empty((direct, m)), np.empty(m), np.empty(m),
                     dA, np.empty(m), np.empty(m),
                     np.empty((d + 1, m)), np.empty(m),
                     np.empty((r, m)), np.empty((r, m)), np.empty((r if tangent else 0, m)),
                     np.ones(t), np.empty(r), np.empty(r), np.empty(r))


@jit
def _features(P, model, ws):
    """Fill the vectors of ``ws`` (and on the plain-loop path A^T, dA^T) from the particles.

    Network: features at w, cm = c.  Tangent model: features at w0 = ``model.P0``,
    dA = A - A0, db = b - b0, cm = c0.
    """
    m, D = P.shape
    d = ws.acc.shape[0] - 1
    bias = D == d + 2
    tangent = model.tangent
    Q = model.P0 if tangent else P
    direct = ws.A.shape[0] > 0
    for i in range(m):
        ws.b[i] = Q[i, d] if bias else 0.0
        ws.c[i] = P[i, D - 1]
        ws.cm[i] = Q[i, D - 1]
        if tangent:
            ws.db[i] = P[i, d] - Q[i, d] if bias else 0.0
    if direct:
        for k in range(d):
            for i in range(m):
                ws.A[k, i] = Q[i, k]
                if tangent:
                    ws.dA[k, i] = P[i, k] - Q[i, k]
    elif tangent:
        for i in range(m):
            for k in range(d):
                ws.dA[i, k] = P[i, k] - Q[i, k]


@jit
def _row_features(act, tangent, ws, S, H, DZ):
    """One tile row: S <- s(S + b), H <- s'(S + b); returns the output sum.

    The output sum is sum_i c_i s(z_i) (plus sum_i cm_i s'(z_i) (DZ_i + db_i)
    for the tangent model, with DZ <- s'(z_i) (DZ_i + db_i)).
    """
    b = ws.b
    for i in range(S.shape[0]):
        S[i] += b[i]
    act_rows(act, S, H)
    acc = dot(ws.c, S)
    if tangent:
        db = ws.db
        for i in range(S.shape[0]):
            DZ[i] = H[i] * (DZ[i] + db[i])
        acc += dot(ws.cm, DZ)
    return acc


# ----------------------------------------------------------------- plain-loop path
@jit
def _row_output(model, X, j, ws):
    """Output at input ``X[j]``; fills s(z_i) and s'(z_i) into ``S[0]`` and ``H[0]``.

    The loops over particles are innermost, so that they vectorise.
    """
    d, m = ws.A.shape
    S = ws.S[0]
    DZ = ws.DZ[0] if model.tangent else S
    S[:] = 0.0
    if model.tangent:
        DZ[:] = 0.0
    for k in range(d):
        x = X[j, k]
        A = ws.A[k]
        for i in range(m):
            S[i] += A[i] * x
        if model.tangent:
            dA = ws.dA[k]
            for i in range(m):
                DZ[i] += dA[i] * x
    return model.alpha / m * _row_features(model.act, model.tangent, ws, S, ws.H[0], DZ)


@jit
def _accumulate_direct(model, X, y, ws):
    """Plain-loop path: returns sum_j loss_j and sets the g-weighted sums."""
    n, d = X.shape
    m = ws.A.shape[1]
    acc, accc, S, H = ws.acc, ws.accc, ws.S[0], ws.H[0]
    gscale = 1.0 / (model.alpha * n)
    accc[:] = 0.0
    acc[:] = 0.0
    total = 0.0
    for j in range(n):
        f = _row_output(model, X, j, ws)
        total += loss_value(model.loss, f, y[j])
        g = loss_deriv(model.loss, f, y[j]) * gscale
        for i in range(m):
            accc[i] += g * S[i]
        for k in range(d):
            gx = g * X[j, k]
            row = acc[k]
            for i in range(m):
                row[i] += gx * H[i]
        row = acc[d]
        for i in range(m):
            row[i] += g * H[i]
    return total


# ---------------------------------------------------------------------- GEMM path
@jit_parallel
def _tile_pass(model, grad, ws, y, j0, t):
    """The elementwise work of one tile of t rows starting at data row j0, in parallel over rows.

    Outputs to ``ws.f``; with ``grad`` also the losses to ``ws.fl``, g to ``ws.g``,
    and row r of ``H`` is scaled by g_r.  (The arrays are taken out of ``ws``
    before the parallel loop: Numba loses writes through a tuple field there.)
    """
    S, H, DZ, f, fl, g = ws.S, ws.H, ws.DZ, ws.f, ws.fl, ws.g
    act, loss, tangent = model.act, model.loss, model.tangent
    scale = model.alpha / S.shape[1]
    gscale = 1.0 / (model.alpha * y.shape[0])
    for r in prange(t):
        fr = scale * _row_features(act, tangent, ws, S[r], H[r], DZ[r] if tangent else S[r])
        f[r] = fr
        if grad:
            yj = y[j0 + r]
            fl[r] = loss_value(loss, fr, yj)
            gr = loss_deriv(loss, fr, yj) * gscale
            g[r] = gr
            Hr = H[r]
            for i in range(Hr.shape[0]):
                Hr[i] *= gr


@jit
def _tile_gemms(P, model, Xt, ws, tt):
    """Pre-activations X_t A^T of a tile into S (and X_t dA^T into DZ for the tangent model)."""
    d = Xt.shape[1]
    Q = model.P0 if model.tangent else P
    gemm(False, True, 1.0, Xt, Q[:, :d], 0.0, ws.S[:tt])
    if model.tangent:
        gemm(False, True, 1.0, Xt, ws.dA, 0.0, ws.DZ[:tt])


@jit_parallel
def _tiles(P, model, X, y, ws, grad, out):
    """GEMM path over data tiles: outputs into ``out`` (forward), or sum_j loss_j and the
    g-weighted sums (``grad``)."""
    n, d = X.shape
    t = ws.S.shape[0]
    bias = P.shape[1] == d + 2
    total = 0.0
    for j0 in range(0, n, t):
        tt = min(t, n - j0)
        Xt = X[j0:j0 + tt]
        _tile_gemms(P, model, Xt, ws, tt)
        _tile_pass(model, grad, ws, y, j0, tt)
        if grad:
            for r in range(tt):
                total += ws.fl[r]
            beta = 0.0 if j0 == 0 else 1.0
            gemv_t(1.0, ws.S[:tt], ws.g[:tt], beta, ws.accc)
            gemm(True, False, 1.0, Xt, ws.H[:tt], beta, ws.acc[:d])
            if bias:
                gemv_t(1.0, ws.H[:tt], ws.ones[:tt], beta, ws.acc[d])
        else:
            out[j0:j0 + tt] = ws.f[:tt]
    return total


# ------------------------------------------------------------------- entry points
@jit
def _velocity(P, model, ws, V):
    """V = -m grad_w J from the g-weighted sums."""
    m, D = P.shape
    acc, accc, cm, lam = ws.acc, ws.accc, ws.cm, model.lam
    d = acc.shape[0] - 1
    for i in range(m):
        for k in range(d):
            V[i, k] = -cm[i] * acc[k, i] - lam * P[i, k]
        if D == d + 2:
            V[i, d] = -cm[i] * acc[d, i] - lam * P[i, d]
        V[i, D - 1] = -accc[i] - lam * P[i, D - 1]


@jit_parallel
def model_outputs(P, model, X, ws, out):
    """Outputs of the network (or of its tangent model at ``model.P0``) at the rows of X.

    Parameters
    ----------
    P : (m, D) particles; model : :class:`Model`; X : (n, d) C-contiguous inputs;
    ws : a :func:`workspace` for (n, m, d, model.tangent); out : (n,) output.
    """
    _features(P, model, ws)
    if ws.ones.shape[0] == 0:
        for j in range(X.shape[0]):
            out[j] = _row_output(model, X, j, ws)
    else:
        _tiles(P, model, X, out, ws, False, out)


@jit_parallel
def model_risk_and_velocity(P, model, X, y, V, ws):
    r"""Risk R on (X, y) of the network (or tangent model); writes v = -m grad_w J into V.

    .. math:: v_i = -m \nabla_{w_i} J, \quad J = R / \alpha^2 + (\lambda / m) \sum_i |w_i|^2 / 2

    Parameters
    ----------
    P : (m, D) particles; model : :class:`Model`; X : (n, d) C-contiguous inputs;
    y : (n,) labels; V : (m, D) output; ws : a :func:`workspace` for (n, m, d, model.tangent).

    Returns
    -------
    float
        R = mean_j loss(f(x_j), y_j).
    """
    _features(P, model, ws)
    if ws.ones.shape[0] == 0:
        total = _accumulate_direct(model, X, y, ws)
    else:
        total = _tiles(P, model, X, y, ws, True, y)
    _velocity(P, model, ws, V)
    return total / X.shape[0]


@jit
def mean_loss(f, y, loss):
    """mean_j loss(f_j, y_j)."""
    total = 0.0
    for j in range(f.shape[0]):
        total += loss_value(loss, f[j], y[j])
    return total / f.shape[0]


@jit_parallel
def _outputs(P, model, X):
    X = np.ascontiguousarray(X)
    n, d = X.shape
    out = np.empty(n)
    model_outputs(P, model, X, workspace(n, P.shape[0], d, model.tangent), out)
    return out


@jit_parallel
def model_risk(P, model, X, y):
    """Risk R = mean_j loss(f(x_j), y_j) of the network (or tangent model) on (X, y)."""
    return mean_loss(_outputs(P, model, X), y, model.loss)


@jit
def _model(P0, tangent, act, loss, alpha, lam):
    """A :class:`Model` with the canonical field types, from compiled code."""
    return Model(np.int64(act), np.int64(loss), np.float64(alpha), np.float64(lam),
                 tangent, P0)


@jit_parallel
def forward(P, X, act, alpha):
    """Network output f(x_j) for every row of ``X`` (eq. 1).

    Parameters
    ----------
    P : (m, D) float64 particles; X : (n, d) float64 inputs;
    act : activation id; alpha : output scale.
    """
    return _outputs(P, _model(P, False, act, 0, alpha, 0.0), X)


@jit_parallel
def tangent_forward(P, P0, X, act, alpha):
    """Tangent-model output T f(w)(x_j) = f(w0)(x_j) + (w - w0) . grad f(w0)(x_j)."""
    return _outputs(P, _model(P0, True, act, 0, alpha, 0.0), X)


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
    X = np.ascontiguousarray(X)
    n, d = X.shape
    return model_risk_and_velocity(P, _model(P, False, act, loss, alpha, lam), X, y, V,
                                   workspace(n, P.shape[0], d, False))


@jit_parallel
def risk(P, X, y, act, loss, alpha):
    """Empirical risk R = mean_j loss(f(x_j), y_j)."""
    return model_risk(P, _model(P, False, act, loss, alpha, 0.0), X, y)
