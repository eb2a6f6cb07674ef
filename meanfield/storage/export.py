"""Notebook views of a run: xarray and pandas (optional: ``pip install 'meanfield[notebook]'``)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _need(module):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{module} is needed for this: pip install 'meanfield[notebook]'") from None


def observables_frame(run):
    """Every observable of ``run`` as one ``pandas.DataFrame``.

    Indexed by ``step`` (the union of the steps of all series, NaN where a
    series has no record), with a ``time`` column (lr * step).
    """
    pd = _need("pandas")
    columns = {}
    for name in run.observable_names:
        obs = run.observable(name)
        columns[name] = pd.Series(obs.value, index=pd.Index(obs.step, name="step"))
    frame = pd.DataFrame(columns)
    frame.index.name = "step"
    frame.insert(0, "time", frame.index.to_numpy() * float(run.parameters["lr"]))
    return frame


def to_xarray(run):
    """``run`` as an ``xarray.Dataset``.

    Observables are variables on a ``step`` axis (coordinate ``time``);
    particles are ``position`` on (``snapshot``, ``particle``,
    ``coordinate``) with coordinates ``snapshot_step`` and ``snapshot_time``.
    The run's parameters are the dataset's attributes.
    """
    xr = _need("xarray")
    frame = observables_frame(run)
    steps = frame.index.to_numpy()
    P = run.particles(slice(None))
    data_vars = {name: ("step", frame[name].to_numpy()) for name in run.observable_names}
    data_vars["position"] = (("snapshot", "particle", "coordinate"), P)
    coords = {"step": steps, "time": ("step", frame["time"].to_numpy()),
              "snapshot_step": ("snapshot", run.steps),
              "snapshot_time": ("snapshot", run.times),
              "particle": np.arange(P.shape[1]), "coordinate": np.arange(P.shape[2])}
    attrs = {k: v for k, v in run.parameters.items() if k != "config"}
    attrs.update(status=run.status, config=run.config_text)
    return xr.Dataset(data_vars, coords=coords, attrs={k: _plain(v) for k, v in attrs.items()})


def _plain(value):
    """Attribute values netCDF can store (booleans as integers)."""
    return int(value) if isinstance(value, bool) else value
