r"""Distance of an m-particle run to a large-m reference run: the mean-field limit, measured.

:func:`distance_to_reference` compares two runs at equal physical times t = lr * step,
in parameter space (W2 between particle measures) and in function space (RMS difference
of the outputs on the test set).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from ..activations import IDS as ACT_IDS
from ..errors import InputError
from ..kernels import forward
from ..storage import Run, open_run
from .transport import _directions, resolve_method, sliced_wasserstein2, wasserstein2

__all__ = ["ReferenceDistance", "distance_to_reference"]


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


def _common_times(t_run, t_ref, times, tol):
    """(t, snapshot index in the run, snapshot index in the reference) for each time compared."""
    def tolerance(t):
        return 1e-9 * (1.0 + abs(t)) if tol is None else float(tol)

    pairs = []
    if times is None:
        for k, t in enumerate(t_run):
            kr = _nearest(t_ref, t, tolerance(t))
            if kr is not None:
                pairs.append((float(t), k, kr))
        if not pairs:
            raise InputError(f"the runs have no snapshot time in common "
                             f"(run: {t_run.tolist()}, reference: {t_ref.tolist()})")
        return pairs
    for t in np.atleast_1d(np.asarray(times, dtype=float)):
        k, kr = _nearest(t_run, t, tolerance(t)), _nearest(t_ref, t, tolerance(t))
        if k is None or kr is None:
            raise InputError(f"no snapshot at t = {t:g} in "
                             f"{'the run' if k is None else 'the reference'} "
                             f"(run: {t_run.tolist()}, reference: {t_ref.tolist()})")
        pairs.append((float(t), k, kr))
    return pairs


def _output(run, P, X):
    """The network output of eq. (1) of ``run``'s model with particles P at inputs X."""
    return forward(P, X, ACT_IDS[run.config.model.activation], run.alpha)


def distance_to_reference(run, reference_run, times=None, tol=None, method: str = "auto",
                          n_projections: int = 200, rng=0,
                          max_exact: int = 2000) -> ReferenceDistance:
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
    W2 follows :func:`~meanfield.analysis.wasserstein2` (``method="auto"``: exact
    when both widths are at most ``max_exact``, sliced otherwise; the result's
    ``method`` says which).  All times use the same ``n_projections``
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
        raises InputError.
    tol : float, optional
        Largest allowed |snapshot time - t|; default 1e-9 (1 + |t|).
    method, n_projections, rng, max_exact
        How W2 is computed (see :func:`~meanfield.analysis.wasserstein2`).

    Returns
    -------
    ReferenceDistance

    Examples
    --------
    >>> d = distance_to_reference("m64.h5", "m4096.h5")   # doctest: +SKIP
    >>> d.time, d.parameter, d.function                   # doctest: +SKIP
    """
    with _opened(run) as r, _opened(reference_run) as ref:
        cfg, cfg_ref = r.config, ref.config
        if cfg.dim != cfg_ref.dim or cfg.data.d != cfg_ref.data.d:
            raise InputError(f"runs have particles of different shapes: D = {cfg.dim} "
                             f"(d = {cfg.data.d}) vs D = {cfg_ref.dim} (d = {cfg_ref.data.d})")
        pairs = _common_times(np.asarray(r.times, float), np.asarray(ref.times, float),
                              times, tol)
        how = resolve_method(method, cfg.model.m, cfg_ref.model.m, cfg.dim, max_exact)
        theta = _directions(cfg.dim, n_projections, rng, None) if how == "sliced" else None
        X = np.ascontiguousarray(r.data.x_test, dtype=np.float64)
        par, fun = [], []
        for _, k, kr in pairs:
            P = np.ascontiguousarray(r.particles(k), dtype=np.float64)
            Q = np.ascontiguousarray(ref.particles(kr), dtype=np.float64)
            par.append(sliced_wasserstein2(P, Q, directions=theta) if how == "sliced"
                       else wasserstein2(P, Q, method="exact"))
            diff = _output(r, P, X) - _output(ref, Q, X)
            fun.append(math.sqrt(float(np.mean(diff ** 2))))
        steps, ref_steps = r.steps, ref.steps
        return ReferenceDistance(
            time=np.array([p[0] for p in pairs]),
            step=np.array([steps[p[1]] for p in pairs], dtype=np.int64),
            reference_step=np.array([ref_steps[p[2]] for p in pairs], dtype=np.int64),
            parameter=np.array(par), function=np.array(fun), method=how)
