"""Acceleration by depth: l_4 regression with GD on depth 1-4 against AdaGrad and Adam.

After Arora, Cohen & Hazan (2018), section 7.  A linear model x -> W_N ... W_1 x
(one output) is trained by full-batch GD on the l_p loss
(1/(n p)) sum_i |W_e x_i - y_i|^p for p = 4 and, as the control, p = 2:

* ``synthetic``: n = 2000 points in d = 40, x ~ N(0, Q diag(s)^2 Q^T) with
  s from 1 to 0.1 (geometric) and a random rotation Q (no axis-aligned
  scales for the adaptive methods to exploit), y = Phi* x + 0.1 noise,
  normalised to unit variance;
* ``diabetes`` (when scikit-learn is installed): its bundled 442 x 10 data
  set, features and target standardised.

Depth 1 starts at W = 0, depths 2-4 (hidden width 20) from a near-zero
Gaussian init (scale 0.1 per layer); AdaGrad and Adam run on depth 1 from 0.
Each method takes its best learning rate from a geometric grid (fewest
iterations to the target, then lowest final loss).  The target is the
relative excess loss (L - L*) / (L(0) - L*) <= 1e-4, L* from L-BFGS.

    python experiments/acceleration_by_depth/run.py [--quick] [--plot-only] [--data DIR]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options  # noqa: E402

from meanfield import deep_linear as dl  # noqa: E402

POWERS = (4.0, 2.0)
METHODS = ("GD N=1", "GD N=2", "GD N=3", "GD N=4", "AdaGrad N=1", "Adam N=1")
TARGET = 1e-4
WIDTH, SCALE = 20, 0.1
COLUMNS = ["panel", "dataset", "p", "method", "lr", "step", "value"]


def synthetic(n=2000, d=40):
    rng = np.random.default_rng(0)
    X, Y, _ = dl.linear_teacher(n, d, 1, 0.1, rng, scales=np.geomspace(1.0, 0.1, d))
    X = X @ np.linalg.qr(rng.standard_normal((d, d)))[0]
    return X, Y / np.std(Y)


def diabetes():
    """scikit-learn's bundled diabetes data, standardised; None without scikit-learn."""
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:
        print("scikit-learn is not installed: the diabetes data set is skipped")
        return None
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, ((y - y.mean()) / y.std())[:, None]


def minimum(X, Y, p):
    """L* by L-BFGS (the l_p loss is convex and smooth in W_e)."""
    from scipy.optimize import minimize

    def fun(w):
        value, grad = dl.loss_and_gradient(w.reshape(1, -1), X, Y, p)
        return value, grad.ravel()

    res = minimize(fun, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": 20000, "gtol": 1e-13, "ftol": 1e-16})
    return res.fun


def trainer(method, X, Y, p, lr):
    d = X.shape[1]
    if method.startswith("GD"):
        depth = int(method[-1])
        net = (dl.Network([d, 1]) if depth == 1 else
               dl.gaussian([d] + [WIDTH] * (depth - 1) + [1], SCALE, np.random.default_rng(1)))
        return dl.GD(net, X, Y, p, lr)
    return (dl.AdaGrad if method.startswith("AdaGrad") else dl.Adam)(np.zeros((1, d)), X, Y,
                                                                      p, lr)


def best_run(method, X, Y, p, lrs, steps, scale):
    """(lr, relative excess per step, iterations to TARGET or None) at the best lr."""
    best = None
    for lr in lrs:
        run = trainer(method, X, Y, p, lr)
        excess = (run.advance(steps) - scale[0]) / scale[1]
        if run.diverged:
            continue
        hit = np.flatnonzero(excess <= TARGET)
        key = (hit[0] if hit.size else np.inf, excess[-1])
        if best is None or key < best[0]:
            best = (key, lr, excess, int(hit[0]) if hit.size else None)
    return best[1:]


def compute(args):
    lrs = np.geomspace(1e-3, 10, 7 if args.quick else 25)
    steps = 600 if args.quick else 4000
    rows = []
    for name, data in (("synthetic", synthetic()), ("diabetes", diabetes())):
        if data is None:
            continue
        X, Y = data
        for p in POWERS:
            lstar = minimum(X, Y, p)
            scale = (lstar, dl.loss(np.zeros((1, X.shape[1])), X, Y, p) - lstar)
            for method in METHODS:
                lr, excess, hit = best_run(method, X, Y, p, lrs, steps, scale)
                common = {"dataset": name, "p": p, "method": method, "lr": lr}
                rows.append({"panel": "iterations", **common, "step": -1 if hit is None else hit,
                             "value": float(excess[-1])})
                print(f"{name} p={p:g} {method:12s} lr={lr:.3g} iterations to target: "
                      f"{hit if hit is not None else f'> {steps}'}", flush=True)
                for step in np.unique(np.geomspace(1, len(excess), 80).astype(int)) - 1:
                    rows.append({"panel": "curve", **common, "step": int(step),
                                 "value": float(excess[step])})
    return rows, COLUMNS


def draw(table):
    import matplotlib.pyplot as plt

    datasets = sorted(set(table.column("dataset")), reverse=True)
    fig, axes = plt.subplots(len(POWERS), len(datasets), figsize=(6.5 * len(datasets), 8.5),
                             constrained_layout=True, squeeze=False)
    for i, p in enumerate(POWERS):
        for j, name in enumerate(datasets):
            ax = axes[i, j]
            for k, method in enumerate(METHODS):
                curve = table.where({"panel": "curve", "dataset": name, "p": p,
                                     "method": method})
                info = table.where({"panel": "iterations", "dataset": name, "p": p,
                                    "method": method})
                hit = info.column("step")[0]
                label = (f"{method} (lr {info.column('lr')[0]:.2g}): "
                         f"{hit if hit >= 0 else 'not reached'}")
                ax.semilogy(np.array(curve.column("step")) + 1,
                            np.maximum(curve.column("value"), 1e-16),
                            color=f"C{k}", ls="-" if method.startswith("GD") else "--",
                            label=label)
            ax.axhline(TARGET, color="k", lw=0.6, ls=":")
            ax.set(xscale="log", xlabel="iteration", ylabel=r"$(L - L^*)/(L(0) - L^*)$",
                   title=f"{name}, $\\ell_{p:g}$ loss (iterations to {TARGET:g})")
            ax.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("acceleration_by_depth", __doc__.splitlines()[0]), compute, draw))
