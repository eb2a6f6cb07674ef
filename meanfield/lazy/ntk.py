r"""Lazy training: the tangent model, empirical and analytic tangent kernels, diagnostics.

Linearising the network of eq. (1) around its initialisation :math:`w^0` gives
the *tangent model*

.. math::

    Tf(w)(x) = f(w^0)(x) + \sum_i (w_i - w_i^0) \cdot \nabla_{w_i} f(w^0)(x)
             = f(w^0)(x) + \frac{\alpha}{m} \sum_i (w_i - w_i^0) \cdot
               \nabla_w \phi(w_i^0, x),

with :math:`\phi(w, x) = c\, s(a \cdot x + b)` and
:math:`\nabla_w \phi = (c\, s'(z)\, x,\ c\, s'(z),\ s(z))`,
:math:`z = a \cdot x + b` (the b entry only with a bias).  Gradient flow of
eq. (3) moves the outputs by :math:`\partial_t f = -K R'(f)`, i.e. for an
empirical risk :math:`\partial_t f(x) = -\frac1n \sum_j K(x, x_j)\,
\ell'(f(x_j), y_j)`, with the *tangent kernel*

.. math::

    K(x, x') = \frac1m \sum_i \nabla_w \phi(w_i, x) \cdot \nabla_w \phi(w_i, x')
             = \frac1m \sum_i c_i^2 s'(z_i) s'(z'_i) (x \cdot x' + 1_{bias})
               + s(z_i) s(z'_i),

which is O(1) in m and alpha.  For large alpha ("lazy" training, Chizat,
Oyallon & Bach 2019) the particles move O(1/alpha), K stays at its initial
value and f follows Tf up to O(1/alpha); at the initialisation of
:func:`meanfield.scaling.init_particles` and m -> infinity, K tends to the
deterministic kernel of :func:`analytic_ntk` (Jacot, Gabriel & Hongler 2018)
at rate :math:`m^{-1/2}`, and the smallest eigenvalue of its Gram matrix on
the training inputs (:func:`lambda_min`) controls the linear convergence rate
of over-parameterised gradient descent (Du et al. 2019).

The diagnostics (:func:`relative_displacement`, :func:`scaled_displacement`,
:func:`tangent_gap`, :func:`ntk_change`, :func:`balance`) are plain functions
of particle arrays, so they apply equally to snapshots read from a run file.

Every function here is vectorised NumPy: the (n, m) matrices of
pre-activations are formed with one GEMM, so memory is O(n m).

Examples
--------
>>> import numpy as np
>>> from meanfield.lazy import empirical_ntk, analytic_ntk, lambda_min
>>> rng = np.random.default_rng(0)
>>> d, m = 3, 200_000
>>> P = np.hstack([rng.standard_normal((m, d)) / np.sqrt(d),
...                rng.standard_normal((m, 2))])            # rows [a, b, c]
>>> X = rng.standard_normal((4, d))
>>> K = empirical_ntk(P, X, activation="relu")
>>> K_inf = analytic_ntk(X, X, "relu", bias=True, tau=1.0)
>>> bool(np.abs(K - K_inf).max() < 0.05 * np.abs(K_inf).max())
True
>>> bool(lambda_min(K_inf) > 0)
True
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from . import activations
from .errors import InputError
from .kernels import forward as _forward
from .kernels import tangent_forward

__all__ = [
    "tangent_output",
    "empirical_ntk",
    "analytic_ntk",
    "analytic_ntk_for",
    "ANALYTIC_ACTIVATIONS",
    "lambda_min",
    "relative_displacement",
    "scaled_displacement",
    "tangent_gap",
    "ntk_change",
    "balance",
]

ANALYTIC_ACTIVATIONS = ("relu", "erf", "linear")
"""Activations for which :func:`analytic_ntk` has a closed form."""


# ----------------------------------------------------------------------------- helpers
def _matrix(name, value, cols=None):
    """``value`` as a C-contiguous 2-D float64 array (InputError naming ``name`` otherwise)."""
    try:
        a = np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not a numeric array") from None
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {a.shape}")
    if cols is not None and a.shape[1] != cols:
        raise InputError(f"{name} must have {cols} columns, got shape {a.shape}")
    return a


def _activation(name):
    if name not in activations.IDS:
        raise InputError(
            f"unknown activation {name!r} (known: {', '.join(activations.NAMES)})")
    return name


def _layout(P, X, pname="P", xname="X"):
    """Check P (m, D) against X (n, d); return (P, X, bias) as float64 arrays."""
    P = _matrix(pname, P)
    X = _matrix(xname, X)
    d, D = X.shape[1], P.shape[1]
    if D - d not in (1, 2):
        raise InputError(
            f"{pname} has {D} columns but {xname} has {d}: expected d + 1 (columns a, c) "
            f"or d + 2 (columns a, b, c)")
    return P, X, D - d == 2


def _split(P, d, bias):
    """Views a (m, d), b (m,) (zeros without bias) and c (m,) of the particles."""
    A = P[:, :d]
    b = P[:, d] if bias else np.zeros(P.shape[0])
    return A, b, P[:, -1]


def _same_shape(P, P0):
    if P.shape != P0.shape:
        raise InputError(f"P has shape {P.shape} but P0 has shape {P0.shape}")


def _features(P, X, bias, activation):
    """S = s(Z) and H = c s'(Z), both (n, m), with Z = X A^T + b."""
    A, b, c = _split(P, X.shape[1], bias)
    Z = X @ A.T + b
    S = activations.value(activation, Z)
    H = activations.derivative(activation, Z)
    H *= c
    return S, H


