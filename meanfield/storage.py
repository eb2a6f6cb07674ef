"""The run file: HDF5 following H5MD 1.1, plus one ``/meanfield`` group.

::

    /h5md                       attrs version=[1, 1]; groups creator, author
    /particles/network/box      attrs dimension=D, boundary=["none", ...]
    /particles/network/position/{step (k,), time (k,), value (k, m, D)}
    /observables/<name>/{step, time, value}
    /parameters                 attrs: config (resolved TOML), alpha, m, d, ...
    /meanfield                  attrs: status, message, format_version
    /meanfield/data/{x_train, y_train, x_test, y_test}, /meanfield/teacher
    /meanfield/checkpoint/{particles (2, m, D), step (2,), time (2,),
                           rng_state (2, 1024), lengths (2, S), slot}

A new file is built under a temporary name and renamed into place, then
reopened in SWMR mode: readers (``open_run``) can follow it while it is
written, and a killed writer leaves a readable file with status
``running``.  Time series are chunked along time (chunks <= 1 MiB) and
grown as the run goes; the ``step`` dataset of a series is extended last,
and its length is what readers trust, so a half-written record is never
seen.  This module is the only one that knows the layout.

Checkpoints are double-buffered: the two rows of every checkpoint dataset
are two slots, a new checkpoint fills the slot not in use, is flushed, and
only then does ``slot`` switch to it, so a writer killed at any moment
leaves one complete checkpoint.  A checkpoint holds the particles, step,
time, the training random generator's state and the length of every time
series at that step; :meth:`RunWriter.resume` rebuilds the file as it was
at the checkpoint (under a temporary name, then renamed) and continues.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from collections import namedtuple
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .config import Config
from .data import FIELDS, Dataset
from .errors import InputError

FORMAT_VERSION = 1
STATUSES = ("running", "completed", "diverged", "failed")
_CHUNK_BYTES = 1 << 20
_POSITION = "particles/network/position"
_CHECKPOINT = "meanfield/checkpoint"
_RNG_BYTES = 1024

Checkpoint = namedtuple("Checkpoint", "step particles initial rng_state")
"""Where a run can continue from: step, particles, initial particles, RNG state (dict)."""

Observable = namedtuple("Observable", "step time value")
"""A recorded time series: integer ``step``, physical ``time`` = lr * step, ``value``."""


def _series(group, name, shape, dtype=np.float64):
    """Create an extendable H5MD time series ``name`` with per-record ``shape``."""
    g = group.require_group(name)
    g.create_dataset("value", shape=(0, *shape), maxshape=(None, *shape),
                     chunks=_chunks(shape), dtype=dtype)
    g.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.int64)
    g.create_dataset("time", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.float64)
    return g


def _chunks(shape):
    """Chunk shape along time for records of ``shape``: at most 1 MiB, whole rows when they fit.

    Scalars go 1024 records a chunk, particle snapshots up to 16; a snapshot
    over 1 MiB is split along the particles.
    """
    row = int(np.prod(shape, dtype=np.int64)) * 8
    if not shape:
        return (1024,)
    if row <= _CHUNK_BYTES:
        return (max(1, min(16, _CHUNK_BYTES // row)), *shape)
    per_particle = int(np.prod(shape[1:], dtype=np.int64)) * 8
    return (1, max(1, _CHUNK_BYTES // per_particle), *shape[1:])


def _append(g, steps, times, values):
    """Append records to a series; ``step`` grows last, so readers never see half a record."""
    k, r = g["step"].shape[0], len(steps)
    for name, data in (("value", values), ("time", times), ("step", steps)):
        ds = g[name]
        ds.resize(k + r, axis=0)
        ds[k:k + r] = data


def _parameters(config: Config) -> dict:
    return {
        "config": config.to_toml(), "alpha": config.alpha, "m": config.model.m,
        "d": config.data.d, "lr": config.train.lr, "steps": config.train.steps,
        "weight_decay": config.train.weight_decay, "seed": config.run.seed,
        "activation": config.model.activation, "loss": config.loss.name,
        "algorithm": config.train.algorithm, "bias": config.model.bias,
        "regime": config.scaling.regime, "tau": config.init.tau,
        "symmetric": config.init.symmetric,
    }


class RunWriter:
    """Appends a run's snapshots and observables to its file.

    Use :meth:`create` (or :meth:`resume`); then :meth:`snapshot`,
    :meth:`observables`, :meth:`checkpoint` and :meth:`flush` while running,
    and :meth:`finish` at the end.
    """

    def __init__(self, h5: h5py.File, path: Path | None):
        self.h5 = h5
        self.path = path
        self.lr = float(h5["parameters"].attrs["lr"])
        self.series = json.loads(h5[_CHECKPOINT].attrs["series"])

    @classmethod
    def create(cls, path, config: Config, data: Dataset, P0: np.ndarray,
               observables: dict, overwrite: bool = False) -> "RunWriter":
        """Write the header and data of a new run file.

        ``observables`` maps the name of every observable series to the
        attributes of its group (``description``, ...).

        With ``path=None`` the file lives in memory only.  Otherwise it is
        built as ``.NAME.tmp-PID`` beside ``path`` and renamed into place, so
        ``path`` never holds a partial header.

        Raises
        ------
        InputError
            if ``path`` exists and ``overwrite`` is false, or its folder
            cannot be written.
        """
        if path is None:
            # a name no other open in-memory file has (HDF5 refuses to truncate an open file)
            h5 = h5py.File(f"meanfield-{uuid.uuid4().hex}.h5", "w", driver="core",
                           backing_store=False, libver="latest")
            cls._layout(h5, config, data, P0, observables)
            return cls(h5, None)
        else:
            path = Path(path)
            if path.exists() and not overwrite:
                raise InputError(f"output {path} exists (use --resume to continue it "
                                 "or --overwrite to replace it)")
            if not path.parent.is_dir():
                raise InputError(f"output {path}: folder {path.parent} does not exist")
            if path.is_dir():
                raise InputError(f"output {path} is a folder, not a file")
            with _replacing(path) as tmp, h5py.File(tmp, "w", libver="latest") as h5:
                cls._layout(h5, config, data, P0, observables)
            return cls._reopen(path)

    @classmethod
    def _reopen(cls, path) -> "RunWriter":
        h5 = _open(path, "r+", libver="latest")
        h5.swmr_mode = True
        return cls(h5, path)

    @classmethod
    def resume(cls, path, config: Config):
        """Reopen a partial run at its last checkpoint.

        The file is rebuilt as it was when the checkpoint was written (every
        series cut to its checkpointed length, status ``running``) under a
        temporary name and renamed into place.

        Returns
        -------
        (RunWriter, Checkpoint, Dataset), or None when the run already ended
        (``completed`` or ``diverged``).

        Raises
        ------
        InputError
            if the file is not a run file or its config differs from ``config``.
        """
        path = Path(path)
        with open_run(path) as old:
            stored = old.config
            if stored != config:
                a, b = stored.to_dict(), config.to_dict()
                keys = [f"{s}.{k}" for s in a for k in set(a[s]) | set(b[s])
                        if a[s].get(k) != b[s].get(k)]
                raise InputError(f"cannot resume {path}: its config differs in {', '.join(keys)}")
            if old.status in ("completed", "diverged"):
                return None
            h5 = old._h5
            slot = int(h5[f"{_CHECKPOINT}/slot"][()])
            ck = h5[_CHECKPOINT]
            lengths = ck["lengths"][slot]
            raw = bytes(ck["rng_state"][slot]).rstrip(b"\0")
            state = Checkpoint(int(ck["step"][slot]), ck["particles"][slot],
                               h5[f"{_POSITION}/value"][0], json.loads(raw))
            data = old.data
            series = json.loads(ck.attrs["series"])
            with _replacing(path) as tmp, h5py.File(tmp, "w", libver="latest") as new:
                for name in h5:
                    h5.copy(h5[name], new, name=name)
                new.attrs.update(h5.attrs)
                for name, k in zip(series, lengths):
                    for ds in ("value", "time", "step"):
                        new[f"{name}/{ds}"].resize(int(k), axis=0)
                new["meanfield"].attrs.update(status="running", message="")
        return cls._reopen(path), state, data

    @staticmethod
    def _layout(h5, config, data, P0, observables):
        m, D = P0.shape
        h5.require_group("h5md").attrs["version"] = np.array([1, 1], dtype=np.int32)
        creator = h5["h5md"].require_group("creator")
        creator.attrs["name"], creator.attrs["version"] = "meanfield", __version__
        h5["h5md"].require_group("author").attrs["name"] = getpass.getuser()
        box = h5.require_group("particles/network/box")
        box.attrs["dimension"] = np.int32(D)
        box.attrs["boundary"] = np.array(["none"] * D, dtype=h5py.string_dtype())
        _series(h5, _POSITION, (m, D))
        obs = h5.require_group("observables")
        for name, attrs in observables.items():
            _series(obs, name, ()).attrs.update(attrs)
        params = h5.require_group("parameters")
        for key, value in _parameters(config).items():
            params.attrs[key] = value
        mf = h5.require_group("meanfield")
        mf.attrs["status"] = "running"
        mf.attrs["message"] = ""
        mf.attrs["format_version"] = FORMAT_VERSION
        series = [_POSITION] + [f"observables/{name}" for name in observables]
        ck = mf.require_group("checkpoint")
        ck.attrs["series"] = json.dumps(series)
        ck.create_dataset("particles", shape=(2, m, D), dtype=np.float64)
        ck.create_dataset("step", shape=(2,), dtype=np.int64)
        ck.create_dataset("time", shape=(2,), dtype=np.float64)
        ck.create_dataset("rng_state", shape=(2, _RNG_BYTES), dtype=np.uint8)
        ck.create_dataset("lengths", shape=(2, len(series)), dtype=np.int64)
        ck.create_dataset("slot", data=np.int8(1))
        dg = mf.require_group("data")
        for name in FIELDS:
            dg.create_dataset(name, data=getattr(data, name))
        if data.teacher is not None:
            mf.create_dataset("teacher", data=data.teacher)

    def snapshot(self, step: int, P: np.ndarray):
        """Append the particles at ``step``."""
        _append(self.h5[_POSITION], [step], [step * self.lr], P[None])

    def observables(self, names, steps, values):
        """Append records ``values[:, q]`` of observable ``names[q]`` at ``steps``."""
        steps = np.asarray(steps, dtype=np.int64)
        times = steps * self.lr
        for q, name in enumerate(names):
            _append(self.h5["observables"][name], steps, times, values[:, q])

    def flush(self):
        """Make everything appended so far visible to readers and durable on disk."""
        self.h5.flush()

    def checkpoint(self, step: int, P: np.ndarray, rng_state: dict):
        """Store a checkpoint at ``step`` in the free slot, flush, then switch to it."""
        ck = self.h5[_CHECKPOINT]
        slot = 1 - int(ck["slot"][()])
        raw = json.dumps(rng_state).encode()
        if len(raw) > _RNG_BYTES:  # pragma: no cover - PCG64 states are ~150 bytes
            raise ValueError("random generator state too large for the checkpoint")
        ck["particles"][slot] = P
        ck["step"][slot] = step
        ck["time"][slot] = step * self.lr
        ck["rng_state"][slot] = np.frombuffer(raw.ljust(_RNG_BYTES, b"\0"), dtype=np.uint8)
        ck["lengths"][slot] = [self.h5[f"{name}/step"].shape[0] for name in self.series]
        self.h5.flush()
        ck["slot"][()] = slot
        self.h5.flush()

    def close(self):
        """Close the file as it is (status unchanged)."""
        self.h5.close()

    def finish(self, status: str, message: str = "") -> "Run":
        """Record the final ``status`` (and ``message``), close, and return the :class:`Run`."""
        if self.path is None:
            self.h5["meanfield"].attrs.update(status=status, message=message)
            return Run(self.h5, None)
        self.h5.close()
        with _open(self.path, "r+", libver="latest") as h5:
            h5["meanfield"].attrs.update(status=status, message=message)
        return open_run(self.path)


class Run:
    """Lazy, read-only view of a run file.

    Attributes read on demand: ``config``, ``status``, ``steps``/``times``
    (of the particle snapshots), ``particles(k)``, ``observable(name)``,
    ``data``, ``teacher``, ``parameters``.  Files still being written are
    followed: every read sees the records completed so far.

    Examples
    --------
    >>> run = open_run("data/demo.h5")          # doctest: +SKIP
    >>> obs = run.observable("test_loss")       # doctest: +SKIP
    >>> obs.time[-1], obs.value[-1]             # doctest: +SKIP
    """

    def __init__(self, h5: h5py.File, path):
        self._h5 = h5
        self.path = path

    # ------------------------------------------------------------ plumbing
    def _ds(self, name):
        ds = self._h5[name]
        if self._h5.swmr_mode:
            ds.refresh()
        return ds

    def _count(self, group):
        return self._ds(f"{group}/step").shape[0]

    def close(self):
        """Close the underlying HDF5 file."""
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        where = self.path or "<memory>"
        return f"<Run {where}: {self.status}, {len(self.steps)} snapshots, alpha={self.alpha:g}>"

    # ------------------------------------------------------------- header
    @property
    def parameters(self) -> dict:
        """The ``/parameters`` attributes (alpha, m, d, lr, seed, activation, ...)."""
        return {k: (v.item() if isinstance(v, np.generic) else v)
                for k, v in self._h5["parameters"].attrs.items()}

    @property
    def config_text(self) -> str:
        """The resolved TOML the run was made from."""
        return self._h5["parameters"].attrs["config"]

    @property
    def config(self) -> Config:
        """The resolved :class:`~meanfield.config.Config` of the run."""
        return Config.from_toml_text(self.config_text)

    @property
    def alpha(self) -> float:
        return float(self._h5["parameters"].attrs["alpha"])

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``diverged`` or ``failed``."""
        return str(self._h5["meanfield"].attrs["status"])

    @property
    def message(self) -> str:
        """Why the run stopped, when it did not complete."""
        return str(self._h5["meanfield"].attrs.get("message", ""))

    # --------------------------------------------------------- trajectory
    @property
    def steps(self) -> np.ndarray:
        """Steps of the particle snapshots."""
        k = self._count(_POSITION)
        return self._ds(f"{_POSITION}/step")[:k]

    @property
    def times(self) -> np.ndarray:
        """Physical times lr * step of the particle snapshots."""
        k = self._count(_POSITION)
        return self._ds(f"{_POSITION}/time")[:k]

    def particles(self, k=-1) -> np.ndarray:
        """Particles (m, D) of snapshot ``k`` (negative counts from the last), or a slice of them."""
        n = self._count(_POSITION)
        idx = range(n)[k]
        if isinstance(idx, range):
            return self._ds(f"{_POSITION}/value")[idx.start:idx.stop:idx.step]
        return self._ds(f"{_POSITION}/value")[idx]

    @property
    def observable_names(self) -> list:
        return list(self._h5["observables"])

    def observable(self, name: str) -> Observable:
        """The recorded series ``name`` as ``Observable(step, time, value)``."""
        if name not in self._h5["observables"]:
            raise KeyError(f"no observable {name!r} (have: {', '.join(self.observable_names)})")
        group = f"observables/{name}"
        k = self._count(group)
        return Observable(*(self._ds(f"{group}/{f}")[:k] for f in ("step", "time", "value")))

    # --------------------------------------------------------------- data
    @property
    def data(self) -> Dataset:
        """The training and test data the run used."""
        g = self._h5["meanfield/data"]
        return Dataset(**{k: g[k][()] for k in FIELDS}, teacher=self.teacher)

    @property
    def teacher(self):
        """Teacher particles (m0, d + 1), rows [a, c], or None."""
        return self._h5["meanfield/teacher"][()] if "meanfield/teacher" in self._h5 else None


