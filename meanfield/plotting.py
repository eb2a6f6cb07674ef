"""Matplotlib figures of runs; every function takes a Run (or arrays) and returns a Figure."""

from __future__ import annotations

import numpy as np


def _axes(ax, figsize=(5, 4)):
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax.figure, ax


def loss_curves(run, ax=None, names=("train_loss", "test_loss", "population_loss")):
    """Recorded losses against physical time t = lr * step, on log-log axes."""
    fig, ax = _axes(ax)
    for name in names:
        if name not in run.observable_names:
            continue
        obs = run.observable(name)
        keep = (obs.time > 0) & (obs.value > 0)
        ax.loglog(obs.time[keep], obs.value[keep], label=name.replace("_", " "))
    ax.set_xlabel("time t = lr * step")
    ax.set_ylabel("loss")
    ax.legend()
    return fig


def particle_trajectories(run, ax=None):
    r"""Each particle's :math:`|c_i| a_i` over time in the plane of the first two input coordinates.

    Positive output weights are red, negative blue; dots mark the final
    positions, the unit circle and the teacher's neurons (crosses) are drawn.
    """
    fig, ax = _axes(ax, figsize=(4.5, 4.5))
    d = run.parameters["d"]
    traj = run.particles(slice(None))  # (k, m, D)
    c = traj[:, :, -1]
    pos = np.abs(c)[:, :, None] * traj[:, :, :2]
    sign = np.sign(c[-1])
    for i in range(traj.shape[1]):
        colour = "tab:red" if sign[i] >= 0 else "tab:blue"
        ax.plot(pos[:, i, 0], pos[:, i, 1], color=colour, lw=0.8, alpha=0.8)
        ax.plot(pos[-1, i, 0], pos[-1, i, 1], "o", color=colour, ms=3)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="0.6", lw=0.8, ls="--")
    teacher = run.teacher
    if teacher is not None:
        ta = teacher[:, :2] * np.abs(teacher[:, -1:])
        ax.plot(ta[:, 0], ta[:, 1], "kx", ms=9, mew=2, label="teacher")
        ax.legend(loc="lower right")
    ax.set_aspect("equal")
    title = "particles |c| a" + ("" if d == 2 else " (first two coordinates)")
    ax.set_title(title)
    return fig
