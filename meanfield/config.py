"""Run configuration: typed sections, TOML loading, ``--set`` overrides, validation.

A run is fully described by one TOML document with the sections ``[model]``,
``[scaling]``, ``[init]``, ``[data]``, ``[loss]``, ``[train]``, ``[record]`` and
``[run]``.  Missing keys take the defaults below; unknown sections or keys,
values of the wrong type and values out of range raise
:class:`~meanfield.errors.InputError` naming the key.  The resolved config
(defaults filled in) is what gets stored in every output file, so
``Config.from_toml_text(run.config_text)`` re-creates the run.

Examples
--------
>>> from meanfield.config import Config
>>> cfg = Config.from_dict({"model": {"m": 64}, "scaling": {"regime": "ntk"}})
>>> cfg.alpha
8.0
>>> cfg.with_overrides(["train.lr=0.5"]).train.lr
0.5
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import InputError

from .activations import NAMES as ACTIVATIONS
from .losses import NAMES as LOSSES
from .scaling import REGIMES, resolve_alpha

ALGORITHMS = ("gd", "sgd", "population")


def _choice(*options):
    return {"choices": options}


@dataclass
class ModelConfig:
    """``[model]``: width ``m``, activation ``s`` and whether neurons have a bias."""

    m: int = 100
    activation: str = field(default="relu", metadata=_choice(*ACTIVATIONS))
    bias: bool = False


@dataclass
class ScalingConfig:
    """``[scaling]``: alpha = kappa * m**gamma (gamma = 0 mean_field/lazy, 1/2 ntk) or explicit ``alpha``."""

    regime: str = field(default="mean_field", metadata=_choice(*REGIMES))
    kappa: float = 1.0
    alpha: Optional[float] = None


@dataclass
class InitConfig:
    """``[init]``: distributions of a, b, c, the scale ``tau`` and symmetric (doubled) init."""

    a: str = field(default="gaussian", metadata=_choice("gaussian", "sphere"))
    b: str = field(default="gaussian", metadata=_choice("gaussian", "zero"))
    c: str = field(default="gaussian", metadata=_choice("gaussian", "sign", "zero"))
    tau: float = 1.0
    symmetric: bool = False


@dataclass
class DataConfig:
    """``[data]``: teacher-student, random labels or a user file (.npz / .h5)."""

    kind: str = field(default="teacher", metadata=_choice("teacher", "random_labels", "file"))
    d: int = 10
    n_train: int = 200
    n_test: int = 1000
    input: str = field(default="gaussian", metadata=_choice("gaussian", "sphere"))
    teacher_m: int = 3
    teacher_activation: str = field(default="relu", metadata=_choice(*ACTIVATIONS))
    noise: float = 0.0
    path: str = ""
    population_samples: int = 10000


@dataclass
class LossConfig:
    """``[loss]``: ``squared`` (f - y)^2 / 2 or ``logistic`` log(1 + exp(-y f))."""

    name: str = field(default="squared", metadata=_choice(*LOSSES))


@dataclass
class TrainConfig:
    """``[train]``: algorithm, network or tangent ``model``, step size ``lr``, ``steps``,
    SGD batch, weight decay lam, Langevin temperature."""

    algorithm: str = field(default="gd", metadata=_choice(*ALGORITHMS))
    model: str = field(default="network", metadata=_choice("network", "tangent"))
    lr: float = 0.1
    steps: int = 1000
    batch_size: int = 100
    weight_decay: float = 0.0
    temperature: float = 0.0


@dataclass
class RecordConfig:
    """``[record]``: observables every ``every`` steps, snapshots and checkpoints every ``*_every``."""

    every: int = 100
    snapshot_every: int = 1000
    checkpoint_every: int = 1000


@dataclass
class RunConfig:
    """``[run]``: the ``seed`` every random draw of the run derives from."""

    seed: int = 0


_LIMITS = {
    # (section, key): (predicate, description)
    ("model", "m"): (lambda v: v >= 1, ">= 1"),
    ("scaling", "kappa"): (lambda v: v > 0 and math.isfinite(v), "finite and > 0"),
    ("scaling", "alpha"): (lambda v: v is None or (v > 0 and math.isfinite(v)), "finite and > 0"),
    ("init", "tau"): (lambda v: v > 0 and math.isfinite(v), "finite and > 0"),
    ("data", "d"): (lambda v: v >= 1, ">= 1"),
    ("data", "n_train"): (lambda v: v >= 1, ">= 1"),
    ("data", "n_test"): (lambda v: v >= 1, ">= 1"),
    ("data", "teacher_m"): (lambda v: v >= 1, ">= 1"),
    ("data", "noise"): (lambda v: v >= 0 and math.isfinite(v), "finite and >= 0"),
    ("data", "population_samples"): (lambda v: v >= 1, ">= 1"),
    ("train", "lr"): (lambda v: v > 0 and math.isfinite(v), "finite and > 0"),
    ("train", "steps"): (lambda v: v >= 0, ">= 0"),
    ("train", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("train", "weight_decay"): (lambda v: v >= 0 and math.isfinite(v), "finite and >= 0"),
    ("train", "temperature"): (lambda v: v >= 0 and math.isfinite(v), "finite and >= 0"),
    ("record", "every"): (lambda v: v >= 1, ">= 1"),
    ("record", "snapshot_every"): (lambda v: v >= 1, ">= 1"),
    ("record", "checkpoint_every"): (lambda v: v >= 1, ">= 1"),
    ("run", "seed"): (lambda v: 0 <= v < 2**63, "in [0, 2**63)"),
}


def _coerce(section: str, key: str, value, annotation: str):
    """Check ``value`` against the field's annotation; ints are accepted for floats."""
    name = f"{section}.{key}"
    base = annotation.replace("Optional[", "").rstrip("]")
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise InputError(f"{name} must be true or false, got {value!r}")
    if base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{name} must be an integer, got {value!r}")
    if base == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise InputError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise InputError(f"{name} must be a string, got {value!r}")


