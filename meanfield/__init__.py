"""meanfield: two-layer neural networks as interacting particles.

Simulate gradient descent on m-particle two-layer networks in the lazy and
mean-field regimes, store trajectories in HDF5 and analyse them.

>>> import meanfield as mf                                   # doctest: +SKIP
>>> with mf.simulate({"model": {"m": 32}}) as run:           # doctest: +SKIP
...     run.observable("train_loss").value[-1]

``import meanfield`` loads neither NumPy nor h5py: the public names below
are imported on first use, so that :func:`simulate` (or the ``meanfield``
command) can apply the thread settings of the numerical runtimes
(:mod:`meanfield._threading`) before they load, and a run kept in memory
never loads h5py.
"""

__version__ = "0.1.0"

from .errors import InputError
from .simulate import simulate

_LAZY = {"Config": "config", "Dataset": "data", "Run": "storage", "open_run": "storage",
         "run_sweep": "sweep"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["Config", "Dataset", "InputError", "Run", "open_run", "run_sweep", "simulate",
           "__version__"]
