"""Tangent model, tangent kernels, laziness diagnostics and the convex baseline."""

import numpy as np
import pytest

import reference as ref
from meanfield import lazy
from meanfield.activations import IDS as ACT
from meanfield.baseline import (RandomFeatures, convex_baseline, draw_features,
                                fit_random_features)
from meanfield.config import Config
from meanfield.data import Dataset, make_dataset
from meanfield.errors import InputError
from meanfield.kernels import forward, risk_and_velocity
from meanfield.losses import IDS as LOSS

ACTS = ("relu", "tanh", "erf", "sigmoid")


def particles(m, d, bias, rng, tau=1.0):
    """Initialisation-like particles: a ~ N(0, I/d), b, c ~ N(0, 1), times tau."""
    cols = [rng.standard_normal((m, d)) / np.sqrt(d)]
    if bias:
        cols.append(rng.standard_normal((m, 1)))
    cols.append(rng.standard_normal((m, 1)))
    return tau * np.hstack(cols)


def grad_phi(P, X, activation, bias):
    """Per-particle gradients grad_w phi(w_i, x_j) as an (m, n, D) array, by a loop."""
    s, ds = ref.ACTIVATIONS[activation]
    d = X.shape[1]
    A, b, c = ref.split(P, d, bias)
    G = []
    for i in range(P.shape[0]):
        z = X @ A[i] + b[i]
        cols = [(c[i] * ds(z))[:, None] * X]
        if bias:
            cols.append((c[i] * ds(z))[:, None])
        cols.append(s(z)[:, None])
        G.append(np.hstack(cols))
    return np.array(G)


# ------------------------------------------------------------------------ tangent model
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("bias", (False, True))
def test_tangent_output_is_first_order_taylor(activation, bias):
    rng = np.random.default_rng(1)
    n, m, d, alpha = 12, 30, 4, 3.0
    P0 = particles(m, d, bias, rng)
    X = rng.standard_normal((n, d))
    Dir = rng.standard_normal(P0.shape)

    f0 = ref.forward(P0, X, activation, alpha, bias)
    T0 = lazy.tangent_output(P0, P0, X, activation, alpha)
    assert np.array_equal(T0, forward(P0, X, ACT[activation], alpha))
    np.testing.assert_allclose(T0, f0, rtol=1e-12, atol=1e-14)

    # Tf(w0 + eps D) - f(w0) = eps * (directional derivative), by central differences
    h = 1e-6
    deriv = (ref.forward(P0 + h * Dir, X, activation, alpha, bias)
             - ref.forward(P0 - h * Dir, X, activation, alpha, bias)) / (2 * h)
    for eps in (0.1, 1.0):
        T = lazy.tangent_output(P0 + eps * Dir, P0, X, activation, alpha)
        np.testing.assert_allclose((T - f0) / eps, deriv, rtol=1e-6, atol=1e-8)

    # the remainder f(w0 + eps D) - Tf is O(eps^2): halving eps quarters it
    eps = 1e-4 if activation == "relu" else 1e-3  # relu: no kink crossed at this eps
    gaps = []
    for e in (eps, eps / 2):
        f = ref.forward(P0 + e * Dir, X, activation, alpha, bias)
        T = lazy.tangent_output(P0 + e * Dir, P0, X, activation, alpha)
        gaps.append(np.sqrt(np.mean((f - T) ** 2)))
        assert lazy.tangent_gap(P0 + e * Dir, P0, X, activation, alpha) == pytest.approx(
            gaps[-1], rel=1e-6)
    assert gaps[0] / gaps[1] == pytest.approx(4.0, rel=0.02)


def test_tangent_output_is_affine_in_w():
    rng = np.random.default_rng(2)
    P0 = particles(20, 3, True, rng)
    X = rng.standard_normal((7, 3))
    D1, D2 = rng.standard_normal((2,) + P0.shape)
    T = lambda P: lazy.tangent_output(P, P0, X, "tanh", 2.0)  # noqa: E731
    np.testing.assert_allclose(T(P0 + D1 + 3 * D2) - T(P0),
                               (T(P0 + D1) - T(P0)) + 3 * (T(P0 + D2) - T(P0)), atol=1e-12)


