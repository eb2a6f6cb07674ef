"""Closed-form population kernels, risk and velocity (meanfield.kernels.population).

Monte-Carlo comparisons use 1e6 (kernels, risk) or 4e5 (velocity) samples with a fixed seed.
The tolerance is k standard errors, the standard error being estimated from the same samples
(sample standard deviation / sqrt(n) for means of i.i.d. terms; the spread of equal-size
batch estimates / sqrt(#batches) for the velocity, whose full-sample value is exactly the
mean of its batch values).  Every comparison also carries a 1e-12 absolute floor, for the
cases where the integrand vanishes identically (e.g. relu on anti-parallel weights).
"""

import numba
import numpy as np
import pytest

import reference as ref
from meanfield.kernels.elementwise import ERF, LOGISTIC, RELU, SIGMOID, SQUARED, TANH
from meanfield.kernels.population import (
    BLOCK_ELEMS,
    pair_kernel,
    pair_kernel_grad,
    population_risk,
    population_risk_and_velocity,
    supported,
)
from meanfield.kernels.structs import make_population

CASES = [("relu", RELU, False), ("relu", RELU, True), ("erf", ERF, False)]
IDS = ["relu-gauss", "relu-sphere", "erf-gauss"]
N_MC = 1_000_000
CHUNK = 200_000



def pop_risk(P, T, act, alpha, noise, sphere):
    """population_risk with the arguments spelled out."""
    return population_risk(P, make_population(T, act, alpha, 0.0, noise, sphere))


def pop_risk_velocity(P, T, act, alpha, lam, noise, sphere, V):
    """population_risk_and_velocity with the arguments spelled out."""
    return population_risk_and_velocity(P, make_population(T, act, alpha, lam, noise, sphere), V)

