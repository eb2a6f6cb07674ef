"""The algorithms: one module each, ``init(config, data, rng) -> State`` and ``advance(state, n)``.

Every algorithm module ``meanfield.algorithms.<name>`` (``name`` the value of
``train.algorithm``) exposes

* ``init(config, data, rng) -> State``: the state at step 0, from the
  validated ``data`` and the run's :class:`~meanfield.state.Streams` ``rng``;
* ``advance(state, n_steps) -> State``: ``n_steps`` more steps in compiled
  code (the particles advance in place; the rows of observables recorded on
  the way are in ``state.records``; ``state.diverged`` says whether it
  stopped early); ``advance(state, 0)`` at the last step records the final row;
* ``work(config) -> float``: the work of one step (about n m D operations),
  which sets how many steps make a chunk between two hand-overs to the recorder.

Adding an algorithm is adding a module here (and its name to
``train.algorithm``'s choices); :func:`get` finds it by name.

* :mod:`~meanfield.algorithms.gd` - full-batch gradient descent;
* :mod:`~meanfield.algorithms.sgd` - SGD on fresh teacher samples or minibatches;
* :mod:`~meanfield.algorithms.population` - the exact population gradient flow;
* :mod:`~meanfield.algorithms.ggn` - Gram-Gauss-Newton on the squared loss (full batch
  or minibatches of the training set; the network only, without weight decay or noise);
* :mod:`~meanfield.algorithms.deep_linear` - every run of a deep linear network
  (``model.kind = "deep_linear"``, found by :func:`for_config`).

Each of them but ``ggn`` trains the network or (``train.model = "tangent"``) its tangent
model, with weight decay and (``train.temperature > 0``) Langevin noise.
"""

import importlib

from ..errors import InputError


def for_config(config):
    """The algorithm module of ``config``: :mod:`~meanfield.algorithms.deep_linear` for every
    ``model.kind = "deep_linear"`` run (it dispatches on ``train.algorithm``), else
    :func:`get` of ``train.algorithm``."""
    if getattr(config.model, "kind", "two_layer") == "deep_linear":
        return get("deep_linear")
    return get(config.train.algorithm)


def get(name: str):
    """The module of algorithm ``name``.

    Raises
    ------
    InputError
        if there is no module ``meanfield.algorithms.<name>``.
    """
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise InputError(f"train.algorithm = {name!r}: no such algorithm") from None