# ----------------------------------------------------------------------- empirical NTK
@pytest.mark.parametrize("activation", ACTS + ("linear", "softplus"))
@pytest.mark.parametrize("bias", (False, True))
def test_empirical_ntk_is_gram_of_particle_gradients(activation, bias):
    rng = np.random.default_rng(3)
    m, d = 25, 3
    P = particles(m, d, bias, rng)
    X1, X2 = rng.standard_normal((6, d)), rng.standard_normal((4, d))
    G1, G2 = grad_phi(P, X1, activation, bias), grad_phi(P, X2, activation, bias)
    K_ref = sum(G1[i] @ G2[i].T for i in range(m)) / m
    K = lazy.empirical_ntk(P, X1, X2, activation)
    np.testing.assert_allclose(K, K_ref, rtol=1e-12, atol=1e-14)
    # X2 defaults to X1 and the Gram is symmetric positive semi-definite
    K11 = lazy.empirical_ntk(P, X1, activation=activation)
    np.testing.assert_allclose(K11, sum(g @ g.T for g in G1) / m, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(K11, lazy.empirical_ntk(P, X1, activation))
    assert np.allclose(K11, K11.T, rtol=0, atol=1e-14)
    assert lazy.lambda_min(K11) > -1e-12


@pytest.mark.parametrize("activation,loss", [("tanh", "squared"), ("relu", "squared"),
                                             ("erf", "logistic")])
@pytest.mark.parametrize("bias", (False, True))
@pytest.mark.parametrize("alpha", (1.0, 10.0))
def test_empirical_ntk_drives_function_space_flow(activation, loss, bias, alpha):
    """d/dt f(x) = -(1/n) sum_j K(x, x_j) l'(f(x_j), y_j), whatever alpha."""
    rng = np.random.default_rng(4)
    n, m, d = 10, 40, 3
    P = particles(m, d, bias, rng)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) if loss == "squared" else rng.choice([-1.0, 1.0], n)
    Xq = rng.standard_normal((5, d))  # query points other than the training inputs
    V = ref.velocity(P, X, y, activation, loss, alpha, bias, 0.0)
    h = 1e-6
    dfdt = (ref.forward(P + h * V, Xq, activation, alpha, bias)
            - ref.forward(P - h * V, Xq, activation, alpha, bias)) / (2 * h)
    f = ref.forward(P, X, activation, alpha, bias)
    g = ref.LOSSES[loss][1](f, y)
    predicted = -lazy.empirical_ntk(P, Xq, X, activation) @ g / n
    np.testing.assert_allclose(dfdt, predicted, rtol=1e-6, atol=1e-9)


def test_empirical_ntk_is_order_one_in_m():
    """Duplicating particles leaves K unchanged; K at init is O(1) for every width."""
    rng = np.random.default_rng(5)
    P = particles(30, 4, True, rng)
    X = rng.standard_normal((6, 4))
    K = lazy.empirical_ntk(P, X, activation="relu")
    np.testing.assert_allclose(lazy.empirical_ntk(np.repeat(P, 7, axis=0), X, activation="relu"),
                               K, rtol=1e-12)
    K_inf = lazy.analytic_ntk(X, X, "relu", bias=True, tau=1.0)
    for m in (100, 10_000):
        Km = lazy.empirical_ntk(particles(m, 4, True, rng), X, activation="relu")
        assert 0.3 < np.linalg.norm(Km) / np.linalg.norm(K_inf) < 3.0


# ------------------------------------------------------------------------ analytic NTK
@pytest.mark.parametrize("activation,bias", [("relu", False), ("relu", True), ("erf", False),
                                             ("erf", True)])
def test_empirical_ntk_converges_to_analytic_at_rate_inverse_sqrt_m(activation, bias):
    rng = np.random.default_rng(6)
    d, tau = 5, 1.3
    X = rng.standard_normal((8, d))
    K_inf = lazy.analytic_ntk(X, X, activation, bias=bias, tau=tau)
    ms = np.array([100, 400, 1600, 6400, 25600])
    errors = []
    for m in ms:
        err = [np.linalg.norm(lazy.empirical_ntk(particles(m, d, bias, rng, tau), X,
                                                 activation=activation) - K_inf)
               for _ in range(6)]
        errors.append(np.mean(err) / np.linalg.norm(K_inf))
    errors = np.array(errors)
    slope = np.polyfit(np.log(ms), np.log(errors), 1)[0]
    assert -0.65 < slope < -0.35
    assert errors[-1] < 0.05


