"""Data: teacher output and signs, label corruption, input sampling, and bad data.

Teacher labels are checked against ``tests/reference.py`` (plain NumPy); label
corruption by its definition and by Monte-Carlo; every bad input through the
command line as a user meets it (subprocess: one line, exit 2, nothing written).
"""

from pathlib import Path

import numpy as np
import pytest

from meanfield.config import Config
from meanfield.config.resources import check_memory, estimate_memory
from meanfield.data import (
    Dataset, corrupt_labels, draw_inputs, load_dataset, make_dataset, make_teacher,
)
from meanfield.errors import InputError

import reference as ref
from test_cli import cli, tiny_toml

TINY = tiny_toml(steps=4, every=2, snapshot_every=2)


def assert_refused(result, *words, folder=None):
    """Exit 2, one line on stderr naming ``words``, no traceback, no file written."""
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    if folder is not None:
        leftovers = [p.name for p in Path(folder).iterdir() if p.suffix != ".toml"
                     and p.suffix not in (".npz", ".npy") and not p.name.startswith("in")]
        assert leftovers == [], leftovers


# ----------------------------------------------------------------------- teacher


@pytest.mark.parametrize("output", ["mean", "sum"])
@pytest.mark.parametrize("signs", ["alternating", "random"])
def test_teacher_labels_match_reference(output, signs):
    m0 = 5
    cfg = Config.from_dict({"data": {"d": 4, "teacher_m": m0, "teacher_output": output,
                                     "teacher_signs": signs, "n_train": 30, "n_test": 7}})
    data = make_dataset(cfg, np.random.default_rng(3))
    T = data.teacher
    a, s = T[:, :-1] , np.sign(T[:, -1])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-15)
    assert set(np.abs(T[:, -1])) == {m0 if output == "sum" else 1.0}
    if signs == "alternating":
        assert list(s) == [1, -1, 1, -1, 1]
    # f*(x) = sum_j s_j relu(t_j . x), or the mean, straight from the definition
    fstar = np.maximum(data.x_train @ a.T, 0.0) @ s
    expected = fstar if output == "sum" else fstar / m0
    assert np.allclose(data.y_train, expected, rtol=1e-13, atol=1e-14)
    assert np.allclose(ref.teacher_forward(T, data.x_train, "relu"), expected, rtol=1e-13)


def test_random_teacher_signs_are_fair_and_seeded():
    cfg = Config.from_dict({"data": {"teacher_m": 4000, "teacher_signs": "random"}})
    c = make_teacher(cfg, np.random.default_rng(0))[:, -1]
    assert set(c) == {-1.0, 1.0}
    # fair coin: mean within 4 standard errors (1/sqrt(4000)) of 0
    assert abs(c.mean()) < 4 / np.sqrt(4000)
    assert np.array_equal(c, make_teacher(cfg, np.random.default_rng(0))[:, -1])
    assert not np.array_equal(c, make_teacher(cfg, np.random.default_rng(1))[:, -1])


def test_default_teacher_unchanged_by_the_new_keys():
    base = Config.from_dict({"data": {"teacher_m": 3}})
    explicit = base.with_overrides(['data.teacher_output="mean"',
                                    'data.teacher_signs="alternating"'])
    a = make_dataset(base, np.random.default_rng(5))
    b = make_dataset(explicit, np.random.default_rng(5))
    for name in ("x_train", "y_train", "x_test", "y_test", "teacher"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.corrupted is None


@pytest.mark.parametrize("kind", ["gaussian", "sphere"])
def test_draw_inputs(kind):
    cfg = Config.from_dict({"data": {"d": 3, "input": kind}})
    x = draw_inputs(cfg, 20000, np.random.default_rng(0))
    assert x.shape == (20000, 3)
    if kind == "sphere":
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-15)
        cov = np.eye(3) / 3
    else:
        cov = np.eye(3)
    # second moments against the distribution's, to Monte-Carlo accuracy
    assert np.abs(x.T @ x / len(x) - cov).max() < 5 * np.sqrt(2 / len(x))


# ------------------------------------------------------------ label corruption


