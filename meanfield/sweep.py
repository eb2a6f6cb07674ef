r"""Parameter sweeps: plans, manifests, the array-job entry point, executors, collection.

A sweep is one TOML file: a base config, a grid of ``section.key`` value
lists and a number of seeds (replicates)::

    base = "run.toml"            # a config file, relative to this file; or a table:
    # [base]
    # model.activation = "relu"  # (or [base.model] activation = "relu")

    [grid]                       # the Cartesian product of the lists, in this order
    "model.m" = [8, 16, 32]
    "scaling.kappa" = [1.0, 10.0]

    [seeds]
    count = 3                    # or list = [0, 1, 2] (replicate labels)
    # shared = false             # true: all grid points of a replicate share its seed

:func:`plan` expands it into a *sweep folder*::

    DIR/manifest.json            # the base config and one entry per point
    DIR/runs/00000.h5 ...        # one run file per point, written when the point runs
    DIR/summary.csv              # written by collect()
    DIR/sweep.sbatch, DIR/logs/  # written by sbatch_script() and the array job
    DIR/numba-cache/             # the compiled kernels shared by the array tasks

Every point is a dict of overrides (``{"model.m": 16, "scaling.kappa": 10.0}``),
a replicate label r and a seed: the first 63 bits of the SHA-256 of the
canonical JSON of ``(base run.seed, overrides, r)``.  The seed is therefore a
property of the point, not of the order in which points are planned or run;
it differs between points (unless ``seeds.shared``, which gives every grid
point of replicate r the same data, teacher and initial draws: common random
numbers for comparisons across m), and adding values to the grid or more
replicates leaves the seeds of the existing points unchanged.

A point runs with :func:`run_point`: a finished file (``completed`` or
``diverged``) is left untouched, a partial one (``running``: killed or
interrupted, or ``failed``) continues from its checkpoint bit-identically, a
missing one starts, and an unreadable one (a crash while it was created, a
damaged disk) starts again.  So re-running a point, a sweep, or the whole
array job is always safe, and it is how interrupted work resumes; each point
must only be run by one process at a time.

Execution back-ends all go through the same call:

* :func:`run_local`: a local process pool (``meanfield sweep local DIR -j N``);
* :func:`run_sweep`: any ``concurrent.futures.Executor``-like object with a
  ``submit`` method whose results have ``.result()`` (a process pool, a Dask
  ``distributed.Client().get_executor()``, a ``submitit`` executor);
* :func:`sbatch_script`: a Slurm array job, one task per point, which runs
  ``meanfield sweep run DIR --index $SLURM_ARRAY_TASK_ID``, checkpoints on the
  SIGUSR1 Slurm sends 60 s before the time limit and requeues itself.

:func:`status` counts the points by state and :func:`collect` tabulates the
final observables of every finished point, listing the files it could not use.

Examples
--------
>>> from meanfield import sweep
>>> folder = sweep.plan("sweep.toml", "out/sweep")          # doctest: +SKIP
>>> sweep.run_local(folder, jobs=4)                          # doctest: +SKIP
>>> sweep.status(folder)                                     # doctest: +SKIP
{'pending': 0, 'running': 0, 'completed': 18, 'diverged': 0, 'failed': 0, 'corrupt': 0}
>>> rows, problems = sweep.collect(folder, "out/summary.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shlex
import signal
import site
import sys
import time
from collections import namedtuple
from dataclasses import dataclass, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .config import Config
from .errors import InputError

__all__ = ["Plan", "Point", "Problem", "PointInterrupted", "read_sweep", "plan", "load_plan",
           "point_seed", "run_point", "run_config", "run_local", "run_sweep", "file_status",
           "point_statuses", "status", "collect", "sbatch_script", "warmup"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RUNS = "runs"
LOGS = "logs"
NUMBA_CACHE = "numba-cache"
SBATCH = "sweep.sbatch"
SUMMARY = "summary.csv"
FORMAT = "meanfield-sweep"
FORMAT_VERSION = 1

FINAL = ("completed", "diverged")
"""Statuses of a point that is done: running it again leaves its file as it is."""

STATES = ("pending", "running", "completed", "diverged", "failed", "corrupt")
"""What :func:`status` counts: no file yet, the four file statuses, an unreadable file."""

_TOP_KEYS = ("base", "grid", "seeds")
_SEED_KEYS = ("count", "list", "shared")


# ---------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Point:
    """One point of a sweep.

    Attributes
    ----------
    index : int
        Position in the manifest (the Slurm array task id that runs it).
    overrides : dict
        ``{"section.key": value}`` applied to the base config.
    replicate : int
        The replicate label it was planned with (from ``[seeds]``).
    seed : int
        Its ``run.seed``, derived by :func:`point_seed`.
    output : str
        Its run file, relative to the sweep folder (``runs/00012.h5``).
    """

    index: int
    overrides: dict
    replicate: int
    seed: int
    output: str

    def to_dict(self) -> dict:
        return {"index": self.index, "overrides": dict(self.overrides),
                "replicate": self.replicate, "seed": self.seed, "output": self.output}


class Plan:
    """A planned sweep: the folder, its base config and its points (from ``manifest.json``).

    Use :func:`plan` to create one and :func:`load_plan` to read it back.

    Attributes
    ----------
    folder : Path
    base : Config
        The base config (``run.seed`` is the sweep's master seed).
    grid : dict
        ``{"section.key": [values]}`` in the order the product runs over.
    points : list of Point
    """

    def __init__(self, folder, manifest: dict):
        self.folder = Path(folder)
        self.manifest = manifest
        self.base = Config.from_toml_text(manifest["base"], source=f"{self.manifest_path}: base")
        self.grid = manifest["grid"]
        self.points = [Point(p["index"], p["overrides"], p["replicate"], p["seed"], p["output"])
                       for p in manifest["points"]]

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self):
        return f"<Plan {self.folder}: {len(self)} points, grid {list(self.grid)}>"

    def point(self, index: int) -> Point:
        """The point ``index``; :class:`InputError` if there is none."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            raise InputError(f"point index {index!r} out of range: the sweep in {self.folder} "
                             f"has {len(self)} points (0..{len(self) - 1})")
        return self.points[index]

    def config(self, index: int) -> Config:
        """The full config of point ``index`` (base + overrides + its seed)."""
        p = self.point(index)
        return _point_config(self.base.to_dict(), p.overrides, p.seed)

    def path(self, index: int) -> Path:
        """The run file of point ``index``."""
        return self.folder / self.point(index).output


