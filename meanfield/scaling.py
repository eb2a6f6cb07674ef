r"""Scaling regimes (alpha) and initialisation of the particles.

The output scale of eq. (1) is :math:`\alpha = \kappa m^\gamma` with
:math:`\gamma = 0` in the ``mean_field`` regime (alpha = kappa, O(1)),
:math:`\gamma = 1/2` in the ``ntk`` regime (the standard 1/sqrt(m)
parameterisation) and :math:`\gamma = 0` with a large kappa in the ``lazy``
regime; an explicit alpha overrides the rule.

Initialisation draws each particle :math:`w = \tau (a, b, c)` with
:math:`a \sim N(0, I_d / d)` or uniform on the unit sphere,
:math:`b \sim N(0, 1)` or 0, :math:`c \sim N(0, 1)`, uniform on {-1, +1}, or 0.
Symmetric ("doubled") initialisation draws m/2 particles and stores each
next to its copy with c negated, rows (a, b, c), (a, b, -c), so that the
initial output f(w0, x) = 0 exactly (the pairs cancel term by term in the
forward sum).
"""

import numpy as np

REGIMES = {"mean_field": 0.0, "ntk": 0.5, "lazy": 0.0}
"""Exponent gamma of alpha = kappa * m**gamma for each regime."""


def resolve_alpha(regime: str, kappa: float, m: int, alpha=None) -> float:
    """alpha = ``alpha`` if given, else kappa * m**gamma(regime).

    Examples
    --------
    >>> resolve_alpha("ntk", 2.0, 100)
    20.0
    """
    if alpha is not None:
        return float(alpha)
    return float(kappa * m ** REGIMES[regime])


def init_particles(config, rng: np.random.Generator) -> np.ndarray:
    """Initial particles (m, D) of ``config`` drawn from ``rng``.

    Parameters
    ----------
    config : Config
        Uses ``model.m``, ``model.bias``, ``data.d`` and the ``[init]`` section.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (m, D), C-contiguous float64, columns a, [b,] c.
    """
    init, m, d, bias = config.init, config.model.m, config.data.d, config.model.bias
    k = m // 2 if init.symmetric else m
    if init.a == "gaussian":
        a = rng.standard_normal((k, d)) / np.sqrt(d)
    else:
        a = rng.standard_normal((k, d))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
    cols = [a]
    if bias:
        b = rng.standard_normal(k) if init.b == "gaussian" else np.zeros(k)
        cols.append(b[:, None])
    if init.c == "gaussian":
        c = rng.standard_normal(k)
    elif init.c == "sign":
        c = rng.choice([-1.0, 1.0], size=k)
    else:
        c = np.zeros(k)
    cols.append(c[:, None])
    base = init.tau * np.hstack(cols)
    if not init.symmetric:
        return np.ascontiguousarray(base)
    P = np.empty((m, base.shape[1]))
    P[0::2] = base
    P[1::2] = base
    P[1::2, -1] *= -1.0
    return P