def test_corrupt_labels_by_definition():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(1000)
    out, idx = corrupt_labels(y, 0.3, np.random.default_rng(1))
    assert len(idx) == 300 and len(np.unique(idx)) == 300 and np.all(np.diff(idx) > 0)
    keep = np.setdiff1d(np.arange(1000), idx)
    assert np.array_equal(out[keep], y[keep])
    # each replacement is one of the training labels (drawn from the label marginal)
    assert np.isin(out[idx], y).all()
    # p = 0 leaves y alone, p = 1 is a shuffle of all labels
    out0, idx0 = corrupt_labels(y, 0.0, rng)
    assert np.array_equal(out0, y) and len(idx0) == 0
    out1, idx1 = corrupt_labels(y, 1.0, rng)
    assert np.array_equal(idx1, np.arange(1000)) and np.array_equal(np.sort(out1), np.sort(y))


def test_corrupted_labels_are_independent_of_the_clean_ones():
    # Monte-Carlo: correlation of the replaced labels with the labels they replace ~ 0
    y = np.random.default_rng(0).standard_normal(40000)
    out, idx = corrupt_labels(y, 0.5, np.random.default_rng(1))
    r = np.corrcoef(out[idx], y[idx])[0, 1]
    assert abs(r) < 4 / np.sqrt(len(idx))
    # and their marginal is the label marginal (two-sample: same mean and variance)
    assert abs(out[idx].mean() - y.mean()) < 4 * y.std() / np.sqrt(len(idx))
    assert abs(out[idx].var() / y.var() - 1) < 0.05


@pytest.mark.parametrize("kind", ["teacher", "random_labels"])
def test_label_corruption_in_make_dataset(kind):
    clean_cfg = Config.from_dict({"data": {"kind": kind, "n_train": 50}})
    cfg = clean_cfg.with_overrides(["data.label_corruption=0.4"])
    clean = make_dataset(clean_cfg, np.random.default_rng(7))
    data = make_dataset(cfg, np.random.default_rng(7))
    assert len(data.corrupted) == 20
    # everything else is the dataset without corruption
    for name in ("x_train", "x_test", "y_test", "teacher"):
        assert np.array_equal(getattr(data, name), getattr(clean, name))
    keep = np.setdiff1d(np.arange(50), data.corrupted)
    assert np.array_equal(data.y_train[keep], clean.y_train[keep])
    assert np.isin(data.y_train[data.corrupted], clean.y_train).all()
    assert data.validated(cfg).corrupted.tolist() == data.corrupted.tolist()


def test_label_corruption_of_file_data(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.standard_normal((40, 2)), y_train=rng.standard_normal(40),
                  x_test=rng.standard_normal((5, 2)), y_test=rng.standard_normal(5))
    np.savez(tmp_path / "d.npz", **arrays)
    cfg = Config.from_dict({"data": {"kind": "file", "path": str(tmp_path / "d.npz"), "d": 2,
                                     "label_corruption": 1.0}})
    data = make_dataset(cfg, np.random.default_rng(1))
    assert np.array_equal(np.sort(data.y_train), np.sort(arrays["y_train"]))
    assert np.array_equal(data.y_test, arrays["y_test"]) and len(data.corrupted) == 40


@pytest.mark.parametrize("bad", [[0, 0], [-1], [20], [[1, 2]], [0.5 + 1j]])
def test_bad_corrupted_indices(bad):
    cfg = Config.from_dict({"data": {"d": 1}})
    data = Dataset(np.zeros((20, 1)), np.zeros(20), np.zeros((2, 1)), np.zeros(2),
                   corrupted=np.array(bad))
    with pytest.raises(InputError, match="corrupted"):
        data.validated(cfg)


def test_corrupted_indices_stored_in_the_run_file(tmp_path):
    from meanfield.simulate import simulate
    from meanfield.storage import open_run
    cfg = Config.from_toml_text(TINY).with_overrides(["data.label_corruption=0.25"])
    data = make_dataset(cfg, np.random.default_rng(11))
    simulate(cfg, out=tmp_path / "r.h5", data=data).close()
    run = open_run(tmp_path / "r.h5")
    try:
        stored = run.data
    finally:
        run.close()
    assert len(stored.corrupted) == 5 and np.array_equal(stored.corrupted, data.corrupted)
    assert np.array_equal(stored.y_train, data.y_train)


# ----------------------------------------------------------------- bad data


