"""Figure 3: population loss at convergence against the width m, relu and sigmoid teachers.

As in Chizat & Bach (2018).  Students of m = 2 ... 512 neurons learn a
teacher of m0 = 5 neurons in d = 100 (3 seeds each): the particle gradient
flow (relu: exact population flow; sigmoid: SGD on fresh samples) against the
convex baseline, the same model with the m hidden units frozen at random
(uniform on the sphere, the teacher's scale) and only the output weights
fitted (:func:`meanfield.baseline.convex_baseline`, least squares on 4000
fresh points, loss on 4000 others).

    python experiments/loss_vs_m/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_sweep_file  # noqa: E402

HERE = Path(__file__).resolve().parent
SWEEPS = ("relu", "sigmoid")
QUICK = {"grid": {"model.m": [2, 8, 32], "train.steps": [200],
                  "record.snapshot_every": [200]},
         "seeds": {"count": 2}}
BASELINE_POINTS = 4000
"""Training and test points of the convex baseline."""
COLUMNS = ["activation", "method", "m", "m0", "replicate", "seed", "status",
           "population_loss", "estimate"]


def baseline(config, seed):
    """Test loss of the random-features baseline with M = m units, for the run's teacher."""
    import numpy as np

    from meanfield.baseline import convex_baseline
    from meanfield.data import make_dataset
    from meanfield.state import seed_streams

    cfg = config.with_overrides([f"data.n_train={BASELINE_POINTS}",
                                 f"data.n_test={BASELINE_POINTS}",
                                 'init.a="sphere"', "init.tau=1.0"])
    data = make_dataset(cfg, seed_streams(seed)[0])      # the run's teacher (same stream)
    _, test, _ = convex_baseline(cfg, data, M=cfg.model.m, rng=np.random.default_rng(seed))
    return test


def compute(args):
    """One row per run (method = gradient flow) and one per baseline fit (method = convex)."""
    from meanfield import open_run

    rows = []
    for name in SWEEPS:
        p = run_sweep_file(HERE / f"{name}.toml", args.work, QUICK if args.quick else None,
                           args.jobs)
        for i, point in enumerate(p.points):
            with open_run(p.path(i)) as run:
                cfg = run.config
                exact = cfg.train.algorithm == "population"
                pop = run.observable("population_loss" if exact else "population_loss_mc")
                estimate = "exact" if exact else "monte-carlo"
                status = run.status
                loss = pop.value[-1]
            common = {"activation": name, "m": cfg.model.m, "m0": cfg.data.teacher_m,
                      "replicate": point.replicate, "seed": point.seed}
            rows.append({**common, "method": "gradient flow", "status": status,
                         "population_loss": loss, "estimate": estimate})
            rows.append({**common, "method": "convex baseline", "status": "completed",
                         "population_loss": baseline(cfg, point.seed),
                         "estimate": f"test set of {BASELINE_POINTS}"})
    return rows, COLUMNS


def draw(table):
    """One :func:`meanfield.plotting.loss_vs_m` panel per activation."""
    import matplotlib.pyplot as plt

    from meanfield.plotting import loss_vs_m

    fig, axes = plt.subplots(1, len(SWEEPS), figsize=(5.5 * len(SWEEPS), 4.5),
                             constrained_layout=True)
    for ax, name in zip(axes, SWEEPS):
        runs = table.where({"activation": name})
        flow = runs.where({"method": "gradient flow", "status": "completed"})
        convex = runs.where({"method": "convex baseline"})
        how = "exact population flow" if name == "relu" else "SGD on fresh samples"
        loss_vs_m(flow.column("m"), flow.column("population_loss"),
                  baseline=(convex.column("m"), convex.column("population_loss")),
                  m0=runs.column("m0")[0], ax=ax, label=f"particle gradient flow ({how})")
        ax.set_title(f"{name} teacher, d = 100, {len(set(flow.column('replicate')))} seeds")
    return fig


if __name__ == "__main__":
    sys.exit(main(options("loss_vs_m", __doc__.splitlines()[0]), compute, draw))
