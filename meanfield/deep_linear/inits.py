"""Initialisations of a deep linear network.

* ``balanced`` (Arora, Cohen, Golowich & Hu 2019, Procedure 1): draw the
  end-to-end matrix W_e (here entries N(0, scale^2 / d), or a given one),
  take its SVD W_e = U S V^T with r = min(k, d) singular values, and set

  .. math::

      W_N \\simeq U S^{1/N}, \\quad W_j \\simeq S^{1/N} \\ (1 < j < N), \\quad
      W_1 \\simeq S^{1/N} V^T,

  where ``\\simeq`` pads with zeros up to the hidden widths (each >= r).
  Then W_N ... W_1 = W_e and W_{j+1}^T W_{j+1} = W_j W_j^T exactly
  (0-balanced).
* ``gaussian``: independent entries of W_j ~ N(0, scale^2 / n_{j-1}); with a
  small scale it is approximately balanced (delta = O(scale^2)).
* ``identity``: every W_j = I (residual-style), which needs d = n_1 = ... = k.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .model import Network

INITS = ("balanced", "gaussian", "identity")


def balanced(w_e, dims) -> Network:
    """The 0-balanced network of widths ``dims`` whose end-to-end matrix is ``w_e`` (k, d)."""
    dims = [int(n) for n in dims]
    w_e = np.asarray(w_e, dtype=np.float64)
    if w_e.shape != (dims[-1], dims[0]):
        raise InputError(f"end-to-end matrix of shape {w_e.shape}, "
                         f"expected ({dims[-1]}, {dims[0]})")
    r = min(dims[0], dims[-1])
    if min(dims[1:-1], default=r) < r:
        raise InputError(f"model.width: balanced init needs every hidden width >= "
                         f"min(d, k) = {r}, got widths {dims[1:-1]}")
    depth = len(dims) - 1
    u, s, vt = np.linalg.svd(w_e, full_matrices=False)
    root = s ** (1.0 / depth)
    if depth == 1:
        return Network.from_layers([w_e])
    layers = []
    for j in range(depth):
        w = np.zeros((dims[j + 1], dims[j]))
        if j == 0:
            w[:r, :] = root[:, None] * vt
        elif j == depth - 1:
            w[:, :r] = u * root
        else:
            w[:r, :r] = np.diag(root)
        layers.append(w)
    return Network.from_layers(layers)


def gaussian(dims, scale: float, rng) -> Network:
    """Entries of W_j ~ N(0, scale^2 / n_{j-1}), independent."""
    layers = [rng.standard_normal((dims[j + 1], dims[j])) * (scale / np.sqrt(dims[j]))
              for j in range(len(dims) - 1)]
    return Network.from_layers(layers)


def identity(dims) -> Network:
    """Every W_j = I; needs d = n_1 = ... = k."""
    if len(set(int(n) for n in dims)) != 1:
        raise InputError(f"init.kind = 'identity' needs d = every width = k, got widths "
                         f"{list(dims)}")
    return Network.from_layers([np.eye(int(dims[0])) for _ in range(len(dims) - 1)])


def initialise(kind: str, dims, scale: float, rng) -> Network:
    """The network of widths ``dims`` from init ``kind`` (one of :data:`INITS`).

    ``balanced`` draws W_e with entries N(0, scale^2 / d) and splits it;
    ``gaussian`` uses ``scale`` per layer; ``identity`` ignores it.
    """
    if kind == "balanced":
        return balanced(rng.standard_normal((dims[-1], dims[0])) * (scale / np.sqrt(dims[0])),
                        dims)
    if kind == "gaussian":
        return gaussian(dims, scale, rng)
    if kind == "identity":
        return identity(dims)
    raise InputError(f"init.kind = {kind!r}: expected one of {INITS}")
