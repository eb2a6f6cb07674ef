r"""Gaussian closed forms of relu and erf: the arc-cosine and arcsine kernels.

The one home of these formulas.  For a centred Gaussian pair :math:`(z, z') = (g \cdot u,
g \cdot v)`, :math:`g \sim N(0, I)`, with covariance :math:`\Sigma_{11} = |u|^2`,
:math:`\Sigma_{22} = |v|^2`, :math:`\Sigma_{12} = u \cdot v` and angle :math:`\vartheta`
between u and v:

* relu (arc-cosine kernels of degree 1 and 0, Cho & Saul 2009)

  .. math::

      E[s(z) s(z')] = \frac{|u||v|}{2\pi} \big(\sin\vartheta + (\pi - \vartheta)\cos\vartheta\big),
      \qquad E[s'(z) s'(z')] = \frac{\pi - \vartheta}{2\pi},

  both 0 when u = 0 or v = 0 (z = 0 surely, relu(0) = relu'(0) = 0);
* erf (arcsine kernel, Williams 1997), :math:`p_u = 1 + 2|u|^2`, :math:`p_v = 1 + 2|v|^2`,
  :math:`q = 2 u \cdot v`, :math:`\Delta = p_u p_v - q^2 \ge 1`:

  .. math::

      E[s(z) s(z')] = \frac{2}{\pi} \arcsin\frac{q}{\sqrt{p_u p_v}}
                    = \frac{2}{\pi} \operatorname{atan2}(q, \sqrt{\Delta}),
      \qquad E[s'(z) s'(z')] = \frac{4}{\pi \sqrt{\Delta}}.

Two levels:

* numba scalar entries :func:`relu_entry` and :func:`erf_entry`, per pair of rows from
  their squared norms and inner product, returning the pair kernel and the two
  coefficients of its gradient (what the exact population flow of
  :mod:`meanfield.kernels.population` sums);
* array helpers :func:`angles`, :func:`arccos_moments` and :func:`arcsine_moments` over
  all pairs of rows of two matrices (what :mod:`meanfield.lazy` and :mod:`meanfield.gram`
  use).

Precision.  The angle is computed as
:math:`\vartheta = 2 \operatorname{atan2}(|\hat u - \hat v|, |\hat u + \hat v|)` on the
normalised vectors (Kahan's formula), not as :math:`\arccos(\hat u \cdot \hat v)`: near
:math:`\hat u \cdot \hat v = 1` one rounding error of the cosine becomes an angle error of
:math:`\sqrt{2 \epsilon} \approx 10^{-8}`, while the differences :math:`\hat u - \hat v` are
exact there, so :math:`\vartheta(u, u) = 0` exactly and the kernels' diagonals are exact to
rounding.
"""

import math

import numpy as np
from numba import prange

from .jit import jit, jit_parallel

_PI = math.pi
_INV_2PI = 1.0 / (2.0 * math.pi)
_TWO_OVER_PI = 2.0 / math.pi
_FOUR_OVER_PI = 4.0 / math.pi

__all__ = ["relu_entry", "erf_entry", "angles", "arccos_moments", "arcsine_moments"]


