r"""Analysis of stored runs: tables of runs, convergence in m, Wasserstein distances.

Four tools, each usable on its own:

* :func:`load_table` reads many run files into a :class:`Table`, one row per
  run (flattened config, ``alpha``, ``status``, final and best value of
  every observable).  Unreadable files are skipped and listed in
  ``table.errors``.
* :func:`convergence` / :func:`convergence_vs_m` average an observable over
  seeds at every width m and fit a power law
  :math:`\bar y(m) \approx C m^{p}` (:func:`fit_power_law`).
* :func:`wasserstein2` and :func:`sliced_wasserstein2` compare particle
  measures :math:`\mu_m = \frac1m \sum_i \delta_{w_i}` (uniform weights);
  :func:`wasserstein2_1d` is the exact one-dimensional distance they build on.
* :func:`distance_to_reference` measures how far an m-particle run is from a
  large-m reference run, in parameter space (W2 between particle measures)
  and in function space (root-mean-square difference of the outputs on the
  test set), at equal physical times t = lr * step.

Everything here is NumPy / SciPy; the only compiled code called is the
network forward pass :func:`meanfield.kernels.forward`.

Examples
--------
>>> import numpy as np
>>> from meanfield.analysis import wasserstein2
>>> P = np.random.default_rng(0).standard_normal((50, 3))
>>> round(wasserstein2(P, P + [3.0, 0.0, 4.0]), 12)
5.0
"""

from __future__ import annotations

import contextlib
import csv
import math
import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from .activations import IDS as ACT_IDS
from .errors import InputError
from .kernels import forward
from .storage import Run, open_run

__all__ = [
    "Table", "load_table",
    "PowerLawFit", "fit_power_law", "Convergence", "convergence", "convergence_vs_m",
    "wasserstein2", "sliced_wasserstein2", "wasserstein2_1d",
    "ReferenceDistance", "distance_to_reference",
]

EXACT_LIMIT = 10_000
"""Largest assignment problem (points per side) :func:`wasserstein2` solves exactly on request."""

_MISSING = object()


# ===================================================================== tables
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
        with open(path, "w", newline="") as fh:
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




def _series_summary(value):
    """(last value, NaN-ignoring minimum) of a recorded series; NaN when empty."""
    value = np.asarray(value, dtype=float)
    if value.size == 0:
        return math.nan, math.nan
    finite = value[~np.isnan(value)]
    return float(value[-1]), (float(finite.min()) if finite.size else math.nan)


def _run_row(run, observables) -> dict:
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
        final, best = _series_summary(run.observable(name).value) if name in have \
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
            rows.append(_run_row(item, observables))
            continue
        try:
            with open_run(item) as run:
                rows.append(_run_row(run, observables))
        except Exception as exc:  # a corrupt file may fail anywhere inside h5py
            message = str(exc) if isinstance(exc, InputError) \
                else f"{type(exc).__name__}: {exc}"
            errors.append((str(item), message))
    if errors:
        warnings.warn(f"load_table skipped {len(errors)} unreadable file(s); "
                      f"see table.errors", UserWarning, stacklevel=2)
    return Table(rows, errors)


# ======================================================== power laws in m
@dataclass(frozen=True)
class PowerLawFit:
    r"""Least-squares fit :math:`\log y = \text{intercept} + \text{slope} \cdot \log x`.

    ``slope_ci`` and ``intercept_ci`` are two-sided confidence intervals at
    ``level`` from Student's t with n - 2 degrees of freedom (NaN when
    n < 3).  ``prefactor`` is :math:`C = e^{\text{intercept}}`; calling the
    fit evaluates :math:`C x^{\text{slope}}`.
    """

    slope: float
    intercept: float
    slope_stderr: float
    intercept_stderr: float
    slope_ci: tuple
    intercept_ci: tuple
    n: int
    level: float = 0.95

    @property
    def prefactor(self) -> float:
        return math.exp(self.intercept)

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=float) ** self.slope