# ------------------------------------------------------------------------ tangent model
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
    activation = _activation(activation)
    P, X, _ = _layout(P, X)
    P0 = _matrix("P0", P0)
    _same_shape(P, P0)
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
    P, X, _ = _layout(P, X)
    f = _forward(P, X, activations.IDS[activation], float(alpha))
    return float(np.sqrt(np.mean((f - T) ** 2)))


# ---------------------------------------------------------------------- tangent kernels
def empirical_ntk(P, X1, X2=None, activation=None):
    r"""Tangent kernel of the particles ``P`` between the inputs ``X1`` and ``X2``.

    .. math::

        K_{jk} = \frac1m \sum_i \nabla_w \phi(w_i, x_j) \cdot \nabla_w \phi(w_i, x'_k)
               = \frac1m \Big[ (H_1 H_2^\top) \odot (X_1 X_2^\top + 1_{bias})
                 + S_1 S_2^\top \Big]_{jk},

    with :math:`S = s(Z)`, :math:`H = c \odot s'(Z)`, :math:`Z = X A^\top + b`.
    This is the kernel of the function-space flow :math:`\partial_t f = -K R'(f)`;
    it does not depend on alpha and is O(1) in m.

    Parameters
    ----------
    P : ndarray, shape (m, D)
        Particles, columns ``a, [b,] c``.
    X1 : ndarray, shape (n1, d)
    X2 : ndarray, shape (n2, d), optional
        Defaults to ``X1`` (then ``K`` is the symmetric Gram matrix).
    activation : str
        Name in :data:`meanfield.activations.NAMES` (required; may also be given
        in place of ``X2``, as in ``empirical_ntk(P, X, "relu")``).

    Returns
    -------
    ndarray, shape (n1, n2)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> P = rng.standard_normal((100, 4)); X = rng.standard_normal((6, 2))
    >>> K = empirical_ntk(P, X, activation="tanh")            # rows [a, b, c]
    >>> K.shape, bool(np.allclose(K, K.T))
    ((6, 6), True)
    """
    if isinstance(X2, str) and activation is None:
        X2, activation = None, X2
    if activation is None:
        raise InputError("empirical_ntk: activation is required")
    activation = _activation(activation)
    P, X1, bias = _layout(P, X1, xname="X1")
    X2 = X1 if X2 is None else _matrix("X2", X2, X1.shape[1])
    S1, H1 = _features(P, X1, bias, activation)
    if X2 is X1:
        S2, H2 = S1, H1
    else:
        S2, H2 = _features(P, X2, bias, activation)
    G = X1 @ X2.T
    if bias:
        G += 1.0
    K = (H1 @ H2.T) * G + S1 @ S2.T
    K /= P.shape[0]
    return K


