r"""Laziness diagnostics: how far the particles and the kernel moved from initialisation.

Plain functions of particle arrays (current P, initial P0), so they apply equally to a
live state and to snapshots read from a run file.  In the lazy regime (large alpha) the
displacements and the kernel change are O(1/alpha); in the mean-field regime O(1).
"""

from __future__ import annotations

import math

import numpy as np

from .. import validate
from ..errors import InputError
from .ntk import empirical_ntk

__all__ = ["relative_displacement", "scaled_displacement", "ntk_change", "balance"]


def ntk_change(P, P0, X, activation, K0=None):
    r"""Relative change of the tangent kernel on ``X``: :math:`|K(P) - K(P_0)|_F / |K(P_0)|_F`.

    O(1/alpha) along lazy training (O(1/alpha^2) from a symmetric
    initialisation, see :func:`meanfield.lazy.tangent_gap`), O(1) in the mean-field regime.

    Parameters
    ----------
    P, P0 : ndarray, shape (m, D)
    X : ndarray, shape (n, d)
    activation : str
    K0 : ndarray, shape (n, n), optional
        ``empirical_ntk(P0, X, activation=activation)``, when already known.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> P0 = rng.standard_normal((50, 3)); X = rng.standard_normal((4, 2))
    >>> ntk_change(P0, P0, X, "relu")
    0.0
    """
    P, X, _ = validate.layout(P, X)
    P0 = validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    if K0 is None:
        K0 = empirical_ntk(P0, X, activation=activation)
    K = empirical_ntk(P, X, activation=activation)
    norm0 = np.linalg.norm(K0)
    return float(np.linalg.norm(K - K0) / norm0) if norm0 > 0 else math.nan


def relative_displacement(P, P0):
    r"""Relative displacement :math:`|P - P_0|_F / |P_0|_F` of the particles.

    Examples
    --------
    >>> import numpy as np
    >>> relative_displacement(np.full((2, 2), 1.1), np.ones((2, 2)))   # doctest: +ELLIPSIS
    0.1000...
    """
    P, P0 = validate.matrix("P", P), validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    return float(np.linalg.norm(P - P0) / np.linalg.norm(P0))


def scaled_displacement(P, P0, alpha):
    r"""Lazy-limit displacement :math:`\alpha \big(\frac1m \sum_i |w_i - w_i^0|^2\big)^{1/2}`.

    Tends to a constant (at fixed time t) as alpha grows in the lazy regime.

    Examples
    --------
    >>> import numpy as np
    >>> scaled_displacement(np.full((4, 3), 0.01), np.zeros((4, 3)), 100.0)   # doctest: +ELLIPSIS
    1.732...
    """
    P, P0 = validate.matrix("P", P), validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    return float(alpha) * float(np.sqrt(np.mean(np.sum((P - P0) ** 2, axis=1))))


def balance(P, d):
    r"""Per-particle balance :math:`c_i^2 - |a_i|^2 - b_i^2`.

    Conserved by the gradient flow of a relu network without weight decay
    (the loss is invariant under :math:`(a, b, c) \to (\lambda a, \lambda b, c/\lambda)`).

    Parameters
    ----------
    P : ndarray, shape (m, D)
        Particles, columns ``a, [b,] c`` with ``D = d + 1`` or ``d + 2``.
    d : int
        Input dimension.

    Returns
    -------
    ndarray, shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> balance(np.array([[3.0, 4.0, 5.0]]), 2)
    array([0.])
    """
    P = validate.matrix("P", P)
    if P.shape[1] - int(d) not in (1, 2):
        raise InputError(f"P has {P.shape[1]} columns, expected d + 1 or d + 2 with d = {d}")
    c = P[:, -1]
    return c * c - np.einsum("ik,ik->i", P[:, :-1], P[:, :-1])
