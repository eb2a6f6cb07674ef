"""Test loss against the initialisation scale tau, in the published setting.

Chizat, Oyallon & Bach (2019), figure 2, from the authors' test_vs_scale.jl
and populationSGD.jl, in meanfield's keys (README, "The published
parameterisation": alpha = m * scaling, lr = m * step).

Left, ``test_vs_scale.jl``: d = 100, 1000 training and 1000 test points on
the sphere, teacher ``sum_j s_j relu(t_j . x)`` (m0 = 3 unit neurons, random
signs), a relu student of m = 50 neurons without bias, ``W ~ tau N(0, 1)``
entrywise and symmetrised, 10^4 GD steps of size ``min(10, 0.1 / tau^2)``
(scaling 1: alpha = 50, lr = 50 * step); test loss x 1000 at the end of
training and the best throughout training (recorded every 10 steps), mean
+- 1 std over the trials.  For tau > 0.1 the step depends on tau; by
2-homogeneity (f(tau w) = tau^2 f(w)) init scale tau with (alpha, lr) is init
scale 1 with (alpha tau^2, lr tau^2), so those runs use init scale 1,
alpha = 50 tau^2 and lr = 5.

Right, ``populationSGD.jl`` (under-parameterised), its quirks included:
m = 50, d = 100, m0 = 3, each step a fresh batch of 200 sphere points, step
``eta = min(0.25 / tau^2, 25)``, 20 000 steps, student ``(1/m) sum_i w_i
relu(theta_i . x)`` from ``theta ~ tau N(0, I_d)``, ``w ~ tau N(0, 1)``
(symmetrised), loss summed over the last 2000 steps, normalised by its
largest mean over tau.  Quirk 1: the theta-step is d times the w-step.  In
meanfield's variables a = theta / sqrt(d), c = w, alpha = sqrt(d) = 10 the
network is the same and one step of lr = d * eta is exactly their two steps
(a ~ tau N(0, I/d): ``init.a = "gaussian"``).  Quirk 2: their teacher output
is divided by the batch size, ``y = sum_j s_j relu(t_j . x) / 200``.  By
2-homogeneity a teacher k y with init tau and step lr is the teacher y with
init tau / sqrt(k) and step k lr, every loss multiplied by k^2: here
k = 1/200, so tau_ours = tau sqrt(200), lr = 100 eta / 200.  The batch loss
they sum is replaced by the exact population loss recorded every 10 steps
(its expectation; the same sum in the mean, less noise).

    python experiments/loss_vs_scale/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_many  # noqa: E402

M, D, N = 50, 100, 1000
PUBLISHED_GD_TAUS = [10 ** (k / 10) for k in range(-22, 11)]
"""tau = 10^(-2.2:0.1:1), 33 values, 10 trials in the paper."""
PUBLISHED_SGD_TAUS = [0.01, 0.02, 0.04, *(10 ** (k / 10) for k in range(-10, 1)), 2, 4, 8]
"""The 17 scales of populationSGD.jl."""
TRIALS = 10
"""Trials (teacher, data, init) per tau, as published."""
GD_STEPS, SGD_STEPS, WINDOW, BATCH = 10_000, 20_000, 2_000, 200
SGD_K = 1 / BATCH
"""populationSGD.jl's teacher factor (its output divided by the batch size)."""
QUICK = {"gd_taus": [0.01, 1.0], "sgd_taus": [0.01, 1.0], "gd_steps": 200, "sgd_steps": 400,
         "trials": 1}
COLUMNS = ["panel", "tau", "trial", "init_tau", "alpha", "lr", "steps", "status",
           "start_loss", "final_test_loss", "best_test_loss", "final_train_loss",
           "window_loss", "trials_published"]


def gd_config(tau, trial, steps):
    """test_vs_scale.jl at init scale tau (see the module docstring for tau > 0.1)."""
    step = min(10.0, 0.1 / tau ** 2)
    init_tau, alpha, lr = (tau, M, M * step) if tau <= 0.1 else (1.0, M * tau ** 2, 5.0)
    return {"model": {"m": M, "activation": "relu", "bias": False},
            "scaling": {"alpha": alpha},
            "init": {"a": "standard", "c": "gaussian", "tau": init_tau, "symmetric": True},
            "data": {"kind": "teacher", "d": D, "input": "sphere", "n_train": N, "n_test": N,
                     "teacher_m": 3, "teacher_output": "sum", "teacher_signs": "random"},
            "train": {"algorithm": "gd", "lr": lr, "steps": steps},
            "record": {"every": 10}, "run": {"seed": 1 + trial}}


