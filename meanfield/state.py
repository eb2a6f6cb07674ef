"""The state of a run, and the fixed problem it belongs to.

A :class:`State` is what changes along a run and what a checkpoint holds:
the particles, the step (and with it the time t = lr * step), the random
streams of the dynamics and whatever else an algorithm carries
(``extras``, arrays).  The :class:`Problem` is what does not change: the
config, the data, the initial particles and the kernels' argument
structures; a state points to its problem so that
``algorithm.advance(state, n)`` needs nothing else.

Random streams: the seed spawns independent streams (data, init, training,
population sample), so the data and teacher of a seed do not depend on m or
on the dynamics.  An algorithm splits the training stream into one stream per
purpose (e.g. SGD inputs, label noise, Langevin noise), each consumed in
step order, so the draws of a step do not depend on how the run is cut into
chunks: a run resumed from any checkpoint is bit-identical to one that was
never interrupted.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

Streams = namedtuple("Streams", ["data", "init", "train", "population"])
Streams.__doc__ = """The independent random generators of a run, spawned from its seed."""

Records = namedtuple("Records", ["steps", "values"])
Records.__doc__ = """Rows recorded during the last advance: steps (k,) and values (k, columns)."""


def seed_streams(seed: int) -> Streams:
    """Independent generators (data, init, training, population sample) derived from ``seed``."""
    return Streams(*(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)))


def _plain(value):
    """``value`` with every array (SFC64 keeps its state in one) as a list of ints."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [int(v) for v in value]
    return value


@dataclass
class Problem:
    """What a run solves, fixed along it.

    Attributes
    ----------
    config : Config
    data : Dataset
    P0 : (m, D) initial particles.
    model : meanfield.kernels.structs.Model
        The network (or tangent model at P0) as the kernels take it.
    population : meanfield.kernels.structs.Population
        The teacher and input law (a zero teacher when the data has none).
    exact : bool
        Whether the population risk has a closed form.
    columns : list of int
        The columns of the compiled loop's record rows that this run stores.
    population_rng : numpy.random.Generator
        Stream of the Monte-Carlo population sample (drawn on first use).
    arrays : meanfield.kernels.training.Data
        The training and test arrays as the compiled loops take them.
    cache : dict
        Values computed once per run by observables (e.g. the NTK Gram at P0).
    """

    config: object
    data: object
    P0: np.ndarray
    model: tuple
    population: tuple
    exact: bool
    columns: list
    population_rng: np.random.Generator
    arrays: tuple
    cache: dict = field(default_factory=dict)

    def cached(self, key, compute):
        """``self.cache[key]``, computed by ``compute()`` the first time."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


@dataclass
class State:
    """A run at one step: what advances and what a checkpoint stores.

    Attributes
    ----------
    particles : (m, D) float64, C-contiguous (advanced in place).
    step : int
    rng : dict of str to numpy.random.Generator
        The algorithm's random streams (empty for deterministic dynamics).
    extras : dict of str to ndarray
        Whatever else the algorithm carries from step to step (checkpointed).
    problem : Problem
    records : Records
        Observables recorded during the last advance.
    diverged : bool
        The last advance stopped because the risk blew up.
    """

    particles: np.ndarray
    step: int
    rng: dict
    extras: dict
    problem: Problem
    records: Records = Records(np.zeros(0, np.int64), np.zeros((0, 0)))
    diverged: bool = False

    @property
    def time(self) -> float:
        """Physical time t = lr * step."""
        return self.problem.config.train.lr * self.step

    def rng_state(self) -> dict:
        """The state of every random stream, as JSON-able dicts (for a checkpoint)."""
        return {name: _plain(g.bit_generator.state) for name, g in self.rng.items()}

    def restore(self, step: int, particles: np.ndarray, rng_state: dict, extras=None) -> "State":
        """Continue from a checkpoint: its step, particles, stream states and extras.

        Raises
        ------
        ValueError
            if the checkpoint's random streams are not this algorithm's.
        """
        if set(rng_state) != set(self.rng):
            raise ValueError(f"the checkpoint holds random streams {sorted(rng_state)}, "
                             f"this algorithm uses {sorted(self.rng)}")
        for name, g in self.rng.items():
            g.bit_generator.state = rng_state[name]
        self.particles = np.ascontiguousarray(particles, dtype=np.float64)
        self.step = int(step)
        self.extras.update(extras or {})
        return self
