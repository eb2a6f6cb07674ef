"""The experiments of experiments/ end to end at their --quick size, and the tour notebook.

Each script runs its sweeps through meanfield.sweep into a temporary work folder, writes
its CSV and PNG into a temporary data folder (never the committed data/), and can
redraw the PNG from the CSV alone.  The checks are on the numbers, not only on shapes.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
sys.path.insert(0, str(EXPERIMENTS))          # experiments/common.py, as the scripts import it
PNG = b"\x89PNG\r\n\x1a\n"


def _python(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("NUMBA_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _rows(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Run an experiment's --quick version once; return (data folder, CSV header, rows)."""
    done = {}

    def run(name):
        if name not in done:
            root = tmp_path_factory.mktemp(name)
            res = _python(EXPERIMENTS / name / "run.py", "--quick", "--work", root / "work",
                          "--data", root / "data", cwd=root)
            assert res.returncode == 0, f"{name}: {res.stdout}\n{res.stderr}"
            assert (root / "data" / f"{name}.png").read_bytes()[:8] == PNG
            done[name] = (root / "data", *_rows(root / "data" / f"{name}.csv"))
        return done[name]

    return run


def _module(name):
    """experiments/<name>/run.py as a module (its folder's common.py importable)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"{name}_run", EXPERIMENTS / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _floats(rows, column):
    return np.array([float(r[column]) for r in rows])


@pytest.mark.slow
def test_trajectories_2d_published_and_own_panels(quick):
    _, columns, rows = quick("trajectories_2d")
    assert columns == ["panel", "tau", "alpha", "kind", "particle", "step", "x", "y", "sign",
                       "final_train_loss", "final_population_loss"]
    published = [r for r in rows if r["panel"] == "published"]
    assert {(float(r["tau"]), float(r["alpha"])) for r in published} == {(0.2, 16.0), (2.0, 16.0)}
    own = [r for r in rows if r["panel"] == "own"]
    assert {float(r["alpha"]) for r in own} == {1.0, 100.0}
    for tau in (0.2, 2.0):
        runs = [r for r in published if float(r["tau"]) == tau]
        teacher = [r for r in runs if r["kind"] == "teacher"]
        assert len(teacher) == 3                       # unit neurons, drawn as arrows
        np.testing.assert_allclose(np.hypot(_floats(teacher, "x"), _floats(teacher, "y")), 1.0)
        start = [r for r in runs if r["kind"] == "student" and r["step"] == "0"]
        assert [int(r["particle"]) for r in start] == list(range(16))
        xy = np.column_stack([_floats(start, "x"), _floats(start, "y")])
        radius = np.hypot(*xy.T)                       # |c| |a| = tau^2 u, u ~ U(0, 1)
        assert np.all((radius > 0) & (radius < tau ** 2))
        np.testing.assert_array_equal(xy[0::2], xy[1::2])   # symmetric pairs, opposite c

    def travel(alpha):
        runs = [r for r in own if float(r["alpha"]) == alpha and r["kind"] == "student"]
        xy = np.column_stack([_floats(runs, "x"), _floats(runs, "y")]).reshape(-1, 16, 2)
        return np.linalg.norm(xy[-1] - xy[0], axis=1).mean()

    assert travel(100.0) < 0.1 * travel(1.0)


@pytest.mark.slow
def test_loss_vs_scale_published_settings(quick):
    _, columns, rows = quick("loss_vs_scale")
    assert columns[:8] == ["panel", "tau", "trial", "init_tau", "alpha", "lr", "steps", "status"]
    assert [r["panel"] for r in rows] == ["gd", "gd", "sgd", "sgd"]
    tau = _floats(rows, "tau")
    np.testing.assert_array_equal(tau, [0.01, 1.0, 0.01, 1.0])
    step = np.minimum(10.0, 0.1 / tau[:2] ** 2)        # test_vs_scale.jl
    # tau <= 0.1: init tau, alpha = m, lr = m step; tau > 0.1: init 1, alpha m tau^2, lr 5
    np.testing.assert_allclose(_floats(rows[:2], "init_tau"), [0.01, 1.0])
    np.testing.assert_allclose(_floats(rows[:2], "alpha"), [50.0, 50.0])
    np.testing.assert_allclose(_floats(rows[:2], "lr"), [50 * step[0], 50 * step[1]], rtol=1e-6)
    eta = np.minimum(0.25 / tau[2:] ** 2, 25.0)         # populationSGD.jl
    np.testing.assert_allclose(_floats(rows[2:], "init_tau"), tau[2:] * np.sqrt(200), rtol=1e-6)
    np.testing.assert_allclose(_floats(rows[2:], "lr"), 100 * eta / 200, rtol=1e-6)
    np.testing.assert_allclose(_floats(rows[2:], "alpha"), 10.0)
    for r in rows[:2]:
        assert float(r["best_test_loss"]) <= float(r["final_test_loss"]) < float(r["start_loss"])
    # symmetric init: f0 = 0, so the starting loss is the teacher's alone, whatever tau
    assert rows[0]["start_loss"] == rows[1]["start_loss"]


@pytest.mark.slow
def test_loss_vs_scale_large_tau_runs_are_the_published_iteration():
    """init 1 with alpha = m tau^2, lr = 5 is init tau with alpha = m, lr = m 0.1 / tau^2."""
    from common import train
    run = _module("loss_vs_scale")
    tau, steps = 0.5, 40
    mapped = run.gd_config(tau, 0, steps)
    direct = run.gd_config(tau, 0, steps)
    direct["init"]["tau"], direct["scaling"]["alpha"] = tau, 50.0
    direct["train"]["lr"] = 50 * 0.1 / tau ** 2
    assert mapped["init"]["tau"] == 1.0
    a, b = train(mapped)["test_loss"], train(direct)["test_loss"]
    assert a[-1] < 0.9 * a[0]
    np.testing.assert_allclose(a, b, rtol=1e-10)


def _population_sgd_on_a_fixed_batch(theta, w, X, Y0, eta, steps):
    """populationSGD.jl's loop (theta-step x d), its batch held fixed; the batch losses."""
    m, d = theta.shape
    losses = []
    for _ in range(steps):
        temp = np.maximum(theta @ X.T, 0.0)
        Y = w @ temp / m
        losses.append(0.5 * np.mean((Y - Y0) ** 2))
        grad_r = (Y - Y0) / len(Y0)
        grad_w = temp @ grad_r
        grad_theta = (w[:, None] * (temp > 0)) @ (X * grad_r[:, None])
        theta, w = theta - eta * grad_theta * d, w - eta * grad_w
    return np.array(losses)