def sgd_config(tau, trial, steps):
    """populationSGD.jl at init scale tau, its two quirks carried exactly (module docstring)."""
    eta = min(0.25 / tau ** 2, 25.0)
    return {"model": {"m": M, "activation": "relu", "bias": False},
            "scaling": {"alpha": math.sqrt(D)},
            "init": {"a": "gaussian", "c": "gaussian", "tau": tau / math.sqrt(SGD_K),
                     "symmetric": True},
            "data": {"kind": "teacher", "d": D, "input": "sphere", "n_train": BATCH,
                     "n_test": BATCH, "teacher_m": 3, "teacher_output": "sum",
                     "teacher_signs": "random"},
            "train": {"algorithm": "sgd", "lr": D * eta * SGD_K, "steps": steps,
                      "batch_size": BATCH},
            "record": {"every": 10}, "run": {"seed": 1 + trial}}


def summarise_gd(result):
    """Start, final and best test loss, final training loss."""
    test = result["test_loss"]
    return {"status": result["status"], "start_loss": float(test[0]),
            "final_test_loss": float(test[-1]), "best_test_loss": float(test.min()),
            "final_train_loss": float(result["train_loss"][-1])}


def summarise_sgd(result):
    """populationSGD.jl's sum of the last 2000 (here last tenth, at most 2000) step losses."""
    steps, loss = result["steps"], result["population_loss"]
    window = min(WINDOW, int(steps[-1]) // 10)
    last = (steps >= steps[-1] - window) & (steps < steps[-1])
    return {"status": result["status"], "start_loss": float(loss[0]),
            "final_test_loss": float(loss[-1]),
            "window_loss": float(loss[last].mean() * window * SGD_K ** 2)}


def compute(args):
    """One row per (panel, tau, trial)."""
    q = QUICK if args.quick else {}
    trials = q.get("trials", TRIALS)
    rows = []
    for panel, taus, steps, make, summarise in (
            ("gd", q.get("gd_taus", PUBLISHED_GD_TAUS), q.get("gd_steps", GD_STEPS),
             gd_config, summarise_gd),
            ("sgd", q.get("sgd_taus", PUBLISHED_SGD_TAUS), q.get("sgd_steps", SGD_STEPS),
             sgd_config, summarise_sgd)):
        configs = {f"{panel}_tau{tau:.6g}_trial{r}": make(tau, r, steps)
                   for tau in taus for r in range(trials)}
        done = run_many(configs, summarise, args.work / f"published_{panel}", args.jobs,
                        collect=args.collect)
        for (key, cfg), tau_trial in zip(configs.items(),
                                         [(t, r) for t in taus for r in range(trials)]):
            if key not in done:
                continue
            rows.append({"panel": panel, "tau": tau_trial[0], "trial": tau_trial[1],
                         "init_tau": cfg["init"]["tau"], "alpha": cfg["scaling"]["alpha"],
                         "lr": cfg["train"]["lr"], "steps": steps, **done[key],
                         "trials_published": 10})
    return rows, COLUMNS


def _mean_std(runs, column):
    import numpy as np
    taus = np.unique(runs.column("tau"))
    values = [runs.column(column)[runs.column("tau") == t] for t in taus]
    std = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
    return taus, np.array([v.mean() for v in values]), np.array(std)


def _gd_panel(ax, gd):
    for column, style, label in (("final_test_loss", "-", "end of training"),
                                 ("best_test_loss", ":", "best throughout training")):
        tau, mean, std = _mean_std(gd, column)
        ax.fill_between(tau, 1000 * (mean - std), 1000 * (mean + std), color="0.85")
        ax.semilogx(tau, 1000 * mean, "k" + style, marker="o", ms=3, lw=3, label=label)
    ax.set_ylabel("test loss x 1000")
    ax.legend()


def _sgd_panel(ax, sgd):
    tau, mean, std = _mean_std(sgd, "window_loss")
    scale = 1 / mean.max()
    ax.fill_between(tau, scale * (mean - std), scale * (mean + std), color="0.85")
    ax.semilogx(tau, scale * mean, "k", marker="o", ms=3, lw=2)
    ax.set_ylabel("population loss at convergence (normalised)")


def draw(table):
    """Left: GD test loss x 1000 (end, best); right: SGD window loss / its largest mean."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    for ax, panel, fill, script in ((axes[0], "gd", _gd_panel, "test_vs_scale.jl: GD"),
                                    (axes[1], "sgd", _sgd_panel, "populationSGD.jl: SGD")):
        runs = table.where({"panel": panel})
        ax.set_xlabel(r"$\tau$")
        if len(runs.column("tau")) == 0:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
            ax.set_title(script, fontsize=9)
            continue
        fill(ax, runs)
        ax.set_title(f"{script}, m = {M}, {int(runs.column('steps')[0])} steps, "
                     f"{len(runs.column('tau'))} runs "
                     f"({int(runs.column('trial').max()) + 1} trial(s) of 10)", fontsize=9)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("loss_vs_scale", __doc__.splitlines()[0]), compute, draw))