def _arrays(dtype=float):
    rng = np.random.default_rng(0)
    return dict(x_train=rng.standard_normal((20, 3)).astype(dtype),
                y_train=rng.standard_normal(20).astype(dtype),
                x_test=rng.standard_normal((20, 3)).astype(dtype),
                y_test=rng.standard_normal(20).astype(dtype))


def test_complex_arrays_are_refused_not_truncated():
    cfg = Config.from_dict({"data": {"d": 3}})
    arrays = _arrays()
    arrays["y_train"] = arrays["y_train"] + 1e-3j
    with pytest.raises(InputError, match="y_train is complex"):
        Dataset(**arrays).validated(cfg)
    # even with a zero imaginary part: the dtype says the data are not real numbers
    with pytest.raises(InputError, match="x_test is complex"):
        Dataset(**{**_arrays(), "x_test": _arrays(complex)["x_test"]}).validated(cfg)


def _npz_not_zip(path):
    path.write_bytes(b"this is not a zip archive\n" * 10)


def _npz_broken_zip(path):
    np.savez(path, **_arrays())
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) // 2])


def _npz_is_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def _npz_pickled(path):
    np.savez(path, **{**_arrays(), "y_train": np.array([{"a": 1}] * 20, dtype=object)})


def _npz_complex(path):
    np.savez(path, **{**_arrays(), "x_train": _arrays(complex)["x_train"] * 1j})


@pytest.mark.parametrize("write", [_npz_not_zip, _npz_broken_zip, _npz_is_npy, _npz_pickled,
                                   _npz_complex])
def test_bad_npz_files(write, tmp_path):
    write(tmp_path / "in.npz")
    cfg = Config.from_dict({"data": {"d": 3, "kind": "file", "path": str(tmp_path / "in.npz")}})
    with pytest.raises(InputError, match="data.path"):
        load_dataset(cfg.data.path, cfg)


@pytest.mark.slow
@pytest.mark.parametrize("write", [_npz_not_zip, _npz_complex])
def test_bad_npz_files_cli(write, tmp_path):
    write(tmp_path / "in.npz")
    (tmp_path / "c.toml").write_text(
        TINY.replace("[data]\n", '[data]\nkind = "file"\npath = "in.npz"\n'))
    assert_refused(cli("run", "c.toml", "-o", "out.h5", cwd=tmp_path), "data.path",
                   folder=tmp_path)


@pytest.mark.slow
def test_data_path_is_relative_to_the_config_file(tmp_path):
    sub = tmp_path / "project"
    sub.mkdir()
    np.savez(sub / "in.npz", **_arrays())
    (sub / "c.toml").write_text(TINY.replace("[data]\n", '[data]\nkind = "file"\n'
                                             'path = "in.npz"\n'))
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = cli("run", sub / "c.toml", "-o", "out.h5", "--quiet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "out.h5").is_file()


# -------------------------------------------------------- sizes beyond the machine


BIG = 10**12


@pytest.mark.parametrize("override, key", [
    ("model.m=1000000000", "model.m"),
    (f"data.teacher_m={BIG}", "data.teacher_m"),
    (f"data.n_train={BIG}", "data.n_train"),
    (f"data.n_test={BIG}", "data.n_test"),
    (f"data.d={BIG}", "data.d"),
    (f"data.population_samples={BIG}", "data.population_samples"),
    (f"train.batch_size={BIG}", "train.batch_size"),
])
def test_memory_estimate_names_the_key(override, key):
    extra = ['train.algorithm="sgd"'] if "batch" in override else []
    extra += ["model.activation=tanh"] if "population" in override else []
    cfg = Config().with_overrides(extra + [override])
    with pytest.raises(InputError, match="needs about") as info:
        check_memory(cfg, available=64 * 2**30)
    assert key in str(info.value) and "64 GiB is available" in str(info.value)


def test_memory_estimate_of_a_deep_linear_network():
    cfg = Config.from_dict({"model": {"kind": "deep_linear", "depth": 3, "width": 10**6},
                            "data": {"kind": "linear_teacher"}})
    with pytest.raises(InputError, match="model.width = 1000000"):
        check_memory(cfg, available=64 * 2**30)
    check_memory(cfg.with_overrides(["model.width=100"]), available=64 * 2**30)


def test_memory_estimate_counts_the_arrays():
    cfg = Config.from_dict({"model": {"m": 1000}, "data": {"d": 9, "n_train": 100,
                                                           "n_test": 50}})
    parts = estimate_memory(cfg)
    # the particle term is a fixed number of (m, D) float64 arrays, the data term of (n, d + 1)
    assert parts["model.m = 1000 particles of 10 numbers"] % (8 * 1000 * 10) == 0
    n_part = [v for k, v in parts.items() if k.startswith("data.n_train")][0]
    assert n_part % (8 * 100 * 10) == 0
    check_memory(cfg, available=sum(parts.values()))
    with pytest.raises(InputError):
        check_memory(cfg, available=sum(parts.values()) - 1)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["model.m=1000000000"], [f"data.teacher_m={BIG}"], [f"data.n_train={BIG}"],
    [f"data.n_test={BIG}"], [f"data.d={BIG}"],
    ["model.activation=tanh", f"data.population_samples={BIG}"],
    ["train.algorithm=sgd", f"train.batch_size={BIG}"], [f"train.steps={2**62 + 1}"]])
