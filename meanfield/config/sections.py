"""The typed, frozen sections of a run configuration and their validation.

Each section is a frozen dataclass whose constructor validates every value
(type, allowed choices, range) and raises :class:`~meanfield.errors.InputError`
naming ``section.key``; assigning to a field raises the same error, so a
section that exists is valid.  Change one with ``dataclasses.replace`` (which
validates again) or :meth:`meanfield.config.Config.with_overrides`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Optional

from ..activations import NAMES as ACTIVATIONS
from ..errors import InputError
from ..losses import NAMES as LOSSES
from ..scaling import REGIMES

ALGORITHMS = ("gd", "sgd", "population", "ggn", "grow", "end_to_end", "adagrad", "adam")
COMPRESSIONS = ("none", "lzf", "gzip")


def _choice(*options):
    return {"choices": options}


def _frozen_setattr(self, name, value):
    raise InputError(
        f"{self._section}.{name} cannot be assigned: config sections are frozen "
        "(use Config.with_overrides or dataclasses.replace)")


def _frozen_delattr(self, name):
    _frozen_setattr(self, name, None)


def section(name: str):
    """Class decorator: a frozen dataclass for ``[name]``, validated on construction."""
    def wrap(cls):
        cls._section = name
        cls.__post_init__ = _validate
        cls = dataclass(frozen=True)(cls)
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
        return cls
    return wrap


def _finite_positive(v):
    return v > 0 and math.isfinite(v)


def _finite_nonnegative(v):
    return v >= 0 and math.isfinite(v)


MAX_STEPS = 2**62

_LIMITS = {
    # (section, key): (predicate, description)
    ("model", "m"): (lambda v: v >= 1, ">= 1"),
    ("model", "depth"): (lambda v: v >= 1, ">= 1"),
    ("model", "width"): (lambda v: v >= 1, ">= 1"),
    ("model", "outputs"): (lambda v: v >= 1, ">= 1"),
    ("loss", "p"): (lambda v: v >= 2 and math.isfinite(v), "finite and >= 2"),
    ("scaling", "kappa"): (_finite_positive, "finite and > 0"),
    ("scaling", "alpha"): (lambda v: v is None or _finite_positive(v), "finite and > 0"),
    ("init", "tau"): (_finite_positive, "finite and > 0"),
    ("data", "d"): (lambda v: v >= 1, ">= 1"),
    ("data", "n_train"): (lambda v: v >= 1, ">= 1"),
    ("data", "n_test"): (lambda v: v >= 1, ">= 1"),
    ("data", "teacher_m"): (lambda v: v >= 1, ">= 1"),
    ("data", "noise"): (_finite_nonnegative, "finite and >= 0"),
    ("data", "label_corruption"): (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    ("data", "population_samples"): (lambda v: v >= 1, ">= 1"),
    ("train", "lr"): (_finite_positive, "finite and > 0"),
    ("train", "steps"): (lambda v: 0 <= v <= MAX_STEPS, "in [0, 2**62]"),
    ("train", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("train", "weight_decay"): (_finite_nonnegative, "finite and >= 0"),
    ("train", "temperature"): (_finite_nonnegative, "finite and >= 0"),
    ("train", "damping"): (_finite_nonnegative, "finite and >= 0"),
    ("record", "every"): (lambda v: v >= 1, ">= 1"),
    ("record", "snapshot_every"): (lambda v: v >= 1, ">= 1"),
    ("record", "checkpoint_every"): (lambda v: v >= 0, ">= 0 (0: by wall clock only)"),
    ("record", "checkpoint_seconds"): (_finite_positive, "finite and > 0"),
    ("run", "seed"): (lambda v: 0 <= v < 2**63, "in [0, 2**63)"),
    ("grow", "tolerance"): (_finite_positive, "finite and > 0"),
    ("grow", "init_scale"): (_finite_positive, "finite and > 0"),
    ("grow", "gap_tolerance"): (_finite_positive, "finite and > 0"),
    ("grow", "max_neurons"): (lambda v: 1 <= v <= 1 << 20, "in [1, 2**20]"),
}


def _coerce(name: str, value, annotation: str):
    """Check ``value`` against the field's annotation; integers are accepted for floats."""
    if annotation.startswith("Optional[") and value is None:
        return None
    base = annotation.replace("Optional[", "").rstrip("]")
    is_bool = isinstance(value, bool) or type(value).__name__ == "bool_"
    if base == "bool":
        if is_bool:
            return bool(value)
        raise InputError(f"{name} must be true or false, got {value!r}")
    if base == "int":
        if isinstance(value, numbers.Integral) and not is_bool:
            return int(value)
        raise InputError(f"{name} must be an integer, got {value!r}")
    if base == "float":
        if isinstance(value, numbers.Real) and not is_bool:
            return float(value)
        raise InputError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise InputError(f"{name} must be a string, got {value!r}")


def _validate(self):
    """``__post_init__`` of every section: type, choices and range of each value."""
    for f in fields(self):
        name = f"{self._section}.{f.name}"
        value = _coerce(name, getattr(self, f.name), str(f.type))
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise InputError(f"{name} = {value!r} is not one of {', '.join(choices)}")
        limit = _LIMITS.get((self._section, f.name))
        if limit and not limit[0](value):
            raise InputError(f"{name} must be {limit[1]}, got {value!r}")
        object.__setattr__(self, f.name, value)


