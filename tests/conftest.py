import numpy as np
import pytest

from meanfield.activations import IDS as ACT
from meanfield.losses import IDS as LOSS


def make_problem(n, m, d, bias, loss, seed=0):
    """Random particles (m, D) and data (X, y) with labels valid for ``loss``."""
    rng = np.random.default_rng(seed)
    D = d + (2 if bias else 1)
    P = rng.standard_normal((m, D))
    P[:, :d] /= np.sqrt(d)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) if loss == "squared" else rng.choice([-1.0, 1.0], n)
    return P, X, y


@pytest.fixture
def ids():
    return ACT, LOSS