def monte_carlo_ntk(x1, x2, activation, bias, tau, c_init, N, rng, a_init="gaussian"):
    """Mean and standard error of grad phi(w, x1) . grad phi(w, x2) over N draws of w."""
    s, ds = ref.ACTIVATIONS[activation]
    d = x1.size
    a = tau * rng.standard_normal((N, d)) / (np.sqrt(d) if a_init == "gaussian" else 1.0)
    b = tau * rng.standard_normal(N) if bias else np.zeros(N)
    c = {"gaussian": lambda: rng.standard_normal(N),
         "sign": lambda: rng.choice([-1.0, 1.0], N),
         "uniform": lambda: rng.uniform(0.0, 1.0, N),
         "zero": lambda: np.zeros(N)}[c_init]() * tau
    z1, z2 = a @ x1 + b, a @ x2 + b
    g = c * c * ds(z1) * ds(z2) * (x1 @ x2 + (1.0 if bias else 0.0)) + s(z1) * s(z2)
    return g.mean(), g.std() / np.sqrt(N)


@pytest.mark.parametrize("activation,bias,tau,c_init,a_init", [
    ("relu", False, 1.0, "gaussian", "gaussian"), ("relu", True, 0.7, "sign", "gaussian"),
    ("relu", True, 1.2, "gaussian", "standard"), ("relu", False, 0.8, "uniform", "standard"),
    ("erf", False, 1.5, "gaussian", "gaussian"), ("erf", True, 1.0, "zero", "gaussian"),
    ("erf", False, 0.5, "sign", "standard"),
    ("linear", True, 0.8, "gaussian", "gaussian")])
def test_analytic_ntk_against_monte_carlo(activation, bias, tau, c_init, a_init):
    rng = np.random.default_rng(7)
    d = 3
    x = rng.standard_normal((3, d))
    pairs = [(x[0], x[0]), (x[0], x[1]), (x[1], -x[1]), (x[2], 0.5 * x[2] + 0.2 * x[0])]
    X1, X2 = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    K = lazy.analytic_ntk(X1, X2, activation, bias=bias, tau=tau, c_init=c_init, a_init=a_init)
    for k, (x1, x2) in enumerate(pairs):
        mean, se = monte_carlo_ntk(x1, x2, activation, bias, tau, c_init, 10**6, rng, a_init)
        assert abs(K[k, k] - mean) < 4 * se + 1e-12, (k, K[k, k], mean, se)


def test_analytic_ntk_special_cases():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    K = lazy.analytic_ntk(x, None, "relu")
    # orthogonal inputs, d = 2: E[s s] = 1/(4 pi), E[s' s'] = 1/4 times x.x' = 0
    assert K[0, 1] == pytest.approx(1 / (4 * np.pi), rel=1e-14)
    assert K[0, 0] == pytest.approx(0.75, rel=1e-14)
    # x = 0 without bias: z = 0 surely, relu(0) = relu'(0) = 0
    assert np.all(K[2] == 0.0) and np.all(K[:, 2] == 0.0)
    # relu is 1-homogeneous: K(tau) = tau^2 K(1) without bias
    np.testing.assert_allclose(lazy.analytic_ntk(x, x, "relu", tau=3.0), 9 * K, rtol=1e-13)
    # a bias with init.b = zero: the gradient in b still counts, the pre-activation not
    Kb0 = lazy.analytic_ntk(x, x, "relu", bias=True, b_init="zero")
    np.testing.assert_allclose(Kb0 - K, 0.5 * np.where(K > 0, 1.0, 0.0) * (np.eye(3) > 0)
                               + np.array([[0, 0.25, 0], [0.25, 0, 0], [0, 0, 0]]), atol=1e-14)


