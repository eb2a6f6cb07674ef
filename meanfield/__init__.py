"""meanfield: two-layer neural networks as interacting particles.

Simulate gradient descent on m-particle two-layer networks in the lazy and
mean-field regimes, store trajectories in HDF5 and analyse them.

>>> import meanfield as mf                                   # doctest: +SKIP
>>> run = mf.simulate(mf.Config.from_dict({"model": {"m": 32}}))  # doctest: +SKIP
>>> run.observable("train_loss").value[-1]                    # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import _threading  # noqa: F401  (first: it configures the runtimes imported next)
from .config import Config
from .data import Dataset
from .dynamics import simulate
from .errors import InputError
from .storage import Run, open_run
from .sweep import run_sweep

__all__ = ["Config", "Dataset", "InputError", "Run", "open_run", "run_sweep", "simulate",
           "__version__"]
