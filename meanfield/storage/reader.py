"""Reading a run file: :func:`open_run` and the lazy :class:`Run`."""

from __future__ import annotations

import io
import json
import os
import warnings
from collections import namedtuple
from pathlib import Path

import h5py
import numpy as np

from ..config import Config
from ..data import FIELDS, Dataset
from ..deep_linear.config import stored_layers
from ..errors import InputError
from ..recorders import Observable
from . import layout as L
from .hdf import open_file, refresh

Checkpoint = namedtuple("Checkpoint", "step particles initial rng_state extras",
                        defaults=(None,))
"""Where a run can continue from: step, particles, initial particles, RNG state (dict),
algorithm ``extras`` (name -> array; empty when the algorithm keeps none)."""

_HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError)
_BOOLEAN = ("bias", "symmetric")


class DamagedFile(InputError):
    """A run file whose metadata or data fail HDF5's checks (checksums, structure)."""


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class Run:
    """Lazy, read-only view of a run file.

    Attributes read on demand: ``config``, ``status``, ``steps``/``times``
    (of the particle snapshots), ``particles(k)``, ``layers(k)`` (deep linear
    runs), ``observable(name)``,
    ``data``, ``teacher``, ``parameters``.  Files still being written are
    followed: every read sees the records completed so far, and ``status``
    the final status once the writer finished.  A file replaced on disk
    since it was opened (``--overwrite``, ``--resume``) is noticed: the
    next read warns and reads the new file.  A damaged file raises
    :class:`DamagedFile` (an :class:`~meanfield.errors.InputError`).

    Examples
    --------
    >>> run = open_run("data/demo.h5")          # doctest: +SKIP
    >>> obs = run.observable("test_loss")       # doctest: +SKIP
    >>> obs.time[-1], obs.value[-1]             # doctest: +SKIP
    """

    def __init__(self, h5: h5py.File, path):
        self._h5 = h5
        self.path = path
        self._inode = _inode(path)

    # ------------------------------------------------------------ plumbing
    def _file(self) -> h5py.File:
        """The open file, reopened if the one at ``path`` was replaced."""
        if self.path is not None and _inode(self.path) not in (self._inode, None):
            warnings.warn(f"{self.path} was replaced since it was opened (--overwrite or "
                          "--resume); reading the new file", RuntimeWarning, stacklevel=3)
            self._reopen()
        return self._h5

    def _reopen(self):
        self._h5.close()
        self._h5 = _open_h5(self.path)
        self._inode = _inode(self.path)

    def _read(self, name, selection=()):
        """``file[name][selection]``, refreshed for a file being written; damage is one error."""
        try:
            ds = self._file()[name]
            if self._h5.swmr_mode:
                ds.refresh()
            return ds[selection] if selection != () else ds[()]
        except _HDF5_ERRORS as exc:
            raise DamagedFile(f"{self.path}: {name} cannot be read, the file is damaged "
                              f"({exc})") from None

    def _attrs(self, group) -> dict:
        try:
            return dict(self._file()[group].attrs)
        except _HDF5_ERRORS as exc:
            raise DamagedFile(f"{self.path}: the attributes of /{group} cannot be read, "
                              f"the file is damaged ({exc})") from None

    def _count(self, group) -> int:
        try:
            ds = self._file()[f"{group}/step"]
            if self._h5.swmr_mode:
                ds.refresh()
            return ds.shape[0]
        except _HDF5_ERRORS as exc:
            raise DamagedFile(f"{self.path}: {group} cannot be read, the file is damaged "
                              f"({exc})") from None

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
        out = {k: (v.item() if isinstance(v, np.generic) else _text(v) if isinstance(v, bytes)
                   else v) for k, v in self._attrs("parameters").items()}
        out.update({k: bool(out[k]) for k in _BOOLEAN if k in out})
        return out

    @property
    def config_text(self) -> str:
        """The resolved TOML the run was made from."""
        return _text(self._attrs("parameters")["config"])

    @property
    def config(self) -> Config:
        """The resolved :class:`~meanfield.config.Config` of the run."""
        return Config.from_toml_text(self.config_text)

    def check_config(self, config: Config):
        """Raise :class:`InputError` naming the keys where ``config`` differs from the run's."""
        stored = self.config
        if stored != config:
            a, b = stored.to_dict(), config.to_dict()
            keys = [f"{s}.{k}" for s in sorted(set(a) | set(b))
                    for k in sorted(set(a.get(s, {})) | set(b.get(s, {})))
                    if a.get(s, {}).get(k) != b.get(s, {}).get(k)]
            raise InputError(f"cannot resume {self.path}: its config differs in "
                             f"{', '.join(keys)}")

    @property
    def format_version(self) -> int:
        """Version of the file layout (:data:`~meanfield.storage.FORMAT_VERSION` when written)."""
        return int(self._attrs("meanfield")["format_version"])

    @property
    def alpha(self) -> float:
        return float(self._attrs("parameters")["alpha"])

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``diverged`` or ``failed`` (as of now, for a live file)."""
        if self._h5.swmr_mode:
            refresh(self._file()["meanfield"])  # a writer may have finished since
        return _text(self._attrs("meanfield")["status"])

    @property
    def message(self) -> str:
        """Why the run stopped, when it did not complete."""
        return _text(self._attrs("meanfield").get("message", ""))

    # --------------------------------------------------------- trajectory
    @property
    def steps(self) -> np.ndarray:
        """Steps of the particle snapshots."""
        return self._read(f"{L.POSITION}/step", slice(0, self._count(L.POSITION)))

    @property
    def times(self) -> np.ndarray:
        """Physical times lr * step of the particle snapshots."""
        return self._read(f"{L.POSITION}/time", slice(0, self._count(L.POSITION)))

    @property
    def counts(self) -> np.ndarray:
        """Number of particles m of every snapshot (it changes for a growing network)."""
        k = self._count(L.POSITION)
        if L.COUNT in self._file():
            return self._read(f"{L.COUNT}/value", slice(0, k))
        return np.full(k, self._file()[f"{L.POSITION}/value"].shape[1], dtype=np.int64)

    def particles(self, k=-1) -> np.ndarray:
        """Particles (m, D) of snapshot ``k`` (negative counts from the last), or a slice of them.

        A slice of a growing network's snapshots is (k, max m, D), NaN beyond each count.
        """
        idx = range(self._count(L.POSITION))[k]
        if isinstance(idx, range):
            idx = slice(idx.start, idx.stop, idx.step)
        P = self._read(f"{L.POSITION}/value", idx)
        if L.COUNT not in self._file():
            return P
        counts = self.counts[idx]
        if P.ndim == 2:
            return P[:counts]
        P = P[:, :int(counts.max(initial=0))]
        P[np.arange(P.shape[1]) >= counts[:, None]] = np.nan
        return P

    def layers(self, k=-1) -> list:
        """Layers of snapshot ``k`` of a deep linear run: [W_1, ..., W_N], W_j (n_j, n_{j-1}).

        [W_e] (k, d) for ``train.algorithm = "end_to_end"``; a slice of snapshots
        gives stacks (s, n_j, n_{j-1}).  Read from ``/particles/layer_j/position``
        (``/particles/end_to_end/position``); files written before these groups
        existed are split from ``particles(k)``.

        Raises
        ------
        InputError
            if the run is not of a deep linear network.
        """
        names = json.loads(self._attrs("meanfield").get(L.LAYERS, "[]"))
        if not names:
            return stored_layers(self.config, self.particles(k))
        idx = range(self._count(L.layer(names[-1])))[k]  # the last layer is appended last
        if isinstance(idx, range):
            idx = slice(idx.start, idx.stop, idx.step)
        return [self._read(f"{L.layer(name)}/value", idx) for name in names]

    @property
    def observable_names(self) -> list:
        try:
            return list(self._file()["observables"])
        except _HDF5_ERRORS as exc:
            raise DamagedFile(f"{self.path}: /observables cannot be read ({exc})") from None

    def observable(self, name: str) -> Observable:
        """The recorded series ``name`` as ``Observable(step, time, value)``."""
        if name not in self.observable_names:
            raise KeyError(f"no observable {name!r} (have: {', '.join(self.observable_names)})")
        group = f"observables/{name}"
        k = slice(0, self._count(group))
        return Observable(*(self._read(f"{group}/{f}", k) for f in ("step", "time", "value")))

    # --------------------------------------------------------------- data
    @property
    def data(self) -> Dataset:
        """The training and test data the run used."""
        corrupted = (self._read("meanfield/corrupted") if "meanfield/corrupted" in self._file()
                     else None)
        return Dataset(**{k: self._read(f"meanfield/data/{k}") for k in FIELDS},
                       teacher=self.teacher, corrupted=corrupted)

    @property
    def teacher(self):
        """Teacher particles (m0, d + 1), rows [a, c], or None."""
        return self._read("meanfield/teacher") if "meanfield/teacher" in self._file() else None

    # --------------------------------------------------------- checkpoint
    def _slot(self):
        slot = int(self._read(f"{L.CHECKPOINT}/slot"))
        return None if slot < 0 else slot

    def checkpoint(self) -> Checkpoint | None:
        """The last complete checkpoint, or None if the run was killed before its first."""
        slot = self._slot()
        if slot is None:
            return None
        ck = L.CHECKPOINT
        raw = bytes(self._read(f"{ck}/rng_state", slot)).rstrip(b"\0")
        try:
            rng_state = json.loads(raw)
        except ValueError:
            raise DamagedFile(f"{self.path}: its checkpoint is damaged") from None
        extras = {}
        if f"{ck}/extras_size" in self._file():
            size = int(self._read(f"{ck}/extras_size", slot))
            if size:
                blob = self._read(f"{ck}/extras", (slot, slice(0, size)))
                with np.load(io.BytesIO(blob.tobytes()), allow_pickle=False) as npz:
                    extras = {k: npz[k] for k in npz.files}
        m = int(self._read(f"{ck}/count", slot)) if f"{ck}/count" in self._file() else None
        step = int(self._read(f"{ck}/step", slot))
        particles = self._read(f"{ck}/particles", slot)[:m]
        return Checkpoint(step, particles, self._initial(step, particles), rng_state, extras)

    def _initial(self, step, particles):
        """The particles of snapshot 0; those of the step-0 checkpoint before it is written."""
        if self._count(L.POSITION):
            m0 = int(self._read(f"{L.COUNT}/value", 0)) if L.COUNT in self._file() else None
            return self._read(f"{L.POSITION}/value", 0)[:m0]
        if step != 0:  # snapshot 0 is written before the run advances
            raise DamagedFile(f"{self.path}: its checkpoint is at step {step} but it holds "
                              "no snapshot, the file is damaged")
        return particles  # killed between the step-0 checkpoint and the first snapshot

    def checkpoint_lengths(self) -> np.ndarray:
        """Records of every series (checkpoint ``series`` order) at the last checkpoint."""
        return self._read(f"{L.CHECKPOINT}/lengths", self._slot())

    def copy_into(self, new: h5py.File):
        """Copy every group and root attribute into the open file ``new`` (dimension scales too)."""
        h5 = self._file()
        try:
            for name in h5:
                h5.copy(h5[name], new, name=name)
            new.attrs.update(h5.attrs)
        except _HDF5_ERRORS as exc:
            raise DamagedFile(f"{self.path}: cannot be copied, the file is damaged "
                              f"({exc})") from None
        for name in json.loads(new[L.CHECKPOINT].attrs["series"]):
            if f"{L.AXES}/particle" in new or new[f"{name}/value"].ndim == 1:  # older: no axes
                L.attach_scales(new[name])

    # ---------------------------------------------------------- notebooks
    def to_xarray(self):
        """The run as an ``xarray.Dataset`` (needs ``pip install 'meanfield[notebook]'``).

        Observables on a ``step`` axis with ``time`` as a coordinate;
        particles as ``position`` (``snapshot``, ``particle``, ``coordinate``).
        """
        from .export import to_xarray
        return to_xarray(self)

    def observables_frame(self):
        """Every observable as a ``pandas.DataFrame`` indexed by step (needs pandas)."""
        from .export import observables_frame
        return observables_frame(self)

    to_pandas = observables_frame


def _inode(path):
    try:
        st = os.stat(path)
    except (OSError, TypeError):
        return None
    return st.st_dev, st.st_ino


def _open_h5(path) -> h5py.File:
    """Open ``path`` plainly, or in SWMR mode when a writer holds it (or a killed one left it)."""
    try:
        return open_file(path, "r")
    except OSError as exc:
        # a file open in (or left by) a SWMR writer is read in SWMR mode (so is one this
        # process holds so: its access flags "don't match" a plain open); other files are
        # not, as SWMR readers skip some of HDF5's checks
        if not any(why in str(exc) for why in ("already open for", "unable to lock file",
                                               "match")):
            raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        return open_file(path, "r", swmr=True)
    except _HDF5_ERRORS as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None


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
        if ``path`` is missing, unreadable, or not a meanfield run file
        (:class:`DamagedFile` if HDF5's checks of its header fail).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    h5 = _open_h5(path)
    run = Run(h5, path)
    required = ("meanfield", "parameters", L.POSITION, "observables", L.CHECKPOINT)
    try:
        ok = (all(name in h5 for name in required)
              and "format_version" in h5["meanfield"].attrs
              and "config" in h5["parameters"].attrs)
        if ok:
            run.status, run.config_text, run.observable_names
    except (DamagedFile, *_HDF5_ERRORS) as exc:
        h5.close()
        raise DamagedFile(f"{path}: damaged run file ({exc})") from None
    if not ok:
        h5.close()
        raise InputError(f"{path}: not a meanfield run file (or a damaged one)")
    return run
