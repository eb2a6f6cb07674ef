"""The deep linear network, its losses and their gradients.

A depth-N network maps x in R^d to W_N ... W_1 x in R^k, W_j of shape
(n_j, n_{j-1}), n_0 = d, n_N = k; its end-to-end matrix is
W_e = W_N ... W_1.  On data X (n, d), Y (n, k) the loss of power p is

.. math::

    L(W_e) = \\frac{1}{n p} \\sum_{i=1}^{n} |W_e x_i - y_i|_p^p ,

so ``squared`` (p = 2) is (1/2) mean_i |W_e x_i - y_i|^2 and ``lp`` with
p = 4 is the l_4 regression loss of Arora, Cohen & Hazan (2018) (their
(1/n) sum (w.x - y)^4 scaled by 1/4, which only rescales the learning rate).
The gradients (layer j and end to end) are in
:mod:`meanfield.kernels.deep_linear`; this module is their NumPy-level front.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kernels import deep_linear as K

LOSSES = ("squared", "lp")


def loss_power(kind: str, p: float = 2.0) -> float:
    """The power of the loss: 2 for ``squared``, ``p`` (real, >= 2) for ``lp``."""
    if kind == "squared":
        return 2.0
    if kind != "lp":
        raise InputError(f"loss.kind = {kind!r}: expected one of {LOSSES}")
    if not (isinstance(p, (int, float)) and np.isfinite(p) and p >= 2):
        raise InputError(f"loss.p = {p!r}: expected a real number >= 2")
    return float(p)


class Network:
    """Layers W_1 ... W_N stored back to back in one flat vector ``theta``.

    Parameters
    ----------
    dims : sequence of int
        (d, n_1, ..., n_{N-1}, k); depth N = len(dims) - 1 >= 1.
    theta : ndarray, optional
        The flat parameters (copied); zeros if omitted.
    """

    def __init__(self, dims, theta=None):
        dims = [int(n) for n in dims]
        if len(dims) < 2 or min(dims) < 1:
            raise InputError(f"deep linear widths {dims}: need d, k and every width >= 1")
        self.dims = np.asarray(dims, dtype=np.int64)
        size = int(np.sum(self.dims[1:] * self.dims[:-1]))
        if theta is None:
            theta = np.zeros(size)
        self.theta = np.ascontiguousarray(theta, dtype=np.float64).copy()
        if self.theta.shape != (size,):
            raise InputError(f"theta has shape {self.theta.shape}, expected ({size},)")

    @classmethod
    def from_layers(cls, layers):
        """The network with layers ``[W_1, ..., W_N]`` (copied)."""
        dims = [layers[0].shape[1]] + [w.shape[0] for w in layers]
        for j in range(1, len(layers)):
            if layers[j].shape[1] != layers[j - 1].shape[0]:
                raise InputError(f"layer {j + 1} has shape {layers[j].shape}, "
                                 f"expected (*, {layers[j - 1].shape[0]})")
        return cls(dims, np.concatenate([np.ravel(w) for w in layers]))

    @property
    def depth(self) -> int:
        return len(self.dims) - 1

    @property
    def layers(self) -> list:
        """Views [W_1, ..., W_N] into ``theta`` (writing them changes the network)."""
        return [K.layer(self.theta, self.dims, j) for j in range(self.depth)]

    def end_to_end(self) -> np.ndarray:
        """W_e = W_N ... W_1, shape (k, d)."""
        return K.end_to_end(self.theta, self.dims)

    def copy(self) -> "Network":
        return Network(self.dims, self.theta)


def loss_and_gradient(w, X, Y, p):
    """(L(W_e), grad L(W_e)) for the end-to-end matrix ``w`` (k, d) and loss power ``p``."""
    G = np.empty_like(w)
    return K.loss_and_gradient(np.ascontiguousarray(w, dtype=np.float64), X, Y, float(p), G), G


def loss(w, X, Y, p) -> float:
    """L(W_e) of the module docstring."""
    return loss_and_gradient(w, X, Y, p)[0]


def layer_gradients(net: Network, X, Y, p) -> list:
    """[grad_{W_1} L, ..., grad_{W_N} L] at ``net``."""
    _, G = loss_and_gradient(net.end_to_end(), X, Y, p)
    grad = np.empty_like(net.theta)
    K.layer_gradients(net.theta, net.dims, G, grad)
    return [K.layer(grad, net.dims, j) for j in range(net.depth)]


def preconditioned_gradient(w, G, depth: int) -> np.ndarray:
    """P(W_e) vec(G) in matrix form: sum_j (W W^T)^((j-1)/N) G (W^T W)^((N-j)/N).

    With row-major vec this is the action of
    P(W_e) = sum_j (W_e W_e^T)^((j-1)/N) (x) (W_e^T W_e)^((N-j)/N).
    """
    return K.preconditioned(np.ascontiguousarray(w, dtype=np.float64),
                            np.ascontiguousarray(G, dtype=np.float64), int(depth))
