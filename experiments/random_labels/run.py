"""Fitting corrupted labels: time to fit and test loss grow with p, as y^T (H-inf)^-1 y / n.

After Zhang, Bengio, Hardt, Recht & Vinyals (ICLR 2017) and Arora, Du, Hu, Li & Wang
(ICML 2019).  n = 100 points uniform on the sphere in d = 10 labelled by a relu teacher
of 8 unit neurons (summed, alternating signs; label standard deviation about 0.6), a
fraction p of the training labels replaced by labels of the shuffled training set
(``data.label_corruption = p``; the test labels stay clean).  A relu network without
bias, m = 1000, NTK parameterisation from a symmetric init, both layers trained by
full-batch GD with lr = 5.  For each p:

* the first step at which the training loss is below 1e-3 (or, marked, the best loss
  reached within the step budget);
* the final test loss, against the chance level (predicting the mean training label);
* Arora et al.'s complexity y^T (H-inf)^-1 y / n on the same training data (H-inf of
  both layers, the kernel that drives this GD; its square root times sqrt(2) is their
  generalisation bound),

and the correlation (Pearson, over p) between the steps to fit and the complexity.

    python experiments/random_labels/run.py [--quick] [--plot-only] [--data DIR]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, train  # noqa: E402

N, M, DIM, LR, SEED = 100, 1000, 10, 5.0, 0
TARGET = 1e-3
CORRUPTION = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
STEPS, EVERY = 4000, 10
QUICK = {"corruption": (0.0, 1.0), "steps": 300, "m": 200}
COLUMNS = ["p", "m", "steps_to_target", "reached", "best_train_loss", "final_train_loss",
           "final_test_loss", "chance_test_loss", "complexity", "correlation"]


def config(p, m, steps):
    return {"model": {"m": m, "activation": "relu", "bias": False},
            "scaling": {"regime": "ntk"},
            "init": {"a": "standard", "c": "sign", "tau": 1.0, "symmetric": True},
            "data": {"kind": "teacher", "teacher_m": 8, "teacher_output": "sum", "d": DIM,
                     "n_train": N, "n_test": N, "input": "sphere", "label_corruption": p},
            "train": {"algorithm": "gd", "lr": LR, "steps": steps},
            "record": {"every": EVERY, "snapshot_every": steps},
            "run": {"seed": SEED}}


def row(p, m, steps):
    """One run's numbers (the dataset rebuilt from the config, exactly as the run's)."""
    from meanfield import Config
    from meanfield.data import make_dataset
    from meanfield.gram import h_inf
    from meanfield.state import seed_streams

    cfg = config(p, m, steps)
    data = make_dataset(Config.from_dict(cfg), seed_streams(SEED).data)
    y = data.y_train
    complexity = float(y @ np.linalg.solve(h_inf(data.x_train, layers="both"), y)) / N
    out = train(cfg)
    loss = out["train_loss"]
    hit = np.flatnonzero(loss <= TARGET)
    return {"p": p, "m": m, "steps_to_target": int(out["steps"][hit[0]] if len(hit) else steps),
            "reached": bool(len(hit)), "best_train_loss": float(loss.min()),
            "final_train_loss": float(loss[-1]), "final_test_loss": float(out["test_loss"][-1]),
            "chance_test_loss": float(np.mean((data.y_test - y.mean()) ** 2) / 2),
            "complexity": complexity}


def compute(args):
    ps, steps, m = ((QUICK["corruption"], QUICK["steps"], QUICK["m"]) if args.quick
                    else (CORRUPTION, STEPS, M))
    rows = []
    for p in ps:
        rows.append(row(p, m, steps))
        r = rows[-1]
        print(f"p = {p}: {'' if r['reached'] else 'not reached, best '}"
              f"{r['steps_to_target'] if r['reached'] else r['best_train_loss']:.4g} "
              f"steps to {TARGET:g}; test loss {r['final_test_loss']:.3g} "
              f"(chance {r['chance_test_loss']:.3g}); complexity {r['complexity']:.3g}",
              flush=True)
    corr = float(np.corrcoef([r["steps_to_target"] for r in rows],
                             [r["complexity"] for r in rows])[0, 1])
    print(f"correlation(steps to fit, complexity) = {corr:.3f}")
    return [{**r, "correlation": corr} for r in rows], COLUMNS


def draw(table):
    import matplotlib.pyplot as plt

    p = table.column("p").astype(float)
    reached = table.column("reached").astype(bool)
    steps = table.column("steps_to_target").astype(float)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax.plot(p, steps, "-", color="tab:blue")
    ax.plot(p[reached], steps[reached], "o", color="tab:blue", label=f"steps to loss {TARGET:g}")
    ax.plot(p[~reached], steps[~reached], "x", color="tab:blue", ms=9,
            label="not reached (step budget)")
    ax.set_xlabel("label corruption p")
    ax.set_ylabel("GD steps to fit", color="tab:blue")
    cx = ax.twinx()
    cx.plot(p, table.column("complexity"), "s--", color="tab:red")
    cx.set_ylabel(r"$y^\top (H^\infty)^{-1} y / n$", color="tab:red")
    ax.set_title(f"correlation {table.column('correlation')[0]:.3f}, "
                 f"m = {int(table.column('m')[0])}, n = {N}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    bx.plot(p, table.column("final_test_loss"), "o-", label="test loss at the end")
    bx.plot(p, table.column("chance_test_loss"), "k:", label="chance (mean label)")
    bx.set_xlabel("label corruption p")
    bx.set_ylabel("test loss (clean labels)")
    bx.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("random_labels", __doc__.splitlines()[0]), compute, draw))
