"""The 2-D picture: GD and the end-to-end dynamics of depth 3 on an l_4 loss over (w_1, w_2).

After Arora, Cohen & Hazan (2018).  A one-output linear model on d = 2
inputs (n = 200 points, x ~ N(0, R diag(1, 0.35)^2 R^T), R a rotation by
30 degrees, y = w* . x + 0.1 noise) has the l_4 loss
L(w) = (1/(4n)) sum_i (w . x_i - y_i)^4.  From the same start w(0), drawn are

* plain GD on w (depth 1),
* Euler steps of the depth-3 end-to-end dynamics
  w <- w - lr |w|^(4/3) (g + 2 proj_w g), g = grad L(w),
* GD on the layers of a balanced depth-3 network (width 2) whose product is
  w(0): it follows the end-to-end path (the gap is printed),

all with the same learning rate and number of steps, over the contour lines of L.

    python experiments/lp_landscape/run.py [--quick] [--plot-only] [--data DIR]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options  # noqa: E402

from meanfield import deep_linear as dl  # noqa: E402

P, DEPTH, LR = 4.0, 3, 0.02
OFFSET = np.array([[-1.0, 0.8]])
"""The start w(0) is the minimiser of the squared loss plus this offset."""
COLUMNS = ["panel", "method", "step", "w1", "w2", "value"]


def problem():
    rng = np.random.default_rng(0)
    X, Y, _ = dl.linear_teacher(200, 2, 1, 0.1, rng, scales=[1.0, 0.35])
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    return X @ np.array([[c, s], [-s, c]]), Y


def path_rows(method, run, steps, every):
    rows = []
    for _ in range(steps // every + 1):
        w = run.end_to_end()[0]
        rows.append({"panel": "path", "method": method, "step": run.step, "w1": w[0], "w2": w[1],
                     "value": dl.loss(run.end_to_end(), run.X, run.Y, P)})
        run.advance(every)
    return rows


def compute(args):
    X, Y = problem()
    start = dl.least_squares_target(X, Y) + OFFSET
    steps, every, grid = (200, 10, 30) if args.quick else (1000, 10, 60)
    runs = {"GD, depth 1": dl.GD(dl.Network.from_layers([start]), X, Y, P, LR),
            f"end-to-end dynamics, N = {DEPTH}": dl.EndToEnd(start, DEPTH, X, Y, P, LR),
            f"GD on balanced layers, N = {DEPTH}":
                dl.GD(dl.balanced(start, [2] * DEPTH + [1]), X, Y, P, LR)}
    rows = []
    for method, run in runs.items():
        rows += path_rows(method, run, steps, every)
    flow, layers = list(runs.values())[1:]
    print(f"after {steps} steps: |w(GD on layers) - w(end-to-end)| = "
          f"{dl.end_to_end_gap(layers.end_to_end(), flow.end_to_end()):.2e}")
    paths = np.array([[r["w1"], r["w2"]] for r in rows])
    lo, hi = paths.min(axis=0) - 0.3, paths.max(axis=0) + 0.3
    for w1 in np.linspace(lo[0], hi[0], grid):
        for w2 in np.linspace(lo[1], hi[1], grid):
            rows.append({"panel": "grid", "method": "", "step": 0, "w1": w1, "w2": w2,
                         "value": dl.loss(np.array([[w1, w2]]), X, Y, P)})
    return rows, COLUMNS


def draw(table):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5), constrained_layout=True)
    grid = table.where({"panel": "grid"})
    w1, w2 = np.array(grid.column("w1")), np.array(grid.column("w2"))
    n1 = len(set(w1.tolist()))
    shape = (n1, len(w1) // n1)
    value = np.array(grid.column("value")).reshape(shape)
    levels = np.quantile(value, np.linspace(0, 1, 25) ** 3)
    ax.contour(w1.reshape(shape), w2.reshape(shape), value, levels=np.unique(levels),
               colors="0.6", linewidths=0.7)
    paths = table.where({"panel": "path"})
    for k, (method, style) in enumerate(zip(dict.fromkeys(paths.column("method")),
                                            ("o-", "s-", "x"))):
        rows = paths.where({"method": method})
        ax.plot(rows.column("w1"), rows.column("w2"), style, ms=3, color=f"C{k}",
                label=f"{method} ({rows.column('step')[-1]} steps)")
    ax.plot(*paths.column("w1")[:1], *paths.column("w2")[:1], "k*", ms=12, label="start")
    ax.set(xlabel="$w_1$", ylabel="$w_2$", aspect="equal",
           title=f"$\\ell_{P:g}$ loss, lr = {LR:g}: one marker every few steps")
    ax.legend(fontsize=8, loc="lower right")
    return fig


if __name__ == "__main__":
    sys.exit(main(options("lp_landscape", __doc__.splitlines()[0]), compute, draw))