def point_seed(overrides: dict, replicate: int, base_seed: int = 0) -> int:
    r"""The ``run.seed`` of a sweep point, a pure function of the point.

    .. math:: \mathrm{seed} = \mathrm{SHA256}(\mathrm{json}(s_0, \mathrm{overrides}, r))
              \bmod 2^{63}

    with canonical JSON (sorted keys, numbers as written by the config: 1 and
    1.0 differ only if the key is an integer one), so it is the same on every
    machine and Python version, whatever the order points are planned or run.

    Parameters
    ----------
    overrides : dict
        ``{"section.key": value}`` of the point (``{}`` for shared seeds).
    replicate : int
        The replicate label (0, 1, ... for ``seeds.count``).
    base_seed : int
        The base config's ``run.seed``: a different master seed gives a
        different, independent family of seeds.

    Examples
    --------
    >>> point_seed({"model.m": 16}, 0) == point_seed({"model.m": 16}, 0)
    True
    >>> point_seed({"model.m": 16}, 0) != point_seed({"model.m": 32}, 0)
    True
    >>> 0 <= point_seed({}, 5, base_seed=7) < 2**63
    True
    """
    blob = json.dumps({"base_seed": int(base_seed), "overrides": overrides,
                       "replicate": int(replicate)}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    digest = hashlib.sha256(blob.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _sections() -> dict:
    """``{section: {key: field}}`` of :class:`Config`."""
    return {f.name: {g.name: g for g in fields(f.default_factory)} for f in fields(Config)}


def _nest(table: dict, where: str) -> dict:
    """Turn quoted dotted keys (``"model.m" = 8``) of a base table into nested tables."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.setdefault(key, {})
            if not isinstance(out[key], dict):
                raise InputError(f"{where}: {key} is given twice")
            out[key].update(value)
        elif "." in key:
            section, _, name = key.partition(".")
            out.setdefault(section, {})
            if not isinstance(out[section], dict):
                raise InputError(f"{where}: {section} is given twice")
            out[section][name] = value
        else:
            raise InputError(f"{where}: {key} = {value!r} is not inside a section "
                             "(write section.key = value)")
    return out


def _resolve_data_path(tables: dict, folder: Path):
    """Make a relative ``data.path`` absolute, relative to ``folder`` (where it was written)."""
    data = tables.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str) and data["path"]:
        p = Path(data["path"]).expanduser()
        if not p.is_absolute():
            data["path"] = str((folder / p).resolve())


def _read_toml(path: Path, what: str) -> dict:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot read {what} {path}: {reason}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None


def _read_base(value, sweep_path: Path) -> Config:
    where = f"{sweep_path}: base"
    if value is None:
        tables = {}
    elif isinstance(value, str):
        base_path = Path(value).expanduser()
        if not base_path.is_absolute():
            base_path = sweep_path.parent / base_path
        tables = _read_toml(base_path, "base config")
        where = f"{sweep_path}: base {base_path}"
        _resolve_data_path(tables, base_path.parent.resolve())
    elif isinstance(value, dict):
        tables = _nest(value, where)
        _resolve_data_path(tables, sweep_path.parent.resolve())
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
        if isinstance(value, dict) and "." not in key:      # [grid.model] m = [...] / model.m = [...]
            for name, values in value.items():
                flat[f"{key}.{name}"] = values
        else:
            flat[key] = value
    return flat


def _read_grid(grid, base: Config, sweep_path: Path) -> dict:
    """Validate the grid: known keys, non-empty lists, every value valid for its key."""
    if grid is None:
        return {}
    sections = _sections()
    base_tables = base.to_dict()
    out = {}
    for key, values in _flatten_grid(grid, sweep_path).items():
        where = f"{sweep_path}: grid key {key!r}"
        section, _, name = key.partition(".")
        if not name or "." in name:
            raise InputError(f"{where} must be section.key")
        if section not in sections:
            raise InputError(f"{where}: unknown section [{section}] "
                             f"(known: {', '.join(sections)})")
        if name not in sections[section]:
            raise InputError(f"{where}: unknown key {key} "
                             f"(known: {', '.join(sections[section])})")
        if key == "run.seed":
            raise InputError(f"{where}: seeds come from [seeds] (count or list), "
                             "not from the grid")
        if not isinstance(values, list) or not values:
            raise InputError(f"{where} must be a non-empty list of values, got {values!r}")
        canonical = []
        for i, value in enumerate(values):
            tables = {s: dict(v) for s, v in base_tables.items()}
            tables.setdefault(section, {})[name] = value
            if key == "data.path" and isinstance(value, str):
                _resolve_data_path(tables, sweep_path.parent.resolve())
            try:
                cfg = Config.from_dict(tables)
            except InputError as exc:
                raise InputError(f"{sweep_path}: grid {key}[{i}] = {value!r}: {exc}") from None
            v = getattr(getattr(cfg, section), name)
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


def _point_config(base_tables: dict, overrides: dict, seed: int) -> Config:
    tables = {s: dict(v) for s, v in base_tables.items()}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        tables.setdefault(section, {})[name] = value
    tables.setdefault("run", {})["seed"] = seed
    return Config.from_dict(tables)


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
    tables = _read_toml(sweep_path, "sweep file")
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
    n = len(combos) * len(labels)
    width = max(5, len(str(n - 1)))
    points = []
    for values in combos:
        overrides = dict(zip(keys, values))
        for r in labels:
            seed = point_seed({} if shared else overrides, r, base.run.seed)
            try:
                _point_config(base_tables, overrides, seed)
            except InputError as exc:
                raise InputError(f"{sweep_path}: point {overrides}: {exc}") from None
            i = len(points)
            points.append(Point(i, overrides, r, seed, f"{RUNS}/{i:0{width}d}.h5").to_dict())
    return {"format": FORMAT, "version": FORMAT_VERSION, "base": base.to_toml(),
            "grid": grid, "seeds": {"list": labels, "shared": shared}, "points": points}


def _write_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


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
        The sweep TOML (see the module docstring).
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
        old = _read_manifest(folder)
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
    _write_atomic(target, json.dumps(manifest, indent=1) + "\n")
    return Plan(folder, manifest)


def _read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: not a sweep folder (no {MANIFEST}; "
                         "create one with `meanfield sweep plan SWEEP.toml -o DIR`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable sweep manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a meanfield sweep manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise InputError(f"{path}: sweep manifest version {manifest.get('version')!r} "
                         f"is not supported (this meanfield reads {FORMAT_VERSION})")
    return manifest


def load_plan(folder) -> Plan:
    """Read the plan of the sweep folder ``folder`` (its ``manifest.json``).

    Raises
    ------
    InputError
        if ``folder`` has no readable manifest.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    try:
        return Plan(folder, manifest)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{folder / MANIFEST}: damaged sweep manifest ({exc!r})") from None


def _as_plan(folder) -> Plan:
    return folder if isinstance(folder, Plan) else load_plan(folder)


# ----------------------------------------------------------------------- running
class PointInterrupted(Exception):
    """A point stopped on a signal after writing a checkpoint (picklable, for executors).

    Raised by :func:`run_point` and :func:`run_config` in place of
    :class:`meanfield.dynamics.Interrupted`; running the point again resumes it.
    """

    def __init__(self, message: str, signum: int, step: int):
        super().__init__(message, signum, step)
        self.signum, self.step = signum, step

    def __str__(self):
        return self.args[0]


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _truncation(path: Path):
    """Why the HDF5 file ``path`` is shorter than its superblock says it is, or None.

    HDF5 makes this check itself, except for SWMR readers, and a file left by
    a killed SWMR writer can only be read as one: a truncated such file (a
    full disk, a partial copy) would otherwise read as a partial run whose
    missing bytes come back as zeros.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            offset = 0
            while True:                     # the superblock is at 0, 512, 1024, 2048, ...
                if offset + 8 > size:
                    return None             # no signature: h5py reports it
                fh.seek(offset)
                if fh.read(8) == _HDF5_SIGNATURE:
                    break
                offset = 512 if offset == 0 else 2 * offset
            head = fh.read(16)
            version = head[0]
            if version in (2, 3):           # sizes at 1, 2; base, extension, eof after 4 bytes
                so, at = head[1], 12
            elif version in (0, 1):         # sizes at 5, 6; base, free space, eof after 16 (20)
                so, at = head[5], 24 if version == 0 else 28
            else:
                return None
            fh.seek(offset + at)
            raw = fh.read(3 * so)
    except OSError:
        return None
    if len(raw) < 3 * so:
        return f"{path}: truncated HDF5 file ({size} bytes)"
    eof = int.from_bytes(raw[2 * so:], "little")   # counts a user block before the superblock
    if size < eof:
        return f"{path}: truncated HDF5 file ({size} bytes of the {eof} it records)"
    return None


def file_status(path) -> str:
    """State of one run file: ``pending`` (no file), its status, or ``corrupt`` (unreadable).

    Examples
    --------
    >>> file_status("no/such/file.h5")
    'pending'
    """
    from .storage import read_status
    path = Path(path)
    if not path.exists():
        return "pending"
    if _truncation(path):
        return "corrupt"
    return read_status(path) or "corrupt"


_worker = {"pool": False, "stopped": None}
"""In a worker of :func:`run_local`'s pool: the signal that stopped a point, if one did."""


def _run(config: Config, out: Path, progress: bool = False):
    """Run, resume or skip one file; returns (status, action)."""
    from .dynamics import Interrupted, simulate
    out = Path(out)
    if _worker["stopped"] is not None:
        # a pool worker that was interrupted starts no new point (the pool has
        # queued more work than it runs at once; Ctrl-C must stop all of it)
        signum = _worker["stopped"]
        raise PointInterrupted(f"{out}: not started, the sweep was stopped by "
                               f"{signal.Signals(signum).name}", signum, 0)
    state = file_status(out)
    if state in FINAL:
        action = "skipped"
    elif state == "corrupt":
        log.warning("%s is unreadable; running its point again from the start", out)
        action = "restarted"
    else:
        action = "resumed" if state != "pending" else "started"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {out.parent}: {exc.strerror or exc}") from None
    try:
        # resume=True: continue a partial file, return a finished one as it is (after
        # checking that its config is this one), start a missing one
        run = simulate(config, out=out, progress=progress, resume=state != "corrupt",
                       overwrite=state == "corrupt")
    except Interrupted as exc:
        if _worker["pool"]:
            _worker["stopped"] = exc.signum
        raise PointInterrupted(f"{exc} in {out}", exc.signum, exc.step) from None
    status = run.status
    run.close()
    return status, action


def run_config(config: Config, out, progress: bool = False) -> str:
    """Run one config into ``out``: skip it if finished, resume it if partial, else start it.

    Parameters
    ----------
    config : Config
    out : path
        The run file (its folder is created).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    str
        The final status: ``completed`` or ``diverged``.

    Raises
    ------
    InputError
        if ``out`` holds a run of another config.
    PointInterrupted
        on SIGTERM, SIGINT or SIGUSR1 (main thread only), after a checkpoint.

    Examples
    --------
    >>> cfg = Config.from_dict({"model": {"m": 8}, "train": {"steps": 50}})
    >>> run_config(cfg, "out/one.h5")          # doctest: +SKIP
    'completed'
    """
    return _run(config, Path(out), progress)[0]


def run_point(folder, index: int, progress: bool = False) -> str:
    """Run point ``index`` of the sweep in ``folder`` (the array-job entry point).

    A finished file (``completed`` or ``diverged``) is left untouched, a
    partial one continues from its checkpoint, a missing one starts, an
    unreadable one starts again.

    Returns
    -------
    str
        The point's final status, ``completed`` or ``diverged``.

    Raises
    ------
    InputError
        if ``folder`` is not a sweep folder or ``index`` is out of range.
    PointInterrupted
        on SIGTERM, SIGINT or SIGUSR1, after a checkpoint; run it again to resume.

    Examples
    --------
    >>> run_point("out/sweep", 3)               # doctest: +SKIP
    'completed'
    """
    p = _as_plan(folder)
    return _run(p.config(index), p.path(index), progress)[0]


def _init_worker(n: int):
    """Pool initializer: at most ``n`` Numba threads per worker (no oversubscription)."""
    _worker["pool"] = True
    try:
        import numba
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # pragma: no cover - best effort
        pass


def _tasks(points):
    """Normalise ``points`` into (kinds of work, statuses known already)."""
    if isinstance(points, (str, os.PathLike, Plan)):
        p = _as_plan(points)
        folder = str(p.folder.resolve())
        work = [(run_point, (folder, i)) for i in range(len(p))]
        files = [p.path(i) for i in range(len(p))]
        return work, files
    work, files = [], []
    for item in points:
        try:
            config, out = item
        except (TypeError, ValueError):
            raise InputError(f"run_sweep: expected (config, out_path) pairs, got {item!r}") from None
        if not isinstance(config, Config):
            raise InputError(f"run_sweep: {config!r} is not a meanfield Config")
        out = Path(out).resolve()
        work.append((run_config, (config, str(out))))
        files.append(out)
    if len({str(f) for f in files}) != len(files):
        raise InputError("run_sweep: two points have the same output file")
    return work, files


def run_sweep(points, executor=None) -> list:
    """Run every unfinished point of a sweep, on any executor; return all statuses in order.

    Parameters
    ----------
    points : path, Plan or iterable of (Config, path)
        A sweep folder made by :func:`plan` (each task is
        ``run_point(folder, index)``; the folder must be reachable from the
        workers, e.g. on a shared file system), or explicit pairs of a config
        and the file to write it to (each task is ``run_config(config, out)``).
    executor : executor, optional
        Anything with ``submit(fn, *args)`` returning objects with
        ``.result()``: a ``concurrent.futures`` process or thread pool, the
        executor of a Dask cluster (``distributed.Client(...).get_executor()``),
        a ``submitit.AutoExecutor``.  None runs the points one after the
        other in this process.  Points already finished are not submitted.

    Returns
    -------
    list of str
        The status of every point, in order (``completed`` or ``diverged``).

    Raises
    ------
    InputError, PointInterrupted, or whatever a point raised
        after every submitted point has finished (the first error, in point
        order); the points that did finish keep their files.

    Notes
    -----
    Every task is independent and idempotent, so re-running the same call
    after an interruption continues where it stopped.  With a process pool
    that forks (the Linux default before Python 3.14), create it before
    running simulations in this process, or pass
    ``mp_context=multiprocessing.get_context("spawn")``: OpenMP thread pools
    do not survive a fork.  Threads share one process: use a thread pool only
    with a thread-safe Numba threading layer (``omp`` or ``tbb``).

    Examples
    --------
    Local processes:

    >>> from concurrent.futures import ProcessPoolExecutor
    >>> with ProcessPoolExecutor(4) as pool:                        # doctest: +SKIP
    ...     run_sweep("out/sweep", pool)
    ['completed', 'completed', ...]

    A Dask cluster (``pip install meanfield[dask]``):

    >>> from distributed import Client                               # doctest: +SKIP
    >>> with Client("scheduler:8786") as client:                     # doctest: +SKIP
    ...     run_sweep("out/sweep", client.get_executor())

    Slurm through submitit (``pip install meanfield[submitit]``), one job per point:

    >>> import submitit                                              # doctest: +SKIP
    >>> ex = submitit.AutoExecutor(folder="out/submitit")            # doctest: +SKIP
    >>> ex.update_parameters(timeout_min=60, slurm_partition="cpu")  # doctest: +SKIP
    >>> run_sweep("out/sweep", ex)                                   # doctest: +SKIP

    Explicit configs:

    >>> cfgs = [Config.from_dict({"model": {"m": m}}) for m in (8, 16)]
    >>> run_sweep([(c, f"out/m{c.model.m}.h5") for c in cfgs])      # doctest: +SKIP
    ['completed', 'completed']
    """
    work, files = _tasks(points)
    statuses = [file_status(f) for f in files]
    todo = [i for i, s in enumerate(statuses) if s not in FINAL]
    if executor is None:
        for i in todo:
            fn, args = work[i]
            statuses[i] = fn(*args)
        return statuses
    jobs = [(i, executor.submit(work[i][0], *work[i][1])) for i in todo]
    first_error = None
    try:
        for i, job in jobs:
            try:
                statuses[i] = job.result()
            except Exception as exc:  # wait for every point before raising
                statuses[i] = file_status(files[i])
                if first_error is None:
                    first_error = exc
                if isinstance(exc, PointInterrupted):
                    _cancel(jobs)     # a signal stopped one point: start no others
    except BaseException:             # interrupted while waiting (Ctrl-C)
        _cancel(jobs)
        raise
    if first_error is not None:
        raise first_error
    return statuses


def _cancel(jobs):
    """Cancel the points not started yet (``concurrent.futures`` futures only: a
    cluster job of submitit keeps running when the script that submitted it stops)."""
    from concurrent.futures import Future
    for _, job in jobs:
        if isinstance(job, Future):
            job.cancel()


def run_local(folder, jobs: int = 1) -> list:
    """Run every unfinished point of the sweep in ``folder`` with ``jobs`` local processes.

    ``jobs = 1`` runs the points in this process, one after the other.
    Otherwise a ``ProcessPoolExecutor`` of fresh (spawned) processes runs
    them, each worker limited to ``cpu_count // jobs`` Numba threads.

    Returns
    -------
    list of str
        The status of every point, in order.

    Examples
    --------
    >>> run_local("out/sweep", jobs=4)          # doctest: +SKIP
    ['completed', 'completed', ...]
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    p = _as_plan(folder)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs must be an integer >= 1, got {jobs!r}")
    if jobs == 1:
        return run_sweep(p)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        return run_sweep(p, pool)


# ------------------------------------------------------------------ inspecting
def point_statuses(folder) -> list:
    """The state of every point of the sweep in ``folder``, in order (see :data:`STATES`)."""
    p = _as_plan(folder)
    return [file_status(p.folder / pt.output) for pt in p.points]


def status(folder) -> dict:
    """Count the points of the sweep in ``folder`` by state.

    Returns
    -------
    dict
        ``{state: count}`` for every state of :data:`STATES`: ``pending``
        (no file yet), ``running`` (a partial file: being written, or
        interrupted and waiting to be resumed), ``completed``, ``diverged``,
        ``failed``, ``corrupt`` (an unreadable file).

    Examples
    --------
    >>> status("out/sweep")                     # doctest: +SKIP
    {'pending': 2, 'running': 1, 'completed': 9, 'diverged': 0, 'failed': 0, 'corrupt': 0}
    """
    counts = dict.fromkeys(STATES, 0)
    for s in point_statuses(folder):
        counts[s] += 1
    return counts


Problem = namedtuple("Problem", "index output state reason")
"""A point :func:`collect` left out of the table: its index, file, state and why."""


def _final_values(run, names):
    values = {}
    for name in names:
        obs = run.observable(name)
        values[name] = float(obs.value[-1]) if len(obs.step) else math.nan
    return values


def collect(folder, out_csv=None):
    """Tabulate the sweep: one row per finished point with its final observables.

    Every point whose file is ``completed`` or ``diverged`` gives a row with
    its index, the grid values (one column per grid key), replicate, seed,
    status, final step and time, the last recorded value of every
    observable, and its file.  Every other point is reported as a
    :class:`Problem` (not run yet, unfinished, failed, unreadable) instead of
    stopping the collection.

    Parameters
    ----------
    folder : path
        A sweep folder.
    out_csv : path, optional
        Where to write the table as CSV (written whatever the problems).

    Returns
    -------
    rows : list of dict
    problems : list of Problem

    Examples
    --------
    >>> rows, problems = collect("out/sweep", "out/sweep/summary.csv")  # doctest: +SKIP
    >>> for p in problems:                                              # doctest: +SKIP
    ...     print(p.index, p.output, p.reason)
    """
    from .storage import open_run

    p = _as_plan(folder)
    keys = list(p.grid)
    rows, problems, names = [], [], []
    for pt in p.points:
        path = p.folder / pt.output
        if not path.exists():
            problems.append(Problem(pt.index, pt.output, "pending", "not run yet"))
            continue
        truncated = _truncation(path)
        if truncated:
            problems.append(Problem(pt.index, pt.output, "corrupt", truncated))
            continue
        try:
            with open_run(path) as run:
                state = run.status
                if state not in FINAL:
                    last = run.steps[-1] if len(run.steps) else 0
                    why = (f"unfinished: last snapshot at step {last} of "
                           f"{run.parameters['steps']}" if state == "running"
                           else f"failed: {run.message}")
                    problems.append(Problem(pt.index, pt.output, state, why))
                    continue
                for name in run.observable_names:
                    if name not in names:
                        names.append(name)
                values = _final_values(run, run.observable_names)
                first = run.observable(run.observable_names[0]) if run.observable_names else None
                step = int(first.step[-1]) if first is not None and len(first.step) else 0
                time_ = float(first.time[-1]) if first is not None and len(first.step) else 0.0
        except InputError as exc:
            problems.append(Problem(pt.index, pt.output, "corrupt", str(exc)))
            continue
        except Exception as exc:  # an openable but damaged file
            problems.append(Problem(pt.index, pt.output, "corrupt",
                                    f"{path}: unreadable ({type(exc).__name__}: {exc})"))
            continue
        row = {"index": pt.index, **{k: pt.overrides[k] for k in keys},
               "replicate": pt.replicate, "seed": pt.seed, "status": state,
               "step": step, "time": time_, **values, "output": pt.output}
        rows.append(row)
    if out_csv is not None:
        columns = (["index", *keys, "replicate", "seed", "status", "step", "time", *names,
                    "output"])
        out_csv = Path(out_csv)
        tmp = out_csv.with_name(f".{out_csv.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, columns, restval="")
                writer.writeheader()
                writer.writerows(rows)
            os.replace(tmp, out_csv)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write {out_csv}: {exc.strerror or exc}") from None
    return rows, problems


# ------------------------------------------------------------------------- Slurm
_SLURM_VALUE = re.compile(r"^[A-Za-z0-9_.:,+\-\[\]]+$")


def _slurm_option(name, value):
    if value is None:
        return None
    value = str(value)
    if not _SLURM_VALUE.match(value):
        raise InputError(f"--{name} {value!r}: not a valid Slurm value")
    return value


def _python_path_entry():
    """The folder holding the ``meanfield`` package when it is not installed (a checkout)."""
    root = Path(__file__).resolve().parents[1]
    installed = [Path(p).resolve() for p in site.getsitepackages() + [site.getusersitepackages()]]
    return None if root in installed else str(root)


def sbatch_script(folder, partition=None, time=None, mem=None, cpus: int = 1,
                  max_parallel=None) -> Path:
    """Write ``folder/sweep.sbatch``: a Slurm array job running every point of the sweep.

    Task i runs ``meanfield sweep run FOLDER --index i`` with the Python that
    runs this function (``sys.executable``, so a virtual environment works
    without activating it).  The script:

    * ``#SBATCH --array=0-(N-1)%K`` (K = ``max_parallel``), ``--requeue``,
      ``--signal=B:USR1@60``, logs in ``folder/logs/`` (appended across
      requeues), one task of ``cpus`` CPUs, and optional partition, time, mem;
    * sets ``NUMBA_CACHE_DIR=folder/numba-cache`` (shared by all tasks),
      ``NUMBA_NUM_THREADS`` and the BLAS/OpenMP thread counts to the task's
      CPUs, and ``HDF5_USE_FILE_LOCKING=FALSE`` unless already set (HDF5
      locks fail on many shared file systems; each point has one writer);
    * warms the cache once per CPU model: the first task to create the lock
      folder ``numba-cache/warmup-KEY.lock`` (``mkdir`` is atomic, on NFS
      too) runs ``meanfield warmup`` and leaves ``numba-cache/warm-KEY``;
      the others wait for that marker (a lock older than 15 minutes is
      taken as stale and removed; after 30 minutes a task goes on anyway and
      compiles what it needs);
    * forwards the SIGUSR1 Slurm sends 60 s before the time limit to
      meanfield, which checkpoints and exits with 128 + 10; the task then
      requeues itself (``scontrol requeue $SLURM_JOB_ID``) and, when it runs
      again, the point resumes from the checkpoint.  Other failures are not
      requeued.

    Parameters
    ----------
    folder : path
        A sweep folder made by :func:`plan`.
    partition, time, mem : str, optional
        ``--partition``, ``--time`` (e.g. ``"02:00:00"``) and ``--mem`` (``"4G"``).
    cpus : int
        ``--cpus-per-task`` (and Numba threads per point).
    max_parallel : int, optional
        At most this many tasks at once (the ``%K`` of ``--array``).

    Returns
    -------
    Path
        The script; submit it with ``sbatch PATH``.

    Examples
    --------
    >>> path = sbatch_script("out/sweep", partition="cpu", time="01:00:00",
    ...                      max_parallel=50)                  # doctest: +SKIP
    >>> print(path.read_text().splitlines()[2])                # doctest: +SKIP
    #SBATCH --array=0-71%50
    """
    p = _as_plan(folder)
    folder = p.folder.resolve()
    n = len(p)
    for name, value in (("cpus", cpus), ("max-parallel", max_parallel)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise InputError(f"--{name} must be an integer >= 1, got {value!r}")
    partition = _slurm_option("partition", partition)
    time = _slurm_option("time", time)
    mem = _slurm_option("mem", mem)
    logs = folder / LOGS
    try:
        logs.mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {logs}: {exc.strerror or exc}") from None
    array = f"0-{n - 1}" + (f"%{max_parallel}" if max_parallel else "")
    usr1 = int(signal.SIGUSR1)
    q = shlex.quote
    sb = [f"--job-name={_slurm_option('job-name', 'mf-' + re.sub(r'[^A-Za-z0-9_.-]', '_', folder.name))}",
          f"--array={array}", "--requeue", "--signal=B:USR1@60",
          f"--output={logs}/%A_%a.out", "--open-mode=append",
          "--ntasks=1", f"--cpus-per-task={cpus}"]
    if partition:
        sb.append(f"--partition={partition}")
    if time:
        sb.append(f"--time={time}")
    if mem:
        sb.append(f"--mem={mem}")
    pythonpath = _python_path_entry()
    pp_line = (f'export PYTHONPATH={q(pythonpath)}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
               if pythonpath else "")
    header = "\n".join(f"#SBATCH {s}" for s in sb)
    script = f"""#!/bin/bash
# meanfield sweep: {n} points of {folder}, one array task each.
{header}
#
# Submit with: sbatch {q(str(folder / SBATCH))}
# Written by `meanfield sweep sbatch`; each task runs
#   meanfield sweep run SWEEP --index $SLURM_ARRAY_TASK_ID
# which skips a finished point, resumes a partial one, or starts it.

SWEEP={q(str(folder))}
PYTHON={q(sys.executable)}
{pp_line}export NUMBA_CACHE_DIR="$SWEEP/{NUMBA_CACHE}"
export NUMBA_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-{cpus}}}"
export OMP_NUM_THREADS="$NUMBA_NUM_THREADS" OPENBLAS_NUM_THREADS="$NUMBA_NUM_THREADS" MKL_NUM_THREADS="$NUMBA_NUM_THREADS"
export HDF5_USE_FILE_LOCKING="${{HDF5_USE_FILE_LOCKING:-FALSE}}"
index="${{SLURM_ARRAY_TASK_ID:?this script runs as a Slurm array job: sbatch it}}"
meanfield() {{ "$PYTHON" -m meanfield.cli "$@"; }}

