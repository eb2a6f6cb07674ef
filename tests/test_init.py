"""Initialisation: the distributions of [init], and starting from stored particles.

Each distribution is checked by Monte-Carlo moments against its definition;
``init.path`` against the array it was given, and every bad value of it
through the command line (one line, exit 2, nothing written).
"""

import numpy as np
import pytest

from meanfield.config import Config
from meanfield.errors import InputError
from meanfield.scaling import init_particles, load_particles
from test_cli import cli, tiny_toml

N = 40000


def particles(**init):
    cfg = Config.from_dict({"model": {"m": N}, "data": {"d": 4}, "init": init})
    return init_particles(cfg, np.random.default_rng(0))


def within_mc(estimate, exact, sd, k=5.0):
    """|estimate - exact| within k standard errors of a mean of N draws with std ``sd``."""
    return abs(estimate - exact) <= k * sd / np.sqrt(N)


@pytest.mark.parametrize("kind, var", [("gaussian", 1 / 4), ("standard", 1.0)])
@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_a_gaussian_and_standard(kind, var, tau):
    a = particles(a=kind, tau=tau)[:, :4]
    # entries N(0, tau^2 var): mean 0, second moment tau^2 var (std of a^2 is sqrt(2) tau^2 var)
    assert within_mc(a.mean(), 0.0, tau * np.sqrt(var) / 2)
    assert within_mc((a ** 2).mean(), tau ** 2 * var, np.sqrt(2) * tau ** 2 * var / 2)
    cov = a.T @ a / N
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 5 * tau ** 2 * var / np.sqrt(N)


def test_a_sphere():
    a = particles(a="sphere", tau=3.0)[:, :4]
    assert np.allclose(np.linalg.norm(a, axis=1), 3.0, atol=1e-14)


@pytest.mark.parametrize("tau", [1.0, 0.2])
def test_c_uniform(tau):
    c = particles(c="uniform", tau=tau)[:, -1]
    assert c.min() >= 0.0 and c.max() < tau
    # U(0, tau): mean tau/2, variance tau^2/12
    assert within_mc(c.mean(), tau / 2, tau / np.sqrt(12))
    assert within_mc(c.var(), tau ** 2 / 12, tau ** 2 / np.sqrt(180))


def test_illustration_init_is_symmetric_unit_a_uniform_c():
    # the 2-D illustration: unit-norm a, c ~ U(0, 1), symmetrised, then scaled by tau
    cfg = Config.from_dict({"model": {"m": 16}, "data": {"d": 2},
                            "init": {"a": "sphere", "c": "uniform", "symmetric": True,
                                     "tau": 0.2}})
    P = init_particles(cfg, np.random.default_rng(1))
    assert np.allclose(np.linalg.norm(P[:, :2], axis=1), 0.2, atol=1e-15)
    assert np.array_equal(P[0::2, :2], P[1::2, :2])
    assert np.array_equal(P[0::2, 2], -P[1::2, 2]) and np.all(P[0::2, 2] >= 0)


def test_defaults_are_unchanged():
    # a ~ N(0, I/d), c ~ N(0, 1): the same draws as before the new choices existed
    cfg = Config.from_dict({"model": {"m": 5}, "data": {"d": 3}})
    P = init_particles(cfg, np.random.default_rng(2))
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 3)) / np.sqrt(3)
    c = rng.standard_normal(5)
    assert np.array_equal(P, np.hstack([a, c[:, None]]))


# ------------------------------------------------------------------- init.path


def config_for(path, m=6, d=3, bias=False):
    return Config.from_dict({"model": {"m": m, "bias": bias}, "data": {"d": d},
                             "init": {"path": str(path)}})


@pytest.mark.parametrize("bias", [False, True])
def test_init_from_npy(tmp_path, bias):
    D = 3 + (2 if bias else 1)
    P0 = np.random.default_rng(0).standard_normal((6, D))
    np.save(tmp_path / "p.npy", P0)
    P = init_particles(config_for(tmp_path / "p.npy", bias=bias), np.random.default_rng(1))
    assert np.array_equal(P, P0) and P.flags.c_contiguous and P.dtype == np.float64
    # a float32 or Fortran-ordered array is taken as float64, C order
    np.save(tmp_path / "q.npy", np.asfortranarray(P0.astype(np.float32)))
    Q = init_particles(config_for(tmp_path / "q.npy", bias=bias), np.random.default_rng(1))
    assert np.array_equal(Q, P0.astype(np.float32)) and Q.flags.c_contiguous


