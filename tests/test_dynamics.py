"""SGD and Langevin dynamics: sampling, unbiasedness, stationary law."""

import numpy as np
import pytest

import reference as ref
from meanfield import Config, Dataset, algorithms, simulate
from meanfield.algorithms.sgd import draw_batches
from meanfield.data import make_dataset
from meanfield.state import seed_streams

D3 = {"model": {"m": 4, "activation": "tanh"}, "data": {"d": 3, "teacher_m": 2}}


def advanced(cfg, data, P, steps, seed=0):
    """``steps`` steps of ``cfg``'s algorithm from particles P; the final state."""
    algorithm = algorithms.get(cfg.train.algorithm)
    state = algorithm.init(cfg, data.validated(cfg), seed_streams(seed))
    state.particles[:] = P
    return algorithm.advance(state, steps)


@pytest.mark.parametrize("sphere", [False, True])
def test_fresh_sgd_inputs_have_the_input_law_and_teacher_labels(sphere):
    cfg = Config.from_dict({**D3, "data": {**D3["data"], "d": 4,
                                           "input": "sphere" if sphere else "gaussian"},
                            "train": {"algorithm": "sgd", "batch_size": 1000}})
    data = make_dataset(cfg, seed_streams(0).data)
    state = algorithms.get("sgd").init(cfg, data, seed_streams(1))
    batches = draw_batches(state, 200)
    X = batches.X.reshape(-1, 4)
    if sphere:
        assert np.allclose(np.linalg.norm(X, axis=1), 1.0)
        assert np.mean(X ** 2, axis=0) == pytest.approx(np.full(4, 0.25), abs=3e-3)
    else:
        assert np.mean(X, axis=0) == pytest.approx(np.zeros(4), abs=0.01)
        assert np.cov(X.T) == pytest.approx(np.eye(4), abs=0.01)
    y_ref = ref.teacher_forward(data.teacher, X, "relu")
    assert np.max(np.abs(batches.y.ravel() - y_ref)) < 1e-12


def test_fresh_sgd_velocity_is_unbiased():
    """Mean SGD velocity over independent batches = teacher population velocity (Monte-Carlo)."""
    cfg = Config.from_dict({**D3, "train": {"algorithm": "sgd", "batch_size": 64, "lr": 1.0,
                                            "steps": 1}, "record": {"every": 2}})
    data = make_dataset(cfg, seed_streams(0).data)
    rng = np.random.default_rng(0)
    P = rng.standard_normal((4, 4))
    vs = np.array([advanced(cfg, data, P, 1, seed).particles - P for seed in range(400)])
    mean, se = vs.mean(axis=0), vs.std(axis=0, ddof=1) / np.sqrt(len(vs))
    Xp = rng.standard_normal((400000, 3))
    yp = ref.teacher_forward(data.teacher, Xp, "relu")
    V = ref.velocity(P, Xp, yp, "tanh", "squared", 1.0, False, 0.0)
    assert np.all(np.abs(mean - V) < 4 * se + 2e-3)
    assert np.max(np.abs(V)) > 20 * np.max(se)  # the test has resolution


def _rows_data(rng, identical):
    X = (np.repeat(rng.standard_normal((1, 3)), 30, axis=0) if identical
         else rng.standard_normal((30, 3)))
    y = np.full(30, 0.7) if identical else rng.standard_normal(30)
    return Dataset(X, y, X, y)


@pytest.mark.parametrize("identical", [True, False])
def test_minibatch_sgd_equals_gd_exactly_when_every_row_is_the_same(identical):
    rng = np.random.default_rng(1)
    P = rng.standard_normal((5, 4))
    data = _rows_data(rng, identical)
    base = {"model": {"m": 5, "activation": "sigmoid"}, "data": {"d": 3},
            "scaling": {"alpha": 2.0}, "train": {"lr": 0.1, "weight_decay": 0.1, "steps": 40,
                                                 "batch_size": 6}}
    gd = advanced(Config.from_dict(base), data, P, 40).particles
    sgd_cfg = Config.from_dict({**base, "train": {**base["train"], "algorithm": "sgd"}})
    sgd = advanced(sgd_cfg, data, P, 40).particles
    if identical:
        assert np.max(np.abs(sgd - gd)) < 1e-12
    else:
        assert np.max(np.abs(sgd - gd)) > 1e-3


def test_langevin_path_tends_to_the_gd_path_as_the_temperature_vanishes():
    """|P_T - P_GD| = O(sqrt(T)) with the same noise draws: the Langevin update is
    P + lr v + sqrt(2 lr T) xi, and at T = 0 it is GD bit for bit."""
    base = {"model": {"m": 8}, "data": {"d": 3, "n_train": 20},
            "train": {"steps": 50, "lr": 0.1}}
    cfg = Config.from_dict(base)
    data = make_dataset(cfg, seed_streams(0).data)
    P = seed_streams(0).init.standard_normal((8, 4))
    gd = advanced(cfg, data, P, 50).particles
    P_ref = ref.gd(P, data.x_train, data.y_train, "relu", "squared", 1.0, False, 0.0, 0.1, 50)
    assert np.max(np.abs(gd - P_ref)) < 1e-12
    gaps = []
    for temperature in (1e-8, 1e-10, 0.0):
        hot = cfg.with_overrides([f"train.temperature={temperature!r}"])
        gaps.append(np.max(np.abs(advanced(hot, data, P, 50).particles - gd)))
    assert gaps[0] > 0.0 and gaps[0] / gaps[1] == pytest.approx(10.0, rel=0.05)
    assert gaps[2] == 0.0


def test_langevin_with_weight_decay_reaches_the_gaussian_spread():
    """Loss switched off (zero inputs, relu, no bias): Ornstein-Uhlenbeck with variance T/lam."""
    lam, temp, lr = 0.5, 0.02, 0.01
    d, m = 2, 2000
    cfg = Config.from_dict({"model": {"m": m}, "data": {"d": d},
                            "train": {"steps": 3000, "lr": lr, "weight_decay": lam,
                                      "temperature": temp},
                            "record": {"every": 1000, "snapshot_every": 1000}})
    zeros = Dataset(np.zeros((4, d)), np.ones(4), np.zeros((4, d)), np.ones(4))
    with simulate(cfg, data=zeros) as run:
        P = run.particles(-1)
    # Euler-Maruyama stationary variance: 2 T / (lam (2 - lr lam)); t = 30 >> 1 / lam
    var = 2 * temp / (lam * (2 - lr * lam))
    n = P.size
    assert np.var(P) == pytest.approx(var, rel=4 * np.sqrt(2 / n))
    assert np.mean(P) == pytest.approx(0.0, abs=4 * np.sqrt(var / n))