@pytest.mark.parametrize("bias", (False, True))
@pytest.mark.parametrize("a_init", ("gaussian", "standard"))
def test_relu_analytic_ntk_diagonal_is_exact(bias, a_init):
    """theta(x, x) = 0 exactly: K(x, x) = E[c^2] (|x|^2 + 1_bias) / 2 + Sigma_11 / 2."""
    rng = np.random.default_rng(17)
    d, tau = 7, 1.3
    X = rng.standard_normal((60, d)) * rng.uniform(0.01, 100.0, (60, 1))
    K = lazy.analytic_ntk(X, None, "relu", bias=bias, tau=tau, a_init=a_init)
    sq = np.sum(X ** 2, axis=1)
    sigma = tau ** 2 * (sq / (d if a_init == "gaussian" else 1.0) + bias)
    exact = tau ** 2 * (sq + bias) / 2 + sigma / 2
    np.testing.assert_allclose(np.diag(K), exact, rtol=1e-14, atol=0)
    # nearly parallel inputs: the kernel is continuous across the diagonal to rounding
    Kn = lazy.analytic_ntk(X, X * (1 + 1e-12), "relu", bias=False, tau=tau, a_init=a_init)
    Kd = lazy.analytic_ntk(X, X, "relu", bias=False, tau=tau, a_init=a_init)
    np.testing.assert_allclose(np.diag(Kn), np.diag(Kd) * (1 + 1e-12), rtol=1e-13)
    # off the diagonal, the arccos formula of the reference to 1e-12
    np.testing.assert_allclose(K, ref.analytic_ntk(X, X, "relu", bias, tau, tau ** 2,
                                                   standard_a=a_init == "standard"),
                               rtol=1e-11, atol=1e-12 * np.abs(K).max())


