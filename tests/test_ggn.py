"""Gram-Gauss-Newton: Jacobian, steps against NumPy, the GD limit, quadratic convergence."""

import copy
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from meanfield import Config, simulate
from meanfield.algorithms import ggn as ggn_algorithm
from meanfield.data import make_dataset
from meanfield.errors import InputError
from meanfield.kernels.ggn import features, gram
from meanfield.kernels.structs import make_model
from meanfield.state import seed_streams
from test_experiments import quick  # noqa: F401  (the fixture that runs an experiment)
from test_resume import contents, interrupt_at

BASE = {
    "model": {"m": 40, "activation": "tanh", "bias": True},
    "data": {"d": 3, "n_train": 12, "n_test": 10, "input": "sphere"},
    "scaling": {"regime": "ntk"},
    "train": {"algorithm": "ggn", "lr": 0.5, "steps": 6, "batch_size": 100, "damping": 1e-3},
    "record": {"every": 1, "snapshot_every": 1},
    "run": {"seed": 5},
}


def _config(**sections):
    cfg = copy.deepcopy(BASE)
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return Config.from_dict(cfg)


def _state(cfg):
    streams = seed_streams(cfg.run.seed)
    data = make_dataset(cfg, streams.data).validated(cfg)
    return ggn_algorithm.init(cfg, data, streams), data


# ----------------------------------------------------------------------------- Jacobian
@pytest.mark.parametrize("activation", ("relu", "tanh", "erf", "softplus", "sigmoid", "linear"))
@pytest.mark.parametrize("bias", (True, False))
def test_outputs_jacobian_factors_and_gram_match_numpy(activation, bias):
    """J = (alpha/m) [U x, U, S] per particle and J J^T from the factors, against the
    explicit NumPy Jacobian."""
    rng = np.random.default_rng(1)
    m, n, d, alpha = 17, 9, 4, 2.5
    P = rng.standard_normal((m, d + (2 if bias else 1)))
    X = rng.standard_normal((n, d))
    S, U, f, G = np.empty((n, m)), np.empty((n, m)), np.empty(n), np.empty((n, n))
    features(P, make_model(activation, "squared", alpha, 0.0, False, P), X, S, U, f)
    np.testing.assert_allclose(f, ref.forward(P, X, activation, alpha, bias), rtol=1e-12,
                               atol=1e-14)
    J = ref.ggn_jacobian(P, X, activation, alpha, bias).reshape(n, m, -1)
    blocks = [U[:, :, None] * X[:, None, :]] + ([U[:, :, None]] if bias else []) + [S[:, :, None]]
    np.testing.assert_allclose(alpha / m * np.concatenate(blocks, axis=2), J, rtol=1e-12,
                               atol=1e-14)
    gram(X, S, U, alpha / m, float(bias), G)
    J = J.reshape(n, -1)
    np.testing.assert_allclose(G, J @ J.T, rtol=1e-12, atol=1e-14 * np.abs(G).max())


def test_reference_jacobian_against_finite_differences():
    rng = np.random.default_rng(2)
    P, X = rng.standard_normal((6, 5)), rng.standard_normal((4, 3))
    J = ref.ggn_jacobian(P, X, "tanh", 1.7, True)
    h = 1e-6
    fd = np.empty_like(J)
    for q in range(P.size):
        E = np.zeros(P.size)
        E[q] = h
        E = E.reshape(P.shape)
        fd[:, q] = (ref.forward(P + E, X, "tanh", 1.7, True)
                    - ref.forward(P - E, X, "tanh", 1.7, True)) / (2 * h)
    np.testing.assert_allclose(J, fd, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------- steps vs NumPy
@pytest.mark.parametrize("activation,bias", (("tanh", True), ("relu", False)))
def test_full_batch_run_matches_the_numpy_ggn(activation, bias):
    cfg = _config(model={"activation": activation, "bias": bias})
    with simulate(cfg) as run:
        P0, P = run.particles(0), run.particles(-1)
    state, data = _state(cfg)
    np.testing.assert_array_equal(state.particles, P0)
    expected = ref.ggn(P0, data.x_train, data.y_train, activation, cfg.alpha, bias,
                       cfg.train.lr, cfg.train.damping, [np.arange(12)] * cfg.train.steps)
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-12 * np.abs(P0).max())


def test_minibatch_steps_match_the_numpy_ggn_on_the_drawn_batches():
    cfg = _config(train={"batch_size": 5, "steps": 7})
    state, data = _state(cfg)
    P0 = state.particles.copy()
    batches = ggn_algorithm.batch_indices(copy.deepcopy(state.rng["batches"]), 12, 5, 7)
    assert all(len(set(b)) == 5 for b in batches)           # without replacement
    ggn_algorithm.advance(state, 7)
    expected = ref.ggn(P0, data.x_train, data.y_train, "tanh", cfg.alpha, True, cfg.train.lr,
                       cfg.train.damping, batches)
    np.testing.assert_allclose(state.particles, expected, rtol=1e-12,
                               atol=1e-12 * np.abs(P0).max())


def _gap_to_matched_gd(lam):
    """Relative gap between one GGN step at damping ``lam`` and GD's with the matched lr."""
    cfg = _config(train={"damping": lam, "steps": 1})
    lr_gd = cfg.train.lr * cfg.data.n_train * cfg.alpha ** 2 / (cfg.model.m * lam)
    gd = cfg.with_overrides({"train.algorithm": "gd", "train.damping": 0.0, "train.lr": lr_gd})
    with simulate(cfg) as a, simulate(gd) as b:
        P0 = a.particles(0)
        np.testing.assert_array_equal(P0, b.particles(0))
        step_ggn, step_gd = a.particles(-1) - P0, b.particles(-1) - P0
    return np.abs(step_ggn - step_gd).max() / np.abs(step_gd).max()


