"""Deep linear networks: formulas against tests/reference.py and finite differences, invariants."""

import numpy as np
import pytest

import reference as ref
from meanfield import deep_linear as dl
from meanfield.errors import InputError

POWERS = [2.0, 2.5, 3.0, 4.0]


def _problem(dims, n=30, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    net = dl.gaussian(dims, scale, rng)
    X = rng.standard_normal((n, dims[0]))
    Y = rng.standard_normal((n, dims[-1]))
    return net, X, Y


def _fd_grad(f, x):
    """grad f at the array x by central differences (the reference's helper, m = 1)."""
    return -ref.fd_minus_m_grad(lambda v: f(v.reshape(x.shape)), x.reshape(1, -1)).reshape(x.shape)


@pytest.mark.parametrize("p", POWERS)
@pytest.mark.parametrize("k", [1, 3])
def test_loss_and_gradient_match_reference_and_fd(p, k):
    net, X, Y = _problem([4, 5, k])
    w = net.end_to_end()
    np.testing.assert_allclose(w, ref.dl_end_to_end([a.copy() for a in net.layers]), rtol=1e-13)
    value, G = dl.loss_and_gradient(w, X, Y, p)
    np.testing.assert_allclose(value, ref.dl_loss(w, X, Y, p), rtol=1e-12)
    np.testing.assert_allclose(G, ref.dl_gradient(w, X, Y, p), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(G, _fd_grad(lambda v: dl.loss(v, X, Y, p), w), rtol=1e-6,
                               atol=1e-8)
    assert np.linalg.norm(G) > 1e-3


@pytest.mark.parametrize("p", [2.0, 3.5])
def test_reference_gradients_match_finite_differences(p):
    """The plain-NumPy reference itself, against central differences of its own loss."""
    net, X, Y = _problem([3, 4, 2], n=12)
    layers = [a.copy() for a in net.layers]
    w = ref.dl_end_to_end(layers)
    np.testing.assert_allclose(ref.dl_gradient(w, X, Y, p),
                               _fd_grad(lambda v: ref.dl_loss(v, X, Y, p), w), rtol=1e-6)
    for j, g in enumerate(ref.dl_layer_gradients(layers, X, Y, p)):
        def moved(v, j=j):
            return ref.dl_loss(ref.dl_end_to_end(layers[:j] + [v] + layers[j + 1:]), X, Y, p)
        np.testing.assert_allclose(g, _fd_grad(moved, layers[j]), rtol=1e-5, atol=1e-9)


def test_squared_is_half_mean_square_and_lp_at_two():
    net, X, Y = _problem([3, 2])
    w = net.end_to_end()
    half_mse = 0.5 * np.mean(np.sum((X @ w.T - Y) ** 2, axis=1))
    assert dl.loss(w, X, Y, dl.loss_power("squared")) == pytest.approx(half_mse, rel=1e-13)
    assert dl.loss_power("lp", 2) == 2.0 and dl.loss_power("lp", 3.5) == 3.5


@pytest.mark.parametrize("bad", [1.5, float("nan"), "4"])
def test_bad_loss_power(bad):
    with pytest.raises(InputError, match="loss.p"):
        dl.loss_power("lp", bad)
    with pytest.raises(InputError, match="loss.kind"):
        dl.loss_power("hinge")


@pytest.mark.parametrize("dims", [[3, 2], [3, 4, 2], [4, 2, 5, 3], [2, 3, 3, 4, 1]])
@pytest.mark.parametrize("p", [2.0, 4.0])
def test_layer_gradients_match_reference_and_fd(dims, p):
    net, X, Y = _problem(dims, seed=len(dims))
    grads = dl.layer_gradients(net, X, Y, p)
    expected = ref.dl_layer_gradients([a.copy() for a in net.layers], X, Y, p)

    def total(theta):
        return dl.loss(dl.Network(dims, theta).end_to_end(), X, Y, p)

    fd = dl.Network(dims, _fd_grad(total, net.theta)).layers
    for g, e, f in zip(grads, expected, fd):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(g, f, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("k, d", [(1, 4), (2, 5), (3, 3), (4, 2)])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_preconditioner_matches_kronecker_reference(k, d, depth):
    rng = np.random.default_rng(depth)
    w, G = rng.standard_normal((k, d)), rng.standard_normal((k, d))
    expected = (ref.dl_preconditioner(w, depth) @ G.ravel()).reshape(k, d)
    np.testing.assert_allclose(dl.preconditioned_gradient(w, G, depth), expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_single_output_row_formula(depth):
    rng = np.random.default_rng(7)
    w, g = rng.standard_normal((1, 6)), rng.standard_normal((1, 6))
    np.testing.assert_allclose(dl.preconditioned_gradient(w, g, depth)[0],
                               ref.dl_single_row_flow(w[0], g[0], depth), rtol=1e-10)


@pytest.mark.parametrize("dims", [[4, 2], [4, 3, 2], [3, 5, 4, 6], [2, 2, 2, 2, 2]])
def test_balanced_init_is_balanced_with_the_given_product(dims):
    rng = np.random.default_rng(1)
    w_e = rng.standard_normal((dims[-1], dims[0]))
    net = dl.balanced(w_e, dims)
    np.testing.assert_allclose(net.end_to_end(), w_e, atol=1e-12)
    assert ref.dl_balancedness(net.layers) < 1e-12
    assert dl.balancedness(net) < 1e-12


def test_balanced_init_needs_wide_enough_layers():
    with pytest.raises(InputError, match="hidden width"):
        dl.balanced(np.ones((3, 4)), [4, 2, 3])


def test_gaussian_and_identity_inits():
    rng = np.random.default_rng(2)
    net = dl.initialise("gaussian", [200, 300, 100], 0.5, rng)
    assert np.std(net.layers[0]) == pytest.approx(0.5 / np.sqrt(200), rel=0.02)
    assert np.std(net.layers[1]) == pytest.approx(0.5 / np.sqrt(300), rel=0.02)
    small = dl.initialise("gaussian", [5, 5, 5], 1e-3, rng)
    assert 0 < dl.balancedness(small) < 1e-5            # near zero: nearly balanced
    np.testing.assert_array_equal(dl.initialise("identity", [3, 3, 3, 3], 1.0, rng)
                                  .end_to_end(), np.eye(3))
    with pytest.raises(InputError, match="identity"):
        dl.identity([3, 4, 3])
    with pytest.raises(InputError, match="init.kind"):
        dl.initialise("orthogonal", [3, 3], 1.0, rng)


@pytest.mark.parametrize("p", [2.0, 4.0])
def test_gd_matches_reference(p):
    net, X, Y = _problem([3, 4, 4, 2], scale=0.8)
    gd = dl.GD(net, X, Y, p, 0.05)
    losses = np.concatenate([gd.advance(7), gd.advance(5)])
    layers, ref_losses = ref.dl_gd([a.copy() for a in net.layers], X, Y, p, 0.05, 12)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-11)
    for a, b in zip(gd.net.layers, layers):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert gd.step == 12 and not gd.diverged


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_end_to_end_matches_reference(depth):
    net, X, Y = _problem([3, 2], scale=1.0)
    flow = dl.EndToEnd(net.end_to_end(), depth, X, Y, 4.0, 0.02)
    flow.advance(4)
    flow.advance(6)
    expected = ref.dl_end_to_end_flow(net.end_to_end(), depth, X, Y, 4.0, 0.02, 10)
    np.testing.assert_allclose(flow.end_to_end(), expected, rtol=1e-10)


def test_adaptive_baselines_match_reference():
    net, X, Y = _problem([4, 2])
    w = net.end_to_end()
    ada = dl.AdaGrad(w, X, Y, 4.0, 0.1, eps=1e-8)
    ada.advance(3)
    ada.advance(9)
    np.testing.assert_allclose(ada.end_to_end(), ref.dl_adagrad(w, X, Y, 4.0, 0.1, 1e-8, 12),
                               rtol=1e-11)
    adam = dl.Adam(w, X, Y, 4.0, 0.1, beta1=0.8, beta2=0.99, eps=1e-7)
    adam.advance(5)
    adam.advance(7)
    np.testing.assert_allclose(adam.end_to_end(),
                               ref.dl_adam(w, X, Y, 4.0, 0.1, 0.8, 0.99, 1e-7, 12), rtol=1e-11)


def test_divergence_stops_the_chunk():
    net, X, Y = _problem([3, 3, 2], scale=2.0)
    gd = dl.GD(net, X, Y, 4.0, 50.0)
    losses = gd.advance(100)
    assert gd.diverged and len(losses) < 100 and np.all(np.isfinite(losses))
    assert len(gd.advance(5)) == 0


def _balanced_problem(depth, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 4))
    Y = X @ rng.standard_normal((4, 2)) / 2
    dims = [4] + [5] * (depth - 1) + [2]
    return dl.balanced(rng.standard_normal((2, 4)) * 0.5, dims), X, Y


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("p", [2.0, 4.0])
def test_one_gd_step_changes_balance_by_lr_squared(depth, p):
    """W_{j+1}^T W_{j+1} - W_j W_j^T changes by exactly lr^2 (G_{j+1}^T G_{j+1} - G_j G_j^T)."""
    net, X, Y = _balanced_problem(depth)
    net = dl.Network(net.dims, net.theta + 0.1 * np.random.default_rng(0).standard_normal(
        net.theta.shape))                              # any point, balanced or not
    lr = 0.03
    gd = dl.GD(net, X, Y, p, lr)
    gd.advance(1)
    w0, w1 = net.layers, gd.net.layers
    g = ref.dl_layer_gradients([a.copy() for a in w0], X, Y, p)
    for j in range(depth - 1):
        change = (w1[j + 1].T @ w1[j + 1] - w1[j] @ w1[j].T) \
            - (w0[j + 1].T @ w0[j + 1] - w0[j] @ w0[j].T)
        np.testing.assert_allclose(change, lr ** 2 * (g[j + 1].T @ g[j + 1] - g[j] @ g[j].T),
                                   atol=1e-14)
        assert np.linalg.norm(change) > 1e-7


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_balancedness_drift_vanishes_with_the_step_at_fixed_time(depth):
    """From a balanced init, delta(t) at a fixed t is O(lr) (O(lr^2) per step): flow keeps 0."""
    net, X, Y = _balanced_problem(depth)
    drift = []
    for lr, steps in ((0.02, 20), (0.01, 40), (0.005, 80)):
        gd = dl.GD(net, X, Y, 2.0, lr)
        gd.advance(steps)
        drift.append(dl.balancedness(gd.net))
    assert drift[0] > 1e-6
    np.testing.assert_allclose(np.array(drift[:-1]) / drift[1:], 2.0, rtol=0.1)


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("p", [2.0, 4.0])
def test_gd_from_balanced_init_tracks_end_to_end_dynamics(depth, p):
    """At a fixed time t = lr * steps the gap between GD and the end-to-end Euler steps is O(lr)."""
    net, X, Y = _balanced_problem(depth)
    gaps = []
    for lr, steps in ((0.005, 100), (0.0025, 200), (0.00125, 400)):
        gd, flow = dl.GD(net, X, Y, p, lr), dl.EndToEnd(net.end_to_end(), depth, X, Y, p, lr)
        gd.advance(steps)
        flow.advance(steps)
        gaps.append(dl.end_to_end_gap(gd.end_to_end(), flow.end_to_end()))
        moved = np.linalg.norm(gd.end_to_end() - net.end_to_end())
    assert gaps[-1] < 1e-2 * moved
    np.testing.assert_allclose(np.array(gaps[:-1]) / gaps[1:], 2.0, rtol=0.1)


def test_unbalanced_init_leaves_the_end_to_end_dynamics():
    net, X, Y = _balanced_problem(2)
    lopsided = dl.Network.from_layers([3.0 * net.layers[0], net.layers[1] / 3.0])
    gd = dl.GD(lopsided, X, Y, 2.0, 0.005)
    flow = dl.EndToEnd(lopsided.end_to_end(), 2, X, Y, 2.0, 0.005)
    gd.advance(100)
    flow.advance(100)
    assert dl.end_to_end_gap(gd.end_to_end(), flow.end_to_end()) > 0.1


def test_observables():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 3))
    target = rng.standard_normal((2, 3))
    np.testing.assert_allclose(dl.least_squares_target(X, X @ target.T), target, atol=1e-12)
    s = np.linalg.svd(target, compute_uv=False)
    np.testing.assert_allclose(dl.singular_values(target), s)
    smin, margin = dl.deficiency_margin(target + 0.01, target)
    assert smin == pytest.approx(np.linalg.svd(target + 0.01, compute_uv=False)[-1])
    assert margin == pytest.approx(s[-1] - 0.01 * np.sqrt(6))
    assert dl.deficiency_margin(np.zeros((2, 3)), target)[1] < 0
    assert dl.balancedness(dl.Network.from_layers([np.eye(2)])) == 0.0


