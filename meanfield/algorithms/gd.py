r"""Full-batch gradient descent: :math:`P \leftarrow P + \eta\, v(P) [+ \sqrt{2\eta T}\,\xi]`.

v is the velocity of J on the whole training set (eq. 2-3 of the design
contract), of the network or of its tangent model at the initialisation;
Langevin noise when ``train.temperature > 0`` (stream ``langevin``).
"""

from ..kernels.training import gd_chunk
from .common import advance_in_blocks, langevin_noise, record_buffer, start, threads

STREAMS = ("langevin",)


def init(config, data, rng):
    """The state at step 0 (see :mod:`meanfield.algorithms`)."""
    return start(config, data, rng, STREAMS)


def work(config) -> float:
    """n m D: the size of one step's two GEMMs."""
    return config.data.n_train * config.model.m * config.dim


def _block(state, loop):
    pb = state.problem
    obs = record_buffer(loop)
    noise = langevin_noise(state, loop.nsteps)
    with threads(pb.config, pb.arrays.X.shape[0]):
        done = gd_chunk(state.particles, pb.model, pb.arrays, pb.population, loop, noise, obs)
    return done, obs


def advance(state, n_steps):
    """``n_steps`` GD steps in compiled code (see :mod:`meanfield.algorithms`)."""
    return advance_in_blocks(state, n_steps, 0, _block)
