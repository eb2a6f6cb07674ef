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

Three paths compute the same sums (:func:`meanfield.kernels.tiles.tile_shape`
chooses).  Small systems (n m d < ``DIRECT_MAX_WORK``) run plain loops: no BLAS
call, no thread launch, no allocation (every buffer lives in a :func:`workspace`
that the caller allocates once per chunk).  Larger ones tile over the data, and
for large m over the particles too, spending a step in GEMMs with the
elementwise work fused into parallel passes over tile rows (see
:mod:`meanfield.kernels.tiles`); memory beyond the inputs is O(tile), never
O(n m).
"""

import numpy as np

from .elementwise import loss_deriv, loss_value
from .jit import jit, jit_parallel
from .structs import Model, Workspace
from .tiles import (B_ROW, C_ROW, CM_ROW, DB_ROW, DIRECT_MAX_WORK, one_pass, row_features,
                    tile_shape, two_passes)


@jit
def tile_rows(n, m, d):
    """Rows of data per tile on the GEMM paths, or 0 for the plain-loop path."""
    return tile_shape(n, m, d)[0]


@jit
def workspace(n, m, d, tangent):
    """Every buffer that an evaluation on n inputs needs, as a :class:`Workspace`.

    For outputs only (:func:`model_outputs`), :func:`output_workspace` is enough.

    Fields: ``A`` (d, m) the input weights, transposed (plain-loop path only; the GEMM
    path reads them from the particles); ``dA`` their displacement (tangent model only;
    (d, m) on the plain-loop path, (m, d) on the GEMM path); ``F`` (4, m), rows
    biases b, output weights c, bias displacement db and the multiplier cm of the
    velocity (c, or c0 for the tangent model) (see :mod:`meanfield.kernels.tiles`); the
    accumulators, transposed, ``acc`` = [sum_j g_j s' x_j, sum_j g_j s']^T (d + 1, m)
    and ``accc`` = sum_j g_j s (m,); the tile buffers ``S`` = s(z), ``H`` = g_j s'(z)
    and ``DZ`` = X_t dA^T (tangent model) (t, mb) (one row each on the plain-loop
    path); ``ones`` (t,) (empty on the plain-loop path); ``fl``, ``g`` and ``f``
    the loss, g and output of each row of a tile ((t,); g and f (n,) on the two-pass
    path).  (The transposed accumulator makes the
    backward GEMM ``acc = X_t^T H``, with the big tile H as its untransposed right
    operand: the fast form for BLAS.)
    """
    return _workspace(n, m, d, tangent, True)


@jit
def output_workspace(n, m, d, tangent):
    """A :func:`workspace` without the accumulators (empty ``acc``, ``accc``): enough for
    :func:`model_outputs`, and (d + 2) m entries smaller."""
    return _workspace(n, m, d, tangent, False)


@jit
def _workspace(n, m, d, tangent, grad):
    t, mb = tile_shape(n, m, d)
    r = max(t, 1)
    direct = d if t == 0 else 0
    dA = (np.empty((d, m)) if t == 0 else np.empty((m, d))) if tangent else np.empty((0, m))
    rows = n if mb < m else r
    ma = m if grad else 0
    return Workspace(np.empty((direct, m)), dA, np.zeros((4, m)), np.empty((d + 1, ma)),
                     np.empty(ma), np.empty((r, mb)), np.empty((r, mb)),
                     np.empty((r if tangent else 0, mb)), np.ones(t), np.empty(r),
                     np.empty(rows), np.empty(rows))


@jit
def _features(P, Q, tangent, F, A, dA, d):
    """Fill ``F`` (and on the plain-loop path, where A is not empty, A^T and dA^T) from the
    particles.

    Network (Q = P): features at w, cm = c.  Tangent model: features at w0 = Q,
    dA = A - A0, db = b - b0, cm = c0.  (Plain arrays: a structure of arrays passed
    per call costs a reference count per array, which small systems feel.)
    """
    m, D = P.shape
    bias = D == d + 2
    direct = A.shape[0] > 0
    for i in range(m):
        F[B_ROW, i] = Q[i, d] if bias else 0.0
        F[C_ROW, i] = P[i, D - 1]
        F[CM_ROW, i] = Q[i, D - 1]
        if tangent:
            F[DB_ROW, i] = P[i, d] - Q[i, d] if bias else 0.0
    if direct:
        for k in range(d):
            for i in range(m):
                A[k, i] = Q[i, k]
                if tangent:
                    dA[k, i] = P[i, k] - Q[i, k]
    elif tangent:
        for i in range(m):
            for k in range(d):
                dA[i, k] = P[i, k] - Q[i, k]


# ----------------------------------------------------------------- plain-loop path
@jit
def _preact(A, X, j, S):
    """S[0] = A^T X[j] for A (d, m); the loops over particles are innermost, so that they
    vectorise."""
    m = S.shape[1]
    for i in range(m):
        S[0, i] = 0.0
    for k in range(A.shape[0]):
        xk = X[j, k]
        for i in range(m):
            S[0, i] += A[k, i] * xk


@jit
def _accumulate_row(g, X, j, S, H, acc, accc):
    """accc += g S[0] and acc += g [X[j]; 1] H[0]^T for one input row."""
    d = X.shape[1]
    m = S.shape[1]
    for i in range(m):
        accc[i] += g * S[0, i]
    for k in range(d):
        gx = g * X[j, k]
        for i in range(m):
            acc[k, i] += gx * H[0, i]
    for i in range(m):
        acc[d, i] += g * H[0, i]


@jit
def _direct(model, X, y, ws, grad, out):
    """Plain-loop path, one input row at a time: outputs into ``out`` (forward), or
    sum_j loss_j and the g-weighted sums (``grad``).  The arrays are taken out of
    ``ws`` once: a call that passes a structure of arrays costs a reference count per
    array."""
    n = X.shape[0]
    act, loss, tangent = model.act, model.loss, model.tangent
    A, dA, F, acc, accc, S, H = ws.A, ws.dA, ws.F, ws.acc, ws.accc, ws.S, ws.H
    DZ = ws.DZ if tangent else S
    scale = model.alpha / A.shape[1]
    gscale = 1.0 / (model.alpha * max(n, 1))
    acc[:] = 0.0
    accc[:] = 0.0
    total = 0.0
    for j in range(n):
        _preact(A, X, j, S)
        if tangent:
            _preact(dA, X, j, DZ)
        f = scale * row_features(act, tangent, F, S, H, DZ, 0)
        if grad:
            total += loss_value(loss, f, y[j])
            _accumulate_row(loss_deriv(loss, f, y[j]) * gscale, X, j, S, H, acc, accc)
        else:
            out[j] = f
    return total


# ------------------------------------------------------------------- entry points
@jit
def _velocity(P, cm, acc, accc, lam, V):
    """V = -m grad_w J from the g-weighted sums (cm the multiplier of the velocity)."""
    m, D = P.shape
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
    ws : a :func:`workspace` or :func:`output_workspace` for (n, m, d, model.tangent);
    out : (n,) output.
    """
    _features(P, model.P0 if model.tangent else P, model.tangent, ws.F, ws.A, ws.dA,
              X.shape[1])
    if ws.ones.shape[0] == 0:
        _direct(model, X, out, ws, False, out)
    elif ws.S.shape[1] == P.shape[0]:
        one_pass(P, model, X, out, ws, False, out)
    else:
        two_passes(P, model, X, out, ws, False, out)


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
    F, acc, accc = ws.F, ws.acc, ws.accc
    _features(P, model.P0 if model.tangent else P, model.tangent, F, ws.A, ws.dA, X.shape[1])
    if ws.ones.shape[0] == 0:
        total = _direct(model, X, y, ws, True, y)
    elif ws.S.shape[1] == P.shape[0]:
        total = one_pass(P, model, X, y, ws, True, y)
    else:
        total = two_passes(P, model, X, y, ws, True, y)
    _velocity(P, F[CM_ROW], acc, accc, model.lam, V)
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
    model_outputs(P, model, X, output_workspace(n, P.shape[0], d, model.tangent), out)
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
