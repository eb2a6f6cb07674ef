"""Configuration: building, defaults, TOML round trip, alpha, ``--set`` parsing, errors.

Every invalid input must raise :class:`meanfield.errors.InputError` (never another
exception type) with a message that names the offending key or path.
"""

import dataclasses
import math

import numpy as np
import pytest

from meanfield.config import (
    Config,
    as_config,
    DataConfig,
    InitConfig,
    LossConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    ScalingConfig,
    TrainConfig,
)
from meanfield.config.tomlio import resolve_paths
from meanfield.data import Dataset
from meanfield.errors import InputError

SECTIONS = ("model", "scaling", "init", "data", "loss", "train", "record", "run", "grow")


def raises_naming(key, fn, *args, **kwargs):
    """Call ``fn`` and check it raises exactly an InputError whose message contains ``key``."""
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert key in message, f"{key!r} not named in error message {message!r}"
    assert "\n" not in message.strip(), f"error message is not one line: {message!r}"
    return message


# --------------------------------------------------------------------- defaults


def test_empty_dict_gives_all_defaults():
    cfg = Config.from_dict({})
    assert cfg == Config()
    assert cfg.model == ModelConfig()
    assert cfg.model.m == 100 and cfg.model.activation == "relu" and cfg.model.bias is False
    assert cfg.scaling.regime == "mean_field" and cfg.scaling.kappa == 1.0
    assert cfg.scaling.alpha is None
    assert cfg.train.algorithm == "gd" and cfg.train.lr == 0.1 and cfg.train.steps == 1000
    assert cfg.loss.name == "squared"
    assert cfg.data.kind == "teacher"


def test_partial_section_fills_the_rest_with_defaults():
    cfg = Config.from_dict({"model": {"m": 8}, "train": {"lr": 0.25}})
    assert cfg.model.m == 8
    assert cfg.model.activation == ModelConfig().activation
    assert cfg.model.bias == ModelConfig().bias
    assert cfg.train.lr == 0.25
    assert cfg.train.steps == TrainConfig().steps
    # untouched sections are exactly the defaults
    assert cfg.scaling == ScalingConfig()
    assert cfg.init == InitConfig()
    assert cfg.data == DataConfig()
    assert cfg.loss == LossConfig()
    assert cfg.record == RecordConfig()
    assert cfg.run == RunConfig()


def test_to_dict_has_every_section_and_key():
    d = Config.from_dict({"model": {"m": 8}}).to_dict()
    assert tuple(d) == SECTIONS
    assert set(d["model"]) == {"m", "activation", "bias", "kind", "depth", "width", "outputs"}
    assert d["model"]["m"] == 8
    # alpha is unset by default and therefore left out (TOML has no null)
    assert "alpha" not in d["scaling"]
    assert Config.from_dict({"scaling": {"alpha": 3.0}}).to_dict()["scaling"]["alpha"] == 3.0