# Slurm sends USR1 to this shell 60 s before the time limit (--signal=B:USR1@60).
usr1=0
child=
on_usr1() {{ usr1=1; [ -n "$child" ] && kill -USR1 "$child" 2>/dev/null; }}
trap on_usr1 USR1
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM

echo "[$(date '+%F %T')] point $index of $SWEEP on $(hostname) (job ${{SLURM_JOB_ID:-?}}, restart ${{SLURM_RESTART_COUNT:-0}})"

# Compile the kernels into the shared cache once per CPU model before the first run.
mkdir -p "$NUMBA_CACHE_DIR"
key=$( (uname -m; grep -m1 -E '^(model name|cpu model|Model|CPU part)' /proc/cpuinfo) 2>/dev/null | cksum | cut -d' ' -f1)
warm="$NUMBA_CACHE_DIR/warm-$key"
lock="$NUMBA_CACHE_DIR/warmup-$key.lock"
waited=0
while [ ! -e "$warm" ] && [ "$usr1" -eq 0 ]; do
    if mkdir "$lock" 2>/dev/null; then
        echo "$(hostname) $$" > "$lock/owner"
        echo "[$(date '+%F %T')] warming the numba cache in $NUMBA_CACHE_DIR"
        meanfield warmup || echo "meanfield warmup failed (status $?); runs compile what they need"
        touch "$warm"
        rm -rf "$lock"
        break
    fi
    if [ -n "$(find "$lock" -maxdepth 0 -mmin +15 2>/dev/null)" ]; then
        echo "removing the stale warm-up lock $lock"
        rm -rf "$lock"
        continue
    fi
    if [ "$waited" -ge 1800 ]; then
        echo "the numba cache is still not warm after $waited s; going on"
        break
    fi
    sleep 5
    waited=$((waited + 5))