def fit_power_law(x, y, level: float = 0.95) -> PowerLawFit:
    r"""Fit :math:`y \approx C x^{p}` by least squares on :math:`(\log x, \log y)`.

    With :math:`u = \log x`, :math:`v = \log y` and n points,
    :math:`\hat p = \mathrm{cov}(u, v) / \mathrm{var}(u)`,
    :math:`\log \hat C = \bar v - \hat p \bar u`, and the confidence interval
    of the slope is :math:`\hat p \pm t_{(1+\text{level})/2,\, n-2}\, \mathrm{se}(\hat p)`
    (:func:`scipy.stats.linregress` standard errors).  The fit is unweighted.

    Parameters
    ----------
    x, y : array_like, positive and finite, at least two distinct x.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    PowerLawFit

    Raises
    ------
    ValueError
        if a value is not positive and finite, or fewer than two distinct x.

    Examples
    --------
    >>> fit = fit_power_law([1, 4, 16, 64], [2.0, 1.0, 0.5, 0.25])
    >>> round(fit.slope, 12), round(fit.prefactor, 12)
    (-0.5, 2.0)
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    bad = ~(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    if bad.any():
        raise ValueError(f"fit_power_law needs positive finite x and y; "
                         f"{int(bad.sum())} point(s) are not")
    if np.unique(x).size < 2:
        raise ValueError("fit_power_law needs at least two distinct x")
    n = x.size
    res = stats.linregress(np.log(x), np.log(y))
    if n > 2:
        q = stats.t.ppf(0.5 + level / 2, n - 2)
        se_s, se_i = float(res.stderr), float(res.intercept_stderr)
        s_ci = (res.slope - q * se_s, res.slope + q * se_s)
        i_ci = (res.intercept - q * se_i, res.intercept + q * se_i)
    else:
        se_s = se_i = math.nan
        s_ci = i_ci = (math.nan, math.nan)
    return PowerLawFit(float(res.slope), float(res.intercept), se_s, se_i,
                       tuple(map(float, s_ci)), tuple(map(float, i_ci)), n, level)


@dataclass(frozen=True)
class Convergence:
    r"""Mean over seeds of an observable at every width m, and its power-law fit.

    Attributes
    ----------
    m : (k,) array
        The distinct widths, increasing.
    mean, sem : (k,) arrays
        Mean and standard error :math:`s / \sqrt{n}` (sample standard
        deviation, ddof = 1; NaN for a single run) at each m.
    count : (k,) int array
        Number of finite values averaged at each m.
    slope, intercept : float
        Fit :math:`\log \bar y = \text{intercept} + \text{slope} \log m` over
        the widths with a positive mean (NaN if fewer than two).
    slope_ci : (float, float)
        Confidence interval of the slope (NaN with fewer than three widths).
    fit : PowerLawFit or None
        The full fit.
    """

    m: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    count: np.ndarray
    slope: float
    slope_ci: tuple
    intercept: float
    fit: Optional[PowerLawFit] = None


def _convergence(x, y, level):
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    ms = np.unique(x)
    mean, sem, count = (np.empty(ms.size) for _ in range(3))
    for k, m in enumerate(ms):
        v = y[x == m]
        count[k] = v.size
        mean[k] = v.mean()
        sem[k] = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    ok = (ms > 0) & (mean > 0)
    fit = fit_power_law(ms[ok], mean[ok], level) if np.count_nonzero(ok) >= 2 else None
    if fit is None:
        slope, ci, intercept = math.nan, (math.nan, math.nan), math.nan
    else:
        slope, ci, intercept = fit.slope, fit.slope_ci, fit.intercept
    return Convergence(ms, mean, sem, count.astype(np.int64), slope, ci, intercept, fit)


def convergence(x, y, groups=None, level: float = 0.95):
    r"""Group ``y`` by ``x``, average over repeats, and fit :math:`\bar y \propto x^{p}`.

    For every distinct :math:`x = m` with values :math:`y_1..y_n` (seeds):
    :math:`\bar y = \frac1n \sum y_s` and
    :math:`\mathrm{sem} = \sqrt{\frac{1}{n(n-1)} \sum (y_s - \bar y)^2}`; then
    :func:`fit_power_law` of :math:`\bar y` against m over the widths whose
    mean is positive.  Pairs where x or y is NaN or infinite are dropped
    (``count`` says how many remain).

    Parameters
    ----------
    x, y : array_like, same length
        Width (or any positive control parameter) and observable per run.
    groups : array_like, optional
        A label per run (e.g. the regime or alpha); then one result per
        distinct label.
    level : float
        Confidence level of the slope interval.

    Returns
    -------
    Convergence, or dict {label: Convergence} when ``groups`` is given.

    Examples
    --------
    >>> res = convergence([4, 4, 16, 16, 64, 64], [1.1, 0.9, 0.55, 0.45, 0.26, 0.24])
    >>> res.m.tolist(), res.mean.tolist(), round(res.slope, 3)
    ([4.0, 16.0, 64.0], [1.0, 0.5, 0.25], -0.5)
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    if groups is None:
        return _convergence(x, y, level)
    groups = np.asarray(groups, dtype=object).ravel()
    if groups.shape != x.shape:
        raise ValueError(f"groups has {groups.size} labels for {x.size} values")
    labels = list(dict.fromkeys(groups.tolist()))
    return {g: _convergence(x[groups == g], y[groups == g], level) for g in labels}


