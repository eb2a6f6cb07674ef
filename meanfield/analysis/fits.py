r"""Power-law fits and convergence in the width m.

:func:`convergence` / :func:`convergence_vs_m` average an observable over
seeds at every width m and fit a power law :math:`\bar y(m) \approx C m^{p}`
(:func:`fit_power_law`, least squares in log-log with confidence intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import stats

from ..errors import InputError
from .tables import Table

__all__ = ["PowerLawFit", "fit_power_law", "Convergence", "convergence", "convergence_vs_m"]


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
    InputError
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
        raise InputError(f"x and y differ in length ({x.size} vs {y.size})")
    bad = ~(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    if bad.any():
        raise InputError(f"fit_power_law needs positive finite x and y; "
                         f"{int(bad.sum())} point(s) are not")
    if np.unique(x).size < 2:
        raise InputError("fit_power_law needs at least two distinct x")
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
        raise InputError(f"x and y differ in length ({x.size} vs {y.size})")
    if groups is None:
        return _convergence(x, y, level)
    groups = np.asarray(groups, dtype=object).ravel()
    if groups.shape != x.shape:
        raise InputError(f"groups has {groups.size} labels for {x.size} values")
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
        raise InputError("convergence_vs_m: no runs to average"
                         + (" (none with status 'completed')" if completed_only else ""))
    x = table.column(m_key).astype(float)
    y = table.column(observable).astype(float)
    groups = None if by is None else table.column(by)
    return convergence(x, y, groups, level)
