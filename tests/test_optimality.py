"""Global optimality: the polar against brute force, insertion against finite differences
of J, the duality gap against a brute-force convex solve (dual QP over a fine grid of
directions by scipy), and the certificate of stored runs through the API and the CLI."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import LinearConstraint, minimize

import reference as ref
from meanfield.errors import InputError
from meanfield.optimality import (Problem, certificate_of, certify, correlation,
                                  insert_neuron, polar, polar_of)

REPO = Path(__file__).resolve().parents[1]
GRID = np.linspace(0.0, 2 * np.pi, 400001)
CIRCLE = np.column_stack([np.cos(GRID), np.sin(GRID)])


def _config(d=2, alpha=1.0, lam=1e-2, loss="squared", bias=False, **model):
    return {"model": {"m": 4, "bias": bias, **model}, "data": {"d": d},
            "scaling": {"alpha": alpha}, "loss": {"name": loss},
            "train": {"weight_decay": lam}}


def _teacher_data(n=30, d=2, seed=0, loss="squared"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    x1 = X[:, 1] if d > 1 else 1.0
    y = np.maximum(X[:, 0] + 0.5 * x1, 0) - np.maximum(x1 - 0.3 * X[:, 0], 0)
    return X, (y if loss == "squared" else np.where(y > 0, 1.0, -1.0))


def _J(P, X, y, cfg):
    return ref.objective(P, X, y, "relu", cfg["loss"]["name"], cfg["scaling"]["alpha"],
                         cfg["model"]["bias"], cfg["train"]["weight_decay"])


@pytest.fixture(scope="module")
def converged():
    """A GD run (plain NumPy reference) on a d = 2 teacher, alpha = 2, lam = 1e-2:
    particles after 0, 200, 700 and 2500 steps of lr = 1.5."""
    X, y = _teacher_data()
    cfg = _config(alpha=2.0)
    P = np.random.default_rng(1).standard_normal((20, 3)) * 0.5
    path = [P]
    for steps in (200, 500, 1800):
        path.append(ref.gd(path[-1], X, y, "relu", "squared", 2.0, False, 1e-2, 1.5, steps))
    return X, y, cfg, path


# ------------------------------------------------------------------------ polar
def test_correlation_kernel_against_numpy_and_finite_differences():
    rng = np.random.default_rng(10)
    X, z, U = rng.standard_normal((30, 4)), rng.standard_normal(30), rng.standard_normal((7, 4))
    g, G = correlation(z, X, U, gradient=True)
    np.testing.assert_allclose(g, np.maximum(U @ X.T, 0) @ z / 30, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(G, ((U @ X.T > 0) * z) @ X / 30, rtol=1e-13, atol=1e-15)
    h = 1e-6
    for q in range(4):
        e = h * np.eye(4)[q]
        fd = (correlation(z, X, U + e) - correlation(z, X, U - e)) / (2 * h)
        np.testing.assert_allclose(G[:, q], fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_circle_polar_matches_a_fine_grid(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((int(rng.integers(1, 40)), 2))
    if seed % 2:          # ties: repeated, opposite, parallel and zero inputs; zero residuals
        X = np.round(np.vstack([X, X[:1], -X[:1], 3 * X[:1], np.zeros((1, 2))]))
    z = rng.standard_normal(len(X))
    z[: seed % 3] = 0.0
    p = polar_of(z, X)
    grid = np.abs(correlation(z, X, CIRCLE)).max()
    lipschitz = np.abs(z) @ np.linalg.norm(X, axis=1) / len(z)
    assert p.exact
    assert grid - 1e-13 <= p.value <= grid + lipschitz * (GRID[1] - GRID[0]) + 1e-13
    np.testing.assert_allclose(np.linalg.norm(p.direction), 1.0, rtol=1e-14)
    g = correlation(z, X, p.direction)[0]
    assert g * p.sign == pytest.approx(p.value, rel=1e-13, abs=1e-16)


def test_one_dimensional_polar_and_bias_as_an_extra_input():
    rng = np.random.default_rng(3)
    x, z = rng.standard_normal((25, 1)), rng.standard_normal(25)
    p = polar_of(z, x)
    assert p.exact and p.value == pytest.approx(
        max(abs(np.mean(z * np.maximum(x[:, 0], 0))), abs(np.mean(z * np.maximum(-x[:, 0], 0)))))
    # d = 1 with a bias is exact too: u = (a, b) on the circle, relu(a x + b)
    cfg = _config(d=1, bias=True)
    problem = Problem.from_config(cfg, (x, z))
    assert problem.X.shape == (25, 2) and np.all(problem.X[:, 1] == 1.0)
    P = rng.standard_normal((5, 3))
    q = polar(P, (x, z), cfg)
    f = ref.forward(P, x, "relu", 1.0, True)
    grid = np.abs(np.maximum(CIRCLE[:, :1] * x[:, 0] + CIRCLE[:, 1:], 0) @ (z - f) / 25).max()
    assert q.exact and grid - 1e-13 <= q.value <= grid + 1e-4


def test_ascent_is_a_true_lower_bound_that_beats_random_search():
    rng = np.random.default_rng(4)
    X, z = rng.standard_normal((100, 5)), rng.standard_normal(100)
    p = polar_of(z, X)
    U = rng.standard_normal((100000, 5))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    assert not p.exact
    assert p.sign * correlation(z, X, p.direction)[0] == pytest.approx(p.value, rel=1e-13)
    assert p.value >= np.abs(correlation(z, X, U)).max()


@pytest.mark.parametrize("seed", range(3))
def test_ascent_beats_a_dense_grid_of_the_sphere_in_d3(seed):
    rng = np.random.default_rng(seed)
    X, z = rng.standard_normal((60, 3)), rng.standard_normal(60)
    i = np.arange(200000) + 0.5                        # Fibonacci sphere, spacing ~ 0.008
    phi, theta = np.arccos(1 - 2 * i / len(i)), np.pi * (1 + 5 ** 0.5) * i
    U = np.column_stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)])
    assert polar_of(z, X).value >= np.abs(correlation(z, X, U)).max()


def test_ascent_finds_the_exact_polar_of_a_planar_problem_embedded_in_d5():
    rng = np.random.default_rng(5)
    X2, z = rng.standard_normal((40, 2)), rng.standard_normal(40)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    X5 = np.hstack([X2, np.zeros((40, 3))]) @ Q.T   # data spans a plane of R^5
    assert polar_of(z, X5).value == pytest.approx(polar_of(z, X2).value, rel=1e-12)


# --------------------------------------------------- first variation and insertion
@pytest.mark.parametrize("loss, bias", [("squared", False), ("logistic", False),
                                        ("squared", True)])
def test_problem_objective_and_residual_match_the_reference(loss, bias):
    X, y = _teacher_data(d=3, loss=loss)
    cfg = _config(d=3, alpha=1.7, lam=0.03, loss=loss, bias=bias)
    P = np.random.default_rng(6).standard_normal((7, 5 if bias else 4))
    problem = Problem.from_config(cfg, (X, y))
    assert problem.objective(P) == pytest.approx(_J(P, X, y, cfg), rel=1e-13)
    f = ref.forward(P, X, "relu", 1.7, bias)
    z = -ref.LOSSES[loss][1](f, y)
    np.testing.assert_allclose(problem.residual(P), z, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("loss, bias", [("squared", False), ("logistic", True)])
def test_inserting_a_neuron_changes_J_as_the_first_variation_says(loss, bias):
    """(J(P + s w) - J(P)) / s^2 -> (lam - sigma g(u) / alpha) / (m + 1), any direction u."""
    X, y = _teacher_data(d=2, loss=loss)
    alpha, lam = 1.5, 0.02
    cfg = _config(alpha=alpha, lam=lam, loss=loss, bias=bias)
    rng = np.random.default_rng(7)
    P = rng.standard_normal((6, 4 if bias else 3))
    z = Problem.from_config(cfg, (X, y)).residual(P)
    Xk = np.hstack([X, np.ones((len(X), 1))]) if bias else X
    J0 = _J(P, X, y, cfg)
    for _ in range(4):
        u = Xk[rng.integers(len(Xk))] + 0.3 * rng.standard_normal(Xk.shape[1])
        u /= np.linalg.norm(u)
        sign = rng.choice([-1.0, 1.0])
        predicted = (lam - sign * correlation(z, Xk, u)[0] / alpha) / 7
        assert abs(correlation(z, Xk, u)[0]) > 1e-3
        slope = (_J(insert_neuron(P, u, sign, 1e-3), X, y, cfg) - J0) / 1e-6
        assert slope == pytest.approx(predicted, rel=1e-5)
    np.testing.assert_allclose(ref.forward(insert_neuron(P, u, sign, 0.0), X, "relu", alpha,
                                           bias), ref.forward(P, X, "relu", alpha, bias),
                               rtol=1e-12)


def test_at_a_violated_point_the_maximiser_lowers_J():
    X, y = _teacher_data()
    cfg = _config(alpha=1.0, lam=1e-3)
    P = np.random.default_rng(8).standard_normal((5, 3))
    cert = certify(P, (X, y), cfg)
    assert cert.polar > 10 * cert.bound
    s = 1e-3
    slope = (_J(insert_neuron(P, cert.direction, cert.sign, s), X, y, cfg) - cert.objective)
    assert slope / s ** 2 == pytest.approx((1e-3 - cert.polar) / 6, rel=1e-4)
    # and no direction on the circle does better to first order (it is the maximiser)
    z = Problem.from_config(cfg, (X, y)).residual(P)
    assert np.abs(correlation(z, X, CIRCLE)).max() <= cert.polar + 1e-13


def test_at_a_certified_point_no_neuron_lowers_J(converged):
    X, y, cfg, path = converged
    P = path[-1]
    cert = certify(P, (X, y), cfg)
    assert cert.exact and cert.polar <= cert.bound * (1 + 1e-6)
    J0 = _J(P, X, y, cfg)
    s = 1e-3
    for t in np.linspace(0, 2 * np.pi, 24, endpoint=False):
        u = np.array([np.cos(t), np.sin(t)])
        for sign in (1.0, -1.0):
            change = (_J(insert_neuron(P, u, sign, s), X, y, cfg) - J0) / s ** 2
            assert change > -1e-6 * cfg["train"]["weight_decay"]


def test_the_zero_network_above_lambda_max_is_certified_with_zero_gap():
    X, y = _teacher_data()
    lam_max = polar_of(y, X).value          # f = 0: z = y, alpha = 1
    cert = certify(np.zeros((3, 3)), (X, y), _config(lam=2 * lam_max))
    assert cert.polar == pytest.approx(lam_max) and cert.polar < cert.bound
    assert cert.objective == pytest.approx(np.mean(y ** 2) / 2)
    assert abs(cert.gap) < 1e-15


# ------------------------------------------------------------------ duality gap
@pytest.mark.parametrize("d, loss, bias, lam", [(2, "squared", False, 1e-2),
                                                (2, "logistic", False, 1e-2),
                                                (1, "logistic", True, 1e-3),
                                                (5, "squared", True, 1e-2),
                                                (5, "logistic", False, 0.0)])
def test_gap_is_nonnegative(d, loss, bias, lam):
    rng = np.random.default_rng(d)
    for trial in range(5):
        X, y = _teacher_data(n=40, d=d, seed=trial, loss=loss)
        cfg = _config(d=d, alpha=rng.choice([0.5, 1.0, 3.0]), lam=lam, loss=loss, bias=bias)
        P = rng.standard_normal((8, d + 1 + bias)) * rng.choice([0.1, 1.0, 3.0])
        cert = certify(P, (X, y), cfg)
        assert cert.exact == (d + bias <= 2)
        assert cert.gap >= -1e-14 * cert.objective
        assert cert.objective == pytest.approx(_J(P, X, y, cfg), rel=1e-13)


def test_gap_tends_to_zero_along_a_converging_run(converged):
    X, y, cfg, path = converged
    certs = [certify(P, (X, y), cfg) for P in path]
    gaps = [c.gap for c in certs]
    assert all(c.exact for c in certs)
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[0] > 1e-2 and gaps[-1] < 1e-9
    assert certs[-1].polar == pytest.approx(certs[-1].bound, rel=1e-6)


def _grid_dual(X, y, beta, K):
    """Brute-force convex solve of the squared-loss lasso over K fixed relu directions, by
    its dual QP: max_z (z.y - |z|^2 / 2) / n subject to |Phi^T z| / n <= beta."""
    n, t = len(y), 2 * np.pi * np.arange(K) / K
    Phi = np.maximum(X @ np.column_stack([np.cos(t), np.sin(t)]).T, 0)
    res = minimize(lambda z: (0.5 * np.sum((z - y) ** 2) / n, (z - y) / n), np.zeros(n),
                   jac=True, method="SLSQP",
                   constraints=[LinearConstraint(Phi.T / n, -beta, beta)],
                   options={"maxiter": 1000, "ftol": 1e-16})
    assert res.success
    return (y @ y - np.sum((res.x - y) ** 2)) / (2 * n), res.x


def test_gap_matches_a_brute_force_convex_solve(converged):
    X, y, cfg, path = converged
    alpha, beta = 2.0, 2.0 * 1e-2
    optimum, z = _grid_dual(X, y, beta, 1440)   # >= inf over the whole sphere
    cert = certify(path[-1], (X, y), cfg)
    assert alpha ** 2 * cert.dual <= optimum + 1e-12          # weak duality, certified
    assert alpha ** 2 * cert.objective == pytest.approx(optimum, rel=1e-5)
    # the grid's dual solution violates the full constraint only between grid directions
    assert beta <= polar_of(z, X).value <= beta * (1 + 1e-3)


def test_certificate_of_a_problem_equals_certify():
    X, y = _teacher_data()
    cfg = _config()
    P = np.random.default_rng(9).standard_normal((4, 3))
    a, b = certify(P, (X, y), cfg), certificate_of(Problem.from_config(cfg, (X, y)), P)
    assert a.as_dict() == b.as_dict()
    assert set(a.as_dict()) >= {"polar", "bound", "gap", "exact", "direction"}


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cfg, P, message", [
    (_config(activation="tanh"), np.zeros((2, 3)), "model.activation"),
    ({**_config(), "train": {"model": "tangent"}}, np.zeros((2, 3)), "train.model"),
    (_config(), np.zeros((2, 4)), "particles: expected shape (m, 3)"),
    (_config(d=3), np.zeros((2, 3)), "data: expected X of shape (n, 3)"),
    (_config(loss="logistic"), np.zeros((2, 3)), "data: labels must be in {-1, 1}"),
    ({"model": {"kind": "deep_linear"}, "data": {"d": 2, "kind": "linear_teacher"}},
     np.zeros((2, 3)), "model.kind must be 'two_layer'"),
])
def test_bad_input_names_the_culprit(cfg, P, message):
    X, y = _teacher_data()
    with pytest.raises(InputError, match=re.escape(message)):
        certify(P, (X, y), cfg)


def test_an_array_needs_data_and_config():
    with pytest.raises(InputError, match="need data and config"):
        polar(np.zeros((2, 3)))


# ------------------------------------------------------------- runs and the CLI
@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """A stored GD run with weight decay in d = 2 (three snapshots)."""
    from meanfield.config import Config
    from meanfield.simulate import simulate
    cfg = Config.from_dict({"model": {"m": 12}, "data": {"d": 2, "n_train": 40, "teacher_m": 3},
                            "scaling": {"alpha": 1.5}, "train": {"steps": 400, "lr": 0.5,
                                                                 "weight_decay": 1e-2},
                            "record": {"every": 100, "snapshot_every": 200}})
    path = tmp_path_factory.mktemp("certify") / "run.h5"
    simulate(cfg, out=path).close()
    return path


def test_certify_a_run_uses_its_config_data_and_snapshots(run_file):
    import h5py

    from meanfield import open_run
    with open_run(run_file) as run:
        certs = [certify(run, snapshot=k) for k in range(3)]
        assert certify(run).as_dict() == certs[-1].as_dict()
        data, P = run.data, run.particles(1)
        J = ref.objective(P, data.x_train, data.y_train, "relu", "squared", 1.5, False, 1e-2)
        assert certs[1].objective == pytest.approx(J, rel=1e-13)
        assert certs[1].bound == pytest.approx(1.5e-2)
        with pytest.raises(InputError, match="snapshot 3 out of range: the run has 3 snapshots"):
            certify(run, snapshot=3)
        for name, field in (("polar", "polar"), ("duality_gap", "gap")):
            obs = run.observable(name)
            np.testing.assert_array_equal(obs.step, run.steps)
            np.testing.assert_allclose(obs.value, [getattr(c, field) for c in certs],
                                       rtol=1e-12)
    with h5py.File(run_file, "r") as h5:
        for name in ("polar", "duality_gap"):
            attrs = h5[f"observables/{name}"].attrs
            assert bool(attrs["exact"]) and attrs["bound"] == pytest.approx(1.5e-2)
    assert all(c.exact and c.gap >= 0 for c in certs)
    assert certs[-1].gap < certs[0].gap


def test_observables_only_for_gd_relu_runs_and_inexact_above_the_plane(tmp_path):
    from types import SimpleNamespace

    import h5py

    from meanfield.config import Config
    from meanfield.observables import REGISTRY
    from meanfield.simulate import simulate
    base = {"model": {"m": 6}, "data": {"d": 4, "n_train": 20},
            "train": {"steps": 20, "weight_decay": 0.01},
            "record": {"every": 10, "snapshot_every": 10}}
    simulate(base, out=tmp_path / "d4.h5").close()
    with h5py.File(tmp_path / "d4.h5", "r") as h5:
        assert not bool(h5["observables/duality_gap"].attrs["exact"])
        assert "lower bound" in h5["observables/polar"].attrs["polar"]
        assert np.all(h5["observables/duality_gap/value"][()] >= 0)
    decay = {"weight_decay": 0.01}
    for change, applies in (({}, True), ({"train": {"weight_decay": 0.0}}, False),
                            ({"train": {"algorithm": "population", **decay}}, False),
                            ({"train": {"algorithm": "sgd", **decay}}, False),
                            ({"train": {"model": "tangent", **decay}}, False),
                            ({"model": {"activation": "tanh"}}, False),
                            ({"model": {"kind": "deep_linear"}, "train": {"steps": 20},
                              "data": {"d": 4, "kind": "linear_teacher"}}, False)):
        problem = SimpleNamespace(config=Config.from_dict({**base, **change}))
        assert REGISTRY["polar"].applies(problem) is applies
        assert REGISTRY["duality_gap"].applies(problem) is applies


@pytest.mark.parametrize("d, bias", [(2, False), (6, True)])
def test_observed_polar_is_a_lower_bound_of_the_full_polar_and_exact_in_the_plane(d, bias):
    from meanfield.simulate import simulate
    cfg = {"model": {"m": 40, "bias": bias}, "data": {"d": d, "n_train": 60},
           "train": {"steps": 300, "lr": 0.3, "weight_decay": 1e-2},
           "record": {"every": 100, "snapshot_every": 100}}
    run = simulate(cfg)
    obs = run.observable("polar")
    full = np.array([polar(run, snapshot=k).value for k in range(len(run.steps))])
    assert np.all(obs.value <= full + 1e-12)
    if d == 2:
        np.testing.assert_allclose(obs.value, full, rtol=1e-12, atol=0)
    rng = np.random.default_rng(3)
    for _ in range(5):
        X, z = rng.standard_normal((80, d + bias)), rng.standard_normal(80)
        P = rng.standard_normal((50, d + bias + 1))
        quick = polar_of(z, X, P, quick=True)
        best = np.abs(correlation(z, X, P[:, :-1] / np.linalg.norm(P[:, :-1], axis=1)[:, None]))
        assert best.max() - 1e-15 <= quick.value <= polar_of(z, X, P).value + 1e-12
        assert quick.exact == (d == 2)


def _cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_certify_text_and_json(run_file, tmp_path):
    res = _cli("certify", run_file, "--json", "--snapshot", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    from meanfield import open_run
    with open_run(run_file) as run:
        expected = certify(run, snapshot=1)
    assert set(out) >= {"polar", "bound", "gap", "exact", "direction"}
    assert out["polar"] == pytest.approx(expected.polar, rel=1e-15)
    assert out["gap"] == pytest.approx(expected.gap, rel=1e-12)
    assert out["exact"] is True and len(out["direction"]) == 2
    res = _cli("certify", run_file, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("polar") and "(exact)" in lines[0]
    assert lines[1].split()[:2] == ["bound", "0.015"]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["missing.h5"], "missing.h5: no such file"),
    (["RUN", "--snapshot", "7"], "snapshot 7 out of range"),
    (["RUN", "--snapshot", "x"], "invalid int value"),
])
def test_cli_certify_bad_input_exits_2(run_file, tmp_path, args, message):
    res = _cli("certify", *[run_file if a == "RUN" else a for a in args], cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("meanfield: error:") and message in res.stderr
    assert "Traceback" not in res.stderr


# ------------------------------------------------------------------- experiment
@pytest.mark.slow
def test_spurious_minima_experiment_quick(tmp_path):
    import csv

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    res = subprocess.run([sys.executable, REPO / "experiments" / "spurious_minima" / "run.py",
                          "--quick", "--work", tmp_path / "work", "--data", tmp_path / "data"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "data" / "spurious_minima.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "data" / "spurious_minima.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["d"], r["m"]) for r in rows] == [("2", "4")] * 2 + [("2", "16")] * 2 + \
        [("10", "6")] * 2 + [("10", "24")] * 2
    for r in rows:
        assert r["exact"] == str(r["d"] == "2") and float(r["bound"]) == pytest.approx(1e-3)
        assert float(r["gap"]) >= 0
        assert r["optimal"] == str(float(r["gap"]) <= 0.05 * float(r["objective"]))
    # d = 10: the exact-width students are further from optimal than the 4 m0 ones
    gap = {m: np.mean([float(r["relative_gap"]) for r in rows if r["m"] == m])
           for m in ("6", "24")}
    assert gap["6"] > gap["24"]
