r"""Convergence of over-parameterised GD predicted from the Gram spectrum.

In the NTK regime the training residual :math:`r_k = f_k - y` on the n training points
follows the linear recursion :math:`r_{k+1} = (I - \eta H) r_k` (Du et al. 2019; Arora et
al. 2019), so

.. math::

    |r_k|^2 = \sum_i (1 - \eta \lambda_i)^{2k} (v_i \cdot r_0)^2

over the eigenpairs :math:`(\lambda_i, v_i)` of H, and Du et al.'s bound is
:math:`|r_k|^2 \le (1 - \eta \lambda_0 / 2)^k |r_0|^2` with
:math:`\lambda_0 = \lambda_{\min}(H^\infty)`.

Time units.  With the package's kernel H (:func:`meanfield.lazy.empirical_ntk`,
:func:`meanfield.lazy.analytic_ntk`, :func:`meanfield.gram.h_inf`) and the step of
eq. (3), one GD step moves the residual by :math:`-(\text{lr}/n) H r` whatever alpha and m
(the m of the velocity and the :math:`1/\alpha^2` of J cancel the :math:`\alpha/m` of f),
so :math:`\eta = \text{lr} / n` and k is the step count, :math:`k = t / \text{lr}`.  The
squared-loss training risk of the package is :math:`R = |r|^2 / (2n)`.
"""

from __future__ import annotations

import numpy as np

from .. import validate
from ..errors import InputError
from ..gram import gram_spectrum

__all__ = ["predicted_residual", "linear_rate_bound"]


def _steps(steps):
    k = np.asarray(steps)
    if k.dtype.kind not in "iu" or np.any(k < 0):
        raise InputError(f"steps must be integers >= 0, got {steps!r}")
    return k.astype(np.float64)


def predicted_residual(H, y, lr, steps, f0=None):
    r"""Predicted squared training residual :math:`|f_k - y|^2` after k GD steps.

    .. math::

        |f_k - y|^2 = \sum_i (1 - \eta \lambda_i)^{2k} \big(v_i \cdot (y - f_0)\big)^2,
        \qquad \eta = \text{lr} / n,

    over the eigenpairs of H (see the module docstring for the units).

    Parameters
    ----------
    H : (n, n) array
        The kernel's Gram matrix on the training inputs, in the package's units (e.g.
        :func:`meanfield.gram.h_inf` or :func:`meanfield.lazy.analytic_ntk`).
    y : (n,) array
        Training labels.
    lr : float
        The package's ``train.lr``.
    steps : int or array of int
        Step counts k.
    f0 : (n,) array, optional
        Outputs at initialisation (default 0, as from a symmetric initialisation).

    Returns
    -------
    float or array shaped like ``steps``
        Divide by 2n for the package's ``train_loss`` (squared loss).

    Examples
    --------
    >>> import numpy as np
    >>> H = np.diag([1.0, 3.0]); y = np.array([1.0, 1.0])
    >>> predicted_residual(H, y, lr=1.0, steps=[0, 1]).tolist()    # eta = 1/2
    [2.0, 0.5]
    """
    lam, proj = gram_spectrum(H, np.asarray(y, dtype=np.float64)
                              - (0.0 if f0 is None else np.asarray(f0, dtype=np.float64)))
    eta = validate.positive("lr", lr) / len(lam)
    k = _steps(steps)
    factors = (1.0 - eta * lam) ** 2
    out = np.power.outer(factors, k.ravel()).T @ proj
    return float(out[0]) if k.ndim == 0 else out.reshape(k.shape)


def linear_rate_bound(lambda_0, lr, n, steps):
    r"""Du et al.'s bound :math:`(1 - \eta \lambda_0 / 2)^k` on :math:`|f_k - y|^2 / |f_0 - y|^2`.

    Parameters
    ----------
    lambda_0 : float
        :math:`\lambda_{\min}` of the infinite-width Gram matrix (package units).
    lr : float
        The package's ``train.lr``; :math:`\eta = \text{lr} / n`.
    n : int
        Number of training points.
    steps : int or array of int
        Step counts k.

    Returns
    -------
    float or array shaped like ``steps``

    Examples
    --------
    >>> linear_rate_bound(0.5, lr=4.0, n=10, steps=[0, 2]).tolist()   # eta = 0.4
    [1.0, 0.81]
    """
    lam0 = validate.positive("lambda_0", lambda_0, allow_zero=True)
    eta = validate.positive("lr", lr) / validate.positive("n", n)
    k = _steps(steps)
    out = (1.0 - eta * lam0 / 2.0) ** k
    return float(out) if k.ndim == 0 else out
