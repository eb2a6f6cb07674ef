"""Regression data for deep linear networks: a noisy linear teacher.

x ~ N(0, diag(s)^2) with scales s_i (1 by default; a spread of scales makes
the problem ill-conditioned), y = Phi* x + noise * xi, xi ~ N(0, I_k),
and Phi* (k, d) with entries N(0, 1 / d).  ``whiten`` replaces X by
X (X^T X / n)^(-1/2) before the labels are made, so that the empirical
covariance is exactly I_d and the squared loss is
|W_e - Phi|_F^2 / 2 + const, Phi the least-squares solution (the setting of
the deficiency-margin analysis).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def linear_teacher(n: int, d: int, k: int, noise: float, rng, scales=None, whiten=False,
                   teacher=None):
    """(X (n, d), Y (n, k), Phi* (k, d)) drawn from ``rng`` in that order.

    A given ``teacher`` (k, d) is used instead of drawing one.
    """
    if min(n, d, k) < 1:
        raise InputError(f"linear teacher needs n, d, k >= 1, got {n}, {d}, {k}")
    if not noise >= 0:
        raise InputError(f"data.noise = {noise!r}: expected a number >= 0")
    scales = np.ones(d) if scales is None else np.asarray(scales, dtype=np.float64)
    X = rng.standard_normal((n, d)) * scales
    if whiten:
        if n < d:
            raise InputError(f"whitened inputs need n >= d, got n = {n}, d = {d}")
        lam, v = np.linalg.eigh(X.T @ X / n)
        X = X @ (v / np.sqrt(lam)) @ v.T
    if teacher is None:
        teacher = rng.standard_normal((k, d)) / np.sqrt(d)
    Y = X @ teacher.T + noise * rng.standard_normal((n, k))
    return X, Y, teacher


def dataset(config, rng):
    """The :class:`meanfield.data.Dataset` of ``data.kind = "linear_teacher"``.

    Teacher, training set and test set come from three streams spawned from
    ``rng`` (so the teacher and the test set do not depend on ``n_train``);
    the teacher Phi* (k, d) is kept as the dataset's ``teacher``.
    """
    from ..data import Dataset

    dc, k = config.data, config.model.outputs
    teacher_rng, train_rng, test_rng = rng.spawn(3)
    teacher = teacher_rng.standard_normal((k, dc.d)) / np.sqrt(dc.d)
    x, y, _ = linear_teacher(dc.n_train, dc.d, k, dc.noise, train_rng, teacher=teacher)
    xt, yt, _ = linear_teacher(dc.n_test, dc.d, k, dc.noise, test_rng, teacher=teacher)
    return Dataset(x, y, xt, yt, teacher)
