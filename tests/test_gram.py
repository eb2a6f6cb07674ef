"""meanfield.gram and the predicted rates: H-inf, spectra, observables, `meanfield gram`."""

import json
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from meanfield import Config, lazy, open_run, simulate
from meanfield.analysis import linear_rate_bound, predicted_residual
from meanfield.errors import InputError
from meanfield.gram import (gram_change, gram_lambda_min, gram_report, gram_spectrum, h_inf,
                            max_relative_move, pattern_flips)
from meanfield.kernels.closed_forms import (angles, arccos_moments, arcsine_moments, erf_entry,
                                            relu_entry)

LAYERS = ("first", "second", "both")


def _inputs(rng, n, d, unit):
    X = rng.standard_normal((n, d))
    if unit:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    else:
        X *= rng.uniform(0.2, 5.0, (n, 1))
    return X


def _relu_ntk(P, X, layers="both"):
    """Empirical relu Gram (1/m) sum_i grad phi(w_i, x) . grad phi(w_i, x') from gradients."""
    d = X.shape[1]
    bias = P.shape[1] == d + 2
    A, b, c = ref.split(P, d, bias)
    Z = X @ A.T + b                                     # (n, m)
    Xt = np.hstack([X, np.ones((len(X), 1))]) if bias else X
    first = ((c * (Z > 0)) @ (c * (Z > 0)).T) * (Xt @ Xt.T)
    second = np.maximum(Z, 0) @ np.maximum(Z, 0).T
    return {"first": first, "second": second, "both": first + second}[layers] / P.shape[0]


# ------------------------------------------------------------------------------ H-inf
def test_angles_are_exact_on_the_diagonal_and_match_arccos_elsewhere():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 5)) * rng.uniform(1e-3, 1e3, (30, 1))
    th = angles(X)
    assert np.all(np.diag(th) == 0.0)
    assert np.all(np.diag(angles(X, 7.0 * X)) <= 1e-7)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    off = ~np.eye(30, dtype=bool)
    np.testing.assert_allclose(th[off], np.arccos(np.clip(U @ U.T, -1, 1))[off], rtol=1e-12)
    np.testing.assert_allclose(angles(X, -X).diagonal(), np.pi, rtol=1e-15)
    # a zero row: the pi/2 convention
    assert angles([[0.0, 0.0]], [[1.0, 0.0]])[0, 0] == pytest.approx(np.pi / 2)


@pytest.mark.parametrize("activation", ("relu", "erf"))
def test_scalar_entries_against_the_array_forms_and_finite_differences(activation):
    """kappa(u, v) = E[s(u.x) s(v.x)], x ~ N(0, I), and grad_u kappa = beta v + gamma u."""
    entry = {"relu": relu_entry, "erf": erf_entry}[activation]
    rng = np.random.default_rng(9)
    for _ in range(20):
        u, v = rng.standard_normal((2, 4)) * rng.uniform(0.1, 3.0, (2, 1))
        kap, beta, gamma = entry(u @ u, v @ v, u @ v, False)
        S11, S22, S12 = u @ u, v @ v, u @ v
        want = {"relu": ref.arccos_kernels, "erf": ref.arcsine_kernels}[activation](
            S11, S22, S12)[0]
        assert kap == pytest.approx(want, rel=1e-12)
        moments = {"relu": arccos_moments, "erf": arcsine_moments}[activation]
        assert moments(u[None], v[None])[0][0, 0] == pytest.approx(kap, rel=1e-12)
        h = 1e-6
        fd = np.array([(entry((u + h * e) @ (u + h * e), v @ v, (u + h * e) @ v, False)[0]
                        - entry((u - h * e) @ (u - h * e), v @ v, (u - h * e) @ v, False)[0])
                       / (2 * h) for e in np.eye(4)])
        np.testing.assert_allclose(beta * v + gamma * u, fd, rtol=1e-6, atol=1e-9)
        # the diagonal flag: the pair (u, u) exactly
        assert entry(u @ u, u @ u, u @ u, True)[0] == pytest.approx(moments(u[None])[0][0, 0],
                                                                 rel=1e-14)


