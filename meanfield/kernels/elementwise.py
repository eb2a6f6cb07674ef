"""Scalar activation and loss functions, dispatched on integer ids inside Numba code.

The ids are the single source of truth for the names in
:mod:`meanfield.activations` and :mod:`meanfield.losses`.
"""

import math

import numpy as np
from numba import prange

from .jit import jit, jit_parallel

RELU, SIGMOID, TANH, SOFTPLUS, ERF, LINEAR = 0, 1, 2, 3, 4, 5
SQUARED, LOGISTIC = 0, 1

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


@jit
def act_both(k, z):
    """(value, derivative) of activation ``k`` at ``z`` (relu'(0) = 0), sharing the
    transcendental work."""
    if k == RELU:
        return (z, 1.0) if z > 0.0 else (0.0, 0.0)
    if k == SIGMOID:
        s = sigmoid(z)
        return s, s * (1.0 - s)
    if k == TANH:
        t = math.tanh(z)
        return t, 1.0 - t * t
    if k == SOFTPLUS:
        return softplus(z), sigmoid(z)
    if k == ERF:
        return math.erf(z), _TWO_OVER_SQRT_PI * math.exp(-z * z)
    return z, 1.0


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
    z, o = Z.ravel(), out.ravel()
    for j in prange(z.shape[0]):
        s, ds = act_both(k, z[j])
        o[j] = ds if derivative else s
    return out
