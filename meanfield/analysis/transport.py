r"""Wasserstein-2 distances between particle measures: exact, one-dimensional, sliced.

Particles :math:`P \in \mathbb{R}^{n \times D}` stand for the uniform measure
:math:`\mu_P = \frac1n \sum_i \delta_{P_i}`.

* :func:`wasserstein2` is the exact distance, by the network simplex of POT
  (:func:`ot.emd2`) for any numbers of points (the one-dimensional formula when D = 1);
  above ``max_exact`` points it gives the sliced distance instead, and says so with a
  :class:`SlicedDistanceWarning`.
* :func:`wasserstein2_1d` is the exact one-dimensional distance, by quantile functions.
* :func:`sliced_wasserstein2` averages the one-dimensional distance over random
  directions: cheap, but a different (smaller) distance.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
from scipy.spatial.distance import cdist

from .. import validate
from ..errors import InputError

__all__ = ["wasserstein2", "sliced_wasserstein2", "wasserstein2_1d", "SlicedDistanceWarning",
           "EXACT_LIMIT", "METHODS"]

EXACT_LIMIT = 10**8
"""Largest cost matrix (n m entries, 8 bytes each) :func:`wasserstein2` builds for an
exact distance."""

METHODS = ("auto", "exact", "sliced")


class SlicedDistanceWarning(UserWarning):
    """:func:`wasserstein2` returned the sliced distance in place of the exact one."""


def _pair(P, Q):
    P, Q = validate.points("P", P), validate.points("Q", Q)
    if P.shape[1] != Q.shape[1]:
        raise InputError(f"P and Q live in different dimensions ({P.shape[1]} vs {Q.shape[1]})")
    return P, Q


def _w2sq_sorted(xs, ys):
    r"""Squared 1-D W2 between uniform measures on sorted rows ``xs`` (k, n), ``ys`` (k, m).

    The quantile functions are step functions with jumps at i/n and j/m; on
    each interval of the merged grid both are constant, so the integral
    :math:`\int_0^1 (F^{-1}(u) - G^{-1}(u))^2 du` is a finite sum.  The grid
    is kept in integer units of 1/(n m), so coinciding breakpoints merge
    exactly.
    """
    n, m = xs.shape[-1], ys.shape[-1]
    if n == m:
        return np.mean((xs - ys) ** 2, axis=-1)
    cuts = np.union1d(np.arange(n + 1, dtype=np.int64) * m, np.arange(m + 1, dtype=np.int64) * n)
    w = np.diff(cuts) / (n * m)
    left = cuts[:-1]  # on (left, next], F^{-1} = xs[left // m] and G^{-1} = ys[left // n]
    return ((xs[..., left // m] - ys[..., left // n]) ** 2) @ w


def wasserstein2_1d(x, y) -> float:
    r"""Exact W2 between the uniform empirical measures of two samples on the line.

    .. math::

        W_2^2\Big(\frac1n \sum_i \delta_{x_i}, \frac1m \sum_j \delta_{y_j}\Big)
        = \int_0^1 \big(F^{-1}(u) - G^{-1}(u)\big)^2\, du,

    with :math:`F^{-1}(u) = x_{(\lceil n u \rceil)}` the quantile function
    (order statistics); the integrand is piecewise constant on the merged
    grid :math:`\{i/n\} \cup \{j/m\}`, so the integral is an exact sum of at
    most n + m terms after sorting, O((n + m) log(n + m)).

    Examples
    --------
    >>> w = wasserstein2_1d([0.0, 1.0], [0.0, 0.5, 1.0])
    >>> round(w ** 2, 12) == round(1 / 12, 12)     # (1/6)(1/2)^2 on (1/3, 1/2] and (1/2, 2/3]
    True
    """
    x = np.sort(np.asarray(x, dtype=float).ravel())
    y = np.sort(np.asarray(y, dtype=float).ravel())
    if x.size == 0 or y.size == 0:
        raise InputError("wasserstein2_1d needs non-empty samples")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("wasserstein2_1d: samples hold NaN or infinite values")
    return math.sqrt(max(float(_w2sq_sorted(x, y)), 0.0))


def _directions(D, n_projections, rng, directions):
    if directions is not None:
        theta = np.asarray(directions, dtype=float)
        if theta.ndim != 2 or theta.shape[1] != D or theta.shape[0] == 0:
            raise InputError(f"directions must be a (k, {D}) array, got shape {theta.shape}")
    else:
        if int(n_projections) < 1:
            raise InputError(f"n_projections must be >= 1, got {n_projections}")
        theta = np.random.default_rng(rng).standard_normal((int(n_projections), D))
    norms = np.linalg.norm(theta, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise InputError("directions must be non-zero and finite")
    return theta / norms


def sliced_wasserstein2(P, Q, n_projections: int = 200, rng=None, directions=None) -> float:
    r"""Sliced Wasserstein-2 distance between uniform particle measures.

    .. math::

        SW_2^2(\mu, \nu) = \mathbb{E}_{\theta \sim U(S^{D-1})}
            W_2^2(\theta_\# \mu, \theta_\# \nu)
        \approx \frac1K \sum_{k=1}^K W_2^2(\theta_k \cdot P, \theta_k \cdot Q),

    each one-dimensional term computed exactly by :func:`wasserstein2_1d`
    (so P and Q may have different numbers of points).  Cost
    O(K (n + m) (D + log(n + m))).

    Comparison with W2: for the optimal coupling :math:`\pi` of
    :math:`(\mu, \nu)`, :math:`W_2^2(\theta_\#\mu, \theta_\#\nu) \le
    \int (\theta \cdot (x - y))^2 d\pi` (each projection is 1-Lipschitz),
    and :math:`\mathbb{E}[\theta\theta^T] = I / D`, so

    .. math:: SW_2 \le W_2 / \sqrt{D} \le W_2,

    with equality in the first for a translation :math:`\nu = (x \mapsto x +
    v)_\# \mu`, where :math:`SW_2 = |v| / \sqrt{D}`.  With K random
    directions the first bound holds with :math:`1/D` replaced by the
    largest eigenvalue of :math:`\frac1K \sum_k \theta_k \theta_k^T`; the
    second holds exactly.  Mind that the two distances do not decay at the
    same rate in the number of samples: between an m-sample and its
    population, :math:`W_2 \sim m^{-1/D}` for D > 4 while :math:`SW_2 \sim
    m^{-1/2}`.

    Parameters
    ----------
    P, Q : (n, D), (m, D) arrays of points (each with weight 1/n, 1/m).
    n_projections : int
        Number K of random directions, uniform on the sphere.
    rng : None, int or numpy.random.Generator
        Source of the directions (an int makes the result reproducible).
    directions : (K, D) array, optional
        Use these directions (rows are normalised) instead of random ones.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> P = np.random.default_rng(1).standard_normal((100, 4))
    >>> sw = sliced_wasserstein2(P, P + [2.0, 0.0, 0.0, 0.0], n_projections=20000, rng=0)
    >>> round(sw, 2)                      # |v| / sqrt(D) = 2 / sqrt(4)
    1.0
    """
    P, Q = _pair(P, Q)
    theta = _directions(P.shape[1], n_projections, rng, directions)
    n, m = len(P), len(Q)
    chunk = max(1, (1 << 22) // (n + m))
    total = 0.0
    for k0 in range(0, len(theta), chunk):
        th = theta[k0:k0 + chunk]
        xs = np.sort(th @ P.T, axis=1)
        ys = np.sort(th @ Q.T, axis=1)
        total += float(np.sum(_w2sq_sorted(xs, ys)))
    return math.sqrt(max(total / len(theta), 0.0))



def resolve_method(method, n, m, D, max_exact):
    """The method ``method`` means for n and m points in dimension D.

    ``auto`` is ``exact`` when D = 1 or both n and m are at most ``max_exact``, and
    ``sliced`` otherwise.
    """
    validate.choice("method", method, METHODS)
    if method == "auto":
        return "exact" if D == 1 or max(n, m) <= max_exact else "sliced"
    return method


def _exact_w2(P, Q):
    r"""Exact W2 by the network simplex on the squared-distance matrix (any n, m)."""
    n, m = len(P), len(Q)
    if n * m > EXACT_LIMIT:
        raise InputError(f"exact W2 between {n} and {m} points needs a {n} x {m} cost "
                         f"matrix (limit {EXACT_LIMIT} entries); use method='sliced'")
    C = cdist(P, Q, "sqeuclidean")
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    cost, log = ot.emd2(a, b, C, numItermax=max(100_000, 100 * (n + m) ** 2), log=True)
    if log["warning"] is not None:
        raise RuntimeError(f"exact W2: the network simplex did not converge ({log['warning']})")
    return math.sqrt(max(float(cost), 0.0))


def wasserstein2(P, Q, method: str = "auto", n_projections: int = 200, rng=None,
                 max_exact: int = 2000) -> float:
    r"""Wasserstein-2 distance between the uniform particle measures of P and Q.

    .. math::

        W_2^2(\mu_P, \mu_Q) = \min_{\pi \in \Pi(\mu_P, \mu_Q)} \int |x - y|^2 d\pi,
        \qquad \mu_P = \frac1n \sum_i \delta_{P_i}.

    ``exact``: the transport linear programme on the n x m squared-distance matrix,
    solved by POT's network simplex (:func:`ot.emd2`) for any n and m, in
    :math:`O((n + m)\, n m \log(n + m))` typical time and :math:`8 n m` bytes; in one
    dimension the exact quantile formula of :func:`wasserstein2_1d`.

    ``sliced``: :func:`sliced_wasserstein2`, a different and smaller distance
    (:math:`SW_2 \le W_2/\sqrt{D}`) with a different rate in the number of points; do
    not mix the two within one comparison.

    Parameters
    ----------
    P, Q : (n, D), (m, D) arrays (1-D arrays are points on the line).
        Particles are compared on their raw coordinates (a, b, c).
    method : {"auto", "exact", "sliced"}
        ``auto``: exact when n and m are both at most ``max_exact`` (or D = 1), otherwise
        the sliced distance, with a :class:`SlicedDistanceWarning` saying so.
    n_projections, rng
        Passed to :func:`sliced_wasserstein2`.
    max_exact : int
        Largest number of points per side solved exactly under ``auto``.

    Returns
    -------
    float

    Warns
    -----
    SlicedDistanceWarning
        When ``auto`` returns the sliced distance.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.random.default_rng(0).standard_normal((6, 2))
    >>> wasserstein2(P, P[::-1])                      # a permutation: same measure
    0.0
    >>> round(wasserstein2(P, np.repeat(P, 2, axis=0)), 12)
    0.0
    """
    P, Q = _pair(P, Q)
    how = resolve_method(method, len(P), len(Q), P.shape[1], max_exact)
    if how == "sliced":
        if method == "auto":
            warnings.warn(f"wasserstein2: {len(P)} and {len(Q)} points exceed max_exact = "
                          f"{max_exact}; returning the sliced distance SW2 (<= W2 / sqrt(D)) "
                          f"instead of W2", SlicedDistanceWarning, stacklevel=2)
        return sliced_wasserstein2(P, Q, n_projections=n_projections, rng=rng)
    if P.shape[1] == 1:
        return wasserstein2_1d(P[:, 0], Q[:, 0])
    return _exact_w2(P, Q)
