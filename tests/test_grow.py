"""Growing networks (train.algorithm = "grow"): config, algorithm, storage, resume, plot."""

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reference as ref
from meanfield import Config, open_run, simulate
from meanfield.algorithms import grow
from meanfield.cli import main
from meanfield.errors import InputError
from meanfield.optimality import Problem, certify, insert_neuron
from meanfield.simulate import Interrupted

ROOT = Path(__file__).resolve().parents[1]
simulate_module = importlib.import_module("meanfield.simulate")  # the module, not the function

CONFIG = {
    "model": {"m": 1}, "init": {"tau": 0.1},
    "data": {"d": 2, "n_train": 20, "n_test": 20, "teacher_m": 3},
    "train": {"algorithm": "grow", "lr": 0.2, "steps": 3000, "weight_decay": 1e-2},
    "record": {"every": 10, "snapshot_every": 100},
    "grow": {"tolerance": 1e-5, "gap_tolerance": 1e-6, "max_neurons": 8, "init_scale": 0.1},
}


@pytest.fixture(scope="module")
def memory_run():
    return simulate(CONFIG)


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("key, value", [
    ("grow.tolerance", 0.0), ("grow.tolerance", float("nan")), ("grow.init_scale", -1.0),
    ("grow.gap_tolerance", 0), ("grow.max_neurons", 0), ("grow.max_neurons", 1.5),
    ("grow.init_scale", "big")])
def test_bad_grow_values_name_the_key(key, value):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        Config.from_dict(CONFIG).with_overrides({key: value})


@pytest.mark.parametrize("key, value", [
    ("train.weight_decay", 0.0), ("model.activation", "tanh"), ("train.model", "tangent"),
    ("train.temperature", 0.1), ("scaling.regime", "ntk"), ("model.m", 9)])
def test_grow_refuses_what_it_cannot_certify(key, value):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        Config.from_dict(CONFIG).with_overrides({key: value})


