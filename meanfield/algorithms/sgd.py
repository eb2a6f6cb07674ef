r"""Stochastic gradient descent: one fresh batch per step.

For teacher-student data each step draws ``train.batch_size`` fresh inputs
(N(0, I_d) or uniform on the sphere) labelled by the teacher (population
SGD); otherwise a minibatch drawn with replacement from the training set.
Batches are drawn in bulk by NumPy's generators (streams ``batches`` and
``labels``, the latter for label noise), a block of steps at a time, and
the compiled loop steps through them; Langevin noise when
``train.temperature > 0`` (stream ``langevin``).
"""

import numpy as np

from ..activations import IDS as ACT_IDS
from ..kernels.sampling import teacher_labels
from ..kernels.training import Batches, sgd_chunk
from ..losses import IDS as LOSS_IDS
from .common import advance_in_blocks, langevin_noise, record_buffer, start, threads

STREAMS = ("batches", "labels", "langevin")


def init(config, data, rng):
    """The state at step 0 (see :mod:`meanfield.algorithms`)."""
    return start(config, data, rng, STREAMS)


def work(config) -> float:
    """B m D: the size of one step's two GEMMs."""
    return config.train.batch_size * config.model.m * config.dim


def _buffer(state, nsteps):
    """The batch inputs buffer (nsteps, B, d), allocated once per run and reused."""
    cfg = state.problem.config
    shape = (nsteps, cfg.train.batch_size, cfg.data.d)
    X = state.problem.cache.get("sgd_inputs")
    if X is None or X.shape[0] < nsteps:
        X = state.problem.cache["sgd_inputs"] = np.empty(shape)
    return X[:nsteps]


def draw_batches(state, nsteps) -> Batches:
    """The batches of the next ``nsteps`` steps, (nsteps, B, d) inputs and (nsteps, B) labels.

    The inputs are written into a buffer reused by the next call.
    """
    pb = state.problem
    cfg, data = pb.config, pb.data
    B, d = cfg.train.batch_size, cfg.data.d
    g = state.rng["batches"]
    X = _buffer(state, nsteps)
    if data.teacher is None:
        idx = g.integers(0, len(data.y_train), size=(nsteps, B))
        np.take(data.x_train, idx, axis=0, out=X)
        return Batches(X, data.y_train[idx])
    g.standard_normal(out=X)
    if cfg.data.input == "sphere":
        X /= np.linalg.norm(X, axis=2, keepdims=True)
    noise = cfg.data.noise
    xi = (state.rng["labels"].standard_normal(nsteps * B) if noise > 0.0
          else np.zeros(nsteps * B))
    y = teacher_labels(data.teacher, ACT_IDS[cfg.data.teacher_activation],
                       X.reshape(nsteps * B, d), xi, noise, LOSS_IDS[cfg.loss.name])
    return Batches(X, y.reshape(nsteps, B))


def _block(state, loop):
    pb = state.problem
    obs = record_buffer(loop)
    batches = draw_batches(state, loop.nsteps)
    noise = langevin_noise(state, loop.nsteps)
    with threads(pb.config, pb.config.train.batch_size):
        done = sgd_chunk(state.particles, pb.model, pb.arrays, pb.population, loop, batches,
                         noise, obs)
    return done, obs


def advance(state, n_steps):
    """``n_steps`` SGD steps in compiled code (see :mod:`meanfield.algorithms`)."""
    cfg = state.problem.config
    return advance_in_blocks(state, n_steps, cfg.train.batch_size * (cfg.data.d + 1), _block)
