"""What a sweep has produced: the state of every point, counts, and the table of results."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

from ..errors import InputError
from .plan import as_plan

FINAL = ("completed", "diverged")
"""Statuses of a point that is done: running it again leaves its file as it is."""

STATES = ("pending", "running", "completed", "diverged", "failed", "corrupt")
"""What :func:`status` counts: no file yet, the four file statuses, an unusable file."""

Problem = namedtuple("Problem", "index output state reason")
"""A point :func:`collect` left out of the table (or :func:`status_report` lists):
its index, file, state and why."""


def _inspect(path: Path, config=None, row=None):
    """``(state, reason)`` of one run file, and ``row(run)`` for a finished one.

    ``corrupt`` covers a truncated or unreadable file and, when ``config``
    is given, a file whose stored config is not ``config`` (another point's
    run copied or moved there).
    """
    from ..storage import open_run
    from ..storage.integrity import truncation
    if not path.exists():
        return "pending", "not run yet", None
    reason = truncation(path)
    if reason:
        return "corrupt", reason, None
    try:
        with open_run(path) as run:
            if config is not None and run.config != config:
                return "corrupt", (f"{path} holds another run: its stored config is not "
                                   "this point's"), None
            state = run.status
            if state == "running":
                last = run.steps[-1] if len(run.steps) else 0
                why = f"unfinished: last snapshot at step {last} of {run.parameters['steps']}"
            else:
                why = f"failed: {run.message}" if state == "failed" else ""
            return state, why, (row(run) if row is not None and state in FINAL else None)
    except InputError as exc:
        return "corrupt", str(exc), None
    except Exception as exc:  # an openable but damaged file may fail anywhere inside h5py
        return "corrupt", f"{path}: unreadable ({type(exc).__name__}: {exc})", None


def file_status(path, config=None) -> str:
    """State of one run file: ``pending`` (no file), its status, or ``corrupt``.

    Parameters
    ----------
    path : path
    config : Config, optional
        The config the file should hold: a file holding another one is
        ``corrupt`` too.

    Examples
    --------
    >>> file_status("no/such/file.h5")
    'pending'
    """
    return _inspect(Path(path), config)[0]


def _point_state(p, index: int, row=None):
    """``(state, reason, row)`` of point ``index``; a recorded failure of an unfinished
    point makes it ``failed`` with that reason."""
    state, reason, values = _inspect(p.path(index), p.config(index), row)
    if state not in FINAL and state != "corrupt":
        failure = p.failure(index)
        if failure:
            return "failed", failure, None
    return state, reason, values


def point_statuses(folder) -> list:
    """The state of every point of the sweep in ``folder``, in order (see :data:`STATES`)."""
    p = as_plan(folder)
    return [_point_state(p, i)[0] for i in range(len(p))]


def status(folder) -> dict:
    """Count the points of the sweep in ``folder`` by state.

    Returns
    -------
    dict
        ``{state: count}`` for every state of :data:`STATES`: ``pending``
        (no file yet), ``running`` (a partial file: being written, or
        interrupted and waiting to be resumed), ``completed``, ``diverged``,
        ``failed`` (recorded in the file, or a point stopped for good, e.g.
        at the requeue limit of a Slurm array job), ``corrupt`` (an
        unreadable file, or one holding another point's run).

    Examples
    --------
    >>> status("out/sweep")                     # doctest: +SKIP
    {'pending': 2, 'running': 1, 'completed': 9, 'diverged': 0, 'failed': 0, 'corrupt': 0}
    """
    counts = dict.fromkeys(STATES, 0)
    for s in point_statuses(folder):
        counts[s] += 1
    return counts


def status_report(folder) -> dict:
    """Everything ``meanfield sweep status --json`` prints, as a JSON-able dict.

    Returns
    -------
    dict
        ``folder`` (absolute path), ``total`` (number of points),
        ``counts`` (``{state: n}`` for every state of :data:`STATES`),
        ``problems`` (one ``{"index", "output", "state", "reason"}`` per
        point that is failed or corrupt), and ``arrays``: for each Slurm
        array script written by :func:`sbatch_scripts`, ``{"script",
        "first", "last", "counts"}`` over its points ([] when none).
    """
    from .slurm import arrays
    p = as_plan(folder)
    states, problems = [], []
    for i, pt in enumerate(p.points):
        state, reason, _ = _point_state(p, i)
        states.append(state)
        if state in ("failed", "corrupt"):
            problems.append(Problem(i, pt.output, state, reason)._asdict())

    def counts(first, last):
        out = dict.fromkeys(STATES, 0)
        for s in states[first:last + 1]:
            out[s] += 1
        return out

    return {"folder": str(p.folder.resolve()), "total": len(p), "counts": counts(0, len(p)),
            "problems": problems,
            "arrays": [{**a, "counts": counts(a["first"], a["last"])} for a in arrays(p)]}


def collect(folder, out_csv=None):
    """Tabulate the sweep: one row per finished point with its final observables.

    Every point whose file is ``completed`` or ``diverged`` gives a row:
    ``index``, ``replicate``, ``output`` (its file, relative to the folder),
    then the columns of :func:`meanfield.analysis.load_table` (every config
    value as ``section.key``, so the grid values and ``run.seed``; ``alpha``,
    ``status``, ``path``, ``step``, ``time``; ``final.<name>`` and
    ``best.<name>`` of every observable).  Every other point is reported as a
    :class:`Problem` (not run yet, unfinished, failed, unreadable, or a file
    holding another point's run) instead of stopping the collection.

    Parameters
    ----------
    folder : path
        A sweep folder.
    out_csv : path, optional
        Where to write the table as CSV (written whatever the problems).

    Returns
    -------
    rows : list of dict
    problems : list of Problem

    Examples
    --------
    >>> rows, problems = collect("out/sweep", "out/sweep/summary.csv")  # doctest: +SKIP
    >>> for p in problems:                                              # doctest: +SKIP
    ...     print(p.index, p.output, p.reason)
    """
    from ..analysis.tables import Table, run_row
    from ..storage.atomic import check_output

    p = as_plan(folder)
    rows, problems = [], []
    for i, pt in enumerate(p.points):
        state, reason, row = _point_state(p, i, lambda run: run_row(run, None))
        if row is None:
            problems.append(Problem(pt.index, pt.output, state, reason))
        else:
            rows.append({"index": pt.index, "replicate": pt.replicate, "output": pt.output,
                         **row})
    if out_csv is not None:
        Table(rows).to_csv(check_output(out_csv, what="summary"))  # written atomically
    return rows, problems
