r"""Whole chunks of training steps in one compiled call, one loop per algorithm.

Each loop advances the particles in place by ``loop.nsteps`` Euler steps
(eq. 3 of the design contract) with optional Langevin noise,

.. math:: P \leftarrow P + \eta\, v(P) + \sqrt{2 \eta T}\, \xi,

where v is the velocity on the full training set (:func:`gd_chunk`), on one
pre-drawn batch per step (:func:`sgd_chunk`) or of the exact population
risk (:func:`population_chunk`).  The loops draw no random numbers: the
noise ``xi`` (standard normals, one (m, D) slab per step) and the SGD
batches are drawn by the caller in bulk, so a step's draws do not depend on
where a chunk starts or ends.

Observables are recorded into ``obs`` (one row per record, columns in the
order of :data:`COLUMNS`) before every step k with ``k % loop.every == 0``,
and at ``k == loop.last`` (the final state of the run) when the chunk ends
there.
"""

import math
from collections import namedtuple

import numpy as np

from .jit import jit, jit_inline, jit_parallel
from .network import direct_risk_and_velocity, model_risk, model_risk_and_velocity, workspace
from .population import population_risk, population_risk_and_velocity

COLUMNS = ("train_loss", "test_loss", "velocity_sq", "displacement", "scaled_displacement",
           "balance_mean", "balance_drift", "population_loss")
"""Names of the record columns, in order (see :mod:`meanfield.observables`)."""

(TRAIN_LOSS, TEST_LOSS, VELOCITY_SQ, DISPLACEMENT, SCALED_DISPLACEMENT,
 BALANCE_MEAN, BALANCE_DRIFT, POPULATION_LOSS) = range(len(COLUMNS))

DIVERGED = 1e100
"""A training risk above this (or not finite) stops the run as diverged."""

Data = namedtuple("Data", ["X", "y", "Xt", "yt"])
Data.__doc__ = "Training inputs and labels (X, y) and test ones (Xt, yt), C-contiguous."

Loop = namedtuple("Loop", ["lr", "noise_scale", "step0", "nsteps", "every", "last", "exact"])
Loop.__doc__ = """What one chunk does: step size eta, noise scale sqrt(2 eta T), first global
step, number of steps, record period, the run's last step (its final state is recorded) and
whether the population risk has a closed form (else its column is NaN)."""

Batches = namedtuple("Batches", ["X", "y"])
Batches.__doc__ = "SGD batches of a chunk: inputs (nsteps, B, d) and labels (nsteps, B)."


def make_loop(lr, temperature, step0, nsteps, every, last, exact):
    """A :class:`Loop` with canonical field types (one compiled layout)."""
    return Loop(float(lr), math.sqrt(2.0 * lr * temperature), int(step0), int(nsteps),
                int(every), int(last), bool(exact))


@jit
def displacement_sq(P, P0):
    """(sum_i |w_i - w0_i|^2, sum_i |w0_i|^2)."""
    dsq = 0.0
    p0sq = 0.0
    for i in range(P.shape[0]):
        for k in range(P.shape[1]):
            e = P[i, k] - P0[i, k]
            dsq += e * e
            p0sq += P0[i, k] * P0[i, k]
    return dsq, p0sq


@jit
def balance(P, i):
    """B_i = c_i^2 - |a_i|^2 - b_i^2 of particle i."""
    D = P.shape[1]
    B = P[i, D - 1] ** 2
    for k in range(D - 1):
        B -= P[i, k] ** 2
    return B


@jit
def balance_mean_and_drift(P, P0):
    """(mean_i B_i, max_i |B_i - B_i(0)|) for B_i = c_i^2 - |a_i|^2 - b_i^2."""
    total = 0.0
    drift = 0.0
    for i in range(P.shape[0]):
        b = balance(P, i)
        total += b
        drift = max(drift, abs(b - balance(P0, i)))
    return total / P.shape[0], drift


@jit
def mean_square(V):
    """(1/m) sum_i |v_i|^2."""
    total = 0.0
    for i in range(V.shape[0]):
        for k in range(V.shape[1]):
            total += V[i, k] * V[i, k]
    return total / V.shape[0]


@jit_parallel
def record_row(row, P, model, data, pop, loop, R, V):
    """Observables of the state ``P`` in :data:`COLUMNS` order.

    ``R`` is the training risk and ``V`` the velocity of the algorithm's
    objective at P (training set, or population for the population flow);
    the displacement and balance are relative to ``model.P0``.
    """
    row[TRAIN_LOSS] = R
    row[TEST_LOSS] = model_risk(P, model, data.Xt, data.yt)
    row[POPULATION_LOSS] = population_risk(P, pop) if loop.exact else np.nan
    row[VELOCITY_SQ] = mean_square(V)
    dsq, p0sq = displacement_sq(P, model.P0)
    row[DISPLACEMENT] = math.sqrt(dsq / p0sq) if p0sq > 0.0 else math.sqrt(dsq)
    row[SCALED_DISPLACEMENT] = model.alpha * math.sqrt(dsq / P.shape[0])
    row[BALANCE_MEAN], row[BALANCE_DRIFT] = balance_mean_and_drift(P, model.P0)


