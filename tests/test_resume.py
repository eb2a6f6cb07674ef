"""Checkpoints and resume: killed runs continue bit-identically."""

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from meanfield import Config, open_run, simulate
from meanfield.simulate import Interrupted

simulate_module = importlib.import_module("meanfield.simulate")  # the module, not the function

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "model": {"m": 12, "activation": "tanh", "bias": True},
    "data": {"d": 3, "n_train": 40, "n_test": 40},
    "train": {"algorithm": "sgd", "batch_size": 8, "lr": 0.05, "steps": 20000,
              "temperature": 1e-5},
    "record": {"every": 7, "snapshot_every": 2500, "checkpoint_every": 100},
    "run": {"seed": 3},
}


def contents(path):
    """Everything a run records: snapshots with their steps, every observable series."""
    with open_run(path) as run:
        out = {"steps": run.steps.tobytes(), "particles": run.particles(slice(None)).tobytes(),
               "status": run.status}
        for name in run.observable_names:
            obs = run.observable(name)
            out[name] = (obs.step.tobytes(), obs.time.tobytes(), obs.value.tobytes())
    return out


def interrupt_at(cfg, out, step):
    """Run ``cfg`` into ``out`` until a SIGINT sent at ``step`` stops it (the run resumable)."""

    def stop(at, P):
        if at == step:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted):
        simulate(cfg, out=out, callback=stop)


def cli(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")
    return subprocess.Popen([sys.executable, "-m", "meanfield.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref")
    (folder / "c.toml").write_text(Config.from_dict(CONFIG).to_toml())
    proc = cli(["run", str(folder / "c.toml"), "-o", str(folder / "ref.h5"), "-q"])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    return folder, contents(folder / "ref.h5")


def progress(path):
    """Last recorded step of a live run file (-1 before there is one)."""
    try:
        with open_run(path) as run:
            steps = run.observable("train_loss").step
            return int(steps[-1]) if len(steps) else 0
    except Exception:  # not created yet, or caught mid-rename
        return -1


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(reference_run, tmp_path):
    folder, expected = reference_run
    (tmp_path / "c.toml").write_text((folder / "c.toml").read_text())
    out = tmp_path / "killed.h5"
    rng = np.random.default_rng(0)
    steps = CONFIG["train"]["steps"]
    # kill points: during start-up, then at random steps of the run
    targets = [None] + sorted(rng.integers(1, steps, size=5).tolist())
    kills = 0
    for target in targets:
        proc = cli(["run", str(tmp_path / "c.toml"), "-o", str(out), "-q", "--resume"])
        if target is None:
            time.sleep(rng.uniform(0.05, 0.5))
        else:
            while proc.poll() is None and progress(out) < target:
                time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=300)
        if out.exists():
            with open_run(out) as run:  # a killed run leaves a readable file
                assert run.status in ("running", "completed")
            info = cli(["info", str(out)])
            assert info.wait(timeout=60) == 0, info.stderr.read()
    assert kills >= 4
    proc = cli(["run", str(tmp_path / "c.toml"), "-o", str(out), "-q", "--resume"])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert contents(out) == expected


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_resume_finishes(reference_run, tmp_path):
    folder, expected = reference_run
    out = tmp_path / "term.h5"
    cfg = tmp_path / "c.toml"
    cfg.write_text((folder / "c.toml").read_text())
    proc = cli(["run", str(cfg), "-o", str(out), "-q", "--set", "train.steps=400000"])
    while proc.poll() is None and progress(out) < 500:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    assert "--resume" in proc.stderr.read()
    with open_run(out) as run:
        assert run.status == "running"
        stopped = int(run.observable("train_loss").step[-1])
    # the same file resumed with the short config is refused: configs must match
    proc = cli(["run", str(cfg), "-o", str(out), "-q", "--resume"])
    assert proc.wait(timeout=120) == 2
    assert "train.steps" in proc.stderr.read()
    proc = cli(["run", str(cfg), "-o", str(out), "-q", "--resume", "--set", "train.steps=400000"])
    while proc.poll() is None and progress(out) <= stopped:
        time.sleep(0.01)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=120) == 128 + signal.SIGUSR1
    with open_run(out) as run:
        assert run.status == "running" and run.observable("train_loss").step[-1] > stopped