@pytest.mark.parametrize("unit", (True, False))
@pytest.mark.parametrize("bias", (False, True))
@pytest.mark.parametrize("layers", LAYERS)
def test_h_inf_against_the_reference_and_exact_diagonal(unit, bias, layers):
    rng = np.random.default_rng(1)
    X = _inputs(rng, 25, 4, unit)
    H = h_inf(X, bias=bias, layers=layers)
    np.testing.assert_allclose(H, ref.h_inf(X, bias, layers), rtol=1e-11,
                               atol=1e-13 * np.abs(H).max())
    assert np.array_equal(H, H.T)
    # theta(x, x) = 0: first part |x~|^2 / 2, second part |x~|^2 / 2, to 1e-14
    sq = np.sum(X ** 2, axis=1) + bias
    want = {"first": sq / 2, "second": sq / 2, "both": sq}[layers]
    np.testing.assert_allclose(np.diag(H), want, rtol=1e-14, atol=0)


def test_h_inf_on_unit_inputs_is_dus_formula():
    rng = np.random.default_rng(2)
    X = _inputs(rng, 12, 6, unit=True)
    G = X @ X.T
    du = G * (np.pi - np.arccos(np.clip(G, -1, 1))) / (2 * np.pi)
    off = ~np.eye(12, dtype=bool)
    np.testing.assert_allclose(h_inf(X)[off], du[off], rtol=1e-12)
    np.testing.assert_allclose(np.diag(h_inf(X)), 0.5, rtol=1e-15)


@pytest.mark.parametrize("bias", (False, True))
def test_h_inf_against_monte_carlo_over_w(bias):
    rng = np.random.default_rng(3)
    n, d, N = 5, 3, 400_000
    X = _inputs(rng, n, d, unit=False)
    Xt = np.hstack([X, np.ones((n, 1))]) if bias else X
    Z = rng.standard_normal((N, Xt.shape[1])) @ Xt.T      # w . x~_j for N draws of w
    on = (Z >= 0).astype(float)
    G = Xt @ Xt.T
    for layers in LAYERS:
        H = h_inf(X, bias=bias, layers=layers)
        for i in range(n):
            for j in range(i, n):
                first = G[i, j] * on[:, i] * on[:, j]
                second = np.maximum(Z[:, i], 0) * np.maximum(Z[:, j], 0)
                g = {"first": first, "second": second, "both": first + second}[layers]
                se = g.std() / np.sqrt(N)
                assert abs(H[i, j] - g.mean()) < 5 * se + 1e-12, (layers, i, j)