done

rc={128 + usr1}
if [ "$usr1" -eq 0 ]; then
    "$PYTHON" -m meanfield.cli sweep run "$SWEEP" --index "$index" &
    child=$!
    wait "$child"; rc=$?
    # a trapped signal interrupts `wait` (status > 128): wait again for meanfield's own
    # exit status (bash keeps the status of a child that has exited meanwhile)
    while [ "$rc" -gt 128 ] && kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
    if [ "$rc" -gt 128 ]; then wait "$child"; rc=$?; fi
fi
echo "[$(date '+%F %T')] point $index: exit status $rc"
if [ "$rc" -eq {128 + usr1} ]; then
    # checkpointed before the time limit: back to the queue, the point resumes next time
    echo "requeueing job ${{SLURM_JOB_ID}} (array task $index)"
    scontrol requeue "${{SLURM_JOB_ID}}"
fi
exit "$rc"
"""
    path = folder / SBATCH
    _write_atomic(path, script)
    path.chmod(0o755)
    return path


# ------------------------------------------------------------------------ warmup
def _dispatchers():
    """Every Numba dispatcher of :mod:`meanfield.kernels`, as ``{"module.name": dispatcher}``."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import kernels

    found = {}
    for mod in pkgutil.iter_modules(kernels.__path__):
        try:
            module = importlib.import_module(f"{kernels.__name__}.{mod.name}")
        except Exception as exc:  # pragma: no cover - a broken kernel module
            log.warning("cannot import meanfield.kernels.%s: %s", mod.name, exc)
            continue
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found[f"{mod.name}.{name}"] = obj
    return found