def test_interrupted_in_process_then_resumed_equals_uninterrupted(tmp_path):
    cfg = Config.from_dict({**CONFIG, "train": {**CONFIG["train"], "steps": 1000}})
    full = simulate(cfg, out=tmp_path / "full.h5")
    full.close()
    interrupt_at(cfg, tmp_path / "part.h5", 300)
    with open_run(tmp_path / "part.h5") as run:
        assert run.status == "running"
    run = simulate(cfg, out=tmp_path / "part.h5", resume=True)
    assert run.status == "completed"
    run.close()
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")
    # resuming a completed run changes nothing
    simulate(cfg, out=tmp_path / "part.h5", resume=True).close()
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")


def test_wall_clock_checkpoints_resume_bit_identically_whatever_the_chunks(tmp_path, monkeypatch):
    """Checkpoints by wall clock land wherever a chunk ends; resumed with other chunk
    lengths, the run is still the uninterrupted one, bit for bit (Langevin noise, fresh SGD
    samples and label noise drawn per step, not per chunk)."""
    tables = {**CONFIG, "data": {**CONFIG["data"], "noise": 0.1},
              "train": {**CONFIG["train"], "steps": 1000, "batch_size": 5},
              "record": {"every": 7, "snapshot_every": 250, "checkpoint_every": 0,
                         "checkpoint_seconds": 1e-9}}
    cfg = Config.from_dict(tables)
    simulate(cfg, out=tmp_path / "full.h5").close()
    monkeypatch.setattr(simulate_module, "WORK_PER_CHUNK", 3e3)  # chunks of a few steps

    def stop(step, P):
        if step >= 333:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as stopped:
        simulate(cfg, out=tmp_path / "part.h5", callback=stop)
    assert stopped.value.step % 250 != 0  # stopped between two snapshots
    monkeypatch.setattr(simulate_module, "WORK_PER_CHUNK", 1e4)
    simulate(cfg, out=tmp_path / "part.h5", resume=True).close()
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")


def test_a_file_killed_before_its_first_checkpoint_restarts_cleanly(tmp_path):
    """The header is written, the step-0 checkpoint is not (a kill in between)."""
    from meanfield import algorithms, observables
    from meanfield.data import make_dataset
    from meanfield.recorders import HDF5Recorder
    from meanfield.state import seed_streams

    cfg = Config.from_dict({**CONFIG, "train": {**CONFIG["train"], "steps": 300}})
    streams = seed_streams(cfg.run.seed)
    state = algorithms.get("sgd").init(cfg, make_dataset(cfg, streams.data), streams)
    killed = HDF5Recorder(tmp_path / "killed.h5")
    killed.start(state, observables.series(state.problem))
    killed.close()
    simulate(cfg, out=tmp_path / "killed.h5", resume=True).close()
    simulate(cfg, out=tmp_path / "fresh.h5").close()
    assert contents(tmp_path / "killed.h5") == contents(tmp_path / "fresh.h5")


