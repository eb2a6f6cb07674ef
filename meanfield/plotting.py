r"""Matplotlib figures of runs and of sweeps; every function returns a Figure.

Single runs (take a :class:`~meanfield.storage.Run`, or arrays):

* :func:`loss_curves`: recorded losses against physical time t = lr * step;
* :func:`particle_trajectories` / :func:`trajectories`: each particle's
  :math:`|c_i| a_i` in the plane, the teacher's neurons and the unit circle.

Sweeps (take one value per run, as arrays; repeats of a control value, e.g.
seeds, are averaged into a mean :math:`\pm` standard error with
:func:`meanfield.analysis.convergence`):

* :func:`loss_vs_scale`: loss against the initialisation scale tau;
* :func:`loss_vs_m`: loss at convergence against the width m, with the convex
  baseline and the teacher size m0;
* :func:`laziness_vs_alpha`: laziness diagnostics against alpha;
* :func:`distance_vs_m`: distance to a large-m reference against m, with the
  fitted rate :math:`m^{p}` and the :math:`m^{-1/2}` of the mean-field limit.

Every function takes an optional ``ax`` to draw into (then returns its
figure) and otherwise makes a new figure.

Examples
--------
>>> import numpy as np
>>> from meanfield.plotting import loss_vs_m
>>> m = np.repeat([4, 16, 64], 3)
>>> loss = 1.0 / m * (1 + 0.1 * np.random.default_rng(0).standard_normal(9))
>>> fig = loss_vs_m(m, loss, m0=3)
>>> len(fig.axes[0].containers)            # one error-bar series
1
"""

from __future__ import annotations

import numpy as np


def _axes(ax, figsize=(5, 4)):
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax.figure, ax


def _mean_sem(ax, x, y, label, fit=False, **style):
    r"""Draw the mean :math:`\pm` standard error of ``y`` over repeats at every ``x``.

    Groups with :func:`meanfield.analysis.convergence` (a single repeat has
    no error bar).  With ``fit``, adds the least-squares power law
    :math:`C x^{p}` as a dashed line of the same colour, its slope and
    confidence interval in the legend.

    Returns
    -------
    Convergence
    """
    from .analysis import convergence
    res = convergence(x, y)
    bars = ax.errorbar(res.m, res.mean, yerr=np.nan_to_num(res.sem), marker="o", ms=4,
                       capsize=3, label=label, **style)
    if fit and res.fit is not None:
        lo, hi = res.slope_ci
        ci = "" if np.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"
        ax.plot(res.m, res.fit(res.m), ls="--", lw=1, color=bars.lines[0].get_color(),
                label=f"fit: slope {res.slope:.2f}{ci}")
    return res


def _log_axes(ax, xlabel, ylabel, widths=False):
    """Log-log axes with labels and a legend; ``widths``: x ticks at powers of 2, plain numbers."""
    if widths:
        from matplotlib.ticker import NullFormatter, ScalarFormatter
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")


