"""Figure 4: distance of m-particle dynamics to a large-m reference, against m.

Propagation of chaos: the empirical measure of m particles following the
gradient flow stays within O(m^-1/2) of its mean-field limit on bounded time
intervals.  For m = 8 ... 512 and a reference of M = 2048 particles (same
seed, so the same teacher; the m input weights a_i are the reference's first
m, their c_i are drawn apart; exact population flow, 5 seeds), at
t = 0, 10 and 40: the sliced Wasserstein-2 distance between the particle
measures (parameter space) and the RMS difference of the two networks'
outputs on 1000 test inputs (function space)
(:func:`meanfield.analysis.distance_to_reference`), with fitted rates.

    python experiments/mean_field_limit/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_sweep_file  # noqa: E402

HERE = Path(__file__).resolve().parent
TIMES = (0.0, 10.0, 40.0)
QUICK = {"grid": {"model.m": [8, 32, 256], "train.steps": [50]}, "seeds": {"count": 2}}
QUICK_TIMES = (0.0, 10.0)
COLUMNS = ["m", "reference_m", "replicate", "time", "w2", "w2_method", "function"]


def compute(args):
    """One row per (m, replicate, time): distances to the replicate's largest run."""
    from meanfield.analysis import distance_to_reference

    p = run_sweep_file(HERE / "sweep.toml", args.work, QUICK if args.quick else None,
                       args.jobs)
    widths = {i: p.config(i).model.m for i in range(len(p))}
    reference_m = max(widths.values())
    reference = {pt.replicate: p.path(pt.index) for pt in p.points
                 if widths[pt.index] == reference_m}
    times = QUICK_TIMES if args.quick else TIMES
    rows = []
    for pt in p.points:
        m = widths[pt.index]
        if m == reference_m:
            continue
        dist = distance_to_reference(p.path(pt.index), reference[pt.replicate], times=times,
                                     method="sliced")
        rows += [{"m": m, "reference_m": reference_m, "replicate": pt.replicate, "time": t,
                  "w2": w, "w2_method": dist.method, "function": f}
                 for t, w, f in zip(dist.time, dist.parameter, dist.function)]
    return rows, COLUMNS


def draw(table):
    """Parameter-space and function-space panels of :func:`meanfield.plotting.distance_vs_m`."""
    import matplotlib.pyplot as plt

    from meanfield.plotting import distance_vs_m

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    m, t = table.column("m"), table.column("time")
    ref = table.column("reference_m")[0]
    method = table.column("w2_method")[0]
    distance_vs_m(m, table.column("w2"), t, ax=axes[0],
                  ylabel=f"{method} W2 between particle measures")
    distance_vs_m(m, table.column("function"), t, ax=axes[1],
                  ylabel=r"RMS$_x$ $|f_m(x) - f_{ref}(x)|$ on the test set")
    axes[0].set_title(f"parameter space, reference M = {ref}")
    axes[1].set_title(f"function space, reference M = {ref}")
    return fig


if __name__ == "__main__":
    sys.exit(main(options("mean_field_limit", __doc__.splitlines()[0]), compute, draw))
