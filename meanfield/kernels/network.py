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

Two paths compute the same sums.  Small systems run plain loops (no BLAS
call overhead); large ones tile over the data and spend their time in GEMMs
(``X_t A^T``, ``H^T X_t``, plus ``X_t dA^T`` for the tangent model) with the
elementwise work fused in between, so memory beyond the inputs is
O(tile * m).  Every reduction runs in a fixed order, so results do not depend
on the number of threads.
"""

import numpy as np
from numba import prange

from .jit import jit, jit_parallel
from .elementwise import act_deriv, act_value, loss_deriv, loss_value

TILE = 256
"""Rows of data per tile on the GEMM path."""

DIRECT_MAX_WORK = 1 << 16
"""Systems with n * m * d below this use the plain-loop path."""


@jit
def _split(P, d):
    """Contiguous copies of a (m, d), b (m,) (zeros without bias) and c (m,)."""
    m, D = P.shape
    A = np.ascontiguousarray(P[:, :d])
    b = P[:, d].copy() if D == d + 2 else np.zeros(m)
    c = P[:, D - 1].copy()
    return A, b, c


@jit
def _model(P, P0, d, tangent):
    """(A, b, c, dA, db, cm): feature weights, output weights, tangent displacement, multiplier.

    For the network: features at w, cm = c, no displacement (dA has 0 rows).
    For the tangent model: features at w0, dA = A - A0, db = b - b0, cm = c0.
    """
    A, b, c = _split(P, d)
    if not tangent:
        return A, b, c, np.empty((0, d)), np.empty(0), c
    A0, b0, c0 = _split(P0, d)
    return A0, b0, c, A - A0, b - b0, c0


@jit
def _row_output(A, b, c, dA, db, cm, x, act, alpha, s_row, ds_row):
    """Output at one input; fills s(z_i) and s'(z_i) into the row buffers."""
    m, d = A.shape
    tangent = dA.shape[0] > 0
    acc = 0.0
    for i in range(m):
        z = b[i]
        for k in range(d):
            z += A[i, k] * x[k]
        s = act_value(act, z)
        ds = act_deriv(act, z)
        s_row[i] = s
        ds_row[i] = ds
        acc += c[i] * s
        if tangent:
            dz = db[i]
            for k in range(d):
                dz += dA[i, k] * x[k]
            acc += cm[i] * ds * dz
    return alpha / m * acc


@jit_parallel
def _outputs(A, b, c, dA, db, cm, X, act, alpha):
    n, d = X.shape
    m = A.shape[0]
    tangent = dA.shape[0] > 0
    f = np.empty(n)
    if n * m * d < DIRECT_MAX_WORK:
        s_row = np.empty(m)
        ds_row = np.empty(m)
        for j in range(n):
            f[j] = _row_output(A, b, c, dA, db, cm, X[j], act, alpha, s_row, ds_row)
        return f
    for j0 in range(0, n, TILE):
        j1 = min(n, j0 + TILE)
        Z = np.dot(X[j0:j1], A.T)
        DZ = np.dot(X[j0:j1], dA.T) if tangent else Z
        for r in prange(j1 - j0):
            acc = 0.0
            for i in range(m):
                z = Z[r, i] + b[i]
                acc += c[i] * act_value(act, z)
                if tangent:
                    acc += cm[i] * act_deriv(act, z) * (DZ[r, i] + db[i])
            f[j0 + r] = alpha / m * acc
    return f


@jit_parallel
def forward(P, X, act, alpha):
    """Network output f(x_j) for every row of ``X`` (eq. 1).

    Parameters
    ----------
    P : (m, D) float64 particles; X : (n, d) float64 inputs;
    act : activation id; alpha : output scale.
    """
    A, b, c, dA, db, cm = _model(P, P, X.shape[1], False)
    return _outputs(A, b, c, dA, db, cm, X, act, alpha)


