"""Where a run's records go: an HDF5 file, memory, or the user's own recorder.

:func:`meanfield.simulate` hands each chunk to a recorder through the
:class:`Recorder` protocol: ``start`` once for a new run (the state at step
0 and the name and attributes of every observable series), then ``rows``
(observables recorded inside the compiled loop), ``snapshot`` (particles and
snapshot observables), ``checkpoint`` or ``flush`` after every chunk, and
``finish`` (or ``close`` when interrupted).  Any object with these methods
can be passed as ``out``.

* :class:`HDF5Recorder` writes the run file through
  :class:`meanfield.storage.RunWriter` (h5py is imported only here, and only
  when a file is written);
* :class:`MemoryRecorder` keeps everything in NumPy arrays and returns a
  :class:`MemoryRun`, with the accessors of :class:`meanfield.storage.Run`.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

Observable = namedtuple("Observable", "step time value")
"""A recorded time series: integer ``step``, physical ``time`` = lr * step, ``value``."""


@runtime_checkable
class Recorder(Protocol):
    """What :func:`meanfield.simulate` calls on a recorder (see the module docstring)."""

    def start(self, state, series: dict) -> None:
        """A new run: ``state`` at step 0; ``series`` maps observable names to attributes."""

    def rows(self, names, steps, values) -> None:
        """Observables ``names`` recorded at ``steps``: ``values`` (len(steps), len(names))."""

    def snapshot(self, step, particles, names, values) -> None:
        """Particles at ``step`` and the snapshot observables ``names`` (``values``)."""

    def checkpoint(self, state) -> None:
        """Keep what is needed to continue from ``state``."""

    def flush(self) -> None:
        """Make what was recorded so far visible (end of a chunk without checkpoint)."""

    def finish(self, status: str, message: str = ""):
        """The run ended with ``status``; returns what :func:`simulate` returns."""

    def close(self) -> None:
        """The run stopped without finishing (a signal): release what is held."""


class HDF5Recorder:
    """Records into the run file ``path`` (see :mod:`meanfield.storage`).

    Parameters
    ----------
    path : path-like
    overwrite : bool
        Replace an existing file.
    inputs : tuple of paths
        Files the output must not replace (the config file).
    """

    def __init__(self, path, overwrite: bool = False, inputs=(), writer=None):
        self.path, self.overwrite, self.inputs, self.writer = Path(path), overwrite, inputs, writer

    @classmethod
    def resume(cls, path, config, inputs=()):
        """Reopen ``path`` at its last checkpoint: (recorder, checkpoint, data), or None if it ended.

        A file killed before its first checkpoint holds nothing of value: the
        checkpoint and data are then None and the recorder starts it afresh.
        See :meth:`meanfield.storage.RunWriter.resume`.
        """
        from .storage import NoCheckpoint, RunWriter
        try:
            resumed = RunWriter.resume(path, config)
        except NoCheckpoint:
            return cls(path, True, inputs), None, None
        if resumed is None:
            return None
        writer, checkpoint, data = resumed
        return cls(path, inputs=inputs, writer=writer), checkpoint, data

    def start(self, state, series):
        from .storage import RunWriter
        pb = state.problem
        self.writer = RunWriter.create(self.path, pb.config, pb.data, pb.P0, series,
                                       overwrite=self.overwrite, inputs=self.inputs)

    def rows(self, names, steps, values):
        if len(steps):
            self.writer.observables(names, steps, values)

    def snapshot(self, step, particles, names, values):
        self.writer.snapshot(step, particles)
        if names:
            self.writer.observables(names, [step], np.asarray(values)[None])

    def checkpoint(self, state):
        extras = {"extras": state.extras} if state.extras else {}
        self.writer.checkpoint(state.step, state.particles, state.rng_state(), **extras)

    def flush(self):
        self.writer.flush()

    def finish(self, status, message=""):
        return self.writer.finish(status, message)

    def close(self):
        self.writer.close()


class MemoryRecorder:
    """Keeps a run in memory; :meth:`finish` returns a :class:`MemoryRun`."""

    def __init__(self):
        self._problem = None
        self._snapshots = []
        self._series = {}

    def start(self, state, series):
        self._problem = state.problem
        self._series = {name: ([], []) for name in series}

    def rows(self, names, steps, values):
        for q, name in enumerate(names):
            self._series[name][0].extend(int(k) for k in steps)
            self._series[name][1].extend(np.asarray(values)[:, q].tolist())

    def snapshot(self, step, particles, names, values):
        self._snapshots.append((int(step), np.array(particles)))
        self.rows(names, [step], np.asarray(values)[None])

    def checkpoint(self, state):
        """Nothing to keep: a run in memory cannot be resumed."""

    def flush(self):
        """Nothing to flush."""

    def finish(self, status, message=""):
        lr = self._problem.config.train.lr
        series = {name: Observable(np.array(k, np.int64), np.array(k, np.int64) * lr,
                                   np.array(v, np.float64))
                  for name, (k, v) in self._series.items()}
        steps = np.array([k for k, _ in self._snapshots], np.int64)
        return MemoryRun(self._problem, steps, [P for _, P in self._snapshots], series, status,
                         message)

    def close(self):
        """Nothing to release."""


class MemoryRun:
    """A finished run held in memory, with the accessors of :class:`meanfield.storage.Run`.

    ``config``, ``config_text``, ``parameters``, ``alpha``, ``status``,
    ``message``, ``steps``/``times`` (of the snapshots), ``particles(k)``, ``layers(k)``,
    ``observable_names``, ``observable(name)``, ``data``, ``teacher``; ``path``
    is None.  A context manager, like a file-backed run.
    """

    path = None

    def __init__(self, problem, steps, snapshots, series, status, message):
        self._problem, self.steps, self._snapshots = problem, steps, snapshots
        self._series, self.status, self.message = series, status, message

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Nothing to close (for symmetry with file-backed runs)."""

    def __repr__(self):
        return (f"<Run <memory>: {self.status}, {len(self.steps)} snapshots, "
                f"alpha={self.alpha:g}>")

    @property
    def config(self):
        return self._problem.config

    @property
    def config_text(self) -> str:
        return self.config.to_toml()

    @property
    def parameters(self) -> dict:
        """The header values a run file stores under ``/parameters``."""
        from .storage.layout import parameters as _parameters
        return _parameters(self.config)

    @property
    def alpha(self) -> float:
        return float(self.config.alpha)

    @property
    def times(self) -> np.ndarray:
        return self.steps * self.config.train.lr

    @property
    def counts(self) -> np.ndarray:
        """Number of particles m of every snapshot (it changes for a growing network)."""
        return np.array([len(P) for P in self._snapshots], dtype=np.int64)

    def particles(self, k=-1) -> np.ndarray:
        """Particles (m, D) of snapshot ``k`` (negative counts from the last), or a slice of them
        ((k, max m, D), NaN beyond each snapshot's m when the network grows)."""
        idx = range(len(self._snapshots))[k]
        if not isinstance(idx, range):
            return self._snapshots[idx]
        rows = max((len(self._snapshots[i]) for i in idx), default=len(self._problem.P0))
        out = np.full((len(idx), rows, self._problem.P0.shape[1]), np.nan)
        for j, i in enumerate(idx):
            out[j, :len(self._snapshots[i])] = self._snapshots[i]
        return out

    def layers(self, k=-1) -> list:
        """Layers of snapshot ``k`` of a deep linear run, as :meth:`.storage.Run.layers`."""
        from .deep_linear.config import stored_layers
        return stored_layers(self.config, self.particles(k))

    @property
    def observable_names(self) -> list:
        return sorted(self._series)

    def observable(self, name: str) -> Observable:
        """The recorded series ``name`` as ``Observable(step, time, value)``."""
        if name not in self._series:
            raise KeyError(f"no observable {name!r} (have: {', '.join(self.observable_names)})")
        return self._series[name]

    @property
    def data(self):
        return self._problem.data

    @property
    def teacher(self):
        return self._problem.data.teacher
