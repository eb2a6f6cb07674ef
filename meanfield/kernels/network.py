r"""Forward pass and particle velocity of the two-layer network (eqs. 1-3).

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

Two paths compute the same sums.  Small systems run plain loops (no BLAS
call overhead); large ones tile over the data and spend their time in two
GEMMs per tile, ``Z = X_t A^T`` and ``H^T X_t``, with the elementwise work
fused in between, so memory beyond the inputs is O(tile * m).  Every
reduction is done in a fixed order, so results do not depend on the number
of threads.
"""

import numpy as np
from numba import njit, prange

from .elementwise import act_deriv, act_value, loss_deriv, loss_value

TILE = 256
"""Rows of data per tile on the GEMM path."""

DIRECT_MAX_WORK = 1 << 16
"""Systems with n * m * d below this use the plain-loop path."""


@njit(cache=True)
def _split(P, d):
    """Contiguous copies of a (m, d), b (m,) (zeros without bias) and c (m,)."""
    m, D = P.shape
    A = np.ascontiguousarray(P[:, :d])
    b = P[:, d].copy() if D == d + 2 else np.zeros(m)
    c = P[:, D - 1].copy()
    return A, b, c


@njit(cache=True)
def _row_output(A, b, c, x, act, alpha, s_row, ds_row):
    """f(x) for one input; fills s(z_i) and s'(z_i) into the row buffers."""
    m, d = A.shape
    acc = 0.0
    for i in range(m):
        z = b[i]
        for k in range(d):
            z += A[i, k] * x[k]
        s = act_value(act, z)
        s_row[i] = s
        ds_row[i] = act_deriv(act, z)
        acc += c[i] * s
    return alpha / m * acc


@njit(cache=True, parallel=True)
def forward(P, X, act, alpha):
    """Network output f(x_j) for every row of ``X`` (eq. 1).

    Parameters
    ----------
    P : (m, D) float64 particles; X : (n, d) float64 inputs;
    act : activation id; alpha : output scale.
    """
    n, d = X.shape
    A, b, c = _split(P, d)
    m = A.shape[0]
    f = np.empty(n)
    if n * m * d < DIRECT_MAX_WORK:
        s_row = np.empty(m)
        ds_row = np.empty(m)
        for j in range(n):
            f[j] = _row_output(A, b, c, X[j], act, alpha, s_row, ds_row)
        return f
    for j0 in range(0, n, TILE):
        j1 = min(n, j0 + TILE)
        Z = np.dot(X[j0:j1], A.T)
        for r in prange(j1 - j0):
            acc = 0.0
            for i in range(m):
                acc += c[i] * act_value(act, Z[r, i] + b[i])
            f[j0 + r] = alpha / m * acc
    return f


@njit(cache=True)
def _accumulate_direct(X, y, A, b, c, act, loss, alpha, gscale, acc_a, acc_b, acc_c):
    """Plain-loop path: returns sum_j loss_j and adds the g-weighted sums."""
    n, d = X.shape
    m = A.shape[0]
    s_row = np.empty(m)
    ds_row = np.empty(m)
    total = 0.0
    for j in range(n):
        x = X[j]
        f = _row_output(A, b, c, x, act, alpha, s_row, ds_row)
        total += loss_value(loss, f, y[j])
        g = loss_deriv(loss, f, y[j]) * gscale
        for i in range(m):
            acc_c[i] += g * s_row[i]
            h = g * ds_row[i]
            acc_b[i] += h
            for k in range(d):
                acc_a[i, k] += h * x[k]
    return total


@njit(cache=True, parallel=True)
def _accumulate_tiled(X, y, A, b, c, act, loss, alpha, gscale, acc_a, acc_b, acc_c):
    """GEMM path over data tiles: returns sum_j loss_j and adds the g-weighted sums."""
    n, d = X.shape
    m = A.shape[0]
    total = 0.0
    for j0 in range(0, n, TILE):
        j1 = min(n, j0 + TILE)
        t = j1 - j0
        S = np.dot(X[j0:j1], A.T)  # z without bias, overwritten by s(z)
        H = np.empty((t, m))
        g = np.empty(t)
        losses = np.empty(t)
        for r in prange(t):
            acc = 0.0
            for i in range(m):
                z = S[r, i] + b[i]
                s = act_value(act, z)
                S[r, i] = s
                H[r, i] = act_deriv(act, z)
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


@njit(cache=True)
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
    n, d = X.shape
    m, D = P.shape
    A, b, c = _split(P, d)
    acc_a = np.zeros((m, d))
    acc_b = np.zeros(m)
    acc_c = np.zeros(m)
    gscale = 1.0 / (alpha * n)
    if n * m * d < DIRECT_MAX_WORK:
        total = _accumulate_direct(X, y, A, b, c, act, loss, alpha, gscale, acc_a, acc_b, acc_c)
    else:
        total = _accumulate_tiled(X, y, A, b, c, act, loss, alpha, gscale, acc_a, acc_b, acc_c)
    for i in range(m):
        for k in range(d):
            V[i, k] = -c[i] * acc_a[i, k] - lam * P[i, k]
        if D == d + 2:
            V[i, d] = -c[i] * acc_b[i] - lam * P[i, d]
        V[i, D - 1] = -acc_c[i] - lam * P[i, D - 1]
    return total / n


@njit(cache=True)
def risk(P, X, y, act, loss, alpha):
    """Empirical risk R = mean_j loss(f(x_j), y_j)."""
    f = forward(P, X, act, alpha)
    total = 0.0
    for j in range(X.shape[0]):
        total += loss_value(loss, f[j], y[j])
    return total / X.shape[0]
