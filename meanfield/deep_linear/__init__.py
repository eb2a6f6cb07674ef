"""Deep linear networks: x -> W_N ... W_1 x trained on a convex loss of W_e = W_N ... W_1.

After Arora, Cohen & Hazan (ICML 2018) and Arora, Cohen, Golowich & Hu (ICLR 2019):
gradient flow on the layers conserves W_{j+1}^T W_{j+1} - W_j W_j^T, so from a
balanced init W_e follows the end-to-end dynamics

.. math::

    \\dot{\\mathrm{vec}}(W_e) = -P(W_e)\\, \\mathrm{vec}(\\nabla L(W_e)), \\qquad
    P(W_e) = \\sum_{j=1}^{N} (W_e W_e^T)^{\\frac{j-1}{N}} \\otimes
             (W_e^T W_e)^{\\frac{N-j}{N}}

(row-major vec); for one output row it reads
dw/dt = -|w|^{2-2/N} (g + (N-1) proj_w g), g = grad L(w).  The losses,
inits, algorithms and observables are in the submodules.
"""

from .algorithms import GD, AdaGrad, Adam, EndToEnd
from .data import linear_teacher
from .inits import INITS, balanced, gaussian, identity, initialise
from .model import (LOSSES, Network, layer_gradients, loss, loss_and_gradient, loss_power,
                    preconditioned_gradient)
from .observables import (balancedness, deficiency_margin, end_to_end_gap,
                          least_squares_target, singular_values)

__all__ = ["GD", "AdaGrad", "Adam", "EndToEnd", "linear_teacher", "INITS", "balanced",
           "gaussian", "identity", "initialise", "LOSSES", "Network", "layer_gradients", "loss",
           "loss_and_gradient", "loss_power", "preconditioned_gradient", "balancedness",
           "deficiency_margin", "end_to_end_gap", "least_squares_target", "singular_values"]