def test_int_accepted_for_float_and_stored_as_float():
    cfg = Config.from_dict({"train": {"lr": 1}, "scaling": {"kappa": 2}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.scaling.kappa == 2.0 and isinstance(cfg.scaling.kappa, float)


def test_from_toml_text_and_from_toml_file(tmp_path):
    text = '[model]\nm = 12\nactivation = "tanh"\n\n[train]\nlr = 0.5\nsteps = 7\n'
    cfg = Config.from_toml_text(text)
    assert (cfg.model.m, cfg.model.activation, cfg.train.lr, cfg.train.steps) == (12, "tanh", 0.5, 7)
    assert cfg.data == DataConfig()
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert Config.from_toml(path) == cfg
    assert Config.from_toml(str(path)) == cfg


def test_from_toml_applies_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nm = 12\n")
    cfg = Config.from_toml(path, ["model.m=4", "train.lr=0.5", "model.activation=tanh"])
    assert cfg.model.m == 4 and cfg.train.lr == 0.5 and cfg.model.activation == "tanh"
    # later overrides win
    assert Config.from_toml(path, ["model.m=4", "model.m=6"]).model.m == 6


# ------------------------------------------------------------------ round trip


ROUND_TRIP_CASES = {
    "defaults": {},
    "tiny": {"model": {"m": 8}, "data": {"d": 3, "n_train": 20, "n_test": 20},
             "train": {"steps": 30}, "record": {"every": 5, "snapshot_every": 10}},
    "everything_changed": {
        "model": {"m": 6, "activation": "tanh", "bias": True},
        "scaling": {"regime": "ntk", "kappa": 0.3},
        "init": {"a": "sphere", "b": "zero", "c": "sign", "tau": 1e-3, "symmetric": True},
        "data": {"kind": "random_labels", "d": 5, "n_train": 7, "n_test": 9,
                 "input": "sphere", "teacher_m": 4, "teacher_activation": "sigmoid",
                 "noise": 0.125},
        "loss": {"name": "logistic"},
        "train": {"algorithm": "sgd", "lr": 1 / 3, "steps": 0, "batch_size": 3,
                  "weight_decay": 1e-7, "temperature": 2.5e-12},
        "record": {"every": 1, "snapshot_every": 3},
        "run": {"seed": 2**63 - 1},
    },
    "explicit_alpha": {"scaling": {"regime": "lazy", "kappa": 50.0, "alpha": 0.1 + 0.2}},
    "explicit_alpha_tiny": {"scaling": {"alpha": 1e-300}},
    "huge_kappa": {"scaling": {"kappa": 1e300}},
    "quotes_in_path": {"data": {"kind": "file", "path": 'dir with space/we"ird \\ it\'s.npz'}},
    "backslashes": {"data": {"kind": "file", "path": "C:\\data\\x.npz"}},
    "unicode_and_tab": {"data": {"kind": "file", "path": "données\tß ✓.h5"}},
    "toml_lookalike": {"data": {"kind": "file", "path": '"] [model] m = 1 # "'}},
}


@pytest.mark.parametrize("tables", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_toml_round_trip(tables, tmp_path):
    cfg = Config.from_dict(tables)
    text = cfg.to_toml()
    back = Config.from_toml_text(text)
    assert back == cfg
    assert back.alpha == cfg.alpha
    # and through a file
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    # a relative data.path in a file is relative to the file's folder
    assert Config.from_toml(path) == Config.from_dict(resolve_paths(tables, tmp_path))
    # the text is stable (to_toml of the read-back config is identical)
    assert back.to_toml() == text


def test_round_trip_keeps_explicit_alpha_and_none():
    with_alpha = Config.from_dict({"scaling": {"regime": "ntk", "alpha": 2.5}, "model": {"m": 16}})
    back = Config.from_toml_text(with_alpha.to_toml())
    assert back.scaling.alpha == 2.5 and back.alpha == 2.5
    without = Config.from_dict({"scaling": {"regime": "ntk"}, "model": {"m": 16}})
    back = Config.from_toml_text(without.to_toml())
    assert back.scaling.alpha is None and back.alpha == 4.0


def test_round_trip_distinguishes_configs():
    # a sanity check that the round-trip comparison can fail
    a = Config.from_dict({"model": {"m": 8}})
    b = Config.from_toml_text(a.to_toml().replace("m = 8", "m = 9"))
    assert b != a and b.model.m == 9


@pytest.mark.parametrize("path", ["line\nbreak.npz", "ctl\x01.npz", "del\x7f.npz"])
def test_round_trip_string_with_control_characters(path):
    cfg = Config.from_dict({"data": {"kind": "file", "path": path}})
    assert Config.from_toml_text(cfg.to_toml()) == cfg


# ----------------------------------------------------------------------- alpha


@pytest.mark.parametrize("m", [1, 4, 64, 1000])
@pytest.mark.parametrize("kappa", [1.0, 0.5, 3.0])
def test_alpha_mean_field_is_kappa(m, kappa):
    cfg = Config.from_dict({"model": {"m": m}, "scaling": {"regime": "mean_field", "kappa": kappa}})
    assert cfg.alpha == pytest.approx(kappa, rel=1e-15)


@pytest.mark.parametrize("m", [1, 4, 64, 1000])
@pytest.mark.parametrize("kappa", [1.0, 0.5, 3.0])
def test_alpha_ntk_is_kappa_sqrt_m(m, kappa):
    cfg = Config.from_dict({"model": {"m": m}, "scaling": {"regime": "ntk", "kappa": kappa}})
    assert cfg.alpha == pytest.approx(kappa * math.sqrt(m), rel=1e-12)


@pytest.mark.parametrize("m", [1, 64, 1000])
def test_alpha_lazy_is_kappa(m):
    cfg = Config.from_dict({"model": {"m": m}, "scaling": {"regime": "lazy", "kappa": 100.0}})
    assert cfg.alpha == pytest.approx(100.0, rel=1e-15)


def test_alpha_docstring_example():
    assert Config.from_dict({"model": {"m": 64}, "scaling": {"regime": "ntk"}}).alpha == 8.0
    assert Config.from_dict({"model": {"m": 100}, "scaling": {"regime": "ntk", "kappa": 2.0}}).alpha == 20.0


@pytest.mark.parametrize("regime", ["mean_field", "ntk", "lazy"])
def test_explicit_alpha_wins(regime):
    cfg = Config.from_dict({"model": {"m": 49},
                            "scaling": {"regime": regime, "kappa": 3.0, "alpha": 0.7}})
    assert cfg.alpha == 0.7


def test_alpha_follows_overrides():
    cfg = Config.from_dict({"model": {"m": 16}, "scaling": {"regime": "ntk"}})
    assert cfg.alpha == 4.0
    assert cfg.with_overrides(["model.m=25"]).alpha == 5.0
    assert cfg.with_overrides(["scaling.regime=mean_field"]).alpha == 1.0
    assert cfg.with_overrides(["scaling.alpha=0.25"]).alpha == 0.25


# ------------------------------------------------------------ --set parsing


def test_with_overrides_returns_new_config_and_leaves_original():
    cfg = Config.from_dict({"model": {"m": 8}})
    new = cfg.with_overrides(["model.m=16"])
    assert new.model.m == 16
    assert cfg.model.m == 8
    assert new.with_overrides([]) == new


@pytest.mark.parametrize("item, section, key, expected", [
    ("model.m=16", "model", "m", 16),
    ("train.lr=0.5", "train", "lr", 0.5),
    ("train.lr=1e-3", "train", "lr", 1e-3),
    ("train.lr=2", "train", "lr", 2.0),
    ("train.steps=0", "train", "steps", 0),
    ("run.seed=1_000", "run", "seed", 1000),
    ("model.bias=true", "model", "bias", True),
    ("init.symmetric=false", "init", "symmetric", False),
    ("model.activation=tanh", "model", "activation", "tanh"),
    ("model.activation= tanh ", "model", "activation", "tanh"),
    ('model.activation="sigmoid"', "model", "activation", "sigmoid"),
    ("model.activation='erf'", "model", "activation", "erf"),
    ("loss.name=logistic", "loss", "name", "logistic"),
    ("train.algorithm=sgd", "train", "algorithm", "sgd"),
    ("scaling.regime=ntk", "scaling", "regime", "ntk"),
    ("data.kind=random_labels", "data", "kind", "random_labels"),
    ("data.path=some/dir/x.npz", "data", "path", "some/dir/x.npz"),
    ('data.path="with=equals and \\"quote\\".npz"', "data", "path", 'with=equals and "quote".npz'),
    ("data.path=a=b.npz", "data", "path", "a=b.npz"),
    ('data.path="123"', "data", "path", "123"),
    ("scaling.alpha=0.5", "scaling", "alpha", 0.5),
])
def test_set_value_parsing(item, section, key, expected):
    cfg = Config.from_dict({}).with_overrides([item])
    value = getattr(getattr(cfg, section), key)
    assert value == expected
    assert type(value) is type(expected)


def test_set_several_values_at_once():
    cfg = Config.from_dict({}).with_overrides(
        ["model.m=6", "model.bias=true", "model.activation=tanh", "train.lr=0.05"])
    assert (cfg.model.m, cfg.model.bias, cfg.model.activation, cfg.train.lr) == (6, True, "tanh", 0.05)


@pytest.mark.parametrize("item", ["model.m", "model=3", "m=3", ".m=3", "model.=3",
                                  "model.m.x=3", "=3"])
def test_set_malformed_item(item):
    raises_naming(item, Config.from_dict({}).with_overrides, [item])


@pytest.mark.parametrize("item, key", [
    ("model.m=8.0", "model.m"),          # float for int
    ("model.m=eight", "model.m"),        # bare string for int
    ('model.m="8"', "model.m"),          # quoted string for int
    ("model.bias=1", "model.bias"),      # int for bool
    ("model.bias=yes", "model.bias"),    # string for bool
    ("train.lr=true", "train.lr"),       # bool for float
    ("train.lr=nan", "train.lr"),
    ("train.lr=inf", "train.lr"),
    ("train.lr=0", "train.lr"),
    ("model.m=0", "model.m"),
    ("train.steps=-1", "train.steps"),
    ("model.activation=foo", "model.activation"),
    ("model.activation=1", "model.activation"),   # a number for a string
    ("nosuch.key=1", "nosuch"),
    ("model.nosuch=1", "model.nosuch"),
])
def test_set_bad_values(item, key):
    raises_naming(key, Config.from_dict({}).with_overrides, [item])


# --------------------------------------------------------------- error cases


def test_unknown_section():
    msg = raises_naming("bogus", Config.from_dict, {"bogus": {"x": 1}})
    assert "section" in msg
    raises_naming("bogus", Config.from_toml_text, "[bogus]\nx = 1\n")


def test_unknown_key():
    msg = raises_naming("model.size", Config.from_dict, {"model": {"size": 8}})
    assert "unknown key" in msg
    raises_naming("train.learning_rate", Config.from_toml_text, "[train]\nlearning_rate = 0.1\n")


def test_section_that_is_not_a_table():
    raises_naming("model", Config.from_dict, {"model": 8})
    raises_naming("model", Config.from_toml_text, "model = 8\n")


@pytest.mark.parametrize("section, key, value", [
    # string for int
    ("model", "m", "8"),
    ("train", "steps", "10"),
    ("run", "seed", "0"),
    # float for int
    ("model", "m", 8.0),
    ("train", "steps", 1.5),
    ("record", "every", 5.0),
    ("data", "d", 3.0),
    # int for bool
    ("model", "bias", 1),
    ("init", "symmetric", 0),
    # bool for float
    ("train", "lr", True),
    ("scaling", "kappa", False),
    ("train", "weight_decay", True),
    # bool for int
    ("model", "m", True),
    # string for float
    ("train", "lr", "0.1"),
    # number / list for string
    ("model", "activation", 1),
    ("data", "path", ["a.npz"]),
    # list / table for numbers
    ("model", "m", [8]),
    ("train", "lr", {"x": 1}),
])
def test_wrong_type(section, key, value):
    raises_naming(f"{section}.{key}", Config.from_dict, {section: {key: value}})


@pytest.mark.parametrize("text, key", [
    ('[model]\nm = "8"\n', "model.m"),
    ("[model]\nm = 8.0\n", "model.m"),
    ("[model]\nbias = 1\n", "model.bias"),
    ("[train]\nlr = true\n", "train.lr"),
    ("[train]\nlr = 1979-05-27\n", "train.lr"),
])
def test_wrong_type_from_toml_text(text, key):
    raises_naming(key, Config.from_toml_text, text)


@pytest.mark.parametrize("section, key, value", [
    ("model", "m", 0),
    ("model", "m", -3),
    ("train", "lr", 0),
    ("train", "lr", 0.0),
    ("train", "lr", -0.1),
    ("train", "lr", float("nan")),
    ("train", "lr", float("inf")),
    ("train", "lr", float("-inf")),
    ("train", "steps", -1),
    ("scaling", "kappa", 0.0),
    ("scaling", "alpha", -1.0),
    ("scaling", "alpha", float("nan")),
    ("init", "tau", 0.0),
    ("data", "d", 0),
    ("data", "n_train", 0),
    ("data", "noise", -0.5),
    ("train", "batch_size", 0),
    ("train", "weight_decay", -1e-3),
    ("train", "temperature", float("nan")),
    ("record", "every", 0),
    ("record", "snapshot_every", 0),
    ("run", "seed", -1),
    ("train", "steps", 2**62 + 1),
    ("train", "damping", -1e-9),
    ("train", "damping", float("inf")),
    ("data", "label_corruption", -0.1),
    ("data", "label_corruption", 1.5),
    ("data", "label_corruption", float("nan")),
    ("record", "checkpoint_seconds", 0.0),
    ("record", "checkpoint_seconds", float("inf")),
])
def test_out_of_range(section, key, value):
    raises_naming(f"{section}.{key}", Config.from_dict, {section: {key: value}})


@pytest.mark.parametrize("text, key", [
    ("[train]\nlr = nan\n", "train.lr"),
    ("[train]\nlr = inf\n", "train.lr"),
    ("[train]\nlr = -0.0\n", "train.lr"),
    ("[train]\nsteps = -5\n", "train.steps"),
    ("[model]\nm = 0\n", "model.m"),
])
def test_out_of_range_from_toml_text(text, key):
    raises_naming(key, Config.from_toml_text, text)


def test_limits_are_inclusive_where_documented():
    # the boundary values themselves are valid
    cfg = Config.from_dict({"model": {"m": 1}, "train": {"steps": 0, "weight_decay": 0.0},
                            "data": {"noise": 0.0}, "run": {"seed": 0}})
    assert cfg.model.m == 1 and cfg.train.steps == 0


@pytest.mark.parametrize("section, key, value", [
    ("model", "activation", "gelu"),
    ("model", "activation", "ReLU"),
    ("loss", "name", "hinge"),
    ("train", "algorithm", "adam"),
    ("scaling", "regime", "standard"),
    ("data", "kind", "mnist"),
    ("data", "teacher_activation", "swish"),
    ("init", "c", "beta"),
    ("init", "a", "Standard"),
    ("data", "teacher_output", "max"),
    ("data", "teacher_signs", "positive"),
    ("record", "compression", "zstd"),
])
def test_unknown_choice(section, key, value):
    msg = raises_naming(f"{section}.{key}", Config.from_dict, {section: {key: value}})
    assert value in msg


@pytest.mark.parametrize("section, key, choice", [
    ("model", "activation", a) for a in ("relu", "sigmoid", "tanh", "softplus", "erf", "linear")
] + [("loss", "name", "squared"), ("loss", "name", "logistic"),
     ("train", "algorithm", "gd"), ("train", "algorithm", "sgd"),
     ("scaling", "regime", "mean_field"), ("scaling", "regime", "ntk"),
     ("scaling", "regime", "lazy"), ("train", "algorithm", "ggn"),
     ("init", "a", "standard"), ("init", "c", "uniform"),
     ("data", "teacher_output", "sum"), ("data", "teacher_signs", "random")]
    + [("record", "compression", c) for c in ("none", "lzf", "gzip")])
def test_documented_choices_are_accepted(section, key, choice):
    cfg = Config.from_dict({section: {key: choice}})
    assert getattr(getattr(cfg, section), key) == choice


def test_symmetric_needs_even_m():
    raises_naming("model.m", Config.from_dict,
                  {"model": {"m": 7}, "init": {"symmetric": True}})
    raises_naming("model.m", Config.from_dict({"init": {"symmetric": True}, "model": {"m": 8}})
                  .with_overrides, ["model.m=9"])
    assert Config.from_dict({"model": {"m": 8}, "init": {"symmetric": True}}).model.m == 8
    # odd m without symmetric init is fine
    assert Config.from_dict({"model": {"m": 7}}).model.m == 7


def test_file_data_needs_path():
    raises_naming("data.path", Config.from_dict, {"data": {"kind": "file"}})
    raises_naming("data.path", Config.from_dict, {"data": {"kind": "file", "path": ""}})
    raises_naming("data.path", Config.from_dict({}).with_overrides, ["data.kind=file"])
    cfg = Config.from_dict({"data": {"kind": "file", "path": "x.npz"}})
    assert cfg.data.path == "x.npz"


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope" / "missing.toml"
    raises_naming(str(path), Config.from_toml, path)


def test_config_path_is_a_directory(tmp_path):
    raises_naming(str(tmp_path), Config.from_toml, tmp_path)


def test_config_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[data]\npath = \"caf\xe9\"\n")
    raises_naming(str(path), Config.from_toml, path)


@pytest.mark.parametrize("text", [
    "[model\nm = 8\n",
    "[model]\nm = \n",
    "[model]\nm = 8\nm = 9\n",           # duplicate key
    "[model]\n[model]\n",                # duplicate table
    "this is not toml\n",
])
def test_invalid_toml(text, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    msg = raises_naming(str(path), Config.from_toml, path)
    assert "TOML" in msg
    raises_naming("my-source", Config.from_toml_text, text, source="my-source")


def test_errors_are_value_errors():
    # InputError subclasses ValueError (documented), so generic handlers still work
    with pytest.raises(ValueError):
        Config.from_dict({"model": {"m": 0}})


# ---------------------------------------------------------- Dataset.validated


def _dataset(n=6, d=3, seed=0, labels="pm1"):
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], size=n) if labels == "pm1" else rng.standard_normal(n)
    return {"x_train": rng.standard_normal((n, d)), "y_train": y,
            "x_test": rng.standard_normal((n + 1, d)), "y_test": np.resize(y, n + 1)}


CFG3 = Config.from_dict({"data": {"d": 3}})
CFG3_LOGISTIC = Config.from_dict({"data": {"d": 3}, "loss": {"name": "logistic"}})


def test_validated_accepts_good_data_and_converts():
    arrays = _dataset()
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    arrays["y_train"] = arrays["y_train"].astype(int)
    out = Dataset(**arrays).validated(CFG3_LOGISTIC)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = getattr(out, name)
        assert a.dtype == np.float64 and a.flags.c_contiguous
    np.testing.assert_array_equal(out.y_train, arrays["y_train"])
    # squared loss accepts real-valued labels
    Dataset(**_dataset(labels="real")).validated(CFG3)


@pytest.mark.parametrize("name", ["x_train", "y_train", "x_test", "y_test"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validated_rejects_non_finite(name, bad):
    arrays = _dataset(labels="real")
    arrays[name] = arrays[name].copy()
    arrays[name].flat[1] = bad
    raises_naming(name, Dataset(**arrays).validated, CFG3, source="mydata")
    raises_naming("mydata", Dataset(**arrays).validated, CFG3, source="mydata")


@pytest.mark.parametrize("split", ["train", "test"])
def test_validated_rejects_row_mismatch(split):
    arrays = _dataset(labels="real")
    arrays[f"y_{split}"] = arrays[f"y_{split}"][:-2]
    raises_naming(f"y_{split}", Dataset(**arrays).validated, CFG3)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("d", [2, 4])
def test_validated_rejects_wrong_columns(split, d):
    arrays = _dataset(labels="real")
    arrays[f"x_{split}"] = np.zeros((arrays[f"x_{split}"].shape[0], d))
    msg = raises_naming(f"x_{split}", Dataset(**arrays).validated, CFG3)
    assert "data.d" in msg


@pytest.mark.parametrize("name, shape", [
    ("x_train", (6,)), ("x_test", (7, 3, 1)), ("y_train", (6, 1)), ("y_test", ())])
def test_validated_rejects_wrong_dimensions(name, shape):
    arrays = _dataset(labels="real")
    arrays[name] = np.zeros(shape)
    raises_naming(name, Dataset(**arrays).validated, CFG3)


def test_validated_rejects_non_numeric():
    arrays = _dataset(labels="real")
    arrays["x_train"] = np.array([["a", "b", "c"]] * 6)
    raises_naming("x_train", Dataset(**arrays).validated, CFG3)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("bad_label", [0.0, 2.0, 0.5, -0.999])
def test_validated_logistic_labels_must_be_pm1(split, bad_label):
    arrays = _dataset()
    arrays[f"y_{split}"] = arrays[f"y_{split}"].copy()
    arrays[f"y_{split}"][0] = bad_label
    msg = raises_naming(f"y_{split}", Dataset(**arrays).validated, CFG3_LOGISTIC)
    assert "logistic" in msg
    # the same labels are fine for the squared loss
    Dataset(**arrays).validated(CFG3)


def test_validated_rejects_empty_split():
    arrays = _dataset(labels="real")
    arrays["x_test"], arrays["y_test"] = np.zeros((0, 3)), np.zeros(0)
    raises_naming("x_test", Dataset(**arrays).validated, CFG3)


# ------------------------------------------------------------ new keys, frozen


def test_new_keys_defaults():
    cfg = Config()
    assert (cfg.record.checkpoint_seconds, cfg.record.compression) == (60.0, "none")
    assert cfg.run.author == ""
    assert (cfg.data.teacher_output, cfg.data.teacher_signs) == ("mean", "alternating")
    assert cfg.data.label_corruption == 0.0
    assert cfg.init.path == "" and cfg.train.damping == 0.0


@pytest.mark.parametrize("section, key, value", [
    ("run", "author", 3), ("init", "path", 1.0), ("train", "damping", "0"),
    ("data", "label_corruption", True), ("record", "checkpoint_seconds", "60"),
])
def test_new_keys_wrong_type(section, key, value):
    raises_naming(f"{section}.{key}", Config.from_dict, {section: {key: value}})


def test_init_path_is_for_two_layer_networks():
    raises_naming("init.path", Config.from_dict,
                  {"model": {"kind": "deep_linear"}, "data": {"kind": "linear_teacher"},
                   "init": {"path": "p.npy"}})


def test_ggn_needs_squared_loss():
    raises_naming("ggn", Config.from_dict,
                  {"train": {"algorithm": "ggn"}, "loss": {"name": "logistic"}})
    assert Config.from_dict({"train": {"algorithm": "ggn", "damping": 0.5}}).train.damping == 0.5


def test_sections_are_validated_on_construction():
    raises_naming("model.m", ModelConfig, m=-5)
    raises_naming("train.lr", TrainConfig, lr=float("nan"))
    raises_naming("init.a", InitConfig, a="cauchy")
    raises_naming("run.seed", RunConfig, seed=1.5)
    raises_naming("model", Config, model={"m": 3})
    raises_naming("model.m", Config, model=ModelConfig(m=7), init=InitConfig(symmetric=True))
    # numpy scalars are taken as the Python numbers they are
    cfg = Config(model=ModelConfig(m=np.int64(4)), train=TrainConfig(lr=np.float32(0.5)))
    assert type(cfg.model.m) is int and cfg.model.m == 4 and cfg.train.lr == 0.5


def test_sections_are_frozen():
    cfg = Config()
    raises_naming("model.m", setattr, cfg.model, "m", 0)
    raises_naming("Config.model", setattr, cfg, "model", ModelConfig())
    raises_naming("train.lr", delattr, cfg.train, "lr")
    assert cfg.model.m == 100
    # changes go through replace, validated
    assert dataclasses.replace(cfg.model, m=4).m == 4
    raises_naming("model.m", dataclasses.replace, cfg.model, m=0)
    raises_naming("model.m", dataclasses.replace, cfg, init=InitConfig(symmetric=True),
                  model=ModelConfig(m=3))
    assert hash(cfg) == hash(Config())
    # frozen configs still travel to worker processes and copy
    import copy
    import pickle
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) == cfg


def test_as_config(tmp_path):
    cfg = Config.from_dict({"model": {"m": 6}})
    assert as_config(cfg) is cfg
    assert as_config({"model": {"m": 6}}) == cfg
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert as_config(path) == cfg and as_config(str(path)) == cfg
    for bad in (3, None, ["model.m=6"], b"[model]", object()):
        with pytest.raises(InputError, match="config must be"):
            as_config(bad)
    raises_naming("model.m", as_config, {"model": {"m": 0}})
    raises_naming("nope.toml", as_config, tmp_path / "nope.toml")


def test_paths_in_a_file_are_relative_to_the_file(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    path = sub / "c.toml"
    path.write_text('[data]\nkind = "file"\npath = "x.npz"\n[init]\npath = "p/run.h5:3"\n')
    monkeypatch.chdir(tmp_path)
    cfg = Config.from_toml(path)
    assert cfg.data.path == str(sub / "x.npz")
    assert cfg.init.path == str(sub / "p" / "run.h5") + ":3"
    # a --set path is relative to the working directory; absolute ones are kept
    cfg = Config.from_toml(path, ["data.path=y.npz", f"init.path={sub}/q.npy"])
    assert cfg.data.path == str(tmp_path / "y.npz") and cfg.init.path == f"{sub}/q.npy"


# ------------------------------------------------- round trip, property-based

from dataclasses import fields as _fields  # noqa: E402

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_POSITIVE = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
_INTS = {("run", "seed"): st.integers(0, 2**63 - 1), ("train", "steps"): st.integers(0, 2**62)}
_FLOATS = {("data", "label_corruption"): st.floats(0.0, 1.0),
           ("scaling", "alpha"): st.none() | _POSITIVE}


def _value(section, f):
    """A strategy for the valid values of one field (the config's own checks filter the rest)."""
    choices = f.metadata.get("choices")
    if choices:
        return st.sampled_from(choices)
    kind = str(f.type).replace("Optional[", "").rstrip("]")
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        return _INTS.get((section, f.name), st.integers(1, 2**40))
    if kind == "float":
        return _FLOATS.get((section, f.name), st.floats(min_value=0.0, allow_infinity=False))
    return st.text()


_TABLES = st.fixed_dictionaries({
    s.name: st.fixed_dictionaries({}, optional={f.name: _value(s.name, f)
                                               for f in _fields(s.default_factory)})
    for s in _fields(Config)})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_TABLES)
def test_toml_round_trip_property(tables):
    try:
        cfg = Config.from_dict(tables)
    except InputError:
        assume(False)
    text = cfg.to_toml()
    back = Config.from_toml_text(text)
    assert back == cfg and back.to_toml() == text
    # every value given is kept exactly (floats bit for bit)
    for section, values in tables.items():
        for key, value in values.items():
            if value is not None:
                assert getattr(getattr(back, section), key) == value
    # and overrides written as TOML values set exactly those values
    from meanfield.config import toml_value
    items = [f"{s}.{k}={toml_value(v)}" for s, vs in tables.items() for k, v in vs.items()
             if v is not None]
    assume(items)
    assert Config().with_overrides(items) == cfg
