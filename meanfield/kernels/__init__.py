"""All Numba-compiled code of meanfield (module-level ``@njit(cache=True)``, float64)."""

from .elementwise import LOGISTIC, SQUARED
from .network import forward, risk, risk_and_velocity
from .sampling import teacher_labels
from .training import GD, SGD, N_OBSERVABLES, record_row, train_chunk
