r"""Exact population (infinite-data) risk and particle velocity from closed-form kernels.

Setting (DESIGN.md section 1, no bias, squared loss only).  Particles ``P`` (m, d + 1)
have rows :math:`w_i = (a_i, c_i)`; the teacher ``T`` (m0, d + 1) has rows
:math:`(\theta_j, t_j)` and the same activation :math:`s`:

.. math::

    f(x) = \frac{\alpha}{m} \sum_i c_i\, s(a_i \cdot x), \qquad
    f^*(x) = \frac{1}{m_0} \sum_j t_j\, s(\theta_j \cdot x), \qquad
    y = f^*(x) + \sigma \xi,\ \xi \sim N(0, 1).

Everything reduces to the pair kernel :math:`\kappa(u, v) = E_x[s(u \cdot x)\, s(v \cdot x)]`
and its gradient in the first argument
:math:`\nabla_u \kappa(u, v) = E_x[s'(u \cdot x)\, x\, s(v \cdot x)]`.  Stack the student and
teacher input weights into :math:`b_l` (l < m: :math:`a_l`; l >= m: :math:`\theta_{l-m}`)
with signed weights :math:`\omega_l = \alpha c_l / m` and :math:`\omega_{m+j} = -t_j / m_0`,
so that the residual is :math:`r(x) = f(x) - f^*(x) = \sum_l \omega_l s(b_l \cdot x)`.  Then

.. math::

    R = \tfrac12 E[(f - y)^2] = \tfrac12 \Big(\sum_{l, l'} \omega_l \omega_{l'}
        \kappa(b_l, b_{l'}) + \sigma^2\Big),

and with :math:`J = R / \alpha^2 + (\lambda / m) \sum_i |w_i|^2 / 2`, the velocity
:math:`v_i = -m \nabla_{w_i} J` is

.. math::

    v_{c,i} = -\frac{1}{\alpha} \sum_l \omega_l\, \kappa(a_i, b_l) - \lambda c_i, \qquad
    v_{a,i} = -\frac{c_i}{\alpha} \sum_l \omega_l\, \nabla_u \kappa(a_i, b_l) - \lambda a_i,

(the term l = i counts once with the gradient in the first argument only: by symmetry of
:math:`\kappa` the derivative of :math:`\kappa(a_i, a_i)` is :math:`2 \nabla_u \kappa`,
which the factor 1/2 of R halves).

Closed forms (:math:`\vartheta` = angle between u and v):

* relu, :math:`x \sim N(0, I_d)` (arc-cosine kernel)

  .. math::

      \kappa = \frac{|u||v|}{2\pi} \big(\sin\vartheta + (\pi - \vartheta)\cos\vartheta\big),
      \qquad
      \nabla_u \kappa = \frac{1}{2\pi}\Big((\pi - \vartheta)\, v
          + |v| \sin\vartheta\, \frac{u}{|u|}\Big),

  with :math:`\nabla_u \kappa = 0` at :math:`|u| = 0` (relu'(0) = 0) and
  :math:`\kappa = 0` when either norm vanishes.
* relu, x uniform on :math:`S^{d-1}`: relu is 1-homogeneous and :math:`x = g/|g|` with
  :math:`|g|` independent of the direction and :math:`E|g|^2 = d`, so kernel and gradient
  are the Gaussian ones divided by d.
* erf, :math:`x \sim N(0, I_d)` (arcsine kernel), with :math:`p_u = 1 + 2|u|^2`,
  :math:`p_v = 1 + 2|v|^2`, :math:`q = 2 u \cdot v`,
  :math:`\Delta = p_u p_v - q^2 = 1 + 2|u|^2 + 2|v|^2 + 4(|u|^2|v|^2 - (u \cdot v)^2) \ge 1`:

  .. math::

      \kappa = \frac{2}{\pi} \arcsin\frac{q}{\sqrt{p_u p_v}}
             = \frac{2}{\pi} \operatorname{atan2}(q, \sqrt{\Delta}),
      \qquad
      \nabla_u \kappa = \frac{4}{\pi \sqrt{\Delta}}
          \Big(v - \frac{2\, u \cdot v}{p_u}\, u\Big).

* erf on the sphere has no closed form: unsupported.

Both gradients have the form :math:`\beta(u, v)\, v + \gamma(u, v)\, u`, so the velocity
sums are one GEMM, :math:`\sum_l \omega_l \beta_{il} b_l`, plus a per-particle multiple of
:math:`a_i`.  Cost per evaluation, by blocks of rows of B: the inner products of the
block with every row (one GEMM), the kernel entries (elementwise, in ``prange`` over rows)
and the block's part of the gradient sums (one more GEMM): :math:`O((m + m_0)^2 d)` time,
:math:`O(\text{block} \cdot (m + m_0))` memory; no sample is drawn.  The scalar
closed forms come from :mod:`meanfield.kernels.closed_forms`.  Every reduction runs in a fixed
order, so results do not depend on the number of threads.
"""

