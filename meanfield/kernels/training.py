r"""Whole training loops in one compiled call, with in-loop recording.

``train_chunk`` advances the particles by ``nsteps`` Euler steps
:math:`P \leftarrow P + \eta\, v(P) + \sqrt{2 \eta T}\, \xi` of full-batch GD or
SGD, on the network or on its tangent model, and records the observables every ``every`` steps into a preallocated
array, so a run leaves compiled code only between chunks (for snapshots,
checkpoints and progress).  All randomness of a chunk comes from Numba's
generator seeded with ``seed`` at the start of the chunk.
"""

import math

import numpy as np

from .jit import jit_parallel
from .network import mean_loss, model_outputs, model_risk_and_velocity_ws, workspace
from .population import population_risk, population_risk_and_velocity
from .sampling import make_labels, sample_inputs

GD, SGD, POPULATION = 0, 1, 2

(TRAIN_LOSS, TEST_LOSS, VELOCITY_SQ, DISPLACEMENT, SCALED_DISPLACEMENT,
 BALANCE_MEAN, BALANCE_DRIFT, POPULATION_LOSS) = range(8)
N_OBSERVABLES = 8

DIVERGED = 1e100
"""A training risk above this (or not finite) stops the run as diverged."""


@jit_parallel
def model_risk(P, P0, tangent, X, y, act, loss, alpha):
    """Risk of the network (or of its tangent model at P0) on (X, y)."""
    X = np.ascontiguousarray(X)
    n, d = X.shape
    f = np.empty(n)
    model_outputs(P, P0, tangent, X, act, alpha, workspace(n, P.shape[0], d, tangent), f)
    return mean_loss(f, y, loss)


@jit_parallel
def record_row(row, P, P0, tangent, Xt, yt, T, sphere, noise, exact, act, loss, alpha,
               train_loss, V):
    """Observables of the state ``P`` in the column order of the module constants.

    train and test risk; (1/m) sum_i |v_i|^2; |P - P0|_F / |P0|_F;
    alpha sqrt((1/m) sum_i |w_i - w0_i|^2); mean_i and max_i |.| change of the
    balance B_i = c_i^2 - |a_i|^2 - b_i^2; the exact population risk under the
    teacher ``T`` when ``exact`` (NaN otherwise).
    """
    row[TRAIN_LOSS] = train_loss
    row[TEST_LOSS] = model_risk(P, P0, tangent, Xt, yt, act, loss, alpha)
    row[POPULATION_LOSS] = population_risk(P, T, act, alpha, noise, sphere) if exact else np.nan
    m, D = P.shape
    vsq = 0.0
    dsq = 0.0
    p0sq = 0.0
    bsum = 0.0
    bdrift = 0.0
    for i in range(m):
        balance = P[i, D - 1] ** 2
        balance0 = P0[i, D - 1] ** 2
        for k in range(D):
            vsq += V[i, k] * V[i, k]
            e = P[i, k] - P0[i, k]
            dsq += e * e
            p0sq += P0[i, k] * P0[i, k]
            if k < D - 1:
                balance -= P[i, k] ** 2
                balance0 -= P0[i, k] ** 2
        bsum += balance
        bdrift = max(bdrift, abs(balance - balance0))
    row[VELOCITY_SQ] = vsq / m
    row[DISPLACEMENT] = math.sqrt(dsq / p0sq) if p0sq > 0.0 else math.sqrt(dsq)
    row[SCALED_DISPLACEMENT] = alpha * math.sqrt(dsq / m)
    row[BALANCE_MEAN] = bsum / m
    row[BALANCE_DRIFT] = bdrift


@jit_parallel
def _draw_batch(X, y, T, tact, sphere, noise, loss, fresh, Xb, yb, fstar, xi, wsT):
    """A fresh teacher sample (``fresh``) or a minibatch drawn with replacement from (X, y).

    ``fstar``, ``xi`` (B,) and the teacher workspace ``wsT`` are buffers.
    """
    B = Xb.shape[0]
    if fresh:
        sample_inputs(Xb, sphere)
        for r in range(B):
            xi[r] = np.random.standard_normal()
        model_outputs(T, T, False, Xb, tact, 1.0, wsT, fstar)
        make_labels(fstar, xi, noise, loss, yb)
    else:
        n = X.shape[0]
        for r in range(B):
            j = np.random.randint(0, n)
            for k in range(X.shape[1]):
                Xb[r, k] = X[j, k]
            yb[r] = y[j]


@jit_parallel
def train_chunk(P, P0, tangent, X, y, Xt, yt, T, tact, sphere, noise, fresh, exact, algorithm,
                batch, act, loss, alpha, lam, lr, temperature, seed, step0, nsteps, every, obs):
    """Advance ``P`` in place by ``nsteps`` steps starting at global step ``step0``.

    Parameters
    ----------
    P, P0 : (m, D) current and initial particles.
    tangent : train the tangent model at P0 instead of the network.
    X, y, Xt, yt : training and test data.
    T, tact, sphere, noise, fresh : the teacher and its input law, for fresh SGD samples.
    exact : the population risk has a closed form (required by POPULATION).
    algorithm : GD, SGD or POPULATION (the exact population gradient flow);
    batch : SGD batch size.
    act, loss, alpha, lam, lr, temperature : the dynamics.
    seed : seeds this chunk's random draws.
    every : observables are recorded before the steps k with k % every == 0,
        one row of ``obs`` each.

    Returns
    -------
    int
        Steps done: ``nsteps``, or fewer when the risk became non-finite or
        exceeded ``DIVERGED`` (``P`` is then the state that diverged).
    """
    np.random.seed(seed)
    X = np.ascontiguousarray(X)
    m, D = P.shape
    d = X.shape[1]
    V = np.empty_like(P)
    # every buffer of the steps, allocated once per chunk
    sgd = algorithm == SGD
    B = batch if sgd else 0
    ws = workspace(B if sgd else (0 if algorithm == POPULATION else X.shape[0]), m, d, tangent)
    Xb = np.empty((B, d))
    yb = np.empty(B)
    fstar = np.empty(B)
    xi = np.empty(B)
    wsT = workspace(B if fresh else 0, T.shape[0], d, False)
    noise_scale = math.sqrt(2.0 * lr * temperature)
    row = 0
    for s in range(nsteps):
        k = step0 + s
        if algorithm == GD:
            R = model_risk_and_velocity_ws(P, P0, tangent, X, y, act, loss, alpha, lam, V, ws)
        elif algorithm == POPULATION:
            R = population_risk_and_velocity(P, T, act, alpha, lam, noise, sphere, V)
            if k % every == 0:
                R = model_risk(P, P0, tangent, X, y, act, loss, alpha)
        else:
            _draw_batch(X, y, T, tact, sphere, noise, loss, fresh, Xb, yb, fstar, xi, wsT)
            R = model_risk_and_velocity_ws(P, P0, tangent, Xb, yb, act, loss, alpha, lam, V, ws)
            if k % every == 0:
                R = model_risk(P, P0, tangent, X, y, act, loss, alpha)
        if not (R <= DIVERGED):
            return s
        if k % every == 0:
            record_row(obs[row], P, P0, tangent, Xt, yt, T, sphere, noise, exact, act, loss,
                       alpha, R, V)
            row += 1
        for i in range(m):
            for j in range(D):
                P[i, j] += lr * V[i, j]
        if temperature > 0.0:
            for i in range(m):
                for j in range(D):
                    P[i, j] += noise_scale * np.random.standard_normal()
    return nsteps
