"""What is measured along a run: a registry of functions of a :class:`~meanfield.state.State`.

Two kinds of observables.  *Recorded* ones are computed inside the compiled
training loop (:func:`meanfield.kernels.training.record_row`) every
``record.every`` steps, before the step, and for the final state:

=======================  ===========================================================
``train_loss``           R(f) on the training set (mean loss, without 1/alpha^2)
``test_loss``            R(f) on the test set
``velocity_sq``          (1/m) sum_i |v_i|^2, the squared Wasserstein speed of the
                         objective the algorithm descends: J on the whole training
                         set (``gd``, ``sgd``: never one batch) or on the population
                         (``population``); its ``objective`` attribute says which
``displacement``         |P_t - P_0|_F / |P_0|_F, relative particle displacement
``scaled_displacement``  alpha sqrt((1/m) sum_i |w_i(t) - w_i(0)|^2): O(1) in the lazy limit
``balance_mean``         mean_i of B_i = c_i^2 - |a_i|^2 - b_i^2
``balance_drift``        max_i |B_i(t) - B_i(0)| (conserved by the relu gradient flow)
``population_loss``      the exact population risk, where a closed form exists
=======================  ===========================================================

*Snapshot* ones are functions ``f(state) -> float`` registered with
:func:`register` and computed with every particle snapshot:

=======================  ===========================================================
``tangent_gap``          RMS over test inputs of f(w_t) - T f(w_t), the distance to
                         the tangent model at w0 (O(1/alpha) in the lazy regime)
``ntk_change``           |K_t - K_0|_F / |K_0|_F, relative change of the empirical NTK
                         Gram on the first ``NTK_POINTS`` test inputs
``population_loss_mc``   Monte-Carlo estimate of the population risk on a fixed sample
                         of ``data.population_samples`` fresh teacher points, for
                         teacher data without a closed form
=======================  ===========================================================

For a run of the tangent model (``train.model = "tangent"``) the losses are
those of the tangent model.  Other modules add snapshot observables with
:func:`register`; each says to which runs it applies.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import lazy
from .data import population_sample
from .kernels.jit import threads_for
from .kernels.network import model_risk
from .kernels.training import COLUMNS

NTK_POINTS = 128

RECORDED = {
    "train_loss": "mean loss on the training set",
    "test_loss": "mean loss on the test set",
    "velocity_sq": "mean squared particle velocity (1/m) sum_i |v_i|^2",
    "displacement": "relative displacement |P_t - P_0| / |P_0| (Frobenius)",
    "scaled_displacement": "alpha * sqrt(mean_i |w_i(t) - w_i(0)|^2)",
    "balance_mean": "mean_i (c_i^2 - |a_i|^2 - b_i^2)",
    "balance_drift": "max_i |B_i(t) - B_i(0)|, B_i = c_i^2 - |a_i|^2 - b_i^2",
    "population_loss": "exact population risk E loss(f(x), y) under the teacher",
}
"""Descriptions of the compiled loop's record columns (:data:`~meanfield.kernels.training.COLUMNS`)."""

Spec = namedtuple("Spec", ["name", "description", "compute", "applies", "attrs"])
Spec.__doc__ = """A snapshot observable: ``compute(state) -> float``, ``applies(problem) -> bool``
and ``attrs(problem) -> dict`` (extra attributes stored with the series)."""

REGISTRY: dict = {}
"""Snapshot observables by name, in registration order."""


def register(name, description, applies=None, attrs=None):
    """Decorator: register ``f(state) -> float`` as the snapshot observable ``name``.

    Parameters
    ----------
    name : str
        The name of the stored series (unique: not one of the recorded columns).
    description : str
    applies : callable, optional
        ``applies(problem) -> bool``: the runs that record it (default: all).
    attrs : callable, optional
        ``attrs(problem) -> dict`` of extra attributes of the series.
    """
    if name in RECORDED or name in REGISTRY:
        raise ValueError(f"observable {name!r} is already defined")

    def decorate(compute):
        REGISTRY[name] = Spec(name, description, compute, applies or (lambda problem: True),
                              attrs or (lambda problem: {}))
        return compute
    return decorate