@jit_inline
def euler_step(P, V, loop, noise, s):
    """P += eta V, then P += sqrt(2 eta T) xi with xi = noise[s] (when noise is drawn)."""
    m, D = P.shape
    for i in range(m):
        for j in range(D):
            P[i, j] += loop.lr * V[i, j]
    if noise.shape[0] > 0:
        xi = noise[s]
        for i in range(m):
            for j in range(D):
                P[i, j] += loop.noise_scale * xi[i, j]


@jit
def _ends(loop, s):
    """Whether step ``s`` of the chunk is past its end (the run's final state is evaluated)."""
    return s == loop.nsteps and loop.step0 + s != loop.last


@jit
def _due(loop, s):
    k = loop.step0 + s
    return k % loop.every == 0 or k == loop.last


@jit_parallel
def gd_chunk(P, model, data, pop, loop, noise, obs):
    """Full-batch gradient descent (of the network or its tangent model) for one chunk.

    Parameters
    ----------
    P : (m, D) particles, advanced in place; model : :class:`~.structs.Model`
        (``P0`` the initial particles); data : :class:`Data`;
    pop : :class:`~.structs.Population` (read when ``loop.exact``);
    loop : :class:`Loop`; noise : (nsteps, m, D) standard normals, or (0, m, D) for T = 0;
    obs : (rows, len(COLUMNS)) output, one row per record.

    Returns
    -------
    int
        Steps done: ``loop.nsteps``, or fewer when the risk became non-finite
        or exceeded :data:`DIVERGED` (``P`` is then the state that diverged).
    """
    m, D = P.shape
    X, y = data.X, data.y
    V = np.empty_like(P)
    ws = workspace(X.shape[0], m, X.shape[1], model.tangent)
    B = ws.B
    row = 0
    for s in range(loop.nsteps + 1):
        if _ends(loop, s):
            break
        if B.shape[0] > 0:
            R = direct_risk_and_velocity(P, model, X, y, V, B)
        else:
            R = model_risk_and_velocity(P, model, X, y, V, ws)
        if s < loop.nsteps and not (R <= DIVERGED):
            return s
        if _due(loop, s):
            record_row(obs[row], P, model, data, pop, loop, R, V)
            row += 1
        if s < loop.nsteps:
            euler_step(P, V, loop, noise, s)
    return loop.nsteps


@jit_parallel
def sgd_chunk(P, model, data, pop, loop, batches, noise, obs):
    """SGD on the pre-drawn ``batches`` (:class:`Batches`), one batch per step.

    Arguments and return value as :func:`gd_chunk`.  At a record step the
    recorded loss and velocity are those of the full training set (not of the
    batch), so ``velocity_sq`` means the same at every row.
    """
    m, D = P.shape
    d = data.X.shape[1]
    V = np.empty_like(P)
    Vf = np.empty_like(P)
    ws = workspace(batches.X.shape[1], m, d, model.tangent)
    records = obs.shape[0] > 0
    wsf = workspace(data.X.shape[0] if records else 0, m, d, model.tangent)
    row = 0
    for s in range(loop.nsteps + 1):
        if _ends(loop, s):
            break
        R = 0.0
        if s < loop.nsteps:
            R = model_risk_and_velocity(P, model, batches.X[s], batches.y[s], V, ws)
        if _due(loop, s):
            R = model_risk_and_velocity(P, model, data.X, data.y, Vf, wsf)
        if s < loop.nsteps and not (R <= DIVERGED):
            return s
        if _due(loop, s):
            record_row(obs[row], P, model, data, pop, loop, R, Vf)
            row += 1
        if s < loop.nsteps:
            euler_step(P, V, loop, noise, s)
    return loop.nsteps


@jit_parallel
def population_chunk(P, model, data, pop, loop, noise, obs):
    """The exact population gradient flow (closed-form kernels, cost independent of n).

    Arguments and return value as :func:`gd_chunk`; divergence is judged on
    the population risk, and the recorded ``train_loss`` is the risk on the
    training set.
    """
    V = np.empty_like(P)
    row = 0
    for s in range(loop.nsteps + 1):
        if _ends(loop, s):
            break
        R = population_risk_and_velocity(P, pop, V)
        if s < loop.nsteps and not (R <= DIVERGED):
            return s
        if _due(loop, s):
            record_row(obs[row], P, model, data, pop, loop, model_risk(P, model, data.X, data.y),
                       V)
            row += 1
        if s < loop.nsteps:
            euler_step(P, V, loop, noise, s)
    return loop.nsteps
