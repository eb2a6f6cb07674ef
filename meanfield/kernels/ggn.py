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

:math:`J J^\top` (the batch's empirical NTK of f, :math:`(\alpha^2/m) K`) is one BLAS
GEMM, the b x b system is solved by LAPACK's Cholesky factorisation (``potrf``, as
``np.linalg.cholesky`` compiles) and two triangular substitutions, and the step
:math:`J^\top u` is one GEMV: O(b^2 m D + b^3) per step, no Python between steps.
"""

from collections import namedtuple

import numpy as np
from numba import prange

from .blas import gemm, gemv_t
from .elementwise import activate
from .jit import jit, jit_parallel
from .network import model_risk_and_velocity, workspace
from .training import DIVERGED, _due, _ends, record_row

Steps = namedtuple("Steps", ["index", "damping"])
Steps.__doc__ = """What GGN steps on: the training rows of each step's batch ``index``
(nsteps, b) int64, or (0, n) for the full batch, and the damping lambda >= 0."""


@jit_parallel
def jacobian(P, model, X, J, f):
    """Outputs f (n,) of the network (eq. 1) at the rows of X and their Jacobian J (n, m D).

    Parameters
    ----------
    P : (m, D) particles; model : :class:`~.structs.Model` (``act`` and ``alpha`` are
    read); X : (n, d) C-contiguous inputs; J : (n, m D) and f : (n,) outputs.
    """
    m, D = P.shape
    n, d = X.shape
    Z = np.empty((n, m))
    gemm(False, True, 1.0, X, P[:, :d], 0.0, Z)
    if D == d + 2:
        for j in prange(n):
            for i in range(m):
                Z[j, i] += P[i, d]
    S = activate(model.act, Z, False)
    H = activate(model.act, Z, True)
    scale = model.alpha / m
    for j in prange(n):
        total = 0.0
        for i in range(m):
            c = P[i, D - 1]
            total += c * S[j, i]
            h = scale * c * H[j, i]
            for k in range(d):
                J[j, i * D + k] = h * X[j, k]
            if D == d + 2:
                J[j, i * D + d] = h
            J[j, i * D + D - 1] = scale * S[j, i]
        f[j] = scale * total


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
def ggn_step(P, model, X, y, damping, lr, J, f):
    r"""One GGN step on the batch (X, y) in place; returns the batch risk before it.

    ``J`` (b, m D) and ``f`` (b,) are buffers.  The risk is
    :math:`\frac{1}{2b} \sum_j (f_j - y_j)^2`; when it is not finite the particles are
    left as they are.
    """
    m, D = P.shape
    b = X.shape[0]
    jacobian(P, model, X, J, f)
    r = np.empty(b)
    total = 0.0
    for j in range(b):
        r[j] = f[j] - y[j]
        total += r[j] * r[j]
    R = 0.5 * total / b
    if not R <= DIVERGED:
        return R
    G = np.empty((b, b))
    gemm(False, True, 1.0, J, J, 0.0, G)
    u = cholesky_solve(G, damping, r)
    g = np.empty(m * D)
    gemv_t(1.0, J, u, 0.0, g)
    for i in prange(m):
        for k in range(D):
            P[i, k] -= lr * g[i * D + k]
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
    m, D = P.shape
    n, d = data.X.shape
    full = steps.index.shape[0] == 0
    b = n if full else steps.index.shape[1]
    J = np.empty((b, m * D))
    f = np.empty(b)
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
        if not ggn_step(P, model, Xb, yb, steps.damping, loop.lr, J, f) <= DIVERGED:
            return s
    return loop.nsteps