@pytest.mark.parametrize("algorithm", ["gd", "sgd"])
def test_a_file_killed_before_its_first_snapshot_resumes_from_step_0(tmp_path, algorithm):
    """The step-0 checkpoint is written, the first snapshot is not (a kill in between)."""
    from meanfield import algorithms, observables
    from meanfield.data import make_dataset
    from meanfield.recorders import HDF5Recorder
    from meanfield.state import seed_streams

    cfg = Config.from_dict({**CONFIG, "train": {**CONFIG["train"], "steps": 300,
                                                "algorithm": algorithm}})
    streams = seed_streams(cfg.run.seed)
    state = algorithms.get(algorithm).init(cfg, make_dataset(cfg, streams.data), streams)
    killed = HDF5Recorder(tmp_path / "killed.h5")
    killed.start(state, observables.series(state.problem))
    killed.checkpoint(state)
    killed.close()
    with open_run(tmp_path / "killed.h5") as run:
        ck = run.checkpoint()
        assert ck.step == 0 and len(run.steps) == 0
        np.testing.assert_array_equal(ck.initial, state.particles)
    simulate(cfg, out=tmp_path / "killed.h5", resume=True).close()
    simulate(cfg, out=tmp_path / "fresh.h5").close()
    assert contents(tmp_path / "killed.h5") == contents(tmp_path / "fresh.h5")


def test_resumed_at_its_final_checkpoint_a_run_records_nothing_twice(tmp_path):
    """Killed after its last checkpoint but before its status became ``completed``."""
    import h5py

    cfg = Config.from_dict({**CONFIG, "train": {**CONFIG["train"], "steps": 300}})
    out = tmp_path / "run.h5"
    simulate(cfg, out=out).close()
    expected = contents(out)
    with h5py.File(out, "r+") as h:
        h["meanfield"].attrs.modify("status", np.bytes_(b"running"))
    simulate(cfg, out=out, resume=True).close()
    assert contents(out) == expected


GD_CONFIG = {
    "model": {"m": 20, "activation": "tanh"},
    "data": {"d": 3, "n_train": 40, "n_test": 40},
    "train": {"algorithm": "gd", "lr": 0.05, "steps": 40000},
    "record": {"every": 10, "snapshot_every": 4000, "checkpoint_every": 1000},
    "run": {"seed": 5},
}

# where `meanfield run` is killed: (what to wait for, then how long to wait more in seconds);
# "launch" is the start of the process, "temporary" the file being built under its temporary
# name, "file" the file in place (step-0 checkpoint, then the first snapshot a few ms later),
# "step" a recorded step of the run
KILL_POINTS = [("launch", 0.3), ("temporary", 0.0), ("file", 0.0), ("file", 0.002),
               ("file", 0.01), ("file", 0.03), ("file", 0.1), ("file", 0.3),
               ("step", 15000), ("step", 33000)]


def _wait_for(proc, out, what, value):
    """Poll until ``what`` (see KILL_POINTS) happened for the run writing ``out``, or it ended."""
    def reached():
        if what == "temporary":
            return any(out.parent.glob(f".{out.name}.tmp-*")) or out.exists()
        if what == "file":
            return out.exists()
        return what == "launch" or progress(out) >= value
    while proc.poll() is None and not reached():
        time.sleep(0.001)
    if what != "step":
        time.sleep(value)


@pytest.mark.slow
def test_gd_killed_at_any_moment_resumes_bit_identically(tmp_path):
    """SIGKILL during start-up, while the file is built, between the step-0 checkpoint and
    the first snapshot, and mid-run: ``--resume`` always finishes with the uninterrupted run's
    particles and observables, bit for bit."""
    cfg = tmp_path / "gd.toml"
    cfg.write_text(Config.from_dict(GD_CONFIG).to_toml())
    ref = cli(["run", str(cfg), "-o", str(tmp_path / "ref.h5"), "-q"])
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    expected = contents(tmp_path / "ref.h5")
    kills = 0
    for i, (what, value) in enumerate(KILL_POINTS):
        out = tmp_path / f"killed{i}.h5"
        proc = cli(["run", str(cfg), "-o", str(out), "-q"])
        _wait_for(proc, out, what, value)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=300)
        resumed = cli(["run", str(cfg), "-o", str(out), "-q", "--resume"])
        assert resumed.wait(timeout=300) == 0, (what, value, resumed.stderr.read())
        assert contents(out) == expected, (what, value)
    assert kills >= 8
