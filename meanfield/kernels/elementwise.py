"""Scalar activation and loss functions, dispatched on integer ids inside Numba code.

The ids are the single source of truth for the names in
:mod:`meanfield.activations` and :mod:`meanfield.losses`.
"""

import math

import numpy as np
from numba import prange

from . import vecmath as vm
from .jit import jit, jit_parallel, jit_vector

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
def act_rows(k, s, ds):
    """In place over 1-D arrays: ``s <- act_k(s)``, ``ds <- act_k'(s)`` (relu'(0) = 0).

    The branch on ``k`` is taken once, outside the loops: each activation has
    its own straight-line loop, which LLVM vectorises (the transcendental
    functions are those of :mod:`meanfield.kernels.vecmath`).
    """
    n = s.shape[0]
    if k == RELU:
        for i in range(n):
            z = s[i]
            pos = z > 0.0
            s[i] = z if pos else 0.0
            ds[i] = 1.0 if pos else 0.0
    elif k == SIGMOID:
        for i in range(n):
            z = s[i]
            e = vm.exp(-abs(z))
            q = 1.0 / (1.0 + e)
            v = q if z >= 0.0 else e * q
            s[i] = v
            ds[i] = v * (1.0 - v)
    elif k == TANH:
        for i in range(n):
            t = vm.tanh(s[i])
            s[i] = t
            ds[i] = 1.0 - t * t
    elif k == SOFTPLUS:
        for i in range(n):
            z = s[i]
            e = vm.exp(-abs(z))
            q = 1.0 / (1.0 + e)
            s[i] = max(z, 0.0) + vm.log1p(e)
            ds[i] = q if z >= 0.0 else e * q
    elif k == ERF:
        for i in range(n):
            z = s[i]
            s[i] = vm.erf(z)
            ds[i] = _TWO_OVER_SQRT_PI * vm.exp(-z * z)
    else:
        for i in range(n):
            ds[i] = 1.0


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


@jit_parallel
def activate(k, Z, derivative):
    """Activation ``k`` (or its derivative) applied elementwise to a C-contiguous array."""
    out = np.empty_like(Z)
    ds = np.empty_like(Z)
    o, h = out.ravel(), ds.ravel()
    o[:] = Z.ravel()
    n = o.shape[0]
    rows = (n + 4095) // 4096
    for r in prange(rows):
        act_rows(k, o[r * 4096:min(n, (r + 1) * 4096)], h[r * 4096:min(n, (r + 1) * 4096)])
    return ds if derivative else out


@jit
def dot(u, v):
    """sum_i u_i v_i over 1-D arrays, in four interleaved partial sums (a fixed order)."""
    n = u.shape[0]
    n4 = n - n % 4
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, n4, 4):
        s0 += u[i] * v[i]
        s1 += u[i + 1] * v[i + 1]
        s2 += u[i + 2] * v[i + 2]
        s3 += u[i + 3] * v[i + 3]
    for i in range(n4, n):
        s0 += u[i] * v[i]
    return (s0 + s1) + (s2 + s3)
