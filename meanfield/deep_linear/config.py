"""What a run config means for a deep linear network, and which combinations are valid.

Keys (validated one by one in :mod:`meanfield.config.sections`):

* ``[model] kind = "deep_linear"``, ``depth`` N >= 1, hidden ``width`` (every
  hidden layer), ``outputs`` k; the input dimension is ``data.d``;
* ``[loss] name = "squared"`` or ``"lp"`` with ``p`` >= 2;
* ``[data] kind = "linear_teacher"`` (with ``noise``, ``n_train``, ``n_test``);
* ``[init] layers = "balanced" | "gaussian" | "identity"`` with scale ``tau``;
* ``[train] algorithm = "gd" | "end_to_end" | "adagrad" | "adam"`` (the last
  two on depth 1), ``track_end_to_end`` to run the end-to-end dynamics
  alongside GD (observable ``end_to_end_gap``).

:func:`check` holds the combinations to these; a two-layer run may use none
of the deep-linear values.
"""

from __future__ import annotations

from ..errors import InputError

ALGORITHMS = ("gd", "end_to_end", "adagrad", "adam")
LOSSES = ("squared", "lp")


def dims(config) -> list:
    """(d, width, ..., width, k): the widths of the network of ``config``."""
    m = config.model
    return [config.data.d] + [m.width] * (m.depth - 1) + [m.outputs]


def check(config) -> None:
    """Raise :class:`InputError` naming the key for an invalid combination of keys."""
    m, tr = config.model, config.train
    if m.kind != "deep_linear":
        for bad, what in ((config.loss.name == "lp", 'loss.name = "lp"'),
                          (config.data.kind == "linear_teacher", 'data.kind = "linear_teacher"'),
                          (tr.algorithm in ALGORITHMS[1:], f"train.algorithm = {tr.algorithm!r}"),
                          (tr.track_end_to_end, "train.track_end_to_end = true")):
            if bad:
                raise InputError(f'{what} needs model.kind = "deep_linear"')
        return
    for key, value, allowed in (("data.kind", config.data.kind, ("linear_teacher",)),
                                ("loss.name", config.loss.name, LOSSES),
                                ("train.algorithm", tr.algorithm, ALGORITHMS),
                                ("train.model", tr.model, ("network",))):
        if value not in allowed:
            raise InputError(f'{key} = {value!r} is not available with model.kind = '
                             f'"deep_linear" (use one of {", ".join(allowed)})')
    for key, value in (("train.weight_decay", tr.weight_decay),
                       ("train.temperature", tr.temperature),
                       ("data.label_corruption", config.data.label_corruption)):
        if value != 0:
            raise InputError(f'{key} must be 0 with model.kind = "deep_linear", got {value!r}')
    if tr.algorithm in ("adagrad", "adam") and m.depth != 1:
        raise InputError(f"train.algorithm = {tr.algorithm!r} trains the depth-1 model: "
                         f"model.depth must be 1, got {m.depth}")
    if tr.track_end_to_end and tr.algorithm != "gd":
        raise InputError('train.track_end_to_end = true needs train.algorithm = "gd"')
    _check_init(config)


def _check_init(config):
    widths = dims(config)
    if config.init.layers == "identity" and len(set(widths)) != 1:
        raise InputError(f'init.layers = "identity" needs data.d = model.width = '
                         f'model.outputs, got widths {widths}')
    if config.init.layers == "balanced" and config.model.depth > 1 \
            and config.model.width < min(widths[0], widths[-1]):
        raise InputError(f'init.layers = "balanced" needs model.width >= min(data.d, '
                         f'model.outputs) = {min(widths[0], widths[-1])}, '
                         f'got {config.model.width}')


def stored_layers(config, particles) -> list:
    """The layers in a stored snapshot (1, P) of a deep linear run.

    [W_1, ..., W_N] for ``train.algorithm = "gd"``, [W_e] for the algorithms
    whose parameter is the end-to-end matrix.

    Examples
    --------
    >>> with open_run("run.h5") as run:                           # doctest: +SKIP
    ...     W = stored_layers(run.config, run.particles(-1))
    """
    import numpy as np

    from .model import Network

    theta = np.asarray(particles, dtype=np.float64).reshape(-1)
    if config.train.algorithm != "gd":
        return [theta.reshape(config.model.outputs, config.data.d)]
    return Network(dims(config), theta).layers