def convergence_vs_m(table: Table, observable: str, m_key: str = "model.m", by=None,
                     completed_only: bool = True, level: float = 0.95):
    r"""Convergence of an observable in the width m over the runs of a table.

    Averages the column ``observable`` over the runs (seeds) of each m and
    fits :math:`\bar y(m) = C m^{p}` (see :func:`convergence`); a mean-field
    fluctuation typically gives :math:`p \approx -1/2` for a distance and
    :math:`p \approx -1` for an excess loss.

    Parameters
    ----------
    table : Table
    observable : str
        A column (``"final.test_loss"``, ``"best.train_loss"``) or an
        observable name, read as ``"final.<name>"``.
    m_key : str
        The column holding the width.
    by : str, optional
        A column to split by (e.g. ``"scaling.regime"``); one result per value.
    completed_only : bool
        Use only runs with status ``completed`` (diverged or killed runs
        would bias the mean).
    level : float
        Confidence level of the slope interval.

    Returns
    -------
    Convergence, or dict {value of ``by``: Convergence}.

    Examples
    --------
    >>> t = Table([{"model.m": m, "status": "completed", "final.test_loss": m ** -1.0}
    ...            for m in (8, 16, 32)])
    >>> round(convergence_vs_m(t, "test_loss").slope, 12)
    -1.0
    """
    if observable not in table.columns and f"final.{observable}" in table.columns:
        observable = f"final.{observable}"
    if completed_only and len(table):
        table = table.where({"status": "completed"})
    if not len(table):
        raise ValueError("convergence_vs_m: no runs to average"
                         + (" (none with status 'completed')" if completed_only else ""))
    x = table.column(m_key).astype(float)
    y = table.column(observable).astype(float)
    groups = None if by is None else table.column(by)
    return convergence(x, y, groups, level)


# ================================================== Wasserstein distances
def _points(P, name):
    P = np.asarray(P, dtype=float)
    if P.ndim == 1:
        P = P[:, None]
    if P.ndim != 2 or P.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (n, D) array of points, got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return P


def _pair(P, Q):
    P, Q = _points(P, "P"), _points(Q, "Q")
    if P.shape[1] != Q.shape[1]:
        raise ValueError(f"P and Q live in different dimensions ({P.shape[1]} vs {Q.shape[1]})")
    return P, Q


