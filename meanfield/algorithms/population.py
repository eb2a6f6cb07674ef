r"""The exact population gradient flow: v is the velocity of the population risk.

The population risk and its gradient come from closed-form Gaussian kernels
(:mod:`meanfield.kernels.population`: relu or erf student and teacher,
squared loss, no bias), at a cost O((m + m0)^2 d) per step independent of
any sample size.  Langevin noise when ``train.temperature > 0``.
"""

from ..kernels.training import population_chunk
from .common import advance_in_blocks, langevin_noise, record_buffer, start, threads

STREAMS = ("langevin",)


def init(config, data, rng):
    """The state at step 0 (see :mod:`meanfield.algorithms`)."""
    return start(config, data, rng, STREAMS)


def work(config) -> float:
    """(m + m0)^2 D: the pairwise kernel entries of one step."""
    return (config.model.m + config.data.teacher_m) ** 2 * config.dim


def _block(state, loop):
    pb = state.problem
    obs = record_buffer(loop)
    noise = langevin_noise(state, loop.nsteps)
    with threads(pb.config, 0):
        done = population_chunk(state.particles, pb.model, pb.arrays, pb.population, loop,
                                noise, obs)
    return done, obs


def advance(state, n_steps):
    """``n_steps`` steps of the population flow in compiled code."""
    return advance_in_blocks(state, n_steps, 0, _block)
