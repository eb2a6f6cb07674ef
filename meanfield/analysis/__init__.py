r"""Analysis of stored runs: tables of runs, convergence in m, Wasserstein distances, rates.

Five modules, each usable on its own (every name is importable from here):

* :mod:`~meanfield.analysis.tables`: :func:`load_table` reads many run files
  into a :class:`Table`, one row per run (flattened config, ``alpha``,
  ``status``, final and best value of every observable; :func:`run_row` is
  one run's row).  Unreadable files are skipped and listed in ``table.errors``.
* :mod:`~meanfield.analysis.fits`: :func:`convergence` / :func:`convergence_vs_m`
  average an observable over seeds at every width m and fit a power law
  :math:`\bar y(m) \approx C m^{p}` (:func:`fit_power_law`).
* :mod:`~meanfield.analysis.transport`: :func:`wasserstein2` (exact, by POT's
  network simplex, for any numbers of particles) and :func:`sliced_wasserstein2`
  compare particle measures :math:`\mu_m = \frac1m \sum_i \delta_{w_i}`;
  :func:`wasserstein2_1d` is the exact one-dimensional distance.
* :mod:`~meanfield.analysis.limit`: :func:`distance_to_reference` measures how far
  an m-particle run is from a large-m reference run, in parameter space (W2
  between particle measures) and in function space (root-mean-square difference
  of the outputs on the test set), at equal physical times t = lr * step.
* :mod:`~meanfield.analysis.rates`: :func:`predicted_residual` and
  :func:`linear_rate_bound`, the training residual of over-parameterised GD
  predicted from a Gram spectrum (:mod:`meanfield.gram`).

Everything here is NumPy / SciPy / POT; the only compiled code called is the
network forward pass :func:`meanfield.kernels.forward`.

Examples
--------
>>> import numpy as np
>>> from meanfield.analysis import wasserstein2
>>> P = np.random.default_rng(0).standard_normal((50, 3))
>>> round(wasserstein2(P, P + [3.0, 0.0, 4.0]), 12)
5.0
"""

from .fits import Convergence, PowerLawFit, convergence, convergence_vs_m, fit_power_law
from .limit import ReferenceDistance, distance_to_reference
from .rates import linear_rate_bound, predicted_residual
from .tables import Table, load_table, run_row, series_summary
from .transport import (EXACT_LIMIT, SlicedDistanceWarning, sliced_wasserstein2, wasserstein2,
                        wasserstein2_1d)

__all__ = [
    "Table", "load_table", "run_row", "series_summary",
    "PowerLawFit", "fit_power_law", "Convergence", "convergence", "convergence_vs_m",
    "wasserstein2", "sliced_wasserstein2", "wasserstein2_1d", "SlicedDistanceWarning",
    "EXACT_LIMIT",
    "ReferenceDistance", "distance_to_reference",
    "predicted_residual", "linear_rate_bound",
]
