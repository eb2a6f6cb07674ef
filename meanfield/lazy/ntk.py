r"""Tangent kernels: empirical (from particles) and analytic (infinite width).

Parameterisation.  The kernel of this package is the one of the function-space flow of
eq. (3), :math:`\partial_t f = -K R'(f)`:

.. math::

    K(x, x') = \frac1m \sum_i \nabla_w \phi(w_i, x) \cdot \nabla_w \phi(w_i, x'),
    \qquad \phi(w, x) = c\, s(a \cdot x + b),

O(1) in m and alpha.  The gradient in the first layer is taken in the *standard*
parameterisation (with respect to a and b themselves, not to a rescaled
:math:`a \sqrt{d}`), so :math:`K` equals neural-tangents' standard-parameterisation NTK of
the width-m network :math:`\sum_i c_i s(a_i \cdot x + b_i)` divided by the width m.  The
tangent kernel of the network f of eq. (1) itself, :math:`\nabla_P f(x) \cdot \nabla_P
f(x')`, is :math:`(\alpha^2 / m) K(x, x')`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .. import activations
from .. import validate
from ..errors import InputError
from ..kernels.closed_forms import arccos_moments, arcsine_moments

__all__ = ["empirical_ntk", "analytic_ntk", "analytic_ntk_for", "ANALYTIC_ACTIVATIONS",
           "lambda_min", "LAYERS"]

ANALYTIC_ACTIVATIONS = ("relu", "erf", "linear")
"""Activations for which :func:`analytic_ntk` has a closed form."""

C_MOMENTS = {"gaussian": 1.0, "sign": 1.0, "uniform": 1.0 / 3.0, "zero": 0.0}
"""E[c^2] / tau^2 for each ``init.c``: N(0, 1), +-1, U(0, 1), 0."""

LAYERS = ("both", "first", "second")
"""Parts of the tangent kernel: gradients in every parameter, in (a, b) only, in c only."""


def split(P, d, bias):
    """Views a (m, d), b (m,) (zeros without bias) and c (m,) of the particles."""
    A = P[:, :d]
    b = P[:, d] if bias else np.zeros(P.shape[0])
    return A, b, P[:, -1]


BLOCK_ENTRIES = 1 << 22
"""Entries of one (n, block) feature array: tangent kernels go over particle blocks of
this size, so their memory does not grow with m."""


def particle_blocks(m, n):
    """Slices of ``range(m)`` whose (n, block) feature arrays hold at most ``BLOCK_ENTRIES``."""
    step = max(1, BLOCK_ENTRIES // max(n, 1))
    return [slice(i, min(i + step, m)) for i in range(0, m, step)]


def features(P, X, bias, activation):
    """S = s(Z) and H = c s'(Z), both (n, m), with Z = X A^T + b."""
    A, b, c = split(P, X.shape[1], bias)
    Z = X @ A.T + b
    S = activations.value(activation, Z)
    H = activations.derivative(activation, Z)
    H *= c
    return S, H


def empirical_ntk(P, X1, X2=None, activation=None, layers="both"):
    r"""Tangent kernel of the particles ``P`` between the inputs ``X1`` and ``X2``.

    .. math::

        K_{jk} = \frac1m \sum_i \nabla_w \phi(w_i, x_j) \cdot \nabla_w \phi(w_i, x'_k)
               = \frac1m \Big[ (H_1 H_2^\top) \odot (X_1 X_2^\top + 1_{bias})
                 + S_1 S_2^\top \Big]_{jk},

    with :math:`S = s(Z)`, :math:`H = c \odot s'(Z)`, :math:`Z = X A^\top + b`.
    This is the kernel of the function-space flow :math:`\partial_t f = -K R'(f)`;
    it does not depend on alpha and is O(1) in m.  ``layers="first"`` keeps the first
    term (gradients in a and b: Du et al.'s :math:`H(t)` when :math:`c_i = \pm 1`),
    ``"second"`` the second (gradients in c).

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
    layers : {"both", "first", "second"}

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
    activation = validate.activation(activation)
    layers = validate.choice("layers", layers, LAYERS)
    P, X1, bias = validate.layout(P, X1, xname="X1")
    X2 = X1 if X2 is None else validate.matrix("X2", X2, X1.shape[1])
    K = np.zeros((X1.shape[0], X2.shape[0]))
    G = None
    if layers != "second":
        G = X1 @ X2.T
        if bias:
            G += 1.0
    for block in particle_blocks(P.shape[0], max(X1.shape[0], X2.shape[0])):
        S1, H1 = features(P[block], X1, bias, activation)
        S2, H2 = (S1, H1) if X2 is X1 else features(P[block], X2, bias, activation)
        if G is not None:
            K += (H1 @ H2.T) * G
        if layers != "first":
            K += S1 @ S2.T
    K /= P.shape[0]
    return K


def _moments(activation, U1, U2):
    r"""E[s(z)s(z')] and E[s'(z)s'(z')] for z = g.u, z' = g.v, over all row pairs."""
    if activation == "relu":
        return arccos_moments(U1, U2)
    if activation == "erf":
        return arcsine_moments(U1, U2)
    return U1 @ U2.T, np.ones((U1.shape[0], U2.shape[0]))  # linear: s(z) = z, s' = 1


