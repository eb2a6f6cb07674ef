"""Self-consistency of the NumPy reference (``tests/reference.py``).

The reference is what the package is tested against, so it is itself checked here:
the analytic velocity against central finite differences of the objective, the
derivatives of every activation and loss against finite differences of their values,
the vectorised forward pass against an explicit double loop, and the comparison
itself against deliberately wrong velocities (so that these tests can fail).
"""

import math

import numpy as np
import pytest

import reference as ref

ACTIVATIONS = sorted(ref.ACTIVATIONS)
LOSSES = sorted(ref.LOSSES)
ALPHAS = [1.0, 7.0, 100.0]
WEIGHT_DECAYS = [0.0, 0.1]
RTOL = 1e-6
M, D_IN, N = 6, 3, 5


def _case(activation, loss, bias, seed=20240601):
    """Small random problem (m=6, d=3, n=5) with a fixed seed.

    For the logistic loss the labels are +-1. For relu, every pre-activation is checked
    to be well away from the kink (a step h = 1e-6 moves z by at most h (1 + |x|_1)), so
    that a finite-difference step cannot cross it.
    """
    case_seed = [seed, ACTIVATIONS.index(activation), LOSSES.index(loss), int(bias)]
    rng = np.random.default_rng(case_seed)
    D = D_IN + 2 if bias else D_IN + 1
    P = rng.standard_normal((M, D))
    X = rng.standard_normal((N, D_IN))
    if loss == "logistic":
        y = rng.choice([-1.0, 1.0], size=N)
    else:
        y = rng.standard_normal(N)
    if activation == "relu":
        A, b, _ = ref.split(P, D_IN, bias)
        Z = A @ X.T + b[:, None]
        assert np.min(np.abs(Z)) > 1e-4, "random case too close to a relu kink; change seed"
    return P, X, y


def _relerr(V, V_ref):
    """Norm-wise relative error ||V - V_ref|| / ||V_ref|| (Frobenius norms)."""
    return np.linalg.norm(V - V_ref) / np.linalg.norm(V_ref)


# --------------------------------------------------------------------------------------
# velocity vs finite differences of J
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("weight_decay", WEIGHT_DECAYS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_velocity_matches_finite_differences(activation, loss, bias, alpha, weight_decay):
    P, X, y = _case(activation, loss, bias)
    args = (X, y, activation, loss, alpha, bias, weight_decay)
    V = ref.velocity(P, *args)
    V_fd = ref.fd_velocity(P, *args)
    assert V.shape == P.shape
    assert np.all(np.isfinite(V))
    assert np.linalg.norm(V_fd) > 1e-8  # the comparison is not vacuous
    err = _relerr(V, V_fd)
    assert err < RTOL, f"relative error {err:.3e}"


# --------------------------------------------------------------------------------------
# the check above can fail
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "mutation",
    ["alpha", "no_weight_decay", "sign", "activation_derivative", "loss_derivative"],
)
def test_velocity_check_detects_wrong_velocities(mutation, monkeypatch):
    """Plausible bugs in the velocity must fail the finite-difference comparison."""
    activation, loss, bias, alpha, weight_decay = "tanh", "logistic", True, 7.0, 0.1
    P, X, y = _case(activation, loss, bias)
    V_fd = ref.fd_velocity(P, X, y, activation, loss, alpha, bias, weight_decay)
    kwargs = dict(activation=activation, loss=loss, alpha=alpha, bias=bias,
                  weight_decay=weight_decay)
    if mutation == "alpha":
        kwargs["alpha"] = alpha * (1 + 1e-3)
    elif mutation == "no_weight_decay":
        kwargs["weight_decay"] = 0.0
    elif mutation == "activation_derivative":
        s, _ = ref.ACTIVATIONS["tanh"]
        monkeypatch.setitem(ref.ACTIVATIONS, "tanh",
                            (s, lambda z: (1.0 - np.tanh(z) ** 2) * (1 + 1e-3)))
    elif mutation == "loss_derivative":
        ell, ell_prime = ref.LOSSES["logistic"]
        monkeypatch.setitem(ref.LOSSES, "logistic",
                            (ell, lambda f, y: ell_prime(f, y) * (1 + 1e-3)))
    V = ref.velocity(P, X, y, **kwargs)
    if mutation == "sign":
        V = -V
    assert _relerr(V, V_fd) > 100 * RTOL


# --------------------------------------------------------------------------------------
# activations and losses: derivatives, conventions, stability
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_derivative_matches_finite_differences(activation):
    s, s_prime = ref.ACTIVATIONS[activation]
    z = np.linspace(-4.0, 4.0, 81) + 0.0123  # avoids z = 0 exactly (relu kink)
    h = 1e-6
    fd = (s(z + h) - s(z - h)) / (2 * h)
    np.testing.assert_allclose(s_prime(z), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_derivative_matches_finite_differences(loss):
    ell, ell_prime = ref.LOSSES[loss]
    f = np.linspace(-5.0, 5.0, 41)
    h = 1e-6
    for y in (-1.0, 1.0, 0.3):
        fd = (ell(f + h, y) - ell(f - h, y)) / (2 * h)
        np.testing.assert_allclose(ell_prime(f, y), fd, rtol=1e-6, atol=1e-9)


def test_activation_values():
    z = np.array([-2.0, 0.0, 1.5])
    expected = {
        "relu": [0.0, 0.0, 1.5],
        "sigmoid": [1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-1.5))],
        "tanh": [math.tanh(-2.0), 0.0, math.tanh(1.5)],
        "softplus": [math.log1p(math.exp(-2.0)), math.log(2.0), math.log1p(math.exp(1.5))],
        "erf": [math.erf(-2.0), 0.0, math.erf(1.5)],
        "linear": [-2.0, 0.0, 1.5],
    }
    assert set(expected) == set(ref.ACTIVATIONS)
    for name, values in expected.items():
        np.testing.assert_allclose(ref.ACTIVATIONS[name][0](z), values, rtol=1e-14,
                                   atol=1e-15, err_msg=name)


