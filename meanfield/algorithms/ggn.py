r"""Gram-Gauss-Newton (Cai et al. 2019) on the squared loss.

.. math::

    P \leftarrow P - \eta\, J^\top (J J^\top + \lambda I)^{-1} (f(P) - y)

on a batch of ``train.batch_size`` training points (the whole training set when
``batch_size >= n``), with ``eta = train.lr``, ``lambda = train.damping`` and J the
batch's Jacobian of the network output of eq. (1) (see :mod:`meanfield.kernels.ggn`).
The step is the same for every m and alpha: unlike GD's, it carries no 1/alpha^2 or m
(the output moves by about ``-eta (f - y)`` per step, whatever the scale).

Minibatches are drawn without replacement (a repeated row would make
:math:`J J^\top` singular at ``damping = 0``): each step's batch is the b training
rows with the smallest of n uniforms from the stream ``batches``, drawn in bulk a
block of steps at a time, so a step's batch does not depend on where a chunk
starts (resume is bit-identical).  For large damping the step tends to GD's:
:math:`-\eta J^\top r / \lambda` equals the GD step :math:`\text{lr}_{GD}\, v` with
:math:`\text{lr}_{GD} = \eta\, n \alpha^2 / (m \lambda)` (full batch).

Weight decay, Langevin noise and the tangent model are not part of GGN and are
refused by the config's validation.
"""

import numpy as np

from ..errors import InputError
from ..kernels.ggn import Steps, ggn_chunk
from .common import advance_in_blocks, record_buffer, start, threads

STREAMS = ("batches",)


def init(config, data, rng):
    """The state at step 0 (see :mod:`meanfield.algorithms`)."""
    return start(config, data, rng, STREAMS)


def work(config) -> float:
    """b^2 m D + b^3: the Gram product J J^T and its Cholesky factorisation."""
    b = min(config.train.batch_size, config.data.n_train)
    return b * b * (config.model.m * config.dim + b)


def batch_indices(g, n, b, nsteps) -> np.ndarray:
    """Rows of the next ``nsteps`` batches, (nsteps, b) int64: per step, the b rows with
    the smallest of n uniforms drawn from ``g`` (a uniformly random b-subset)."""
    keys = g.random((nsteps, n))
    return np.ascontiguousarray(np.argsort(keys, axis=1, kind="stable")[:, :b])


def _block(state, loop):
    pb = state.problem
    n = pb.arrays.X.shape[0]
    b = min(pb.config.train.batch_size, n)
    index = (np.empty((0, n), np.int64) if b == n
             else batch_indices(state.rng["batches"], n, b, loop.nsteps))
    obs = record_buffer(loop)
    with threads(pb.config, b):
        try:
            done = ggn_chunk(state.particles, pb.model, pb.arrays, pb.population, loop,
                             Steps(index, float(pb.config.train.damping)), obs)
        except np.linalg.LinAlgError:
            raise InputError(
                f"train.damping = {pb.config.train.damping}: the batch Gram matrix J J^T + "
                f"damping I is singular near step {state.step} (more batch points than "
                "parameters, or repeated inputs); set train.damping > 0") from None
    return done, obs


def advance(state, n_steps):
    """``n_steps`` GGN steps in compiled code (see :mod:`meanfield.algorithms`)."""
    n = state.problem.arrays.X.shape[0]
    per_step = n if state.problem.config.train.batch_size < n else 0
    return advance_in_blocks(state, n_steps, per_step, _block)
