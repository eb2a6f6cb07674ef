"""Teacher labels, shared by data generation and SGD on fresh samples."""

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
