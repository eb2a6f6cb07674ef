r"""Running a config: a thin loop over compiled chunks, a recorder and checkpoints.

:func:`simulate` builds the data and the algorithm's state at step 0 (or
reopens a file at its last checkpoint), then repeats: advance one chunk
(:mod:`meanfield.algorithms`), hand the records to the recorder
(:mod:`meanfield.recorders`), store a snapshot when due, checkpoint when
due, stop on a signal.

Checkpoints are taken by wall clock (every ``record.checkpoint_seconds`` of
run time), every ``record.checkpoint_every`` steps where that is set, at
step 0 before anything slow happens (so a run killed at any moment can be
resumed), at the end, and on SIGTERM, SIGINT or SIGUSR1.  A step's random
draws do not depend on where chunks end (see :mod:`meanfield.state`), so a
resumed run is bit-identical to an uninterrupted one whenever its
checkpoints were taken.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from . import _threading
from .errors import InputError

# The engine's modules load NumPy: they are imported when a run starts, after
# _threading.apply(), so that `import meanfield` leaves the runtimes unloaded.

WORK_PER_CHUNK = 5e7
"""Target work (about n m D operations) of one compiled chunk: bounds the time between
two hand-overs to the recorder, and so the delay before a signal is acted on."""


class Interrupted(Exception):
    """The run stopped on a signal after writing a checkpoint; ``--resume`` continues it."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = signum, step
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name} at step {step}; checkpoint written")


def quiet_signal_notes():
    """Stop runs of this process from announcing a caught signal on stderr.

    For processes whose parent reports on the signal itself (a sweep's workers).
    """
    _SignalCatcher.announce = False


class _SignalCatcher:
    """Turns SIGTERM, SIGINT and SIGUSR1 into a flag checked between chunks (main thread only).

    Installed before anything slow (data, compilation): a signal during start-up
    stops the run at its first chunk boundary, never with a traceback.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
    announce = True
    """Say at once on stderr that a signal arrived (see :func:`quiet_signal_notes`)."""

    def __init__(self):
        self.caught = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.caught is None and self.announce:  # at once: a cold compile can take a while
            print(f"meanfield: {signal.Signals(signum).name} received: stopping after the "
                  "current step chunk (or compilation), with a checkpoint", file=sys.stderr)
        self.caught = signum

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def simulate(config, out=None, *, data=None, callback=None, progress: bool = False,
             overwrite: bool = False, resume: bool = False):
    """Run ``config``; return the run (:class:`~meanfield.storage.Run` or its in-memory twin).

    Parameters
    ----------
    config : Config, dict or path
        A :class:`~meanfield.config.Config`, a ``{section: {key: value}}``
        dict or a TOML file.
    out : path, None or Recorder
        The HDF5 file to write; None keeps the run in memory
        (:class:`~meanfield.recorders.MemoryRun`); or any object with the
        methods of :class:`~meanfield.recorders.Recorder`.
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
        With status ``completed``, or ``diverged`` when the risk blew up; what
        ``out.finish`` returns for a user's recorder.

    Raises
    ------
    InputError
        on an invalid config or data, an existing ``out`` (without
        ``resume`` or ``overwrite``), or a resumed file whose config differs.
    Interrupted
        when SIGTERM, SIGINT or SIGUSR1 arrived: a checkpoint was written
        and the file keeps status ``running``.

    Examples
    --------
    >>> with simulate({"model": {"m": 16}, "train": {"steps": 100}}) as run:
    ...     run.status
    'completed'
    """
    _threading.apply()
    from tqdm import tqdm

    from . import algorithms
    from .config import as_config, check_memory
    from .kernels.jit import quiet_numba
    inputs = (config,) if isinstance(config, (str, os.PathLike)) else ()
    config = as_config(config)
    check_memory(config)
    algorithm = algorithms.for_config(config)
    with _SignalCatcher() as signals, quiet_numba():
        recorder, state = _start(config, algorithm, out, data, overwrite, resume, inputs)
        if state is None:
            return recorder
        bar = tqdm(total=config.train.steps, initial=state.step, disable=not progress,
                   unit="step", file=sys.stderr, leave=False)
        try:
            status, message = _loop(state, algorithm, recorder, callback, bar, signals)
        except Interrupted:
            recorder.close()
            raise
        except BaseException as exc:
            failed = recorder.finish("failed", f"{type(exc).__name__}: {exc}")
            getattr(failed, "close", lambda: None)()
            raise
        finally:
            bar.close()
        return recorder.finish(status, message)


def _recorder(out, overwrite, inputs):
    from .recorders import HDF5Recorder, MemoryRecorder, Recorder
    if out is None:
        return MemoryRecorder()
    if isinstance(out, (str, os.PathLike)):
        return HDF5Recorder(out, overwrite, inputs)
    if isinstance(out, Recorder):
        return out
    raise InputError(f"out must be a file name, None or a recorder, got {type(out).__name__}")


def _start(config, algorithm, out, data, overwrite, resume, inputs):
    """(recorder, state) at the start: step 0, or the checkpoint of a resumed file.

    (run, None) when the resumed file already ended.  A new run is
    checkpointed at step 0 before anything else.
    """
    from . import observables
    from .data import make_dataset
    from .recorders import HDF5Recorder
    from .state import seed_streams
    streams = seed_streams(config.run.seed)
    recorder = None
    if resume and isinstance(out, (str, os.PathLike)) and os.path.exists(out):
        resumed = HDF5Recorder.resume(out, config, inputs)
        if resumed is None:
            from .storage import open_run
            return open_run(out), None
        recorder, ck, stored = resumed
        if ck is not None:
            return recorder, _restored(algorithm.init(config, stored, streams), ck, recorder)
    recorder = recorder or _recorder(out, overwrite or resume, inputs)
    if data is None:
        data = make_dataset(config, streams.data)
    state = algorithm.init(config, data.validated(config), streams)
    recorder.start(state, observables.series(state.problem))
    recorder.checkpoint(state)
    return recorder, state


def _restored(state, ck, recorder):
    """``state`` continued from the checkpoint ``ck`` of the recorder's file."""
    try:
        return state.restore(ck.step, ck.particles, ck.rng_state, ck.extras)
    except ValueError as exc:
        recorder.close()
        raise InputError(f"cannot resume {recorder.path}: {exc}") from None


