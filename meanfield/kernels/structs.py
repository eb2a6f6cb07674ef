"""Named argument structures of the kernels (namedtuples, which Numba compiles as records).

* :class:`Model` - what a network evaluation needs besides the particles and the data:
  activation and loss ids, the output scale alpha, the weight decay lam, and for the
  tangent model the flag and the linearisation point P0 (eq. 1-2, DESIGN.md section 1).
* :class:`Population` - the teacher and the input law of the exact population risk.
* :class:`Workspace` - every buffer of one evaluation, allocated once per chunk by
  :func:`meanfield.kernels.network.workspace`.

Build Model and Population with :func:`make_model` / :func:`make_population` (from Python)
so that every field has one type and a kernel is compiled once per argument layout; inside
compiled code the constructors ``Model(...)`` and ``Population(...)`` work as well.
"""

from collections import namedtuple

import numpy as np

from .elementwise import ACTIVATION_IDS, LOSS_IDS

Model = namedtuple("Model", ["act", "loss", "alpha", "lam", "tangent", "P0"])
Model.__doc__ = """Activation id, loss id, alpha, lam, tangent flag and P0 (m, D) of a network.

``P0`` is read only when ``tangent`` is true (any (m, D) array otherwise, e.g. P itself)."""

Population = namedtuple("Population", ["T", "act", "alpha", "lam", "noise", "sphere"])
Population.__doc__ = """Teacher T (m0, d + 1) with the student's activation id, the student's
alpha and lam, the label-noise standard deviation and the input law (sphere or Gaussian)."""

Workspace = namedtuple("Workspace", ["B", "F", "acc", "S", "H", "DZ", "dA", "part", "fl",
                                     "g", "f"])
Workspace.__doc__ = """Buffers of :func:`meanfield.kernels.network.workspace` (see there)."""


def _id(table, value, what):
    """The integer id of ``value`` (a name of ``table`` or one of its ids)."""
    if isinstance(value, str):
        if value not in table:
            raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(table)}")
        return table[value]
    value = int(value)
    if value not in table.values():
        raise ValueError(f"unknown {what} id {value}")
    return value


def make_model(activation, loss, alpha, lam, tangent, P0):
    """A :class:`Model` with canonical field types.

    Parameters
    ----------
    activation, loss : str or int
        Names of :mod:`meanfield.activations` / :mod:`meanfield.losses` (or their ids).
    alpha, lam : float
        Output scale and weight decay of eq. (1)-(2).
    tangent : bool
        Evaluate the tangent model at ``P0`` instead of the network.
    P0 : (m, D) array_like
        Linearisation point (read only when ``tangent``).
    """
    return Model(_id(ACTIVATION_IDS, activation, "activation"), _id(LOSS_IDS, loss, "loss"),
                 float(alpha), float(lam), bool(tangent),
                 np.ascontiguousarray(P0, dtype=np.float64))


def make_population(T, activation, alpha, lam, noise, sphere):
    """A :class:`Population` with canonical field types (arguments as the fields)."""
    return Population(np.ascontiguousarray(T, dtype=np.float64),
                      _id(ACTIVATION_IDS, activation, "activation"), float(alpha), float(lam),
                      float(noise), bool(sphere))
