r"""Whole training loops in one compiled call, with in-loop recording.

``train_chunk`` advances the particles by ``nsteps`` Euler steps
:math:`P \leftarrow P + \eta\, v(P) + \sqrt{2 \eta T}\, \xi` of full-batch GD or
SGD and records the observables every ``every`` steps into a preallocated
array, so a run leaves compiled code only between chunks (for snapshots,
checkpoints and progress).  All randomness of a chunk comes from Numba's
generator seeded with ``seed`` at the start of the chunk.
"""

import math

import numpy as np
from numba import njit

from .network import risk, risk_and_velocity
from .sampling import make_labels, sample_inputs
from .network import forward

GD, SGD = 0, 1

TRAIN_LOSS, TEST_LOSS, VELOCITY_SQ, DISPLACEMENT = 0, 1, 2, 3
N_OBSERVABLES = 4

DIVERGED = 1e100
"""A training risk above this (or not finite) stops the run as diverged."""


@njit(cache=True)
def record_row(row, P, P0, Xt, yt, act, loss, alpha, train_loss, V):
    """Observables of the state ``P``: train/test risk, mean |v_i|^2, |P - P0| / |P0|."""
    row[TRAIN_LOSS] = train_loss
    row[TEST_LOSS] = risk(P, Xt, yt, act, loss, alpha)
    m, D = P.shape
    vsq = 0.0
    dsq = 0.0
    p0sq = 0.0
    for i in range(m):
        for k in range(D):
            vsq += V[i, k] * V[i, k]
            e = P[i, k] - P0[i, k]
            dsq += e * e
            p0sq += P0[i, k] * P0[i, k]
    row[VELOCITY_SQ] = vsq / m
    row[DISPLACEMENT] = math.sqrt(dsq / p0sq) if p0sq > 0.0 else math.sqrt(dsq)


@njit(cache=True)
def _draw_batch(X, y, T, tact, sphere, noise, loss, fresh, Xb, yb):
    """A fresh teacher sample (``fresh``) or a minibatch drawn with replacement from (X, y)."""
    B = Xb.shape[0]
    if fresh:
        sample_inputs(Xb, sphere)
        xi = np.empty(B)
        for r in range(B):
            xi[r] = np.random.standard_normal()
        make_labels(forward(T, Xb, tact, 1.0), xi, noise, loss, yb)
    else:
        n = X.shape[0]
        for r in range(B):
            j = np.random.randint(0, n)
            Xb[r] = X[j]
            yb[r] = y[j]


@njit(cache=True)
def train_chunk(P, P0, X, y, Xt, yt, T, tact, sphere, noise, fresh, algorithm, batch,
                act, loss, alpha, lam, lr, temperature, seed, step0, nsteps, every, obs):
    """Advance ``P`` in place by ``nsteps`` steps starting at global step ``step0``.

    Parameters
    ----------
    P, P0 : (m, D) current and initial particles.
    X, y, Xt, yt : training and test data.
    T, tact, sphere, noise, fresh : the teacher and its input law, for fresh SGD samples.
    algorithm : GD or SGD; batch : SGD batch size.
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
    m, D = P.shape
    V = np.empty_like(P)
    Xb = np.empty((batch, X.shape[1]))
    yb = np.empty(batch)
    noise_scale = math.sqrt(2.0 * lr * temperature)
    row = 0
    for s in range(nsteps):
        k = step0 + s
        if algorithm == GD:
            R = risk_and_velocity(P, X, y, act, loss, alpha, lam, V)
        else:
            _draw_batch(X, y, T, tact, sphere, noise, loss, fresh, Xb, yb)
            R = risk_and_velocity(P, Xb, yb, act, loss, alpha, lam, V)
            if k % every == 0:
                R = risk(P, X, y, act, loss, alpha)
        if not (R <= DIVERGED):
            return s
        if k % every == 0:
            record_row(obs[row], P, P0, Xt, yt, act, loss, alpha, R, V)
            row += 1
        for i in range(m):
            for j in range(D):
                P[i, j] += lr * V[i, j]
        if temperature > 0.0:
            for i in range(m):
                for j in range(D):
                    P[i, j] += noise_scale * np.random.standard_normal()
    return nsteps
