"""All Numba-compiled code of meanfield (module-level ``@njit(cache=True)``, float64)."""

from .elementwise import LOGISTIC, SQUARED, activate
from .network import forward, model_risk_and_velocity, risk, risk_and_velocity, tangent_forward
from .sampling import teacher_labels
from .population import pair_kernel, population_risk, population_risk_and_velocity
from .training import GD, N_OBSERVABLES, POPULATION, SGD, model_risk, record_row, train_chunk

__all__ = ["LOGISTIC", "SQUARED", "activate", "forward", "model_risk_and_velocity", "risk",
           "risk_and_velocity", "tangent_forward", "teacher_labels", "pair_kernel",
           "population_risk", "population_risk_and_velocity", "GD", "SGD", "POPULATION",
           "N_OBSERVABLES", "model_risk", "record_row", "train_chunk"]
