"""Scalar activation and loss functions, dispatched on integer ids inside Numba code.

The ids are the single source of truth for the names in
:mod:`meanfield.activations` and :mod:`meanfield.losses`.
"""

import math

import numpy as np

from . import vecmath as vm
from .jit import jit, jit_inline, jit_sum, jit_vector

RELU, SIGMOID, TANH, SOFTPLUS, ERF, LINEAR = 0, 1, 2, 3, 4, 5
SQUARED, LOGISTIC = 0, 1
ACTIVATION_IDS = {"relu": RELU, "sigmoid": SIGMOID, "tanh": TANH, "softplus": SOFTPLUS,
                  "erf": ERF, "linear": LINEAR}
LOSS_IDS = {"squared": SQUARED, "logistic": LOGISTIC}

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@jit
def sigmoid(z):
    """Logistic function 1 / (1 + e^-z), evaluated without overflow."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@jit
def softplus(z):
    """log(1 + e^z), evaluated without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@jit_inline
def _logistic(z):
    """(1 / (1 + e^-z), e^-|z|), without overflow and without a branch around the exp."""
    e = vm.exp(-abs(z))
    p = 1.0 / (1.0 + e)
    return (p if z >= 0.0 else e * p), e


@jit_vector
def act_rows(k, S, r, H, rh, rows):
    """In place over ``rows`` rows of 2-D arrays: ``S[r + q] <- act_k(S[r + q])`` and
    ``H[rh + q] <- act_k'(S[r + q])`` for q < rows (relu'(0) = 0).

    The branch on ``k`` is taken once, outside the loops: each activation has
    its own straight-line loop, which LLVM vectorises (the transcendental
    functions are those of :mod:`meanfield.kernels.vecmath`).  Rows are indexed
    in place, not taken as views: a view costs a reference count, per row.  (A
    call costs some 20 ns, as this function is too large to inline: short rows
    go in one call.)
    """
    n = S.shape[1]
    if k == RELU:
        for a in range(r, r + rows):
            b = rh + a - r
            for i in range(n):
                z = S[a, i]
                pos = z > 0.0
                S[a, i] = z if pos else 0.0
                H[b, i] = 1.0 if pos else 0.0
    elif k == SIGMOID:
        for a in range(r, r + rows):
            b = rh + a - r
            for i in range(n):
                v, e = _logistic(S[a, i])
                S[a, i] = v
                H[b, i] = v * (1.0 - v)
    elif k == TANH:
        for a in range(r, r + rows):
            b = rh + a - r
            for i in range(n):
                t = vm.tanh(S[a, i])
                S[a, i] = t
                H[b, i] = 1.0 - t * t
    elif k == SOFTPLUS:
        for a in range(r, r + rows):
            b = rh + a - r
            for i in range(n):
                z = S[a, i]
                v, e = _logistic(z)
                S[a, i] = max(z, 0.0) + vm.log1p(e)
                H[b, i] = v
    elif k == ERF:
        for a in range(r, r + rows):
            b = rh + a - r
            for i in range(n):
                z = S[a, i]
                S[a, i] = vm.erf(z)
                H[b, i] = _TWO_OVER_SQRT_PI * vm.exp(-z * z)
    else:
        for b in range(rh, rh + rows):
            for i in range(n):
                H[b, i] = 1.0


@jit_inline
def loss_value(k, f, y):
    """Loss ``k``: squared (f - y)^2 / 2 or logistic log(1 + exp(-y f))."""
    if k == SQUARED:
        r = f - y
        return 0.5 * r * r
    return softplus(-y * f)


@jit_inline
def loss_deriv(k, f, y):
    """Derivative of loss ``k`` with respect to ``f``."""
    if k == SQUARED:
        return f - y
    return -y * sigmoid(-y * f)


@jit
def activate(k, z, derivative):
    """Activation ``k`` (or its derivative) applied elementwise to a 1-D array."""
    n = z.shape[0]
    S = z.copy().reshape((1, n))
    H = np.empty((1, n))
    act_rows(k, S, 0, H, 0, 1)
    return (H if derivative else S)[0]


@jit_sum
def dot_rows(U, a, V, r):
    """sum_i U[a, i] V[r, i] (rows of 2-D arrays), in vector partial sums (see
    :data:`~.jit.jit_sum`)."""
    total = 0.0
    for i in range(V.shape[1]):
        total += U[a, i] * V[r, i]
    return total