def _check_init(activation, tau, c_init, a_init, b_init):
    if activation not in ANALYTIC_ACTIVATIONS:
        raise InputError(
            f"analytic_ntk: activation = {activation!r} has no closed form "
            f"(available: {', '.join(ANALYTIC_ACTIVATIONS)})")
    if a_init not in ("gaussian", "standard"):
        raise InputError(f"analytic_ntk: init.a = {a_init!r} has no closed form "
                         f"(only init.a = 'gaussian' or 'standard')")
    if c_init not in C_MOMENTS:
        raise InputError(f"analytic_ntk: init.c = {c_init!r} is not one of "
                         f"{', '.join(C_MOMENTS)}")
    if b_init not in ("gaussian", "zero"):
        raise InputError(f"analytic_ntk: init.b = {b_init!r} is not one of gaussian, zero")
    return validate.positive("analytic_ntk: tau", tau)


def _roots(X, tau, scale, beta):
    r"""Rows u = tau (x / sqrt(scale), sqrt(beta)): the covariance of z = a.x + b is u.u'."""
    cols = [X / np.sqrt(scale)]
    if beta:
        cols.append(np.ones((X.shape[0], 1)))
    return tau * np.hstack(cols)


def analytic_ntk(X1, X2=None, activation="relu", bias=False, tau=1.0, c_init="gaussian",
                 a_init="gaussian", b_init="gaussian", layers="both"):
    r"""Infinite-width tangent kernel at the initialisation of :mod:`meanfield.scaling`.

    For particles :math:`a \sim N(0, \tau^2 I_d / d)` (``a_init="gaussian"``) or
    :math:`N(0, \tau^2 I_d)` (``"standard"``), :math:`b \sim N(0, \tau^2)` (or 0), and c
    independent with :math:`E c^2 = \tau^2` (``gaussian``, ``sign``), :math:`\tau^2 / 3`
    (``uniform``) or :math:`c = 0` (``zero``), the limit of :func:`empirical_ntk` as
    :math:`m \to \infty` is

    .. math::

        K(x, x') = E[c^2]\, E[s'(z) s'(z')]\, (x \cdot x' + 1_{bias})
                   + E[s(z) s(z')],

    with :math:`(z, z')` centred Gaussian, :math:`\Sigma_{12} = \tau^2(x \cdot x'/\delta +
    \beta)` (:math:`\Sigma_{11}, \Sigma_{22}` likewise), :math:`\delta = d` for
    ``gaussian`` a and 1 for ``standard`` a, :math:`\beta = 1` if b is Gaussian and 0
    otherwise.  The moments are the closed forms of :mod:`meanfield.kernels.closed_forms`
    (relu: arc-cosine kernels, angles by the atan2 formula, so the diagonal is exact to
    rounding; erf: arcsine kernel); linear: :math:`E[ss] = \Sigma_{12}`,
    :math:`E[s's'] = 1`.  ``layers`` keeps both terms, the first or the second (see
    :func:`empirical_ntk`).

    With relu, ``a_init="standard"``, ``tau=1`` and :math:`c = \pm 1` this is the
    :math:`H^\infty` of Du et al. (:func:`meanfield.gram.h_inf`).

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
    c_init : {"gaussian", "sign", "uniform", "zero"}
    a_init : {"gaussian", "standard"}
        ``"sphere"`` (a uniform on the unit sphere) has no closed form here.
    b_init : {"gaussian", "zero"}
        Distribution of b when ``bias`` (ignored without bias, where b = 0).
    layers : {"both", "first", "second"}

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
    tau = _check_init(activation, tau, c_init, a_init, b_init)
    layers = validate.choice("layers", layers, LAYERS)
    X1 = validate.matrix("X1", X1)
    X2 = X1 if X2 is None else validate.matrix("X2", X2, X1.shape[1])
    scale = X1.shape[1] if a_init == "gaussian" else 1
    beta = bias and b_init == "gaussian"
    U1 = _roots(X1, tau, scale, beta)
    U2 = U1 if X2 is X1 else _roots(X2, tau, scale, beta)
    ss, dd = _moments(activation, U1, U2)
    K = np.zeros_like(ss)
    if layers != "second" and c_init != "zero":
        G = X1 @ X2.T
        if bias:
            G += 1.0
        K += C_MOMENTS[c_init] * tau * tau * dd * G
    if layers != "first":
        K += ss
    return K


def analytic_ntk_for(config, X1, X2=None, layers="both"):
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
    X1 = validate.matrix("X1", X1, config.data.d)
    if X2 is not None:
        X2 = validate.matrix("X2", X2, config.data.d)
    init = config.init
    return analytic_ntk(X1, X2, config.model.activation, config.model.bias, init.tau,
                        c_init=init.c, a_init=init.a, b_init=init.b, layers=layers)


def lambda_min(K):
    r"""Smallest eigenvalue of a symmetric (Gram) matrix ``K``.

    For the tangent-kernel Gram matrix on the n training inputs,
    :math:`\lambda_{\min} > 0` gives linear convergence of over-parameterised
    gradient descent on the squared loss, :math:`R(f_t) \le e^{-2 \lambda_{\min} t / n} R(f_0)`
    in the flow :math:`\partial_t f = -\frac1n K (f - y)` (Du et al. 2019; see
    :func:`meanfield.analysis.predicted_residual` for the discrete steps).
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
    K = validate.square("K", K)
    return float(scipy.linalg.eigvalsh(K, subset_by_index=[0, 0], check_finite=True)[0])