from collections import namedtuple

import numpy as np
from numba import prange

from .blas import gemm
from .closed_forms import erf_entry, relu_entry
from .elementwise import ERF, RELU, SQUARED
from .jit import jit, jit_parallel

BLOCK_ELEMS = 1 << 22
"""Entries of the one (row block, m + m0) buffer of the pair sums (32 MiB)."""

_Pairs = namedtuple("_Pairs", ["act", "scale", "B", "sq", "w", "ngrad"])
"""What the pair sums read: activation id, input-law factor, stacked weights B, their
squared norms, the signed weights omega and the number of rows that need gradients."""

_ACT_NAMES = {"relu": RELU, "erf": ERF}
_LOSS_NAMES = {"squared": SQUARED}


def supported(act, tact, sphere, bias, loss):
    """Whether the exact population risk/velocity exists for this setting.

    Parameters
    ----------
    act, tact : int or str
        Student and teacher activation (ids of :mod:`meanfield.kernels.elementwise`, or the
        names ``"relu"``, ``"erf"``).
    sphere : bool
        Inputs uniform on the unit sphere (else standard Gaussian).
    bias : bool
        Whether the student carries a bias column.
    loss : int or str
        Loss id or name.

    Returns
    -------
    bool
        True only for (relu, relu) with Gaussian or sphere inputs and (erf, erf) with
        Gaussian inputs, without bias, under the squared loss.
    """
    act = _ACT_NAMES.get(act, act) if isinstance(act, str) else act
    tact = _ACT_NAMES.get(tact, tact) if isinstance(tact, str) else tact
    loss = _LOSS_NAMES.get(loss, loss) if isinstance(loss, str) else loss
    if bias or loss != SQUARED or act != tact:
        return False
    if act == RELU:
        return True
    if act == ERF:
        return not sphere
    return False


@jit
def _check(act, sphere):
    """Raise ValueError unless (act, sphere) has a closed-form kernel."""
    if act == RELU:
        return
    if act == ERF and not sphere:
        return
    raise ValueError("population kernel: only relu (gaussian or sphere) and erf (gaussian)")


@jit
def _entry(act, nu2, nv2, uv, diag):
    """(kappa, beta, gamma) of one pair for activation ``act`` (Gaussian inputs)."""
    if act == RELU:
        return relu_entry(nu2, nv2, uv, diag)
    return erf_entry(nu2, nv2, uv, diag)


@jit
def _scale(sphere, d):
    """Factor from Gaussian to sphere inputs (1/d for relu; 1 for Gaussian inputs)."""
    return 1.0 / d if sphere else 1.0


@jit
def _sqnorms(U):
    n, d = U.shape
    out = np.empty(n)
    for i in range(n):
        acc = 0.0
        for k in range(d):
            acc += U[i, k] * U[i, k]
        out[i] = acc
    return out


@jit
def _pairs(act, sphere, U, W):
    """Checked contiguous (U, W), the input-law scale, U W^T and the squared row norms."""
    _check(act, sphere)
    U = np.ascontiguousarray(U)
    W = np.ascontiguousarray(W)
    return U, W, _scale(sphere, U.shape[1]), np.dot(U, W.T), _sqnorms(U), _sqnorms(W)