@pytest.mark.parametrize("activation", ("relu", "erf", "linear"))
def test_ntk_layers_split_the_kernel(activation):
    rng = np.random.default_rng(18)
    d, m = 3, 40
    X1, X2 = rng.standard_normal((5, d)), rng.standard_normal((4, d))
    kw = dict(activation=activation, bias=True, tau=0.9)
    both, first, second = (lazy.analytic_ntk(X1, X2, layers=part, **kw)
                           for part in ("both", "first", "second"))
    np.testing.assert_allclose(first + second, both, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(second, lazy.analytic_ntk(X1, X2, c_init="zero", **kw),
                               rtol=1e-14, atol=1e-15)
    # empirical: the first part is the Gram of the (a, b) gradients, the second of the c ones
    P = particles(m, d, True, rng)
    G1, G2 = grad_phi(P, X1, activation, True), grad_phi(P, X2, activation, True)
    ref_first = sum(G1[i, :, :-1] @ G2[i, :, :-1].T for i in range(m)) / m
    ref_second = sum(np.outer(G1[i, :, -1], G2[i, :, -1]) for i in range(m)) / m
    for part, want in (("first", ref_first), ("second", ref_second)):
        np.testing.assert_allclose(lazy.empirical_ntk(P, X1, X2, activation, layers=part), want,
                                   rtol=1e-12, atol=1e-14)
    with pytest.raises(InputError, match="layers"):
        lazy.empirical_ntk(P, X1, X2, activation, layers="third")


def test_analytic_ntk_for_reads_config_and_rejects_what_it_cannot_do():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((5, 3))
    cfg = Config.from_dict({"model": {"activation": "erf", "bias": True},
                            "init": {"tau": 0.5, "c": "sign"}, "data": {"d": 3}})
    np.testing.assert_allclose(lazy.analytic_ntk_for(cfg, X),
                               ref.analytic_ntk(X, X, "erf", True, 0.5, c2=0.25),
                               rtol=1e-12, atol=1e-15)
    cfg = cfg.with_overrides(['model.activation="relu"', 'init.a="standard"', 'init.b="zero"',
                              'init.c="zero"'])
    np.testing.assert_allclose(lazy.analytic_ntk_for(cfg, X),
                               ref.analytic_ntk(X, X, "relu", True, 0.5, c2=0.0,
                                                standard_a=True, gaussian_b=False),
                               rtol=1e-12, atol=1e-15)
    with pytest.raises(InputError, match="init.a"):
        lazy.analytic_ntk_for(cfg.with_overrides(['init.a="sphere"']), X)
    with pytest.raises(InputError, match="sigmoid"):
        lazy.analytic_ntk_for(cfg.with_overrides(['model.activation="sigmoid"']), X)
    with pytest.raises(InputError, match="columns"):
        lazy.analytic_ntk_for(cfg, X[:, :2])


def test_lambda_min():
    rng = np.random.default_rng(9)
    B = rng.standard_normal((12, 12))
    K = B @ B.T
    assert lazy.lambda_min(K) == pytest.approx(np.linalg.eigvalsh(K)[0], rel=1e-10)
    X = rng.standard_normal((40, 3))
    K = lazy.analytic_ntk(X, X, "relu", bias=True)
    lmin = lazy.lambda_min(K)
    assert lmin > 1e-6
    assert lmin == pytest.approx(np.linalg.eigvalsh(K)[0], rel=1e-8)
    with pytest.raises(InputError, match="square"):
        lazy.lambda_min(np.ones((2, 3)))


# -------------------------------------------------------------------------- diagnostics
def test_simple_diagnostics():
    rng = np.random.default_rng(10)
    P0 = particles(10, 3, True, rng)
    dP = rng.standard_normal(P0.shape)
    P = P0 + dP
    assert lazy.relative_displacement(P, P0) == pytest.approx(
        np.linalg.norm(dP) / np.linalg.norm(P0), rel=1e-14)
    assert lazy.scaled_displacement(P, P0, 5.0) == pytest.approx(
        5.0 * np.sqrt(np.sum(dP**2) / 10), rel=1e-14)
    np.testing.assert_allclose(lazy.balance(P, 3),
                               P[:, 4]**2 - np.sum(P[:, :3]**2, axis=1) - P[:, 3]**2, rtol=1e-14)
    np.testing.assert_allclose(lazy.balance(P[:, [0, 1, 2, 4]], 3),
                               P[:, 4]**2 - np.sum(P[:, :3]**2, axis=1), rtol=1e-14)
    assert lazy.ntk_change(P0, P0, rng.standard_normal((4, 3)), "relu") == 0.0
    with pytest.raises(InputError, match="columns"):
        lazy.tangent_output(P0, P0, rng.standard_normal((4, 5)), "relu", 1.0)
    with pytest.raises(InputError, match="shape"):
        lazy.relative_displacement(P0, P0[:5])
    with pytest.raises(InputError, match="activation"):
        lazy.empirical_ntk(P0, rng.standard_normal((4, 3)), activation="swish")


def _train(P0, X, y, activation, alpha, t, lr):
    P = P0.copy()
    V = np.empty_like(P)
    for _ in range(int(round(t / lr))):
        risk_and_velocity(P, X, y, ACT[activation], LOSS["squared"], alpha, 0.0, V)
        P += lr * V
    return P


@pytest.mark.slow
def test_lazy_training_diagnostics_scale_with_alpha():
    """Symmetric init, fixed time t: alpha |dP| tends to a constant, f - Tf and dK vanish.

    From a symmetric initialisation the particles of each pair (a, b, c), (a, b, -c) move
    by (da, db, dc) and (-da, -db, dc) to first order, so the second-order terms of the
    pair cancel in f and the first-order terms in K: alpha^2 (f - Tf) and alpha^2 dK tend
    to constants (the general bounds are O(1/alpha)).
    """
    rng = np.random.default_rng(11)
    n, m, d = 20, 100, 3
    half = particles(m // 2, d, True, rng)
    P0 = np.repeat(half, 2, axis=0)
    P0[1::2, -1] *= -1
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0])
    assert np.all(forward(P0, X, ACT["tanh"], 1.0) == 0.0)
    out = {}
    for alpha in (100.0, 1000.0, 10000.0):
        P = _train(P0, X, y, "tanh", alpha, t=2.0, lr=0.05)
        out[alpha] = np.array([lazy.scaled_displacement(P, P0, alpha),
                               alpha * lazy.relative_displacement(P, P0),
                               alpha**2 * lazy.tangent_gap(P, P0, X, "tanh", alpha),
                               alpha**2 * lazy.ntk_change(P, P0, X, "tanh")])
    assert np.all(out[100.0] > 0)
    np.testing.assert_allclose(out[1000.0], out[10000.0], rtol=0.02)
    np.testing.assert_allclose(out[100.0], out[10000.0], rtol=0.25)
    # the training actually moved f: the lazy limit is not trivial
    P = _train(P0, X, y, "tanh", 10000.0, t=2.0, lr=0.05)
    assert np.mean((forward(P, X, ACT["tanh"], 10000.0) - y) ** 2) < 0.9 * np.mean(y**2)


# --------------------------------------------------------------------- convex baseline
def _config(**model):
    return Config.from_dict({"model": {"activation": "relu", "bias": True, **model},
                             "init": {"tau": 1.0}, "data": {"d": 4, "n_train": 300,
                                                             "n_test": 300}})


