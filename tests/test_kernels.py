"""Compiled kernels against the plain NumPy reference and finite differences."""

import itertools

import numba
import numpy as np
import pytest
from conftest import make_problem

import reference as ref
from meanfield.activations import IDS as ACT
from meanfield.activations import NAMES as ACTIVATIONS
from meanfield.kernels import forward, risk, risk_and_velocity
from meanfield.kernels import make_model, make_population, model_risk_and_velocity, tangent_forward
from meanfield.kernels import workspace
from meanfield.kernels.training import COLUMNS, Data, gd_chunk, make_loop
from meanfield.kernels.network import DIRECT_MAX_WORK, tile_rows
from meanfield.kernels.tiles import (BLOCK_PARTICLES, MAX_TILE_ELEMS, MIN_TILE_ROWS,
                                    tile_shape)
from meanfield.losses import IDS as LOSS

# (n, m, d): the first runs the plain-loop path, the second the GEMM path (one tile)
SIZES = [(7, 6, 3), (300, 40, 8)]
CASES = list(itertools.product(ACTIVATIONS, ("squared", "logistic"), (False, True)))
TWO_PASS_M = MAX_TILE_ELEMS // MIN_TILE_ROWS + BLOCK_PARTICLES // 2
"""Particles enough for the two-pass path, the last block partial."""


def test_sizes_cover_both_paths():
    assert SIZES[0][0] * SIZES[0][1] * SIZES[0][2] < DIRECT_MAX_WORK
    assert SIZES[1][0] * SIZES[1][1] * SIZES[1][2] >= DIRECT_MAX_WORK


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("act,loss,bias", CASES)
def test_forward_risk_velocity_match_reference(act, loss, bias, size):
    n, m, d = size
    P, X, y = make_problem(n, m, d, bias, loss)
    for alpha in (1.0, np.sqrt(m), 100.0):
        for lam in (0.0, 0.3):
            f = forward(P, X, ACT[act], alpha)
            assert rel(f, ref.forward(P, X, act, alpha, bias)) < 1e-12
            V = np.empty_like(P)
            R = risk_and_velocity(P, X, y, ACT[act], LOSS[loss], alpha, lam, V)
            assert R == pytest.approx(ref.risk(P, X, y, act, loss, alpha, bias), rel=1e-12)
            assert risk(P, X, y, ACT[act], LOSS[loss], alpha) == pytest.approx(R, rel=1e-12)
            V_ref = ref.velocity(P, X, y, act, loss, alpha, bias, lam)
            assert rel(V, V_ref) < 1e-12


@pytest.mark.parametrize("act,loss,bias", CASES)
def test_velocity_is_minus_m_grad_J(act, loss, bias):
    P, X, y = make_problem(9, 5, 3, bias, loss, seed=3)
    if act == "relu":  # keep finite differences away from the kink
        A = P[:, :3]
        b = P[:, 3] if bias else 0.0
        assert np.min(np.abs(X @ A.T + b)) > 1e-4
    for alpha, lam in ((1.0, 0.0), (10.0, 0.2)):
        V = np.empty_like(P)
        risk_and_velocity(P, X, y, ACT[act], LOSS[loss], alpha, lam, V)
        V_fd = ref.fd_velocity(P, X, y, act, loss, alpha, bias, lam)
        assert np.linalg.norm(V - V_fd) / np.linalg.norm(V_fd) < 1e-6


