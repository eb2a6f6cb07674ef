r"""Growing networks: GD with weight decay, and a neuron inserted where the certificate fails.

The meta-algorithm of Haeffele & Vidal for a sum of 2-homogeneous relu
neurons with weight decay lam (see :mod:`meanfield.optimality`):

1. full-batch GD (:mod:`meanfield.algorithms.gd`) on J of eq. (2) until the
   mean squared velocity over the last ``record.every`` = K steps,
   :math:`\frac1m\sum_i |w_i(k) - w_i(k-K)|^2 / (K\,\mathrm{lr})^2`, is below
   ``grow.tolerance`` (the displacement, not the instantaneous velocity
   ``velocity_sq``: at a kink of the relu objective GD zigzags with a velocity
   that does not vanish, while it makes no progress);
2. the certificate there: the polar
   :math:`\Omega^\circ = \max_{|u|=1} |\frac1n\sum_j z_j\,\mathrm{relu}(u\cdot x_j)|`
   and the duality gap :math:`J - D(tz)/\alpha^2 \ge J - \inf J`;
3. if the gap is below ``grow.gap_tolerance`` the network is certified and
   grows no more; if :math:`\Omega^\circ > \alpha\lambda` one neuron
   :math:`s\,(u^*, \mathrm{sign}\, g(u^*))`, s = ``grow.init_scale``, is
   inserted (:func:`meanfield.optimality.insert_neuron`: the others are
   scaled by :math:`\sqrt{(m+1)/m}`, which keeps f and J), which lowers J by
   :math:`\frac{s^2}{m+1}(\Omega^\circ/\alpha - \lambda) + O(s^4)`, unless a
   neuron with that direction (within ``SAME_DIRECTION``), sign and at least
   that scale is there already: then growing it lowers J as fast, GD does so,
   and a copy would only
   split its mass (in d = 2 the maximiser often sits exactly at the kink
   where a neuron has stopped, and copies would pile up there); otherwise (the
   velocity is small but the point not yet stationary enough) GD goes on;
4. at ``grow.max_neurons`` neurons the network grows no more either.

GD runs on to ``train.steps`` in every case (a certified network barely
moves).  The velocity is tested every ``record.every`` steps, at the steps
that are multiples of it (never at a chunk's end), so where a run is cut
into chunks, checkpoints and resumes does not change it: a resumed run is
bit-identical.  A test at step k happens before the step, so the records
and snapshot taken at step k show the network before an insertion there.

``State.extras`` (checkpointed) holds ``previous``, the particles K steps
before (none at step 0, so the first test is at step K), ``reference``, the initial particles
grown by the same insertions (the point ``displacement`` and
``balance_drift`` are measured from, so that they measure GD's motion
only; the problem's ``P0`` and model follow it), ``stopped`` (0 growing,
1 certified, 2 at ``max_neurons``) and ``certificates``, one row per
certificate test (step, neurons after it, polar, bound alpha lam, gap).
The snapshot observables ``neurons``, ``objective`` (J) and ``dual_bound``
(J - gap, a certified lower bound on inf J when the polar is exact) are
recorded with ``polar`` and ``duality_gap``.
"""

from __future__ import annotations

import numpy as np

from ..kernels.structs import make_model
from ..observables import register
from .. import optimality  # attributes read at call time: optimality imports observables
from ..state import Records
from . import gd

STREAMS = gd.STREAMS
GROWING, CERTIFIED, FULL = 0, 1, 2
LOG_COLUMNS = ("step", "neurons", "polar", "bound", "gap")
SAME_DIRECTION = 1e-2
"""Neurons whose unit directions are closer than this count as one direction."""


def init(config, data, rng):
    """The state at step 0 (see :mod:`meanfield.algorithms`) with the growth extras."""
    state = gd.init(config, data, rng)
    D = state.particles.shape[1]
    state.extras.update(previous=np.zeros((0, D)), reference=state.particles.copy(),
                        stopped=np.int64(GROWING),
                        certificates=np.zeros((0, len(LOG_COLUMNS))))
    return state


def work(config) -> float:
    """n m D at the largest width: the size of one GD step's two GEMMs."""
    return config.data.n_train * config.grow.max_neurons * config.dim


