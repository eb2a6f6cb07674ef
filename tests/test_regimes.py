"""Lazy and mean-field regimes: tangent model, lazy limit, exact population flow."""

import h5py
import numpy as np
import pytest
from conftest import make_problem

import reference as ref
from meanfield import Config, simulate
from meanfield.activations import IDS as ACT
from meanfield.kernels import make_model, model_risk_and_velocity, tangent_forward, workspace


@pytest.mark.parametrize("act,loss,bias", [("tanh", "squared", True), ("relu", "logistic", False),
                                           ("softplus", "squared", False)])
@pytest.mark.parametrize("size", [(9, 5, 3), (300, 40, 8)])
def test_tangent_model_matches_reference_and_finite_differences(act, loss, bias, size):
    n, m, d = size
    P0, X, y = make_problem(n, m, d, bias, loss, seed=4)
    P = P0 + 0.3 * np.random.default_rng(5).standard_normal(P0.shape)
    for alpha in (1.0, 10.0):
        T = tangent_forward(P, P0, X, ACT[act], alpha)
        T_ref = ref.tangent_forward(P, P0, X, act, alpha, bias)
        assert np.max(np.abs(T - T_ref)) < 1e-12 * np.max(np.abs(T_ref))
        V = np.empty_like(P)
        R = model_risk_and_velocity(P, make_model(act, loss, alpha, 0.1, True, P0), X, y, V,
                                    workspace(n, m, d, True))
        assert R == pytest.approx(np.mean(ref.LOSSES[loss][0](T_ref, y)), rel=1e-12)
        if n > 100:
            continue
        # v = -m grad J_T by central differences
        V_fd = ref.fd_minus_m_grad(
            lambda Q: ref.tangent_objective(Q, P0, X, y, act, loss, alpha, bias, 0.1), P)
        assert np.linalg.norm(V - V_fd) / np.linalg.norm(V_fd) < 1e-6


LAZY = {
    "model": {"m": 20, "activation": "tanh"},
    "init": {"symmetric": True},
    "data": {"d": 4, "n_train": 30, "n_test": 50},
    "train": {"lr": 0.2, "steps": 400},
    "record": {"every": 20, "snapshot_every": 50},
    "run": {"seed": 2},
}


def lazy_pair(alpha):
    """A network run and its tangent-model run at scale alpha (same data, same init)."""
    cfg = Config.from_dict({**LAZY, "scaling": {"regime": "lazy", "kappa": alpha}})
    net = simulate(cfg)
    tan = simulate(cfg.with_overrides(["train.model=tangent"]))
    X, P0 = net.data.x_test, net.particles(0)
    gaps = [np.sqrt(np.mean((ref.forward(net.particles(k), X, "tanh", alpha, False)
                             - ref.tangent_forward(tan.particles(k), P0, X, "tanh", alpha,
                                                   False)) ** 2))
            for k in range(len(net.steps))]
    return net, tan, max(gaps)


def test_lazy_limit():
    alphas = np.array([10.0, 100.0, 1000.0])
    runs = [lazy_pair(a) for a in alphas]
    gaps = np.array([g for _, _, g in runs])
    slope = np.polyfit(np.log(alphas), np.log(gaps), 1)[0]
    # sup_t |f_t - T f_t| -> 0 at least like 1/alpha (from a symmetric init: 1/alpha^2)
    assert slope < -0.9, (gaps, slope)
    # alpha |P_t - P_0| tends to a constant
    scaled = np.array([net.observable("scaled_displacement").value[-1] for net, _, _ in runs])
    assert abs(scaled[2] / scaled[1] - 1) < 0.02
    assert abs(scaled[1] / scaled[0] - 1) < 0.2
    # and the network did learn: the loss fell at least fivefold in the lazy regime
    loss = runs[2][0].observable("train_loss").value
    assert loss[-1] < 0.2 * loss[0]
    # the recorded distance to the tangent model at w0 shrinks too
    tangent_gap = [net.observable("tangent_gap").value[-1] for net, _, _ in runs]
    assert tangent_gap[2] < tangent_gap[1] / 10 < tangent_gap[0] / 100


def test_mean_field_regime_is_not_lazy():
    cfg = Config.from_dict({**LAZY, "scaling": {"regime": "mean_field"},
                            "train": {"lr": 0.5, "steps": 400}})
    run = simulate(cfg)
    assert run.observable("displacement").value[-1] > 0.1
    assert run.observable("ntk_change").value[-1] > 0.05


POP = {
    "model": {"m": 30, "activation": "relu"},
    "data": {"d": 5, "n_train": 50, "n_test": 200, "teacher_m": 2, "noise": 0.1},
    "train": {"algorithm": "population", "lr": 0.2, "steps": 60},
    "record": {"every": 50, "snapshot_every": 100},
    "run": {"seed": 7},
}


@pytest.mark.parametrize("act,inputs", [("relu", "gaussian"), ("relu", "sphere"),
                                        ("erf", "gaussian")])
def test_population_flow_is_gd_on_infinite_data(act, inputs):
    """Exact population flow vs GD on a huge sample: particles agree within Monte-Carlo error."""
    pop_cfg = Config.from_dict({**POP, "model": {"m": 30, "activation": act},
                                "data": {**POP["data"], "teacher_activation": act,
                                         "input": inputs}})
    pop = simulate(pop_cfg)
    assert pop.status == "completed"
    n = 60_000
    gd = simulate(pop_cfg.with_overrides(["train.algorithm=gd", f"data.n_train={n}",
                                          "data.n_test=10"]))
    P_pop, P_gd = pop.particles(-1), gd.particles(-1)
    moved = np.linalg.norm(P_pop - pop.particles(0))
    assert moved > 0.05
    assert np.linalg.norm(P_pop - P_gd) < 0.1 * moved
    # the exact population loss is recorded, and agrees with the large-sample risk
    exact = pop.observable("population_loss").value[-1]
    assert exact == pytest.approx(gd.observable("train_loss").value[-1], rel=0.1)


def test_population_loss_method_is_stored(tmp_path):
    exact = simulate(Config.from_dict({**POP, "train": {"steps": 20}}), out=tmp_path / "e.h5")
    mc_cfg = Config.from_dict({**POP, "model": {"m": 30, "activation": "tanh"},
                               "data": {**POP["data"], "teacher_activation": "tanh",
                                        "population_samples": 4000},
                               "train": {"steps": 20}})
    mc = simulate(mc_cfg, out=tmp_path / "mc.h5")
    for run in (exact, mc):
        run.close()
    with h5py.File(tmp_path / "e.h5") as h:
        assert h["observables/population_loss"].attrs["method"] == "exact"
        assert len(h["observables/population_loss/step"]) == 2  # every 50 steps: 0 and final
    with h5py.File(tmp_path / "mc.h5") as h:
        assert "observables/population_loss" not in h  # no closed form for tanh
        g = h["observables/population_loss_mc"]
        assert g.attrs["method"] == "monte_carlo" and g.attrs["samples"] == 4000
        assert list(g["step"]) == [0, 20]  # snapshot steps


def test_population_algorithm_needs_a_closed_form():
    from meanfield import InputError
    with pytest.raises(InputError, match="population"):
        Config.from_dict({**POP, "model": {"m": 30, "activation": "tanh"}})
    with pytest.raises(InputError, match="population"):
        Config.from_dict({**POP, "model": {"m": 30, "bias": True}})
