r"""Global optimality of relu networks with weight decay: the polar and a duality gap.

A relu neuron without bias, :math:`\phi(w, x) = c\,\mathrm{relu}(a\cdot x)`,
is 2-homogeneous in :math:`w = (a, c)`, and so is the weight decay
:math:`|w|^2/2`; a bias is absorbed by appending a constant 1 to every input
(:math:`a \leftarrow (a, b)`, :math:`x \leftarrow (x, 1)`), so below ``a`` and
``x`` have k = d (no bias) or d + 1 (bias) coordinates.

**First variation.**  With :math:`\mu = \frac1m\sum_i \delta_{w_i}`, eqs. (1)-(2)
of the design contract read :math:`f = \alpha \int \phi(w,\cdot)\,d\mu` and
:math:`J = R(f)/\alpha^2 + \lambda\int |w|^2/2\,d\mu`, whose first variation is

.. math:: J'(\mu)(w) = -\frac{c}{\alpha}\, g(a) + \frac{\lambda}{2}(|a|^2 + c^2),
   \qquad g(a) = \frac1n \sum_j z_j\, \mathrm{relu}(a\cdot x_j),
   \qquad z_j = -\partial_f \ell(f(x_j), y_j).

Writing :math:`a = r u` with :math:`|u| = 1` and using
:math:`(r^2 + c^2)/2 \ge r|c|` (equality at :math:`|c| = r`),
:math:`\min_{c} J'(\mu)(r u, c) = r^2 (\lambda - |g(u)|/\alpha)`, so
:math:`J'(\mu) \ge 0` everywhere iff the **polar**

.. math:: \Omega^\circ(z) = \max_{|u| = 1} |g(u)| \le \alpha\lambda .

J is convex in mu (over nonnegative measures), so a stationary point of the
particles (zero velocity, eq. (3): J'(mu) = 0 on the support) with
:math:`\Omega^\circ \le \alpha\lambda` is a global minimum of the lifted problem,
and the duality gap below is zero exactly there.

A violated certificate names the neuron to insert: :math:`w = s(u^*, \sigma)`
with :math:`\sigma = \mathrm{sign}\, g(u^*)`.  Inserting it into m particles
while scaling them by :math:`\sqrt{(m+1)/m}` (which leaves f and J unchanged,
by homogeneity; :func:`insert_neuron`) changes J by
:math:`\frac{s^2}{m+1}(\lambda - \Omega^\circ/\alpha) + O(s^4)`.

**Convex problem and its dual.**  By the same inequality,
:math:`\alpha^2 \inf J = \inf_h P(h)` over signed measures h on the sphere
(a lasso over the infinite relu dictionary), with
:math:`f = \int \mathrm{relu}(u\cdot x)\,dh(u)` and

.. math:: P(h) = \frac1n\sum_j \ell(f(x_j), y_j) + \alpha\lambda\, |h|_{TV},
   \qquad D(z) = -\frac1n \sum_j \ell^*(-z_j; y_j)
   \quad\text{s.t.}\quad \Omega^\circ(z) \le \alpha\lambda,

where :math:`\ell^*` is the convex conjugate in f:
:math:`-\ell^*(-z) = z y - z^2/2` (squared) and :math:`= H(z y)`, the
binary entropy in nats, for :math:`zy \in [0, 1]` (logistic).  Weak duality
gives :math:`J(P) \ge \inf J \ge D(z)/\alpha^2` for every feasible z.  The
current :math:`z` is scaled to :math:`t z` with the t in
:math:`[0, \alpha\lambda/\Omega^\circ(z)]` that maximises :math:`D(tz)`, and

.. math:: \mathrm{gap} = J(P) - D(t z)/\alpha^2 \ge J(P) - \inf J .

When the polar is exact (k <= 2) the gap is a certified bound on the
suboptimality; for k > 2 the polar is a lower bound from a multi-start ascent
and the gap is not certified (``exact`` is False).  The ascent always starts
from the particle directions, so even then
:math:`t\,\frac1n\sum_j z_j f(x_j) \le \alpha^2\lambda\frac1m\sum_i |a_i||c_i|`
and the gap is >= 0 by Fenchel-Young.

All of this is on the training set, and holds for relu networks only
(``model.activation = "relu"``, ``train.model = "network"``).

Examples
--------
>>> import numpy as np
>>> X = np.random.default_rng(0).standard_normal((50, 2)); y = np.abs(X[:, 0])
>>> cfg = {"model": {"m": 4}, "data": {"d": 2}, "train": {"weight_decay": 1e-3}}
>>> P = np.random.default_rng(1).standard_normal((4, 3))
>>> cert = certify(P, (X, y), config=cfg)
>>> cert.exact, cert.gap >= 0
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import entr, expit, log1p

from .errors import InputError
from .kernels.optimality import correlate
from .observables import register

ASCENT_STARTS = 256
"""At most this many starts of the ascent for k > 2 (particle directions first)."""
ASCENT_WORK = 1 << 25
"""Multiply-adds of one ascent iteration (2 x starts x n x k) at most, above 8 starts."""
ASCENT_ITERATIONS = 100
QUICK_STARTS, QUICK_ITERATIONS = 8, 15  # the snapshot observables' ascent (k > 2)


# ---------------------------------------------------------------------- losses
def _squared_dual(z, y):
    return z * y - 0.5 * z * z


def _logistic_dual(z, y):
    s = z * y
    return np.where((s >= 0) & (s <= 1), entr(s) + entr(1.0 - s), -np.inf)


LOSSES = {
    "squared": (lambda f, y: 0.5 * (f - y) ** 2, lambda f, y: y - f, _squared_dual),
    "logistic": (lambda f, y: log1p(np.exp(-np.abs(y * f))) + np.maximum(-y * f, 0.0),
                 lambda f, y: y * expit(-y * f), _logistic_dual),
}
"""name -> (loss(f, y), z = -loss'(f, y), -loss*(-z; y)), vectorised."""


@dataclass(frozen=True)
class Problem:
    """The training problem of a relu network: inputs (with a column of ones for a bias),
    labels, alpha, weight decay lam and loss name."""

    X: np.ndarray
    y: np.ndarray
    alpha: float
    lam: float
    loss: str

    @classmethod
    def from_config(cls, config, data) -> "Problem":
        """The problem of ``config`` (Config or dict) on ``data`` (Dataset or (X, y))."""
        from .config import Config
        if isinstance(config, dict):
            config = Config.from_dict(config)
        if config.model.kind != "two_layer":
            raise InputError("model.kind must be 'two_layer' for an optimality certificate")
        if config.model.activation != "relu":
            raise InputError("model.activation must be 'relu' for an optimality certificate "
                             f"(got {config.model.activation!r})")
        if config.train.model != "network":
            raise InputError("train.model must be 'network' for an optimality certificate")
        X, y = (data.x_train, data.y_train) if hasattr(data, "x_train") else data
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or y.shape != X.shape[:1] or X.shape[1] != config.data.d:
            raise InputError(f"data: expected X of shape (n, {config.data.d}) and y of shape "
                             f"(n,), got {X.shape} and {y.shape}")
        if config.loss.name == "logistic" and not np.all(np.abs(y) == 1.0):
            raise InputError("data: labels must be in {-1, 1} for the logistic loss")
        if config.model.bias:
            X = np.hstack([X, np.ones((len(X), 1))])
        return cls(np.ascontiguousarray(X), y, float(config.alpha),
                   float(config.train.weight_decay), config.loss.name)

    def check(self, P) -> np.ndarray:
        """``P`` as a float64 (m, k + 1) array; InputError otherwise."""
        P = np.asarray(P, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != self.X.shape[1] + 1:
            raise InputError(f"particles: expected shape (m, {self.X.shape[1] + 1}), "
                             f"got {P.shape}")
        return P

    def output(self, P) -> np.ndarray:
        """f(x_j) of eq. (1) for every training input (0 for m = 0)."""
        if len(P) == 0:
            return np.zeros(len(self.y))
        return (self.alpha / len(P)) * (np.maximum(self.X @ P[:, :-1].T, 0.0) @ P[:, -1])

    def objective(self, P) -> float:
        """J(P) of eq. (2)."""
        risk = float(np.mean(LOSSES[self.loss][0](self.output(P), self.y)))
        decay = 0.5 * self.lam * float(np.sum(P * P)) / len(P) if len(P) else 0.0
        return risk / self.alpha ** 2 + decay

    def residual(self, P) -> np.ndarray:
        """z_j = -loss'(f(x_j), y_j)."""
        return LOSSES[self.loss][1](self.output(P), self.y)

    def dual(self, z) -> float:
        """D(z) = -(1/n) sum_j loss*(-z_j; y_j) (without the feasibility constraint)."""
        return float(np.mean(LOSSES[self.loss][2](z, self.y)))


def _source(run_or_P, data, config, snapshot):
    """(Problem, particles) of a Run (at ``snapshot``) or of an array with its data and config."""
    if hasattr(run_or_P, "particles") and hasattr(run_or_P, "config"):
        run = run_or_P
        n = len(run.steps)
        if not -n <= snapshot < n:
            raise InputError(f"snapshot {snapshot} out of range: the run has {n} snapshots")
        problem = Problem.from_config(run.config if config is None else config,
                                      run.data if data is None else data)
        return problem, problem.check(run.particles(snapshot))
    if data is None or config is None:
        raise InputError("particles given as an array need data and config")
    problem = Problem.from_config(config, data)
    return problem, problem.check(run_or_P)


# ----------------------------------------------------------------------- polar
@dataclass(frozen=True)
class Polar:
    """max_{|u|=1} |g(u)|: its ``value``, the maximising unit ``direction`` u (k entries),
    ``sign`` of g there, and whether it is ``exact`` (else a lower bound)."""

    value: float
    direction: np.ndarray
    sign: float
    exact: bool


def correlation(z, X, U, gradient=False):
    """g(u) = (1/n) sum_j z_j relu(u . x_j) for every row u of ``U`` (and its gradient)."""
    U = np.ascontiguousarray(np.atleast_2d(U), dtype=np.float64)
    g, G = np.empty(len(U)), np.empty_like(U)
    correlate(U, np.ascontiguousarray(X, dtype=np.float64),
              np.ascontiguousarray(z, dtype=np.float64), g, G)
    return (g, G) if gradient else g


def _best(z, X, U, exact) -> Polar:
    """The row of ``U`` with the largest |g|, evaluated directly."""
    g = correlation(z, X, U)
    i = int(np.argmax(np.abs(g)))
    return Polar(float(abs(g[i])), U[i].copy(), 1.0 if g[i] >= 0 else -1.0, exact)


def _circle(z, X) -> Polar:
    """Exact polar for k = 2: g is linear in u on each arc of constant activation pattern.

    On the arc between consecutive boundary angles (where u . x_j changes sign),
    g(u) = u . v with v = (1/n) sum_{j active} z_j x_j; the maximum of +-g there
    is |v| when +-v points into the arc, and otherwise at an arc end.
    """
    keep = (z != 0) & np.any(X != 0, axis=1)
    if not np.any(keep):
        return Polar(0.0, np.array([1.0, 0.0]), 1.0, True)
    Xk = X[keep]
    zx = z[keep, None] * Xk / len(z)
    enter = np.mod(np.arctan2(Xk[:, 1], Xk[:, 0]) - np.pi / 2, 2 * np.pi)
    events = np.concatenate([enter, np.mod(enter + np.pi, 2 * np.pi)])
    order = np.argsort(events, kind="stable")
    events, delta = events[order], np.vstack([zx, -zx])[order]
    ends = np.append(events[1:], events[0] + 2 * np.pi)
    mid = 0.5 * (events[-1] - 2 * np.pi + events[0])         # inside the wrap-around arc
    v = (Xk @ [np.cos(mid), np.sin(mid)] > 0) @ zx + np.cumsum(delta, axis=0)
    angle = np.arctan2(v[:, 1], v[:, 0])
    inside = ((np.mod(angle - events, 2 * np.pi) <= ends - events)
              | (np.mod(angle + np.pi - events, 2 * np.pi) <= ends - events))
    on_arc = np.where(inside, np.hypot(v[:, 0], v[:, 1]), -np.inf)
    at_ends = np.maximum(np.abs(np.cos(events) * v[:, 0] + np.sin(events) * v[:, 1]),
                         np.abs(np.cos(ends) * v[:, 0] + np.sin(ends) * v[:, 1]))
    k = int(np.argmax(np.maximum(on_arc, at_ends)))
    t = np.array([events[k], ends[k], angle[k], angle[k] + np.pi])
    return _best(z, X, np.column_stack([np.cos(t), np.sin(t)]), True)


def _ascent(z, X, starts, candidates, iterations=ASCENT_ITERATIONS) -> Polar:
    """Lower bound for k > 2: projected ascent of sigma g on the sphere from every start.

    Each step moves u to (u + eta sigma grad g / |grad g|) / |.|, with
    grad g(u) = (1/n) sum_{j: u . x_j > 0} z_j x_j: for large eta this is the
    maximiser sigma v_S / |v_S| of the linear piece of the activation set S of u.
    A step is kept when it increases sigma g (then eta doubles) and otherwise
    eta shrinks tenfold, until every eta < 1e-7; starts that reached the same
    point after the first step are followed once, for at most ``iterations``
    steps (one pass over the data each: a point's gradient comes with its value).
    ``candidates`` are evaluated as well.
    """
    g, G = correlation(z, X, starts, gradient=True)
    U, grads, value = np.vstack([starts, starts]), np.vstack([G, G]), np.concatenate([g, -g])
    sigma, eta = np.repeat([1.0, -1.0], len(g)), np.full(len(U), 1e6)
    for it in range(iterations):
        if it == 1:
            _, first = np.unique(np.round(np.column_stack([U, sigma]), 12), axis=0,
                                 return_index=True)
            U, grads, sigma, value, eta = (a[first] for a in (U, grads, sigma, value, eta))
        live = np.flatnonzero(eta > 1e-7)
        if len(live) == 0:
            break
        grad = grads[live]
        size = np.linalg.norm(grad, axis=1)
        step = U[live] + (eta[live] * sigma[live] / np.where(size > 0, size, 1.0))[:, None] * grad
        step /= np.linalg.norm(step, axis=1, keepdims=True)
        new, new_grad = correlation(z, X, step, gradient=True)
        new *= sigma[live]
        better = new > value[live]
        U[live[better]], value[live[better]] = step[better], new[better]
        grads[live[better]] = new_grad[better]
        eta[live] = np.where(better & (size > 0), np.minimum(2 * eta[live], 1e6), eta[live] / 10)
    return _best(z, X, np.vstack([U, candidates]), False)


def _unit_rows(A) -> np.ndarray:
    norm = np.linalg.norm(A, axis=1)
    return A[norm > 0] / norm[norm > 0, None]


def polar_of(z, X, particles=None, quick=False) -> Polar:
    """The polar max_{|u|=1} |(1/n) sum_j z_j relu(u . x_j)| of the residuals ``z``.

    Exact for k = X.shape[1] <= 2 (both signs for k = 1, :func:`_circle` for k = 2);
    for k > 2 the best of an ascent (:func:`_ascent`) from the directions of the
    ``particles`` (largest |a||c| first) and of the data, at most ``ASCENT_STARTS`` in
    all (fewer for large n k: ``ASCENT_WORK``), and of every particle direction.
    ``quick`` (snapshot observables): from the ``QUICK_STARTS`` heaviest particle
    directions, ``QUICK_ITERATIONS`` steps; these starts are among the full ascent's for
    n k <= 2^19 and an ascent never lowers a start's value, so quick <= full there.
    """
    z, X = np.asarray(z, dtype=np.float64), np.asarray(X, dtype=np.float64)
    k = X.shape[1]
    if k == 1:
        return _best(z, X, np.array([[1.0], [-1.0]]), True)
    if k == 2:
        return _circle(z, X)
    P = np.zeros((0, k + 1)) if particles is None else particles
    candidates = _unit_rows(P[np.argsort(-np.linalg.norm(P[:, :-1], axis=1)
                                         * np.abs(P[:, -1])), :-1])
    if quick:
        starts, iterations = candidates[:QUICK_STARTS], QUICK_ITERATIONS
    else:
        most = int(np.clip(ASCENT_WORK // (2 * X.size), 8, ASCENT_STARTS))
        data = _unit_rows(X)
        if len(data) > most:
            data = data[np.random.default_rng(0).choice(len(data), most, replace=False)]
        starts, iterations = np.vstack([candidates[:most // 2], data])[:most], ASCENT_ITERATIONS
    if len(starts) == 0:
        return Polar(0.0, np.eye(k)[0], 1.0, False)
    return _ascent(z, X, starts, candidates, iterations)


def polar(run_or_P, data=None, config=None, snapshot=-1) -> Polar:
    """The polar of the residuals of a run's particles (or of an array ``P``).

    Parameters
    ----------
    run_or_P : Run or (m, D) array
        A run (its config, training data and snapshot ``snapshot``) or particles.
    data : Dataset or (X, y), optional
        Training data (required with an array).
    config : Config or dict, optional
        alpha, weight decay, loss and bias (required with an array).
    snapshot : int
        Snapshot of the run (negative counts from the last).

    Returns
    -------
    Polar
        value max_u |g(u)|, the maximiser, the sign of g there, and ``exact``
        (True for k = d (+1 with bias) <= 2, else a lower bound).

    Raises
    ------
    InputError
        for a non-relu or tangent model, mismatched shapes or a bad snapshot.
    """
    problem, P = _source(run_or_P, data, config, snapshot)
    return polar_of(problem.residual(P), problem.X, P)


# ------------------------------------------------------------------ duality gap
@dataclass(frozen=True)
class Certificate:
    """Optimality certificate of one network.

    ``polar`` against ``bound`` = alpha * lam; ``objective`` J(P); ``dual`` the
    lower bound D(t z) / alpha^2 on inf J; ``gap`` = objective - dual; ``exact``
    whether polar (and so the gap) is certified; ``direction`` and ``sign`` of
    the neuron that lowers J fastest when ``polar > bound``.
    """

    polar: float
    bound: float
    gap: float
    objective: float
    dual: float
    exact: bool
    direction: np.ndarray
    sign: float

    @property
    def certified(self) -> bool:
        """Whether no neuron lowers J to first order, for certain: exact and polar <= bound."""
        return self.exact and self.polar <= self.bound

    def as_dict(self) -> dict:
        """Plain JSON-able values."""
        return {"polar": self.polar, "bound": self.bound, "gap": self.gap,
                "objective": self.objective, "dual": self.dual, "exact": self.exact,
                "certified": self.certified, "direction": [float(u) for u in self.direction],
                "sign": self.sign}

    def summary(self) -> str:
        """Human-readable lines (what ``meanfield certify`` prints)."""
        how = "exact" if self.exact else "lower bound (multi-start ascent)"
        verdict = ("certified: no neuron lowers J to first order" if self.certified else
                   "violated: a neuron along the direction lowers J" if self.polar > self.bound
                   else "not certified (the polar is a lower bound)")
        gap = "upper bound on J - inf J" if self.exact else "not certified"
        return "\n".join([
            f"polar      {self.polar:.8g}  ({how})",
            f"bound      {self.bound:.8g}  (alpha * weight_decay)",
            f"gap        {self.gap:.6g}  ({gap})",
            f"objective  {self.objective:.10g}  (J; dual bound {self.dual:.10g})",
            f"direction  {np.array2string(self.direction, precision=6)}  sign {self.sign:+g}",
            verdict])


def _dual_scale(problem: Problem, z, value: float) -> float:
    """The t in [0, alpha lam / polar] (and in the loss's domain) maximising D(t z)."""
    top = problem.alpha * problem.lam / value if value > 0 else np.inf
    if problem.loss == "squared":
        zz = float(z @ z)
        return float(np.clip(z @ problem.y / zz, 0.0, top)) if zz > 0 else 0.0
    top = min(top, 1.0 / max(float(np.max(z * problem.y)), 1e-300))
    if top == 0:
        return 0.0
    res = minimize_scalar(lambda t: -problem.dual(t * z), bounds=(0.0, top), method="bounded",
                          options={"xatol": 1e-12 * top})
    return max((0.0, top, float(res.x)), key=lambda t: problem.dual(t * z))


def certificate_of(problem: Problem, P, quick=False) -> Certificate:
    """The :class:`Certificate` of particles ``P`` for ``problem`` (``quick``: of
    :func:`polar_of`)."""
    z = problem.residual(P)
    p = polar_of(z, problem.X, P, quick)
    J = problem.objective(P)
    dual = problem.dual(_dual_scale(problem, z, p.value) * z) / problem.alpha ** 2
    return Certificate(p.value, problem.alpha * problem.lam, J - dual, J, dual, p.exact,
                       p.direction, p.sign)


def certify(run_or_P, data=None, config=None, snapshot=-1) -> Certificate:
    """Polar, bound alpha * lam and duality gap of a run's snapshot (or of an array ``P``).

    Arguments as in :func:`polar`.  ``gap >= J(P) - inf J >= 0``, a certified
    bound when ``exact``; the network is globally optimal iff polar <= bound.
    """
    problem, P = _source(run_or_P, data, config, snapshot)
    return certificate_of(problem, P)


def insert_neuron(P, direction, sign, scale) -> np.ndarray:
    r"""Particles (m + 1, D): ``P`` times sqrt((m + 1) / m) and the neuron scale * (u, sign).

    The scaling keeps f and J of the first m neurons unchanged (2-homogeneity),
    so J changes by :math:`\frac{s^2}{m+1}(\lambda - \sigma g(u)/\alpha) + O(s^4)`.
    """
    P = np.asarray(P, dtype=np.float64)
    m = len(P)
    row = scale * np.append(direction, sign)
    grown = np.sqrt((m + 1) / m) * P if m else P.reshape(0, len(row))
    return np.ascontiguousarray(np.vstack([grown, row]))


# ------------------------------------------------------------------ observables
def _certifiable(problem) -> bool:
    """Runs whose objective J is the training-set one of a relu network (``gd``, ``grow``)
    with weight decay (without it the bound is 0 and the gap J itself)."""
    cfg = problem.config
    return (cfg.model.kind == "two_layer" and cfg.model.activation == "relu"
            and cfg.train.model == "network" and cfg.train.algorithm in ("gd", "grow")
            and cfg.train.weight_decay > 0)


def _series_attrs(problem) -> dict:
    cfg = problem.config
    exact = cfg.data.d + cfg.model.bias <= 2
    how = ("exact" if exact else
           f"lower bound of `meanfield certify`'s polar: ascent from the {QUICK_STARTS} "
           f"heaviest particle directions, {QUICK_ITERATIONS} iterations"
           if cfg.train.algorithm != "grow" else
           "lower bound: the multi-start ascent of `meanfield certify`")
    return {"exact": bool(exact), "polar": how,
            "bound": float(cfg.alpha * cfg.train.weight_decay), "data": "training set"}


def state_certificate(state) -> Certificate:
    """The certificate of ``state`` (computed once per step for both observables; quick
    except for growing networks, small and certified anyway)."""
    cache = state.problem.cache
    if cache.get("certificate_step") != state.step:
        problem = state.problem.cached(
            "certificate_problem", lambda: Problem.from_config(state.problem.config,
                                                               state.problem.data))
        cache["certificate"] = certificate_of(problem, state.particles,
                                              quick=state.problem.config.train.algorithm != "grow")
        cache["certificate_step"] = state.step
    return cache["certificate"]


@register("polar", "max over unit u of |(1/n) sum_j z_j relu(u . x_j)|, z_j = -loss'(f(x_j)); "
          "globally optimal iff <= bound = alpha * weight_decay (at a stationary point); "
          "exact for d (+1 with bias) <= 2, else a cheap lower bound (attribute 'polar')",
          applies=_certifiable, attrs=_series_attrs)
def polar_observable(state) -> float:
    """The polar of the residuals (exact for d (+1 with bias) <= 2, else the quick
    lower bound of :func:`polar_of`, or the full one for growing networks)."""
    return state_certificate(state).polar


@register("duality_gap", "J - D(t z) / alpha^2 >= J - inf J over measures (certified if exact)",
          applies=_certifiable, attrs=_series_attrs)
def duality_gap_observable(state) -> float:
    """The duality gap of :func:`certificate_of`."""
    return state_certificate(state).gap