def _tiny_run(path, m=6):
    from meanfield.simulate import simulate
    cfg = Config.from_dict({"model": {"m": m}, "data": {"d": 3, "n_train": 10, "n_test": 5},
                            "train": {"steps": 6},
                            "record": {"every": 2, "snapshot_every": 2}})
    simulate(cfg, out=path).close()


def _snapshots(path):
    from meanfield.storage import open_run
    run = open_run(path)
    try:
        return [run.particles(k) for k in range(len(run.steps))]
    finally:
        run.close()


def test_init_from_run_file(tmp_path):
    _tiny_run(tmp_path / "r.h5")
    snaps = _snapshots(tmp_path / "r.h5")
    assert len(snaps) == 4
    spec = str(tmp_path / "r.h5")
    assert np.array_equal(load_particles(spec, config_for(spec)), snaps[-1])
    for k in (0, 2, -2):
        assert np.array_equal(load_particles(f"{spec}:{k}", config_for(spec)), snaps[k])


def test_init_path_bad_values(tmp_path):
    good = np.zeros((6, 4))
    cases = {
        "missing.npy": None,
        "wrong_m.npy": np.zeros((5, 4)),
        "wrong_D.npy": np.zeros((6, 5)),
        "one_dim.npy": np.zeros(24),
        "nan.npy": np.where(np.eye(6, 4) > 0, np.nan, 0.0),
        "inf.npy": np.where(np.eye(6, 4) > 0, -np.inf, 0.0),
        "complex.npy": good + 1j,
        "strings.npy": np.full((6, 4), "x"),
    }
    for name, array in cases.items():
        if array is not None:
            np.save(tmp_path / name, array)
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "pickled.npy").write_bytes(b"")
    np.save(tmp_path / "objects.npy", np.array([None] * 24).reshape(6, 4), allow_pickle=True)
    (tmp_path / "text.h5").write_text("not HDF5")
    np.save(tmp_path / "good.npy", good)
    names = list(cases) + ["garbage.npy", "pickled.npy", "objects.npy", "text.h5",
                           "good.npy:1"]
    for name in names:
        spec = str(tmp_path / name)
        with pytest.raises(InputError, match="init.path") as info:
            init_particles(config_for(spec), np.random.default_rng(0))
        assert "\n" not in str(info.value)


def test_init_path_snapshot_out_of_range(tmp_path):
    _tiny_run(tmp_path / "r.h5")
    spec = str(tmp_path / "r.h5")
    for k in (4, -5):
        with pytest.raises(InputError, match="no snapshot"):
            load_particles(f"{spec}:{k}", config_for(spec))
    with pytest.raises(InputError, match="model.m = 8"):
        load_particles(spec, config_for(spec, m=8))


# ------------------------------------------------------------------- CLI


TINY = tiny_toml(m=6, n_train=10, n_test=5, steps=2, every=1, snapshot_every=1)


@pytest.mark.slow
def test_cli_runs_from_a_stored_init_relative_to_the_config(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    P0 = np.random.default_rng(0).standard_normal((6, 4))
    np.save(sub / "p.npy", P0)
    (sub / "c.toml").write_text(TINY + '\n[init]\npath = "p.npy"\n')
    result = cli("run", sub / "c.toml", "-o", "out.h5", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(_snapshots(tmp_path / "out.h5")[0], P0)


@pytest.mark.slow
@pytest.mark.parametrize("sets, words", [
    (["init.path=missing.npy"], ["init.path", "no such file"]),
    (["init.path=bad.npy"], ["init.path", "(5, 4)", "model.m = 6"]),
    (["init.path=bad.npy:0"], ["init.path", "snapshot index"]),
    (["init.a=normal"], ["init.a", "standard"]),
    (["init.c=beta"], ["init.c", "uniform"]),
    (["data.teacher_output=max"], ["data.teacher_output", "sum"]),
    (["data.teacher_signs=none"], ["data.teacher_signs", "random"]),
    (["data.label_corruption=1.5"], ["data.label_corruption", "[0, 1]"]),
    (["data.label_corruption=yes"], ["data.label_corruption", "number"]),
    (["train.algorithm=ggn", "loss.name=logistic"], ["ggn", "squared"]),
    (["train.damping=-1"], ["train.damping"]),
    (["record.compression=zip"], ["record.compression"]),
    (["record.checkpoint_seconds=0"], ["record.checkpoint_seconds"]),
])
def test_cli_bad_values(tmp_path, sets, words):
    np.save(tmp_path / "bad.npy", np.zeros((5, 4)))
    (tmp_path / "c.toml").write_text(TINY)
    args = [a for s in sets for a in ("--set", s)]
    result = cli("run", "c.toml", "-o", "out.h5", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy", "c.toml"]