@section("model")
class ModelConfig:
    """``[model]``: width ``m``, activation ``s`` and whether neurons have a bias; or
    ``kind = "deep_linear"``: ``depth`` layers, hidden ``width``, ``outputs``
    (see :mod:`meanfield.deep_linear.config`)."""

    m: int = 100
    activation: str = field(default="relu", metadata=_choice(*ACTIVATIONS))
    bias: bool = False
    kind: str = field(default="two_layer", metadata=_choice("two_layer", "deep_linear"))
    depth: int = 2
    width: int = 10
    outputs: int = 1


@section("scaling")
class ScalingConfig:
    """``[scaling]``: alpha = kappa * m**gamma (gamma = 0 mean_field/lazy, 1/2 ntk) or explicit ``alpha``."""

    regime: str = field(default="mean_field", metadata=_choice(*REGIMES))
    kappa: float = 1.0
    alpha: Optional[float] = None


@section("init")
class InitConfig:
    """``[init]``: distributions of a, b, c, the scale ``tau``, symmetric (doubled) init,
    or ``path``: particles read from a .npy file or a run file (``FILE[:SNAPSHOT]``)."""

    a: str = field(default="gaussian", metadata=_choice("gaussian", "standard", "sphere"))
    b: str = field(default="gaussian", metadata=_choice("gaussian", "zero"))
    c: str = field(default="gaussian", metadata=_choice("gaussian", "sign", "uniform", "zero"))
    tau: float = 1.0
    symmetric: bool = False
    path: str = ""
    layers: str = field(default="balanced", metadata=_choice("balanced", "gaussian", "identity"))


@section("data")
class DataConfig:
    """``[data]``: teacher-student, random labels or a user file (.npz / .h5, ``path``
    relative to the config file).  The teacher's ``teacher_m`` neurons are averaged
    (``teacher_output = "mean"``) or summed, with alternating or random signs;
    ``label_corruption = p`` replaces a fraction p of the training labels by
    shuffled ones (see :mod:`meanfield.data`)."""

    kind: str = field(default="teacher",
                      metadata=_choice("teacher", "random_labels", "file", "linear_teacher"))
    d: int = 10
    n_train: int = 200
    n_test: int = 1000
    input: str = field(default="gaussian", metadata=_choice("gaussian", "sphere"))
    teacher_m: int = 3
    teacher_activation: str = field(default="relu", metadata=_choice(*ACTIVATIONS))
    teacher_output: str = field(default="mean", metadata=_choice("mean", "sum"))
    teacher_signs: str = field(default="alternating", metadata=_choice("alternating", "random"))
    noise: float = 0.0
    label_corruption: float = 0.0
    path: str = ""
    population_samples: int = 10000


@section("loss")
class LossConfig:
    """``[loss]``: ``squared`` (f - y)^2 / 2 or ``logistic`` log(1 + exp(-y f)); for deep
    linear networks ``lp``, |r|_p^p / p with ``p`` >= 2."""

    name: str = field(default="squared", metadata=_choice(*LOSSES, "lp"))
    p: float = 2.0


@section("train")
class TrainConfig:
    """``[train]``: algorithm, network or tangent ``model``, step size ``lr``, ``steps``,
    SGD/GGN batch, weight decay lam, Langevin temperature, GGN ``damping``."""

    algorithm: str = field(default="gd", metadata=_choice(*ALGORITHMS))
    model: str = field(default="network", metadata=_choice("network", "tangent"))
    lr: float = 0.1
    steps: int = 1000
    batch_size: int = 100
    weight_decay: float = 0.0
    temperature: float = 0.0
    damping: float = 0.0
    track_end_to_end: bool = False


@section("record")
class RecordConfig:
    """``[record]``: observables every ``every`` steps, snapshots every ``snapshot_every``,
    checkpoints every ``checkpoint_seconds`` of run time and, when it is not 0, every
    ``checkpoint_every`` steps, and the HDF5 ``compression`` of the stored arrays."""

    every: int = 100
    snapshot_every: int = 1000
    checkpoint_every: int = 0
    checkpoint_seconds: float = 60.0
    compression: str = field(default="none", metadata=_choice(*COMPRESSIONS))


@section("run")
class RunConfig:
    """``[run]``: the ``seed`` every random draw derives from, and the ``author`` stored
    in the output ("" means $MEANFIELD_AUTHOR, else the login name)."""

    seed: int = 0
    author: str = ""


@section("grow")
class GrowConfig:
    """``[grow]`` (``train.algorithm = "grow"``, :mod:`meanfield.algorithms.grow`): GD until
    the particles' mean squared velocity over the last ``record.every`` steps is below
    ``tolerance``, then the certificate; a neuron of
    scale ``init_scale`` is inserted while the duality gap is >= ``gap_tolerance``, up to
    ``max_neurons``."""

    tolerance: float = 1e-6
    init_scale: float = 0.01
    gap_tolerance: float = 1e-4
    max_neurons: int = 64


def build_section(cls, values: dict):
    """The section ``cls`` from a ``{key: value}`` table; unknown keys raise InputError."""
    name = cls._section
    if not isinstance(values, dict):
        raise InputError(f"[{name}] must be a table, got {values!r}")
    known = [f.name for f in fields(cls)]
    for key in values:
        if key not in known:
            raise InputError(f"unknown key {name}.{key} (known: {', '.join(known)})")
    return cls(**values)