def sample(rng, n, d, sphere):
    X = rng.standard_normal((n, d))
    if sphere:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def pairs(d, seed=0):
    """Pairs (u_k, w_k): generic, nearly parallel, (nearly) anti-parallel, unequal norms, zero."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u *= 1.3 / np.linalg.norm(u)
    e = 1e-3 * rng.standard_normal(d)
    U, W = [], []
    for w in (0.7 * u + e,              # nearly parallel, different norm
              u.copy(),                  # identical
              -2.0 * u + e,              # nearly anti-parallel
              -0.5 * u,                  # exactly anti-parallel
              rng.standard_normal(d),    # generic
              0.2 * rng.standard_normal(d),
              3.0 * rng.standard_normal(d),
              np.zeros(d)):              # zero second argument
        U.append(u)
        W.append(w)
    U.append(0.4 * rng.standard_normal(d))
    W.append(rng.standard_normal(d))
    U.append(np.zeros(d))                # zero first argument
    W.append(rng.standard_normal(d))
    return np.array(U), np.array(W)


def mc_pairs(name, U, W, sphere, seed=1):
    """MC mean and standard error of s(u.x)s(w.x) and s'(u.x) x s(w.x), pair by pair."""
    s, ds = ref.ACTIVATIONS[name]
    rng = np.random.default_rng(seed)
    d = U.shape[1]
    k1 = np.zeros(len(U)), np.zeros(len(U))
    k2 = np.zeros((len(U), d)), np.zeros((len(U), d))
    for _ in range(N_MC // CHUNK):
        X = sample(rng, CHUNK, d, sphere)
        ZU, ZW = X @ U.T, X @ W.T
        prod = s(ZU) * s(ZW)                              # (n, pairs)
        k1[0][:] += prod.sum(0)
        k1[1][:] += (prod ** 2).sum(0)
        g = (ds(ZU) * s(ZW))[:, :, None] * X[:, None, :]  # (n, pairs, d)
        k2[0][:] += g.sum(0)
        k2[1][:] += (g ** 2).sum(0)

    def stats(acc):
        mean = acc[0] / N_MC
        var = acc[1] / N_MC - mean ** 2
        return mean, np.sqrt(np.maximum(var, 0.0) / (N_MC - 1))

    return stats(k1), stats(k2)


@pytest.mark.parametrize("name,act,sphere", CASES, ids=IDS)
def test_pair_kernel_and_gradient_against_monte_carlo(name, act, sphere):
    d = 5
    U, W = pairs(d)
    K = pair_kernel(act, sphere, U, W)
    G = pair_kernel_grad(act, sphere, U, W)
    (k_mc, k_se), (g_mc, g_se) = mc_pairs(name, U, W, sphere)
    k = np.diag(K)
    g = G[np.arange(len(U)), np.arange(len(U))]
    assert np.all(np.abs(k - k_mc) <= 4 * k_se + 1e-12), (k, k_mc, k_se)
    assert np.all(np.abs(g - g_mc) <= 4 * g_se + 1e-12), (g, g_mc, g_se)
    # the MC errors are small enough for this to be a real test
    assert np.max(k_se) < 5e-3 * np.max(np.abs(k))
    # zero arguments: kappa = 0 (s(0) = 0 for relu and erf); relu gradient defined as 0 at u = 0
    assert k[7] == 0.0 and k[-1] == 0.0
    if name == "relu":
        assert np.all(G[-1] == 0.0)
        assert k[3] == pytest.approx(0.0, abs=1e-15)  # anti-parallel relu: disjoint supports


@pytest.mark.parametrize("name,act,sphere", CASES, ids=IDS)
def test_pair_kernel_structure_and_gradient_fd(name, act, sphere):
    rng = np.random.default_rng(2)
    d = 4
    U = rng.standard_normal((5, d))
    W = rng.standard_normal((3, d)) * np.array([[0.3], [1.0], [2.5]])
    K = pair_kernel(act, sphere, U, W)
    assert K.shape == (5, 3)
    np.testing.assert_allclose(pair_kernel(act, sphere, W, U), K.T, rtol=1e-14, atol=1e-15)
    KU = pair_kernel(act, sphere, U, U)
    assert np.min(np.linalg.eigvalsh(KU)) > -1e-12          # a Gram matrix: PSD
    if name == "relu":
        np.testing.assert_allclose(np.diag(KU), np.sum(U ** 2, 1) / (2 * (d if sphere else 1)),
                                   rtol=1e-14)
    G = pair_kernel_grad(act, sphere, U, W)
    h = 1e-6
    for k in range(d):
        E = np.zeros_like(U)
        E[:, k] = h
        fd = (pair_kernel(act, sphere, U + E, W) - pair_kernel(act, sphere, U - E, W)) / (2 * h)
        np.testing.assert_allclose(G[:, :, k], fd, rtol=1e-6, atol=1e-8)


def teacher_student(d, m, m0, seed):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((m, d + 1))
    P[:, :d] /= np.sqrt(d)
    T = rng.standard_normal((m0, d + 1))
    T[:, :d] /= np.linalg.norm(T[:, :d], axis=1, keepdims=True)
    T[:, d] = np.where(np.arange(m0) % 2 == 0, 1.0, -1.0)
    return P, T


@pytest.mark.parametrize("name,act,sphere", CASES, ids=IDS)
@pytest.mark.parametrize("alpha,noise", [(1.0, 0.0), (1.5, 0.4)])
def test_population_risk_against_monte_carlo(name, act, sphere, alpha, noise):
    d, m, m0 = 5, 6, 3
    P, T = teacher_student(d, m, m0, seed=3)
    if sphere:  # on the sphere s(a.x) is ~1/sqrt(d) smaller: scale up so the risk is O(1)
        P[:, :d] *= np.sqrt(d)
        T[:, :d] *= np.sqrt(d)
    R = pop_risk(P, T, act, alpha, noise, sphere)
    rng = np.random.default_rng(4)
    s1 = s2 = 0.0
    for _ in range(N_MC // CHUNK):
        X = sample(rng, CHUNK, d, sphere)
        y = ref.teacher_forward(T, X, name) + noise * rng.standard_normal(CHUNK)
        loss = 0.5 * (ref.forward(P, X, name, alpha, False) - y) ** 2
        s1 += loss.sum()
        s2 += (loss ** 2).sum()
    mean = s1 / N_MC
    se = np.sqrt((s2 / N_MC - mean ** 2) / (N_MC - 1))
    assert abs(R - mean) <= 4 * se, (R, mean, se)
    assert se < 0.01 * mean


def objective(P, T, act, alpha, lam, noise, sphere):
    m = P.shape[0]
    penalty = lam / (2 * m) * np.sum(P * P)
    return pop_risk(P, T, act, alpha, noise, sphere) / alpha ** 2 + penalty


@pytest.mark.parametrize("name,act,sphere", CASES, ids=IDS)
@pytest.mark.parametrize("alpha", [1.0, 10.0])
@pytest.mark.parametrize("lam", [0.0, 0.1])
@pytest.mark.parametrize("doubled", [False, True], ids=["generic", "doubled"])
def test_velocity_is_minus_m_grad_J(name, act, sphere, alpha, lam, doubled):
    d, m, m0 = 4, 6, 3
    P, T = teacher_student(d, m, m0, seed=5)
    if doubled:  # symmetric init: pairs (a, c), (a, -c) -- identical input weights
        P[m // 2:, :d] = P[: m // 2, :d]
        P[m // 2:, d] = -P[: m // 2, d] + 0.1  # keep f != 0 so every term is exercised
    V = np.empty_like(P)
    R = pop_risk_velocity(P, T, act, alpha, lam, 0.2, sphere, V)
    assert R == pop_risk(P, T, act, alpha, 0.2, sphere)
    V_fd = ref.fd_minus_m_grad(lambda Q: objective(Q, T, act, alpha, lam, 0.2, sphere), P,
                               h=1e-5)
    assert np.linalg.norm(V - V_fd) / np.linalg.norm(V_fd) < 1e-6
    np.testing.assert_allclose(V, V_fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(V_fd)))


@pytest.mark.parametrize("name,act,sphere", CASES, ids=IDS)
@pytest.mark.parametrize("alpha,lam,noise", [(1.0, 0.0, 0.0), (10.0, 0.1, 0.5)])
def test_velocity_against_empirical_velocity(name, act, sphere, alpha, lam, noise):
    """Population velocity = limit of ref.velocity on teacher data; 5 batch standard errors.

    The full-sample empirical velocity is the mean of 40 equal-size batch velocities, so its
    standard error is estimated by std(batches) / sqrt(40); the standardised error then follows
    (approximately) Student's t with 39 degrees of freedom, P(|t| > 5) ~ 1.3e-5 per component.
    """
    d, m, m0 = 4, 6, 3
    P, T = teacher_student(d, m, m0, seed=6)
    if sphere:
        P[:, :d] *= np.sqrt(d)
        T[:, :d] *= np.sqrt(d)
    V = np.empty_like(P)
    pop_risk_velocity(P, T, act, alpha, lam, noise, sphere, V)
    rng = np.random.default_rng(7)
    nb, size = 40, 10_000
    Vb = np.empty((nb,) + P.shape)
    for b in range(nb):
        X = sample(rng, size, d, sphere)
        y = ref.teacher_forward(T, X, name) + noise * rng.standard_normal(size)
        Vb[b] = ref.velocity(P, X, y, name, "squared", alpha, False, lam)
    V_emp = Vb.mean(0)
    se = Vb.std(0, ddof=1) / np.sqrt(nb)
    assert np.all(np.abs(V - V_emp) <= 5 * se + 1e-12), np.max(np.abs(V - V_emp) / se)
    assert np.max(se) < 0.05 * np.max(np.abs(V))  # the check has teeth


@pytest.mark.parametrize("name,act,sphere", CASES, ids=IDS)
def test_student_equal_to_teacher_is_a_fixed_point(name, act, sphere):
    d = 5
    _, T = teacher_student(d, 1, 4, seed=8)
    V = np.empty_like(T)
    R = pop_risk_velocity(T.copy(), T, act, 1.0, 0.0, 0.3, sphere, V)
    assert R == pytest.approx(0.5 * 0.3 ** 2, abs=1e-14)
    assert np.max(np.abs(V)) < 1e-13


def test_zero_input_weight_relu():
    """|a_i| = 0: kappa = 0 and the relu kernel gradient is 0, like relu'(0) = 0 empirically."""
    d = 3
    P, T = teacher_student(d, 4, 2, seed=9)
    P[1, :d] = 0.0
    V = np.empty_like(P)
    pop_risk_velocity(P, T, RELU, 1.0, 0.2, 0.0, False, V)
    assert np.all(np.isfinite(V))
    np.testing.assert_array_equal(V[1], -0.2 * P[1])


def test_deterministic_thread_independent_no_sampling():
    """Bit-identical across calls and thread counts, and Numba's RNG is not touched."""

    @numba.njit
    def seed(s):
        np.random.seed(s)

    @numba.njit
    def draw():
        return np.random.random()

    d, m, m0 = 6, 120, 5
    P, T = teacher_student(d, m, m0, seed=10)
    for _, act, sphere in CASES:
        V1, V2, V3 = (np.empty_like(P) for _ in range(3))
        seed(123)
        R1 = pop_risk_velocity(P, T, act, 2.0, 0.1, 0.3, sphere, V1)
        after = draw()
        seed(123)
        expected = draw()
        assert after == expected  # the kernel consumed no random numbers
        R2 = pop_risk_velocity(P, T, act, 2.0, 0.1, 0.3, sphere, V2)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            R3 = pop_risk_velocity(P, T, act, 2.0, 0.1, 0.3, sphere, V3)
            K1 = pair_kernel(act, sphere, P[:, :d], T[:, :d])
        finally:
            numba.set_num_threads(threads)
        assert R1 == R2 == R3
        np.testing.assert_array_equal(V1, V2)
        np.testing.assert_array_equal(V1, V3)
        np.testing.assert_array_equal(K1, pair_kernel(act, sphere, P[:, :d], T[:, :d]))


def test_supported_table():
    for sphere in (False, True):
        assert supported(RELU, RELU, sphere, False, SQUARED)
        assert supported("relu", "relu", sphere, False, "squared")
        assert not supported(RELU, RELU, sphere, True, SQUARED)      # bias
        assert not supported(RELU, RELU, sphere, False, LOGISTIC)    # loss
        assert not supported(RELU, ERF, sphere, False, SQUARED)      # mixed activations
        assert not supported(ERF, RELU, sphere, False, SQUARED)
        assert not supported(TANH, TANH, sphere, False, SQUARED)
        assert not supported(SIGMOID, SIGMOID, sphere, False, SQUARED)
    assert supported(ERF, ERF, False, False, SQUARED)
    assert supported("erf", "erf", False, False, "squared")
    assert not supported(ERF, ERF, True, False, SQUARED)             # erf on the sphere
    assert not supported(ERF, ERF, False, True, SQUARED)


@pytest.mark.parametrize("act,sphere", [(ERF, True), (TANH, False), (SIGMOID, True)])
def test_unsupported_raises(act, sphere):
    P, T = teacher_student(3, 2, 2, seed=11)
    with pytest.raises(ValueError):
        pair_kernel(act, sphere, P[:, :3], T[:, :3])
    with pytest.raises(ValueError):
        pop_risk(P, T, act, 1.0, 0.0, sphere)
    with pytest.raises(ValueError):
        pop_risk_velocity(P, T, act, 1.0, 0.0, 0.0, sphere, np.empty_like(P))


@pytest.mark.parametrize("alpha,lam", [(1.0, 0.0), (7.0, 0.3)])
def test_relu_gaussian_against_the_numpy_closed_form(alpha, lam):
    """The compiled relu kernel sums against the plain NumPy arc-cosine formulas, to 1e-12."""
    P, T = teacher_student(6, 40, 5, seed=11)
    V = np.empty_like(P)
    R = pop_risk_velocity(P, T, RELU, alpha, lam, 0.0, False, V)
    R_ref, V_ref = ref.relu_population_velocity(P, T, alpha, lam)
    assert R == pytest.approx(R_ref, rel=1e-12)
    assert np.max(np.abs(V - V_ref)) < 1e-12 * np.max(np.abs(V_ref))


def test_several_row_blocks_against_the_numpy_closed_form():
    """m + m0 large enough for two row blocks of the pair sums (the last one partial)."""
    m, m0 = 2100, 7
    assert BLOCK_ELEMS // (m + m0) < m + m0 < 2 * (BLOCK_ELEMS // (m + m0))
    P, T = teacher_student(4, m, m0, seed=12)
    V = np.empty_like(P)
    R = pop_risk_velocity(P, T, RELU, 2.0, 0.1, 0.0, False, V)
    R_ref, V_ref = ref.relu_population_velocity(P, T, 2.0, 0.1)
    assert R == pytest.approx(R_ref, rel=1e-12)
    assert np.max(np.abs(V - V_ref)) < 1e-12 * np.max(np.abs(V_ref))
    assert pop_risk(P, T, RELU, 2.0, 0.0, False) == pytest.approx(R_ref, rel=1e-12)
