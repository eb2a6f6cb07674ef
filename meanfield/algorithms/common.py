r"""What the algorithms share: the problem's kernel structures and chunked advancing.

:func:`start` builds the state at step 0; :func:`advance_in_blocks` cuts an
advance into blocks whose random numbers (Langevin noise, SGD batches) fit
in ``BLOCK_NUMBERS`` doubles, draws them in bulk with NumPy's generators
(each stream consumed in step order, so the draws of a step do not depend
on the blocks) and calls the algorithm's compiled loop once per block.
"""

from __future__ import annotations

import numpy as np

from ..data import exact_population
from ..kernels.jit import parallel_work, threads_for
from ..kernels.structs import make_model, make_population
from ..kernels.training import COLUMNS, Data, make_loop
from ..scaling import init_particles
from ..state import Problem, Records, State

BLOCK_NUMBERS = 1 << 18
"""Most random numbers drawn at once (2 MiB): an advance is cut into blocks of steps."""


EXACT_RECORD_SHARE = 0.1
"""Most share of the steps between two records that recording the exact population risk
(O((m + m0)^2 d) work) may cost; beyond it, as at very large m, the Monte-Carlo estimate
``population_loss_mc`` is recorded instead (the population flow always uses the exact risk)."""


def records_exact(config) -> bool:
    """Whether a run of ``config`` records the exact population risk (see ``EXACT_RECORD_SHARE``)."""
    tr, dc, m = config.train, config.data, config.model.m
    rows = {"gd": dc.n_train, "ggn": min(tr.batch_size, dc.n_train),
            "sgd": tr.batch_size}.get(tr.algorithm)
    if rows is None:
        return True
    pairs = (m + dc.teacher_m) ** 2
    return pairs <= EXACT_RECORD_SHARE * config.record.every * rows * m


def problem(config, data, P0, population_rng) -> Problem:
    """The :class:`~meanfield.state.Problem` of a run starting from particles ``P0``."""
    tr, dc = config.train, config.data
    exact = (data.teacher is not None and exact_population(config) and tr.model == "network"
             and records_exact(config))
    model = make_model(config.model.activation, config.loss.name, config.alpha,
                       tr.weight_decay, tr.model == "tangent", P0)
    teacher = data.teacher if data.teacher is not None else np.zeros((1, dc.d + 1))
    population = make_population(teacher, config.model.activation, config.alpha,
                                 tr.weight_decay, dc.noise, dc.input == "sphere")
    columns = [q for q, name in enumerate(COLUMNS) if name != "population_loss" or exact]
    arrays = Data(data.x_train, data.y_train, data.x_test, data.y_test)
    return Problem(config, data, P0, model, population, exact, columns, population_rng,
                   arrays)


def start(config, data, rng, streams) -> State:
    """The state at step 0: particles drawn from ``rng.init``, one training stream per name.

    The training streams are SFC64 generators (spawned from ``rng.train``'s
    seed): NumPy's fastest, about 20% faster normals than its default PCG64.
    """
    P = init_particles(config, rng.init)
    pb = problem(config, data, P.copy(), rng.population)
    seeds = rng.train.bit_generator.seed_seq.spawn(len(streams))
    generators = {name: np.random.Generator(np.random.SFC64(seed))
                  for name, seed in zip(streams, seeds)}
    return State(P, 0, generators, {}, pb)


def _record_steps(k0, done, nsteps, loop):
    """Steps of the rows a block starting at ``k0`` recorded when it did ``done`` steps."""
    every = loop.every
    steps = np.arange(-(-k0 // every) * every, k0 + done, every, dtype=np.int64)
    if done == nsteps and k0 + nsteps == loop.last:
        steps = np.append(steps, np.int64(loop.last))
    return steps


def langevin_noise(state, nsteps) -> np.ndarray:
    """Standard normals (nsteps, m, D) from the ``langevin`` stream, or (0, m, D) at T = 0."""
    m, D = state.particles.shape
    if state.problem.config.train.temperature == 0.0:
        return np.empty((0, m, D))
    return state.rng["langevin"].standard_normal((nsteps, m, D))


def advance_in_blocks(state, n_steps, per_step, run_block) -> State:
    """Advance ``state`` by ``n_steps`` (fewer if it diverges), block by block.

    Parameters
    ----------
    per_step : int
        Random numbers one step draws besides the Langevin noise.
    run_block : callable
        ``run_block(state, loop) -> (done, obs)``: run the compiled loop of one
        block described by ``loop`` (:class:`~meanfield.kernels.training.Loop`)
        and return the steps done and the record rows.
    """
    pb = state.problem
    cfg = pb.config
    m, D = state.particles.shape
    draws = per_step + (m * D if cfg.train.temperature > 0.0 else 0)
    block = n_steps if draws == 0 else max(1, BLOCK_NUMBERS // draws)
    steps, rows = [], []
    left = n_steps
    while True:
        nb = min(block, left)
        loop = make_loop(cfg.train.lr, cfg.train.temperature, state.step, nb, cfg.record.every,
                         cfg.train.steps, pb.exact)
        done, obs = run_block(state, loop)
        steps.append(_record_steps(state.step, done, nb, loop))
        rows.append(obs[:len(steps[-1])][:, pb.columns])
        state.step += done
        left -= done
        if done < nb:
            state.diverged = True
        if left == 0 or state.diverged:
            break
    state.records = Records(np.concatenate(steps), np.concatenate(rows))
    return state


def record_buffer(loop) -> np.ndarray:
    """Room for every row a block described by ``loop`` can record."""
    return np.empty((len(_record_steps(loop.step0, loop.nsteps, loop.nsteps, loop)),
                     len(COLUMNS)))


def threads(config, rows):
    """The thread setting for a step on ``rows`` data rows (see ``kernels.jit.threads_for``)."""
    return threads_for(parallel_work(config.train.algorithm, config.model.m, rows,
                                     config.data.teacher_m))