@pytest.mark.parametrize("bias", (False, True))
def test_h_inf_is_the_analytic_ntk_at_dus_initialisation(bias):
    """a ~ N(0, I), b ~ N(0, 1), c = +-1, tau = 1: lazy.analytic_ntk's layers are H-inf's."""
    rng = np.random.default_rng(4)
    X = _inputs(rng, 10, 3, unit=False)
    for layers in LAYERS:
        K = lazy.analytic_ntk(X, None, "relu", bias=bias, tau=1.0, c_init="sign",
                              a_init="standard", b_init="gaussian", layers=layers)
        np.testing.assert_allclose(K, h_inf(X, bias=bias, layers=layers), rtol=1e-14,
                                   atol=1e-15)
    # and the empirical Gram of wide particles drawn that way tends to it
    m = 20_000
    cols = [rng.standard_normal((m, 3))] + ([rng.standard_normal((m, 1))] if bias else [])
    P = np.hstack(cols + [rng.choice([-1.0, 1.0], (m, 1))])
    Hm = lazy.empirical_ntk(P, X, activation="relu")
    H = h_inf(X, bias=bias, layers="both")
    assert np.linalg.norm(Hm - H) < 0.05 * np.linalg.norm(H)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="layers"):
        h_inf(np.eye(2), layers="all")
    with pytest.raises(InputError, match="2-D"):
        h_inf(np.ones(3))
    with pytest.raises(InputError, match="square"):
        gram_spectrum(np.ones((2, 3)), [1.0, 1.0])
    with pytest.raises(InputError, match="y must have shape"):
        gram_spectrum(np.eye(2), [1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="lr"):
        predicted_residual(np.eye(2), [1.0, 1.0], lr=0.0, steps=1)
    with pytest.raises(InputError, match="steps"):
        predicted_residual(np.eye(2), [1.0, 1.0], lr=1.0, steps=[1.5])
    with pytest.raises(InputError, match="steps"):
        linear_rate_bound(0.1, 1.0, 10, -1)
    with pytest.raises(InputError, match="shape"):
        max_relative_move(np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(InputError, match="columns"):
        pattern_flips(np.ones((3, 2)), np.ones((3, 2)), np.ones((4, 5)))


# ------------------------------------------------------------- spectra and predictions
def test_spectrum_and_predicted_residual_against_the_recursion():
    rng = np.random.default_rng(5)
    n = 15
    X = _inputs(rng, n, 4, unit=True)
    H = h_inf(X, layers="both")
    y = rng.standard_normal(n)
    lam, proj = gram_spectrum(H, y)
    assert np.all(np.diff(lam) >= 0)
    assert proj.sum() == pytest.approx(y @ y, rel=1e-12)
    assert lam[0] == pytest.approx(lazy.lambda_min(H), rel=1e-10)
    lr = 0.9 * n / lam[-1]                               # eta lambda_max = 0.9
    steps = np.array([0, 1, 7, 50, 300])
    r, want = y.copy(), {}
    for k in range(301):                                  # r_{k+1} = (I - (lr / n) H) r_k
        want[k] = r @ r
        r = r - lr / n * (H @ r)
    pred = predicted_residual(H, y, lr, steps)
    np.testing.assert_allclose(pred, [want[k] for k in steps], rtol=1e-9)
    assert predicted_residual(H, y, lr, 7) == pytest.approx(want[7], rel=1e-9)
    f0 = rng.standard_normal(n)
    r = f0 - y
    for _ in range(7):
        r = r - lr / n * (H @ r)
    assert predicted_residual(H, y, lr, 7, f0=f0) == pytest.approx(r @ r, rel=1e-9)
    # Du et al.'s bound holds whenever eta lambda_i <= 1.5 for every i
    bound = linear_rate_bound(lam[0], lr, n, steps) * (y @ y)
    assert np.all(pred <= bound * (1 + 1e-12))
    assert linear_rate_bound(lam[0], lr, n, 3) == pytest.approx(
        (1 - lr / n * lam[0] / 2) ** 3, rel=1e-14)


def test_predicted_residual_follows_lazy_gd():
    """Symmetric init, large alpha: GD's residual follows the kernel recursion of K(0)."""
    rng = np.random.default_rng(6)
    n, m, d, alpha, lr = 8, 200, 3, 1e6, 2.0
    half = np.hstack([rng.standard_normal((m // 2, d)) / np.sqrt(d),
                      rng.standard_normal((m // 2, 1))])
    P = np.repeat(half, 2, axis=0)
    P[1::2, -1] *= -1                                     # f(w0) = 0
    X = _inputs(rng, n, d, unit=True)
    y = np.sin(2 * X[:, 0])
    K0 = _relu_ntk(P, X)
    observed = []
    for _ in range(4):
        f = ref.forward(P, X, "relu", alpha, False)
        observed.append(np.sum((f - y) ** 2))
        P = ref.gd(P, X, y, "relu", "squared", alpha, False, 0.0, lr, 10)
    pred = predicted_residual(K0, y, lr, [0, 10, 20, 30])
    assert observed[-1] < 0.8 * observed[0]               # training did move
    np.testing.assert_allclose(observed, pred, rtol=1e-6)


# ------------------------------------------------------------------------ observables
@pytest.mark.parametrize("bias", (False, True))
def test_observables_against_plain_numpy(bias):
    rng = np.random.default_rng(7)
    n, m, d = 12, 60, 3
    P0 = rng.standard_normal((m, d + 1 + bias))
    P = P0 + 0.3 * rng.standard_normal(P0.shape)
    X = _inputs(rng, n, d, unit=False)
    H0, H = _relu_ntk(P0, X), _relu_ntk(P, X)
    assert gram_lambda_min(P, X) == pytest.approx(np.linalg.eigvalsh(H)[0], rel=1e-9)
    assert gram_lambda_min(P, X, layers="first") == pytest.approx(
        np.linalg.eigvalsh(_relu_ntk(P, X, "first"))[0], rel=1e-9)
    want = np.linalg.norm(H - H0, 2) / np.linalg.norm(H0, 2)
    assert gram_change(P, P0, X) == pytest.approx(want, rel=1e-10)
    assert gram_change(P, P0, X, H0=H0) == pytest.approx(want, rel=1e-10)
    assert gram_change(P0, P0, X) == 0.0
    flips = 0
    for i in range(m):
        a, a0 = P[i, :d], P0[i, :d]
        b, b0 = (P[i, d], P0[i, d]) if bias else (0.0, 0.0)
        for x in X:
            flips += (a @ x + b > 0) != (a0 @ x + b0 > 0)
    assert pattern_flips(P, P0, X) == flips / (m * n)
    assert 0 < flips < m * n
    moves = [np.linalg.norm(P[i] - P0[i]) / np.linalg.norm(P0[i]) for i in range(m)]
    assert max_relative_move(P, P0) == pytest.approx(max(moves), rel=1e-14)
    Z = P0.copy()
    Z[3] = 0.0
    assert max_relative_move(Z, Z) == 0.0
    W = Z.copy()
    W[3, 0] = 1e-3
    assert max_relative_move(W, Z) == np.inf


# ------------------------------------------------------------------------ meanfield gram
def _run(path, **train):
    cfg = Config.from_dict({
        "model": {"m": 64}, "data": {"d": 3, "n_train": 15, "n_test": 10},
        "init": {"a": "standard", "c": "sign"},
        "train": {"lr": 0.5, "steps": 30, **train},
        "record": {"every": 10, "snapshot_every": 10}})
    simulate(cfg, out=path).close()
    return path


def _gram_cli(*args):
    return subprocess.run([sys.executable, "-m", "meanfield.cli", "gram", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_gram_command(tmp_path):
    path = _run(tmp_path / "run.h5")
    proc = _gram_cli(path, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    with open_run(path) as run:
        X = run.data.x_train
        P0, PT = run.particles(0), run.particles(-1)
        assert out == pytest.approx(gram_report(run))
    n, lr = 15, 0.5
    assert out["n"] == n and out["m"] == 64 and out["eta"] == lr / n
    assert out["step_0"] == 0 and out["step_T"] == 30
    assert out["lambda_min_H0"] == pytest.approx(np.linalg.eigvalsh(_relu_ntk(P0, X))[0],
                                                 rel=1e-9)
    assert out["lambda_min_HT"] == pytest.approx(np.linalg.eigvalsh(_relu_ntk(PT, X))[0],
                                                 rel=1e-9)
    lam0 = np.linalg.eigvalsh(ref.h_inf(X, False, "both"))[0]
    assert out["lambda_0"] == pytest.approx(lam0, rel=1e-9)
    assert out["rate_per_step"] == pytest.approx(1 - lr / n * lam0 / 2, rel=1e-12)
    assert out["bound_at_T"] == pytest.approx((1 - lr / n * lam0 / 2) ** 30, rel=1e-12)
    text = _gram_cli(path)
    assert text.returncode == 0 and "lambda_0" in text.stdout and "eta = lr / n" in text.stdout


@pytest.mark.slow
def test_gram_command_without_a_closed_form_and_on_bad_input(tmp_path):
    cfg = Config.from_dict({"model": {"m": 16, "activation": "tanh"},
                            "data": {"d": 2, "n_train": 6, "n_test": 4},
                            "train": {"steps": 2}, "record": {"snapshot_every": 1}})
    path = tmp_path / "tanh.h5"
    simulate(cfg, out=path).close()
    out = json.loads(_gram_cli(path, "--json").stdout)
    assert out["lambda_0"] is None and "tanh" in out["lambda_0_note"]
    assert out["lambda_min_H0"] > 0
    for bad in (tmp_path / "missing.h5", tmp_path / "junk.h5"):
        if bad.name == "junk.h5":
            bad.write_bytes(b"not an HDF5 file" * 100)
        proc = _gram_cli(bad)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("meanfield: error:") and "Traceback" not in proc.stderr
        assert str(bad.name) in proc.stderr


def test_gram_observables_are_recorded_with_every_snapshot(tmp_path):
    path = _run(tmp_path / "run.h5")
    with open_run(path) as run:
        X = run.data.x_train
        P0 = run.particles(0)
        series = {name: run.observable(name) for name in
                  ("gram_lambda_min", "gram_change", "pattern_flips", "max_relative_move")}
        steps = run.steps
        for name, obs in series.items():
            assert obs.step.tolist() == steps.tolist(), name
        for k in range(len(steps)):
            P = run.particles(k)
            H, H0 = _relu_ntk(P, X), _relu_ntk(P0, X)
            assert series["gram_lambda_min"].value[k] == pytest.approx(
                np.linalg.eigvalsh(H)[0], rel=1e-9)
            assert series["gram_change"].value[k] == pytest.approx(
                np.linalg.norm(H - H0, 2) / np.linalg.norm(H0, 2), rel=1e-9, abs=1e-15)
            assert series["pattern_flips"].value[k] == pattern_flips(P, P0, X)
            assert series["max_relative_move"].value[k] == max_relative_move(P, P0)
        assert series["max_relative_move"].value[-1] > 0
    # not recorded where the Gram does not drive the dynamics (population SGD)
    sgd = tmp_path / "sgd.h5"
    _run(sgd, algorithm="sgd", batch_size=5)
    with open_run(sgd) as run:
        assert "gram_lambda_min" not in run.observable_names


def test_gram_observables_apply_to_full_batch_two_layer_runs():
    from types import SimpleNamespace

    from meanfield.observables import REGISTRY
    base = {"model": {"m": 8}, "data": {"d": 2}}
    for change, applies in (({}, True), ({"train": {"algorithm": "ggn"}}, True),
                            ({"model": {"activation": "tanh"}}, True),
                            ({"train": {"algorithm": "population"}}, False),
                            ({"train": {"algorithm": "sgd"}}, False),
                            ({"train": {"model": "tangent"}}, False),
                            ({"model": {"kind": "deep_linear"},
                              "data": {"d": 4, "kind": "linear_teacher"}}, False)):
        problem = SimpleNamespace(config=Config.from_dict({**base, **change}))
        for name in ("gram_lambda_min", "gram_change", "pattern_flips", "max_relative_move"):
            assert REGISTRY[name].applies(problem) is applies, (name, change)


def test_gram_report_refuses_a_deep_linear_run(tmp_path):
    path = tmp_path / "deep.h5"
    simulate(Config.from_dict({"model": {"kind": "deep_linear"},
                               "data": {"d": 2, "kind": "linear_teacher"},
                               "train": {"steps": 2}}), out=path).close()
    with open_run(path) as run, pytest.raises(InputError, match="two-layer"):
        gram_report(run)
