"""Where everything lives in a run file, and the header written when it is created.

Every time series is an H5MD group ``{step, time, value}``: ``value`` and
``time`` carry ``step`` as their HDF5 dimension scale (netCDF readers such
as xarray/h5netcdf show a ``step`` axis), all three are chunked along time
(chunks <= 1 MiB) with HDF5's fletcher32 checksum, and ``value`` uses the
run's ``record.compression`` (``gzip`` and ``lzf`` with the shuffle filter).
"""

from __future__ import annotations

import getpass
import json
import os

import h5py
import numpy as np

from .. import __version__
from ..data import FIELDS
from ..deep_linear.config import stored_shapes

FORMAT_VERSION = 2
"""2: fixed-length status, checkpoint ``extras`` and ``slot`` -1 before the first
checkpoint, dimension scales; files of version 1 are read and resumed as well."""
STATUSES = ("running", "completed", "diverged", "failed")
POSITION = "particles/network/position"
COUNT = "particles/network/count"
CHECKPOINT = "meanfield/checkpoint"
AXES = "particles/network"
LAYERS = "layers"
"""``/meanfield`` attribute of a deep linear run: JSON list of its layer groups, in order."""
AXIS_NAMES = ("particle", "coordinate")
RNG_BYTES = 1024
EXTRAS_CHUNK = 1 << 16
_CHUNK_BYTES = 1 << 20
_STRING = h5py.string_dtype("utf-8")


def filters(compression: str) -> dict:
    """h5py dataset keywords for ``compression`` ("none", "lzf", "gzip"), always fletcher32."""
    extra = {"none": {}, "lzf": {"compression": "lzf", "shuffle": True},
             "gzip": {"compression": "gzip", "compression_opts": 4, "shuffle": True}}
    return {"fletcher32": True, **extra[compression]}


def chunks(shape) -> tuple:
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


def series(group, name, shape, compression="none", dtype=np.float64):
    """Create an extendable H5MD time series ``name`` with per-record ``shape``."""
    g = group.require_group(name)
    g.create_dataset("value", shape=(0, *shape), maxshape=(None, *shape),
                     chunks=chunks(shape), dtype=dtype, **filters(compression))
    for name, kind in (("step", np.int64), ("time", np.float64)):
        g.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(1024,), dtype=kind,
                         fletcher32=True)
    attach_scales(g)
    return g


def attach_scales(g):
    """Make ``step`` the dimension scale of the first axis of ``value`` and ``time``.

    The other axes of a particle series get ``{particle, coordinate}`` of its
    particle group (``/particles/network``, ``/particles/layer_j``: fixed-in-time
    H5MD elements; netCDF readers want every axis of a variable named or none).
    References left dangling by copying a series into another file are dropped first.
    """
    value, step = g["value"], g["step"]
    axes = [g.parent[name] for name in AXIS_NAMES[:value.ndim - 1]]
    for ds, attr in ((step, "REFERENCE_LIST"), (value, "DIMENSION_LIST"),
                     (g["time"], "DIMENSION_LIST"), *((a, "REFERENCE_LIST") for a in axes)):
        if attr in ds.attrs:
            del ds.attrs[attr]
    step.make_scale("step")
    value.dims[0].attach_scale(step)
    g["time"].dims[0].attach_scale(step)
    for i, axis in enumerate(axes, start=1):
        axis.make_scale(AXIS_NAMES[i - 1])
        value.dims[i].attach_scale(axis)


def author(config) -> str:
    """``run.author``, else ``$MEANFIELD_AUTHOR``, else the login name."""
    name = config.run.author or os.environ.get("MEANFIELD_AUTHOR", "")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no login name (a container without passwd entry)
            name = "unknown"
    return name


def _attribute(value):
    """Booleans as integers: HDF5 2's boolean enum is unreadable by HDF5 1.10 tools."""
    return int(value) if isinstance(value, (bool, np.bool_)) else value


def _fixed(text: str) -> np.bytes_:
    """A fixed-length string attribute value (H5MD asks for them in ``/h5md``)."""
    return np.bytes_(text.encode())


def parameters(config) -> dict:
    """The ``/parameters`` attributes: the resolved config and its most used values."""
    return {
        "config": config.to_toml(), "alpha": config.alpha, "m": config.model.m,
        "d": config.data.d, "lr": config.train.lr, "steps": config.train.steps,
        "weight_decay": config.train.weight_decay, "seed": config.run.seed,
        "activation": config.model.activation, "loss": config.loss.name,
        "algorithm": config.train.algorithm, "bias": config.model.bias,
        "regime": config.scaling.regime, "tau": config.init.tau,
        "symmetric": config.init.symmetric,
    }


def capacity(config, m: int) -> int:
    """Rows of the particle datasets: ``grow.max_neurons`` for a growing network, else m."""
    return config.grow.max_neurons if config.train.algorithm == "grow" else m


def padded(P, rows: int) -> np.ndarray:
    """``P`` (m, D) with zero rows appended up to ``rows``."""
    if len(P) == rows:
        return P
    return np.vstack([P, np.zeros((rows - len(P), P.shape[1]))])


