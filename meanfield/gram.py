r"""Gram matrices of over-parameterised gradient descent (Du et al. 2019; Arora et al. 2019).

For a two-layer relu network :math:`\frac{1}{\sqrt m} \sum_r c_r\, s(w_r \cdot x)` with
:math:`w_r \sim N(0, I)` and :math:`c_r = \pm 1`, gradient descent on the squared loss
follows, as :math:`m \to \infty`, the linear recursion of the residual driven by

.. math::

    H^\infty_{ij} = E_{w \sim N(0, I)}\big[x_i \cdot x_j\, 1\{w \cdot x_i \ge 0\}
                    1\{w \cdot x_j \ge 0\}\big]
                  = x_i \cdot x_j\, \frac{\pi - \vartheta_{ij}}{2\pi}

(first layer only; :math:`\vartheta_{ij}` the angle between :math:`x_i` and :math:`x_j`,
:math:`\arccos(x_i \cdot x_j)` for unit inputs).  Training the output layer as well
adds :math:`E_w[s(w \cdot x_i) s(w \cdot x_j)] = \frac{|x_i||x_j|}{2\pi}(\sin\vartheta_{ij}
+ (\pi - \vartheta_{ij}) \cos\vartheta_{ij})` (the full NTK).  With a bias, x is replaced by
:math:`\tilde x = (x, 1)` throughout (:math:`w \sim N(0, I_{d+1})`).

Units.  These are the kernels of this package (:mod:`meanfield.lazy.ntk`): the residual
:math:`r = f - y` on the n training points moves under one GD step of eq. (3) by
:math:`r \leftarrow (I - \eta H) r` with :math:`\eta = \text{lr} / n`, and
:func:`h_inf` is the limit of :func:`meanfield.lazy.empirical_ntk` for relu particles with
``init.a = "standard"``, ``init.c = "sign"`` (or ``"gaussian"``), ``init.tau = 1``.
The empirical Gram :math:`H(t)` of particles is
``meanfield.lazy.empirical_ntk(P, X, activation=..., layers=...)``.

The observables (:func:`gram_lambda_min`, :func:`gram_change`, :func:`pattern_flips`,
:func:`max_relative_move`) are plain functions of the particles P, the initial
particles P0 and the training inputs X.  They are also registered as snapshot
observables of the same names (:mod:`meanfield.observables`), recorded with every
particle snapshot of a two-layer network trained by full-batch descent (``gd``,
``ggn``), on the first :data:`GRAM_POINTS` training inputs; ``gram_lambda_min`` and
``gram_change`` share one Gram matrix per snapshot.  Cost per snapshot at n points and
m particles: the Gram matrix (two n x m by m x n products), one dense symmetric
eigenvalue problem of size n, a few Lanczos products for the 2-norm of the change, and
two n x d by d x m products for the activation patterns.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from . import validate
from .errors import InputError
from .kernels.closed_forms import arccos_moments
from .lazy.ntk import LAYERS, analytic_ntk_for, empirical_ntk, lambda_min, particle_blocks, split
from .observables import register

__all__ = ["h_inf", "gram_spectrum", "gram_lambda_min", "gram_change", "pattern_flips",
           "max_relative_move", "gram_report", "format_gram_report"]


def h_inf(X, bias=False, layers="first"):
    r"""The analytic relu Gram matrix :math:`H^\infty` on the inputs ``X``.

    .. math::

        H^\infty_{ij} = \tilde x_i \cdot \tilde x_j \frac{\pi - \vartheta_{ij}}{2\pi}
            \ [\text{first}]
            + \frac{|\tilde x_i||\tilde x_j|}{2\pi}\big(\sin\vartheta_{ij}
            + (\pi - \vartheta_{ij})\cos\vartheta_{ij}\big) \ [\text{second}],

    :math:`\tilde x = x` without bias and :math:`(x, 1)` with, :math:`\vartheta_{ij}` the
    angle between :math:`\tilde x_i` and :math:`\tilde x_j` by the atan2 formula of
    :func:`meanfield.kernels.closed_forms.angles` (exact on the diagonal).  Any input
    norms (for unit inputs :math:`\vartheta_{ij} = \arccos(x_i \cdot x_j)`).

    Parameters
    ----------
    X : (n, d) array
    bias : bool
        Whether the network has a bias (a first-layer weight on a constant input 1).
    layers : {"first", "both", "second"}
        ``first``: Du et al.'s :math:`H^\infty` (output weights fixed); ``both``: the full
        NTK (both layers trained, as in this package's GD); ``second``: the output layer's
        part alone.

    Returns
    -------
    (n, n) array

    Examples
    --------
    >>> import numpy as np
    >>> H = h_inf(np.eye(2))
    >>> H.tolist()                          # orthogonal unit inputs: diag 1/2, off-diag 0
    [[0.5, 0.0], [0.0, 0.5]]
    >>> bool(np.allclose(h_inf(np.eye(2), layers="both"), [[1, 1 / (2 * np.pi)],
    ...                                                    [1 / (2 * np.pi), 1]]))
    True
    """
    layers = validate.choice("layers", layers, LAYERS)
    U = validate.matrix("X", X)
    if bias:
        U = np.hstack([U, np.ones((U.shape[0], 1))])
    ss, dd = arccos_moments(U)
    H = np.zeros_like(ss)
    if layers != "second":
        H += (U @ U.T) * dd
    if layers != "first":
        H += ss
    return H


def gram_spectrum(H, y):
    r"""Eigenvalues of H and the squared projections of ``y`` on its eigenvectors.

    .. math:: H = \sum_i \lambda_i v_i v_i^\top, \qquad p_i = (v_i \cdot y)^2,

    so that :math:`\sum_i p_i = |y|^2`.

    Parameters
    ----------
    H : (n, n) symmetric array
    y : (n,) array

    Returns
    -------
    lam, proj : (n,) arrays
        Eigenvalues in increasing order and the matching :math:`p_i`.

    Examples
    --------
    >>> lam, proj = gram_spectrum([[2.0, 0.0], [0.0, 1.0]], [3.0, 4.0])
    >>> lam.tolist(), proj.tolist()
    ([1.0, 2.0], [16.0, 9.0])
    """
    H = validate.square("H", H)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (H.shape[0],):
        raise InputError(f"y must have shape ({H.shape[0]},) to match H, got {y.shape}")
    lam, V = scipy.linalg.eigh(H, check_finite=True)
    return lam, (V.T @ y) ** 2


# --------------------------------------------------------------- observables along a run
def gram_lambda_min(P, X, activation="relu", layers="both"):
    r""":math:`\lambda_{\min}(H(t))` of the empirical Gram of the particles P on the inputs X.

    :math:`H(t)` is :func:`meanfield.lazy.empirical_ntk` (``layers="both"``: the kernel
    that drives this package's GD, where both layers train).  Cost: one n x m x n GEMM
    and one symmetric eigenvalue problem of size n.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> P, X = rng.standard_normal((500, 4)), rng.standard_normal((5, 3))
    >>> bool(gram_lambda_min(P, X) > 0)
    True
    """
    return lambda_min(empirical_ntk(P, X, activation=activation, layers=layers))


def _spectral_norm(A):
    """Largest |eigenvalue| of a symmetric matrix (its 2-norm), by Lanczos from a fixed start."""
    if not np.any(A):
        return 0.0
    if A.shape[0] < 3:
        return float(np.abs(scipy.linalg.eigvalsh(A)).max())
    top = scipy.sparse.linalg.eigsh(A, k=1, which="LM", v0=np.ones(A.shape[0]),
                                    return_eigenvectors=False)[0]
    return float(abs(top))


def gram_change(P, P0, X, activation="relu", H0=None, layers="both"):
    r"""Relative change of the empirical Gram in spectral norm: :math:`|H(t) - H(0)|_2 / |H(0)|_2`.

    Parameters
    ----------
    P, P0 : (m, D) arrays
        Current and initial particles.
    X : (n, d) array
        Training inputs.
    activation : str
    H0 : (n, n) array, optional
        ``empirical_ntk(P0, X, activation=activation, layers=layers)``, when known.
    layers : {"both", "first", "second"}

    Returns
    -------
    float
        NaN when :math:`H(0) = 0`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> P0, X = rng.standard_normal((50, 4)), rng.standard_normal((5, 3))
    >>> gram_change(P0, P0, X)
    0.0
    """
    P, X, _ = validate.layout(P, X)
    P0 = validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    if H0 is None:
        H0 = empirical_ntk(P0, X, activation=activation, layers=layers)
    H = empirical_ntk(P, X, activation=activation, layers=layers)
    norm0 = _spectral_norm(H0)
    return _spectral_norm(H - H0) / norm0 if norm0 > 0 else math.nan


def pattern_flips(P, P0, X):
    r"""Fraction of (particle, input) activation signs changed since initialisation.

    .. math:: \frac{1}{m n} \sum_{i, j} 1\{\operatorname{sign}(a_i \cdot x_j + b_i) \ne
              \operatorname{sign}(a^0_i \cdot x_j + b^0_i)\},

    with the relu pattern :math:`1\{z > 0\}` as the sign.  O(1/sqrt m) in the NTK regime.

    Examples
    --------
    >>> import numpy as np
    >>> P0 = np.array([[1.0, 0.0, 1.0]]); X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> pattern_flips(P0 * [-1, 1, 1], P0, X)    # a flips: x_1 changes side, x_2 stays at 0
    0.5
    """
    P, X, bias = validate.layout(P, X)
    P0 = validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    d = X.shape[1]
    flips = 0
    for block in particle_blocks(P.shape[0], X.shape[0]):
        A, b, _ = split(P[block], d, bias)
        A0, b0, _ = split(P0[block], d, bias)
        flips += int(np.count_nonzero((X @ A.T + b > 0) != (X @ A0.T + b0 > 0)))
    return flips / (P.shape[0] * X.shape[0])


def max_relative_move(P, P0):
    r"""Largest relative particle move :math:`\max_i |w_i(t) - w_i(0)| / |w_i(0)|`.

    A particle that starts at 0 counts as 0 if it has not moved and as infinity if it has.
    O(1/sqrt m) in the NTK regime (Du et al.: every :math:`w_r` stays in a ball of radius
    :math:`O(1/\sqrt m)`).

    Examples
    --------
    >>> import numpy as np
    >>> max_relative_move(np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[3.0, 3.0], [2.0, 0.0]]))
    0.5
    """
    P, P0 = validate.matrix("P", P), validate.matrix("P0", P0)
    validate.same_shape(P, P0)
    move = np.linalg.norm(P - P0, axis=1)
    norm0 = np.linalg.norm(P0, axis=1)
    ratio = np.divide(move, norm0, out=np.where(move > 0, np.inf, 0.0), where=norm0 > 0)
    return float(ratio.max()) if ratio.size else 0.0


# ---------------------------------------------------------------------- run summaries
def gram_report(run) -> dict:
    r"""Gram spectra of a run and the linear rate they predict for its GD.

    On the n training inputs of the run (:math:`\eta = \text{lr}/n`, see the module
    docstring):

    * ``lambda_0``: :math:`\lambda_{\min}` of the infinite-width kernel at the run's
      initialisation (:func:`meanfield.lazy.analytic_ntk_for`; None, with the reason in
      ``lambda_0_note``, where there is no closed form);
    * ``lambda_min_H0``, ``lambda_min_HT``: :math:`\lambda_{\min}` of the empirical Gram
      (both layers) of the first and last particle snapshots;
    * ``rate_per_step``: :math:`1 - \eta \lambda_0 / 2`, the factor by which Du et al.'s
      bound shrinks the squared residual :math:`|f - y|^2` per step;
      ``rate_per_time``: :math:`-\log(\text{rate\_per\_step}) / \text{lr}`, its decay rate
      per unit of physical time t = lr * step; ``bound_at_T``: the bound's factor
      :math:`(1 - \eta \lambda_0 / 2)^k` over the k steps between the two snapshots.

    Parameters
    ----------
    run : meanfield.storage.Run

    Returns
    -------
    dict
        The values above, with ``file``, ``n``, ``m``, ``activation``, ``loss``,
        ``algorithm``, ``lr``, ``eta``, ``step_0`` and ``step_T``.  The rate is the one
        of gradient descent with the run's lr, whatever its ``algorithm``.  Cost: two n x m x n GEMMs and three
        eigenvalue problems of size n.
    """
    cfg = run.config
    if cfg.model.kind != "two_layer":
        raise InputError(f"{run.path}: a {cfg.model.kind} run; Gram matrices are defined here "
                         f"for two-layer networks (model.kind = 'two_layer')")
    X = run.data.x_train
    steps = run.steps
    if len(steps) == 0:
        raise InputError(f"{run.path}: the run has no particle snapshot")
    act = cfg.model.activation
    n, lr = X.shape[0], float(cfg.train.lr)
    report = {"file": None if run.path is None else str(run.path), "n": n,
              "m": int(cfg.model.m), "activation": act, "loss": cfg.loss.name,
              "algorithm": cfg.train.algorithm, "lr": lr,
              "eta": lr / n, "step_0": int(steps[0]), "step_T": int(steps[-1]),
              "lambda_min_H0": gram_lambda_min(run.particles(0), X, act),
              "lambda_min_HT": gram_lambda_min(run.particles(-1), X, act),
              "lambda_0": None, "lambda_0_note": "", "rate_per_step": None,
              "rate_per_time": None, "bound_at_T": None}
    try:
        lam0 = lambda_min(analytic_ntk_for(cfg, X))
    except InputError as exc:
        report["lambda_0_note"] = str(exc)
        return report
    rate = 1.0 - report["eta"] * lam0 / 2.0
    report.update(lambda_0=lam0, rate_per_step=rate,
                  rate_per_time=-math.log(rate) / lr if rate > 0 else None,
                  bound_at_T=rate ** (report["step_T"] - report["step_0"]))
    return report


def format_gram_report(report) -> str:
    """The dict of :func:`gram_report` as aligned text lines."""
    def num(v):
        return "n/a" if v is None else f"{v:.6g}"

    lines = [f"file            {report['file']}",
             f"data            n = {report['n']} training points, m = {report['m']}, "
             f"{report['activation']}, loss {report['loss']}, {report['algorithm']}",
             f"step size       lr = {report['lr']:g}, eta = lr / n = {report['eta']:.6g}",
             f"lambda_0        {num(report['lambda_0'])}"
             + (f"  ({report['lambda_0_note']})" if report["lambda_0_note"] else
                "  (infinite-width kernel at the run's initialisation)"),
             f"lambda_min H(0) {num(report['lambda_min_H0'])}  (step {report['step_0']})",
             f"lambda_min H(T) {num(report['lambda_min_HT'])}  (step {report['step_T']})",
             f"rate per step   {num(report['rate_per_step'])}  (1 - eta lambda_0 / 2: GD's "
             f"bound on |f - y|^2)",
             f"rate per time   {num(report['rate_per_time'])}  (decay rate of the bound in t)",
             f"bound at T      {num(report['bound_at_T'])}  "
             f"((1 - eta lambda_0 / 2)^k over the run)"]
    return "\n".join(lines)


# ------------------------------------------------------- snapshot observables of a run
GRAM_POINTS = 1000
"""Training inputs (the first ones) on which the snapshot observables form the Gram matrix."""


def _gradient_descent(problem) -> bool:
    """Two-layer network runs trained by full-batch descent (``gd``, ``ggn``)."""
    cfg = problem.config
    return (cfg.model.kind == "two_layer" and cfg.train.model == "network"
            and cfg.train.algorithm in ("gd", "ggn"))


def _gram_attrs(problem) -> dict:
    return {"points": int(min(GRAM_POINTS, problem.data.x_train.shape[0])),
            "data": "training set", "layers": "both"}


def _gram_inputs(problem):
    return problem.cached("gram_inputs", lambda: np.ascontiguousarray(
        problem.data.x_train[:GRAM_POINTS], dtype=np.float64))


def _state_gram(state):
    """H(t) of ``state`` (computed once per step for the observables that need it)."""
    pb = state.problem
    if pb.cache.get("gram_step") != state.step:
        pb.cache["gram"] = empirical_ntk(state.particles, _gram_inputs(pb),
                                         activation=pb.config.model.activation)
        pb.cache["gram_step"] = state.step
    return pb.cache["gram"]


@register("gram_lambda_min", "lambda_min of the empirical Gram H(t) (both layers) on the "
          "training inputs", applies=_gradient_descent, attrs=_gram_attrs)
def gram_lambda_min_observable(state) -> float:
    """:func:`gram_lambda_min` of the run's particles on its training inputs."""
    return lambda_min(_state_gram(state))