@pytest.mark.slow
def test_population_sgd_quirks_carried_exactly():
    """alpha = sqrt(d), lr = d eta k, tau sqrt(1/k) (teacher / 200): the authors' iteration."""
    from common import train
    from meanfield.config import as_config
    from meanfield.data import make_dataset
    from meanfield.state import seed_streams
    run = _module("loss_vs_scale")
    tau, steps = 0.3, 30
    cfg = run.sgd_config(tau, 0, steps)
    cfg["train"]["algorithm"] = "gd"                  # one fixed batch of 200 points
    cfg["record"]["every"] = 1
    ours = train(cfg, keep_every=steps)
    data = make_dataset(as_config(cfg), seed_streams(cfg["run"]["seed"]).data)
    k, d = run.SGD_K, run.D
    P0 = ours["particles"][0]
    theirs = _population_sgd_on_a_fixed_batch(np.sqrt(d * k) * P0[:, :-1], np.sqrt(k) * P0[:, -1],
                                              data.x_train, k * data.y_train,
                                              min(0.25 / tau ** 2, 25.0), steps)
    assert theirs[-1] < 0.9 * theirs[0]
    np.testing.assert_allclose(k ** 2 * ours["train_loss"][:steps], theirs, rtol=1e-10)


@pytest.mark.slow
def test_test_vs_m_teacher_factor_moved_into_the_init():
    """Teacher x 1, tau = 0.1, lr x 100 is their GD against the teacher x 100 (loss / 1e4)."""
    import reference as ref
    from common import train
    from meanfield.config import as_config
    from meanfield.data import make_dataset
    from meanfield.state import seed_streams
    run = _module("test_vs_m")
    m, steps = 4, 30
    for name in run.SCALINGS:
        cfg = run.config(name, m, 0, steps)
        ours = train(cfg, keep_every=steps)
        data = make_dataset(as_config(cfg), seed_streams(cfg["run"]["seed"]).data)
        scaling, step = (f(m) for f in run.SCALINGS[name])
        W = ref.published_gd(10 * ours["particles"][0], data.x_train, 100 * data.y_train,
                             scaling, step, steps)
        expected = ref.published_loss(W, data.x_test, 100 * data.y_test, scaling)
        assert abs(1e4 * ours["test_loss"][-1] - expected) <= 1e-10 * expected
        assert ours["test_loss"][-1] < 0.99 * ours["test_loss"][0]     # it did train