def test_cli_exits_2_on_a_bad_grow_key(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(Config.from_dict(CONFIG).to_toml())
    code = main(["run", str(path), "-o", str(tmp_path / "r.h5"), "-q",
                 "--set", "grow.max_neurons=-3"])
    assert code == 2
    assert "grow.max_neurons" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


# ------------------------------------------------------------------- algorithm
def numpy_grow(config):
    """Independent NumPy loop: GD on J, every ``every`` steps the test of the docstring."""
    cfg = Config.from_dict(config)
    with simulate({**config, "train": {**config["train"], "steps": 0}}) as run0:
        P, data = run0.particles(0), run0.data
    X, y, g, every = data.x_train, data.y_train, cfg.grow, cfg.record.every
    args = ("relu", "squared", cfg.alpha, False, cfg.train.weight_decay)
    stopped, counts, previous = False, [], None
    for k in range(cfg.train.steps):
        if k % cfg.record.snapshot_every == 0:
            counts.append(len(P))
        v = ref.velocity(P, X, y, *args)
        moved = (np.inf if previous is None or previous.shape != P.shape else
                 np.mean(np.sum((P - previous) ** 2, axis=1)) / (every * cfg.train.lr) ** 2)
        if k % every == 0 and not stopped and moved < g.tolerance:
            cert = certify(P, (X, y), cfg)
            stopped = cert.gap < g.gap_tolerance
            units = P[:, :-1] / np.linalg.norm(P[:, :-1], axis=1, keepdims=True)
            there = ((P[:, -1] * cert.sign > 0) & (np.linalg.norm(P, axis=1) >= g.init_scale)
                     & (np.linalg.norm(units - cert.direction, axis=1) < grow.SAME_DIRECTION))
            if not stopped and cert.polar > cert.bound and not there.any():
                stopped = len(P) >= g.max_neurons
            if not stopped and cert.polar > cert.bound and not there.any():
                P = insert_neuron(P, cert.direction, cert.sign, g.init_scale)
                v = ref.velocity(P, X, y, *args)
        if k % every == 0:
            previous = P.copy()
        P = P + cfg.train.lr * v
    return P, counts + [len(P)]


def test_grown_network_matches_the_numpy_reference(memory_run):
    P, counts = numpy_grow(CONFIG)
    assert list(memory_run.counts) == counts
    assert counts[0] == 1 and counts[-1] > 2
    np.testing.assert_allclose(memory_run.particles(-1), P, rtol=1e-6, atol=1e-8)


def test_every_insertion_follows_a_violated_certificate(memory_run):
    cfg = Config.from_dict(CONFIG)
    with simulate({**CONFIG, "train": {**CONFIG["train"], "steps": 0}}) as run0:
        data = run0.data
    problem = Problem.from_config(cfg, data)
    counts = memory_run.counts
    assert np.all(np.diff(counts) >= 0)
    J = memory_run.observable("objective").value
    bound = memory_run.observable("dual_bound").value
    gap = memory_run.observable("duality_gap").value
    np.testing.assert_allclose(J - bound, gap, rtol=1e-12, atol=1e-15)
    assert np.all(gap >= 0) and gap[-1] < gap[0] / 10
    np.testing.assert_array_equal(memory_run.observable("neurons").value, counts)
    for k in range(len(counts)):  # the stored objective is J of the stored particles
        assert J[k] == pytest.approx(problem.objective(memory_run.particles(k)), rel=1e-12)


def test_insertion_lowers_the_objective_along_the_maximiser():
    cfg = Config.from_dict(CONFIG)
    with simulate({**CONFIG, "train": {**CONFIG["train"], "steps": 0}}) as run0:
        P, data = run0.particles(0), run0.data
    problem = Problem.from_config(cfg, data)
    cert = certify(P, data, cfg)
    assert cert.polar > cert.bound
    m, s = len(P), 1e-3
    for sign, lower in ((cert.sign, True), (-cert.sign, False)):
        dJ = problem.objective(insert_neuron(P, cert.direction, sign, s)) - cert.objective
        first_order = s * s / (m + 1) * (cfg.train.weight_decay
                                         - sign * cert.sign * cert.polar / cfg.alpha)
        assert (dJ < 0) == lower
        assert dJ == pytest.approx(first_order, rel=1e-3)


def test_a_certified_network_stops_growing():
    tables = {**CONFIG, "grow": {**CONFIG["grow"], "gap_tolerance": 3e-3, "max_neurons": 50},
              "train": {**CONFIG["train"], "steps": 6000}}
    with simulate(tables) as run:
        counts = run.counts
        gap = run.observable("duality_gap").value
    assert counts[-1] < 50
    first = int(np.argmax(gap < 3e-3))
    assert gap[first] < 3e-3 and np.all(counts[first + 1:] == counts[-1])


def test_growth_stops_at_max_neurons_and_skips_directions_already_there():
    from meanfield.data import make_dataset
    from meanfield.state import seed_streams
    cfg = Config.from_dict({**CONFIG, "grow": {**CONFIG["grow"], "max_neurons": 2}})
    streams = seed_streams(cfg.run.seed)
    state = grow.init(cfg, make_dataset(cfg, streams.data).validated(cfg), streams)
    state = grow.advance(state, cfg.train.steps)
    assert len(state.particles) == 2 and int(state.extras["stopped"]) == grow.FULL
    P = state.particles
    u = P[0, :-1] / np.linalg.norm(P[0, :-1])
    sign = np.sign(P[0, -1])
    assert grow.present(P[:1], u, sign, 0.0)
    for angle, there in ((0.5, True), (2.0, False)):  # in units of SAME_DIRECTION
        t = angle * grow.SAME_DIRECTION
        turned = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ u
        assert grow.present(P[:1], turned, sign, 0.0) == there
    assert not grow.present(P[:1], u, -sign, 0.0)
    assert not grow.present(P[:1], -u, sign, 0.0)
    assert not grow.present(P[:1], u, sign, 1.01 * np.linalg.norm(P[0]))  # too small to grow


# --------------------------------------------------------------------- storage
def contents(path):
    with open_run(path) as run:
        out = {"steps": run.steps.tobytes(), "counts": run.counts.tobytes(),
               "particles": run.particles(slice(None)).tobytes(), "status": run.status}
        for name in run.observable_names:
            obs = run.observable(name)
            out[name] = (obs.step.tobytes(), obs.time.tobytes(), obs.value.tobytes())
    return out


def test_file_holds_every_snapshot_with_its_own_m(memory_run, tmp_path):
    with simulate(CONFIG, tmp_path / "g.h5") as run:
        np.testing.assert_array_equal(run.counts, memory_run.counts)
        for k in range(len(run.steps)):
            np.testing.assert_array_equal(run.particles(k), memory_run.particles(k))
        both = run.particles(slice(None)), memory_run.particles(slice(None))
        assert both[0].shape == (len(run.steps), run.counts.max(), 3)
        np.testing.assert_array_equal(*both)
        assert np.isnan(both[0][0, 1:]).all() and not np.isnan(both[0][-1]).any()
        ck = run.checkpoint()
        assert ck.particles.shape == memory_run.particles(-1).shape
        assert ck.initial.shape == (1, 3)
        log = ck.extras["certificates"]  # step, neurons, polar, bound, gap of every test
        assert log[-1, 1] == run.counts[-1] and np.all(np.diff(log[:, 0]) > 0)
        for name in memory_run.observable_names:
            np.testing.assert_array_equal(run.observable(name).value,
                                          memory_run.observable(name).value)
    import h5py
    with h5py.File(tmp_path / "g.h5") as h5:  # fixed capacity, zero rows beyond the count
        value = h5["particles/network/position/value"][0]
        assert value.shape == (8, 3) and not value[1:].any()


def test_interrupted_growing_run_resumes_bit_identically(tmp_path, monkeypatch):
    tables = {**CONFIG, "record": {**CONFIG["record"], "checkpoint_seconds": 1e-9}}
    simulate(tables, tmp_path / "full.h5").close()
    monkeypatch.setattr(simulate_module, "WORK_PER_CHUNK", 7 * 20 * 8 * 3)  # 7-step chunks

    def stop(step, P):
        if step >= 433:  # after the first insertions, between two snapshots
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as stopped:
        simulate(tables, tmp_path / "part.h5", callback=stop)
    assert stopped.value.step % 100 and stopped.value.step % 10
    with open_run(tmp_path / "part.h5") as run:
        assert run.status == "running" and run.counts[-1] > 1
    monkeypatch.setattr(simulate_module, "WORK_PER_CHUNK", 5e7)
    simulate(tables, tmp_path / "part.h5", resume=True).close()
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")


@pytest.mark.slow
def test_sigkilled_growing_run_resumes_bit_identically(tmp_path):
    tables = {**CONFIG, "train": {**CONFIG["train"], "steps": 30000},
              "record": {**CONFIG["record"], "checkpoint_every": 50}}
    path = tmp_path / "c.toml"
    path.write_text(Config.from_dict(tables).to_toml())
    simulate(path, tmp_path / "full.h5").close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "meanfield.cli", "run", str(path), "-o",
               str(tmp_path / "part.h5"), "-q", "--resume"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    while proc.poll() is None:
        try:
            with open_run(tmp_path / "part.h5") as run:
                if len(run.steps) > 5:
                    break
        except InputError:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    with open_run(tmp_path / "part.h5") as run:
        assert run.status == "running"
    assert subprocess.run(command, env=env, timeout=300).returncode == 0
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")


# ------------------------------------------------------------------------ plot
def test_plot_draws_the_neurons_of_a_growing_run(memory_run, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from meanfield.plotting import network_size
    fig = network_size(memory_run)
    size = fig.axes[1].lines[0]
    np.testing.assert_array_equal(size.get_ydata(), memory_run.counts)
    assert len(fig.axes[0].lines) == 2
    simulate(CONFIG, tmp_path / "g.h5").close()
    assert main(["plot", str(tmp_path / "g.h5"), "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 1000


# ------------------------------------------------------------------ experiment
@pytest.mark.slow
def test_growing_network_experiment_quick(tmp_path):
    import csv
    script = ROOT / "experiments" / "growing_network" / "run.py"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, str(script), "--quick", "--work", str(tmp_path / "w"),
                          "--data", str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "growing_network.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "growing_network.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    runs = {}
    for row in rows:
        runs.setdefault(row["run"], []).append(row)
    assert {"grow lam=0.001", "grow lam=0.01", "GD m=2", "GD m=8"} <= set(runs)
    for name, trace in runs.items():
        J, gap, bound = (np.array([float(r[k]) for r in trace])
                         for k in ("objective", "gap", "lower_bound"))
        np.testing.assert_allclose(J - gap, bound, rtol=0, atol=1e-6 * J.max())  # 7 digits
        assert np.all(gap >= 0)
        if name.startswith("grow"):
            neurons = [int(r["neurons"]) for r in trace]
            assert neurons[0] == 1 and neurons[-1] > 1 and neurons == sorted(neurons)
    final = {name: float(trace[-1]["objective"]) for name, trace in runs.items()}
    assert final["grow lam=0.001"] < final["GD m=2"]
