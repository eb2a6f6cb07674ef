r"""Deep linear networks in the engine: every run with ``model.kind = "deep_linear"``.

``train.algorithm`` chooses the dynamics (:mod:`meanfield.deep_linear`):

* ``gd`` - GD on the layers, W_j <- W_j - lr grad_{W_j} L;
* ``end_to_end`` - Euler steps of the depth-N end-to-end dynamics on W_e;
* ``adagrad``, ``adam`` - the adaptive baselines on the depth-1 model
  (eps = 1e-8; Adam's beta1 = 0.9, beta2 = 0.999).

``State.particles`` is the parameter vector as a (1, P) array: the layers
W_1, ..., W_N back to back (``gd``) or W_e row-major (the others), so each
snapshot stores every layer (:func:`meanfield.deep_linear.stored_layers`
splits it; run files also hold each layer in its own group, ``run.layers(k)``).
``State.extras`` holds AdaGrad's ``acc``, Adam's ``moments``
and, with ``train.track_end_to_end``, the end-to-end reference ``flow``
run alongside GD; all of them are checkpointed, so a resumed run is
bit-identical.  Every ``record.every`` steps (each stretch in between is one
compiled call) the row ``train_loss``, ``test_loss``, ``velocity_sq``
(|v|^2 of the parameters' velocity: -grad for ``gd``, -P(W_e) grad L for
``end_to_end``; the squared gradient for ``adagrad`` and ``adam``) and
``displacement`` |theta_t - theta_0| / |theta_0| is recorded.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..deep_linear.config import dims as config_dims
from ..deep_linear.inits import initialise
from ..deep_linear.model import loss_power
from ..errors import InputError
from ..kernels import deep_linear as K
from ..kernels.training import COLUMNS, Data
from ..state import Problem, Records, State

NAMES = ("train_loss", "test_loss", "velocity_sq", "displacement")
ADAM = (0.9, 0.999, 1e-8)
EPS = 1e-8

Spec = namedtuple("Spec", ["algorithm", "dims", "depth", "p", "lr"])
Spec.__doc__ = "The trained model: algorithm name, widths (int64), depth N, loss power, lr."


def init(config, data, rng) -> State:
    """The state at step 0: layers from ``init.layers`` (scale ``init.tau``) on ``rng.init``."""
    k, alg = config.model.outputs, config.train.algorithm
    for name in ("y_train", "y_test"):
        y = getattr(data, name)
        if y.ndim != 2 or y.shape[1] != k:
            raise InputError(f"data: {name} must have shape (n, model.outputs = {k}), "
                             f"got {y.shape}")
    net = initialise(config.init.layers, config_dims(config), config.init.tau, rng.init)
    w = net.end_to_end()
    P = (net.theta if alg == "gd" else w.ravel()).reshape(1, -1).copy()
    extras = {"acc": np.zeros_like(w)} if alg == "adagrad" else \
        {"moments": np.zeros((2,) + w.shape)} if alg == "adam" else {}
    if config.train.track_end_to_end:
        extras["flow"] = w
    spec = Spec(alg, net.dims, net.depth, loss_power(config.loss.name, config.loss.p),
                config.train.lr)
    arrays = Data(data.x_train, data.y_train, data.x_test, data.y_test)
    pb = Problem(config, data, P.copy(), spec, None, False, [COLUMNS.index(n) for n in NAMES],
                 rng.population, arrays)
    return State(P, 0, {}, extras, pb)


def work(config) -> float:
    """n times the parameters (one step's products with the data)."""
    return config.data.n_train * (np.prod(config_dims(config)[:2]) + config.data.d
                                  * config.model.outputs * config.model.depth)


def end_to_end(state) -> np.ndarray:
    """W_e (k, d) of ``state``."""
    spec = state.problem.model
    if spec.algorithm == "gd":
        return K.end_to_end(state.particles.reshape(-1), spec.dims)
    return state.particles.reshape(spec.dims[-1], spec.dims[0])


def _run(state, n) -> int:
    """``n`` steps in one compiled call; the steps done."""
    spec, a, ex = state.problem.model, state.problem.arrays, state.extras
    losses = np.empty(n)
    if spec.algorithm == "gd":
        if "flow" in ex:
            K.end_to_end_chunk(ex["flow"], spec.depth, a.X, a.y, spec.p, spec.lr, np.empty(n))
        return K.gd_chunk(state.particles.reshape(-1), spec.dims, a.X, a.y, spec.p, spec.lr,
                          losses)
    w = end_to_end(state)
    if spec.algorithm == "end_to_end":
        return K.end_to_end_chunk(w, spec.depth, a.X, a.y, spec.p, spec.lr, losses)
    if spec.algorithm == "adagrad":
        return K.adagrad_chunk(w, ex["acc"], a.X, a.y, spec.p, spec.lr, EPS, losses)
    hyper = np.array([spec.lr, *ADAM, float(state.step)])
    return K.adam_chunk(w, ex["moments"], a.X, a.y, spec.p, hyper, losses)


def _row(state) -> list:
    """The recorded observables :data:`NAMES` of ``state``."""
    pb = state.problem
    spec, a = pb.model, pb.arrays
    w = end_to_end(state)
    G = np.empty_like(w)
    train = K.loss_and_gradient(w, a.X, a.y, spec.p, G)
    test = K.loss_and_gradient(w, a.Xt, a.yt, spec.p, np.empty_like(w))
    if spec.algorithm == "gd":
        v = np.empty(state.particles.size)
        K.layer_gradients(state.particles.reshape(-1), spec.dims, G, v)
    else:
        v = K.preconditioned(w, G, spec.depth) if spec.algorithm == "end_to_end" else G
    start = np.linalg.norm(pb.P0)
    moved = np.linalg.norm(state.particles - pb.P0)
    return [train, test, float(np.sum(v * v)), moved / start if start > 0 else np.inf]


def advance(state, n_steps) -> State:
    """``n_steps`` steps (fewer if the loss stops being finite); see :mod:`meanfield.algorithms`."""
    every, last = state.problem.config.record.every, state.problem.config.train.steps
    steps, rows = [], []
    left = n_steps
    while left > 0:
        if state.step % every == 0:
            steps.append(state.step)
            rows.append(_row(state))
        nb = min(left, every - state.step % every)
        done = _run(state, nb)
        state.step += done
        left -= done
        if done < nb:
            state.diverged = True
            break
    if not state.diverged and state.step == last:
        steps.append(last)
        rows.append(_row(state))
    state.records = Records(np.array(steps, dtype=np.int64),
                            np.array(rows, dtype=np.float64).reshape(len(steps), len(NAMES)))
    return state