@pytest.mark.slow
def test_test_vs_m_rows(quick):
    _, columns, rows = quick("test_vs_m")
    assert columns == ["scaling", "m", "trial", "alpha", "lr", "steps", "status",
                       "start_test_loss", "final_test_loss", "published_units"]
    m = _floats(rows, "m")
    sqrt_rows = np.array([r["scaling"] == "1/sqrt(m)" for r in rows])
    np.testing.assert_allclose(_floats(rows, "alpha"), np.where(sqrt_rows, np.sqrt(m), 1.0),
                               rtol=1e-6)
    lr = m * np.where(sqrt_rows, 1 / m, 0.05 / m) * 100     # m x their step x the teacher's 100
    np.testing.assert_allclose(_floats(rows, "lr"), lr, rtol=1e-6)
    np.testing.assert_allclose(_floats(rows, "published_units"),
                               1e3 * _floats(rows, "final_test_loss"), rtol=1e-5)


def test_loss_vs_m_flow_and_baseline(quick):
    _, columns, rows = quick("loss_vs_m")
    assert columns == ["activation", "method", "m", "m0", "replicate", "seed", "status",
                       "population_loss", "estimate"]
    assert len(rows) == 2 * 3 * 2 * 2        # activations x widths x seeds x methods
    flow = [r for r in rows if r["method"] == "gradient flow"]
    assert {r["estimate"] for r in flow if r["activation"] == "relu"} == {"exact"}
    assert {r["estimate"] for r in flow if r["activation"] == "sigmoid"} == {"monte-carlo"}
    assert {r["m0"] for r in rows} == {"5"}
    assert all(float(r["population_loss"]) > 0 for r in rows)
    convex = {(r["activation"], r["m"], r["replicate"]): float(r["population_loss"])
              for r in rows if r["method"] == "convex baseline"}
    for act in ("relu", "sigmoid"):            # more random features fit better
        for rep in ("0", "1"):
            assert convex[act, "32", rep] < convex[act, "2", rep]


def test_mean_field_limit_distances_shrink_with_m(quick):
    _, columns, rows = quick("mean_field_limit")
    assert columns == ["m", "reference_m", "replicate", "time", "w2", "w2_method", "function"]
    assert len(rows) == 2 * 2 * 2             # widths x seeds x times
    assert {r["reference_m"] for r in rows} == {"256"}
    assert {r["w2_method"] for r in rows} == {"sliced"}
    for what in ("w2", "function"):
        mean = {m: np.mean([float(r[what]) for r in rows if r["m"] == m]) for m in ("8", "32")}
        assert mean["32"] < mean["8"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["trajectories_2d", "loss_vs_m"])
def test_plot_only_redraws_from_the_csv(quick, name, tmp_path):
    data, _, _ = quick(name)
    png = data / f"{name}.png"
    png.unlink()
    res = _python(EXPERIMENTS / name / "run.py", "--plot-only", "--data", data, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:8] == PNG
    assert not (tmp_path / "work").exists()


def test_plot_only_without_csv_is_an_error(tmp_path):
    res = _python(EXPERIMENTS / "loss_vs_scale" / "run.py", "--plot-only", "--data", tmp_path,
                  cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == (f"loss_vs_scale: error: {tmp_path / 'loss_vs_scale.csv'}: "
                                  "no such file (run without --plot-only first)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_tour_runs_as_a_script(tmp_path):
    res = _python(EXPERIMENTS / "tour.py", "--out", tmp_path, cwd=tmp_path)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    for name in ("run.png", "laziness.png", "width.png", "limit.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert "W2 ~ m^" in res.stdout
