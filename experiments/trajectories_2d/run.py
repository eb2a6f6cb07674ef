"""Figure 1: particle paths in the plane, mean-field (alpha = 1) against lazy (alpha = 100).

The same 16 relu particles (symmetric init, tau = 0.5) learn a 3-neuron teacher
in d = 2 by the exact population gradient flow.  With alpha = 1 they travel to
the teacher's neurons; with alpha = 100 (lazy training) each moves O(1/alpha)
and the network follows its linearisation at the initialisation.

    python experiments/trajectories_2d/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_sweep_file  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICK = {"base": {"train": {"steps": 2000, "lr": 0.5},
                  "record": {"every": 100, "snapshot_every": 100}}}
COLUMNS = ["alpha", "kind", "particle", "time", "x", "y", "sign", "population_loss"]


def compute(args):
    """One row per particle and snapshot (kind = student), and one per teacher neuron."""
    from meanfield import open_run
    from meanfield.plotting import plane_positions

    p = run_sweep_file(HERE / "sweep.toml", args.work, QUICK if args.quick else None,
                       args.jobs)
    rows = []
    for i in range(len(p)):
        with open_run(p.path(i)) as run:
            pos = plane_positions(run.particles(slice(None)))
            sign = [int(s) for s in (run.particles(-1)[:, -1] >= 0) * 2 - 1]
            loss = run.observable("population_loss").value[-1]
            for k, t in enumerate(run.times):
                rows += [{"alpha": run.alpha, "kind": "student", "particle": j, "time": t,
                          "x": x, "y": y, "sign": sign[j], "population_loss": loss}
                         for j, (x, y) in enumerate(pos[k])]
            rows += [{"alpha": run.alpha, "kind": "teacher", "particle": j, "time": 0.0,
                      "x": x, "y": y, "sign": int(c), "population_loss": loss}
                     for j, ((x, y), c) in enumerate(zip(plane_positions(run.teacher),
                                                         run.teacher[:, -1]))]
    return rows, COLUMNS


def draw(table):
    """Two panels of :func:`meanfield.plotting.trajectories`, one per alpha."""
    import matplotlib.pyplot as plt
    import numpy as np

    from meanfield.plotting import trajectories

    alphas = np.unique(table.column("alpha"))
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.8 * len(alphas), 4.8),
                             constrained_layout=True, squeeze=False)
    for alpha, ax in zip(alphas, axes[0]):
        student = table.where({"alpha": alpha, "kind": "student"})
        teacher = table.where({"alpha": alpha, "kind": "teacher"})
        m = int(student.column("particle").max()) + 1
        xy = np.column_stack([student.column("x"), student.column("y")]).reshape(-1, m, 2)
        sign = student.column("sign")[:m]
        regime = "mean field, not lazy" if alpha <= 1 else "lazy"
        loss = student.column("population_loss")[0]
        trajectories(xy, sign, np.column_stack([teacher.column("x"), teacher.column("y")]),
                     ax=ax, title=f"alpha = {alpha:g} ({regime})\n"
                                  f"final population loss {loss:.1e}")
    return fig


if __name__ == "__main__":
    sys.exit(main(options("trajectories_2d", __doc__.splitlines()[0]), compute, draw))