def ntk_change(P, P0, X, activation, K0=None):
    r"""Relative change of the tangent kernel on ``X``: :math:`|K(P) - K(P_0)|_F / |K(P_0)|_F`.

    O(1/alpha) along lazy training (O(1/alpha^2) from a symmetric
    initialisation, see :func:`tangent_gap`), O(1) in the mean-field regime.

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
    P, X, _ = _layout(P, X)
    P0 = _matrix("P0", P0)
    _same_shape(P, P0)
    if K0 is None:
        K0 = empirical_ntk(P0, X, activation=activation)
    K = empirical_ntk(P, X, activation=activation)
    norm0 = np.linalg.norm(K0)
    return float(np.linalg.norm(K - K0) / norm0) if norm0 > 0 else math.nan


def _gaussian_moments(activation, S11, S22, S12):
    r"""E[s(z)s(z')] and E[s'(z)s'(z')] for centred Gaussian (z, z') with covariance S."""
    if activation == "relu":
        norm = np.sqrt(S11 * S22)
        ok = norm > 0.0
        safe = np.where(ok, norm, 1.0)
        cos = np.clip(S12 / safe, -1.0, 1.0)
        th = np.arccos(cos)
        ss = np.where(ok, norm * (np.sin(th) + (np.pi - th) * cos) / (2.0 * np.pi), 0.0)
        # relu'(0) = 0: a degenerate z = 0 contributes nothing
        dd = np.where(ok, (np.pi - th) / (2.0 * np.pi), 0.0)
        return ss, dd
    if activation == "erf":
        q = (1.0 + 2.0 * S11) * (1.0 + 2.0 * S22)
        ss = (2.0 / np.pi) * np.arcsin(np.clip(2.0 * S12 / np.sqrt(q), -1.0, 1.0))
        dd = (4.0 / np.pi) / np.sqrt(q - 4.0 * S12 * S12)
        return ss, dd
    # linear: s(z) = z, s' = 1
    return S12.copy(), np.ones_like(S12)


def analytic_ntk(X1, X2=None, activation="relu", bias=False, tau=1.0, c_init="gaussian",
                 a_init="gaussian", b_init="gaussian"):
    r"""Infinite-width tangent kernel at the initialisation of :mod:`meanfield.scaling`.

    For particles :math:`a \sim N(0, \tau^2 I_d / d)`, :math:`b \sim N(0, \tau^2)`
    (or 0), and c independent with :math:`E c^2 = \tau^2` (``gaussian``, ``sign``)
    or :math:`c = 0` (``zero``), the limit of :func:`empirical_ntk` as
    :math:`m \to \infty` is

    .. math::

        K(x, x') = E[c^2]\, E[s'(z) s'(z')]\, (x \cdot x' + 1_{bias})
                   + E[s(z) s(z')],

    with :math:`(z, z')` centred Gaussian, :math:`\Sigma_{11} = \tau^2(|x|^2/d + \beta)`,
    :math:`\Sigma_{12} = \tau^2(x \cdot x'/d + \beta)`, :math:`\Sigma_{22} = \tau^2(|x'|^2/d + \beta)`,
    :math:`\beta = 1` if b is Gaussian and 0 otherwise.  Closed forms
    (:math:`\cos\theta = \Sigma_{12} / \sqrt{\Sigma_{11}\Sigma_{22}}`):

    * relu: :math:`E[ss'] = \sqrt{\Sigma_{11}\Sigma_{22}}\,(\sin\theta + (\pi - \theta)\cos\theta)/(2\pi)`,
      :math:`E[s's'] = (\pi - \theta)/(2\pi)` (the arc-cosine kernels);
    * erf: :math:`E[ss'] = \frac2\pi \arcsin\frac{2\Sigma_{12}}{\sqrt{(1+2\Sigma_{11})(1+2\Sigma_{22})}}`,
      :math:`E[s's'] = \frac4\pi \big((1+2\Sigma_{11})(1+2\Sigma_{22}) - 4\Sigma_{12}^2\big)^{-1/2}`;
    * linear: :math:`E[ss'] = \Sigma_{12}`, :math:`E[s's'] = 1`.

    (Here :math:`E[ss']` is shorthand for :math:`E[s(z)s(z')]`.)

    Parameters
    ----------
    X1 : ndarray, shape (n1, d)
    X2 : ndarray, shape (n2, d), optional
        Defaults to ``X1``.
    activation : {"relu", "erf", "linear"}
    bias : bool
        Whether the particles carry a bias (adds the ``+1`` of the b-gradient).
    tau : float
        Initialisation scale.
    c_init : {"gaussian", "sign", "zero"}
    a_init : {"gaussian"}
        ``"sphere"`` (a uniform on the unit sphere) has no closed form here.
    b_init : {"gaussian", "zero"}
        Distribution of b when ``bias`` (ignored without bias, where b = 0).

    Returns
    -------
    ndarray, shape (n1, n2)

    Raises
    ------
    InputError
        For an activation without a closed form, ``a_init = "sphere"`` or an
        unknown distribution name.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> K = analytic_ntk(x, activation="relu")
    >>> bool(np.allclose(K, [[0.75, 1 / (4 * np.pi)], [1 / (4 * np.pi), 0.75]]))
    True
    """
    if activation not in ANALYTIC_ACTIVATIONS:
        raise InputError(
            f"analytic_ntk: activation = {activation!r} has no closed form "
            f"(available: {', '.join(ANALYTIC_ACTIVATIONS)})")
    if a_init != "gaussian":
        raise InputError(
            f"analytic_ntk: init.a = {a_init!r} has no closed form (only init.a = 'gaussian')")
    if c_init not in ("gaussian", "sign", "zero"):
        raise InputError(f"analytic_ntk: init.c = {c_init!r} is not one of gaussian, sign, zero")
    if b_init not in ("gaussian", "zero"):
        raise InputError(f"analytic_ntk: init.b = {b_init!r} is not one of gaussian, zero")
    tau = float(tau)
    if not (tau > 0.0 and np.isfinite(tau)):
        raise InputError(f"analytic_ntk: tau must be finite and > 0, got {tau!r}")
    X1 = _matrix("X1", X1)
    X2 = X1 if X2 is None else _matrix("X2", X2, X1.shape[1])
    d = X1.shape[1]
    beta = 1.0 if (bias and b_init == "gaussian") else 0.0
    t2 = tau * tau
    G = X1 @ X2.T
    S12 = t2 * (G / d + beta)
    S11 = t2 * (np.einsum("jk,jk->j", X1, X1) / d + beta)[:, None]
    S22 = t2 * (np.einsum("jk,jk->j", X2, X2) / d + beta)[None, :]
    ss, dd = _gaussian_moments(activation, S11, S22, S12)
    c2 = 0.0 if c_init == "zero" else t2
    if bias:
        G += 1.0
    return c2 * dd * G + ss


def analytic_ntk_for(config, X1, X2=None):
    """:func:`analytic_ntk` at the initialisation described by a :class:`~meanfield.config.Config`.

    Reads ``model.activation``, ``model.bias``, ``init.tau``, ``init.a``,
    ``init.b`` and ``init.c`` (symmetric initialisation does not change the limit).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.config import Config
    >>> cfg = Config.from_dict({"model": {"activation": "erf", "bias": True}, "data": {"d": 2}})
    >>> analytic_ntk_for(cfg, np.eye(2)).shape
    (2, 2)
    """
    X1 = _matrix("X1", X1, config.data.d)
    if X2 is not None:
        X2 = _matrix("X2", X2, config.data.d)
    init = config.init
    return analytic_ntk(X1, X2, config.model.activation, config.model.bias, init.tau,
                        c_init=init.c, a_init=init.a, b_init=init.b)


def lambda_min(K):
    r"""Smallest eigenvalue of a symmetric (Gram) matrix ``K``.

    For the tangent-kernel Gram matrix on the training inputs,
    :math:`\lambda_{\min} > 0` gives linear convergence of over-parameterised
    gradient descent on the squared loss, :math:`R(f_t) \le e^{-2 \lambda_{\min} t / n} R(f_0)`
    in the flow :math:`\partial_t f = -\frac1n K (f - y)` (Du et al. 2019).
    Only the lower triangle of ``K`` is read.

    Parameters
    ----------
    K : ndarray, shape (n, n)

    Returns
    -------
    float

    Examples
    --------
    >>> round(lambda_min([[2.0, 1.0], [1.0, 2.0]]), 12)
    1.0
    """
    K = _matrix("K", K)
    if K.shape[0] != K.shape[1]:
        raise InputError(f"K must be square, got shape {K.shape}")
    return float(scipy.linalg.eigvalsh(K, subset_by_index=[0, 0], check_finite=True)[0])


# -------------------------------------------------------------------------- diagnostics
def relative_displacement(P, P0):
    r"""Relative displacement :math:`|P - P_0|_F / |P_0|_F` of the particles.

    Examples
    --------
    >>> import numpy as np
    >>> relative_displacement(np.full((2, 2), 1.1), np.ones((2, 2)))   # doctest: +ELLIPSIS
    0.1000...
    """
    P, P0 = _matrix("P", P), _matrix("P0", P0)
    _same_shape(P, P0)
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
    P, P0 = _matrix("P", P), _matrix("P0", P0)
    _same_shape(P, P0)
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
    P = _matrix("P", P)
    if P.shape[1] - int(d) not in (1, 2):
        raise InputError(f"P has {P.shape[1]} columns, expected d + 1 or d + 2 with d = {d}")
    c = P[:, -1]
    return c * c - np.einsum("ik,ik->i", P[:, :-1], P[:, :-1])
