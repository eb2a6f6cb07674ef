"""All Numba-compiled code of meanfield (module-level ``@njit(cache=True)``, float64).

The whole-chunk training loops live in :mod:`meanfield.kernels.training`.
"""

from .elementwise import LOGISTIC, SQUARED, activate
from .network import (forward, model_outputs, model_risk, model_risk_and_velocity, risk,
                      output_workspace, risk_and_velocity, tangent_forward, workspace)
from .population import pair_kernel, population_risk, population_risk_and_velocity
from .sampling import teacher_labels
from .structs import Model, Population, Workspace, make_model, make_population

__all__ = ["LOGISTIC", "SQUARED", "activate", "forward", "model_outputs", "model_risk",
           "model_risk_and_velocity", "risk", "risk_and_velocity", "tangent_forward",
           "workspace", "output_workspace", "pair_kernel", "population_risk",
           "population_risk_and_velocity",
           "teacher_labels", "Model", "Population", "Workspace", "make_model",
           "make_population"]
