"""GD on a balanced deep linear network follows the end-to-end dynamics; where it fails.

After Arora, Cohen & Hazan (2018) and Arora, Cohen, Golowich & Hu (2019).
Whitened squared-loss regression (d = 5 inputs, k = 3 outputs, n = 200
points, so L(W_e) = |W_e - Phi|_F^2 / 2 + const) with depth N = 2, 3, 4 and
hidden width 6:

* ``gap``: from one balanced init, |W_e(GD on the layers) - W_e(Euler steps
  of the end-to-end dynamics, same lr)|_F at the fixed time t = 2, for a grid
  of learning rates (expected O(lr));
* ``delta``: the balancedness delta(t) = max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F
  along GD (0 under gradient flow; O(lr^2) per step under GD);
* ``failure``: loss against steps at depth 2 for a balanced init with a
  deficiency margin, the same end-to-end matrix split unevenly (W_1 x 8,
  W_2 / 8: delta >> c^2), which diverges at the same lr, and a zero-margin
  balanced init (W_e = Phi without its smallest singular direction), which
  stalls at sigma_min(Phi)^2 / 2 above the minimum: in exact arithmetic for
  ever (that direction is zero in every layer and gets no gradient), in
  floating point until round-off in that direction has grown out of the saddle.

    python experiments/end_to_end/run.py [--quick] [--plot-only] [--data DIR]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options  # noqa: E402

from meanfield import deep_linear as dl  # noqa: E402

DEPTHS = (2, 3, 4)
D, K, N_POINTS, WIDTH = 5, 3, 200, 6
T_GAP = 2.0
COLUMNS = ["panel", "case", "depth", "lr", "step", "t", "value", "margin"]


def problem():
    """Whitened data, the least-squares target Phi and a balanced-init end-to-end matrix."""
    rng = np.random.default_rng(0)
    X, Y, _ = dl.linear_teacher(N_POINTS, D, K, 0.1, rng, whiten=True)
    target = dl.least_squares_target(X, Y)
    step = rng.standard_normal(target.shape)
    w0 = target + 0.15 * step / np.linalg.norm(step)    # margin sigma_min(Phi) - 0.15 > 0
    return X, Y, target, w0


def dims(depth):
    return [D] + [WIDTH] * (depth - 1) + [K]


def gap_rows(X, Y, w0, lrs):
    rows = []
    for depth in DEPTHS:
        for lr in lrs:
            steps = int(round(T_GAP / lr))
            gd = dl.GD(dl.balanced(w0, dims(depth)), X, Y, 2.0, lr)
            flow = dl.EndToEnd(w0, depth, X, Y, 2.0, lr)
            gd.advance(steps)
            flow.advance(steps)
            rows.append({"panel": "gap", "case": "balanced", "depth": depth, "lr": lr,
                         "step": steps, "t": T_GAP,
                         "value": dl.end_to_end_gap(gd.end_to_end(), flow.end_to_end())})
    return rows


def delta_rows(X, Y, w0, lrs):
    """delta after every GD step up to t = T_GAP."""
    rows = []
    for depth in DEPTHS:
        for lr in lrs:
            gd = dl.GD(dl.balanced(w0, dims(depth)), X, Y, 2.0, lr)
            for _ in range(int(round(T_GAP / lr)) + 1):
                rows.append({"panel": "delta", "case": "balanced", "depth": depth, "lr": lr,
                             "step": gd.step, "t": gd.step * lr,
                             "value": dl.balancedness(gd.net)})
                gd.advance(1)
    return rows


def failure_rows(X, Y, target, w0, steps, lr=0.2):
    """Loss minus its minimum along GD at depth 2 for three inits."""
    u, s, vt = np.linalg.svd(target, full_matrices=False)
    deficient = (u[:, :-1] * s[:-1]) @ vt[:-1]
    balanced = dl.balanced(w0, dims(2))
    lopsided = dl.Network.from_layers([8.0 * balanced.layers[0], balanced.layers[1] / 8.0])
    best = dl.loss(target, X, Y, 2.0)
    rows = []
    for case, net in (("balanced", balanced), ("unbalanced", lopsided),
                      ("zero margin", dl.balanced(deficient, dims(2)))):
        margin = dl.deficiency_margin(net.end_to_end(), target)[1]
        gd = dl.GD(net, X, Y, 2.0, lr)
        losses = gd.advance(steps)
        for step in np.unique(np.geomspace(1, len(losses), 60).astype(int)) - 1:
            rows.append({"panel": "failure", "case": case, "depth": 2, "lr": lr,
                         "step": int(step), "t": step * lr, "value": losses[step] - best,
                         "margin": margin})
        if gd.diverged:
            rows.append({"panel": "failure", "case": case, "depth": 2, "lr": lr,
                         "step": gd.step, "t": gd.step * lr, "value": float("inf"),
                         "margin": margin})
    return rows


def compute(args):
    X, Y, target, w0 = problem()
    lrs = [0.1, 0.05, 0.02] if args.quick else [0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002]
    rows = gap_rows(X, Y, w0, lrs)
    rows += delta_rows(X, Y, w0, [0.1, 0.05, 0.02])
    rows += failure_rows(X, Y, target, w0, 300 if args.quick else 3000)
    c = dl.deficiency_margin(w0, target)
    print(f"balanced init: sigma_min(W_e) = {c[0]:.3f}, margin estimate = {c[1]:.3f}, "
          f"delta(0) = {dl.balancedness(dl.balanced(w0, dims(2))):.1e}")
    return rows, COLUMNS


def draw(table):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), constrained_layout=True)
    gap = table.where({"panel": "gap"})
    for depth in DEPTHS:
        rows = gap.where({"depth": depth})
        axes[0].loglog(rows.column("lr"), rows.column("value"), "o-", label=f"N = {depth}")
    lr = np.array(sorted(set(gap.column("lr"))))
    ref = max(gap.column("value")) * lr / lr.max()
    axes[0].loglog(lr, ref, "k--", lw=0.8, label="slope 1")
    axes[0].set(xlabel="learning rate", ylabel=r"$|W_e^{GD} - W_e^{flow}|_F$ at t = 2",
                title="GD vs end-to-end dynamics (balanced init)")
    delta = table.where({"panel": "delta"})
    for depth, style in zip(DEPTHS, ("-", "--", ":")):
        for i, lr_ in enumerate(sorted(set(delta.column("lr")), reverse=True)):
            rows = delta.where({"depth": depth, "lr": lr_})
            axes[1].plot(rows.column("t"), rows.column("value"), style, color=f"C{i}",
                         label=f"N = {depth}, lr = {lr_:g}")
    axes[1].set(xlabel="t = lr x steps", ylabel=r"balancedness $\delta(t)$",
                title=r"$\delta(t)$ along GD from $\delta(0) = 0$ (flow: stays 0)")
    axes[1].set_yscale("symlog", linthresh=1e-6)
    fail = table.where({"panel": "failure"})
    for case in ("balanced", "unbalanced", "zero margin"):
        rows = fail.where({"case": case})
        value = np.array(rows.column("value"), dtype=float)
        finite = np.isfinite(value)
        label = f"{case} (margin {rows.column('margin')[0]:+.2f})"
        axes[2].loglog(np.array(rows.column("step"))[finite] + 1, value[finite],
                               label=label + (", diverged" if not finite.all() else ""))
    axes[2].set(xlabel="step + 1", ylabel=r"$L - L^*$", ylim=(1e-15, 1e6),
                title=f"depth 2, lr = {fail.column('lr')[0]:g}")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("end_to_end", __doc__.splitlines()[0]), compute, draw))
