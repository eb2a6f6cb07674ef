"""meanfield.plotting on synthetic inputs with known answers; ``meanfield plot`` (subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from meanfield import Config, simulate  # noqa: E402
from meanfield.plotting import (distance_vs_m, laziness_vs_alpha, loss_curves,  # noqa: E402
                                loss_vs_m, loss_vs_scale, particle_trajectories,
                                plane_positions, trajectories)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bars(container):
    """(x, mean) of an error-bar series and the (low, high) ends of its bars."""
    line, _, (bars,) = container.lines[0], container.lines[1], container.lines[2]
    xy = line.get_xydata()
    ends = np.array([[seg[0][1], seg[1][1]] for seg in bars.get_segments()])
    return xy[:, 0], xy[:, 1], ends


# ------------------------------------------------------------------ sweep figures
def test_loss_vs_m_averages_seeds_with_standard_errors():
    m = np.array([8, 2, 8, 2, 32, 32, 2, 8, 32])
    loss = np.array([0.5, 1.0, 0.7, 2.0, 0.1, 0.3, 3.0, 0.6, 0.2])
    fig = loss_vs_m(m, loss, baseline=(m, 2 * loss), m0=5)
    ax = fig.axes[0]
    assert len(ax.containers) == 2                       # flow + baseline
    x, mean, ends = _bars(ax.containers[0])
    np.testing.assert_array_equal(x, [2, 8, 32])
    np.testing.assert_allclose(mean, [2.0, 0.6, 0.2])
    sem = np.array([1.0, 0.1, 0.1]) / np.sqrt(3)         # sample std / sqrt(n)
    np.testing.assert_allclose(ends, np.column_stack([mean - sem, mean + sem]))
    np.testing.assert_allclose(_bars(ax.containers[1])[1], [4.0, 1.2, 0.4])
    vertical = [ln for ln in ax.lines if np.allclose(ln.get_xdata(), 5)]
    assert len(vertical) == 1 and "m_0" in vertical[0].get_label()
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_loss_vs_m_without_baseline_or_teacher_draws_one_series():
    fig = loss_vs_m([4, 16], [1.0, 0.5])
    ax = fig.axes[0]
    assert len(ax.containers) == 1
    assert not [ln for ln in ax.lines if "m_0" in ln.get_label()]


def test_loss_vs_scale_sorts_tau_and_marks_unconverged_runs():
    tau = np.array([1.0, 0.01, 10.0, 0.1])
    final = np.array([3.0, 1.0, 4.0, 2.0])
    best = final / 2
    fig = loss_vs_scale(tau, final, best, converged=[True, False, False, True])
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    np.testing.assert_array_equal(lines["end of training"].get_xdata(), [0.01, 0.1, 1.0, 10.0])
    np.testing.assert_array_equal(lines["end of training"].get_ydata(), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(lines["best during training"].get_ydata(), [0.5, 1, 1.5, 2])
    crosses = lines["not yet converged"]
    np.testing.assert_array_equal(crosses.get_xdata(), [0.01, 10.0])
    np.testing.assert_array_equal(crosses.get_ydata(), [1.0, 4.0])


def test_loss_vs_scale_draws_into_a_given_axes():
    fig, (a, b) = plt.subplots(1, 2)
    assert loss_vs_scale([0.1, 1.0], [1.0, 2.0], ax=b) is fig
    assert not a.lines and [ln.get_label() for ln in b.lines] == ["end of training"]


def test_laziness_vs_alpha_one_series_per_diagnostic():
    alpha = np.repeat([1.0, 10.0, 100.0], 2)
    gap = np.array([1.0, 3.0, 0.1, 0.3, 0.01, 0.03])
    fig = laziness_vs_alpha(alpha, {"tangent_gap": gap, "ntk_change": gap ** 2})
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    np.testing.assert_allclose(_bars(ax.containers[0])[1], [2.0, 0.2, 0.02])
    np.testing.assert_allclose(_bars(ax.containers[1])[1], [5.0, 0.05, 0.0005])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["tangent gap", "ntk change"]


def test_distance_vs_m_fits_the_rate_of_each_time():
    m = np.repeat([8, 32, 128, 512], 2)
    d0 = 2.0 * m ** -0.5
    d1 = 3.0 * m ** -1.0
    fig = distance_vs_m(np.concatenate([m, m]), np.concatenate([d0, d1]),
                        times=np.repeat([0.0, 5.0], m.size))
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "fit: slope -0.50 [-0.50, -0.50]" in labels
    assert "fit: slope -1.00 [-1.00, -1.00]" in labels
    guide = [ln for ln in ax.lines if ln.get_label() == "$m^{-1/2}$"][0]
    np.testing.assert_allclose(guide.get_ydata(), 2.0 * np.array([8, 32, 128, 512]) ** -0.5)


def test_trajectories_draw_paths_ends_and_teacher_rays():
    pos = np.zeros((4, 2, 2))
    pos[:, 0, 0] = np.linspace(0, 1, 4)                  # particle 0 moves along x
    fig = trajectories(pos, [1.0, -1.0], teacher=[[0.0, 2.0]])
    ax = fig.axes[0]
    path = ax.lines[0]
    np.testing.assert_array_equal(path.get_xdata(), [0, 1 / 3, 2 / 3, 1])
    assert path.get_color() == "tab:red" and ax.lines[2].get_color() == "tab:blue"
    rays = ax.lines[-2].get_xydata()
    assert rays[0].tolist() == [0.0, 0.0] and rays[1][0] == 0.0 and rays[1][1] > 2.0
    assert ax.lines[-1].get_label() == "teacher"


def test_particle_trajectories_of_a_run_match_the_snapshots():
    cfg = Config.from_dict({"model": {"m": 6}, "data": {"d": 2, "n_train": 20, "n_test": 20},
                            "train": {"steps": 20}, "record": {"every": 5, "snapshot_every": 5}})
    run = simulate(cfg)
    fig = particle_trajectories(run)
    snaps = run.particles(slice(None))
    expected = np.abs(snaps[:, 3, -1]) * snaps[:, 3, 0]
    np.testing.assert_allclose(fig.axes[0].lines[6].get_xdata(), expected)
    np.testing.assert_allclose(plane_positions(snaps)[:, 3, 0], expected)


# -------------------------------------------------------------- meanfield plot (CLI)
def _cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot")
    cfg = Config.from_dict({"model": {"m": 8}, "data": {"d": 2, "n_train": 20, "n_test": 20},
                            "train": {"steps": 30}, "record": {"every": 5, "snapshot_every": 10}})
    simulate(cfg, out=folder / "run.h5").close()
    return folder / "run.h5"


def _png_size(path):
    """Whether ``path`` is a PNG, and its size in pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_writes_a_png_next_to_the_run_by_default(run_file, tmp_path):
    res = _cli("plot", run_file, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = run_file.with_suffix(".png")
    assert res.stdout.strip() == f"wrote {out}"
    width_both, _ = _png_size(out)
    res = _cli("plot", run_file, "-o", tmp_path / "loss.png", "--kind", "loss", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    width_one, _ = _png_size(tmp_path / "loss.png")
    assert width_one < width_both                        # one panel instead of two
    res = _cli("plot", run_file, "-o", "p.pdf", "--kind", "particles", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "p.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("args, message", [
    (["missing.h5"], "missing.h5: no such file"),
    (["bad.h5"], "bad.h5"),
    (["RUN", "-o", "fig.xyz"], "unknown figure format '.xyz'"),
    (["RUN", "-o", "fig"], "unknown figure format"),
    (["RUN", "-o", "no/such/dir/fig.png"],
     "figure no/such/dir/fig.png: folder no/such/dir does not exist"),
    (["RUN", "--kind", "histogram"], "invalid choice: 'histogram'"),
])
def test_plot_bad_input_is_one_line_and_status_2(run_file, tmp_path, args, message):
    (tmp_path / "bad.h5").write_text("not hdf5")
    args = [str(run_file) if a == "RUN" else a for a in args]
    before = set(os.listdir(tmp_path)) | set(os.listdir(run_file.parent))
    res = _cli("plot", *args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meanfield: error: ") and message in lines[0]
    after = set(os.listdir(tmp_path)) | set(os.listdir(run_file.parent))
    assert after == before                               # nothing written, no temporary left


def test_plot_of_a_one_dimensional_run(tmp_path):
    """d = 1 has no plane of particles: losses only, and a clear refusal of --kind particles."""
    cfg = Config.from_dict({"model": {"m": 4}, "data": {"d": 1, "n_train": 10, "n_test": 10},
                            "train": {"steps": 10}})
    simulate(cfg, out=tmp_path / "d1.h5").close()
    res = _cli("plot", tmp_path / "d1.h5", "-o", tmp_path / "both.png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res_loss = _cli("plot", tmp_path / "d1.h5", "-o", tmp_path / "loss.png", "--kind", "loss",
                    cwd=tmp_path)
    assert res_loss.returncode == 0, res_loss.stderr
    assert _png_size(tmp_path / "both.png") == _png_size(tmp_path / "loss.png")
    res = _cli("plot", tmp_path / "d1.h5", "-o", tmp_path / "p.png", "--kind", "particles",
               cwd=tmp_path)
    assert res.returncode == 2 and "d >= 2" in res.stderr
    assert not (tmp_path / "p.png").exists()


def test_loss_curves_of_a_short_run_mark_their_points():
    cfg = Config.from_dict({"model": {"m": 4}, "data": {"d": 2, "n_train": 10, "n_test": 10},
                            "train": {"steps": 10}})
    fig = loss_curves(simulate(cfg))
    lines = fig.axes[0].lines
    assert lines and all(line.get_marker() == "o" and len(line.get_xdata()) == 1
                         for line in lines)