def _warmup_configs():
    """Tiny configs covering every argument-type signature ``simulate`` gives the kernels.

    The kernels are specialised on argument types, not values (activations,
    losses and algorithms are integer ids, every array is float64), so one
    run would do; every choice of ``[train]`` (algorithm, model) x bias x loss
    x data kind is run anyway, cycling through the activations, so that a kernel added
    later with a type-dependent branch is covered too.  Each run is two
    steps of a 2-particle network on 4 points.
    """
    from .activations import NAMES as ACTS
    from .config import TrainConfig
    from .losses import NAMES as LOSSES

    # every choice of [train] (algorithm, model, ...), whatever this version has
    choices = {f.name: f.metadata["choices"] for f in fields(TrainConfig)
               if "choices" in f.metadata}
    acts = itertools.cycle(ACTS)
    for train in itertools.product(*choices.values()):
        for bias in (False, True):
            for loss in LOSSES:
                for kind in ("teacher", "random_labels"):
                    yield {
                        "model": {"m": 2, "activation": next(acts), "bias": bias},
                        "init": {"symmetric": False},
                        "data": {"kind": kind, "d": 2, "n_train": 4, "n_test": 4,
                                 "teacher_m": 1},
                        "loss": {"name": loss},
                        "train": {**dict(zip(choices, train)), "lr": 0.01, "steps": 2,
                                  "batch_size": 2},
                        "record": {"every": 1, "snapshot_every": 1, "checkpoint_every": 1},
                    }


