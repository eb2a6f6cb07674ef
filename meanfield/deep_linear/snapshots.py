"""Snapshot observables of deep linear runs (registered in :mod:`meanfield.observables`).

=======================  ===========================================================
``balancedness``         delta = max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F (``gd``)
``sigma_min``            smallest singular value of W_e
``sigma_max``            largest singular value of W_e
``deficiency_margin``    sigma_min(Phi) - |W_e - Phi|_F, Phi the least-squares
                         solution on the training set (> 0: a deficiency margin
                         under a whitened squared loss)
``end_to_end_gap``       |W_e(GD) - W_e(end-to-end dynamics)|_F, with
                         ``train.track_end_to_end``
=======================  ===========================================================
"""

from __future__ import annotations

import numpy as np

from ..algorithms.deep_linear import end_to_end
from ..observables import register
from .model import Network
from .observables import balancedness as _balancedness
from .observables import deficiency_margin as _margin
from .observables import least_squares_target, singular_values


def _deep(problem) -> bool:
    return problem.config.model.kind == "deep_linear"


@register("balancedness", "max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F over the layers",
          applies=lambda pb: _deep(pb) and pb.config.train.algorithm == "gd")
def balancedness(state) -> float:
    """delta of the layers of ``state``."""
    return _balancedness(Network(state.problem.model.dims, state.particles.reshape(-1)))


@register("sigma_min", "smallest singular value of the end-to-end matrix W_e", applies=_deep)
def sigma_min(state) -> float:
    return float(singular_values(end_to_end(state))[-1])


@register("sigma_max", "largest singular value of the end-to-end matrix W_e", applies=_deep)
def sigma_max(state) -> float:
    return float(singular_values(end_to_end(state))[0])


@register("deficiency_margin", "sigma_min(Phi) - |W_e - Phi|_F, Phi the least-squares "
          "solution on the training set", applies=_deep)
def deficiency_margin(state) -> float:
    pb = state.problem
    target = pb.cached("least_squares", lambda: least_squares_target(pb.arrays.X, pb.arrays.y))
    return _margin(end_to_end(state), target)[1]


@register("end_to_end_gap", "|W_e(GD) - W_e(end-to-end dynamics, same lr)|_F",
          applies=lambda pb: _deep(pb) and pb.config.train.track_end_to_end)
def end_to_end_gap(state) -> float:
    return float(np.linalg.norm(end_to_end(state) - state.extras["flow"]))