# ----------------------------------------------------------------------- scalar entries
@jit
def relu_entry(nu2, nv2, uv, diag):
    r"""Arc-cosine pair kernel and its gradient coefficients, for one pair (u, v).

    .. math::

        \kappa(u, v) = E_{x \sim N(0, I)}[s(u \cdot x) s(v \cdot x)]
                     = \frac{|u||v|}{2\pi}\big(\sin\vartheta + (\pi - \vartheta)\cos\vartheta\big),
        \qquad \nabla_u \kappa = \beta v + \gamma u,

    with :math:`\beta = (\pi - \vartheta) / 2\pi` and
    :math:`\gamma = |v| \sin\vartheta / (2\pi |u|)`.

    Parameters
    ----------
    nu2, nv2 : float
        :math:`|u|^2`, :math:`|v|^2`.
    uv : float
        :math:`u \cdot v`.
    diag : bool
        u = v (the angle is then exactly 0).

    Returns
    -------
    (kappa, beta, gamma) : floats, all 0 when u = 0 or v = 0.
    """
    if nu2 <= 0.0 or nv2 <= 0.0:
        return 0.0, 0.0, 0.0
    nu = math.sqrt(nu2)
    nv = math.sqrt(nv2)
    if diag:
        c = 1.0
    else:
        c = uv / (nu * nv)
        if c > 1.0:
            c = 1.0
        elif c < -1.0:
            c = -1.0
    th = math.acos(c)
    s = math.sqrt(max(0.0, (1.0 - c) * (1.0 + c)))
    kap = nu * nv * (s + (_PI - th) * c) * _INV_2PI
    beta = (_PI - th) * _INV_2PI
    gamma = nv * s / nu * _INV_2PI
    return kap, beta, gamma


@jit
def erf_entry(nu2, nv2, uv, diag):
    r"""Arcsine pair kernel and its gradient coefficients, for one pair (u, v).

    .. math::

        \kappa(u, v) = E_{x \sim N(0, I)}[\operatorname{erf}(u \cdot x)\operatorname{erf}(v \cdot x)]
                     = \frac2\pi \operatorname{atan2}(q, \sqrt\Delta),
        \qquad \nabla_u \kappa = \beta v + \gamma u,

    with :math:`\beta = 4 / (\pi \sqrt{\Delta})` and :math:`\gamma = -\beta\, q / p_u`
    (notation of the module docstring).

    Parameters
    ----------
    nu2, nv2, uv, diag
        As in :func:`relu_entry` (``diag`` replaces nv2 and uv by nu2).

    Returns
    -------
    (kappa, beta, gamma) : floats
    """
    if diag:
        nv2 = nu2
        uv = nu2
    pu = 1.0 + 2.0 * nu2
    q = 2.0 * uv
    den = 1.0 + 2.0 * (nu2 + nv2) + 4.0 * max(nu2 * nv2 - uv * uv, 0.0)
    r = math.sqrt(den)
    kap = _TWO_OVER_PI * math.atan2(q, r)
    beta = _FOUR_OVER_PI / r
    gamma = -beta * q / pu
    return kap, beta, gamma


# ------------------------------------------------------------------------- array level
@jit
def _unit_rows(U):
    """Rows of U divided by their norms (zero rows stay zero), and the norms."""
    n, k = U.shape
    out = np.zeros((n, k))
    norms = np.empty(n)
    for i in range(n):
        acc = 0.0
        for j in range(k):
            acc += U[i, j] * U[i, j]
        norms[i] = math.sqrt(acc)
        if norms[i] > 0.0:
            for j in range(k):
                out[i, j] = U[i, j] / norms[i]
    return out, norms


@jit_parallel
def _angle_matrix(U, V):
    """Angles between the rows of U and V, 2 atan2(|u^ - v^|, |u^ + v^|); pi/2 at zero rows."""
    Uh, nu = _unit_rows(U)
    Vh, nv = _unit_rows(V)
    n1, k = Uh.shape
    n2 = Vh.shape[0]
    out = np.empty((n1, n2))
    for i in prange(n1):
        for l in range(n2):
            if nu[i] == 0.0 or nv[l] == 0.0:
                out[i, l] = 0.5 * _PI
                continue
            minus = 0.0
            plus = 0.0
            for j in range(k):
                dm = Uh[i, j] - Vh[l, j]
                dp = Uh[i, j] + Vh[l, j]
                minus += dm * dm
                plus += dp * dp
            out[i, l] = 2.0 * math.atan2(math.sqrt(minus), math.sqrt(plus))
    return out


def _rows(name, U):
    U = np.ascontiguousarray(U, dtype=np.float64)
    if U.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of row vectors, got shape {U.shape}")
    return U


def _pair(U, V):
    U = _rows("U", U)
    V = U if V is None else _rows("V", V)
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"U and V rows differ in length ({U.shape[1]} vs {V.shape[1]})")
    return U, V


