"""Test loss against tau in this package's own parameterisation (extra panels of loss_vs_scale).

After Chizat, Oyallon & Bach (2019).  A relu student of m = 50 neurons
(no bias, symmetric init scaled by tau) learns a 3-neuron teacher in d = 100
from 1000 points on the sphere by 10^4 steps of GD with the published step
min(10, 0.1 / tau^2): test loss at the end and best during training, red
crosses where training had not converged (final training loss above 1 % of
the initial one).  Second panel: the under-parameterised case, m = 10 trained
by SGD on fresh samples, exact population loss.  Third panel: laziness
diagnostics of the GD runs against alpha = tau^2 (the equivalent output scale).
This package's defaults, not the published setting (run.py): the teacher is the
mean of its neurons with alternating signs and a ~ N(0, I/d).

    python experiments/loss_vs_scale/own.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_sweep_file  # noqa: E402

HERE = Path(__file__).resolve().parent
SWEEPS = ("gd_small_tau", "gd_large_tau", "sgd_small_tau", "sgd_large_tau")
QUICK = {"gd_small_tau": {"init.tau": [0.01, 0.0316228]},
         "gd_large_tau": {"scaling.alpha": [0.1, 10.0]},
         "sgd_small_tau": {"init.tau": [0.01]},
         "sgd_large_tau": {"scaling.alpha": [10.0]}}
QUICK_STEPS = {"train.steps": [300], "record.snapshot_every": [100]}
CONVERGED = 1e-2
"""A run converged if its final training loss (population loss for SGD) is below
CONVERGED times the initial one."""
OBSERVABLES = ("train_loss", "test_loss", "population_loss", "displacement", "tangent_gap",
               "ntk_change")
COLUMNS = ["algorithm", "m", "tau", "alpha_equivalent", "lr", "steps", "status",
           "start_train_loss", "start_population_loss",
           *(f"final_{name}" for name in OBSERVABLES), "best_test_loss", "best_population_loss"]


def compute(args):
    """One row per run: tau (init.tau * sqrt(alpha)), losses, laziness diagnostics."""
    import math

    from meanfield import open_run

    rows = []
    for name in SWEEPS:
        quick = {"grid": {**QUICK[name], **QUICK_STEPS}} if args.quick else None
        p = run_sweep_file(HERE / f"{name}.toml", args.work, quick, args.jobs)
        for i in range(len(p)):
            with open_run(p.path(i)) as run:
                cfg = run.config
                tau = cfg.init.tau * math.sqrt(run.alpha)
                row = {"algorithm": cfg.train.algorithm, "m": cfg.model.m, "tau": tau,
                       "alpha_equivalent": tau * tau, "lr": cfg.train.lr,
                       "steps": cfg.train.steps, "status": run.status}
                series = {n: run.observable(n).value for n in OBSERVABLES}
                row["start_train_loss"] = series["train_loss"][0]
                row["start_population_loss"] = series["population_loss"][0]
                row.update({f"final_{n}": v[-1] for n, v in series.items()})
                row["best_test_loss"] = series["test_loss"].min()
                row["best_population_loss"] = series["population_loss"].min()
                rows.append(row)
    return rows, COLUMNS


def draw(table):
    """GD and SGD panels (:func:`loss_vs_scale`), laziness panel (:func:`laziness_vs_alpha`)."""
    import matplotlib.pyplot as plt

    from meanfield.plotting import laziness_vs_alpha, loss_vs_scale

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
    gd, sgd = table.where({"algorithm": "gd"}), table.where({"algorithm": "sgd"})
    for ax, runs, loss, objective, what in (
            (axes[0], gd, "test_loss", "train_loss", "GD on 1000 samples"),
            (axes[1], sgd, "population_loss", "population_loss", "SGD on fresh samples")):
        converged = (runs.column(f"final_{objective}")
                     < CONVERGED * runs.column(f"start_{objective}"))
        loss_vs_scale(runs.column("tau"), runs.column(f"final_{loss}"),
                      runs.column(f"best_{loss}"), converged, ax=ax,
                      ylabel=loss.replace("_", " "))
        ax.set_title(f"{what}, m = {runs.column('m')[0]}, "
                     f"{runs.column('steps')[0]} steps")
    laziness_vs_alpha(gd.column("alpha_equivalent"),
                      {"relative displacement": gd.column("final_displacement"),
                       "tangent gap |f - Tf|": gd.column("final_tangent_gap"),
                       "NTK change": gd.column("final_ntk_change")},
                      ax=axes[2], xlabel=r"equivalent output scale $\alpha = \tau^2$")
    axes[2].set_title("GD runs: laziness at the end of training")
    return fig


if __name__ == "__main__":
    sys.exit(main(options("loss_vs_scale_own", __doc__.splitlines()[0],
                             folder="loss_vs_scale"), compute, draw))
