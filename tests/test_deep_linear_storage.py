"""Deep linear runs in the run file: one H5MD particle group per layer, ``run.layers(k)``."""

import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from meanfield import deep_linear as dl
from meanfield import open_run, simulate
from meanfield.config import Config
from meanfield.deep_linear.data import dataset
from meanfield.errors import InputError
from meanfield.state import seed_streams

from test_deep_linear_engine import _config
from test_resume import interrupt_at


def _stack(run):
    return [np.asarray(w) for w in run.layers(slice(None))]


def test_file_holds_each_layer_of_every_snapshot(tmp_path):
    cfg = _config()
    with simulate(cfg, tmp_path / "run.h5") as run:
        stacks, steps = _stack(run), run.steps
        last = run.layers(-1)
        flat = run.particles(slice(None))
    net = dl.initialise("balanced", [4, 5, 5, 2], 0.7, seed_streams(cfg.run.seed).init)
    data = dataset(cfg, seed_streams(cfg.run.seed).data)
    gd = dl.GD(net.copy(), data.x_train, data.y_train, 4.0, 0.05)
    gd.advance(200)
    assert [w.shape for w in stacks] == [(5, 5, 4), (5, 5, 5), (5, 2, 5)]
    for j, (w0, w, ref0, ref) in enumerate(zip(stacks, last, net.layers, gd.net.layers)):
        np.testing.assert_array_equal(w0[0], ref0)  # snapshot 0: the init
        np.testing.assert_array_equal(w, ref)       # last snapshot: 200 GD steps
        np.testing.assert_array_equal(w, w0[-1])
    # the flat snapshots split into the same numbers
    for a, b in zip(stacks, dl.stored_layers(cfg, flat)):
        np.testing.assert_array_equal(a, b)
    with h5py.File(tmp_path / "run.h5", "r") as h5:
        for j, w in enumerate(stacks, start=1):
            g = h5[f"particles/layer_{j}"]
            assert g["box"].attrs["dimension"] == w.shape[2]
            assert list(g["box"].attrs["boundary"]) == [b"none"] * w.shape[2]
            np.testing.assert_array_equal(g["position/value"][()], w)
            np.testing.assert_array_equal(g["position/step"][()], steps)
            np.testing.assert_array_equal(g["position/time"][()], steps * cfg.train.lr)
            assert g["position/value"].dims[1][0].shape == (w.shape[1],)
            assert g["position/value"].fletcher32


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="needs h5dump (hdf5-tools)")
def test_h5dump_reads_a_layer(tmp_path):
    with simulate(_config(), tmp_path / "run.h5") as run:
        w = run.layers(-1)[1]
        k = len(run.steps) - 1
    out = subprocess.run(["h5dump", "-y", "-d", "/particles/layer_2/position/value", "-s",
                          f"{k},0,0", "-c", "1,5,5", "-m", "%.17g", str(tmp_path / "run.h5")],
                         capture_output=True, text=True, check=True).stdout
    text = out.split("DATA {", 1)[1].split("}", 1)[0]
    numbers = [float(x) for x in text.replace(",", " ").split()]
    np.testing.assert_array_equal(np.array(numbers).reshape(5, 5), w)


def test_end_to_end_runs_store_the_end_to_end_matrix(tmp_path):
    cfg = _config(train={"algorithm": "end_to_end", "lr": 0.02})
    with simulate(cfg, tmp_path / "run.h5") as run:
        (w,) = run.layers(-1)
        flat = run.particles(-1)
    np.testing.assert_array_equal(w, flat.reshape(2, 4))
    with h5py.File(tmp_path / "run.h5", "r") as h5:
        assert json_list(h5) == ["end_to_end"] and "layer_1" not in h5["particles"]
        np.testing.assert_array_equal(h5["particles/end_to_end/position/value"][-1], w)


def json_list(h5):
    return json.loads(h5["meanfield"].attrs["layers"])


@pytest.mark.parametrize("train", [{}, {"algorithm": "adam"}])
def test_in_memory_equals_file(tmp_path, train):
    cfg = _config(train=train, model={"depth": 1 if train else 3})
    with simulate(cfg) as mem, simulate(cfg, tmp_path / "run.h5") as disk:
        a, b = _stack(mem), _stack(disk)
        assert len(a) == cfg.model.depth and len(mem.steps) == 5
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(mem.layers(2), disk.layers(2)):
            np.testing.assert_array_equal(x, y)


def test_resumed_layers_equal_uninterrupted(tmp_path):
    cfg = _config(train={"steps": 400}, record={"checkpoint_every": 100})
    simulate(cfg, out=tmp_path / "full.h5").close()
    interrupt_at(cfg, tmp_path / "part.h5", 200)
    with open_run(tmp_path / "part.h5") as run:
        assert 0 < len(run.layers(slice(None))[0]) < 9  # the interrupted file holds part
    simulate(cfg, out=tmp_path / "part.h5", resume=True).close()
    with open_run(tmp_path / "full.h5") as full, open_run(tmp_path / "part.h5") as part:
        assert part.steps.tolist() == full.steps.tolist() == list(range(0, 401, 50))
        for x, y in zip(_stack(full), _stack(part)):
            assert x.tobytes() == y.tobytes()


def test_files_without_layer_groups_split_the_flat_snapshots(tmp_path):
    with simulate(_config(), tmp_path / "run.h5") as run:
        expected = _stack(run)
    with h5py.File(tmp_path / "run.h5", "r+") as h5:
        del h5["meanfield"].attrs["layers"]
    with open_run(tmp_path / "run.h5") as run:
        for x, y in zip(_stack(run), expected):
            np.testing.assert_array_equal(x, y)


def test_two_layer_runs_have_no_layers(tmp_path):
    with simulate(Config.from_dict({"train": {"steps": 5}}), tmp_path / "run.h5") as run:
        with pytest.raises(InputError, match="deep linear"):
            run.layers(-1)
    with h5py.File(tmp_path / "run.h5", "r") as h5:
        assert list(h5["particles"]) == ["network"] and "layers" not in h5["meanfield"].attrs
