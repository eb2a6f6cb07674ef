r"""The integrators: full-batch GD and SGD (with weight decay and Langevin noise).

Every algorithm is the Euler scheme of the Wasserstein gradient flow of J
(eqs. 2-3 of the design contract),

.. math:: P_{k+1} = P_k + \eta\, v(P_k) + \sqrt{2 \eta T}\, \xi_k, \qquad t = \eta k,

where v is the velocity on the full training set (``gd``) or on a fresh
sample of ``batch_size`` points (``sgd``: fresh teacher samples for
teacher-student data, minibatches drawn with replacement otherwise), of the
network or (``train.model = "tangent"``) of its linearisation at the
initialisation, T f(w) = f(w0) + (w - w0) . grad f(w0).
:func:`simulate` drives the compiled loop
(:func:`meanfield.kernels.train_chunk`) chunk by chunk and writes the file.

Random streams: the seed spawns three independent streams (data, init,
training), so the data and teacher of a seed do not depend on m or on the
dynamics; each chunk draws its own Numba seed from the training stream.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .activations import IDS as ACT_IDS
from .config import Config
from .data import Dataset, exact_population, make_dataset, population_sample
from .kernels import GD, POPULATION, SGD, train_chunk
from .kernels.jit import parallel_work, threads_for
from .losses import IDS as LOSS_IDS
from .observables import NAMES, Observables
from .scaling import init_particles
from .storage import RunWriter, open_run

WORK_PER_CHUNK = 5e7
"""Target n * m * D work of one compiled chunk (bounds the time between progress updates)."""


@dataclass(frozen=True)
class Dynamics:
    """The scalar description of a run's dynamics, as the kernels take it."""

    act: int
    loss: int
    alpha: float
    lam: float
    lr: float
    temperature: float
    algorithm: int
    batch: int
    tact: int
    sphere: bool
    noise: float
    fresh: bool
    tangent: bool
    exact: bool
    teacher: np.ndarray

    @classmethod
    def from_config(cls, config: Config, data: Dataset) -> "Dynamics":
        tr, dc = config.train, config.data
        algorithm = {"gd": GD, "sgd": SGD, "population": POPULATION}[tr.algorithm]
        teacher = data.teacher if data.teacher is not None else np.zeros((1, dc.d + 1))
        return cls(
            act=ACT_IDS[config.model.activation], loss=LOSS_IDS[config.loss.name],
            alpha=config.alpha, lam=tr.weight_decay, lr=tr.lr, temperature=tr.temperature,
            algorithm=algorithm, batch=tr.batch_size,
            tact=ACT_IDS[dc.teacher_activation], sphere=dc.input == "sphere",
            noise=dc.noise, fresh=data.teacher is not None, tangent=tr.model == "tangent",
            exact=data.teacher is not None and exact_population(config) and tr.model == "network",
            teacher=teacher)


def seed_streams(seed: int):
    """Independent generators (data, init, training, population sample) derived from ``seed``."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def chunk_length(config: Config) -> int:
    """Steps per compiled chunk: about ``WORK_PER_CHUNK`` work, a multiple of ``record.every``.

    A function of the config only, so chunk boundaries (and with them the
    random draws) are the same in every run of the config.
    """
    m, D, tr = config.model.m, config.dim, config.train
    work = {"gd": config.data.n_train * m * D, "sgd": tr.batch_size * m * D,
            "population": (m + config.data.teacher_m) ** 2 * D}[tr.algorithm]
    every = config.record.every
    raw = max(1, int(WORK_PER_CHUNK // work))
    return max(every, raw - raw % every)


def _next_boundary(k: int, config: Config, chunk: int) -> int:
    """The first step after ``k`` where a chunk must end: chunk length, snapshot, checkpoint, end."""
    rec = config.record
    return min(config.train.steps,
               *((k // every + 1) * every
                 for every in (chunk, rec.snapshot_every, rec.checkpoint_every)))


class Interrupted(Exception):
    """The run stopped on a signal after writing a checkpoint; ``--resume`` continues it."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = signum, step
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name} at step {step}; checkpoint written")


