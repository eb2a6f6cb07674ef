"""Test loss against the width m under the scalings 1/sqrt(m) and 1/m (test_vs_m.jl).

As in Chizat, Oyallon & Bach (2019), figure 3 (right): d = 100, 1000 training
and 1000 test points on the sphere, the teacher ``100 sum_j s_j relu(t_j . x)``
(m0 = 3, random signs), a relu student ``scaling * sum_i c_i relu(a_i . x)``
from ``W ~ N(0, 1)`` entrywise (not symmetrised), 25 000 GD steps of size
``1/m`` (scaling ``1/sqrt(m)``) or ``0.05/m`` (scaling ``1/m``); test loss x 0.1
at the end of training, every trial a dot, the mean a line.

In meanfield's keys (README, "The published parameterisation"): alpha =
m * scaling, lr = m * step.  The factor 100 of the teacher is carried by
2-homogeneity: with ``W = 10 V``, ``f_W = 100 f_V``, GD on ``W`` against the
teacher x 100 with step eta is GD on ``V`` against the plain teacher with step
100 eta, from ``V ~ 0.1 N(0, 1)``, and every loss is 100^2 times the plain one.

    python experiments/test_vs_m/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_many  # noqa: E402

PUBLISHED_WIDTHS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256, 512)
TRIALS = 10
"""Trials (teacher, data; fresh init per m), as published."""
STEPS = 25_000
TEACHER_FACTOR = 100.0
"""Their teacher's output factor, moved into tau = 1/sqrt(TEACHER_FACTOR) and the step."""
SCALINGS = {"1/sqrt(m)": (lambda m: 1 / math.sqrt(m), lambda m: 1 / m),
            "1/m": (lambda m: 1 / m, lambda m: 0.05 / m)}
"""Published scaling(m) and step(m)."""
PLOT_FACTOR = 0.1
"""The published figure plots 0.1 x the test loss."""
QUICK_WIDTHS, QUICK_STEPS = (2, 8), 300
COLUMNS = ["scaling", "m", "trial", "alpha", "lr", "steps", "status", "start_test_loss",
           "final_test_loss", "published_units"]


def settings(name, m):
    """meanfield's (alpha, lr) for the published scaling ``name`` at width ``m``."""
    scaling, step = SCALINGS[name]
    alpha = m * scaling(m)
    return alpha, m * step(m) * TEACHER_FACTOR


def config(name, m, trial, steps):
    """test_vs_m.jl at width m under the scaling ``name``: the teacher and data of
    ``trial`` (its seed), W ~ N(0, 1) entrywise, not symmetrised."""
    alpha, lr = settings(name, m)
    return {"model": {"m": m, "activation": "relu", "bias": False},
            "scaling": {"alpha": alpha},
            "init": {"a": "standard", "c": "gaussian", "tau": TEACHER_FACTOR ** -0.5,
                     "symmetric": False},
            "data": {"kind": "teacher", "d": 100, "input": "sphere", "n_train": 1000,
                     "n_test": 1000, "teacher_m": 3, "teacher_output": "sum",
                     "teacher_signs": "random"},
            "train": {"algorithm": "gd", "lr": lr, "steps": steps},
            "record": {"every": max(1, steps // 25)}, "run": {"seed": 2 + trial}}


def summarise(result):
    """Status, first and last test loss."""
    test = result["test_loss"]
    return {"status": result["status"], "start_test_loss": float(test[0]),
            "final_test_loss": float(test[-1])}


def compute(args):
    """One row per (scaling, m, trial); ``published_units`` is 0.1 x their test loss."""
    widths, steps = (QUICK_WIDTHS, QUICK_STEPS) if args.quick else (PUBLISHED_WIDTHS, STEPS)
    points = [(name, m, r) for name in SCALINGS for m in widths for r in range(TRIALS)]
    configs = {f"{'sqrt' if 'sqrt' in name else 'linear'}_m{m}_trial{r}": config(name, m, r, steps)
               for name, m, r in points}
    done = run_many(configs, summarise, args.work / "runs", args.jobs, collect=args.collect)
    rows = []
    for (name, m, r), (key, cfg) in zip(points, configs.items()):
        if key not in done:
            continue
        out = done[key]
        rows.append({"scaling": name, "m": m, "trial": r, "alpha": cfg["scaling"]["alpha"],
                     "lr": cfg["train"]["lr"], "steps": steps, **out,
                     "published_units": out["final_test_loss"] * TEACHER_FACTOR ** 2
                     * PLOT_FACTOR})
    return rows, COLUMNS


def draw(table):
    """Every trial a dot, the mean over trials a line, one colour per scaling."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 4.5), constrained_layout=True)
    for name, colour in zip(SCALINGS, ("k", "0.5")):
        runs = table.where({"scaling": name})
        m, loss = runs.column("m"), runs.column("published_units")
        widths = np.unique(m)
        ax.semilogx(m, loss, "o", color=colour, ms=2)
        ax.semilogx(widths, [loss[m == w].mean() for w in widths], color=colour, lw=3,
                    marker="o", label=f"scaling {name}")
    trials = int(table.column("trial").max()) + 1
    ax.set_xlim(1.5, 700)                 # the published widths, 2 ... 512
    ax.set_xlabel("m")
    ax.set_ylabel("test loss x 0.1 (published units)")
    ax.set_title(f"Chizat, Oyallon & Bach, test_vs_m.jl: {trials} trial(s) of 10, "
                 f"{table.column('steps')[0]} steps", fontsize=9)
    ax.legend()
    return fig


if __name__ == "__main__":
    sys.exit(main(options("test_vs_m", __doc__.splitlines()[0]), compute, draw))