def angles(U, V=None):
    r"""Angles between every row of ``U`` and every row of ``V``.

    .. math:: \vartheta_{il} = 2 \operatorname{atan2}(|\hat u_i - \hat v_l|, |\hat u_i + \hat v_l|),
              \qquad \hat u = u / |u|,

    in :math:`[0, \pi]`, exactly 0 for equal rows (see the module docstring); by
    convention :math:`\pi/2` where a row is zero.

    Parameters
    ----------
    U : (n1, k) array
    V : (n2, k) array, optional
        Defaults to ``U``.

    Returns
    -------
    (n1, n2) float64 array

    Examples
    --------
    >>> import numpy as np
    >>> th = angles([[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [3.0, 3.0]])
    >>> bool(np.allclose(th, [[np.pi / 2, np.pi / 4], [np.pi / 4, 0.0]]))
    True
    """
    U, V = _pair(U, V)
    return _angle_matrix(U, V)


def arccos_moments(U, V=None):
    r"""Relu moments :math:`E[s(z_i) s(z'_l)]` and :math:`E[s'(z_i) s'(z'_l)]` for all pairs.

    :math:`z_i = g \cdot u_i`, :math:`z'_l = g \cdot v_l`, :math:`g \sim N(0, I_k)`: the
    arc-cosine kernels of the module docstring, with the angles of :func:`angles`.

    Parameters
    ----------
    U : (n1, k) array
        Rows :math:`u_i` (covariance square roots: :math:`\Sigma_{il} = u_i \cdot v_l`).
    V : (n2, k) array, optional
        Defaults to ``U``.

    Returns
    -------
    ss, dd : (n1, n2) arrays
        :math:`E[s s]` and :math:`E[s' s']`; both 0 in the rows and columns of zero vectors.

    Examples
    --------
    >>> import numpy as np
    >>> ss, dd = arccos_moments([[1.0, 0.0], [0.0, 0.0]])
    >>> ss.tolist(), dd.tolist()
    ([[0.5, 0.0], [0.0, 0.0]], [[0.5, 0.0], [0.0, 0.0]])
    """
    U, V = _pair(U, V)
    th = _angle_matrix(U, V)
    norm = np.sqrt(np.einsum("ik,ik->i", U, U))[:, None] * np.sqrt(np.einsum("ik,ik->i", V, V))
    ss = norm * (np.sin(th) + (_PI - th) * np.cos(th)) * _INV_2PI
    dd = np.where(norm > 0.0, (_PI - th) * _INV_2PI, 0.0)
    return ss, dd


def arcsine_moments(U, V=None):
    r"""Erf moments :math:`E[s(z_i) s(z'_l)]` and :math:`E[s'(z_i) s'(z'_l)]` for all pairs.

    Same setting as :func:`arccos_moments`, with the arcsine closed forms of the module
    docstring, :math:`\Delta` computed as
    :math:`1 + 2|u|^2 + 2|v|^2 + 4 \max(|u|^2 |v|^2 - (u \cdot v)^2, 0)` (as in
    :func:`erf_entry`: no cancellation, never below 1).

    Returns
    -------
    ss, dd : (n1, n2) arrays

    Examples
    --------
    >>> ss, dd = arcsine_moments([[0.0]])
    >>> ss.tolist(), round(float(dd[0, 0]) * 3.141592653589793, 12)
    ([[0.0]], 4.0)
    """
    U, V = _pair(U, V)
    nu2 = np.einsum("ik,ik->i", U, U)[:, None]
    nv2 = np.einsum("ik,ik->i", V, V)[None, :]
    uv = U @ V.T
    root = np.sqrt(1.0 + 2.0 * (nu2 + nv2) + 4.0 * np.maximum(nu2 * nv2 - uv * uv, 0.0))
    return _TWO_OVER_PI * np.arctan2(2.0 * uv, root), _FOUR_OVER_PI / root
