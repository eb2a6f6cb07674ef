"""meanfield.analysis: tables of runs, power-law fits, Wasserstein distances, reference runs."""

import csv
import itertools
import math
import sys
import warnings

import numpy as np
import pytest
from scipy.optimize import linprog

import reference as ref
from meanfield import Config, open_run, simulate
from meanfield.analysis import (SlicedDistanceWarning, Table, convergence, convergence_vs_m,
                                distance_to_reference, fit_power_law, load_table, run_row,
                                series_summary, sliced_wasserstein2, wasserstein2,
                                wasserstein2_1d)
from meanfield.errors import InputError


def _lp_w2(P, Q):
    """W2 by the transport linear programme (independent of the assignment route)."""
    P, Q = np.asarray(P, float).reshape(len(P), -1), np.asarray(Q, float).reshape(len(Q), -1)
    n, m = len(P), len(Q)
    C = ((P[:, None, :] - Q[None, :, :]) ** 2).sum(-1)
    A = np.zeros((n + m, n * m))
    for i in range(n):
        A[i, i * m:(i + 1) * m] = 1
    for j in range(m):
        A[n + j, j::m] = 1
    b = np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)])
    res = linprog(C.ravel(), A_eq=A, b_eq=b, bounds=(0, None), method="highs")
    assert res.status == 0
    return math.sqrt(max(res.fun, 0.0))


# ------------------------------------------------------------------ exact W2
def test_w2_of_a_shift_is_the_length_of_the_shift():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((40, 5))
    v = rng.standard_normal(5)
    assert wasserstein2(P, P + v) == pytest.approx(np.linalg.norm(v), rel=1e-12)
    assert wasserstein2(P + v, P, method="exact") == pytest.approx(np.linalg.norm(v), rel=1e-12)


