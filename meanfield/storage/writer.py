"""Writing a run file: create or resume it, append records, checkpoint, finish.

A writer holds the file's :class:`~meanfield.storage.lock.WriterLock` from
:meth:`RunWriter.create` / :meth:`RunWriter.resume` to :meth:`~RunWriter.finish`
or :meth:`~RunWriter.close`.  A new file is built under a temporary name and
renamed into place, then reopened in SWMR mode so that readers can follow
it.  The ``step`` dataset of a series is extended last, so a reader never
sees half a record.  The first write that fails (a full disk) freezes the
file as it was (no later write reaches it), releases the lock and raises
:class:`~meanfield.storage.atomic.WriteFailed`: the last completed
checkpoint stays readable and ``--resume`` continues from it.

Checkpoints are double-buffered: a new one fills the slot not in use
(allocated when the file was made, so it is rewritten in place and needs
no new space), is flushed, and only then does ``slot`` switch to it.
"""

from __future__ import annotations

import functools
import io
import json
import uuid
from pathlib import Path

import h5py
import numpy as np

from ..deep_linear.config import split_layers
from ..errors import InputError
from . import layout as L
from .atomic import WriteFailed, check_output, replacing
from .hdf import LIBVER, freeze, open_file
from .lock import WriterLock
from .reader import Run, open_run


class NoCheckpoint(InputError):
    """The file holds no complete checkpoint (killed before its first one): start it afresh."""