def test_baseline_recovers_a_random_features_model():
    cfg = _config()
    rng = np.random.default_rng(12)
    M = 60
    F = draw_features(cfg, M, np.random.default_rng(99))
    truth = RandomFeatures(F, rng.standard_normal(M) * M, "relu", True)
    X, Xt = rng.standard_normal((300, 4)), rng.standard_normal((100, 4))
    data = Dataset(X, truth.predict(X), Xt, truth.predict(Xt))
    train, test, model = convex_baseline(cfg, data, M, ridge=0.0, rng=np.random.default_rng(99))
    np.testing.assert_array_equal(model.features, F)
    assert train < 1e-20 * np.mean(data.y_train**2)
    assert test < 1e-20 * np.mean(data.y_test**2)
    # c is identified on the units active somewhere on the data; dead relu units get c = 0
    active = np.any(X @ F[:, :4].T + F[:, 4] > 0, axis=0)
    assert 0 < np.sum(~active) < 10
    np.testing.assert_allclose(model.c[active], truth.c[active], rtol=1e-7,
                               atol=1e-7 * np.abs(truth.c).max())
    assert np.all(np.abs(model.c[~active]) < 1e-10)
    # the model is a network of eq. (1) with alpha = 1
    np.testing.assert_allclose(model.predict(Xt),
                               ref.forward(model.particles, Xt, "relu", 1.0, True), rtol=1e-12)


@pytest.mark.slow
def test_baseline_train_loss_decreases_with_M():
    cfg = _config()
    data = make_dataset(cfg, np.random.default_rng(13))
    losses = [convex_baseline(cfg, data, M, ridge=1e-10, rng=np.random.default_rng(M))[0]
              for M in (10, 40, 160, 1000)]
    assert all(b < 0.8 * a for a, b in zip(losses, losses[1:])), losses
    # more features than points: interpolation
    assert losses[-1] < 1e-6 * losses[0]


@pytest.mark.parametrize("bias,activation,M", [(True, "relu", 50), (False, "tanh", 500)])
def test_baseline_matches_normal_equations(bias, activation, M):
    cfg = _config(bias=bias, activation=activation)
    data = make_dataset(cfg, np.random.default_rng(14))
    ridge = 1e-3
    train, test, model = convex_baseline(cfg, data, M, ridge, rng=np.random.default_rng(15))
    d = 4
    F = model.features
    Z = data.x_train @ F[:, :d].T + (F[:, d] if bias else 0.0)
    Phi = ref.ACTIVATIONS[activation][0](Z) / M
    n = data.x_train.shape[0]
    c = np.linalg.solve(Phi.T @ Phi / n + ridge / M * np.eye(M), Phi.T @ data.y_train / n)
    np.testing.assert_allclose(model.c, c, rtol=1e-6, atol=1e-8 * np.abs(c).max())
    assert train == pytest.approx(0.5 * np.mean((Phi @ c - data.y_train) ** 2), rel=1e-8)
    assert model.M == M and model.ridge == ridge


def test_baseline_rejects_bad_input():
    cfg = _config()
    data = make_dataset(cfg, np.random.default_rng(16))
    with pytest.raises(InputError, match="loss"):
        convex_baseline(cfg.with_overrides(['loss.name="logistic"']), data, 10)
    with pytest.raises(InputError, match="M"):
        convex_baseline(cfg, data, 0)
    with pytest.raises(InputError, match="ridge"):
        convex_baseline(cfg, data, 10, ridge=-1.0)
    with pytest.raises(InputError, match="columns"):
        fit_random_features(np.ones((3, 7)), data.x_train, data.y_train, "relu")


def test_tangent_kernel_and_pattern_flips_go_over_particle_blocks(monkeypatch):
    """Blocks of particles give the kernel of the whole set (memory independent of m)."""
    from meanfield.gram import pattern_flips
    from meanfield.lazy import ntk
    rng = np.random.default_rng(3)
    P = rng.standard_normal((500, 5))
    P0 = P + 0.2 * rng.standard_normal(P.shape)
    X = rng.standard_normal((12, 3))
    whole = lazy.empirical_ntk(P, X, activation="tanh")
    flips = pattern_flips(P, P0, X)
    monkeypatch.setattr(ntk, "BLOCK_ENTRIES", 12 * 7)
    assert len(ntk.particle_blocks(500, 12)) == 72
    np.testing.assert_allclose(lazy.empirical_ntk(P, X, activation="tanh"), whole, rtol=1e-12, atol=1e-14)
    assert pattern_flips(P, P0, X) == flips