def test_sizes_beyond_the_machine_cli(overrides, tmp_path):
    (tmp_path / "c.toml").write_text(TINY)
    key = overrides[-1].split("=")[0]
    sets = [a for o in overrides for a in ("--set", o)]
    assert_refused(cli("run", "c.toml", "-o", "out.h5", *sets, cwd=tmp_path), key,
                   folder=tmp_path)


# ------------------------------------------- the published parameterisation


def test_published_gd_step_is_a_gradient_step_on_the_loss_over_scaling_squared():
    # the port's update against central finite differences of its loss: the authors'
    # GDfor2NN steps by step on L / scaling^2 (its grad lacks the output's factor scaling)
    rng = np.random.default_rng(0)
    W, X, y = rng.standard_normal((4, 4)), rng.standard_normal((9, 3)), rng.standard_normal(9)
    step, scaling, h = 1e-3, 0.7, 1e-6
    grad = (W - ref.published_gd(W, X, y, scaling, step, 1)) / (step / scaling ** 2)
    fd = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        fd[idx] = (ref.published_loss(W + E, X, y, scaling)
                   - ref.published_loss(W - E, X, y, scaling)) / (2 * h)
    assert np.allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("scaling, tau", [(1.0, 0.5), (0.25, 2.0), (8 ** -0.5, 1.0)])
def test_published_gd_maps_to_alpha_and_lr(scaling, tau, tmp_path):
    """alpha = m * scaling, lr = m * step reproduce the published GD (README)."""
    from meanfield.simulate import simulate
    m, d, step, steps = 8, 5, min(10.0, 0.1 / tau ** 2), 200
    rng = np.random.default_rng(4)
    half = tau * rng.standard_normal((m // 2, d + 1))     # W ~ tau N(0, 1) entrywise
    W0 = np.vstack([half, half * np.r_[np.ones(d), -1.0]])  # symmetrised: f(W0) = 0
    np.save(tmp_path / "w0.npy", W0)
    alpha = m * scaling
    cfg = Config.from_dict({
        "model": {"m": m}, "scaling": {"alpha": alpha},
        "init": {"path": str(tmp_path / "w0.npy")},
        "data": {"d": d, "n_train": 20, "n_test": 30, "teacher_m": 3,
                 "teacher_output": "sum", "teacher_signs": "random"},
        "train": {"lr": m * step, "steps": steps},
        "record": {"every": steps, "snapshot_every": steps}})
    data = make_dataset(cfg, np.random.default_rng(5))
    run = simulate(cfg, data=data)
    W = ref.published_gd(W0, data.x_train, data.y_train, scaling, step, steps)
    expected = ref.published_loss(W, data.x_test, data.y_test, scaling)
    got = run.observable("test_loss").value[-1]
    assert abs(got - expected) <= 1e-10 * max(1.0, expected), (got, expected)
    assert np.allclose(run.particles(-1), W, rtol=1e-10, atol=1e-12)
    # and the run did train (the comparison is not between two runs that stood still)
    x, y = data.x_train, data.y_train
    assert ref.published_loss(W, x, y, scaling) < 0.75 * ref.published_loss(W0, x, y, scaling)
