"""Run configuration: typed frozen sections, TOML loading, ``--set`` overrides, validation.

A run is fully described by one TOML document with the sections ``[model]``,
``[scaling]``, ``[init]``, ``[data]``, ``[loss]``, ``[train]``, ``[record]`` and
``[run]``.  Missing keys take the defaults of :mod:`meanfield.config.sections`;
unknown sections or keys, values of the wrong type and values out of range
raise :class:`~meanfield.errors.InputError` naming the key.  A config and its
sections are frozen and validated on construction: change them with
:meth:`Config.with_overrides` or ``dataclasses.replace``.  The resolved config
(defaults filled in) is what gets stored in every output file, so
``Config.from_toml_text(run.config_text)`` re-creates the run.

File names inside a config file (``data.path``, ``init.path``) are relative to
the folder of that file (see :mod:`meanfield.config.tomlio`).

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
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import InputError
from ..scaling import resolve_alpha
from .resources import check_memory, estimate_memory
from .sections import (
    ALGORITHMS, COMPRESSIONS, MAX_STEPS, DataConfig, GrowConfig, InitConfig, LossConfig,
    ModelConfig, RecordConfig, RunConfig, ScalingConfig, TrainConfig, build_section,
)
from .tomlio import (
    apply_overrides, dumps_toml, parse_toml, read_toml, resolve_paths, toml_value,
)

__all__ = [
    "Config", "as_config", "ModelConfig", "ScalingConfig", "InitConfig", "DataConfig",
    "LossConfig", "TrainConfig", "RecordConfig", "RunConfig", "GrowConfig", "ALGORITHMS", "COMPRESSIONS",
    "MAX_STEPS", "check_memory", "estimate_memory", "apply_overrides", "dumps_toml", "parse_toml", "read_toml",
    "resolve_paths", "toml_value",
]


def _config_setattr(self, name, value):
    raise InputError(f"Config.{name} cannot be assigned: a config is frozen "
                     "(use Config.with_overrides or dataclasses.replace)")


@dataclass(frozen=True)
class Config:
    """The full, validated description of one run.

    Build it with :meth:`from_dict`, :meth:`from_toml`, :meth:`from_toml_text`
    or :func:`as_config`; every constructor validates, and so does
    ``Config(model=ModelConfig(m=64))``.  ``alpha`` is the resolved output
    scale of eq. (1) of the design contract.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    run: RunConfig = field(default_factory=RunConfig)
    grow: GrowConfig = field(default_factory=GrowConfig)

    def __post_init__(self):
        for f in fields(self):
            cls = f.default_factory
            if not isinstance(getattr(self, f.name), cls):
                raise InputError(f"Config.{f.name} must be a {cls.__name__}, "
                                 f"got {getattr(self, f.name)!r}")
        self._check_consistency()

    # ------------------------------------------------------------------ build
    @classmethod
    def from_dict(cls, tables: dict) -> "Config":
        """Validate a nested ``{section: {key: value}}`` mapping and fill in defaults."""
        if not isinstance(tables, dict):
            raise InputError(f"a config must be a table of sections, got {tables!r}")
        sections = {f.name: f.default_factory for f in fields(cls)}
        kwargs = {}
        for section, values in tables.items():
            if section not in sections:
                raise InputError(
                    f"unknown section [{section}] (known: {', '.join(sections)})")
            kwargs[section] = build_section(sections[section], values)
        return cls(**kwargs)

    @classmethod
    def from_toml_text(cls, text: str, source: str = "<string>") -> "Config":
        """Parse TOML text (``source`` names it in error messages)."""
        return cls.from_dict(parse_toml(text, source))

    @classmethod
    def from_toml(cls, path, overrides=()) -> "Config":
        """Read a TOML file and apply ``section.key=value`` overrides.

        Relative ``data.path`` / ``init.path`` in the file are taken relative to
        the file's folder; those in ``overrides`` relative to the working directory.
        """
        path = Path(path)
        tables = resolve_paths(read_toml(path, "config"), path.resolve().parent)
        return cls.from_dict(resolve_paths(apply_overrides(tables, overrides), Path.cwd()))

    def with_overrides(self, overrides) -> "Config":
        """A new config with ``section.key=value`` strings (or a ``{"section.key": value}``
        mapping) applied and validated."""
        return Config.from_dict(apply_overrides(self.to_dict(), overrides))

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
        return dumps_toml(self.to_dict())

    def _check_consistency(self):
        from ..deep_linear.config import check as check_deep_linear
        from .grow import check as check_grow
        check_deep_linear(self)
        check_grow(self)
        if self.init.symmetric and self.model.m % 2 and not self.init.path:
            raise InputError(
                f"model.m must be even with init.symmetric = true, got {self.model.m}")
        if self.init.path and self.model.kind != "two_layer":
            raise InputError('init.path needs model.kind = "two_layer" (particles of shape (m, D))')
        if self.data.kind == "file" and not self.data.path:
            raise InputError('data.path must name a .npz or .h5 file when data.kind = "file"')
        if self.train.algorithm == "ggn":
            tr = self.train
            for bad, what in ((self.loss.name != "squared", f"loss.name = {self.loss.name!r}"),
                              (tr.weight_decay > 0, f"train.weight_decay = {tr.weight_decay}"),
                              (tr.temperature > 0, f"train.temperature = {tr.temperature}"),
                              (tr.model != "network", f"train.model = {tr.model!r}")):
                if bad:
                    raise InputError(f'train.algorithm = "ggn" (squared loss, the network, no '
                                     f'weight decay, no noise) does not take {what}')
        if self.train.algorithm == "population":
            from ..data import exact_population
            if not exact_population(self) or self.train.model != "network":
                raise InputError(
                    'train.algorithm = "population" needs a closed-form population risk: '
                    'data.kind = "teacher", squared loss, no bias, the network model, and '
                    'relu student and teacher (Gaussian or sphere inputs) or erf ones '
                    '(Gaussian inputs)')


Config.__setattr__ = _config_setattr
Config.__delattr__ = lambda self, name: _config_setattr(self, name, None)


def as_config(obj) -> Config:
    """A :class:`Config` from a Config, a ``{section: {key: value}}`` dict or a TOML path.

    Raises
    ------
    InputError
        For anything else (never AttributeError), or when the dict or file is invalid.
    """
    if isinstance(obj, Config):
        return obj
    if isinstance(obj, dict):
        return Config.from_dict(obj)
    if isinstance(obj, (str, os.PathLike)):
        return Config.from_toml(obj)
    raise InputError(f"config must be a Config, a dict or a TOML file path, "
                     f"got {type(obj).__name__}")