def _locking():
    """HDF5 file locking, off when ``HDF5_USE_FILE_LOCKING`` is FALSE (shared file systems)."""
    return os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() not in ("FALSE", "0", "NO")


def _open(path, mode, **kwargs) -> h5py.File:
    return h5py.File(path, mode, locking=_locking(), **kwargs)


class _replacing:
    """Context manager: yields a temporary path beside ``path``, renamed onto it on success.

    Stale temporaries of earlier killed writers are removed first; on error
    the temporary is deleted and ``path`` is left as it was.
    """

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")

    def __enter__(self):
        for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            if not _alive(stale.name.rsplit("-", 1)[-1]):
                stale.unlink(missing_ok=True)
        return self.tmp

    def __exit__(self, kind, exc, tb):
        if kind is None:
            try:
                os.replace(self.tmp, self.path)
                return False
            except OSError as err:
                kind, exc = OSError, err
        self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"output {self.path}: cannot write ({exc.strerror or exc})") from None
        return False


def _alive(pid: str) -> bool:
    """Whether the process ``pid`` (a string from a temporary file's name) still runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def truncation(path):
    """Why the HDF5 file ``path`` is shorter than its superblock says it is, or None.

    HDF5 makes this check itself, except for SWMR readers, and a file left by
    a killed SWMR writer can only be read as one: a truncated such file (a
    full disk, a partial copy) would otherwise read as a partial run whose
    missing bytes come back as zeros.  The superblock (at byte 0, 512, 1024,
    ...) records the end-of-file address; versions 0/1 keep it after 16/20
    bytes of fixed fields, versions 2/3 after 4.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            offset = 0
            while True:
                if offset + 8 > size:
                    return None             # no signature: h5py reports it
                fh.seek(offset)
                if fh.read(8) == _HDF5_SIGNATURE:
                    break
                offset = 512 if offset == 0 else 2 * offset
            head = fh.read(16)
            if len(head) < 16 or head[0] > 3:
                return None
            so, at = (head[1], 12) if head[0] >= 2 else (head[5], 24 if head[0] == 0 else 28)
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


def read_status(path):
    """Status of the run file at ``path``, or None if there is none or it is unreadable."""
    try:
        with open_run(path) as run:
            return run.status
    except InputError:
        return None


def open_run(path) -> Run:
    """Open a run file for reading (lazily; works while the run is being written).

    Raises
    ------
    InputError
        if ``path`` is missing, unreadable, or not a meanfield run file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        h5 = _open(path, "r")
    except OSError as exc:
        # a file open in (or left by) a SWMR writer is read in SWMR mode; other
        # files are not, as SWMR readers skip HDF5's checks of damaged files
        if not any(why in str(exc) for why in ("already open for", "unable to lock file")):
            raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
        try:
            h5 = _open(path, "r", swmr=True)
        except OSError as exc:
            raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    required = ("meanfield", "parameters", _POSITION, "observables")
    if (any(name not in h5 for name in required)
            or "format_version" not in h5["meanfield"].attrs
            or "config" not in h5["parameters"].attrs):
        h5.close()
        raise InputError(f"{path}: not a meanfield run file (or a damaged one)")
    return Run(h5, path)