def test_relu_derivative_at_zero_is_zero():
    _, relu_prime = ref.ACTIVATIONS["relu"]
    np.testing.assert_array_equal(relu_prime(np.array([-1.0, 0.0, 1e-300, 2.0])),
                                  [0.0, 0.0, 1.0, 1.0])


def test_stable_at_large_arguments():
    softplus, softplus_prime = ref.ACTIVATIONS["softplus"]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(softplus(np.array([1000.0, -1000.0])), [1000.0, 0.0])
        np.testing.assert_allclose(softplus_prime(np.array([1000.0, -1000.0])), [1.0, 0.0])
        ell, ell_prime = ref.LOSSES["logistic"]
        f = np.array([-1000.0, 1000.0])
        np.testing.assert_allclose(ell(f, 1.0), [1000.0, 0.0])
        np.testing.assert_allclose(ell_prime(f, 1.0), [-1.0, 0.0])


# --------------------------------------------------------------------------------------
# model: split, forward, objective, gd, teacher
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_split(bias):
    D = D_IN + 2 if bias else D_IN + 1
    P = np.arange(4 * D, dtype=np.float64).reshape(4, D)
    A, b, c = ref.split(P, D_IN, bias)
    np.testing.assert_array_equal(A, P[:, :D_IN])
    np.testing.assert_array_equal(b, P[:, D_IN] if bias else np.zeros(4))
    np.testing.assert_array_equal(c, P[:, -1])
    with pytest.raises(ValueError):
        ref.split(P, D_IN, not bias)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_explicit_loop(activation, bias):
    P, X, _ = _case(activation, "squared", bias)
    s = ref.ACTIVATIONS[activation][0]
    alpha = 7.0
    expected = np.zeros(N)
    for j in range(N):
        for i in range(M):
            a, c = P[i, :D_IN], P[i, -1]
            b = P[i, D_IN] if bias else 0.0
            expected[j] += alpha / M * c * float(s(np.float64(a @ X[j] + b)))
    np.testing.assert_allclose(ref.forward(P, X, activation, alpha, bias), expected,
                               rtol=1e-12, atol=1e-14)


def test_objective_formula():
    P, X, y = _case("tanh", "squared", True)
    alpha, lam = 7.0, 0.1
    f = ref.forward(P, X, "tanh", alpha, True)
    R = np.mean(0.5 * (f - y) ** 2)
    assert ref.risk(P, X, y, "tanh", "squared", alpha, True) == pytest.approx(R, rel=1e-14)
    J = R / alpha**2 + lam / M * sum(0.5 * P[i] @ P[i] for i in range(M))
    assert ref.objective(P, X, y, "tanh", "squared", alpha, True, lam) == pytest.approx(
        J, rel=1e-14)


def test_gd_is_euler_and_does_not_mutate():
    P, X, y = _case("softplus", "squared", True)
    P0 = P.copy()
    args = (X, y, "softplus", "squared", 7.0, True, 0.1)
    lr, steps = 0.05, 3
    Q = P.copy()
    for _ in range(steps):
        Q = Q + lr * ref.velocity(Q, *args)
    out = ref.gd(P, *args, lr, steps)
    np.testing.assert_array_equal(out, Q)
    np.testing.assert_array_equal(P, P0)
    same = ref.gd(P, *args, lr, 0)
    np.testing.assert_array_equal(same, P)
    assert same is not P


def test_gd_decreases_objective():
    P, X, y = _case("tanh", "squared", True)
    args = (X, y, "tanh", "squared", 1.0, True, 0.01)
    J0 = ref.objective(P, *args)
    J1 = ref.objective(ref.gd(P, *args, 0.05, 20), *args)
    assert J1 < J0


def test_teacher_forward():
    rng = np.random.default_rng(7)
    m0 = 4
    A = rng.standard_normal((m0, D_IN))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    c = np.array([1.0, -1.0, 1.0, 1.0])
    T = np.column_stack([A, c])
    X = rng.standard_normal((N, D_IN))
    expected = np.tanh(X @ A.T) @ c / m0
    np.testing.assert_allclose(ref.teacher_forward(T, X, "tanh"), expected, rtol=1e-13)
    np.testing.assert_array_equal(ref.teacher_forward(T, X, "relu"),
                                  ref.forward(T, X, "relu", 1.0, False))


def test_the_benchmarks_numpy_step_is_the_reference_velocity():
    """benchmarks/run.py times a vectorised NumPy step: it must compute the same velocity."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from run import numpy_velocity

    rng = np.random.default_rng(3)
    P, X, y = rng.standard_normal((7, 5)), rng.standard_normal((11, 4)), rng.standard_normal(11)
    V = ref.velocity(P, X, y, "relu", "squared", 1.0, False, 0.0)
    np.testing.assert_allclose(numpy_velocity(P, X, y), V, rtol=1e-12, atol=1e-14)
