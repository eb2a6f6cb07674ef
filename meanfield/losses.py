r"""Losses of the risk R(f) = mean_j loss(f(x_j), y_j), by name.

* ``squared``: (f - y)^2 / 2, derivative f - y;
* ``logistic``: log(1 + e^{-y f}) for labels y in {-1, +1}, derivative -y sigmoid(-y f).
"""

from .kernels import elementwise as _k

IDS = _k.LOSS_IDS
NAMES = tuple(IDS)
