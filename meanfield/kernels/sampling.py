"""Teacher labels and fresh input samples, shared by data generation and SGD."""

import math

import numpy as np

from .jit import jit, jit_parallel
from .elementwise import LOGISTIC
from .network import forward


@jit
def make_labels(fstar, xi, noise, loss, y):
    """Labels from teacher outputs: y = f* + noise * xi, or its sign for logistic loss."""
    for j in range(fstar.shape[0]):
        v = fstar[j] + noise * xi[j]
        if loss == LOGISTIC:
            v = 1.0 if v >= 0.0 else -1.0
        y[j] = v


@jit_parallel
def teacher_labels(T, tact, X, xi, noise, loss):
    """Labels of inputs ``X`` under the teacher ``T`` (rows [a, c], f* = mean_j c_j s(a_j . x))."""
    y = np.empty(X.shape[0])
    make_labels(forward(T, X, tact, 1.0), xi, noise, loss, y)
    return y


@jit
def sample_inputs(X, sphere):
    """Fill ``X`` with N(0, I_d) rows, or rows uniform on the unit sphere (Numba's RNG)."""
    n, d = X.shape
    for j in range(n):
        r2 = 0.0
        for k in range(d):
            v = np.random.standard_normal()
            X[j, k] = v
            r2 += v * v
        if sphere:
            inv = 1.0 / math.sqrt(r2)
            for k in range(d):
                X[j, k] *= inv