@jit_parallel
def tangent_forward(P, P0, X, act, alpha):
    """Tangent-model output T f(w)(x_j) = f(w0)(x_j) + (w - w0) . grad f(w0)(x_j)."""
    A, b, c, dA, db, cm = _model(P, P0, X.shape[1], True)
    return _outputs(A, b, c, dA, db, cm, X, act, alpha)


@jit
def _accumulate_direct(X, y, A, b, c, dA, db, cm, act, loss, alpha, gscale,
                       acc_a, acc_b, acc_c):
    """Plain-loop path: returns sum_j loss_j and adds the g-weighted sums."""
    n, d = X.shape
    m = A.shape[0]
    s_row = np.empty(m)
    ds_row = np.empty(m)
    total = 0.0
    for j in range(n):
        x = X[j]
        f = _row_output(A, b, c, dA, db, cm, x, act, alpha, s_row, ds_row)
        total += loss_value(loss, f, y[j])
        g = loss_deriv(loss, f, y[j]) * gscale
        for i in range(m):
            acc_c[i] += g * s_row[i]
            h = g * ds_row[i]
            acc_b[i] += h
            for k in range(d):
                acc_a[i, k] += h * x[k]
    return total


@jit_parallel
def _accumulate_tiled(X, y, A, b, c, dA, db, cm, act, loss, alpha, gscale,
                      acc_a, acc_b, acc_c):
    """GEMM path over data tiles: returns sum_j loss_j and adds the g-weighted sums."""
    n, d = X.shape
    m = A.shape[0]
    tangent = dA.shape[0] > 0
    total = 0.0
    for j0 in range(0, n, TILE):
        j1 = min(n, j0 + TILE)
        t = j1 - j0
        S = np.dot(X[j0:j1], A.T)  # z without bias, overwritten by s(z)
        DZ = np.dot(X[j0:j1], dA.T) if tangent else S
        H = np.empty((t, m))
        g = np.empty(t)
        losses = np.empty(t)
        for r in prange(t):
            acc = 0.0
            for i in range(m):
                z = S[r, i] + b[i]
                s = act_value(act, z)
                ds = act_deriv(act, z)
                if tangent:
                    acc += cm[i] * ds * (DZ[r, i] + db[i])
                S[r, i] = s
                H[r, i] = ds
                acc += c[i] * s
            f = alpha / m * acc
            losses[r] = loss_value(loss, f, y[j0 + r])
            gr = loss_deriv(loss, f, y[j0 + r]) * gscale
            g[r] = gr
            for i in range(m):
                H[r, i] *= gr
        for r in range(t):
            total += losses[r]
        acc_c += np.dot(S.T, g)
        acc_a += np.dot(H.T, X[j0:j1])
        for i in prange(m):
            h = 0.0
            for r in range(t):
                h += H[r, i]
            acc_b[i] += h
    return total


@jit_parallel
def model_risk_and_velocity(P, P0, tangent, X, y, act, loss, alpha, lam, V):
    """Risk and velocity of the network (``tangent`` false) or of its tangent model at P0.

    Writes v = -m grad_w J into ``V`` (m, D) and returns R on (X, y).
    """
    n, d = X.shape
    m, D = P.shape
    A, b, c, dA, db, cm = _model(P, P0, d, tangent)
    acc_a = np.zeros((m, d))
    acc_b = np.zeros(m)
    acc_c = np.zeros(m)
    gscale = 1.0 / (alpha * n)
    if n * m * d < DIRECT_MAX_WORK:
        total = _accumulate_direct(X, y, A, b, c, dA, db, cm, act, loss, alpha, gscale,
                                   acc_a, acc_b, acc_c)
    else:
        total = _accumulate_tiled(X, y, A, b, c, dA, db, cm, act, loss, alpha, gscale,
                                  acc_a, acc_b, acc_c)
    for i in range(m):
        for k in range(d):
            V[i, k] = -cm[i] * acc_a[i, k] - lam * P[i, k]
        if D == d + 2:
            V[i, d] = -cm[i] * acc_b[i] - lam * P[i, d]
        V[i, D - 1] = -acc_c[i] - lam * P[i, D - 1]
    return total / n


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
