r"""Gram-Gauss-Newton (Cai et al. 2019): the batch Jacobian and whole chunks of steps.

One step on a batch :math:`(x_j, y_j)_{j \le b}` of the training set is

.. math::

    P \leftarrow P - \eta\, J^\top (J J^\top + \lambda I)^{-1} (f(P) - y),

with f the network output of eq. (1) on the batch and :math:`J = \partial f /
\partial \mathrm{vec}(P)` its (b, m D) Jacobian (``vec`` row-major: particle i's
coordinates at columns i D, ..., i D + D - 1):

.. math::

    \frac{\partial f_j}{\partial a_i} = \frac{\alpha}{m} c_i s'(z_{ij}) x_j, \quad
    \frac{\partial f_j}{\partial b_i} = \frac{\alpha}{m} c_i s'(z_{ij}), \quad
    \frac{\partial f_j}{\partial c_i} = \frac{\alpha}{m} s(z_{ij}),
    \qquad z_{ij} = a_i \cdot x_j + b_i.

:math:`J` is never formed: it factors through S = s(Z) and U = c s'(Z) (b, m), so
:math:`J J^\top` (the batch's empirical NTK of f, :math:`(\alpha^2/m) K`) is three
GEMMs (:func:`gram`) and :math:`J^\top u` two GEMVs and a GEMM, O(b^2 (m + d) + b m d)
work and O(b m) memory instead of O(b^2 m D) and O(b m D).  The b x b system is solved
by LAPACK's Cholesky factorisation (``potrf``, as ``np.linalg.cholesky`` compiles) and
two triangular substitutions, O(b^3).  A whole chunk of steps is one compiled call.
"""

from collections import namedtuple

import numpy as np
from numba import prange

from .blas import gemm, gemv_t
from .elementwise import act_rows
from .jit import jit, jit_parallel
from .network import model_risk_and_velocity, workspace
from .training import DIVERGED, _due, _ends, record_row

Steps = namedtuple("Steps", ["index", "damping"])
Steps.__doc__ = """What GGN steps on: the training rows of each step's batch ``index``
(nsteps, b) int64, or (0, n) for the full batch, and the damping lambda >= 0."""


@jit_parallel
def features(P, model, X, S, U, f):
    r"""The factors of the batch Jacobian, and the outputs: S = s(Z), U = c s'(Z), f.

    With :math:`Z = X A^\top + b` (n, m), row j of J is :math:`\frac{\alpha}{m}` times
    :math:`(U_{ji} x_j, U_{ji}, S_{ji})` for each particle i.

    Parameters
    ----------
    P : (m, D) particles; model : :class:`~.structs.Model` (``act`` and ``alpha`` are
    read); X : (n, d) C-contiguous inputs; S, U : (n, m) and f : (n,) outputs.
    """
    m, D = P.shape
    n, d = X.shape
    gemm(False, True, 1.0, X, P[:, :d], 0.0, S)
    scale = model.alpha / m
    for j in prange(n):
        if D == d + 2:
            for i in range(m):
                S[j, i] += P[i, d]
        act_rows(model.act, S, j, U, j, 1)
        total = 0.0
        for i in range(m):
            c = P[i, D - 1]
            total += c * S[j, i]
            U[j, i] *= c
        f[j] = scale * total


@jit
def gram(X, S, U, scale, bias, G):
    r""":math:`G = J J^\top = (\alpha/m)^2 [S S^\top + (U U^\top) \odot (X X^\top + 1_{bias})]`
    (b, b), from the factors of :func:`features` (``scale`` = alpha / m): three GEMMs,
    O(b^2 (m + d)), never the (b, m D) Jacobian itself."""
    b = X.shape[0]
    K = np.empty((b, b))
    gemm(False, True, 1.0, X, X, 0.0, K)
    gemm(False, True, 1.0, U, U, 0.0, G)
    for j in range(b):
        for k in range(b):
            G[j, k] *= K[j, k] + bias
    gemm(False, True, 1.0, S, S, 1.0, G)
    for j in range(b):
        for k in range(b):
            G[j, k] *= scale * scale