# ------------------------------------------------------------------ single runs
def loss_curves(run, ax=None, names=("train_loss", "test_loss", "population_loss",
                                      "population_loss_mc")):
    """Recorded losses against physical time t = lr * step, on log-log axes.

    Parameters
    ----------
    run : Run
    ax : matplotlib Axes, optional
    names : sequence of str
        Observables to draw; those the run did not record are skipped.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    for name in names:
        if name not in run.observable_names:
            continue
        obs = run.observable(name)
        keep = (obs.time > 0) & (obs.value > 0)
        few = np.count_nonzero(keep) < 20  # a short run: mark the points, or one is invisible
        ax.loglog(obs.time[keep], obs.value[keep], marker="o" if few else None,
                  label=name.replace("_", " "))
    ax.set_xlabel("time t = lr * step")
    ax.set_ylabel("loss")
    ax.legend()
    return fig


def trajectories(positions, sign, teacher=None, ax=None, title="particles |c| a"):
    r"""Draw particle paths in the plane from arrays.

    Parameters
    ----------
    positions : array_like, shape (k, m, 2)
        The point :math:`|c_i| a_i` (first two coordinates) of each of m
        particles at k times.
    sign : array_like, shape (m,)
        Sign of each particle's output weight c_i: red if >= 0, blue otherwise.
    teacher : array_like, shape (m0, 2), optional
        The teacher's neurons :math:`|c_j| a_j`, drawn as black crosses with
        dotted rays from the origin: for relu only the direction of
        :math:`a_i` and the mass :math:`|c_i||a_i|/m` matter, so the
        particles gather on these rays.
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        One line per particle, a dot at its last position, the dashed unit
        circle and (if given) the teacher's rays and neurons.

    Examples
    --------
    >>> import numpy as np
    >>> pos = np.cumsum(np.ones((5, 3, 2)), axis=0) / 10
    >>> fig = trajectories(pos, [1, -1, 1], teacher=[[1.0, 0.0]])
    >>> len(fig.axes[0].lines)        # 3 paths + 3 end points + circle + rays + teacher
    9
    """
    fig, ax = _axes(ax, figsize=(4.5, 4.5))
    pos = np.asarray(positions, dtype=float)
    sign = np.asarray(sign, dtype=float)
    for i in range(pos.shape[1]):
        colour = "tab:red" if sign[i] >= 0 else "tab:blue"
        ax.plot(pos[:, i, 0], pos[:, i, 1], color=colour, lw=0.8, alpha=0.8)
        ax.plot(pos[-1, i, 0], pos[-1, i, 1], "o", color=colour, ms=3)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="0.6", lw=0.8, ls="--")
    if teacher is not None:
        ta = np.asarray(teacher, dtype=float)
        reach = 1.15 * max(1.0, np.linalg.norm(pos, axis=-1).max(initial=0.0),
                           np.linalg.norm(ta, axis=-1).max(initial=0.0))
        unit = ta / np.maximum(np.linalg.norm(ta, axis=1, keepdims=True), 1e-300)
        rays = np.stack([np.zeros_like(unit), reach * unit, np.full_like(unit, np.nan)], 1)
        ax.plot(*rays.reshape(-1, 2).T, color="k", lw=0.6, ls=":")
        ax.plot(ta[:, 0], ta[:, 1], "kx", ms=9, mew=2, label="teacher")
        ax.legend(loc="lower right")
    ax.set_aspect("equal")
    ax.set_title(title)
    return fig


def plane_positions(particles):
    r"""The points :math:`|c_i| (a_{i,1}, a_{i,2})` of particles (..., m, D), columns a, [b,] c.

    Examples
    --------
    >>> plane_positions(np.array([[0.6, 0.8, -2.0]]))
    array([[1.2, 1.6]])
    """
    P = np.asarray(particles, dtype=float)
    return np.abs(P[..., -1:]) * P[..., :2]


def particle_trajectories(run, ax=None):
    r"""Each particle's :math:`|c_i| a_i` over time in the plane of the first two input coordinates.

    Positive output weights are red, negative blue; dots mark the final
    positions, the unit circle and the teacher's neurons (crosses) are drawn
    (see :func:`trajectories`).

    Parameters
    ----------
    run : Run
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    traj = run.particles(slice(None))  # (k, m, D)
    teacher = run.teacher
    title = "particles |c| a" + ("" if run.parameters["d"] == 2
                                 else " (first two coordinates)")
    return trajectories(plane_positions(traj), np.sign(traj[-1, :, -1]),
                        None if teacher is None else plane_positions(teacher), ax, title)


