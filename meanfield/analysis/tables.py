r"""Tables of runs: one row per run file, with column access, filters and CSV.

* :func:`load_table` reads many run files into a :class:`Table`, one row per
  run (flattened config, ``alpha``, ``status``, final and best value of
  every observable).  Unreadable files are skipped and listed in
  ``table.errors``.
* :func:`run_row` is the row of one open run, :func:`series_summary` the
  (final, best) pair of one recorded series; both are what a sweep's
  collection builds on.
"""

from __future__ import annotations

import csv
import math
import numbers
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..storage import Run, open_run

__all__ = ["Table", "load_table", "run_row", "series_summary"]

_MISSING = object()


class Table:
    """A small table of runs: a list of dicts (rows) with column access.

    Rows may lack some keys (e.g. ``scaling.alpha`` only exists when it was
    set explicitly); :meth:`column` fills those with NaN (numeric columns)
    or None.

    Parameters
    ----------
    rows : iterable of dict
        One dict per run, ``{column name: scalar}``.
    errors : list of (path, message), optional
        Files that could not be read (see :func:`load_table`).

    Examples
    --------
    >>> t = Table([{"model.m": 4, "final.test_loss": 0.5},
    ...            {"model.m": 8, "final.test_loss": 0.25}])
    >>> len(t), t.column("model.m").tolist()
    (2, [4, 8])
    >>> t.where({"model.m": 8}).column("final.test_loss").tolist()
    [0.25]
    """

    def __init__(self, rows=(), errors=None):
        self.rows = [dict(r) for r in rows]
        self.errors = list(errors or [])

    @property
    def columns(self) -> list:
        """Column names in order of first appearance."""
        seen = {}
        for row in self.rows:
            for key in row:
                seen.setdefault(key, None)
        return list(seen)

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def __repr__(self):
        extra = f", {len(self.errors)} unreadable" if self.errors else ""
        return f"<Table: {len(self)} rows, {len(self.columns)} columns{extra}>"

    def _check(self, name):
        if self.rows and name not in self.columns:
            raise KeyError(f"no column {name!r} (have: {', '.join(self.columns)})")

    def column(self, name: str) -> np.ndarray:
        """The values of column ``name`` as an array, one entry per row.

        Numbers give a float array (an int array when all are integers and
        none is missing), with NaN where a row lacks the key; booleans give
        a bool array; anything else an object array with None for missing.

        Raises
        ------
        KeyError
            if no row has the column.
        """
        self._check(name)
        if not self.rows:
            return np.array([], dtype=float)
        values = [row.get(name, _MISSING) for row in self.rows]
        present = [v for v in values if v is not _MISSING and v is not None]
        complete = len(present) == len(values)
        is_bool = [isinstance(v, (bool, np.bool_)) for v in present]
        if present and all(is_bool):
            if complete:
                return np.array(values, dtype=bool)
        elif present and all(isinstance(v, numbers.Real) for v in present):
            if complete and all(isinstance(v, numbers.Integral) for v in present):
                return np.array(values, dtype=np.int64)
            return np.array([np.nan if v is _MISSING or v is None else float(v)
                             for v in values], dtype=float)
        out = np.empty(len(values), dtype=object)
        out[:] = [None if v is _MISSING else v for v in values]
        return out

    def where(self, equals: Optional[dict] = None, /, **kwargs) -> "Table":
        """Rows matching every condition; conditions as a dict and/or keywords.

        A condition ``key: value`` keeps rows whose ``key`` equals ``value``;
        a list, tuple, set or array value keeps rows whose ``key`` is one of
        them; a callable keeps rows where ``value(row[key])`` is true.  Rows
        lacking the key never match.  Keys with dots (all config keys) must
        go in the dict.  The result keeps ``errors``.

        Examples
        --------
        >>> t = Table([{"model.m": m, "run.seed": s} for m in (4, 8) for s in (0, 1)])
        >>> len(t.where({"model.m": 4})), len(t.where({"model.m": lambda m: m > 4}))
        (2, 2)
        >>> len(t.where({"model.m": [4, 8], "run.seed": 1}))
        2
        """
        cond = dict(equals or {})
        cond.update(kwargs)
        for key in cond:
            self._check(key)

        def match(row):
            for key, want in cond.items():
                if key not in row:
                    return False
                have = row[key]
                if callable(want):
                    ok = want(have)
                elif isinstance(want, (list, tuple, set, frozenset, np.ndarray)):
                    ok = any(_equal(have, w) for w in want)
                else:
                    ok = _equal(have, want)
                if not ok:
                    return False
            return True

        return Table([r for r in self.rows if match(r)], self.errors)

    def to_csv(self, path):
        """Write the table to ``path`` as CSV (header = :attr:`columns`; missing cells empty).

        Floats are written with ``repr`` precision, so ``float(cell)`` reads
        them back exactly.
        """
        from ..storage.atomic import replacing
        with replacing(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, restval="")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})

    def to_pandas(self):
        """The table as a :class:`pandas.DataFrame` (pandas is optional).

        Raises
        ------
        ImportError
            if pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Table.to_pandas() needs pandas, which is not installed "
                "(pip install pandas); Table.column() and Table.to_csv() work without it"
            ) from None
        return pd.DataFrame({name: self.column(name) for name in self.columns})


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _expand(paths_or_runs):
    """A flat list of paths and Run objects; folders become their ``*.h5`` files."""
    if isinstance(paths_or_runs, (str, Path, Run)):
        paths_or_runs = [paths_or_runs]
    items = []
    for item in paths_or_runs:
        if isinstance(item, Run):
            items.append(item)
        elif Path(item).is_dir():
            items.extend(sorted(Path(item).rglob("*.h5")))
        else:
            items.append(Path(item))
    return items


def series_summary(value):
    """(last value, NaN-ignoring minimum) of a recorded series; (NaN, NaN) when empty.

    Examples
    --------
    >>> series_summary([3.0, float("nan"), 1.0, 2.0])
    (2.0, 1.0)
    """
    value = np.asarray(value, dtype=float)
    if value.size == 0:
        return math.nan, math.nan
    finite = value[~np.isnan(value)]
    return float(value[-1]), (float(finite.min()) if finite.size else math.nan)


def run_row(run, observables=None) -> dict:
    """One table row for an open :class:`~meanfield.storage.Run` (columns as in :func:`load_table`).

    Parameters
    ----------
    run : Run
    observables : list of str, optional
        Observables to summarise (default all of the run's); one the run lacks gives NaN.

    Returns
    -------
    dict
        ``{"section.key": config value, ..., "alpha", "status", "path", "step", "time",
        "final.<name>", "best.<name>", ...}``.
    """
    row = {f"{section}.{key}": value
           for section, table in run.config.to_dict().items()
           for key, value in table.items()}
    steps, times = run.steps, run.times
    row.update({
        "alpha": run.alpha,
        "status": run.status,
        "path": None if run.path is None else str(run.path),
        "step": int(steps[-1]) if len(steps) else math.nan,
        "time": float(times[-1]) if len(times) else math.nan,
    })
    names = run.observable_names if observables is None else list(observables)
    have = set(run.observable_names)
    for name in names:
        final, best = series_summary(run.observable(name).value) if name in have \
            else (math.nan, math.nan)
        row[f"final.{name}"] = final
        row[f"best.{name}"] = best
    return row


def load_table(paths_or_runs, observables=None) -> Table:
    r"""Read run files into a :class:`Table`, one row per run.

    Columns of a row:

    * every config value, flattened to ``"section.key"`` (``"model.m"``,
      ``"train.lr"``, ``"run.seed"``, ...), from ``run.config.to_dict()``;
    * ``"alpha"`` (the resolved output scale), ``"status"`` (running,
      completed, diverged, failed), ``"path"`` (None for in-memory runs),
      ``"step"`` and ``"time"`` of the last particle snapshot;
    * for every observable ``name``: ``"final.<name>"``, its last recorded
      value, and ``"best.<name>"``, :math:`\min_t` of the series ignoring
      NaN (NaN if nothing was recorded).

    Parameters
    ----------
    paths_or_runs : path, Run, or iterable of them
        Run files, open :class:`~meanfield.storage.Run` objects (left
        open), or folders (every ``*.h5`` below them, sorted).
    observables : list of str, optional
        Observables to summarise; default all of each run's.  A requested
        observable a run lacks gives NaN.

    Returns
    -------
    Table
        Rows in input order.  Files that cannot be read (missing, not HDF5,
        truncated, not a meanfield run, invalid config) are skipped and
        listed in ``table.errors`` as ``(path, message)``, with one
        ``UserWarning`` naming how many.

    Examples
    --------
    >>> table = load_table("runs/")                               # doctest: +SKIP
    >>> table.where({"model.m": 64}).column("final.test_loss")    # doctest: +SKIP
    """
    rows, errors = [], []
    for item in _expand(paths_or_runs):
        if isinstance(item, Run):
            rows.append(run_row(item, observables))
            continue
        try:
            with open_run(item) as run:
                rows.append(run_row(run, observables))
        except Exception as exc:  # a corrupt file may fail anywhere inside h5py
            message = str(exc) if isinstance(exc, InputError) \
                else f"{type(exc).__name__}: {exc}"
            errors.append((str(item), message))
    if errors:
        warnings.warn(f"load_table skipped {len(errors)} unreadable file(s); "
                      f"see table.errors", UserWarning, stacklevel=2)
    return Table(rows, errors)