class _SignalCatcher:
    """Turns SIGTERM, SIGINT and SIGUSR1 into a flag checked between chunks (main thread only)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

    def __init__(self):
        self.caught = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.caught = signum

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def simulate(config: Config, out=None, data: Dataset | None = None, callback=None,
             progress: bool = False, overwrite: bool = False, resume: bool = False):
    """Run ``config`` and store it; return the :class:`~meanfield.storage.Run`.

    Parameters
    ----------
    config : Config
    out : path or None
        The HDF5 file to write; None keeps the run in memory.
    data : Dataset, optional
        User arrays to train on instead of the data described by ``config``.
    callback : callable, optional
        ``callback(step, P)`` after every chunk (P must not be modified).
    progress : bool
        Show a tqdm progress bar.
    overwrite : bool
        Replace an existing ``out``.
    resume : bool
        Continue ``out`` from its last checkpoint if it exists (bit-identical
        to an uninterrupted run); a finished file is returned as it is.

    Returns
    -------
    Run
        With status ``completed``, or ``diverged`` when the risk blew up.

    Raises
    ------
    InputError
        on invalid data, an existing ``out`` (without ``resume`` or
        ``overwrite``), or a resumed file whose config differs.
    Interrupted
        when SIGTERM, SIGINT or SIGUSR1 arrived: a checkpoint was written
        and the file keeps status ``running``.

    Examples
    --------
    >>> cfg = Config.from_dict({"model": {"m": 16}, "train": {"steps": 100}})
    >>> run = simulate(cfg)
    >>> run.status
    'completed'
    """
    with _SignalCatcher() as signals:
        started = _start(config, out, data, overwrite, resume)
        if started is None:
            return open_run(out)
        writer, observables, P, step, train_rng = started
        bar = tqdm(total=config.train.steps, initial=step, disable=not progress, unit="step",
                   file=sys.stderr, leave=False)
        try:
            status, message = _integrate(config, observables, P, step, train_rng, writer,
                                         callback, bar, signals)
        except Interrupted:
            writer.close()
            raise
        except BaseException as exc:
            writer.finish("failed", f"{type(exc).__name__}: {exc}").close()
            raise
        finally:
            bar.close()
        return writer.finish(status, message)


def _start(config, out, data, overwrite, resume):
    """Open the run at its checkpoint (``resume``) or create it; None if it already ended.

    Returns (writer, observables, P, step, train_rng).
    """
    data_rng, init_rng, train_rng, population_rng = seed_streams(config.run.seed)
    if resume and out is not None and Path(out).exists():
        resumed = RunWriter.resume(out, config)
        if resumed is None:
            return None
        writer, state, data = resumed
        train_rng.bit_generator.state = state.rng_state
        observables = _observables(config, data, state.initial, population_rng)
        return writer, observables, state.particles, state.step, train_rng
    if data is None:
        data = make_dataset(config, data_rng)
    data = data.validated(config)
    P = init_particles(config, init_rng)
    observables = _observables(config, data, P.copy(), population_rng)
    writer = RunWriter.create(out, config, data, observables.P0, observables.attrs,
                              overwrite=overwrite or resume)
    _snapshot(writer, observables, 0, P)
    writer.checkpoint(0, P, train_rng.bit_generator.state)
    return writer, observables, P, 0, train_rng


def _observables(config, data, P0, population_rng) -> Observables:
    dyn = Dynamics.from_config(config, data)
    sample = None
    if data.teacher is not None and not dyn.exact:
        sample = population_sample(config, data.teacher, population_rng)
    return Observables(config, data, dyn, P0, sample)


def _snapshot(writer, observables, k, P):
    """Store the particles at step ``k`` and the observables computed with them."""
    writer.snapshot(k, P)
    writer.observables(observables.snapshot, [k], observables.at_snapshot(P)[None])


def _integrate(config, observables, P, k, train_rng, writer, callback, bar, signals):
    """Advance from step ``k`` to the end, chunk by chunk; returns (status, message)."""
    dyn, data, P0 = observables.dyn, observables.data, observables.P0
    rec = config.record
    steps, every = config.train.steps, rec.every
    chunk = chunk_length(config)
    tr = config.train
    work = parallel_work(tr.algorithm, config.model.m,
                         tr.batch_size if tr.algorithm == "sgd" else len(data.x_train),
                         config.data.teacher_m)
    while k < steps:
        end = _next_boundary(k, config, chunk)
        rec_steps = np.arange(-(-k // every) * every, end, every)
        obs = np.empty((len(rec_steps), len(NAMES)))
        nsteps = end - k
        with threads_for(work):
            done = train_chunk(
                P, P0, dyn.tangent, data.x_train, data.y_train, data.x_test, data.y_test,
                dyn.teacher, dyn.tact, dyn.sphere, dyn.noise, dyn.fresh, dyn.exact,
                dyn.algorithm, dyn.batch, dyn.act, dyn.loss,
                dyn.alpha, dyn.lam, dyn.lr, dyn.temperature,
                int(train_rng.integers(2**63)), k, nsteps, every, obs)
        n_rec = int(np.count_nonzero(rec_steps < k + done))
        writer.observables(observables.recorded, rec_steps[:n_rec],
                           obs[:n_rec][:, observables.columns])
        k += done
        bar.update(done)
        if done < nsteps:
            writer.snapshot(k, P)
            return "diverged", f"training loss became non-finite or exploded at step {k}"
        if k % rec.snapshot_every == 0 or k == steps:
            _snapshot(writer, observables, k, P)
        if k % rec.checkpoint_every == 0 or signals.caught is not None:
            writer.checkpoint(k, P, train_rng.bit_generator.state)
        else:
            writer.flush()
        if signals.caught is not None:
            raise Interrupted(signals.caught, k)
        if callback is not None:
            callback(k, P)
    writer.observables(observables.recorded, [k], observables.final(P)[None])
    return "completed", ""