def _build_section(cls, section: str, values: dict):
    if not isinstance(values, dict):
        raise InputError(f"[{section}] must be a table, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise InputError(
                f"unknown key {section}.{key} (known: {', '.join(known)})")
        f = known[key]
        value = _coerce(section, key, value, str(f.type))
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise InputError(
                f"{section}.{key} = {value!r} is not one of {', '.join(choices)}")
        limit = _LIMITS.get((section, key))
        if limit and not limit[0](value):
            raise InputError(f"{section}.{key} must be {limit[1]}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


@dataclass
class Config:
    """The full, validated description of one run.

    Build it with :meth:`from_dict`, :meth:`from_toml` or
    :meth:`from_toml_text`; every constructor validates.  ``alpha`` is the
    resolved output scale of eq. (1) of the design contract.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    run: RunConfig = field(default_factory=RunConfig)

    # ------------------------------------------------------------------ build
    @classmethod
    def from_dict(cls, tables: dict) -> "Config":
        """Validate a nested ``{section: {key: value}}`` mapping and fill in defaults."""
        sections = {f.name: f.default_factory for f in fields(cls)}
        kwargs = {}
        for section, values in tables.items():
            if section not in sections:
                raise InputError(
                    f"unknown section [{section}] (known: {', '.join(sections)})")
            kwargs[section] = _build_section(sections[section], section, values)
        cfg = cls(**kwargs)
        cfg._check_consistency()
        return cfg

    @classmethod
    def from_toml_text(cls, text: str, source: str = "<string>") -> "Config":
        """Parse TOML text (``source`` names it in error messages)."""
        try:
            tables = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{source}: invalid TOML: {exc}") from None
        return cls.from_dict(tables)

    @classmethod
    def from_toml(cls, path, overrides=()) -> "Config":
        """Read a TOML file and apply ``section.key=value`` overrides."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InputError(f"cannot read config {path}: {reason}") from None
        try:
            tables = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: invalid TOML: {exc}") from None
        return cls.from_dict(_apply_overrides(tables, overrides))

    def with_overrides(self, overrides) -> "Config":
        """A new config with ``section.key=value`` strings applied (values parsed as TOML)."""
        return Config.from_dict(_apply_overrides(self.to_dict(), overrides))

    # --------------------------------------------------------------- derived
    @property
    def alpha(self) -> float:
        """Output scale: explicit ``scaling.alpha`` or kappa * m**gamma of the regime."""
        s = self.scaling
        return resolve_alpha(s.regime, s.kappa, self.model.m, s.alpha)

    @property
    def dim(self) -> int:
        """Number of columns D of the particle array: d + 2 with bias, d + 1 without."""
        return self.data.d + (2 if self.model.bias else 1)

    # ------------------------------------------------------------- serialise
    def to_dict(self) -> dict:
        """Nested dict of every key (``None`` values left out, as TOML has no null)."""
        out = {}
        for f in fields(self):
            section = dataclasses.asdict(getattr(self, f.name))
            out[f.name] = {k: v for k, v in section.items() if v is not None}
        return out

    def to_toml(self) -> str:
        """The resolved config as TOML text; ``from_toml_text`` reads it back equal."""
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
            lines.append("")
        return "\n".join(lines)

    def _check_consistency(self):
        if self.init.symmetric and self.model.m % 2:
            raise InputError(
                f"model.m must be even with init.symmetric = true, got {self.model.m}")
        if self.data.kind == "file" and not self.data.path:
            raise InputError('data.path must name a .npz or .h5 file when data.kind = "file"')
        if self.train.algorithm == "population":
            from .data import exact_population
            if not exact_population(self) or self.train.model != "network":
                raise InputError(
                    'train.algorithm = "population" needs a closed-form population risk: '
                    'data.kind = "teacher", squared loss, no bias, the network model, and '
                    'relu student and teacher (Gaussian or sphere inputs) or erf ones '
                    '(Gaussian inputs)')


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    # a JSON string is a TOML basic string, once DEL (legal in JSON) is escaped too
    return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")


def _parse_override(item: str):
    """Split ``section.key=value``; the value is read as TOML, else taken as a string."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected section.key=value")
    name, raw = item.split("=", 1)
    parts = name.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise InputError(f"--set {item!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts[0], parts[1], value


def _apply_overrides(tables: dict, overrides) -> dict:
    tables = {k: dict(v) if isinstance(v, dict) else v for k, v in tables.items()}
    for item in overrides:
        section, key, value = _parse_override(item)
        table = tables.setdefault(section, {})
        if not isinstance(table, dict):
            raise InputError(f"[{section}] must be a table")
        table[key] = value
    return tables