def recorded_names(problem) -> list:
    """The recorded columns this run stores, in the order of the loop's rows."""
    return [COLUMNS[q] for q in problem.columns]


def snapshot_names(problem) -> list:
    """The snapshot observables that apply to ``problem``."""
    return [name for name, spec in REGISTRY.items() if spec.applies(problem)]


def series(problem) -> dict:
    """Every observable series of the run, name -> attributes (``description``, ...)."""
    out = {name: {"description": RECORDED[name]} for name in recorded_names(problem)}
    objective = "population" if problem.config.train.algorithm == "population" else "training set"
    out["velocity_sq"]["objective"] = objective
    if problem.exact:
        out["population_loss"]["method"] = "exact"
    for name in snapshot_names(problem):
        spec = REGISTRY[name]
        out[name] = {"description": spec.description, **spec.attrs(problem)}
    return out


def at_snapshot(state, names) -> np.ndarray:
    """The snapshot observables ``names`` of ``state``, as one row.

    Their compiled loops run on one thread when the test set times m is small
    (a parallel launch would cost more than the work).
    """
    with threads_for(state.problem.data.x_test.shape[0] * state.particles.shape[0]):
        return np.array([REGISTRY[name].compute(state) for name in names], dtype=np.float64)


def _network(problem) -> bool:
    """Whether the run trains a two-layer network (``model.kind``, where it exists)."""
    return getattr(problem.config.model, "kind", "two_layer") == "two_layer"


def _fixed_network(problem) -> bool:
    """A two-layer network whose particles stay the same ones (not a growing network, whose
    w_0 would change with every neuron inserted)."""
    return _network(problem) and problem.config.train.algorithm != "grow"


@register("tangent_gap", "RMS over test inputs of f(w_t) - T f(w_t) (tangent model at w_0)",
          applies=_fixed_network)
def tangent_gap(state) -> float:
    """RMS over the test inputs of the network minus its tangent model at w0."""
    pb = state.problem
    return lazy.tangent_gap(state.particles, pb.P0, pb.data.x_test,
                            pb.config.model.activation, pb.config.alpha)


@register("ntk_change", "relative change |K_t - K_0| / |K_0| of the empirical NTK Gram",
          applies=_fixed_network)
def ntk_change(state) -> float:
    """|K_t - K_0|_F / |K_0|_F on the first ``NTK_POINTS`` test inputs."""
    pb = state.problem
    act = pb.config.model.activation
    X = pb.data.x_test[:NTK_POINTS]
    K0 = pb.cached("ntk0", lambda: lazy.empirical_ntk(pb.P0, X, activation=act))
    return lazy.ntk_change(state.particles, pb.P0, X, act, K0=K0)


def _monte_carlo(problem) -> bool:
    return _network(problem) and problem.data.teacher is not None and not problem.exact


@register("population_loss_mc",
          "Monte-Carlo estimate of the population risk on a fixed sample of fresh teacher points",
          applies=_monte_carlo,
          attrs=lambda pb: {"method": "monte_carlo",
                            "samples": pb.config.data.population_samples})
def population_loss_mc(state) -> float:
    """The risk on a fixed sample of ``data.population_samples`` fresh teacher points."""
    pb = state.problem
    X, y = pb.cached("population_sample",
                     lambda: population_sample(pb.config, pb.data.teacher, pb.population_rng))
    return model_risk(state.particles, pb.model, X, y)


from . import optimality  # noqa: E402,F401  (registers polar and duality_gap)
from . import gram  # noqa: E402,F401  (registers gram_lambda_min, gram_change, ...)
from .deep_linear import snapshots  # noqa: E402,F401  (registers balancedness, sigma_min, ...)
from .algorithms import grow  # noqa: E402,F401  (registers neurons, objective, dual_bound)