def warmup(out=None) -> dict:
    """Compile every kernel ``simulate`` uses into the Numba cache.

    Runs a tiny in-memory simulation for every algorithm, bias, loss and
    data kind (see :func:`_warmup_configs`), so that later processes (the
    tasks of an array job) load the compiled kernels instead of compiling
    them.  The cache is where Numba puts it: ``NUMBA_CACHE_DIR`` if set
    (read by Numba at import), else ``__pycache__`` beside the sources.

    Parameters
    ----------
    out : file, optional
        Where to print the report (default: no report).

    Returns
    -------
    dict
        ``{"seconds", "cache_dir", "runs", "skipped", "kernels"}``, where
        ``kernels`` maps ``module.function`` to its number of signatures,
        how many were compiled now and how many were loaded from the cache.

    Examples
    --------
    >>> import sys
    >>> report = warmup(sys.stdout)             # doctest: +SKIP
    """
    import numba

    from .dynamics import simulate

    t0 = time.perf_counter()
    runs, skipped = 0, []
    for tables in _warmup_configs():
        try:
            config = Config.from_dict(tables)
            run = simulate(config)
            run.close()
            runs += 1
        except InputError as exc:   # a combination this engine does not support
            what = "/".join(str(v) for k, v in tables["train"].items() if isinstance(v, str))
            skipped.append(f"{what}/{tables['loss']['name']}: {exc}")
    seconds = time.perf_counter() - t0
    kernels = {}
    for name, disp in sorted(_dispatchers().items()):
        stats = disp.stats
        kernels[name] = {"signatures": len(disp.signatures),
                         "compiled": sum(stats.cache_misses.values()),
                         "loaded": sum(stats.cache_hits.values())}
    cache_dir = numba.config.CACHE_DIR or "__pycache__ beside the kernel sources"
    report = {"seconds": seconds, "cache_dir": cache_dir, "runs": runs, "skipped": skipped,
              "kernels": kernels}
    if out is not None:
        _print_warmup(report, out)
    return report


def _print_warmup(report, out):
    k = report["kernels"]
    print(f"numba cache: {report['cache_dir']}", file=out)
    print(f"{'kernel':<36} {'signatures':>10} {'compiled':>9} {'from cache':>11}", file=out)
    for name, s in k.items():
        if s["signatures"]:
            print(f"{name:<36} {s['signatures']:>10} {s['compiled']:>9} {s['loaded']:>11}",
                  file=out)
    others = sum(1 for s in k.values() if not s["signatures"])
    if others:
        print(f"({others} other kernels were not called directly: compiled into their "
              "callers, or not used by simulate)", file=out)
    if report["skipped"]:
        print(f"({len(report['skipped'])} combinations the engine refuses were skipped, "
              "e.g. the population flow of the tangent model)", file=out)
    compiled = sum(s["compiled"] for s in k.values())
    loaded = sum(s["loaded"] for s in k.values())
    used = sum(1 for s in k.values() if s["signatures"])
    print(f"{report['runs']} tiny runs, {used} kernels called: {compiled} signatures "
          f"compiled, {loaded} loaded from the cache, in {report['seconds']:.1f} s", file=out)
