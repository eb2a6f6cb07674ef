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


def stored_shapes(config) -> list:
    """(name, shape) of each stored layer of a deep linear run, in order; [] for other runs.

    ``layer_j`` (n_j, n_{j-1}) for j = 1..N when the parameters are the
    layers; ``end_to_end`` (k, d) for ``train.algorithm = "end_to_end"``,
    whose parameter is W_e (for ``adagrad`` and ``adam``, depth 1, W_e = W_1).
    Run files hold one H5MD particle group ``/particles/<name>`` for each.
    """
    if getattr(config.model, "kind", "two_layer") != "deep_linear":
        return []
    if config.train.algorithm == "end_to_end":
        return [("end_to_end", (config.model.outputs, config.data.d))]
    widths = dims(config)
    return [(f"layer_{j}", (widths[j], widths[j - 1])) for j in range(1, len(widths))]


def stored_layers(config, particles) -> list:
    """The layers in stored snapshots (1, P) (or a stack (s, 1, P)) of a deep linear run.

    [W_1, ..., W_N] for ``train.algorithm = "gd"``, [W_e] for ``end_to_end``
    (see :func:`stored_shapes`), each (rows, cols) or (s, rows, cols) for a stack.
    Run files store them as they are (``run.layers(k)``); this splits the
    flat parameter vector that checkpoints and ``run.particles(k)`` hold.

    Examples
    --------
    >>> with open_run("run.h5") as run:                           # doctest: +SKIP
    ...     W = stored_layers(run.config, run.particles(-1))

    Raises
    ------
    InputError
        for a run that is not of a deep linear network.
    """
    if not stored_shapes(config):
        raise InputError(f"layers exist only in deep linear runs (this one has model.kind = "
                         f"{config.model.kind!r}): use particles")
    return split_layers(particles, [shape for _, shape in stored_shapes(config)])


def split_layers(particles, shapes) -> list:
    """Views of the flat parameters (1, P) (or (s, 1, P)) as blocks of ``shapes``, in order."""
    import numpy as np

    theta = np.asarray(particles, dtype=np.float64)
    lead = theta.shape[:-2] if theta.ndim > 2 else ()
    theta = theta.reshape(*lead, -1)
    ends = np.cumsum([r * c for r, c in shapes])
    return [block.reshape(*lead, *shape)
            for block, shape in zip(np.split(theta, ends[:-1], axis=-1), shapes)]
