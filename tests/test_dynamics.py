"""SGD and Langevin dynamics: sampling, unbiasedness, stationary law."""

import numpy as np
import pytest

import reference as ref
from meanfield import Config, Dataset, simulate
from meanfield.activations import IDS as ACT
from meanfield.kernels import GD, SGD, N_OBSERVABLES, train_chunk
from meanfield.kernels.sampling import sample_inputs
from meanfield.losses import IDS as LOSS


def chunk(P, X, y, T, algorithm, batch, act, loss, alpha, lam, lr, temperature, seed,
          steps, sphere=False, fresh=False, noise=0.0):
    P = P.copy()
    obs = np.empty((steps, N_OBSERVABLES))
    done = train_chunk(P, P.copy(), False, X, y, X, y, T, ACT["relu"], sphere, noise, fresh, False,
                       algorithm,
                       batch, ACT[act], LOSS[loss], alpha, lam, lr, temperature, seed, 0,
                       steps, 1, obs)
    assert done == steps
    return P


@pytest.mark.parametrize("sphere", [False, True])
def test_input_sampler_moments(sphere):
    import numba

    @numba.njit
    def draw(n, d, sphere):
        np.random.seed(3)
        X = np.empty((n, d))
        sample_inputs(X, sphere)
        return X

    X = draw(200000, 4, sphere)
    norms = np.linalg.norm(X, axis=1)
    if sphere:
        assert np.allclose(norms, 1.0)
        assert np.mean(X ** 2, axis=0) == pytest.approx(np.full(4, 0.25), abs=3e-3)
    else:
        assert np.mean(X, axis=0) == pytest.approx(np.zeros(4), abs=0.01)
        assert np.cov(X.T) == pytest.approx(np.eye(4), abs=0.01)


def test_fresh_sgd_velocity_is_unbiased():
    """Mean SGD velocity over independent batches = teacher population velocity (Monte-Carlo)."""
    rng = np.random.default_rng(0)
    d, m, m0 = 3, 4, 2
    P = rng.standard_normal((m, d + 1))
    T = np.hstack([rng.standard_normal((m0, d)), np.array([[1.0], [-1.0]])])
    T[:, :d] /= np.linalg.norm(T[:, :d], axis=1, keepdims=True)
    X0 = np.zeros((1, d))
    vs = np.array([chunk(P, X0, np.zeros(1), T, SGD, 64, "tanh", "squared", 1.0, 0.0, 1.0, 0.0,
                         seed, 1, fresh=True) - P for seed in range(400)])
    mean, se = vs.mean(axis=0), vs.std(axis=0, ddof=1) / np.sqrt(len(vs))
    Xp = rng.standard_normal((400000, d))
    yp = ref.teacher_forward(T, Xp, "relu")
    V = ref.velocity(P, Xp, yp, "tanh", "squared", 1.0, False, 0.0)
    assert np.all(np.abs(mean - V) < 4 * se + 2e-3)
    assert np.max(np.abs(V)) > 20 * np.max(se)  # the test has resolution


def test_minibatch_sgd_on_identical_rows_equals_gd():
    rng = np.random.default_rng(1)
    P = rng.standard_normal((5, 4))
    X = np.repeat(rng.standard_normal((1, 3)), 30, axis=0)
    y = np.full(30, 0.7)
    T = np.zeros((1, 4))
    sgd = chunk(P, X, y, T, SGD, 6, "sigmoid", "squared", 2.0, 0.1, 0.1, 0.0, 5, 40)
    gd = chunk(P, X, y, T, GD, 6, "sigmoid", "squared", 2.0, 0.1, 0.1, 0.0, 5, 40)
    assert np.max(np.abs(sgd - gd)) < 1e-12


def test_minibatch_sgd_differs_from_gd_on_distinct_rows():
    rng = np.random.default_rng(1)
    P = rng.standard_normal((5, 4))
    X, y, T = rng.standard_normal((30, 3)), rng.standard_normal(30), np.zeros((1, 4))
    sgd = chunk(P, X, y, T, SGD, 6, "sigmoid", "squared", 2.0, 0.0, 0.1, 0.0, 5, 40)
    gd = chunk(P, X, y, T, GD, 6, "sigmoid", "squared", 2.0, 0.0, 0.1, 0.0, 5, 40)
    assert np.max(np.abs(sgd - gd)) > 1e-3


def test_langevin_at_zero_temperature_is_gd():
    cfg = Config.from_dict({"model": {"m": 8}, "data": {"d": 3, "n_train": 20},
                            "train": {"steps": 50, "lr": 0.1}})
    gd = simulate(cfg).particles(-1)
    lv = simulate(cfg.with_overrides(["train.temperature=0.0"])).particles(-1)
    assert np.array_equal(gd, lv)
    hot = simulate(cfg.with_overrides(["train.temperature=0.01"])).particles(-1)
    assert not np.array_equal(gd, hot)


def test_langevin_with_weight_decay_reaches_the_gaussian_spread():
    """Loss switched off (zero inputs, relu, no bias): Ornstein-Uhlenbeck with variance T/lam."""
    lam, temp, lr = 0.5, 0.02, 0.01
    d, m = 2, 2000
    cfg = Config.from_dict({"model": {"m": m}, "data": {"d": d},
                            "train": {"steps": 3000, "lr": lr, "weight_decay": lam,
                                      "temperature": temp},
                            "record": {"every": 1000, "snapshot_every": 1000}})
    zeros = Dataset(np.zeros((4, d)), np.ones(4), np.zeros((4, d)), np.ones(4))
    P = simulate(cfg, data=zeros).particles(-1)
    # Euler-Maruyama stationary variance: 2 T / (lam (2 - lr lam)); t = 30 >> 1 / lam
    var = 2 * temp / (lam * (2 - lr * lam))
    n = P.size
    assert np.var(P) == pytest.approx(var, rel=4 * np.sqrt(2 / n))
    assert np.mean(P) == pytest.approx(0.0, abs=4 * np.sqrt(var / n))
