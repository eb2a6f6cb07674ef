"""Training algorithms for deep linear networks, each a whole chunk per compiled call.

* :class:`GD` - gradient descent on every layer, W_j <- W_j - lr grad_{W_j} L;
* :class:`EndToEnd` - Euler steps of the end-to-end dynamics of depth N,
  W_e <- W_e - lr sum_j (W_e W_e^T)^((j-1)/N) grad L(W_e) (W_e^T W_e)^((N-j)/N)
  (what GD on a balanced depth-N network follows as lr -> 0);
* :class:`AdaGrad` and :class:`Adam` - the adaptive baselines on the depth-1
  model W_e = W.

Each keeps its parameters and step count; ``advance(steps)`` runs up to
``steps`` steps in one compiled loop and returns the loss before each step
taken.  A non-finite loss stops the chunk and sets ``diverged``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kernels import deep_linear as K
from .model import Network


class _Trainer:
    """What every algorithm shares: data, loss power, learning rate, step count."""

    def __init__(self, X, Y, p, lr):
        if not (np.isfinite(lr) and lr > 0):
            raise InputError(f"train.lr = {lr!r}: expected a positive number")
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.Y = np.ascontiguousarray(np.reshape(Y, (len(self.X), -1)), dtype=np.float64)
        self.p = float(p)
        self.lr = float(lr)
        self.step = 0
        self.diverged = False

    def advance(self, steps: int) -> np.ndarray:
        """Run up to ``steps`` steps; the losses before each step taken."""
        losses = np.empty(int(steps))
        done = self._chunk(losses) if not self.diverged else 0
        self.step += done
        self.diverged = self.diverged or done < steps
        return losses[:done]


class GD(_Trainer):
    """Gradient descent on the layers of ``net`` (copied; see :attr:`net`)."""

    def __init__(self, net: Network, X, Y, p, lr):
        super().__init__(X, Y, p, lr)
        self.net = net.copy()

    def _chunk(self, losses):
        return K.gd_chunk(self.net.theta, self.net.dims, self.X, self.Y, self.p, self.lr, losses)

    def end_to_end(self):
        return self.net.end_to_end()


class _EndToEndMatrix(_Trainer):
    """Algorithms whose parameter is the end-to-end matrix ``w`` itself (copied)."""

    def __init__(self, w, X, Y, p, lr):
        super().__init__(X, Y, p, lr)
        self.w = np.array(w, dtype=np.float64, order="C")
        if self.w.shape != (self.Y.shape[1], self.X.shape[1]):
            raise InputError(f"end-to-end matrix of shape {self.w.shape}, expected "
                             f"({self.Y.shape[1]}, {self.X.shape[1]})")

    def end_to_end(self):
        return self.w.copy()


class EndToEnd(_EndToEndMatrix):
    """Euler steps of the depth-``depth`` end-to-end (preconditioned) dynamics from ``w``."""

    def __init__(self, w, depth: int, X, Y, p, lr):
        super().__init__(w, X, Y, p, lr)
        self.depth = int(depth)

    def _chunk(self, losses):
        return K.end_to_end_chunk(self.w, self.depth, self.X, self.Y, self.p, self.lr, losses)


class AdaGrad(_EndToEndMatrix):
    """AdaGrad on the depth-1 model: acc += G^2, W <- W - lr G / (sqrt(acc) + eps)."""

    def __init__(self, w, X, Y, p, lr, eps=1e-8):
        super().__init__(w, X, Y, p, lr)
        self.eps = float(eps)
        self.acc = np.zeros_like(self.w)

    def _chunk(self, losses):
        return K.adagrad_chunk(self.w, self.acc, self.X, self.Y, self.p, self.lr, self.eps,
                               losses)


class Adam(_EndToEndMatrix):
    """Adam (Kingma & Ba) with bias correction on the depth-1 model."""

    def __init__(self, w, X, Y, p, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(w, X, Y, p, lr)
        self.hyper = (float(beta1), float(beta2), float(eps))
        self.moments = np.zeros((2,) + self.w.shape)

    def _chunk(self, losses):
        hyper = np.array([self.lr, *self.hyper, float(self.step)])
        return K.adam_chunk(self.w, self.moments, self.X, self.Y, self.p, hyper, losses)
