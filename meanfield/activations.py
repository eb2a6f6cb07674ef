r"""Activation functions s of eq. (1), by name.

=========  ==========================  =============================
name       s(z)                        s'(z)
=========  ==========================  =============================
relu       max(z, 0)                   1{z > 0}
sigmoid    1 / (1 + e^{-z})            s (1 - s)
tanh       tanh z                      1 - tanh^2 z
softplus   log(1 + e^z)                sigmoid(z)
erf        erf z                       (2 / sqrt(pi)) e^{-z^2}
linear     z                           1
=========  ==========================  =============================

The compiled implementations live in :mod:`meanfield.kernels.elementwise`.
"""

import numpy as np

from .kernels import elementwise as _k

IDS = _k.ACTIVATION_IDS
NAMES = tuple(IDS)


def value(name: str, z) -> np.ndarray:
    """Activation ``name`` applied elementwise to ``z`` (any shape)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    return _k.activate(IDS[name], z.reshape(-1), False).reshape(z.shape)


def derivative(name: str, z) -> np.ndarray:
    """Derivative of activation ``name`` applied elementwise to ``z`` (any shape)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    return _k.activate(IDS[name], z.reshape(-1), True).reshape(z.shape)
