"""Regression data for deep linear networks: a noisy linear teacher.

x ~ N(0, diag(s)^2) with scales s_i (1 by default; a spread of scales makes
the problem ill-conditioned), y = Phi* x + noise * xi, xi ~ N(0, I_k),
and Phi* (k, d) with entries N(0, 1 / d).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def linear_teacher(n: int, d: int, k: int, noise: float, rng, scales=None):
    """(X (n, d), Y (n, k), Phi* (k, d)) drawn from ``rng`` in that order."""
    if min(n, d, k) < 1:
        raise InputError(f"linear teacher needs n, d, k >= 1, got {n}, {d}, {k}")
    if not noise >= 0:
        raise InputError(f"data.noise = {noise!r}: expected a number >= 0")
    scales = np.ones(d) if scales is None else np.asarray(scales, dtype=np.float64)
    X = rng.standard_normal((n, d)) * scales
    teacher = rng.standard_normal((k, d)) / np.sqrt(d)
    Y = X @ teacher.T + noise * rng.standard_normal((n, k))
    return X, Y, teacher