def test_linear_teacher():
    X, Y, teacher = dl.linear_teacher(500, 4, 2, 0.0, np.random.default_rng(5), whiten=True)
    np.testing.assert_allclose(X.T @ X / 500, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(Y, X @ teacher.T, atol=1e-12)
    X, Y, teacher = dl.linear_teacher(4000, 3, 1, 0.5, np.random.default_rng(6), scales=[1, 2, 3])
    np.testing.assert_allclose(X.std(axis=0), [1, 2, 3], rtol=0.05)
    assert np.std(Y - X @ teacher.T) == pytest.approx(0.5, rel=0.05)
    with pytest.raises(InputError, match="noise"):
        dl.linear_teacher(10, 3, 1, -1.0, np.random.default_rng(0))


# ------------------------------------------------- the experiments at their --quick size

def _quick_csv(name, tmp_path):
    import csv

    from test_experiments import EXPERIMENTS, PNG, _python

    res = _python(EXPERIMENTS / name / "run.py", "--quick", "--data", tmp_path, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG
    with open(tmp_path / f"{name}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _where(rows, **match):
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


@pytest.mark.slow
def test_end_to_end_experiment(tmp_path):
    rows = _quick_csv("end_to_end", tmp_path)
    for depth in ("2", "3", "4"):
        gap = np.array([[float(r["lr"]), float(r["value"])]
                        for r in _where(rows, panel="gap", depth=depth)])
        assert np.polyfit(np.log(gap[:, 0]), np.log(gap[:, 1]), 1)[0] == pytest.approx(1, abs=0.15)
    unbalanced = _where(rows, panel="failure", case="unbalanced")
    assert unbalanced[-1]["value"] == "inf"
    stalled = [float(r["value"]) for r in _where(rows, panel="failure", case="zero margin")]
    assert stalled[0] > 0.01 and np.allclose(stalled[:20], stalled[0])
    assert float(_where(rows, panel="failure", case="balanced")[-1]["value"]) < 1e-8


@pytest.mark.slow
def test_acceleration_experiment(tmp_path):
    rows = _quick_csv("acceleration_by_depth", tmp_path)
    hits = {r["method"]: int(r["step"])
            for r in _where(rows, panel="iterations", dataset="synthetic", p="4")}
    assert len(hits) == 6 and 0 <= hits["GD N=2"]
    assert hits["GD N=1"] < 0 or hits["GD N=2"] < hits["GD N=1"]


@pytest.mark.slow
def test_lp_landscape_experiment(tmp_path):
    rows = _quick_csv("lp_landscape", tmp_path)
    paths = {}
    for r in _where(rows, panel="path"):
        paths.setdefault(r["method"], []).append([float(r[k]) for k in ("w1", "w2", "value")])
    gd, flow, layers = (np.array(p) for p in paths.values())
    assert np.abs(flow[:, :2] - layers[:, :2]).max() < 1e-3
    assert np.abs(flow[:, :2] - gd[:, :2]).max() > 0.05
    assert flow[-1, 2] < gd[-1, 2] < gd[0, 2]
    assert len(_where(rows, panel="grid")) == 30 * 30
