"""What is measured on a deep linear network.

* ``balancedness`` delta = max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F (0 at depth 1);
* ``singular_values`` of W_e;
* ``deficiency_margin``: sigma_min(W_e), and the estimate
  c = sigma_min(Phi) - |W_e - Phi|_F of the margin with respect to the target
  Phi (the least-squares solution): for a whitened squared loss
  L(W) = |W - Phi|_F^2 / 2 + const, c > 0 is a deficiency margin of W_e in the
  sense of Arora, Cohen, Golowich & Hu (2019) (every W with sigma_min(W) <= c has a
  larger loss), since sigma_min(W) >= sigma_min(Phi) - |W - Phi|_F.
* ``end_to_end_gap`` = |W_e(GD) - W_e(end-to-end dynamics)|_F.
"""

from __future__ import annotations

import numpy as np

from .model import Network


def balancedness(net: Network) -> float:
    """delta = max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F over j = 1 .. N-1 (0 if N = 1)."""
    w = net.layers
    return max((float(np.linalg.norm(w[j + 1].T @ w[j + 1] - w[j] @ w[j].T))
                for j in range(len(w) - 1)), default=0.0)


def singular_values(w) -> np.ndarray:
    """Singular values of W_e, largest first."""
    return np.linalg.svd(np.asarray(w), compute_uv=False)


def least_squares_target(X, Y) -> np.ndarray:
    """Phi (k, d) minimising the squared loss mean_i |Phi x_i - y_i|^2."""
    return np.linalg.lstsq(X, np.reshape(Y, (len(X), -1)), rcond=None)[0].T


def deficiency_margin(w, target) -> tuple:
    """(sigma_min(W_e), sigma_min(Phi) - |W_e - Phi|_F) for the target Phi."""
    return (float(singular_values(w)[-1]),
            float(singular_values(target)[-1] - np.linalg.norm(np.asarray(w) - target)))


def end_to_end_gap(w_gd, w_flow) -> float:
    """|W_e(GD) - W_e(end-to-end dynamics)|_F."""
    return float(np.linalg.norm(np.asarray(w_gd) - np.asarray(w_flow)))
