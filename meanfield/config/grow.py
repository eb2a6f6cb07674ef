"""The combinations of keys a growing network (``train.algorithm = "grow"``) accepts."""

from __future__ import annotations

from ..errors import InputError


def check(config) -> None:
    """Raise :class:`InputError` naming the key when ``config`` cannot grow a network.

    Growing needs the certificate of :mod:`meanfield.optimality` (a relu
    two-layer network trained itself, on the training set, with weight decay),
    deterministic steps (no Langevin noise), an output scale alpha that does
    not depend on m (the ``ntk`` regime without an explicit ``scaling.alpha``
    would change it with every neuron) and room for the initial neurons.
    """
    tr, model, grow = config.train, config.model, config.grow
    if tr.algorithm != "grow":
        return
    for bad, what in (
            (model.kind != "two_layer", f"model.kind = {model.kind!r}"),
            (model.activation != "relu", f"model.activation = {model.activation!r}"),
            (tr.model != "network", f"train.model = {tr.model!r}"),
            (tr.weight_decay <= 0, f"train.weight_decay = {tr.weight_decay}"),
            (tr.temperature > 0, f"train.temperature = {tr.temperature}"),
            (config.scaling.regime == "ntk" and config.scaling.alpha is None,
             'scaling.regime = "ntk" (alpha would change with m; set scaling.alpha)'),
            (grow.max_neurons < model.m,
             f"grow.max_neurons = {grow.max_neurons} < model.m = {model.m}")):
        if bad:
            raise InputError('train.algorithm = "grow" (a relu two-layer network with weight '
                             f'decay > 0, no noise, fixed alpha) does not take {what}')