def _guarded(method):
    """Turn the first failed HDF5 write into :class:`WriteFailed`, freezing the file first."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.failed:
            raise WriteFailed(self.failed)
        try:
            return method(self, *args, **kwargs)
        except (OSError, RuntimeError) as exc:
            if self.path is None:
                raise
            freeze(self.h5, self._ds)
            self._release()
            self.failed = (f"cannot write {self.path}: {_reason(exc)}; its last checkpoint "
                           "is kept (free space, then continue with --resume)")
            raise WriteFailed(self.failed) from None
    return wrapper


def _reason(exc) -> str:
    text = str(exc)
    return "no space left on device" if "errno = 28" in text or "No space" in text else text


class RunWriter:
    """Appends a run's snapshots and observables to its file.

    Use :meth:`create` (or :meth:`resume`); then :meth:`snapshot`,
    :meth:`observables`, :meth:`checkpoint` and :meth:`flush` while running,
    and :meth:`finish` (or :meth:`close`) at the end.
    """

    def __init__(self, h5: h5py.File, path: Path | None, lock: WriterLock | None = None):
        self.h5 = h5
        self.path = path
        self.lock = lock
        self.failed = ""
        self.lr = float(h5["parameters"].attrs["lr"])
        self.series = json.loads(h5[L.CHECKPOINT].attrs["series"])
        # dataset handles stay open until the file closes: HDF5 writes a dataset's cached
        # chunks when its handle closes, and a failure there (a full disk) could not be
        # seen (h5py ignores errors in destructors); with the handles open it shows up in
        # the next write or flush, where it is caught
        self._ds = {f"{name}/{f}": h5[f"{name}/{f}"] for name in self.series
                    for f in ("value", "time", "step")}
        self._ds.update({name: h5[f"{L.CHECKPOINT}/{name}"] for name in h5[L.CHECKPOINT]})
        names = json.loads(h5["meanfield"].attrs.get(L.LAYERS, "[]"))
        self.layers = {L.layer(name): h5[f"{L.layer(name)}/value"].shape[1:] for name in names}
        self.rows = h5[f"{L.POSITION}/value"].shape[1]

    @classmethod
    def create(cls, path, config, data, P0: np.ndarray, observables: dict,
               overwrite: bool = False, inputs=()) -> "RunWriter":
        """Write the header and data of a new run file and take its writer lock.

        ``observables`` maps the name of every observable series to the
        attributes of its group (``description``, ...).  With ``path=None``
        the file lives in memory only.  Otherwise it is built under a
        temporary name beside ``path`` and renamed into place.  ``inputs``
        are files the output must not replace (the config file).

        Raises
        ------
        InputError
            if ``path`` exists and ``overwrite`` is false, another process
            writes it, or it cannot be written.
        """
        if path is None:
            # a name no other open in-memory file has (HDF5 refuses to truncate an open file)
            name = f"meanfield-{uuid.uuid4().hex}.h5"
            h5 = h5py.File(name, "w", driver="core", backing_store=False, libver=LIBVER)
            L.write_header(h5, config, data, P0, observables)
            return cls(h5, None)
        path = check_output(path, inputs)
        lock = WriterLock(path)
        try:
            if path.exists() and not overwrite:
                raise InputError(f"output {path} exists (use --resume to continue it "
                                 "or --overwrite to replace it)")
            with replacing(path) as tmp, h5py.File(tmp, "w", libver=LIBVER) as h5:
                L.write_header(h5, config, data, P0, observables)
            return cls._reopen(path, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _reopen(cls, path, lock) -> "RunWriter":
        h5 = open_file(path, "r+", libver=LIBVER)
        h5.swmr_mode = True
        return cls(h5, path, lock)

    @classmethod
    def resume(cls, path, config):
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
        NoCheckpoint
            if the file has no complete checkpoint yet (start it again).
        InputError
            if the file is not a readable run file, another process writes
            it, or its config differs from ``config``.
        """
        path = Path(path)
        lock = WriterLock(path)
        try:
            resumed = cls._rebuild(path, config)
            if resumed is None:
                lock.release()
                return None
            state, data = resumed
            return cls._reopen(path, lock), state, data
        except BaseException:
            lock.release()
            raise

    @staticmethod
    def _rebuild(path, config):
        with open_run(path) as old:
            old.check_config(config)
            if old.status in ("completed", "diverged"):
                return None
            state = old.checkpoint()
            if state is None:
                raise NoCheckpoint(f"{path} has no checkpoint yet (killed before its first "
                                   "one): run it again without --resume")
            data, lengths = old.data, old.checkpoint_lengths()
            with replacing(path) as tmp, h5py.File(tmp, "w", libver=LIBVER) as new:
                old.copy_into(new)
                L.upgrade(new)
                for name, k in zip(json.loads(new[L.CHECKPOINT].attrs["series"]), lengths):
                    for ds in ("value", "time", "step"):
                        new[f"{name}/{ds}"].resize(int(k), axis=0)
                _set_status(new, "running", "")
        return state, data

    @_guarded
    def snapshot(self, step: int, P: np.ndarray):
        """Append the particles at ``step`` (and their number, for a growing network)."""
        if L.COUNT in self.series:
            self._append(L.COUNT, [step], [step * self.lr], [len(P)])
        self._append(L.POSITION, [step], [step * self.lr], L.padded(P, self.rows)[None])
        if self.layers:  # a deep linear run: each layer in its own group too
            for name, block in zip(self.layers, split_layers(P, list(self.layers.values()))):
                self._append(name, [step], [step * self.lr], block[None])

    @_guarded
    def observables(self, names, steps, values):
        """Append records ``values[:, q]`` of observable ``names[q]`` at ``steps``."""
        steps = np.asarray(steps, dtype=np.int64)
        times = steps * self.lr
        for q, name in enumerate(names):
            self._append(f"observables/{name}", steps, times, values[:, q])

    def _append(self, series, steps, times, values):
        """Append records to a series; ``step`` grows last, so readers never see half a record."""
        k, r = self._ds[f"{series}/step"].shape[0], len(steps)
        for name, data in (("value", values), ("time", times), ("step", steps)):
            ds = self._ds[f"{series}/{name}"]
            ds.resize(k + r, axis=0)
            ds[k:k + r] = data

    @_guarded
    def flush(self):
        """Make everything appended so far visible to readers and durable on disk."""
        self.h5.flush()

    @_guarded
    def checkpoint(self, step: int, P: np.ndarray, rng_state: dict, extras=None):
        """Store a checkpoint at ``step`` in the free slot, flush, then switch to it.

        ``extras`` (name -> array) is algorithm state restored on resume
        (:attr:`Checkpoint.extras`).
        """
        ck = self._ds
        slot = 1 - max(0, int(ck["slot"][()]))
        raw = json.dumps(rng_state).encode()
        if len(raw) > L.RNG_BYTES:  # pragma: no cover - PCG64 states are ~150 bytes
            raise ValueError("random generator state too large for the checkpoint")
        blob = _pack(extras)
        if blob.size > ck["extras"].shape[1]:
            ck["extras"].resize(-(-blob.size // L.EXTRAS_CHUNK) * L.EXTRAS_CHUNK, axis=1)
        ck["particles"][slot] = L.padded(P, self.rows)
        if "count" in ck:
            ck["count"][slot] = len(P)
        ck["step"][slot] = step
        ck["time"][slot] = step * self.lr
        ck["rng_state"][slot] = np.frombuffer(raw.ljust(L.RNG_BYTES, b"\0"), dtype=np.uint8)
        ck["lengths"][slot] = [ck[f"{name}/step"].shape[0] for name in self.series]
        ck["extras"][slot, :blob.size] = blob
        ck["extras_size"][slot] = blob.size
        self.h5.flush()
        ck["slot"][()] = slot
        self.h5.flush()

    def close(self):
        """Close the file as it is (status unchanged) and release it."""
        try:
            if not self.failed:
                self._ds.clear()
                self.h5.close()
        finally:
            self._release()

    def _release(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @_guarded
    def _write_status(self, status, message):
        _set_status(self.h5, status, message)
        self.h5.flush()

    def finish(self, status: str, message: str = "") -> Run:
        """Record the final ``status`` (and ``message``), close, and return the :class:`Run`.

        The status is written through the writer's own handle (never by
        reopening the file, which a reader could block).
        """
        self._write_status(status, message)
        if self.path is None:
            return Run(self.h5, None)
        self.close()
        return open_run(self.path)


def _set_status(h5, status, message):
    if status not in L.STATUSES:
        raise ValueError(f"unknown status {status!r}")
    attrs = h5["meanfield"].attrs
    attrs.modify("status", np.bytes_(status.encode()))
    attrs.modify("message", np.bytes_(message.encode()[:1023]))


def _pack(extras) -> np.ndarray:
    """``extras`` (name -> array) as the bytes of an uncompressed ``.npz``; empty for none."""
    if not extras:
        return np.zeros(0, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in extras.items()})
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)
