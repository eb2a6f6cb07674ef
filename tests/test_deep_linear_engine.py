"""Deep linear networks through the engine: config keys, simulate, run files, resume, CLI."""


import numpy as np
import pytest

from meanfield import deep_linear as dl
from meanfield import simulate
from meanfield.config import Config
from meanfield.deep_linear.data import dataset
from meanfield.errors import InputError
from meanfield.state import seed_streams

from test_cli import assert_input_error, cli
from test_resume import contents, interrupt_at

BASE = {"model": {"kind": "deep_linear", "depth": 3, "width": 5, "outputs": 2},
        "data": {"kind": "linear_teacher", "d": 4, "n_train": 60, "n_test": 50, "noise": 0.1},
        "loss": {"name": "lp", "p": 4.0}, "init": {"layers": "balanced", "tau": 0.7},
        "train": {"lr": 0.05, "steps": 200}, "record": {"every": 10, "snapshot_every": 50}}


def _config(**sections):
    tables = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        tables.setdefault(section, {}).update(values)
    return Config.from_dict(tables)


@pytest.mark.parametrize("section, values, needle", [
    ("model", {"depth": 0}, "model.depth"),
    ("model", {"width": 0}, "model.width"),
    ("model", {"outputs": 0}, "model.outputs"),
    ("model", {"kind": "cnn"}, "model.kind"),
    ("loss", {"p": 1.5}, "loss.p"),
    ("loss", {"p": float("inf")}, "loss.p"),
    ("loss", {"name": "logistic"}, "loss.name"),
    ("init", {"layers": "orthogonal"}, "init.layers"),
    ("init", {"layers": "identity"}, "identity"),
    ("model", {"width": 1}, "model.width"),
    ("data", {"kind": "teacher"}, "data.kind"),
    ("train", {"algorithm": "adam"}, "model.depth"),
    ("train", {"algorithm": "sgd"}, "train.algorithm"),
    ("train", {"algorithm": "end_to_end", "track_end_to_end": True}, "track_end_to_end"),
    ("train", {"weight_decay": 0.1}, "train.weight_decay"),
    ("train", {"model": "tangent"}, "train.model"),
    ("data", {"label_corruption": 0.1}, "data.label_corruption"),
])
def test_bad_deep_linear_keys(section, values, needle):
    with pytest.raises(InputError, match=needle.replace(".", r"\.")):
        _config(**{section: values})


@pytest.mark.parametrize("tables, needle", [
    ({"loss": {"name": "lp"}}, "loss.name"),
    ({"data": {"kind": "linear_teacher"}}, "data.kind"),
    ({"train": {"algorithm": "end_to_end"}}, "train.algorithm"),
    ({"train": {"track_end_to_end": True}}, "track_end_to_end"),
])
def test_deep_linear_values_refused_for_two_layer_networks(tables, needle):
    with pytest.raises(InputError, match=needle.replace(".", r"\.")):
        Config.from_dict(tables)


def test_cli_exit_2_on_a_bad_key(tmp_path):
    cfg = _config()
    (tmp_path / "run.toml").write_text(cfg.to_toml())
    result = cli("run", "run.toml", "-o", "out.h5", "--set", "loss.p=1", cwd=tmp_path)
    assert_input_error(result, "loss.p", output=tmp_path / "out.h5")