@jit
def cholesky_solve(G, damping, r):
    """u = (G + damping I)^{-1} r for a symmetric positive (semi-)definite G (b, b).

    LAPACK's Cholesky factor L of G + damping I (raises ``LinAlgError`` if the matrix
    is not positive definite), then L w = r and L^T u = w by substitution.
    """
    b = r.shape[0]
    for j in range(b):
        G[j, j] += damping
    L = np.linalg.cholesky(G)
    u = np.empty(b)
    for j in range(b):
        s = r[j]
        for k in range(j):
            s -= L[j, k] * u[k]
        u[j] = s / L[j, j]
    for j in range(b - 1, -1, -1):
        s = u[j]
        for k in range(j + 1, b):
            s -= L[k, j] * u[k]
        u[j] = s / L[j, j]
    return u


@jit_parallel
def ggn_step(P, model, X, y, damping, lr, S, U):
    r"""One GGN step on the batch (X, y) in place; returns the batch risk before it.

    ``S``, ``U`` (b, m) are buffers.  With u = (J J^T + damping I)^{-1} (f - y), the
    step :math:`J^\top u` is :math:`\frac{\alpha}{m}(c_i \sum_j u_j s'(z_{ij}) x_j,
    c_i \sum_j u_j s'(z_{ij}), \sum_j u_j s(z_{ij}))` per particle: two GEMVs and a
    GEMM.  The risk is :math:`\frac{1}{2b} \sum_j (f_j - y_j)^2`; when it is not finite
    the particles are left as they are.
    """
    m, D = P.shape
    b, d = X.shape
    f = np.empty(b)
    features(P, model, X, S, U, f)
    r = f - y
    R = 0.5 * np.dot(r, r) / b
    if not R <= DIVERGED:
        return R
    G = np.empty((b, b))
    gram(X, S, U, model.alpha / m, 1.0 if D == d + 2 else 0.0, G)
    u = cholesky_solve(G, damping, r) * (lr * model.alpha / m)
    gc, gb, ga = np.empty(m), np.empty(m), np.empty((m, d))
    gemv_t(1.0, S, u, 0.0, gc)
    gemv_t(1.0, U, u, 0.0, gb)
    for j in prange(b):
        for i in range(m):
            U[j, i] *= u[j]
    gemm(True, False, 1.0, U, X, 0.0, ga)
    for i in prange(m):
        for k in range(d):
            P[i, k] -= ga[i, k]
        if D == d + 2:
            P[i, d] -= gb[i]
        P[i, D - 1] -= gc[i]
    return R


@jit
def _gather(data, index, s, Xb, yb):
    """The batch of step s: Xb, yb <- rows ``index[s]`` of the training set."""
    for j in range(Xb.shape[0]):
        row = index[s, j]
        yb[j] = data.y[row]
        for k in range(Xb.shape[1]):
            Xb[j, k] = data.X[row, k]


@jit_parallel
def ggn_chunk(P, model, data, pop, loop, steps, obs):
    """``loop.nsteps`` GGN steps (:class:`Steps`) with ``loop.lr`` as eta, in place.

    Arguments and return value as :func:`meanfield.kernels.training.gd_chunk`.  At a
    record step the recorded loss and velocity are those of the full training set
    (the velocity of J, eq. 2-3, so that ``velocity_sq`` means what it means for GD).
    """
    m = P.shape[0]
    n, d = data.X.shape
    full = steps.index.shape[0] == 0
    b = n if full else steps.index.shape[1]
    S, U = np.empty((b, m)), np.empty((b, m))
    Xb = data.X if full else np.empty((b, d))
    yb = data.y if full else np.empty(b)
    Vf = np.empty_like(P)
    wsf = workspace(n if obs.shape[0] > 0 else 0, m, d, False)
    row = 0
    for s in range(loop.nsteps + 1):
        if _ends(loop, s):
            break
        if _due(loop, s):
            R = model_risk_and_velocity(P, model, data.X, data.y, Vf, wsf)
            record_row(obs[row], P, model, data, pop, loop, R, Vf)
            row += 1
        if s == loop.nsteps:
            break
        if not full:
            _gather(data, steps.index, s, Xb, yb)
        if not ggn_step(P, model, Xb, yb, steps.damping, loop.lr, S, U) <= DIVERGED:
            return s
    return loop.nsteps
