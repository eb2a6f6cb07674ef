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


def test_trajectories_2d_lazy_particles_barely_move(quick):
    _, columns, rows = quick("trajectories_2d")
    assert columns == ["alpha", "kind", "particle", "time", "x", "y", "sign", "population_loss"]
    students = [r for r in rows if r["kind"] == "student"]
    assert {float(r["alpha"]) for r in rows} == {1.0, 100.0}
    assert len([r for r in rows if r["kind"] == "teacher"]) == 2 * 3
    assert {int(r["particle"]) for r in students} == set(range(16))

    def travel(alpha):
        xy = np.array([[float(r["x"]), float(r["y"])] for r in students
                       if float(r["alpha"]) == alpha])
        xy = xy.reshape(-1, 16, 2)
        return np.linalg.norm(xy[-1] - xy[0], axis=1).mean()

    assert travel(100.0) < 0.1 * travel(1.0)


def test_loss_vs_scale_rows_and_equivalent_alpha(quick):
    _, columns, rows = quick("loss_vs_scale")
    for name in ("algorithm", "tau", "alpha_equivalent", "final_test_loss", "best_test_loss",
                 "final_population_loss", "start_train_loss", "final_displacement",
                 "final_tangent_gap", "final_ntk_change"):
        assert name in columns
    assert [r["algorithm"] for r in rows] == ["gd"] * 4 + ["sgd"] * 2
    tau = np.array([float(r["tau"]) for r in rows])
    np.testing.assert_allclose(tau, [0.01, 0.0316228, 0.1 ** 0.5, 10 ** 0.5, 0.01, 10 ** 0.5],
                               rtol=1e-6)
    np.testing.assert_allclose([float(r["alpha_equivalent"]) for r in rows], tau ** 2, rtol=1e-6)
    for r in rows:
        assert float(r["best_test_loss"]) <= float(r["final_test_loss"])
    displacement = [float(r["final_displacement"]) for r in rows[:4]]
    assert displacement == sorted(displacement, reverse=True)   # lazier as tau grows


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


def test_tour_runs_as_a_script(tmp_path):
    res = _python(EXPERIMENTS / "tour.py", "--out", tmp_path, cwd=tmp_path)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    for name in ("run.png", "laziness.png", "width.png", "limit.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert "W2 ~ m^" in res.stdout