def run_gd(P, X, y, act, loss, alpha, lam, lr, steps, every=1):
    """``steps`` GD steps through the compiled whole-chunk loop (records before steps k % every == 0)."""
    P = P.copy()
    obs = np.empty((-(-steps // every), len(COLUMNS)))
    model = make_model(act, loss, alpha, lam, False, P.copy())
    pop = make_population(np.zeros((1, X.shape[1] + 1)), act, alpha, lam, 0.0, False)
    loop = make_loop(lr, 0.0, 0, steps, every, -1, False)
    done = gd_chunk(P, model, Data(X, y, X, y), pop, loop, np.empty((0,) + P.shape), obs)
    assert done == steps
    return P, obs


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("act,loss,bias", CASES)
def test_50_gd_steps_match_reference(act, loss, bias, size):
    n, m, d = size
    P, X, y = make_problem(n, m, d, bias, loss, seed=1)
    for alpha in (1.0, np.sqrt(m), 100.0):
        lr = 0.05
        P_k, obs = run_gd(P, X, y, act, loss, alpha, 0.1, lr, 50, every=10)
        P_ref = ref.gd(P, X, y, act, loss, alpha, bias, 0.1, lr, 50)
        assert rel(P_k, P_ref) < 1e-12
        # the recorded train loss at step 40 is the risk of the reference state at step 40
        P_40 = ref.gd(P, X, y, act, loss, alpha, bias, 0.1, lr, 40)
        assert obs[4, 0] == pytest.approx(ref.risk(P_40, X, y, act, loss, alpha, bias), rel=1e-12)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads to compare")
@pytest.mark.parametrize("n,m,d", [(3000, 64, 20), (600, 2048, 4), (50, TWO_PASS_M, 3)])
def test_results_do_not_depend_on_thread_count(n, m, d):
    """One thread and all threads give bit-identical results (one-pass path with one tile
    and with several, two-pass path): the lanes' sums have a fixed order."""
    P, X, y = make_problem(n, m, d, True, "squared", seed=2)
    saved = numba.get_num_threads()
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            V = np.empty_like(P)
            R = risk_and_velocity(P, X, y, ACT["tanh"], LOSS["squared"], 3.0, 0.0, V)
            results.append((R, V))
    finally:
        numba.set_num_threads(saved)
    assert numba.get_num_threads() == saved
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("act,loss,bias", [("tanh", "logistic", True), ("relu", "squared", False),
                                           ("softplus", "squared", True)])
def test_two_pass_path_over_particle_blocks(act, loss, bias):
    """m large enough for the two-pass path, the last particle block partial."""
    n, m, d = 40, TWO_PASS_M, 3
    t, mb = tile_shape(n, m, d)
    assert 0 < t and mb < m and m % mb != 0
    P0, X, y = make_problem(n, m, d, bias, loss, seed=5)
    P = P0 + 0.1 * np.random.default_rng(6).standard_normal(P0.shape)
    V = np.empty_like(P)
    R = risk_and_velocity(P, X, y, ACT[act], LOSS[loss], 3.0, 0.2, V)
    assert R == pytest.approx(ref.risk(P, X, y, act, loss, 3.0, bias), rel=1e-12)
    assert rel(V, ref.velocity(P, X, y, act, loss, 3.0, bias, 0.2)) < 1e-12
    assert rel(forward(P, X, ACT[act], 3.0), ref.forward(P, X, act, 3.0, bias)) < 1e-12
    T_ref = ref.tangent_forward(P, P0, X, act, 3.0, bias)
    assert rel(tangent_forward(P, P0, X, ACT[act], 3.0), T_ref) < 1e-12
    R = model_risk_and_velocity(P, make_model(act, loss, 3.0, 0.0, True, P0), X, y, V,
                                workspace(n, m, d, True))
    assert R == pytest.approx(np.mean(ref.LOSSES[loss][0](T_ref, y)), rel=1e-12)


@pytest.mark.parametrize("act,loss,bias", [("relu", "squared", False), ("tanh", "logistic", True),
                                           ("erf", "squared", True)])
def test_several_tiles_network_and_tangent_model(act, loss, bias):
    """A system large enough for three data tiles (the last one partial) on the GEMM path."""
    n, m, d = 300, 2048, 2
    t = tile_rows(n, m, d)
    assert 0 < t and 2 * t < n < 3 * t
    P0, X, y = make_problem(n, m, d, bias, loss, seed=8)
    P = P0 + 0.1 * np.random.default_rng(9).standard_normal(P0.shape)
    alpha = 3.0
    V = np.empty_like(P)
    R = risk_and_velocity(P, X, y, ACT[act], LOSS[loss], alpha, 0.2, V)
    assert R == pytest.approx(ref.risk(P, X, y, act, loss, alpha, bias), rel=1e-12)
    assert rel(V, ref.velocity(P, X, y, act, loss, alpha, bias, 0.2)) < 1e-12
    assert rel(forward(P, X, ACT[act], alpha), ref.forward(P, X, act, alpha, bias)) < 1e-12
    T_ref = ref.tangent_forward(P, P0, X, act, alpha, bias)
    assert rel(tangent_forward(P, P0, X, ACT[act], alpha), T_ref) < 1e-12
    R = model_risk_and_velocity(P, make_model(act, loss, alpha, 0.0, True, P0), X, y, V,
                                workspace(n, m, d, True))
    assert R == pytest.approx(np.mean(ref.LOSSES[loss][0](T_ref, y)), rel=1e-12)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_values_and_derivatives_elementwise(act):
    """The vectorised activations (kernels/vecmath.py) against the reference, entry by entry,
    to a relative 1e-13 (absolute 1e-15) from -40 to 40 and at the extremes."""
    from meanfield.activations import derivative, value
    z = np.concatenate([np.linspace(-40.0, 40.0, 20001), [-800.0, -1e-300, 0.0, 1e-300, 800.0],
                        np.logspace(-12, 1, 200), -np.logspace(-12, 1, 200)]).reshape(3, -1)
    s, ds = ref.ACTIVATIONS[act]
    for got, want in ((value(act, z), s(z)), (derivative(act, z), ds(z))):
        assert got.shape == z.shape
        assert np.allclose(got, want, rtol=1e-13, atol=1e-15)


def test_a_change_to_any_kernel_module_invalidates_every_cached_kernel(tmp_path):
    """The cache stamp covers all kernel modules, not only a function's own file."""
    import os
    from meanfield.kernels import cache
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    before = cache.kernels_stamp(tmp_path)
    os.utime(tmp_path / "b.py", ns=(1, 1))
    assert cache.kernels_stamp(tmp_path) != before
    from meanfield.kernels import network
    for locator in cache.caching.CacheImpl._locator_classes:   # as Numba picks one
        found = locator.from_function(network.forward.py_func, network.__file__)
        if found is not None:
            break
    assert isinstance(found, cache._KernelsStamp)
    assert found.get_source_stamp() == cache.kernels_stamp()
