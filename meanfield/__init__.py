"""meanfield: two-layer neural networks as interacting particles.

Simulate gradient descent on m-particle two-layer networks in the lazy and
mean-field regimes, store trajectories in HDF5 and analyse them.

>>> import meanfield as mf                                   # doctest: +SKIP
>>> with mf.simulate({"model": {"m": 32}}) as run:           # doctest: +SKIP
...     run.observable("train_loss").value[-1]
"""

__version__ = "0.1.0"

from .errors import InputError

_LAZY = {"Config": "config", "Dataset": "data", "simulate": "simulate", "Run": "storage",
         "open_run": "storage", "run_sweep": "sweep"}
"""Names imported on first use: ``import meanfield`` (and so the ``meanfield`` command,
which must catch Ctrl-C and set thread defaults before NumPy loads) imports nothing heavy,
and a run kept in memory does not load h5py or the sweep machinery."""


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # over the submodule of the same name the import just bound
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Config", "Dataset", "InputError", "Run", "open_run", "run_sweep", "simulate",
           "__version__"]
