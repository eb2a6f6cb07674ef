"""Planning: a sweep file (base config, grid, seeds) read, validated and written as a manifest.

Paths inside a sweep (``data.path``, ``init.path``, in the base table or in
the grid) are relative to the folder of the sweep file; those inside a base
config file named by ``base = "FILE"`` are relative to that file's folder,
exactly as when the file is run by itself with ``meanfield run``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import fields
from pathlib import Path

from ..config import Config
from ..config.tomlio import PATH_KEYS, apply_overrides, read_toml, resolve_paths
from ..errors import InputError
from ..storage.atomic import write_text
from .plan import (FORMAT, FORMAT_VERSION, MANIFEST, RUNS, Plan, Point, point_config, point_seed,
                   read_manifest)

_TOP_KEYS = ("base", "grid", "seeds")
_SEED_KEYS = ("count", "list", "shared")


def _sections() -> dict:
    """``{section: {key: field}}`` of :class:`Config`."""
    return {f.name: {g.name: g for g in fields(f.default_factory)} for f in fields(Config)}


def _nest(table: dict, where: str) -> dict:
    """Turn quoted dotted keys (``"model.m" = 8``) of a base table into nested tables."""
    flat = {k: v for k, v in table.items() if not isinstance(v, dict)}
    for key, value in flat.items():
        if "." not in key:
            raise InputError(f"{where}: {key} = {value!r} is not inside a section "
                             "(write section.key = value)")
    try:
        return apply_overrides({k: v for k, v in table.items() if k not in flat}, flat)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _read_base(value, sweep_path: Path) -> Config:
    where = f"{sweep_path}: base"
    if value is None:
        tables = {}
    elif isinstance(value, str):
        base_path = Path(value).expanduser()
        if not base_path.is_absolute():
            base_path = sweep_path.parent / base_path
        where = f"{sweep_path}: base {base_path}"
        tables = resolve_paths(read_toml(base_path, "base config"), base_path.resolve().parent)
    elif isinstance(value, dict):
        tables = resolve_paths(_nest(value, where), sweep_path.resolve().parent)
    else:
        raise InputError(f"{where} must be a config file name or a table, got {value!r}")
    try:
        return Config.from_dict(tables)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _flatten_grid(grid, sweep_path: Path) -> dict:
    where = f"{sweep_path}: [grid]"
    if not isinstance(grid, dict):
        raise InputError(f"{where} must be a table of section.key = [values], got {grid!r}")
    flat = {}
    for key, value in grid.items():
        if isinstance(value, dict) and "." not in key:      # [grid.model] m = [...]
            for name, values in value.items():
                flat[f"{key}.{name}"] = values
        else:
            flat[key] = value
    return flat


def _check_grid_key(key: str, values, sections: dict, where: str):
    section, _, name = key.partition(".")
    if not name or "." in name:
        raise InputError(f"{where} must be section.key")
    if section not in sections:
        raise InputError(f"{where}: unknown section [{section}] (known: {', '.join(sections)})")
    if name not in sections[section]:
        raise InputError(f"{where}: unknown key {key} "
                         f"(known: {', '.join(sections[section])})")
    if key == "run.seed":
        raise InputError(f"{where}: seeds come from [seeds] (count or list), not from the grid")
    if not isinstance(values, list) or not values:
        raise InputError(f"{where} must be a non-empty list of values, got {values!r}")


def _read_grid(grid, base: Config, sweep_path: Path) -> dict:
    """Validate the grid: known keys, non-empty lists, every value valid for its key.

    Returns ``{"section.key": [values]}`` with every value as the config
    reads it (so ``1`` and ``1.0`` of a float key are the same value) and
    relative paths resolved from the sweep file's folder.
    """
    if grid is None:
        return {}
    sections = _sections()
    base_tables = base.to_dict()
    folder = sweep_path.resolve().parent
    out = {}
    for key, values in _flatten_grid(grid, sweep_path).items():
        _check_grid_key(key, values, sections, f"{sweep_path}: grid key {key!r}")
        section, _, name = key.partition(".")
        canonical = []
        for i, value in enumerate(values):
            tables = apply_overrides(base_tables, {key: value})
            if (section, name) in PATH_KEYS:
                tables = resolve_paths(tables, folder)
            try:
                v = getattr(getattr(Config.from_dict(tables), section), name)
            except InputError as exc:
                raise InputError(f"{sweep_path}: grid {key}[{i}] = {value!r}: {exc}") from None
            if v in canonical:
                raise InputError(f"{sweep_path}: grid {key} lists {value!r} twice")
            canonical.append(v)
        out[key] = canonical
    return out


def _read_seeds(seeds, sweep_path: Path):
    """Return (replicate labels, shared)."""
    where = f"{sweep_path}: [seeds]"
    if seeds is None:
        return [0], False
    if not isinstance(seeds, dict):
        raise InputError(f"{where} must be a table (count = N or list = [...]), got {seeds!r}")
    unknown = [k for k in seeds if k not in _SEED_KEYS]
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(_SEED_KEYS)})")
    shared = seeds.get("shared", False)
    if not isinstance(shared, bool):
        raise InputError(f"{where}: shared must be true or false, got {shared!r}")
    if ("count" in seeds) == ("list" in seeds):
        raise InputError(f"{where}: give exactly one of count = N or list = [labels]")
    if "count" in seeds:
        count = seeds["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InputError(f"{where}: count must be an integer >= 1, got {count!r}")
        return list(range(count)), shared
    labels = seeds["list"]
    if (not isinstance(labels, list) or not labels
            or any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in labels)):
        raise InputError(f"{where}: list must be a non-empty list of integers >= 0, "
                         f"got {labels!r}")
    if len(set(labels)) != len(labels):
        raise InputError(f"{where}: list has repeated labels {labels!r}")
    return labels, shared


def read_sweep(sweep_path) -> dict:
    """Read and validate a sweep TOML file; return its manifest (a JSON-able dict).

    Every point's config is built, so an invalid combination (say an odd
    ``model.m`` with ``init.symmetric = true``) is reported here, before
    anything runs.

    Raises
    ------
    InputError
        naming the file and the offending key, value or point.
    """
    sweep_path = Path(sweep_path)
    tables = read_toml(sweep_path, "sweep file")
    unknown = [k for k in tables if k not in _TOP_KEYS]
    if unknown:
        raise InputError(f"{sweep_path}: unknown top-level key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(_TOP_KEYS)})")
    base = _read_base(tables.get("base"), sweep_path)
    grid = _read_grid(tables.get("grid"), base, sweep_path)
    labels, shared = _read_seeds(tables.get("seeds"), sweep_path)
    base_tables = base.to_dict()
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    width = max(5, len(str(len(combos) * len(labels) - 1)))
    points = []
    for values in combos:
        overrides = dict(zip(keys, values))
        for r in labels:
            seed = point_seed({} if shared else overrides, r, base.run.seed)
            try:
                point_config(base_tables, overrides, seed)
            except InputError as exc:
                raise InputError(f"{sweep_path}: point {overrides}: {exc}") from None
            i = len(points)
            points.append(Point(i, overrides, r, seed, f"{RUNS}/{i:0{width}d}.h5").to_dict())
    return {"format": FORMAT, "version": FORMAT_VERSION, "base": base.to_toml(),
            "grid": grid, "seeds": {"list": labels, "shared": shared}, "points": points}


def _same_sweep(old: dict, new: dict) -> bool:
    """Same points and seeds, and base configs equal once resolved (defaults filled in)."""
    def rest(m):
        return json.dumps({k: v for k, v in m.items() if k != "base"}, sort_keys=True)
    try:
        same_base = (Config.from_toml_text(old["base"]) == Config.from_toml_text(new["base"]))
    except (InputError, KeyError, TypeError):
        return False
    return same_base and rest(old) == rest(json.loads(json.dumps(new)))


def plan(sweep_path, folder) -> Plan:
    """Expand a sweep file into ``folder/manifest.json`` (one entry per point).

    Parameters
    ----------
    sweep_path : path
        The sweep TOML (see :mod:`meanfield.sweep`).
    folder : path
        The sweep folder; created if needed.

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        for an invalid sweep file, or when ``folder`` already holds a
        *different* sweep (planning the same sweep again changes nothing:
        finished points stay finished).

    Examples
    --------
    >>> p = plan("sweep.toml", "out/sweep")     # doctest: +SKIP
    >>> len(p), p.points[0].output, p.config(0).run.seed == p.points[0].seed  # doctest: +SKIP
    (12, 'runs/00000.h5', True)
    """
    manifest = read_sweep(sweep_path)
    folder = Path(folder)
    target = folder / MANIFEST
    if target.exists():
        old = read_manifest(folder)
        if not _same_sweep(old, manifest):
            raise InputError(f"{folder} already holds a different sweep ({target}); "
                             "plan this one into another folder")
        return Plan(folder, old)
    if (folder / RUNS).exists():
        raise InputError(f"{folder} has a {RUNS}/ folder but no {MANIFEST}: "
                         "plan into another folder")
    try:
        (folder / RUNS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {folder / RUNS}: {exc.strerror or exc}") from None
    write_text(target, json.dumps(manifest, indent=1) + "\n")
    return Plan(folder, manifest)
