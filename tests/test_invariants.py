"""The invariants of the dynamics (DESIGN.md section 1)."""

import numpy as np
import pytest
from conftest import make_problem

from meanfield import Config
from meanfield.activations import IDS as ACT
from meanfield.kernels import forward
from meanfield.scaling import init_particles
from test_kernels import run_gd


def balance(P, d):
    """c_i^2 - |a_i|^2 - b_i^2 for every particle."""
    return P[:, -1] ** 2 - np.sum(P[:, :-1] ** 2, axis=1)


@pytest.mark.parametrize("bias", [False, True])
def test_relu_balance_drift_is_first_order_in_lr(bias):
    n, m, d = 40, 12, 4
    P, X, y = make_problem(n, m, d, bias, "squared", seed=5)
    t_end = 2.0
    drifts = []
    for lr in (0.02, 0.01, 0.005):
        P_t, _ = run_gd(P, X, y, "relu", "squared", 1.0, 0.0, lr, int(round(t_end / lr)))
        drifts.append(np.max(np.abs(balance(P_t, d) - balance(P, d))))
        assert np.max(np.abs(P_t - P)) > 0.05  # the particles did move
    assert drifts[0] / drifts[1] == pytest.approx(2.0, rel=0.15)
    assert drifts[1] / drifts[2] == pytest.approx(2.0, rel=0.15)


def test_balance_is_not_conserved_for_tanh():
    """The conservation law is specific to homogeneous relu: the check discriminates."""
    n, m, d = 40, 12, 4
    P, X, y = make_problem(n, m, d, False, "squared", seed=5)
    drifts = []
    for lr in (0.02, 0.01):
        P_t, _ = run_gd(P, X, y, "tanh", "squared", 1.0, 0.0, lr, int(round(2.0 / lr)))
        drifts.append(np.max(np.abs(balance(P_t, d) - balance(P, d))))
    assert drifts[0] / drifts[1] < 1.2


@pytest.mark.parametrize("k", [2, 3])
def test_duplicating_particles_leaves_f_unchanged(k):
    n, m, d = 30, 7, 3
    P, X, y = make_problem(n, m, d, True, "logistic", seed=6)
    P_t, _ = run_gd(P, X, y, "sigmoid", "logistic", 2.0, 0.1, 0.1, 60)
    Pk_t, _ = run_gd(np.repeat(P, k, axis=0), X, y, "sigmoid", "logistic", 2.0, 0.1, 0.1, 60)
    f = forward(P_t, X, ACT["sigmoid"], 2.0)
    fk = forward(Pk_t, X, ACT["sigmoid"], 2.0)
    assert np.max(np.abs(f - fk)) <= 1e-12 * np.max(np.abs(f))
    assert np.max(np.abs(Pk_t[::k] - P_t)) < 1e-12
    assert np.max(np.abs(f - forward(P, X, ACT["sigmoid"], 2.0))) > 1e-2  # f did move


@pytest.mark.parametrize("n,m,bias", [(50, 16, False), (3000, 400, True)])
@pytest.mark.parametrize("act", ["relu", "tanh", "softplus", "sigmoid"])
def test_symmetric_init_gives_exactly_zero_output(n, m, bias, act):
    cfg = Config.from_dict({"model": {"m": m, "bias": bias, "activation": act},
                            "init": {"symmetric": True, "tau": 3.0}, "data": {"d": 10}})
    P = init_particles(cfg, np.random.default_rng(0))
    assert np.array_equal(P[0::2, :-1], P[1::2, :-1])
    assert np.array_equal(P[0::2, -1], -P[1::2, -1])
    X = np.random.default_rng(1).standard_normal((n, 10))
    for alpha in (1.0, 1e6):
        assert np.all(forward(P, X, ACT[act], alpha) == 0.0)


def test_init_distributions():
    cfg = Config.from_dict({"model": {"m": 20000, "bias": True}, "data": {"d": 5},
                            "init": {"tau": 2.0, "c": "sign", "a": "gaussian"}})
    P = init_particles(cfg, np.random.default_rng(0))
    assert P.shape == (20000, 7) and P.flags.c_contiguous
    # a ~ tau N(0, I/d): E|a|^2 = tau^2; b ~ tau N(0,1); c = +-tau
    assert np.mean(np.sum(P[:, :5] ** 2, axis=1)) == pytest.approx(4.0, rel=0.02)
    assert np.var(P[:, 5]) == pytest.approx(4.0, rel=0.05)
    assert set(np.unique(P[:, 6])) == {-2.0, 2.0}
    cfg = cfg.with_overrides(["init.a=sphere", "init.b=zero", "init.c=zero"])
    P = init_particles(cfg, np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(P[:, :5], axis=1), 2.0)
    assert np.all(P[:, 5:] == 0.0)