def _w2sq_sorted(xs, ys):
    r"""Squared 1-D W2 between uniform measures on sorted rows ``xs`` (k, n), ``ys`` (k, m).

    The quantile functions are step functions with jumps at i/n and j/m; on
    each interval of the merged grid both are constant, so the integral
    :math:`\int_0^1 (F^{-1}(u) - G^{-1}(u))^2 du` is a finite sum.  The grid
    is kept in integer units of 1/(n m), so coinciding breakpoints merge
    exactly.
    """
    n, m = xs.shape[-1], ys.shape[-1]
    if n == m:
        return np.mean((xs - ys) ** 2, axis=-1)
    cuts = np.union1d(np.arange(n + 1, dtype=np.int64) * m, np.arange(m + 1, dtype=np.int64) * n)
    w = np.diff(cuts) / (n * m)
    left = cuts[:-1]  # on (left, next], F^{-1} = xs[left // m] and G^{-1} = ys[left // n]
    return ((xs[..., left // m] - ys[..., left // n]) ** 2) @ w


def wasserstein2_1d(x, y) -> float:
    r"""Exact W2 between the uniform empirical measures of two samples on the line.

    .. math::

        W_2^2\Big(\frac1n \sum_i \delta_{x_i}, \frac1m \sum_j \delta_{y_j}\Big)
        = \int_0^1 \big(F^{-1}(u) - G^{-1}(u)\big)^2\, du,

    with :math:`F^{-1}(u) = x_{(\lceil n u \rceil)}` the quantile function
    (order statistics); the integrand is piecewise constant on the merged
    grid :math:`\{i/n\} \cup \{j/m\}`, so the integral is an exact sum of at
    most n + m terms after sorting, O((n + m) log(n + m)).

    Examples
    --------
    >>> w = wasserstein2_1d([0.0, 1.0], [0.0, 0.5, 1.0])
    >>> round(w ** 2, 12) == round(1 / 12, 12)     # (1/6)(1/2)^2 on (1/3, 1/2] and (1/2, 2/3]
    True
    """
    x = np.sort(np.asarray(x, dtype=float).ravel())
    y = np.sort(np.asarray(y, dtype=float).ravel())
    if x.size == 0 or y.size == 0:
        raise ValueError("wasserstein2_1d needs non-empty samples")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("wasserstein2_1d: samples hold NaN or infinite values")
    return math.sqrt(max(float(_w2sq_sorted(x, y)), 0.0))


def _exact_w2(P, Q):
    n, m = len(P), len(Q)
    N = math.lcm(n, m)
    if N > EXACT_LIMIT:
        raise ValueError(f"exact W2 between {n} and {m} points needs a {N} x {N} assignment "
                         f"(limit {EXACT_LIMIT}); use method='sliced'")
    if N != n:
        P = np.repeat(P, N // n, axis=0)
    if N != m:
        Q = np.repeat(Q, N // m, axis=0)
    C = cdist(P, Q, "sqeuclidean")
    rows, cols = linear_sum_assignment(C)
    return math.sqrt(float(C[rows, cols].mean()))


def _directions(D, n_projections, rng, directions):
    if directions is not None:
        theta = np.asarray(directions, dtype=float)
        if theta.ndim != 2 or theta.shape[1] != D or theta.shape[0] == 0:
            raise ValueError(f"directions must be a (k, {D}) array, got shape {theta.shape}")
    else:
        if int(n_projections) < 1:
            raise ValueError(f"n_projections must be >= 1, got {n_projections}")
        theta = np.random.default_rng(rng).standard_normal((int(n_projections), D))
    norms = np.linalg.norm(theta, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ValueError("directions must be non-zero and finite")
    return theta / norms


def sliced_wasserstein2(P, Q, n_projections: int = 200, rng=None, directions=None) -> float:
    r"""Sliced Wasserstein-2 distance between uniform particle measures.

    .. math::

        SW_2^2(\mu, \nu) = \mathbb{E}_{\theta \sim U(S^{D-1})}
            W_2^2(\theta_\# \mu, \theta_\# \nu)
        \approx \frac1K \sum_{k=1}^K W_2^2(\theta_k \cdot P, \theta_k \cdot Q),

    each one-dimensional term computed exactly by :func:`wasserstein2_1d`
    (so P and Q may have different numbers of points).  Cost
    O(K (n + m) (D + log(n + m))).

    Comparison with W2: for the optimal coupling :math:`\pi` of
    :math:`(\mu, \nu)`, :math:`W_2^2(\theta_\#\mu, \theta_\#\nu) \le
    \int (\theta \cdot (x - y))^2 d\pi` (each projection is 1-Lipschitz),
    and :math:`\mathbb{E}[\theta\theta^T] = I / D`, so

    .. math:: SW_2 \le W_2 / \sqrt{D} \le W_2,

    with equality in the first for a translation :math:`\nu = (x \mapsto x +
    v)_\# \mu`, where :math:`SW_2 = |v| / \sqrt{D}`.  With K random
    directions the first bound holds with :math:`1/D` replaced by the
    largest eigenvalue of :math:`\frac1K \sum_k \theta_k \theta_k^T`; the
    second holds exactly.  Mind that the two distances do not decay at the
    same rate in the number of samples: between an m-sample and its
    population, :math:`W_2 \sim m^{-1/D}` for D > 4 while :math:`SW_2 \sim
    m^{-1/2}`.

    Parameters
    ----------
    P, Q : (n, D), (m, D) arrays of points (each with weight 1/n, 1/m).
    n_projections : int
        Number K of random directions, uniform on the sphere.
    rng : None, int or numpy.random.Generator
        Source of the directions (an int makes the result reproducible).
    directions : (K, D) array, optional
        Use these directions (rows are normalised) instead of random ones.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> P = np.random.default_rng(1).standard_normal((100, 4))
    >>> sw = sliced_wasserstein2(P, P + [2.0, 0.0, 0.0, 0.0], n_projections=20000, rng=0)
    >>> round(sw, 2)                      # |v| / sqrt(D) = 2 / sqrt(4)
    1.0
    """
    P, Q = _pair(P, Q)
    theta = _directions(P.shape[1], n_projections, rng, directions)
    n, m = len(P), len(Q)
    chunk = max(1, (1 << 22) // (n + m))
    total = 0.0
    for k0 in range(0, len(theta), chunk):
        th = theta[k0:k0 + chunk]
        xs = np.sort(th @ P.T, axis=1)
        ys = np.sort(th @ Q.T, axis=1)
        total += float(np.sum(_w2sq_sorted(xs, ys)))
    return math.sqrt(max(total / len(theta), 0.0))


def _resolve_method(method, n, m, D, max_exact):
    if method not in ("auto", "exact", "sliced"):
        raise ValueError(f"method must be 'auto', 'exact' or 'sliced', got {method!r}")
    if method == "auto":
        return "exact" if D == 1 or (n == m and n <= max_exact) else "sliced"
    return method


def wasserstein2(P, Q, method: str = "auto", n_projections: int = 200, rng=None,
                 max_exact: int = 2000) -> float:
    r"""Wasserstein-2 distance between the uniform particle measures of P and Q.

    .. math::

        W_2^2(\mu_P, \mu_Q) = \min_{\pi \in \Pi(\mu_P, \mu_Q)} \int |x - y|^2 d\pi,
        \qquad \mu_P = \frac1n \sum_i \delta_{P_i}.

    For n = m points the minimum is attained at a permutation
    (Birkhoff-von Neumann), :math:`W_2^2 = \min_\sigma \frac1n \sum_i |P_i -
    Q_{\sigma(i)}|^2`, solved exactly by
    :func:`scipy.optimize.linear_sum_assignment` on the squared-distance
    matrix, O(n^3).  For n != m, ``method="exact"`` repeats every point of P
    lcm(n, m)/n times (and of Q lcm(n, m)/m times), which leaves the
    measures unchanged, and solves that assignment; it refuses problems
    larger than :data:`EXACT_LIMIT` points.

    Parameters
    ----------
    P, Q : (n, D), (m, D) arrays (1-D arrays are points on the line).
        Particles are compared on their raw coordinates (a, b, c).
    method : {"auto", "exact", "sliced"}
        ``auto``: exact when n == m <= ``max_exact`` or D == 1 (where the
        quantile formula is exact for any sizes), otherwise
        :func:`sliced_wasserstein2` -- which is a different, smaller
        distance (:math:`SW_2 \le W_2/\sqrt{D}`), so do not mix the two
        within one comparison.
    n_projections, rng
        Passed to :func:`sliced_wasserstein2`.
    max_exact : int
        Largest n solved exactly under ``auto``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> P = np.random.default_rng(0).standard_normal((6, 2))
    >>> wasserstein2(P, P[::-1])                      # a permutation: same measure
    0.0
    >>> round(wasserstein2(P, np.repeat(P, 2, axis=0), method="exact"), 12)
    0.0
    """
    P, Q = _pair(P, Q)
    method = _resolve_method(method, len(P), len(Q), P.shape[1], max_exact)
    if P.shape[1] == 1 and method == "exact":
        return wasserstein2_1d(P[:, 0], Q[:, 0])
    if method == "exact":
        return _exact_w2(P, Q)
    return sliced_wasserstein2(P, Q, n_projections=n_projections, rng=rng)


# ======================================================= mean-field limit
@dataclass(frozen=True)
class ReferenceDistance:
    r"""Distances of a run to a reference run at common physical times.

    Attributes
    ----------
    time : (k,) array
        Physical times t = lr * step compared.
    step, reference_step : (k,) int arrays
        The snapshot steps used in the run and in the reference.
    parameter : (k,) array
        W2 (or sliced W2, see ``method``) between the particle measures.
    function : (k,) array
        :math:`\sqrt{\frac1n \sum_j (f_m(x_j) - f_{ref}(x_j))^2}` on the test set.
    method : str
        ``"exact"`` or ``"sliced"``: how ``parameter`` was computed.
    """

    time: np.ndarray
    step: np.ndarray
    reference_step: np.ndarray
    parameter: np.ndarray
    function: np.ndarray
    method: str


@contextlib.contextmanager
def _opened(run_or_path):
    if isinstance(run_or_path, Run):
        yield run_or_path
    else:
        with open_run(run_or_path) as run:
            yield run


def _nearest(available, t, tol):
    """Index of the snapshot time nearest ``t``, or None if farther than ``tol``."""
    if len(available) == 0:
        return None
    k = int(np.argmin(np.abs(available - t)))
    return k if abs(available[k] - t) <= tol else None


def distance_to_reference(run, reference_run, times=None, tol=None, method: str = "auto",
                          n_projections: int = 200, rng=0) -> ReferenceDistance:
    r"""Distance of an m-particle run to a (large-m) reference run over time.

    At each common physical time t (snapshots of both runs within ``tol``
    of t), with particles :math:`P_t` (m, D) of ``run`` and :math:`Q_t`
    (M, D) of the reference:

    .. math::

        d_{param}(t) = W_2\Big(\frac1m \sum_i \delta_{P_{t,i}},
                              \frac1M \sum_k \delta_{Q_{t,k}}\Big), \qquad
        d_{func}(t) = \Big(\frac1n \sum_j \big(f_{P_t}(x_j) - f_{Q_t}(x_j)\big)^2\Big)^{1/2},

    where :math:`x_j` is the test set of ``run``, and each network uses its
    own activation and alpha in eq. (1).  Particles are points
    :math:`(a, b, c) \in \mathbb{R}^D` compared on their raw coordinates.
    W2 follows :func:`wasserstein2` (``method="auto"``: exact for equal
    widths, sliced otherwise).  All times use the same ``n_projections``
    directions drawn from ``rng``, so sliced distances of different runs
    against one reference share their Monte-Carlo noise when ``rng`` is the
    same int.

    Notes
    -----
    The two runs should share data and dynamics (same seed gives the same
    data and teacher for every m); their initial particles are independent
    draws, so :math:`d(0)` is the sampling error of the initialisation, and
    it is what the mean-field limit predicts to shrink with m (at fixed
    alpha, i.e. the ``mean_field`` regime).  Use one method for a whole
    series of m: sliced and exact W2 are different distances with
    different rates in m.

    Parameters
    ----------
    run, reference_run : Run or path
    times : array_like, optional
        Times to compare at; default every snapshot time of ``run`` that the
        reference also has.  An explicit time with no snapshot in both runs
        raises ValueError.
    tol : float, optional
        Largest allowed |snapshot time - t|; default 1e-9 (1 + |t|).
    method, n_projections, rng
        How W2 is computed (see :func:`wasserstein2`).

    Returns
    -------
    ReferenceDistance

    Examples
    --------
    >>> d = distance_to_reference("m64.h5", "m4096.h5")   # doctest: +SKIP
    >>> d.time, d.parameter, d.function                   # doctest: +SKIP
    """
    with _opened(run) as r, _opened(reference_run) as ref:
        t_run, t_ref = np.asarray(r.times, float), np.asarray(ref.times, float)
        cfg, cfg_ref = r.config, ref.config
        if cfg.dim != cfg_ref.dim or cfg.data.d != cfg_ref.data.d:
            raise ValueError(f"runs have particles of different shapes: D = {cfg.dim} "
                             f"(d = {cfg.data.d}) vs D = {cfg_ref.dim} (d = {cfg_ref.data.d})")

        def tolerance(t):
            return 1e-9 * (1.0 + abs(t)) if tol is None else float(tol)

        pairs = []
        if times is None:
            for k, t in enumerate(t_run):
                kr = _nearest(t_ref, t, tolerance(t))
                if kr is not None:
                    pairs.append((float(t), k, kr))
            if not pairs:
                raise ValueError(f"the runs have no snapshot time in common "
                                 f"(run: {t_run.tolist()}, reference: {t_ref.tolist()})")
        else:
            for t in np.atleast_1d(np.asarray(times, dtype=float)):
                k, kr = _nearest(t_run, t, tolerance(t)), _nearest(t_ref, t, tolerance(t))
                if k is None or kr is None:
                    raise ValueError(f"no snapshot at t = {t:g} in "
                                     f"{'the run' if k is None else 'the reference'} "
                                     f"(run: {t_run.tolist()}, reference: {t_ref.tolist()})")
                pairs.append((float(t), k, kr))

        X = np.ascontiguousarray(r.data.x_test, dtype=np.float64)
        act, act_ref = ACT_IDS[cfg.model.activation], ACT_IDS[cfg_ref.model.activation]
        alpha, alpha_ref = r.alpha, ref.alpha
        m, M, D = cfg.model.m, cfg_ref.model.m, cfg.dim
        how = _resolve_method(method, m, M, D, 2000)
        theta = _directions(D, n_projections, rng, None) if how == "sliced" else None
        steps, ref_steps = r.steps, ref.steps
        par, fun = [], []
        for _, k, kr in pairs:
            P = np.ascontiguousarray(r.particles(k), dtype=np.float64)
            Q = np.ascontiguousarray(ref.particles(kr), dtype=np.float64)
            if how == "sliced":
                par.append(sliced_wasserstein2(P, Q, directions=theta))
            else:
                par.append(wasserstein2(P, Q, method="exact"))
            diff = forward(P, X, act, alpha) - forward(Q, X, act_ref, alpha_ref)
            fun.append(math.sqrt(float(np.mean(diff ** 2))))
        return ReferenceDistance(
            time=np.array([p[0] for p in pairs]),
            step=np.array([steps[p[1]] for p in pairs], dtype=np.int64),
            reference_step=np.array([ref_steps[p[2]] for p in pairs], dtype=np.int64),
            parameter=np.array(par), function=np.array(fun), method=how)