def network_size(run, ax=None):
    r"""A growing network: neurons m (right axis, steps) and the objective J with the
    certified lower bound J - gap on inf J (left axis, log scale) against time.

    Parameters
    ----------
    run : Run
        With the snapshot observables ``neurons``, ``objective`` and ``dual_bound``
        (``train.algorithm = "grow"``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    for name, label, style in (("objective", "objective J", "-"),
                               ("dual_bound", "lower bound J - gap", "--")):
        obs = run.observable(name)
        keep = obs.value > 0
        ax.semilogy(obs.time[keep], obs.value[keep], style, color="tab:blue", label=label)
    ax.set_xlabel("time t = lr * step")
    ax.set_ylabel("J", color="tab:blue")
    ax.legend(loc="upper center", fontsize="small")
    size = ax.twinx()
    obs = run.observable("neurons")
    size.step(obs.time, obs.value, where="post", color="tab:red")
    size.set_ylabel("neurons m", color="tab:red")
    size.set_ylim(0, 1.1 * max(obs.value.max(initial=1.0), 1.0))
    return fig


# ----------------------------------------------------------------------- sweeps
def loss_vs_scale(tau, final, best=None, converged=None, ax=None, ylabel="test loss"):
    r"""Loss against the initialisation scale tau (as in Chizat, Oyallon & Bach 2019).

    For a 2-homogeneous network (relu without bias), scaling the
    initialisation by tau is lazy training with :math:`\alpha = \tau^2` (and
    time rescaled by :math:`\tau^2`): small tau is the feature-learning
    regime, large tau the kernel (lazy) regime.

    Parameters
    ----------
    tau : array_like, shape (n,)
    final : array_like, shape (n,)
        Loss at the end of training.
    best : array_like, shape (n,), optional
        Smallest loss seen during training.
    converged : array_like of bool, shape (n,), optional
        False marks runs whose training had not converged (red crosses on
        their final loss).
    ax : matplotlib Axes, optional
    ylabel : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> tau = np.logspace(-2, 1, 7)
    >>> fig = loss_vs_scale(tau, 1e-3 * tau, 1e-3 * tau / 2, converged=tau < 3)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['end of training', 'best during training', 'not yet converged']
    """
    fig, ax = _axes(ax)
    tau = np.asarray(tau, dtype=float)
    order = np.argsort(tau)
    tau = tau[order]
    final = np.asarray(final, dtype=float)[order]
    ax.plot(tau, final, "o-", ms=4, label="end of training")
    if best is not None:
        ax.plot(tau, np.asarray(best, dtype=float)[order], "s--", ms=3,
                label="best during training")
    if converged is not None:
        stuck = ~np.asarray(converged, dtype=bool)[order]
        ax.plot(tau[stuck], final[stuck], "x", color="tab:red", ms=9, mew=2,
                label="not yet converged")
    _log_axes(ax, r"initialisation scale $\tau$", ylabel)
    return fig


def loss_vs_m(m, loss, baseline=None, m0=None, ax=None, label="particle gradient flow",
              ylabel="population loss at convergence"):
    r"""Loss at convergence against the width m, mean :math:`\pm` standard error over seeds.

    Parameters
    ----------
    m, loss : array_like, shape (n,)
        Width and loss of every run (repeated m are seeds).
    baseline : (array_like, array_like), optional
        ``(m, loss)`` of the convex baseline (random features with m units,
        output weights trained: :func:`meanfield.baseline.convex_baseline`),
        drawn dashed.
    m0 : int, optional
        Teacher size, marked by a vertical dotted line.
    ax : matplotlib Axes, optional
    label, ylabel : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> m = np.repeat([2, 8, 32], 2)
    >>> fig = loss_vs_m(m, 1.0 / m, baseline=(m, 2.0 / np.sqrt(m)), m0=4)
    >>> len(fig.axes[0].containers)
    2
    """
    fig, ax = _axes(ax)
    _mean_sem(ax, m, loss, label)
    if baseline is not None:
        _mean_sem(ax, *baseline, "convex baseline (random features)", ls="--")
    if m0 is not None:
        ax.axvline(m0, color="0.4", ls=":", label=f"teacher size $m_0$ = {m0:g}")
    _log_axes(ax, "width m", ylabel, widths=True)
    return fig


def laziness_vs_alpha(alpha, diagnostics, ax=None, xlabel=r"$\alpha$"):
    r"""Laziness diagnostics against the output scale alpha, on log-log axes.

    In the lazy regime the relative displacement
    :math:`|P_t - P_0| / |P_0|`, the tangent gap :math:`|f - Tf|` and the
    kernel change :math:`|K_t - K_0| / |K_0|` all vanish like a power of
    :math:`1/\alpha` (see :mod:`meanfield.lazy`), while the scaled
    displacement :math:`\alpha |P_t - P_0|` tends to a constant.

    Parameters
    ----------
    alpha : array_like, shape (n,)
        Output scale of every run (repeats are averaged, with error bars).
    diagnostics : dict of str to array_like, shape (n,)
        One series per diagnostic, e.g. ``{"tangent_gap": ..., "ntk_change": ...}``.
    ax : matplotlib Axes, optional
    xlabel : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> a = np.logspace(0, 3, 4)
    >>> fig = laziness_vs_alpha(a, {"tangent_gap": 1 / a, "ntk_change": 1 / a ** 2})
    >>> len(fig.axes[0].containers)
    2
    """
    fig, ax = _axes(ax)
    for name, values in diagnostics.items():
        _mean_sem(ax, alpha, values, name.replace("_", " "))
    _log_axes(ax, xlabel, "diagnostic at the end of training")
    return fig


def distance_vs_m(m, distance, times=None, ax=None, ylabel="distance to the reference"):
    r"""Distance of m-particle runs to a large-m reference against m, with fitted rates.

    For every time t, the mean :math:`\pm` standard error over seeds and the
    fitted power law :math:`C m^{p}`; the dotted grey line is the
    :math:`m^{-1/2}` rate of the mean-field limit (propagation of chaos),
    through the first mean.

    Parameters
    ----------
    m, distance : array_like, shape (n,)
    times : array_like, shape (n,), optional
        The time of every entry; one series per distinct time.
    ax : matplotlib Axes, optional
    ylabel : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> m = np.repeat([8, 32, 128], 2)
    >>> fig = distance_vs_m(np.tile(m, 2), np.tile(m ** -0.5, 2), times=np.repeat([0, 1], 6))
    >>> len(fig.axes[0].containers)
    2
    """
    fig, ax = _axes(ax)
    m = np.asarray(m, dtype=float)
    distance = np.asarray(distance, dtype=float)
    times = np.zeros_like(m) if times is None else np.asarray(times, dtype=float)
    first = None
    for t in np.unique(times):
        sel = times == t
        res = _mean_sem(ax, m[sel], distance[sel], f"t = {t:g}", fit=True)
        first = res if first is None else first
    if first is not None and first.m.size:
        ax.plot(first.m, first.mean[0] * (first.m / first.m[0]) ** -0.5, ":", color="0.4",
                label=r"$m^{-1/2}$")
    _log_axes(ax, "width m", ylabel, widths=True)
    return fig
