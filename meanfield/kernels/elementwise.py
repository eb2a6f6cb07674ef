"""Scalar activation and loss functions, dispatched on integer ids inside Numba code.

The ids are the single source of truth for the names in
:mod:`meanfield.activations` and :mod:`meanfield.losses`.
"""

import math

import numpy as np

from . import vecmath as vm
from .jit import jit, jit_vector

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


@jit_vector
def act_rows(k, S, H, r):
    """In place over row r of 2-D arrays: ``S[r] <- act_k(S[r])``, ``H[r] <- act_k'(S[r])``
    (relu'(0) = 0).

    The branch on ``k`` is taken once, outside the loops: each activation has
    its own straight-line loop, which LLVM vectorises (the transcendental
    functions are those of :mod:`meanfield.kernels.vecmath`).  Rows are indexed
    in place, not taken as views: a view costs a reference count, per row.
    """
    n = S.shape[1]
    if k == RELU:
        for i in range(n):
            z = S[r, i]
            pos = z > 0.0
            S[r, i] = z if pos else 0.0
            H[r, i] = 1.0 if pos else 0.0
    elif k == SIGMOID:
        for i in range(n):
            z = S[r, i]
            e = vm.exp(-abs(z))
            q = 1.0 / (1.0 + e)
            v = q if z >= 0.0 else e * q
            S[r, i] = v
            H[r, i] = v * (1.0 - v)
    elif k == TANH:
        for i in range(n):
            t = vm.tanh(S[r, i])
            S[r, i] = t
            H[r, i] = 1.0 - t * t
    elif k == SOFTPLUS:
        for i in range(n):
            z = S[r, i]
            e = vm.exp(-abs(z))
            q = 1.0 / (1.0 + e)
            S[r, i] = max(z, 0.0) + vm.log1p(e)
            H[r, i] = q if z >= 0.0 else e * q
    elif k == ERF:
        for i in range(n):
            z = S[r, i]
            S[r, i] = vm.erf(z)
            H[r, i] = _TWO_OVER_SQRT_PI * vm.exp(-z * z)
    else:
        for i in range(n):
            H[r, i] = 1.0


@jit
def loss_value(k, f, y):
    """Loss ``k``: squared (f - y)^2 / 2 or logistic log(1 + exp(-y f))."""
    if k == SQUARED:
        r = f - y
        return 0.5 * r * r
    return softplus(-y * f)


@jit
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
    act_rows(k, S, H, 0)
    return (H if derivative else S)[0]


@jit
def dot_rows(U, a, V, r):
    """sum_i U[a, i] V[r, i] (rows of 2-D arrays), in four interleaved partial sums (a fixed
    order)."""
    n = V.shape[1]
    n4 = n - n % 4
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, n4, 4):
        s0 += U[a, i] * V[r, i]
        s1 += U[a, i + 1] * V[r, i + 1]
        s2 += U[a, i + 2] * V[r, i + 2]
        s3 += U[a, i + 3] * V[r, i + 3]
    for i in range(n4, n):
        s0 += U[a, i] * V[r, i]
    return (s0 + s1) + (s2 + s3)
