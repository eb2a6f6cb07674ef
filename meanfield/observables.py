"""What is measured along a run, and the names it is stored under.

Two kinds of observables.  *Recorded* ones are computed inside the compiled
training loop (:func:`meanfield.kernels.training.record_row`) every
``record.every`` steps, before the step, and for the final state:

=======================  ===========================================================
``train_loss``           R(f) on the training set (mean loss, without 1/alpha^2)
``test_loss``            R(f) on the test set
``velocity_sq``          (1/m) sum_i |v_i|^2, the squared Wasserstein speed
``displacement``         |P_t - P_0|_F / |P_0|_F, relative particle displacement
``scaled_displacement``  alpha sqrt((1/m) sum_i |w_i(t) - w_i(0)|^2): O(1) in the lazy limit
``balance_mean``         mean_i of B_i = c_i^2 - |a_i|^2 - b_i^2
``balance_drift``        max_i |B_i(t) - B_i(0)| (conserved by the relu gradient flow)
``population_loss``      the exact population risk, where a closed form exists
=======================  ===========================================================

*Snapshot* ones are computed with every particle snapshot (O(n^2 m) work):

=======================  ===========================================================
``tangent_gap``          RMS over test inputs of f(w_t) - T f(w_t), the distance to
                         the tangent model at w0 (O(1/alpha) in the lazy regime)
``ntk_change``           |K_t - K_0|_F / |K_0|_F, relative change of the empirical NTK
                         Gram on the first ``NTK_POINTS`` test inputs
``population_loss``      Monte-Carlo estimate on a fixed sample of
                         ``data.population_samples`` fresh teacher points, for teacher
                         data without a closed form (its ``method`` attribute says which)
=======================  ===========================================================

For a run of the tangent model (``train.model = "tangent"``) the losses are
those of the tangent model.
"""

from __future__ import annotations

import numpy as np

from . import lazy
from .kernels import model_risk, model_risk_and_velocity, record_row

NAMES = ("train_loss", "test_loss", "velocity_sq", "displacement", "scaled_displacement",
         "balance_mean", "balance_drift", "population_loss")
"""The kernel's record columns, in order."""

NTK_POINTS = 128

DESCRIPTIONS = {
    "train_loss": "mean loss on the training set",
    "test_loss": "mean loss on the test set",
    "velocity_sq": "mean squared particle velocity (1/m) sum_i |v_i|^2",
    "displacement": "relative displacement |P_t - P_0| / |P_0| (Frobenius)",
    "scaled_displacement": "alpha * sqrt(mean_i |w_i(t) - w_i(0)|^2)",
    "balance_mean": "mean_i (c_i^2 - |a_i|^2 - b_i^2)",
    "balance_drift": "max_i |B_i(t) - B_i(0)|, B_i = c_i^2 - |a_i|^2 - b_i^2",
    "population_loss": "population risk E loss(f(x), y) under the teacher",
    "tangent_gap": "RMS over test inputs of f(w_t) - T f(w_t) (tangent model at w_0)",
    "ntk_change": "relative change |K_t - K_0| / |K_0| of the empirical NTK Gram",
}


class Observables:
    """The observables of one run: which are stored, and the snapshot-time ones computed.

    Parameters
    ----------
    config : Config
    data : Dataset
    dyn : Dynamics
    P0 : (m, D) initial particles.
    population : (X, y) or None
        Monte-Carlo sample for the population risk when there is no closed form.
    """

    def __init__(self, config, data, dyn, P0, population=None):
        self.dyn, self.data, self.P0 = dyn, data, P0
        self.activation = config.model.activation
        self.population = None if dyn.exact else population
        self.columns = [q for q, name in enumerate(NAMES)
                        if name != "population_loss" or dyn.exact]
        self.recorded = [NAMES[q] for q in self.columns]
        self.snapshot = ["tangent_gap", "ntk_change"]
        if self.population is not None:
            self.snapshot.append("population_loss")
        self.x_ntk = data.x_test[:NTK_POINTS]
        self.ntk0 = lazy.empirical_ntk(P0, self.x_ntk, activation=self.activation)
        self.attrs = {name: {"description": DESCRIPTIONS[name]}
                      for name in self.recorded + self.snapshot}
        if dyn.exact:
            self.attrs["population_loss"]["method"] = "exact"
        elif self.population is not None:
            self.attrs["population_loss"].update(
                method="monte_carlo", samples=len(self.population[1]))

    def final(self, P) -> np.ndarray:
        """The recorded observables of the state ``P`` (one row, ``recorded`` order)."""
        dyn, data = self.dyn, self.data
        V = np.empty_like(P)
        R = model_risk_and_velocity(P, self.P0, dyn.tangent, data.x_train, data.y_train,
                                    dyn.act, dyn.loss, dyn.alpha, dyn.lam, V)
        row = np.empty(len(NAMES))
        record_row(row, P, self.P0, dyn.tangent, data.x_test, data.y_test, dyn.teacher,
                   dyn.sphere, dyn.noise, dyn.exact, dyn.act, dyn.loss, dyn.alpha, R, V)
        return row[self.columns]

    def at_snapshot(self, P) -> np.ndarray:
        """The snapshot observables of the state ``P`` (one row, ``snapshot`` order)."""
        dyn = self.dyn
        row = [lazy.tangent_gap(P, self.P0, self.data.x_test, self.activation, dyn.alpha),
               lazy.ntk_change(P, self.P0, self.x_ntk, self.activation, K0=self.ntk0)]
        if self.population is not None:
            X, y = self.population
            row.append(model_risk(P, self.P0, dyn.tangent, X, y, dyn.act, dyn.loss, dyn.alpha))
        return np.array(row)
