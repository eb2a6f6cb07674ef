r"""The tangent (linearised) model of the network at its initialisation.

.. math::

    Tf(w)(x) = f(w^0)(x) + \sum_i (w_i - w_i^0) \cdot \nabla_{w_i} f(w^0)(x),

the model that large-alpha ("lazy") training follows up to O(1/alpha).
"""

from __future__ import annotations

import numpy as np

from .. import activations
from .. import validate
from ..kernels import forward as _forward
from ..kernels import tangent_forward

__all__ = ["tangent_output", "tangent_gap"]


def tangent_output(P, P0, X, activation, alpha):
    r"""Output of the tangent (linearised) model at the inputs ``X``.

    .. math::

        Tf(w)(x) = f(w^0)(x) + \frac{\alpha}{m} \sum_i \big[
            c^0_i s'(z^0_i) \big((a_i - a^0_i) \cdot x + (b_i - b^0_i)\big)
            + (c_i - c^0_i)\, s(z^0_i) \big],
        \qquad z^0_i = a^0_i \cdot x + b^0_i.

    Parameters
    ----------
    P, P0 : ndarray, shape (m, D)
        Current and reference (initial) particles, columns ``a, [b,] c``; the
        bias column is present iff ``D == d + 2``.
    X : ndarray, shape (n, d)
        Inputs.
    activation : str
        Name in :data:`meanfield.activations.NAMES`.
    alpha : float
        Output scale of eq. (1).

    Returns
    -------
    ndarray, shape (n,)
        :math:`Tf(w)(x_j)`; equal to :math:`f(w^0)(x_j)` when ``P == P0``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> P0 = rng.standard_normal((50, 4)); X = rng.standard_normal((5, 3))
    >>> T = tangent_output(P0 + 1e-3 * rng.standard_normal(P0.shape), P0, X, "tanh", 2.0)
    >>> T.shape
    (5,)
    """
    activation = validate.activation(activation)
    P, X, _ = validate.layout(P, X)
    P0 = validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    return tangent_forward(P, P0, X, activations.IDS[activation], float(alpha))


def tangent_gap(P, P0, X, activation, alpha):
    r"""Root-mean-square distance between the network and its tangent model on ``X``.

    .. math::

        \Big(\frac1n \sum_j \big(f(w)(x_j) - Tf(w)(x_j)\big)^2\Big)^{1/2},

    which is O(1/alpha) along lazy training (the second-order Taylor remainder
    is alpha times O(|w - w^0|^2) = O(1/alpha^2)).  From a symmetric
    initialisation it is O(1/alpha^2): the two particles of a pair
    (a, b, c), (a, b, -c) move by (da, db, dc) and (-da, -db, dc) to first
    order, so their second-order terms cancel.

    Parameters
    ----------
    P, P0, X, activation, alpha
        As in :func:`tangent_output`.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> P0 = rng.standard_normal((50, 4)); X = rng.standard_normal((5, 3))
    >>> tangent_gap(P0, P0, X, "relu", 1.0)
    0.0
    """
    T = tangent_output(P, P0, X, activation, alpha)
    P, X, _ = validate.layout(P, X)
    f = _forward(P, X, activations.IDS[activation], float(alpha))
    return float(np.sqrt(np.mean((f - T) ** 2)))
