r"""The convex baseline: random features with trained output weights only.

The lazy and mean-field papers compare the trained network with the same
objective minimised over the output weights alone, on a fixed sample of
:math:`M \gg m` hidden units :math:`(a_i, b_i)` drawn like the initialisation
(:func:`meanfield.scaling.init_particles`).  With

.. math::

    f(x) = \frac1M \sum_{i=1}^M c_i\, s(a_i \cdot x + b_i) = (\Phi c)(x),
    \qquad \Phi_{ji} = s(a_i \cdot x_j + b_i) / M,

the problem is the ridge regression

.. math::

    \min_c \; \frac1{2n} |\Phi c - y|^2 + \frac{\lambda_c}{2M} |c|^2,
    \qquad (\Phi^\top \Phi + \mu I)\, c = \Phi^\top y, \quad \mu = n \lambda_c / M,

equivalently kernel ridge regression :math:`f = K_M (K_M + n\lambda_c I)^{-1} y`
with the random-features kernel :math:`K_M(x, x') = \frac1M \sum_i s(z_i) s(z'_i)`,
so :math:`\lambda_c` has the same meaning for every M.  (The output scale alpha
of eq. (1) only rescales c, and :math:`J = R/\alpha^2 + \lambda |c|^2/(2M)`
minimised over c gives the same f as :math:`\lambda_c = \lambda`; it is
therefore left out.)  It is solved through the thin SVD
:math:`\Phi = U \Sigma V^\top`, :math:`c = V \,\mathrm{diag}(\sigma/(\sigma^2 + \mu))\, U^\top y`,
which costs :math:`O(\min(n, M)^2 \max(n, M))`, is stable for tiny ridges,
and with ``ridge = 0`` gives the minimum-norm least-squares solution.

Examples
--------
>>> import numpy as np
>>> from meanfield.config import Config
>>> from meanfield.data import make_dataset
>>> from meanfield.baseline import convex_baseline
>>> cfg = Config.from_dict({"data": {"d": 3, "n_train": 100, "n_test": 200}})
>>> data = make_dataset(cfg, np.random.default_rng(0))
>>> train, test, model = convex_baseline(cfg, data, M=2000, rng=np.random.default_rng(1))
>>> model.M, bool(train < test)
(2000, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from . import activations
from .errors import InputError
from .kernels import forward as _forward
from .scaling import init_particles

__all__ = ["DEFAULT_RIDGE", "RandomFeatures", "draw_features", "fit_random_features",
           "convex_baseline"]

DEFAULT_RIDGE = 1e-8
"""Default lambda_c: a tiny ridge that only stabilises near-singular problems."""

_RCOND = 1e-13
"""Relative singular-value cut-off when ``ridge == 0`` (minimum-norm least squares)."""


@dataclass
class RandomFeatures:
    r"""A fitted random-features model :math:`f(x) = \frac1M \sum_i c_i s(a_i \cdot x + b_i)`.

    Attributes
    ----------
    features : ndarray, shape (M, d + 1) or (M, d)
        Fixed hidden units, rows ``[a, b]`` with a bias, ``[a]`` without.
    c : ndarray, shape (M,)
        Fitted output weights.
    activation : str
    bias : bool
    ridge : float
        The lambda_c it was fitted with.
    """

    features: np.ndarray
    c: np.ndarray
    activation: str
    bias: bool
    ridge: float = 0.0

    @property
    def M(self) -> int:
        """Number of random features."""
        return self.features.shape[0]

    @property
    def particles(self) -> np.ndarray:
        """The model as (M, D) particles ``[a, [b,] c]`` of eq. (1) with alpha = 1."""
        return np.ascontiguousarray(np.hstack([self.features, self.c[:, None]]))

    def predict(self, X) -> np.ndarray:
        """f(x_j) for every row of ``X`` (n, d).

        Examples
        --------
        >>> import numpy as np
        >>> rf = RandomFeatures(np.eye(2), np.array([2.0, 4.0]), "linear", False)
        >>> rf.predict(np.array([[1.0, 1.0]]))
        array([3.])
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        d = self.features.shape[1] - (1 if self.bias else 0)
        if X.ndim != 2 or X.shape[1] != d:
            raise InputError(f"X must have shape (n, {d}), got {X.shape}")
        return _forward(self.particles, X, activations.IDS[self.activation], 1.0)


def draw_features(config, M, rng):
    """M hidden units (a_i, [b_i]) drawn like the initialisation of ``config``.

    Uses :func:`meanfield.scaling.init_particles` with ``model.m = M`` (and no
    symmetric doubling), so ``init.a``, ``init.b`` and ``init.tau`` apply.

    Returns
    -------
    ndarray, shape (M, d + 1) with a bias, (M, d) without.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.config import Config
    >>> cfg = Config.from_dict({"model": {"bias": True}, "data": {"d": 3}})
    >>> draw_features(cfg, 5, np.random.default_rng(0)).shape
    (5, 4)
    """
    M = _check_M(M)
    cfg = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, m=M),
        init=dataclasses.replace(config.init, symmetric=False))
    return np.ascontiguousarray(init_particles(cfg, rng)[:, :-1])


