"""Running points: one file (run, resume or skip), one sweep point, a sweep on any executor."""

from __future__ import annotations

import logging
import os
import signal
from concurrent.futures import CancelledError
from pathlib import Path

from ..config import Config
from ..errors import InputError
from .plan import Plan, as_plan
from .results import FINAL, file_status

log = logging.getLogger(__name__)


class PointInterrupted(Exception):
    """A point (or a sweep) stopped on a signal after writing a checkpoint (picklable).

    Raised by :func:`run_point` and :func:`run_config` in place of the
    engine's ``Interrupted``, and by :func:`run_sweep` for a sweep whose
    points were stopped; running it again resumes.

    Attributes
    ----------
    signum : int
        The signal.
    step : int
        The step checkpointed (the largest one, for a sweep).
    """

    def __init__(self, message: str, signum: int, step: int):
        super().__init__(message, signum, step)
        self.signum, self.step = signum, step

    def __str__(self):
        return self.args[0]


def _run(config: Config, out: Path, progress: bool = False, owned: bool = False):
    """Run, resume or skip one file; returns (status, action).

    ``owned``: the file belongs to a sweep point, so one holding another run
    is replaced; otherwise that is an InputError (from ``simulate``).
    """
    from ..simulate import Interrupted, simulate
    out = Path(out)
    state = file_status(out, config if owned else None)
    if state in FINAL and owned:
        return state, "skipped"
    if state == "corrupt":
        log.warning("%s is unreadable or holds another run; running its point again", out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {out.parent}: {exc.strerror or exc}") from None
    try:
        # resume=True: continue a partial file, start a missing one, return a finished
        # one (after checking that its config is this one)
        run = simulate(config, out=out, progress=progress, resume=state != "corrupt",
                       overwrite=state == "corrupt")
    except Interrupted as exc:
        raise PointInterrupted(f"{exc} in {out}", exc.signum, exc.step) from None
    status = run.status
    run.close()
    action = "skipped" if state in FINAL else {"pending": "started",
                                               "corrupt": "restarted"}.get(state, "resumed")
    return status, action


def run_config(config: Config, out, progress: bool = False) -> str:
    """Run one config into ``out``: skip it if finished, resume it if partial, else start it.

    Parameters
    ----------
    config : Config
    out : path
        The run file (its folder is created).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    str
        The final status: ``completed`` or ``diverged``.

    Raises
    ------
    InputError
        if ``out`` holds a run of another config.
    PointInterrupted
        on SIGTERM, SIGINT or SIGUSR1 (main thread only), after a checkpoint.

    Notes
    -----
    An unreadable file is run again from the start.

    Examples
    --------
    >>> cfg = Config.from_dict({"model": {"m": 8}, "train": {"steps": 50}})
    >>> run_config(cfg, "out/one.h5")          # doctest: +SKIP
    'completed'
    """
    return _run(config, Path(out), progress)[0]


def run_point(folder, index: int, progress: bool = False) -> str:
    """Run point ``index`` of the sweep in ``folder`` (the array-job entry point).

    A finished file (``completed`` or ``diverged``) is left untouched, a
    partial one continues from its checkpoint, a missing one starts, an
    unreadable one (or one holding another point's run) starts again.  A
    failure recorded for the point (:meth:`Plan.mark_failed`) is cleared
    when it runs again.

    Returns
    -------
    str
        The point's final status, ``completed`` or ``diverged``.

    Raises
    ------
    InputError
        if ``folder`` is not a sweep folder or ``index`` is out of range.
    PointInterrupted
        on SIGTERM, SIGINT or SIGUSR1, after a checkpoint; run it again to resume.

    Examples
    --------
    >>> run_point("out/sweep", 3)               # doctest: +SKIP
    'completed'
    """
    return run_point_action(folder, index, progress)[0]


def run_point_action(folder, index: int, progress: bool = False):
    """:func:`run_point`, returning ``(status, action)``; action is ``skipped``,
    ``started``, ``resumed`` or ``restarted``."""
    p = as_plan(folder)
    config, path = p.config(index), p.path(index)
    p.clear_failure(index)
    return _run(config, path, progress, owned=True)


def _tasks(points):
    """Normalise ``points`` into (the work of each point, its run file, its config)."""
    if isinstance(points, (str, os.PathLike, Plan)):
        p = as_plan(points)
        folder = str(p.folder.resolve())
        work = [(run_point, (folder, i)) for i in range(len(p))]
        return work, [p.path(i) for i in range(len(p))], [p.config(i) for i in range(len(p))]
    work, files, configs = [], [], []
    for item in points:
        try:
            config, out = item
        except (TypeError, ValueError):
            raise InputError(f"run_sweep: expected (config, out_path) pairs, got {item!r}") from None
        if not isinstance(config, Config):
            raise InputError(f"run_sweep: {config!r} is not a meanfield Config")
        out = Path(out).resolve()
        work.append((run_config, (config, str(out))))
        files.append(out)
        configs.append(config)
    if len({str(f) for f in files}) != len(files):
        raise InputError("run_sweep: two points have the same output file")
    return work, files, configs


def _sweep_error(errors):
    """The exception ``run_sweep`` raises for ``[(index, exception), ...]``: the first
    non-signal error, else one PointInterrupted summing up every stopped point."""
    others = [exc for _, exc in errors if not isinstance(exc, PointInterrupted)]
    if others:
        return others[0]
    stopped = [(i, exc) for i, exc in errors if exc.step > 0]
    signum = errors[0][1].signum
    where = ", ".join(f"{i} at step {exc.step}" for i, exc in stopped) or "none had started"
    return PointInterrupted(f"sweep stopped by {signal.Signals(signum).name}: "
                            f"{len(stopped)} running point(s) checkpointed ({where})",
                            signum, max((exc.step for _, exc in errors), default=0))


def run_sweep(points, executor=None) -> list:
    """Run every unfinished point of a sweep, on any executor; return all statuses in order.

    Parameters
    ----------
    points : path, Plan or iterable of (Config, path)
        A sweep folder made by :func:`plan` (each task is
        ``run_point(folder, index)``; the folder must be reachable from the
        workers, e.g. on a shared file system), or explicit pairs of a config
        and the file to write it to (each task is ``run_config(config, out)``).
    executor : executor, optional
        Anything with ``submit(fn, *args)`` returning objects with
        ``.result()``: a ``concurrent.futures`` process or thread pool, the
        executor of a Dask cluster (``distributed.Client(...).get_executor()``),
        a ``submitit.AutoExecutor``.  None runs the points one after the
        other in this process.  Points already finished are not submitted.

    Returns
    -------
    list of str
        The status of every point, in order (``completed`` or ``diverged``).

    Raises
    ------
    InputError or whatever a point raised
        after every submitted point has finished (the first error, in point
        order); the points that did finish keep their files.
    PointInterrupted
        when points were stopped by a signal (and nothing else failed): one
        message naming every point that was checkpointed.

    Notes
    -----
    Every task is independent and idempotent, so re-running the same call
    after an interruption continues where it stopped.  With a process pool
    that forks (the Linux default before Python 3.14), create it before
    running simulations in this process, or pass
    ``mp_context=multiprocessing.get_context("spawn")``: OpenMP thread pools
    do not survive a fork.  Threads share one process: use a thread pool only
    with a thread-safe Numba threading layer (``omp`` or ``tbb``).

    Examples
    --------
    Local processes:

    >>> from concurrent.futures import ProcessPoolExecutor
    >>> with ProcessPoolExecutor(4) as pool:                        # doctest: +SKIP
    ...     run_sweep("out/sweep", pool)
    ['completed', 'completed', ...]

    A Dask cluster (``pip install meanfield[dask]``):

    >>> from distributed import Client                               # doctest: +SKIP
    >>> with Client("scheduler:8786") as client:                     # doctest: +SKIP
    ...     run_sweep("out/sweep", client.get_executor())

    Slurm through submitit (``pip install meanfield[submitit]``), one job per point:

    >>> import submitit                                              # doctest: +SKIP
    >>> ex = submitit.AutoExecutor(folder="out/submitit")            # doctest: +SKIP
    >>> ex.update_parameters(timeout_min=60, slurm_partition="cpu")  # doctest: +SKIP
    >>> run_sweep("out/sweep", ex)                                   # doctest: +SKIP

    Explicit configs:

    >>> cfgs = [Config.from_dict({"model": {"m": m}}) for m in (8, 16)]
    >>> run_sweep([(c, f"out/m{c.model.m}.h5") for c in cfgs])      # doctest: +SKIP
    ['completed', 'completed']
    """
    work, files, configs = _tasks(points)
    statuses = [file_status(f, c) for f, c in zip(files, configs)]
    todo = [i for i, s in enumerate(statuses) if s not in FINAL]
    if executor is None:
        for i in todo:
            fn, args = work[i]
            statuses[i] = fn(*args)
        return statuses
    jobs = [(i, executor.submit(work[i][0], *work[i][1])) for i in todo]
    errors = []
    try:
        for i, job in jobs:
            try:
                statuses[i] = job.result()
            except CancelledError:    # never started: its file is as it was
                continue
            except Exception as exc:  # wait for every point before raising
                statuses[i] = file_status(files[i])
                errors.append((i, exc))
                if isinstance(exc, PointInterrupted):
                    _cancel(jobs)     # a signal stopped one point: start no others
    except BaseException:             # interrupted while waiting (Ctrl-C)
        _cancel(jobs)
        raise
    if errors:
        raise _sweep_error(errors)
    return statuses


def _cancel(jobs):
    """Cancel the points not started yet (``concurrent.futures`` futures only: a
    cluster job of submitit keeps running when the script that submitted it stops)."""
    from concurrent.futures import Future
    for _, job in jobs:
        if isinstance(job, Future):
            job.cancel()