def _sync(state):
    """Point the problem (P0, model) at ``extras['reference']`` (after a resume or insertion)."""
    pb, ref = state.problem, state.extras["reference"]
    if pb.model.P0.shape != ref.shape or pb.model.P0 is not ref:
        cfg = pb.config
        pb.P0 = ref
        pb.model = make_model(cfg.model.activation, cfg.loss.name, cfg.alpha,
                              cfg.train.weight_decay, False, ref)


def mean_velocity_sq(state) -> float:
    r"""(1/m) sum_i |w_i(k) - w_i(k - K)|^2 / (K lr)^2, K = ``record.every``, from
    ``extras['previous']`` (inf when there is none of the same m)."""
    P, previous, cfg = state.particles, state.extras["previous"], state.problem.config
    if previous.shape != P.shape:
        return np.inf
    step = cfg.record.every * cfg.train.lr
    return float(np.mean(np.sum((P - previous) ** 2, axis=1))) / step ** 2


def present(P, direction, sign, scale) -> bool:
    """Whether a row of ``P`` of norm >= ``scale`` has the unit ``direction`` (within
    ``SAME_DIRECTION``) and an output weight of ``sign``."""
    A = P[:, :-1]
    norm = np.linalg.norm(A, axis=1)
    live = (norm > 0) & (P[:, -1] * sign > 0) & (np.linalg.norm(P, axis=1) >= scale)
    close = np.linalg.norm(A[live] / norm[live, None] - direction, axis=1) < SAME_DIRECTION
    return bool(np.any(close))


def _certifier(state) -> optimality.Problem:
    pb = state.problem
    return pb.cached("certificate_problem",
                     lambda: optimality.Problem.from_config(pb.config, pb.data))


def _test(state):
    """The certificate test at ``state.step`` (velocity below tolerance): log, stop or insert."""
    cfg, ex = state.problem.config, state.extras
    cert = optimality.certificate_of(_certifier(state), state.particles)
    m = len(state.particles)
    if cert.gap < cfg.grow.gap_tolerance:
        ex["stopped"] = np.int64(CERTIFIED)
    elif cert.polar > cert.bound and not present(state.particles, cert.direction, cert.sign,
                                                 cfg.grow.init_scale):
        if m >= cfg.grow.max_neurons:
            ex["stopped"] = np.int64(FULL)
        else:
            grow = (cert.direction, cert.sign, cfg.grow.init_scale)
            state.particles = optimality.insert_neuron(state.particles, *grow)
            ex["reference"] = optimality.insert_neuron(ex["reference"], *grow)
            state.problem.cache.pop("certificate_step", None)
            _sync(state)
    row = [state.step, len(state.particles), cert.polar, cert.bound, cert.gap]
    ex["certificates"] = np.vstack([ex["certificates"], row])


def advance(state, n_steps):
    """``n_steps`` GD steps with the tests of the module docstring at multiples of
    ``record.every`` (see :mod:`meanfield.algorithms`)."""
    _sync(state)
    cfg = state.problem.config
    every, end = cfg.record.every, state.step + n_steps
    steps, rows = [], []
    while True:
        k = state.step
        if k % every == 0 and k < cfg.train.steps and int(state.extras["stopped"]) == GROWING:
            if mean_velocity_sq(state) < cfg.grow.tolerance:
                _test(state)
            state.extras["previous"] = state.particles.copy()
        state = gd.advance(state, min(end, (k // every + 1) * every) - k)
        steps.append(state.records.steps)
        rows.append(state.records.values)
        if state.diverged or state.step == end:
            break
    state.records = Records(np.concatenate(steps), np.concatenate(rows))
    return state


# ------------------------------------------------------------------ observables
def _growing(problem) -> bool:
    return problem.config.train.algorithm == "grow"


@register("neurons", "number of neurons m of a growing network", applies=_growing)
def neurons(state) -> float:
    """m, the number of particles."""
    return float(len(state.particles))


@register("objective", "J = R / alpha^2 + (lam / m) sum_i |w_i|^2 / 2 on the training set",
          applies=_growing)
def objective(state) -> float:
    """J(P) of eq. (2) on the training set."""
    return _certifier(state).objective(state.particles)


@register("dual_bound", "J - duality_gap = D(t z) / alpha^2 <= inf J (certified if exact)",
          applies=_growing, attrs=lambda pb: {"exact": bool(pb.config.data.d
                                                            + pb.config.model.bias <= 2)})
def dual_bound(state) -> float:
    """The dual lower bound on inf J of the certificate at this snapshot."""
    return optimality.state_certificate(state).dual