def chunk_steps(config, algorithm) -> int:
    """Steps per chunk: about ``WORK_PER_CHUNK`` work."""
    return max(1, int(WORK_PER_CHUNK // max(algorithm.work(config), 1)))


def _next_end(k, config, chunk):
    """The first step after ``k`` where a chunk must end: its length, a snapshot, a checkpoint."""
    rec = config.record
    periods = [chunk, rec.snapshot_every] + ([rec.checkpoint_every] if rec.checkpoint_every else [])
    return min(config.train.steps, *((k // p + 1) * p for p in periods))


def _snapshot(recorder, state, names):
    """Store the particles and the snapshot observables of ``state``."""
    from . import observables
    recorder.snapshot(state.step, state.particles, names, observables.at_snapshot(state, names))


def _loop(state, algorithm, recorder, callback, bar, signals):
    """Advance to the end, chunk by chunk; returns (status, message)."""
    from . import observables
    pb = state.problem
    config = pb.config
    rec, steps = config.record, config.train.steps
    recorded, snapshot = observables.recorded_names(pb), observables.snapshot_names(pb)
    chunk = chunk_steps(config, algorithm)
    if state.step == 0:
        _snapshot(recorder, state, snapshot)
    elif state.step == steps:  # resumed from the final checkpoint: everything is recorded
        return "completed", ""
    last_checkpoint = time.monotonic()
    while True:
        before = state.step
        state = algorithm.advance(state, _next_end(before, config, chunk) - before)
        recorder.rows(recorded, state.records.steps, state.records.values)
        bar.update(state.step - before)
        if state.diverged:
            recorder.snapshot(state.step, state.particles, [], ())
            return "diverged", f"training loss became non-finite or exploded at step {state.step}"
        k = state.step
        if k > before and (k % rec.snapshot_every == 0 or k == steps):
            _snapshot(recorder, state, snapshot)
        if (signals.caught is not None or k == steps
                or (rec.checkpoint_every and k % rec.checkpoint_every == 0)
                or time.monotonic() - last_checkpoint >= rec.checkpoint_seconds):
            recorder.checkpoint(state)
            last_checkpoint = time.monotonic()
        else:
            recorder.flush()
        if signals.caught is not None:
            raise Interrupted(signals.caught, k)
        if callback is not None:
            callback(k, state.particles)
        if k == steps:
            return "completed", ""
