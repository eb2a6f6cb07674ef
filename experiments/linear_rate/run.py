"""GD in the NTK regime converges at a linear rate set by lambda_min(H-inf); weights barely move.

After Du, Zhai, Poczos & Singh (ICLR 2019) and Arora, Du, Hu, Li & Wang (ICML 2019).
n = 100 points uniform on the sphere in d = 10 with random +-1 labels; a relu network
without bias in the NTK parameterisation (alpha = sqrt(m), a ~ N(0, I_d), c = +-1,
symmetric init so f_0 = 0), both layers trained by full-batch GD, lr = 5 (eta = lr / n
in the residual recursion r <- (I - eta H) r).  Against the steps:

* the training loss for m = 100, 1000, 10000;
* the prediction of the infinite-width Gram matrix H-inf (both layers, the package's
  units): |r_k|^2 = sum_i (1 - eta lambda_i)^(2k) (v_i . y)^2, loss = |r|^2 / (2 n);
* Du et al.'s bound loss_0 (1 - eta lambda_0 / 2)^k, lambda_0 = lambda_min(H-inf).

At the end of training, against m = 100 ... 10000 (log-log, fitted slope; theory -1/2):
max_i |w_i(T) - w_i(0)| / |w_i(0)| (a maximum over m particles, which grows with m on
its own), its root mean square over the particles, the fraction of (particle, training
point) activation patterns flipped, and the relative change |H(T) - H(0)|_2 / |H(0)|_2
of the empirical Gram matrix.

    python experiments/linear_rate/run.py [--quick] [--plot-only] [--data DIR]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, train  # noqa: E402

N, DIM, LR, SEED = 100, 10, 5.0, 0
CURVES = (100, 1000, 10000)
WIDTHS = (100, 300, 1000, 3000, 10000)
STEPS, EVERY = 2000, 10
QUICK = {"widths": (100, 400), "curves": (100, 400), "steps": 200}
COLUMNS = ["kind", "m", "step", "train_loss", "max_relative_move", "rms_relative_move",
           "pattern_flips", "gram_change", "lambda_0", "lr", "n"]


def config(m, steps):
    """The NTK-regime GD run of width ``m`` (the data do not depend on m)."""
    return {"model": {"m": m, "activation": "relu", "bias": False},
            "scaling": {"regime": "ntk"},
            "init": {"a": "standard", "c": "sign", "tau": 1.0, "symmetric": True},
            "data": {"kind": "random_labels", "d": DIM, "n_train": N, "n_test": 100,
                     "input": "sphere"},
            "train": {"algorithm": "gd", "lr": LR, "steps": steps},
            "record": {"every": EVERY, "snapshot_every": steps},
            "run": {"seed": SEED}}


def theory_rows(steps):
    """The H-inf prediction and the linear-rate bound at every recorded step."""
    from meanfield import Config
    from meanfield.analysis import linear_rate_bound, predicted_residual
    from meanfield.data import make_dataset
    from meanfield.gram import h_inf
    from meanfield.state import seed_streams

    data = make_dataset(Config.from_dict(config(2, steps)), seed_streams(SEED).data)
    H = h_inf(data.x_train, bias=False, layers="both")
    lam0 = float(np.linalg.eigvalsh(H)[0])
    k = np.arange(0, steps + 1, EVERY)
    loss0 = float(data.y_train @ data.y_train) / (2 * N)
    curves = {"h_inf": predicted_residual(H, data.y_train, LR, k) / (2 * N),
              "bound": loss0 * linear_rate_bound(lam0, LR, N, k)}
    rows = [{"kind": kind, "m": 0, "step": int(s), "train_loss": float(v), "lambda_0": lam0,
             "lr": LR, "n": N} for kind, values in curves.items() for s, v in zip(k, values)]
    return rows, data.x_train


def compute(args):
    from meanfield.gram import gram_change, max_relative_move, pattern_flips

    widths, curves, steps = ((QUICK["widths"], QUICK["curves"], QUICK["steps"]) if args.quick
                             else (WIDTHS, CURVES, STEPS))
    rows, X = theory_rows(steps)
    for m in widths:
        out = train(config(m, steps), keep_every=steps)
        P0, P = out["particles"][0], out["particles"][-1]
        if m in curves:
            rows += [{"kind": "gd", "m": m, "step": int(s), "train_loss": float(v), "lr": LR,
                      "n": N} for s, v in zip(out["steps"], out["train_loss"])]
        rows.append({"kind": "end", "m": m, "step": steps,
                     "train_loss": float(out["train_loss"][-1]),
                     "max_relative_move": max_relative_move(P, P0),
                     "rms_relative_move": rms_relative_move(P, P0),
                     "pattern_flips": pattern_flips(P, P0, X),
                     "gram_change": gram_change(P, P0, X), "lr": LR, "n": N})
        print(f"m = {m}: final train loss {rows[-1]['train_loss']:.3g}, "
              f"max relative move {rows[-1]['max_relative_move']:.3g}, "
              f"pattern flips {rows[-1]['pattern_flips']:.3g}, "
              f"Gram change {rows[-1]['gram_change']:.3g}", flush=True)
    return rows, COLUMNS


def rms_relative_move(P, P0):
    """sqrt(mean_i |w_i(T) - w_i(0)|^2 / |w_i(0)|^2)."""
    return float(np.sqrt(np.mean(np.sum((P - P0) ** 2, axis=1) / np.sum(P0 ** 2, axis=1))))


def slope(x, y):
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def draw(table):
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for m, colour in zip(sorted(set(table.where({"kind": "gd"}).column("m"))),
                         ("tab:orange", "tab:green", "tab:blue")):
        run = table.where({"kind": "gd", "m": m})
        ax.semilogy(run.column("step"), run.column("train_loss"), color=colour, label=f"GD, m = {m}")
    pred, bound = table.where({"kind": "h_inf"}), table.where({"kind": "bound"})
    lam0 = pred.column("lambda_0")[0]
    ax.semilogy(pred.column("step"), pred.column("train_loss"), "k--",
                label=r"$H^\infty$: $\sum_i (1-\eta\lambda_i)^{2k}(v_i\cdot y)^2/2n$")
    ax.semilogy(bound.column("step"), bound.column("train_loss"), "k:",
                label=rf"bound $(1-\eta\lambda_0/2)^k$, $\lambda_0$ = {lam0:.3f}")
    ax.set_xlabel("step k")
    ax.set_ylabel("training loss")
    ax.set_title(f"NTK regime, n = {int(pred.column('n')[0])}, d = {DIM}, lr = {LR:g}",
                 fontsize=9)
    ax.legend(fontsize=7)
    end = table.where({"kind": "end"})
    m = end.column("m").astype(float)
    for name, marker in (("max_relative_move", "o-"), ("rms_relative_move", "^-"),
                         ("pattern_flips", "s-"), ("gram_change", "d-")):
        y = end.column(name).astype(float)
        bx.loglog(m, y, marker, label=f"{name.replace('_', ' ')} (slope {slope(m, y):.2f})")
    bx.loglog(m, end.column("rms_relative_move")[0] * (m / m[0]) ** -0.5, "k:",
              label=r"$m^{-1/2}$")
    bx.set_xlabel("m")
    bx.set_title("at the end of training", fontsize=9)
    bx.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("linear_rate", __doc__.splitlines()[0]), compute, draw))