@jit_parallel
def pair_kernel(act, sphere, U, W):
    r"""Pair kernel matrix :math:`K_{il} = \kappa(u_i, w_l) = E_x[s(u_i \cdot x) s(w_l \cdot x)]`.

    Parameters
    ----------
    act : int
        RELU or ERF.
    sphere : bool
        x uniform on the unit sphere (relu only) instead of :math:`N(0, I_d)`.
    U : (n1, d) float64
    W : (n2, d) float64

    Returns
    -------
    (n1, n2) float64

    Raises
    ------
    ValueError
        For a combination without closed form (erf on the sphere, other activations).
    """
    U, W, scale, G, su, sw = _pairs(act, sphere, U, W)
    n1, n2 = U.shape[0], W.shape[0]
    K = np.empty((n1, n2))
    for i in prange(n1):
        for l in range(n2):
            kap, beta, gamma = _entry(act, su[i], sw[l], G[i, l], False)
            K[i, l] = scale * kap
    return K


@jit_parallel
def pair_kernel_grad(act, sphere, U, W):
    r"""Gradient of the pair kernel in its first argument.

    .. math:: \nabla_u \kappa(u_i, w_l) = E_x[s'(u_i \cdot x)\, x\, s(w_l \cdot x)]

    Parameters and errors as :func:`pair_kernel`.

    Returns
    -------
    (n1, n2, d) float64
        ``out[i, l] = beta_il * w_l + gamma_il * u_i`` (zero where :math:`|u_i| = 0` for relu).
    """
    U, W, scale, G, su, sw = _pairs(act, sphere, U, W)
    n1, d = U.shape
    n2 = W.shape[0]
    out = np.empty((n1, n2, d))
    for i in prange(n1):
        for l in range(n2):
            kap, beta, gamma = _entry(act, su[i], sw[l], G[i, l], False)
            for k in range(d):
                out[i, l, k] = scale * (beta * W[l, k] + gamma * U[i, k])
    return out


@jit
def _stack(P, T, alpha):
    """Stacked input weights B = [A; Theta] (m + m0, d) and signed weights omega."""
    m, D = P.shape
    m0 = T.shape[0]
    d = D - 1
    if T.shape[1] != D:
        raise ValueError("population kernel: teacher and particles differ in dimension")
    B = np.empty((m + m0, d))
    w = np.empty(m + m0)
    for i in range(m):
        for k in range(d):
            B[i, k] = P[i, k]
        w[i] = alpha / m * P[i, d]
    for j in range(m0):
        for k in range(d):
            B[m + j, k] = T[j, k]
        w[m + j] = -T[j, d] / m0
    return B, w


@jit_parallel
def _block(pairs, i0, Gb, Kw, g):
    r"""Rows i0, i0 + 1, ... of the pair sums, one row of ``Gb`` each, in parallel over rows.

    On entry ``Gb[r, l] = b_{i0+r} \cdot b_l``.  Sets
    ``Kw[i] = sum_l omega_l kappa(b_i, b_l)``; for rows ``i < ngrad`` also
    ``g[i] = sum_l omega_l gamma_il`` and, in place of the inner products,
    ``Gb[r, l] = omega_l beta_il``.
    """
    act, scale, sq, w, ngrad = pairs.act, pairs.scale, pairs.sq, pairs.w, pairs.ngrad
    n = sq.shape[0]
    for r in prange(Gb.shape[0]):
        i = i0 + r
        grad = i < ngrad
        ksum = 0.0
        gsum = 0.0
        for l in range(n):
            kap, beta, gamma = _entry(act, sq[i], sq[l], Gb[r, l], i == l)
            ksum += w[l] * kap
            if grad:
                Gb[r, l] = scale * w[l] * beta
                gsum += w[l] * gamma
        Kw[i] = scale * ksum
        if grad:
            g[i] = scale * gsum


