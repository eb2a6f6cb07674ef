"""The run file: layout, round trip, replay with the reference, determinism."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import reference as ref
from meanfield import Config, open_run, simulate
from meanfield.data import make_dataset
from meanfield.state import seed_streams

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "model": {"m": 10, "activation": "tanh", "bias": True},
    "scaling": {"regime": "ntk", "kappa": 1.5},
    "data": {"d": 3, "n_train": 25, "n_test": 30, "noise": 0.1},
    "train": {"lr": 0.05, "steps": 57, "weight_decay": 0.01},
    "record": {"every": 5, "snapshot_every": 20},
    "run": {"seed": 11},
}


def test_replay_of_a_cli_run_with_the_reference(tmp_path):
    cfg_path = tmp_path / "small.toml"
    cfg_path.write_text(Config.from_dict(SMALL).to_toml())
    out = tmp_path / "small.h5"
    proc = subprocess.run([sys.executable, "-m", "meanfield.cli", "run", str(cfg_path),
                           "-o", str(out), "--quiet"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    with open_run(out) as run:
        p = run.parameters
        data = run.data
        assert list(run.steps) == [0, 20, 40, 57]
        P0, P_last = run.particles(0), run.particles(-1)
        P_ref = ref.gd(P0, data.x_train, data.y_train, p["activation"], p["loss"], p["alpha"],
                       p["bias"], p["weight_decay"], p["lr"], p["steps"])
        assert np.max(np.abs(P_last - P_ref)) <= 1e-12 * np.max(np.abs(P_ref))
        assert np.max(np.abs(run.particles(1) - ref.gd(
            P0, data.x_train, data.y_train, p["activation"], p["loss"], p["alpha"],
            p["bias"], p["weight_decay"], p["lr"], 20))) < 1e-12
        test = run.observable("test_loss")
        assert list(test.step) == list(range(0, 57, 5)) + [57]
        assert np.allclose(test.time, 0.05 * test.step)
        assert test.value[-1] == pytest.approx(ref.risk(
            P_last, data.x_test, data.y_test, p["activation"], p["loss"], p["alpha"], p["bias"]),
            rel=1e-12)
        vsq = run.observable("velocity_sq").value[0]
        V0 = ref.velocity(P0, data.x_train, data.y_train, p["activation"], p["loss"],
                          p["alpha"], p["bias"], p["weight_decay"])
        assert vsq == pytest.approx(np.mean(np.sum(V0 ** 2, axis=1)), rel=1e-12)


def test_file_layout_follows_h5md(tmp_path):
    cfg = Config.from_dict(SMALL)
    simulate(cfg, out=tmp_path / "r.h5").close()
    with h5py.File(tmp_path / "r.h5", "r") as h:
        assert list(h["h5md"].attrs["version"]) == [1, 1]
        assert h["h5md/creator"].attrs["name"] == b"meanfield"  # fixed-length, as H5MD says
        assert "name" in h["h5md/author"].attrs
        box = h["particles/network/box"]
        assert box.attrs["dimension"] == 5 and len(box.attrs["boundary"]) == 5
        pos = h["particles/network/position"]
        assert pos["value"].shape == (4, 10, 5) and pos["value"].dtype == np.float64
        assert np.prod(pos["value"].chunks) * 8 <= 1 << 20
        assert pos["step"].shape == pos["time"].shape == (4,)
        for name in ("train_loss", "test_loss", "velocity_sq", "displacement"):
            g = h["observables"][name]
            assert g["value"].shape == g["step"].shape == g["time"].shape
        attrs = h["parameters"].attrs
        assert attrs["alpha"] == pytest.approx(1.5 * np.sqrt(10))
        for key in ("m", "d", "lr", "weight_decay", "seed", "activation", "loss",
                    "algorithm", "bias", "config"):
            assert key in attrs
        assert attrs["bias"] == 1  # an integer: HDF5 1.10 tools cannot read HDF5 2's booleans
        assert attrs["activation"] == "tanh" and attrs["algorithm"] == "gd"
        assert Config.from_toml_text(attrs["config"]) == cfg
        assert h["meanfield"].attrs["status"] == b"completed"
        assert h["meanfield/teacher"].shape == (3, 4)


def test_stored_data_is_the_data_of_the_seed(tmp_path):
    cfg = Config.from_dict(SMALL)
    run = simulate(cfg, out=tmp_path / "r.h5")
    data = make_dataset(cfg, seed_streams(cfg.run.seed)[0])
    stored = run.data
    for name in ("x_train", "y_train", "x_test", "y_test", "teacher"):
        assert np.array_equal(getattr(stored, name), getattr(data, name))
    # the data of a seed does not depend on the width
    other = make_dataset(cfg.with_overrides(["model.m=40"]), seed_streams(cfg.run.seed)[0])
    assert np.array_equal(other.x_train, data.x_train)


def test_same_seed_gives_bit_identical_files(tmp_path):
    cfg = Config.from_dict({**SMALL, "train": {"algorithm": "sgd", "batch_size": 7,
                                               "steps": 60, "lr": 0.05, "temperature": 1e-4}})
    runs = [simulate(cfg, out=tmp_path / f"r{i}.h5") for i in range(2)]
    a, b = (r.particles(slice(None)) for r in runs)
    assert a.tobytes() == b.tobytes()
    for name in runs[0].observable_names:
        assert runs[0].observable(name).value.tobytes() == runs[1].observable(name).value.tobytes()
    c = simulate(cfg.with_overrides(["run.seed=12"])).particles(-1)
    assert not np.array_equal(c, a[-1])


def test_readable_while_written(tmp_path):
    cfg = Config.from_dict({**SMALL, "train": {"steps": 200, "lr": 0.05},
                            "record": {"every": 10, "snapshot_every": 50}})
    out = tmp_path / "live.h5"
    seen = []

    def peek(step, P):
        with open_run(out) as live:
            seen.append((step, live.status, int(live.steps[-1]),
                         int(live.observable("train_loss").step[-1])))

    simulate(cfg, out=out, callback=peek).close()
    assert [s[0] for s in seen] == [50, 100, 150, 200]
    assert all(status == "running" for _, status, _, _ in seen)
    assert [s[2] for s in seen] == [50, 100, 150, 200]
    assert [s[3] for s in seen] == [40, 90, 140, 200]  # the last chunk ends with the final row


def test_in_memory_run_and_user_data():
    cfg = Config.from_dict({"model": {"m": 6}, "data": {"d": 2}, "train": {"steps": 20}})
    rng = np.random.default_rng(0)
    from meanfield import Dataset
    data = Dataset(rng.standard_normal((9, 2)), rng.standard_normal(9),
                   rng.standard_normal((4, 2)), rng.standard_normal(4))
    run = simulate(cfg, data=data)
    assert run.path is None and run.status == "completed"
    assert np.array_equal(run.data.x_train, data.x_train) and run.teacher is None
    assert "completed" in repr(run)


def test_divergence_is_recorded(tmp_path):
    cfg = Config.from_dict({**SMALL, "train": {"lr": 1e4, "steps": 500},
                            "model": {"m": 10, "activation": "linear"}})
    run = simulate(cfg, out=tmp_path / "div.h5")
    assert run.status == "diverged"
    assert "step" in run.message
    assert run.steps[-1] < 500
    assert np.all(np.isfinite(run.observable("train_loss").value))
