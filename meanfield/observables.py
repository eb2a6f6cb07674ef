"""What is measured along a run, and the names it is stored under.

Observables are computed inside the compiled training loop
(:func:`meanfield.kernels.training.record_row`) every ``record.every`` steps,
before the step, and once more for the final state.  The columns of the
kernel's record rows are, in order:

=================  ====================================================
``train_loss``     R(f) on the training set (mean loss, without 1/alpha^2)
``test_loss``      R(f) on the test set
``velocity_sq``    (1/m) sum_i |v_i|^2, the squared Wasserstein speed
``displacement``   |P_t - P_0|_F / |P_0|_F, relative particle displacement
=================  ====================================================
"""

import numpy as np

from .kernels import record_row, risk_and_velocity

NAMES = ("train_loss", "test_loss", "velocity_sq", "displacement")

DESCRIPTIONS = {
    "train_loss": "mean loss on the training set",
    "test_loss": "mean loss on the test set",
    "velocity_sq": "mean squared particle velocity (1/m) sum_i |v_i|^2 on the training set",
    "displacement": "relative displacement |P_t - P_0| / |P_0| (Frobenius)",
}


def measure(P, P0, data, ids) -> np.ndarray:
    """One row of observables (in ``NAMES`` order) for the state ``P``.

    Parameters
    ----------
    P, P0 : (m, D) current and initial particles.
    data : Dataset.
    ids : Dynamics, the compiled-side description of the run.
    """
    V = np.empty_like(P)
    R = risk_and_velocity(P, data.x_train, data.y_train, ids.act, ids.loss,
                          ids.alpha, ids.lam, V)
    row = np.empty(len(NAMES))
    record_row(row, P, P0, data.x_test, data.y_test, ids.act, ids.loss, ids.alpha, R, V)
    return row