def test_large_damping_is_gd_with_the_matching_step():
    """-lr J^T (J J^T + lam I)^{-1} r = -(lr / lam) J^T r + O(lam^-2) = lr_GD v + O(lam^-2),
    v = -m grad J = -(m / (n alpha^2)) J^T r, so lr_GD = lr n alpha^2 / (m lam)."""
    far, near = _gap_to_matched_gd(1e3), _gap_to_matched_gd(1e5)
    assert near < 1e-4
    assert 50 < far / near < 200            # the gap falls as 1 / lam


def test_quadratic_convergence_when_over_parameterised():
    cfg = _config(model={"m": 200, "activation": "softplus"},
                  train={"lr": 1.0, "damping": 0.0, "steps": 8})
    with simulate(cfg) as run:
        loss = run.observable("train_loss").value
    assert loss[0] > 1e-3
    k = np.flatnonzero(loss > 1e-26)           # above round-off (about 1e-32)
    assert len(k) >= 5, loss
    now, after = loss[k[:-1]], loss[k[1:]]
    assert np.all(after < 100.0 * now ** 2), loss       # loss_{k+1} <= C loss_k^2
    assert np.log(after[-1]) / np.log(now[-1]) > 1.8    # log-log slope near 2
    gd = cfg.with_overrides({"train.algorithm": "gd", "train.lr": 1.0, "train.steps": 8})
    with simulate(gd) as run:   # GD converges linearly: no such drop
        assert run.observable("train_loss").value[-1] > 1e-6 * loss[0]


# ------------------------------------------------------------------- engine services
def test_minibatch_run_resumed_after_an_interrupt_is_bit_identical(tmp_path):
    cfg = _config(train={"batch_size": 5, "steps": 60},
                  record={"every": 3, "snapshot_every": 20, "checkpoint_every": 10})
    simulate(cfg, out=tmp_path / "full.h5").close()
    interrupt_at(cfg, tmp_path / "part.h5", 30)
    simulate(cfg, out=tmp_path / "part.h5", resume=True).close()
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")


def test_gram_observables_are_recorded():
    with simulate(_config(model={"activation": "relu"})) as run:
        names = run.observable_names
        assert {"gram_lambda_min", "pattern_flips", "max_relative_move"} <= set(names)
        assert run.observable("max_relative_move").value[-1] > 0


@pytest.mark.parametrize("key,value", (("loss.name", "logistic"),
                                       ("train.weight_decay", 0.1),
                                       ("train.temperature", 0.01),
                                       ("train.model", "tangent")))
def test_what_ggn_does_not_define_is_refused(key, value):
    with pytest.raises(InputError, match=key.split(".")[1]):
        _config().with_overrides({key: value})


def test_a_singular_gram_matrix_is_a_clear_error():
    """More batch points than parameters at damping 0: J J^T is singular."""
    cfg = _config(model={"m": 2, "bias": False}, data={"n_train": 12},
                  train={"damping": 0.0})
    with pytest.raises(InputError, match="train.damping"):
        simulate(cfg)


def test_cli_refuses_ggn_with_the_logistic_loss(tmp_path):
    (tmp_path / "c.toml").write_text(_config().to_toml())
    out = subprocess.run([sys.executable, "-m", "meanfield.cli", "run", str(tmp_path / "c.toml"),
                          "--set", "loss.name=logistic", "-o", str(tmp_path / "r.h5")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "ggn" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r.h5").exists()


# ------------------------------------------------------------ experiments, --quick size
@pytest.mark.slow
def test_linear_rate_experiment(quick):
    _, columns, rows = quick("linear_rate")
    assert columns[:3] == ["kind", "m", "step"]
    pred = [float(r["train_loss"]) for r in rows if r["kind"] == "h_inf"]
    bound = [float(r["train_loss"]) for r in rows if r["kind"] == "bound"]
    assert np.all(np.array(pred) <= np.array(bound) * (1 + 1e-12)) and pred[-1] < pred[0]
    end = {int(r["m"]): r for r in rows if r["kind"] == "end"}
    assert float(end[400]["max_relative_move"]) < float(end[100]["max_relative_move"])
    assert float(end[400]["pattern_flips"]) < float(end[100]["pattern_flips"])
    gd = [float(r["train_loss"]) for r in rows if r["kind"] == "gd" and r["m"] == "400"]
    assert gd[-1] < 0.5 * gd[0]


@pytest.mark.slow
def test_gram_gauss_newton_experiment(quick):
    _, columns, rows = quick("gram_gauss_newton")
    assert columns == ["method", "step", "seconds", "train_loss", "slope"]

    def method(name):
        return [r for r in rows if r["method"] == name]
    full, gd = method("GGN full batch"), method("GD")
    assert float(full[-1]["train_loss"]) < 1e-25 < float(gd[-1]["train_loss"])
    assert float(full[0]["slope"]) > 1.6 and 0.5 < float(gd[0]["slope"]) < 1.2
    assert all(float(r["seconds"]) >= 0 for r in rows)


@pytest.mark.slow
def test_random_labels_experiment(quick):
    _, columns, rows = quick("random_labels")
    assert [float(r["p"]) for r in rows] == [0.0, 1.0]
    clean, random = rows
    assert float(clean["complexity"]) < float(random["complexity"])
    assert int(clean["steps_to_target"]) < int(random["steps_to_target"])
    assert float(clean["final_test_loss"]) < float(random["final_test_loss"])