def write_header(h5, config, data, P0, observables):
    """Lay out a new run file: H5MD header, series, parameters, data, empty checkpoint.

    A growing network (``train.algorithm = "grow"``) stores its particles in
    ``grow.max_neurons`` rows, zero beyond the current count, which the
    ``particles/network/count`` series records at every snapshot (and the
    checkpoint's ``count`` for its particles).
    """
    m, D = capacity(config, P0.shape[0]), P0.shape[1]
    compression = config.record.compression
    h5md = h5.require_group("h5md")
    h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
    creator = h5md.require_group("creator")
    creator.attrs["name"], creator.attrs["version"] = _fixed("meanfield"), _fixed(__version__)
    h5md.require_group("author").attrs["name"] = _fixed(author(config))
    _particle_group(h5, AXES, m, D, compression)
    layers = stored_shapes(config)
    for name, shape in layers:
        _particle_group(h5, f"particles/{name}", *shape, compression)
    counted = [COUNT] if config.train.algorithm == "grow" else []
    if counted:
        series(h5, COUNT, (), dtype=np.int64)
    obs = h5.require_group("observables")
    for name, attrs in observables.items():
        series(obs, name, (), compression).attrs.update(
            {k: _attribute(v) for k, v in attrs.items()})
    params = h5.require_group("parameters")
    for key, value in parameters(config).items():
        params.attrs[key] = _attribute(value)
    mf = h5.require_group("meanfield")
    mf.attrs["format_version"] = FORMAT_VERSION
    # fixed size: rewritten in place when the run ends, readable by every reader
    mf.attrs.create("status", np.bytes_(b"running"), dtype="S16")
    mf.attrs.create("message", np.bytes_(b""), dtype="S1024")
    if layers:
        mf.attrs[LAYERS] = json.dumps([name for name, _ in layers])
    _checkpoint_layout(mf, counted + [POSITION] + [layer(name) for name, _ in layers]
                       + [f"observables/{name}" for name in observables], m, D)
    if counted:
        mf["checkpoint"].create_dataset("count", data=np.zeros(2, np.int64), chunks=(2,),
                                        fletcher32=True)
    dg = mf.require_group("data")
    for name in FIELDS:
        _array(dg, name, getattr(data, name), compression)
    for name in ("teacher", "corrupted"):
        if getattr(data, name, None) is not None:
            _array(mf, name, getattr(data, name), compression)


def layer(name) -> str:
    """The position series of the layer group ``name`` (``layer_j``, ``end_to_end``)."""
    return f"particles/{name}/position"


def _particle_group(h5, path, m, D, compression):
    """H5MD particle group ``path``: box of dimension ``D``, axes, position series (m, D)."""
    box = h5.require_group(f"{path}/box")
    box.attrs["dimension"] = np.int32(D)
    box.attrs["boundary"] = np.array([b"none"] * D, dtype="S4")
    for name, n in zip(AXIS_NAMES, (m, D)):
        h5.create_dataset(f"{path}/{name}", data=np.arange(n, dtype=np.int64), chunks=(n,),
                          fletcher32=True)
    series(h5, f"{path}/position", (m, D), compression)


def _array(group, name, array, compression):
    array = np.asarray(array)
    kwargs = filters(compression) if array.size else {}
    chunk = None
    if array.ndim and array.size:
        chunk = (min(chunks(array.shape[1:])[0], array.shape[0]), *array.shape[1:])
    group.create_dataset(name, data=array, chunks=chunk, **kwargs)


def _checkpoint_layout(mf, names, m, D):
    """Two checkpoint slots, written in full now so that later checkpoints rewrite in place.

    ``slot`` is -1 until the first checkpoint is complete.
    """
    ck = mf.require_group("checkpoint")
    ck.attrs["series"] = json.dumps(names)
    part = chunks((m, D))
    for name, shape, dtype, chunk in (
            ("particles", (2, m, D), np.float64, (1, *part[1:])),
            ("step", (2,), np.int64, (2,)), ("time", (2,), np.float64, (2,)),
            ("rng_state", (2, RNG_BYTES), np.uint8, (1, RNG_BYTES)),
            ("lengths", (2, len(names)), np.int64, (1, len(names))),
            ("extras_size", (2,), np.int64, (2,))):
        ck.create_dataset(name, data=np.zeros(shape, dtype), chunks=chunk, fletcher32=True)
    _extras_layout(ck)
    ck.create_dataset("slot", data=np.int8(-1))


def _extras_layout(ck):
    ck.create_dataset("extras", shape=(2, 0), maxshape=(2, None), chunks=(1, EXTRAS_CHUNK),
                      dtype=np.uint8, fletcher32=True)


def upgrade(h5):
    """Give a version-1 file (being rebuilt on resume) the checkpoint datasets it lacks."""
    ck = h5[CHECKPOINT]
    if "extras" not in ck:
        _extras_layout(ck)
        ck.create_dataset("extras_size", data=np.zeros(2, np.int64), chunks=(2,),
                          fletcher32=True)
