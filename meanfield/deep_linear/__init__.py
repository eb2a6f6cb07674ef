"""Deep linear networks: x -> W_N ... W_1 x trained on a convex loss of W_e = W_N ... W_1.

After Arora, Cohen & Hazan (ICML 2018) and Arora, Cohen, Golowich & Hu (ICLR 2019):
gradient flow on the layers conserves W_{j+1}^T W_{j+1} - W_j W_j^T, so from a
balanced init W_e follows the end-to-end dynamics

.. math::

    \\dot{\\mathrm{vec}}(W_e) = -P(W_e)\\, \\mathrm{vec}(\\nabla L(W_e)), \\qquad
    P(W_e) = \\sum_{j=1}^{N} (W_e W_e^T)^{\\frac{j-1}{N}} \\otimes
             (W_e^T W_e)^{\\frac{N-j}{N}}

(row-major vec); for one output row it reads
dw/dt = -|w|^{2-2/N} (g + (N-1) proj_w g), g = grad L(w).  The losses
(:mod:`.model`), inits (:mod:`.inits`), algorithms (:mod:`.algorithms`),
observables (:mod:`.observables`), data (:mod:`.data`) and config keys
(:mod:`.config`) are in the submodules; their public names are importable
from here (loaded on first use, so that validating a config loads no NumPy).
"""

_LAZY = {
    "algorithms": ("GD", "AdaGrad", "Adam", "EndToEnd"),
    "config": ("stored_layers", "stored_shapes"),
    "data": ("linear_teacher",),
    "inits": ("INITS", "balanced", "gaussian", "identity", "initialise"),
    "model": ("LOSSES", "Network", "layer_gradients", "loss", "loss_and_gradient", "loss_power",
              "preconditioned_gradient"),
    "observables": ("balancedness", "deficiency_margin", "end_to_end_gap",
                    "least_squares_target", "singular_values"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