@jit_parallel
def _pair_sums(pairs, Kw, g, CB):
    r"""Kernel sums over all columns for every row of the stacked weights B, by row blocks.

    ``Kw[i] = sum_l omega_l kappa(b_i, b_l)`` for every row; for ``i < ngrad`` also
    ``g[i] = sum_l omega_l gamma_il`` and ``CB[i] = sum_l omega_l beta_il b_l``, so that
    ``sum_l omega_l grad_u kappa(b_i, b_l) = CB_i + g_i b_i``.  Each block of rows is one
    GEMM for its inner products, the elementwise pass and one GEMM for its part of CB:
    memory O(block * (m + m0)), never (m + m0)^2.
    """
    B = pairs.B
    n = B.shape[0]
    rb = max(1, min(n, BLOCK_ELEMS // max(n, 1)))
    Gb = np.empty((rb, n))
    for i0 in range(0, n, rb):
        r = min(rb, n - i0)
        gemm(False, True, 1.0, B[i0:i0 + r], B, 0.0, Gb[:r])
        _block(pairs, i0, Gb[:r], Kw, g)
        rg = min(r, pairs.ngrad - i0)
        if rg > 0:
            gemm(False, False, 1.0, Gb[:rg], B, 0.0, CB[i0:i0 + rg])


@jit
def _risk_from_rows(w, Kw, noise):
    """R = (omega^T K omega + noise^2) / 2, the quadratic form clipped at 0 (rounding)."""
    er2 = 0.0
    for i in range(w.shape[0]):
        er2 += w[i] * Kw[i]
    return 0.5 * (max(er2, 0.0) + noise * noise)


@jit_parallel
def population_risk(P, pop):
    r"""Exact population risk :math:`R = E[(f(x) - y)^2] / 2`.

    .. math::

        R = \tfrac12\big(E f^2 - 2 E f f^* + E f^{*2} + \sigma^2\big)
          = \tfrac12\Big(\sum_{l,l'} \omega_l \omega_{l'} \kappa(b_l, b_{l'}) + \sigma^2\Big).

    Parameters
    ----------
    P : (m, d + 1) float64
        Student particles, rows [a, c] (no bias).
    pop : :class:`meanfield.kernels.structs.Population`
        The teacher T (m0, d + 1), rows [theta, t], with the student's activation
        ``act`` (RELU or ERF), the student's output scale ``alpha``, the label-noise
        standard deviation ``noise`` and the input law (``sphere``: uniform on the
        unit sphere, relu only; else N(0, I_d)).

    Returns
    -------
    float
        R; the quadratic form is clipped at 0 against rounding.  Cost
        O((m + m0)^2 d); no sampling.
    """
    _check(pop.act, pop.sphere)
    B, w = _stack(P, pop.T, pop.alpha)
    n, d = B.shape
    Kw = np.empty(n)
    pairs = _Pairs(pop.act, _scale(pop.sphere, d), B, _sqnorms(B), w, 0)
    _pair_sums(pairs, Kw, np.empty(0), np.empty((0, d)))
    return _risk_from_rows(w, Kw, pop.noise)


@jit_parallel
def population_risk_and_velocity(P, pop, V):
    r"""Exact population risk and velocity :math:`v_i = -m \nabla_{w_i} J`.

    .. math::

        v_{c,i} = -\frac{1}{\alpha} E[r(x) s(a_i \cdot x)] - \lambda c_i, \qquad
        v_{a,i} = -\frac{c_i}{\alpha} E[r(x) s'(a_i \cdot x) x] - \lambda a_i,

    with :math:`r = f - f^*`, :math:`E[r s(a_i \cdot x)] = \sum_l \omega_l \kappa(a_i, b_l)`
    and :math:`E[r s'(a_i \cdot x) x] = \sum_l \omega_l \nabla_u \kappa(a_i, b_l)`
    (see the module docstring).  Label noise only shifts R by :math:`\sigma^2/2`.

    Parameters
    ----------
    P, pop
        As in :func:`population_risk`; ``pop.lam`` is the weight decay.
    V : (m, d + 1) float64
        Output: the velocity.

    Returns
    -------
    float
        The population risk R.
    """
    _check(pop.act, pop.sphere)
    alpha, lam = pop.alpha, pop.lam
    B, w = _stack(P, pop.T, alpha)
    n, d = B.shape
    m = P.shape[0]
    Kw = np.empty(n)
    g = np.empty(m)
    S = np.empty((m, d))
    _pair_sums(_Pairs(pop.act, _scale(pop.sphere, d), B, _sqnorms(B), w, m), Kw, g, S)
    inv_alpha = 1.0 / alpha
    for i in range(m):
        ci = P[i, d]
        for k in range(d):
            V[i, k] = -ci * inv_alpha * (S[i, k] + g[i] * P[i, k]) - lam * P[i, k]
        V[i, d] = -inv_alpha * Kw[i] - lam * ci
    return _risk_from_rows(w, Kw, pop.noise)
