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

Three modules: :mod:`~meanfield.lazy.tangent` (the tangent model),
:mod:`~meanfield.lazy.ntk` (empirical and analytic kernels, and which
parameterisation they use) and :mod:`~meanfield.lazy.diagnostics`
(:func:`relative_displacement`, :func:`scaled_displacement`, :func:`ntk_change`,
:func:`balance`: plain functions of particle arrays, so they apply equally to
snapshots read from a run file).  Gram matrices of over-parameterised GD (Du et
al.'s :math:`H^\infty`, spectra, observables along a run) are in :mod:`meanfield.gram`.

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

from .diagnostics import balance, ntk_change, relative_displacement, scaled_displacement
from .ntk import (ANALYTIC_ACTIVATIONS, LAYERS, analytic_ntk, analytic_ntk_for, empirical_ntk,
                  lambda_min)
from .tangent import tangent_gap, tangent_output

__all__ = [
    "tangent_output",
    "empirical_ntk",
    "analytic_ntk",
    "analytic_ntk_for",
    "ANALYTIC_ACTIVATIONS",
    "LAYERS",
    "lambda_min",
    "relative_displacement",
    "scaled_displacement",
    "tangent_gap",
    "ntk_change",
    "balance",
]