def test_w2_of_permuted_copies_is_zero():
    rng = np.random.default_rng(1)
    P = rng.standard_normal((50, 4))
    assert wasserstein2(P, P[rng.permutation(50)]) == 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_exact_w2_matches_brute_force_over_permutations(n):
    rng = np.random.default_rng(10 + n)
    P, Q = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    best = min(np.mean(np.sum((P - Q[list(s)]) ** 2, axis=1))
               for s in itertools.permutations(range(n)))
    assert wasserstein2(P, Q) == pytest.approx(math.sqrt(best), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("n, m", [(2, 3), (4, 6), (3, 7), (13, 17)])
def test_exact_w2_between_unequal_sizes_matches_the_transport_lp(n, m):
    rng = np.random.default_rng(n * m)
    P, Q = rng.standard_normal((n, 2)), rng.standard_normal((m, 2)) + 0.5
    assert wasserstein2(P, Q, method="exact") == pytest.approx(_lp_w2(P, Q), rel=1e-7)
    # "auto" solves unequal sizes exactly too, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wasserstein2(P, Q) == wasserstein2(P, Q, method="exact")


def test_exact_w2_between_coprime_sizes_beyond_the_old_assignment_limit():
    """lcm(101, 103) = 10403 points per side: exact now, where replication refused."""
    rng = np.random.default_rng(11)
    P, Q = rng.standard_normal((101, 3)), rng.standard_normal((103, 3))
    v = np.array([0.5, -1.0, 2.0])
    w = wasserstein2(P, Q)
    assert w == pytest.approx(_lp_w2(P, Q), rel=1e-7)
    # translating one measure by v: W2^2 grows by |v|^2 + 2 v . (mean(Q) - mean(P))
    shifted = wasserstein2(P, Q + v)
    assert shifted ** 2 == pytest.approx(
        w ** 2 + v @ v + 2 * v @ (Q.mean(0) - P.mean(0)), rel=1e-10)


def test_duplicated_particles_are_the_same_measure():
    P = np.random.default_rng(2).standard_normal((7, 4))
    assert wasserstein2(P, np.repeat(P, 3, axis=0), method="exact") == pytest.approx(0, abs=1e-12)
    assert sliced_wasserstein2(P, np.repeat(P, 2, axis=0), rng=0) == pytest.approx(0, abs=1e-12)


def test_bad_inputs_are_refused():
    P = np.zeros((3, 2))
    with pytest.raises(ValueError, match="dimensions"):
        wasserstein2(P, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        wasserstein2(P, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="method"):
        wasserstein2(P, P, method="emd")
    with pytest.raises(InputError, match="cost matrix"):
        wasserstein2(np.zeros((20000, 2)), np.zeros((9967, 2)), method="exact")
    with pytest.raises(InputError, match="non-empty"):
        wasserstein2(np.zeros((0, 2)), P)


# ------------------------------------------------------------------------ 1-D
def test_1d_w2_between_unequal_sizes_against_the_quantile_integral():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(5), rng.exponential(size=7)
    K = 5 * 7 * 40  # a multiple of both grids: midpoint rule is exact on step functions
    u = (np.arange(K) + 0.5) / K
    qx = np.sort(x)[np.ceil(u * 5).astype(int) - 1]
    qy = np.sort(y)[np.ceil(u * 7).astype(int) - 1]
    direct = math.sqrt(np.mean((qx - qy) ** 2))
    assert wasserstein2_1d(x, y) == pytest.approx(direct, rel=1e-12)
    assert wasserstein2_1d(x, y) == pytest.approx(_lp_w2(x, y), rel=1e-7)
    # 1-D inputs go the exact route under "auto" whatever the sizes
    assert wasserstein2(x, y) == pytest.approx(direct, rel=1e-12)
    # and equal sizes reduce to sorted matching
    z = rng.standard_normal(5)
    assert wasserstein2_1d(x, z) == pytest.approx(
        math.sqrt(np.mean((np.sort(x) - np.sort(z)) ** 2)), rel=1e-12)


# --------------------------------------------------------------------- sliced
def test_sliced_w2_of_a_shift():
    rng = np.random.default_rng(4)
    D = 4
    P = rng.standard_normal((60, D))
    v = rng.standard_normal(D)
    # exact identity for given directions: the 1-D W2 of a shift is |theta . v|
    theta = rng.standard_normal((50, D))
    u = theta / np.linalg.norm(theta, axis=1, keepdims=True)
    sw = sliced_wasserstein2(P, P + v, directions=theta)
    assert sw ** 2 == pytest.approx(np.mean((u @ v) ** 2), rel=1e-12)
    # in expectation over the sphere: |v| / sqrt(D), within Monte-Carlo error
    K = 4000
    sw = sliced_wasserstein2(P, P + v, n_projections=K, rng=5)
    # (theta . e)^2 ~ Beta(1/2, (D-1)/2): mean 1/D, variance 2(D-1) / (D^2 (D+2))
    sd = math.sqrt(2 * (D - 1) / (D ** 2 * (D + 2)) / K)
    assert abs(sw ** 2 / np.dot(v, v) - 1 / D) < 5 * sd
    # unequal sizes: a measure and the shift of a re-weighted copy of it
    Q = np.concatenate([P, P[:30]]) + v
    assert 0 < sliced_wasserstein2(P, Q, rng=0) <= wasserstein2(P, Q, method="exact")


def test_sliced_is_below_exact_on_random_cases():
    rng = np.random.default_rng(6)
    for trial in range(20):
        n, D = rng.integers(2, 12), rng.integers(1, 5)
        P, Q = rng.standard_normal((n, D)), 2 * rng.standard_normal((n, D)) + 1
        w = wasserstein2(P, Q, method="exact")
        theta = rng.standard_normal((64, D))
        u = theta / np.linalg.norm(theta, axis=1, keepdims=True)
        sw = sliced_wasserstein2(P, Q, directions=theta)
        assert sw <= w * (1 + 1e-12)
        # sharper: SW2^2 <= lambda_max(mean theta theta^T) W2^2  (-> W2^2 / D on the sphere)
        lam = np.linalg.eigvalsh(u.T @ u / len(u))[-1]
        assert sw ** 2 <= lam * w ** 2 * (1 + 1e-12) + 1e-15


def test_auto_gives_the_sliced_distance_only_above_max_exact_and_warns():
    rng = np.random.default_rng(7)
    P, Q = rng.standard_normal((6, 3)), rng.standard_normal((9, 3))
    with pytest.warns(SlicedDistanceWarning, match="sliced"):
        assert wasserstein2(P, Q, max_exact=8, rng=1) == sliced_wasserstein2(P, Q, rng=1)
    with pytest.warns(SlicedDistanceWarning):
        assert wasserstein2(P, P[:6] + 1.0, max_exact=5, rng=1) == sliced_wasserstein2(
            P, P[:6] + 1.0, rng=1)
    # asking for the sliced distance by name is no substitution: no warning
    P2 = rng.standard_normal((12, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sw = wasserstein2(P2, P2 + 1.0, method="sliced", rng=2)
    # shift by v = (1, 1, 1): SW2 = |v| / sqrt(D) = 1 up to Monte-Carlo error
    assert sw == pytest.approx(1.0, rel=0.15)


# ------------------------------------------------------------------ power laws
def test_fit_power_law_recovers_slope_and_prefactor():
    rng = np.random.default_rng(8)
    x = np.repeat(np.logspace(1, 4, 8), 3)
    y = 3.0 * x ** -0.5 * (1 + 0.01 * rng.standard_normal(x.size))
    fit = fit_power_law(x, y)
    assert fit.slope == pytest.approx(-0.5, abs=0.01)
    assert fit.prefactor == pytest.approx(3.0, rel=0.05)
    assert fit.slope_ci[0] < -0.5 < fit.slope_ci[1]
    assert fit.intercept_ci[0] < math.log(3.0) < fit.intercept_ci[1]
    assert fit(100.0) == pytest.approx(0.3, rel=0.02)
    exact = fit_power_law([1, 2, 4], [5.0, 2.5, 1.25])
    assert exact.slope == pytest.approx(-1, abs=1e-12)
    assert exact.slope_ci[1] - exact.slope_ci[0] < 1e-10
    two = fit_power_law([1, 2], [1.0, 2.0])
    assert two.slope == pytest.approx(1.0) and math.isnan(two.slope_ci[0])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2, 3], [1.0, 0.0, 1.0])


def test_convergence_vs_m_on_a_synthetic_table():
    rng = np.random.default_rng(9)
    rows, values = [], {}
    for m in (8, 16, 32, 64, 128):
        for seed in range(6):
            y = 2.0 * m ** -0.5 * (1 + 0.05 * rng.standard_normal())
            values.setdefault(m, []).append(y)
            rows.append({"model.m": m, "run.seed": seed, "status": "completed",
                         "scaling.regime": "mean_field", "final.test_loss": y})
            rows.append({"model.m": m, "run.seed": seed, "status": "completed",
                         "scaling.regime": "ntk", "final.test_loss": 5 * m ** -1.0})
    rows.append({"model.m": 8, "run.seed": 99, "status": "diverged",
                 "scaling.regime": "mean_field", "final.test_loss": 1e30})
    table = Table(rows)
    res = convergence_vs_m(table.where({"scaling.regime": "mean_field"}), "test_loss")
    assert res.m.tolist() == [8, 16, 32, 64, 128]
    assert res.count.tolist() == [6] * 5
    for k, m in enumerate(res.m):
        v = np.array(values[int(m)])
        assert res.mean[k] == pytest.approx(v.mean(), rel=1e-12)
        assert res.sem[k] == pytest.approx(v.std(ddof=1) / math.sqrt(6), rel=1e-12)
    assert res.slope_ci[0] < -0.5 < res.slope_ci[1]
    assert res.slope == pytest.approx(-0.5, abs=0.05)
    assert math.exp(res.intercept) == pytest.approx(2.0, rel=0.1)
    split = convergence_vs_m(table, "final.test_loss", by="scaling.regime")
    assert set(split) == {"mean_field", "ntk"}
    assert split["ntk"].slope == pytest.approx(-1.0, abs=1e-12)
    with_diverged = convergence_vs_m(table.where(**{"scaling.regime": "mean_field"}),
                                     "test_loss", completed_only=False)
    assert with_diverged.count[0] == 7


def test_convergence_drops_non_finite_values_and_groups():
    x = [1, 1, 4, 4, 16, 16]
    y = [1.0, np.nan, 0.5, 0.5, 0.25, np.inf]
    res = convergence(x, y)
    assert res.count.tolist() == [1, 2, 1]
    assert math.isnan(res.sem[0]) and res.sem[1] == 0.0
    assert res.slope == pytest.approx(-0.5)
    both = convergence(x * 2, [1, 1, .5, .5, .25, .25] + [1, 1, .25, .25, 1 / 16, 1 / 16],
                       groups=["a"] * 6 + ["b"] * 6)
    assert both["a"].slope == pytest.approx(-0.5) and both["b"].slope == pytest.approx(-1.0)


# --------------------------------------------------------------------- tables
TINY = {
    "data": {"d": 3, "n_train": 20, "n_test": 30},
    "train": {"lr": 0.1, "steps": 20},
    "record": {"every": 5, "snapshot_every": 10},
}


def _tiny(m, seed, **train):
    cfg = {k: dict(v) for k, v in TINY.items()}
    cfg["model"] = {"m": m}
    cfg["run"] = {"seed": seed}
    cfg["train"].update(train)
    return Config.from_dict(cfg)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for m in (4, 8):
        for seed in (0, 1):
            path = folder / f"m{m}-s{seed}.h5"
            simulate(_tiny(m, seed), out=path).close()
            paths.append(path)
    diverged = folder / "diverged.h5"
    simulate(_tiny(4, 2, lr=200.0), out=diverged).close()
    return folder, paths, diverged


def test_load_table_reads_runs_and_skips_broken_files(runs, tmp_path):
    folder, paths, diverged = runs
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.h5"
    raw = paths[0].read_bytes()
    truncated.write_bytes(raw[:len(raw) // 2])
    missing = tmp_path / "missing.h5"
    with pytest.warns(UserWarning, match="3 unreadable"):
        table = load_table([*paths, corrupt, truncated, diverged, missing])
    assert len(table) == 5
    assert [p for p, _ in table.errors] == [str(corrupt), str(truncated), str(missing)]
    assert all(msg for _, msg in table.errors)
    assert "truncated" in table.errors[1][1] and "no such file" in table.errors[2][1]
    assert table.column("model.m").tolist() == [4, 4, 8, 8, 4]
    assert table.column("run.seed").tolist() == [0, 1, 0, 1, 2]
    assert table.column("train.lr").tolist() == [0.1] * 4 + [200.0]
    assert table.column("status").tolist() == ["completed"] * 4 + ["diverged"]
    assert table.column("path").tolist() == [str(p) for p in paths] + [str(diverged)]
    assert table.column("alpha").tolist() == [1.0] * 5
    assert table.column("time")[:4].tolist() == [2.0] * 4
    assert table.column("model.bias").dtype == bool
    with open_run(paths[2]) as run:
        for name in run.observable_names:
            v = run.observable(name).value
            assert table[2][f"final.{name}"] == v[-1]
            assert table[2][f"best.{name}"] == v.min()
    assert len(table.where({"model.m": 8})) == 2
    assert len(table.where({"model.m": 4, "status": "completed"})) == 2
    assert len(table.where(status="diverged")) == 1
    with pytest.raises(KeyError, match="model.mm"):
        table.where({"model.mm": 4})
    with pytest.raises(KeyError, match="nope"):
        table.column("nope")


def test_truncated_copies_are_reported_not_waited_on(runs, tmp_path):
    # SWMR readers skip HDF5's truncation check and retry reads for minutes
    _, paths, _ = runs
    raw = paths[0].read_bytes()
    cuts = [30, 1000, len(raw) // 3, len(raw) - 1]
    for cut in cuts:
        (tmp_path / f"cut{cut}.h5").write_bytes(raw[:cut])
    with pytest.warns(UserWarning):
        table = load_table(tmp_path)
    assert len(table) == 0 and len(table.errors) == len(cuts)
    assert all("truncated" in msg for _, msg in table.errors)


def test_load_table_from_a_folder_and_open_runs(runs):
    folder, paths, _ = runs
    table = load_table(folder, observables=["test_loss", "no_such_observable"])
    assert len(table) == 5 and not table.errors
    assert "final.train_loss" not in table.columns
    assert np.all(np.isnan(table.column("final.no_such_observable")))
    with open_run(paths[1]) as run:
        one = load_table(run)
        assert one.column("final.test_loss")[0] == run.observable("test_loss").value[-1]
        row = run_row(run, ["test_loss"])
        assert row["model.m"] == 4 and row["run.seed"] == 1 and row["status"] == "completed"
        assert row["step"] == run.steps[-1] and row["time"] == run.times[-1]
        assert row["best.test_loss"] == np.nanmin(run.observable("test_loss").value)
        assert not any(k.startswith("final.") and k != "final.test_loss" for k in row)
        assert run.status == "completed"  # left open and usable


def test_best_is_nan_safe():
    final, best = series_summary([np.nan, 2.0, 0.5, 1.0, np.nan])
    assert math.isnan(final) and best == 0.5
    assert all(math.isnan(v) for v in series_summary([np.nan, np.nan]))
    assert all(math.isnan(v) for v in series_summary([]))


def test_table_columns_with_missing_values():
    t = Table([{"a": 1, "s": "x", "flag": True}, {"a": 2.5, "flag": False}, {"b": 3}])
    assert t.columns == ["a", "s", "flag", "b"]
    a = t.column("a")
    assert a.dtype == float and a[:2].tolist() == [1.0, 2.5] and math.isnan(a[2])
    assert t.column("s").tolist() == ["x", None, None]
    assert t.column("flag").tolist() == [True, False, None]
    assert len(Table().column("anything")) == 0


def test_to_csv_round_trip(runs, tmp_path):
    _, paths, diverged = runs
    table = load_table([*paths, diverged])
    out = tmp_path / "table.csv"
    table.to_csv(out)
    with open(out, newline="") as fh:
        back = list(csv.DictReader(fh))
    assert len(back) == len(table)
    assert list(back[0]) == table.columns
    for row, orig in zip(back, table):
        for key, value in orig.items():
            if isinstance(value, float):
                got = float(row[key])
                assert got == value or (math.isnan(got) and math.isnan(value))
            else:
                assert row[key] == str(value)


def test_to_pandas(monkeypatch):
    table = Table([{"model.m": 4, "final.test_loss": 0.1}])
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        df = table.to_pandas()
        assert df.shape == (1, 2) and df["model.m"].iloc[0] == 4
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        table.to_pandas()


# ------------------------------------------------------- reference distances
def test_distance_of_a_run_to_itself_is_zero(runs):
    _, paths, _ = runs
    d = distance_to_reference(paths[0], paths[0])
    assert d.method == "exact"
    assert d.time.tolist() == [0.0, 1.0, 2.0]
    assert d.step.tolist() == d.reference_step.tolist() == [0, 10, 20]
    assert np.all(d.parameter == 0) and np.all(d.function == 0)


def test_distance_between_two_widths(runs):
    _, paths, _ = runs
    small, large = paths[0], paths[2]  # m = 4 and m = 8, seed 0: same data
    d = distance_to_reference(small, large)
    assert d.method == "exact"  # both widths within max_exact
    sliced = distance_to_reference(small, large, method="sliced", n_projections=200, rng=0)
    assert sliced.method == "sliced"
    assert d.time.tolist() == sliced.time.tolist() == [0.0, 1.0, 2.0]
    assert np.all(d.parameter > 0) and np.all(d.function > 0)
    # the documented directions: rng's first 200 standard normal draws in R^D, normalised
    with open_run(small) as r, open_run(large) as R:
        X = r.data.x_test
        theta = np.random.default_rng(0).standard_normal((200, r.particles(0).shape[1]))
        for k in range(3):
            P, Q = r.particles(k), R.particles(k)
            f = ref.forward(P, X, "relu", r.alpha, False)
            F = ref.forward(Q, X, "relu", R.alpha, False)
            assert d.function[k] == pytest.approx(np.sqrt(np.mean((f - F) ** 2)), rel=1e-10)
            assert sliced.function[k] == d.function[k]
            assert d.parameter[k] == pytest.approx(_lp_w2(P, Q), rel=1e-7)
            assert sliced.parameter[k] == pytest.approx(ref.sliced_w2(P, Q, theta), rel=1e-12)
            assert sliced.parameter[k] <= d.parameter[k] * (1 + 1e-12)
        # Run objects work as well as paths, and explicit times pick snapshots
        one = distance_to_reference(r, R, times=[1.0])
        assert one.step.tolist() == [10] and one.parameter[0] == d.parameter[1]
        assert r.status == "completed"  # left open and usable
    with pytest.raises(InputError, match="no snapshot at t = 0.5"):
        distance_to_reference(small, large, times=[0.5])
    with pytest.raises(InputError, match="method"):
        distance_to_reference(small, large, method="emd")


def test_distance_needs_common_times_and_shapes(runs, tmp_path):
    _, paths, _ = runs
    other = tmp_path / "other.h5"
    simulate(_tiny(4, 0, lr=0.07), out=other).close()  # snapshots at t = 0, 0.7, 1.4
    d = distance_to_reference(other, paths[0])
    assert d.time.tolist() == [0.0]
    wide = tmp_path / "wide.h5"
    cfg = _tiny(4, 0).to_dict()
    cfg["data"]["d"] = 2
    simulate(Config.from_dict(cfg), out=wide).close()
    with pytest.raises(InputError, match="different shapes"):
        distance_to_reference(wide, paths[0])