@register("gram_change", "|H(t) - H(0)|_2 / |H(0)|_2, relative change of the empirical Gram "
          "on the training inputs", applies=_gradient_descent, attrs=_gram_attrs)
def gram_change_observable(state) -> float:
    """:func:`gram_change` of the run's particles on its training inputs."""
    pb = state.problem
    H0 = pb.cached("gram0", lambda: empirical_ntk(pb.P0, _gram_inputs(pb),
                                                  activation=pb.config.model.activation))
    norm0 = pb.cached("gram0_norm", lambda: _spectral_norm(H0))
    return _spectral_norm(_state_gram(state) - H0) / norm0 if norm0 > 0 else math.nan


@register("pattern_flips", "fraction of (particle, training input) activation signs "
          "changed since initialisation", applies=_gradient_descent, attrs=_gram_attrs)
def pattern_flips_observable(state) -> float:
    """:func:`pattern_flips` of the run's particles on its training inputs."""
    pb = state.problem
    return pattern_flips(state.particles, pb.P0, _gram_inputs(pb))


@register("max_relative_move", "max_i |w_i(t) - w_i(0)| / |w_i(0)|",
          applies=_gradient_descent)
def max_relative_move_observable(state) -> float:
    """:func:`max_relative_move` of the run's particles."""
    return max_relative_move(state.particles, state.problem.P0)
