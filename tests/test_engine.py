"""The engine: states and algorithms, chunk boundaries, recorders, observables, simulate's API."""

import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from meanfield import Config, InputError, _threading, algorithms, simulate
from meanfield.data import make_dataset, population_sample
from meanfield.recorders import MemoryRecorder
from meanfield.state import seed_streams

TINY = {"model": {"m": 6, "activation": "tanh"}, "data": {"d": 3, "n_train": 12, "n_test": 10},
        "train": {"steps": 300, "lr": 0.05}, "record": {"every": 7, "snapshot_every": 100}}
KINDS = {
    "gd_langevin": {"train": {"temperature": 1e-3}},
    "sgd_fresh": {"train": {"algorithm": "sgd", "batch_size": 5, "temperature": 1e-3},
                  "data": {"noise": 0.1}},
    "sgd_minibatch": {"train": {"algorithm": "sgd", "batch_size": 5},
                      "data": {"kind": "random_labels"}},
    "population": {"train": {"algorithm": "population", "temperature": 1e-4},
                   "model": {"activation": "relu"}},
}


def config(kind, **sections):
    tables = {s: dict(t) for s, t in TINY.items()}
    for extra in (KINDS[kind], sections):
        for section, values in extra.items():
            tables.setdefault(section, {}).update(values)
    return Config.from_dict(tables)


def fresh_state(cfg, seed=0):
    algorithm = algorithms.get(cfg.train.algorithm)
    streams = seed_streams(seed)
    data = make_dataset(cfg, streams.data)
    return algorithm, algorithm.init(cfg, data.validated(cfg), streams)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_draws_and_records_do_not_depend_on_chunk_boundaries(kind):
    cfg = config(kind)
    algorithm, whole = fresh_state(cfg)
    whole = algorithm.advance(whole, 300)
    algorithm, cut = fresh_state(cfg)
    steps, rows = [], []
    for n in (1, 0, 6, 50, 17, 100, 126):
        cut = algorithm.advance(cut, n)
        steps.append(cut.records.steps)
        rows.append(cut.records.values)
    assert cut.step == whole.step == 300
    assert np.array_equal(cut.particles, whole.particles)
    assert np.array_equal(np.concatenate(steps), whole.records.steps)
    assert np.array_equal(np.concatenate(rows), whole.records.values)
    # rows every 7 steps before the step, and the final state
    assert list(whole.records.steps) == list(range(0, 300, 7)) + [300]
    assert not np.array_equal(whole.particles, whole.problem.P0)


def test_memory_run_equals_file_run(tmp_path):
    cfg = config("sgd_fresh")
    with simulate(cfg) as memory, simulate(cfg, out=tmp_path / "run.h5") as stored:
        assert memory.path is None and memory.status == stored.status == "completed"
        assert memory.observable_names == stored.observable_names
        for name in stored.observable_names:
            a, b = memory.observable(name), stored.observable(name)
            for field in ("step", "time", "value"):
                assert np.array_equal(getattr(a, field), getattr(b, field)), (name, field)
        assert np.array_equal(memory.steps, stored.steps)
        assert np.array_equal(memory.times, stored.times)
        assert np.array_equal(memory.particles(slice(None)), stored.particles(slice(None)))
        assert np.array_equal(memory.particles(1), stored.particles(1))
        assert memory.config == stored.config and memory.alpha == stored.alpha
        assert memory.parameters == stored.parameters
        assert np.array_equal(memory.data.x_train, stored.data.x_train)
        with pytest.raises(KeyError):
            memory.observable("no_such_thing")


def test_simulate_takes_a_config_a_dict_or_a_toml_file(tmp_path):
    cfg = config("gd_langevin", train={"steps": 30})
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    finals = []
    for c in (cfg, cfg.to_dict(), tmp_path / "c.toml", str(tmp_path / "c.toml")):
        with simulate(c) as run:
            finals.append(run.particles(-1))
    for P in finals[1:]:
        assert np.array_equal(P, finals[0])
    for bad in (42, ["model"], None):
        with pytest.raises(InputError):
            simulate(bad)
    with pytest.raises(InputError, match="out"):
        simulate(cfg, out=42)


