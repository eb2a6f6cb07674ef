"""A local process pool whose workers die with it and stop cleanly on SIGTERM.

Workers are spawned (fresh interpreters: OpenMP thread pools do not survive
a fork) and each limited to ``cpu_count // jobs`` Numba threads.  On Linux a
worker asks the kernel for SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread of the worker watches
the parent's pid.  SIGTERM reaching a worker inside a point makes it write
a checkpoint and stop; a worker whose parent is gone then exits at once.
SIGTERM to the parent is forwarded to every worker, so ``kill PID`` of a
``meanfield sweep local`` leaves a checkpoint in each running point and
starts no other.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

from ..errors import InputError
from .execute import PointInterrupted, run_sweep
from .plan import as_plan

_PR_SET_PDEATHSIG = 1

_worker = {"parent": None, "stopped": None}
"""In a pool worker: the parent's pid and the signal that stopped the sweep, if one did."""


def _parent_gone() -> bool:
    return os.getppid() != _worker["parent"]


def _watch_parent():
    """Send SIGTERM to this process once its parent has gone (polled every second)."""
    while not _parent_gone():
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent():
    """SIGTERM to this process when its parent dies: prctl on Linux, else a watch thread."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0:
            if _parent_gone():     # the parent died before prctl took effect
                os._exit(128 + signal.SIGTERM)
            return
    threading.Thread(target=_watch_parent, name="meanfield-parent-watch", daemon=True).start()


def _on_signal(signum, frame):
    """A worker between points: exit if the parent is gone, else start no new point."""
    if _parent_gone():
        os._exit(128 + signum)
    _worker["stopped"] = signum


def _init_worker(threads: int, parent: int):
    """Pool initializer: die with ``parent``, catch SIGTERM, at most ``threads`` Numba threads."""
    _worker["parent"] = parent
    _die_with_parent()
    signal.signal(signal.SIGTERM, _on_signal)
    from ..simulate import quiet_signal_notes
    quiet_signal_notes()
    import numba
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _in_worker(fn, *args):
    """Run one point in a worker; after a signal, start no other point."""
    signum = _worker["stopped"]
    if signum is not None:
        raise PointInterrupted(f"not started: the sweep was stopped by "
                               f"{signal.Signals(signum).name}", signum, 0)
    try:
        return fn(*args)
    except PointInterrupted as exc:
        _worker["stopped"] = exc.signum
        if _parent_gone():                 # nobody to report to
            os._exit(128 + exc.signum)
        raise


class _Pool:
    """A process pool whose tasks go through :func:`_in_worker`."""

    def __init__(self, pool):
        self.pool = pool

    def submit(self, fn, *args):
        return self.pool.submit(_in_worker, fn, *args)


@contextlib.contextmanager
def _forward_sigterm():
    """While inside: SIGTERM to this process is passed on to its worker processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, frame):
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                os.kill(child.pid, signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_local(folder, jobs: int = 1) -> list:
    """Run every unfinished point of the sweep in ``folder`` with ``jobs`` local processes.

    ``jobs = 1`` runs the points in this process, one after the other.
    Otherwise a ``ProcessPoolExecutor`` of fresh (spawned) processes runs
    them, each worker limited to ``cpu_count // jobs`` Numba threads; the
    workers die with this process, and SIGTERM to it stops every running
    point after a checkpoint.

    Returns
    -------
    list of str
        The status of every point, in order.

    Raises
    ------
    PointInterrupted
        on SIGTERM or SIGINT, once every running point has written its
        checkpoint; its message names them.

    Examples
    --------
    >>> run_local("out/sweep", jobs=4)          # doctest: +SKIP
    ['completed', 'completed', ...]
    """
    from concurrent.futures import ProcessPoolExecutor

    p = as_plan(folder)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs must be an integer >= 1, got {jobs!r}")
    if jobs == 1:
        return run_sweep(p)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker,
                             initargs=(threads, os.getpid())) as pool, _forward_sigterm():
        return run_sweep(p, _Pool(pool))
