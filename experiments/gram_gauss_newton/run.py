"""Gram-Gauss-Newton against GD on an over-parameterised regression: quadratic vs linear.

After Cai, Gao, Hou, Chen, Wang, He, Zhang & Wang (2019), "A Gram-Gauss-Newton method
learning over-parameterized deep neural networks for regression problems".  n = 100
points uniform on the sphere in d = 10 labelled by a relu teacher (3 neurons, mean
output); a relu student without bias, m = 400 (m D = 4400 parameters), NTK
parameterisation from a symmetric init (f_0 = 0).  Three methods from the same
particles:

* GD, lr = 5 (about half the stability limit 2 n / lambda_max(H));
* GGN, full batch, lr = 1, damping 0: P <- P - J^T (J J^T)^{-1} (f - y);
* GGN on minibatches of b = 25 (drawn without replacement), lr = 1, damping 0.

Training loss against iterations and against time: the CPU seconds of the process on
one thread (compiled code loaded first), which is the wall-clock time of the run alone
on one core, whatever else shares the machine; and log(loss_{k+1}) against log(loss_k) between consecutive recorded
rows, with the fitted slope (2: quadratic convergence; 1: linear) over the rows above
the round-off floor.

    python experiments/gram_gauss_newton/run.py [--quick] [--plot-only] [--data DIR]
"""

import os
import sys
import time
from pathlib import Path

for _key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_key, "1")   # one core: the times are not those of a busy neighbour

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options  # noqa: E402

M, N, DIM, SEED = 400, 100, 10, 0
FLOOR = 1e-29
"""Losses below this are at round-off (about 1e-32: residuals of 1e-16 |y|): left out of
the fits."""
METHODS = {  # name: (train table, steps, record every)
    "GD": ({"algorithm": "gd", "lr": 5.0}, 3000, 10),
    "GGN full batch": ({"algorithm": "ggn", "lr": 1.0, "batch_size": N, "damping": 0.0},
                       10, 1),
    "GGN b = 25": ({"algorithm": "ggn", "lr": 1.0, "batch_size": 25, "damping": 0.0}, 200, 1),
}
QUICK_STEPS = {"GD": 300, "GGN full batch": 6, "GGN b = 25": 20}
COLUMNS = ["method", "step", "seconds", "train_loss", "slope"]


def config(train, steps, every):
    return {"model": {"m": M, "activation": "relu", "bias": False},
            "scaling": {"regime": "ntk"},
            "init": {"a": "standard", "c": "sign", "tau": 1.0, "symmetric": True},
            "data": {"kind": "teacher", "d": DIM, "n_train": N, "n_test": 100,
                     "input": "sphere"},
            "train": {**train, "steps": steps},
            "record": {"every": every, "snapshot_every": steps},
            "run": {"seed": SEED}}


def timed(cfg):
    """(steps, seconds, train_loss): a run advanced ``record.every`` steps at a time, each
    recorded row stamped with the CPU time spent before its step."""
    from meanfield import algorithms
    from meanfield.config import as_config
    from meanfield.data import make_dataset
    from meanfield.observables import recorded_names
    from meanfield.state import seed_streams

    cfg = as_config(cfg)
    algorithm = algorithms.for_config(cfg)
    streams = seed_streams(cfg.run.seed)
    state = algorithm.init(cfg, make_dataset(cfg, streams.data).validated(cfg), streams)
    column = recorded_names(state.problem).index("train_loss")
    steps, seconds, loss, spent = [], [], [], 0.0
    while True:
        t0 = time.process_time()
        state = algorithm.advance(state, min(cfg.record.every, cfg.train.steps - state.step))
        elapsed = time.process_time() - t0
        for k, row in zip(state.records.steps, state.records.values):
            steps.append(int(k))
            seconds.append(spent + (elapsed if k == state.step else 0.0))
            loss.append(float(row[column]))
        spent += elapsed
        if state.step == cfg.train.steps or state.diverged:
            return np.array(steps), np.array(seconds), np.array(loss)


def loglog_slope(loss):
    """Fitted slope of log(loss_{k+1}) against log(loss_k) over rows above :data:`FLOOR`."""
    keep = loss[loss > FLOOR]
    if len(keep) < 3:
        return float("nan")
    return float(np.polyfit(np.log(keep[:-1]), np.log(keep[1:]), 1)[0])


def compute(args):
    rows = []
    for name, (train, steps, every) in METHODS.items():
        steps = QUICK_STEPS[name] if args.quick else steps
        timed(config(train, 2, 1))                     # load the compiled kernels first
        k, seconds, loss = timed(config(train, steps, every))
        slope = loglog_slope(loss)
        rows += [{"method": name, "step": int(s), "seconds": float(t), "train_loss": float(v),
                  "slope": slope} for s, t, v in zip(k, seconds, loss)]
        print(f"{name}: loss {loss[0]:.3g} -> {loss[-1]:.3g} in {k[-1]} steps, "
              f"{seconds[-1]:.3g} s; log-log slope {slope:.3f}", flush=True)
    return rows, COLUMNS


def draw(table):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    for name, colour in zip(METHODS, ("tab:blue", "tab:red", "tab:orange")):
        run = table.where({"method": name})
        if len(run) == 0:
            continue
        loss = run.column("train_loss").astype(float)
        label = f"{name} (slope {run.column('slope')[0]:.2f})"
        axes[0].semilogy(run.column("step"), loss, ".-", color=colour, ms=3, label=name)
        axes[1].loglog(np.maximum(run.column("seconds").astype(float), 1e-5), loss, ".-",
                       color=colour, ms=3, label=name)
        keep = loss[loss > FLOOR]
        axes[2].loglog(keep[:-1], keep[1:], "o", color=colour, ms=3, label=label)
    lo, hi = FLOOR, 1.0
    axes[2].loglog([lo, hi], [lo, hi], "k:", lw=0.8, label="slope 1")
    axes[2].loglog([1e-15, hi], [1e-30, hi], "k--", lw=0.8, label="slope 2")
    axes[0].set_xscale("symlog", linthresh=10)
    for ax, x in zip(axes, ("iteration", "CPU seconds, one thread (= wall clock alone)",
                            r"loss$_k$ (consecutive recorded rows)")):
        ax.set_xlabel(x)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("training loss")
    axes[2].set_ylabel(r"loss$_{k+1}$")
    fig.suptitle(f"relu, m = {M}, n = {N}, d = {DIM}, NTK parameterisation", fontsize=9)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("gram_gauss_newton", __doc__.splitlines()[0]), compute, draw))