class Log(MemoryRecorder):
    """A user recorder: the in-memory one, logging what it is asked to do."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def start(self, state, series):
        self.calls.append(("start", state.step))
        super().start(state, series)

    def checkpoint(self, state):
        self.calls.append(("checkpoint", state.step))

    def snapshot(self, step, particles, names, values):
        self.calls.append(("snapshot", step))
        super().snapshot(step, particles, names, values)

    def finish(self, status, message=""):
        self.calls.append(("finish", status))
        return self


def test_step_zero_is_checkpointed_before_anything_slow_and_user_recorders_work():
    cfg = config("gd_langevin", train={"steps": 250})
    log = simulate(cfg, out=Log())
    assert log.calls[:3] == [("start", 0), ("checkpoint", 0), ("snapshot", 0)]
    assert ("snapshot", 100) in log.calls and log.calls[-2:] == [("checkpoint", 250),
                                                                  ("finish", "completed")]


def test_velocity_sq_is_the_training_set_speed_at_every_row():
    """SGD steps on batches, but velocity_sq is (1/m) sum |v_i|^2 of J on the training set."""
    cfg = config("sgd_fresh", train={"steps": 20, "temperature": 0.0},
                 record={"every": 5, "snapshot_every": 5})
    with simulate(cfg) as run:
        data, vsq = run.data, run.observable("velocity_sq")
        assert list(vsq.step) == [0, 5, 10, 15, 20] and list(run.steps) == list(vsq.step)
        for k in range(len(vsq.step)):
            V = ref.velocity(run.particles(k), data.x_train, data.y_train, "tanh", "squared",
                             1.0, False, 0.0)
            assert vsq.value[k] == pytest.approx(np.mean(np.sum(V ** 2, axis=1)), rel=1e-10)


def test_population_estimates_are_named_for_how_they_are_made():
    cfg = config("sgd_fresh", train={"steps": 20}, data={"population_samples": 500})
    with simulate(cfg) as run:
        assert "population_loss" not in run.observable_names
        mc = run.observable("population_loss_mc")
        assert list(mc.step) == [0, 20]
        X, y = population_sample(cfg, run.teacher, seed_streams(cfg.run.seed).population)
        R = ref.risk(run.particles(-1), X, y, "tanh", "squared", 1.0, False)
        assert mc.value[-1] == pytest.approx(R, rel=1e-12)
    with simulate(config("population", train={"steps": 20})) as run:
        assert "population_loss_mc" not in run.observable_names
        assert len(run.observable("population_loss").step) == 4  # 0, 7, 14 and the final


def test_a_diverging_run_stops_at_the_step_that_blew_up():
    cfg = config("gd_langevin", train={"lr": 1e4, "temperature": 0.0, "steps": 1000},
                 model={"activation": "relu"}, scaling={"alpha": 30.0})
    with simulate(cfg) as run:
        assert run.status == "diverged"
        k = int(run.steps[-1])
        assert 0 < k < 1000 and f"at step {k}" in run.message
        loss = run.observable("train_loss")
        assert loss.step[-1] < k and np.all(np.isfinite(loss.value))
        assert not np.all(np.isfinite(run.particles(-1))) or \
            np.max(np.abs(run.particles(-1))) > 1e10


def test_unknown_algorithm_is_an_input_error():
    with pytest.raises(InputError, match="train.algorithm"):
        algorithms.get("no_such_algorithm")


def test_import_sets_no_environment_variable_and_no_warning_filter():
    """Nor does it load NumPy: a run applies the thread settings first (_threading.apply)."""
    code = ("import os, sys, warnings; env = dict(os.environ); filters = list(warnings.filters); "
            "import meanfield; assert 'numpy' not in sys.modules, 'numpy loaded'; "
            "assert dict(os.environ) == env, 'environment changed'; "
            "assert warnings.filters == filters, 'warning filters changed'")
    env = {k: v for k, v in os.environ.items() if k not in _threading.DEFAULTS}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow  # a fresh process (compiles when the kernels changed)
def test_a_run_kept_in_memory_does_not_load_h5py():
    code = ("import sys, meanfield; meanfield.simulate({'model': {'m': 4}, 'data': {'d': 2, "
            "'n_train': 5}, 'train': {'steps': 3}}); assert 'h5py' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_exact_population_risk_recorded_only_where_cheap(monkeypatch):
    """Beyond its cost budget the exact risk gives way to the named Monte-Carlo estimate."""
    from meanfield.algorithms import common
    from meanfield.simulate import simulate
    cfg = {"model": {"m": 8}, "data": {"d": 3, "n_train": 20, "n_test": 20,
                                       "population_samples": 200},
           "train": {"steps": 20}, "record": {"every": 10, "snapshot_every": 10}}
    with simulate(cfg) as run:
        assert "population_loss" in run.observable_names
        assert "population_loss_mc" not in run.observable_names
    monkeypatch.setattr(common, "EXACT_RECORD_SHARE", 0.0)
    with simulate(cfg) as run:
        assert "population_loss" not in run.observable_names
        assert len(run.observable("population_loss_mc").value) == 3
    big = Config.from_dict({"model": {"m": 10 ** 6}, "data": {"n_train": 1000, "d": 10}})
    assert not common.records_exact(big)