def _check_M(M):
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)) or M < 1:
        raise InputError(f"M (number of random features) must be an integer >= 1, got {M!r}")
    return int(M)


def _check_ridge(ridge):
    try:
        ridge = float(ridge)
    except (TypeError, ValueError):
        raise InputError(f"ridge must be a number, got {ridge!r}") from None
    if not (ridge >= 0.0 and np.isfinite(ridge)):
        raise InputError(f"ridge must be finite and >= 0, got {ridge!r}")
    return ridge


def fit_random_features(features, X, y, activation, ridge=DEFAULT_RIDGE):
    r"""Fit the output weights c of fixed random features by ridge regression.

    Minimises :math:`\frac1{2n}|\Phi c - y|^2 + \frac{\lambda_c}{2M}|c|^2`
    with :math:`\Phi_{ji} = s(a_i \cdot x_j + b_i)/M` (see the module docstring).

    Parameters
    ----------
    features : ndarray, shape (M, d + 1) or (M, d)
        Rows ``[a, b]`` (bias) or ``[a]``; the bias is inferred from the width.
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    activation : str
    ridge : float
        :math:`\lambda_c \ge 0`; 0 gives the minimum-norm least-squares fit.

    Returns
    -------
    RandomFeatures

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> F = rng.standard_normal((30, 2)); X = rng.standard_normal((10, 2))
    >>> rf = fit_random_features(F, X, X[:, 0], "relu", ridge=0.0)
    >>> bool(np.allclose(rf.predict(X), X[:, 0]))
    True
    """
    if activation not in activations.IDS:
        raise InputError(
            f"unknown activation {activation!r} (known: {', '.join(activations.NAMES)})")
    ridge = _check_ridge(ridge)
    F = np.ascontiguousarray(features, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if F.ndim != 2 or X.ndim != 2 or y.ndim != 1:
        raise InputError(
            f"features, X, y must be 2-D, 2-D, 1-D; got shapes {F.shape}, {X.shape}, {y.shape}")
    n, d = X.shape
    if F.shape[1] not in (d, d + 1):
        raise InputError(f"features have {F.shape[1]} columns, expected d = {d} or d + 1")
    if y.shape[0] != n:
        raise InputError(f"X has {n} rows but y has {y.shape[0]}")
    M = F.shape[0]
    bias = F.shape[1] == d + 1
    Z = X @ F[:, :d].T
    if bias:
        Z += F[:, d]
    Phi = activations.value(activation, Z)
    Phi /= M
    U, sig, Vt = scipy.linalg.svd(Phi, full_matrices=False, lapack_driver="gesdd")
    mu = n * ridge / M
    if mu > 0.0:
        gain = sig / (sig * sig + mu)
    else:
        keep = sig > _RCOND * (sig[0] if sig.size else 0.0)
        gain = np.where(keep, 1.0 / np.where(keep, sig, 1.0), 0.0)
    c = Vt.T @ (gain * (U.T @ y))
    return RandomFeatures(F, np.ascontiguousarray(c), activation, bias, ridge)


def convex_baseline(config, data, M, ridge=DEFAULT_RIDGE, rng=None):
    r"""Train and test loss of the convex (random-features) baseline of a run.

    Draws M hidden units like the initialisation of ``config``
    (:func:`draw_features`), fits c on ``data.x_train, data.y_train`` with
    :func:`fit_random_features` and evaluates the squared loss
    :math:`\frac1n \sum_j (f(x_j) - y_j)^2 / 2` (without the ridge term).

    Parameters
    ----------
    config : Config
        Uses ``model.activation``, ``model.bias``, ``data.d``, ``[init]`` and
        ``loss.name``, which must be ``"squared"``.
    data : Dataset
    M : int
        Number of random features (typically much larger than ``model.m``).
    ridge : float, optional
        lambda_c >= 0.
    rng : numpy.random.Generator or int, optional
        Source of the features; defaults to ``default_rng(config.run.seed)``.

    Returns
    -------
    train_loss, test_loss : float
    model : RandomFeatures

    Raises
    ------
    InputError
        For a loss other than squared, M < 1, a negative ridge or invalid data.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.config import Config
    >>> from meanfield.data import make_dataset
    >>> cfg = Config.from_dict({"data": {"d": 2, "n_train": 50, "n_test": 50}})
    >>> data = make_dataset(cfg, np.random.default_rng(0))
    >>> train, test, rf = convex_baseline(cfg, data, 500, rng=1)
    >>> rf.c.shape
    (500,)
    """
    if config.loss.name != "squared":
        raise InputError(
            f"convex_baseline: loss.name = {config.loss.name!r} is not supported "
            f"(only 'squared')")
    M = _check_M(M)
    ridge = _check_ridge(ridge)
    data = data.validated(config)
    if rng is None:
        rng = config.run.seed
    rng = np.random.default_rng(rng)
    F = draw_features(config, M, rng)
    model = fit_random_features(F, data.x_train, data.y_train, config.model.activation, ridge)
    train = 0.5 * float(np.mean((model.predict(data.x_train) - data.y_train) ** 2))
    test = 0.5 * float(np.mean((model.predict(data.x_test) - data.y_test) ** 2))
    return train, test, model