def test_gd_run_matches_the_package_trainer_and_stores_every_layer(tmp_path):
    cfg = _config(train={"track_end_to_end": True})
    with simulate(cfg, tmp_path / "run.h5") as run:
        assert run.status == "completed"
        layers = dl.stored_layers(run.config, run.particles(-1))
        loss = run.observable("train_loss")
        gap = run.observable("end_to_end_gap").value[-1]
        delta = run.observable("balancedness").value
    data = dataset(cfg, seed_streams(cfg.run.seed).data)
    net = dl.initialise("balanced", [4, 5, 5, 2], 0.7, seed_streams(cfg.run.seed).init)
    gd = dl.GD(net, data.x_train, data.y_train, 4.0, 0.05)
    losses = gd.advance(200)
    flow = dl.EndToEnd(net.end_to_end(), 3, data.x_train, data.y_train, 4.0, 0.05)
    flow.advance(200)
    assert [w.shape for w in layers] == [(5, 4), (5, 5), (2, 5)]
    for a, b in zip(layers, gd.net.layers):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loss.value[:-1], losses[::10], rtol=1e-12)
    assert gap == pytest.approx(dl.end_to_end_gap(gd.end_to_end(), flow.end_to_end()), rel=1e-12)
    assert delta[0] < 1e-12 < delta[-1]


@pytest.mark.parametrize("algorithm, depth", [("end_to_end", 3), ("adagrad", 1), ("adam", 1)])
def test_other_algorithms_descend(algorithm, depth):
    with simulate(_config(train={"algorithm": algorithm, "lr": 0.02},
                          model={"depth": depth})) as run:
        loss = run.observable("train_loss").value
        assert run.status == "completed" and loss[-1] < 0.5 * loss[0]
        assert run.particles(-1).shape == (1, 8)
        assert "balancedness" not in run.observable_names
        assert run.observable("sigma_min").value[-1] > 0


@pytest.mark.parametrize("train", [{"track_end_to_end": True}, {"algorithm": "adam"},
                                   {"algorithm": "adagrad"}])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, train):
    cfg = _config(train={**train, "steps": 400}, model={"depth": 1 if "algorithm" in train else 3},
                  record={"checkpoint_every": 100})
    simulate(cfg, out=tmp_path / "full.h5").close()
    interrupt_at(cfg, tmp_path / "part.h5", 200)
    simulate(cfg, out=tmp_path / "part.h5", resume=True).close()
    assert contents(tmp_path / "part.h5") == contents(tmp_path / "full.h5")


def test_divergence_is_reported():
    with simulate(_config(train={"lr": 50.0})) as run:
        assert run.status == "diverged"


@pytest.mark.slow
def test_cli_run_info_and_plot(tmp_path):
    (tmp_path / "run.toml").write_text(_config().to_toml())
    assert cli("run", "run.toml", "-o", "run.h5", cwd=tmp_path).returncode == 0
    info = cli("info", "run.h5", cwd=tmp_path)
    assert info.returncode == 0 and "deep_linear depth=3 width=5 outputs=2 d=4" in info.stdout
    assert "balancedness" in info.stdout and "deficiency_margin" in info.stdout
    assert cli("plot", "run.h5", "-o", "run.png", cwd=tmp_path).returncode == 0
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"
    assert_input_error(cli("plot", "run.h5", "-o", "p.png", "--kind", "particles", cwd=tmp_path),
                       "deep linear", output=tmp_path / "p.png")
    for command in ("certify", "gram"):
        assert_input_error(cli(command, "run.h5", cwd=tmp_path), command, "deep linear")


@pytest.mark.slow
def test_sweep_over_depth(tmp_path):
    from meanfield.sweep import collect, plan, run_local

    (tmp_path / "base.toml").write_text(_config().to_toml())
    (tmp_path / "sweep.toml").write_text('base = "base.toml"\n[grid]\n"model.depth" = [1, 2, 3]\n'
                                         '"loss.p" = [2.0, 4.0]\n')
    run_local(plan(tmp_path / "sweep.toml", tmp_path / "out").folder)
    rows, problems = collect(tmp_path / "out")
    assert len(rows) == 6 and not problems and {r["status"] for r in rows} == {"completed"}
    delta = {(r["model.depth"], r["loss.p"]): r["final.balancedness"] for r in rows}
    assert sorted(delta) == [(n, p) for n in (1, 2, 3) for p in (2.0, 4.0)]
    assert delta[1, 2.0] == delta[1, 4.0] == 0.0 < min(delta[3, 2.0], delta[3, 4.0])
