"""Spurious minima: the fraction of GD runs that end certified globally optimal, against the width.

Teacher-student relu networks without bias (mean-field scaling, alpha = 1) trained by
full-batch GD with a small weight decay lam = 1e-3 from random inits, at fixed widths
m = m0, 2 m0, 4 m0, 16 m0, 64 m0: d = 2 with m0 = 4 (20 seeds, d2.toml) and d = 10 with
m0 = 6 (10 seeds, d10.toml).  Each final network is certified with
:func:`meanfield.optimality.certify` on its training set: the polar of the residuals against
the bound alpha * lam and the duality gap J - D / alpha^2 >= J - inf J.  A run counts as
optimal when its gap is at most ``TOLERANCE`` times its objective J.  In d = 2 the polar is
exact and the gap a certified bound; in d = 10 the polar is a lower bound (multi-start
ascent), so "optimal" there means that no violation was found.  Known result (Safran &
Shamir 2018): exact-width networks get stuck in spurious minima, wide ones do not.

Small runs are faster on one thread each (parallelism across runs with -j): the script
sets NUMBA_NUM_THREADS and OPENBLAS_NUM_THREADS to 1 unless they are set already.

    python experiments/spurious_minima/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
                                              [-j N]
"""

import os
import sys
from pathlib import Path

for _var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_sweep_file  # noqa: E402

HERE = Path(__file__).resolve().parent
SWEEPS = {"d2": [4, 16], "d10": [6, 24]}
"""Sweep file stem -> widths of the --quick version."""
TOLERANCE = 0.05
"""A run is optimal when gap <= TOLERANCE * J."""
COLUMNS = ["d", "m0", "m", "width_ratio", "replicate", "seed", "status", "polar", "bound",
           "gap", "objective", "relative_gap", "exact", "optimal"]


def quick(widths):
    return {"grid": {"model.m": widths, "train.steps": [1500],
                     "record.snapshot_every": [1500]},
            "seeds": {"count": 2}}


def compute(args):
    """One row per run: the certificate of its final network."""
    from meanfield import open_run
    from meanfield.optimality import certify

    rows = []
    for stem, widths in SWEEPS.items():
        p = run_sweep_file(HERE / f"{stem}.toml", args.work,
                           quick(widths) if args.quick else None, args.jobs)
        for i, point in enumerate(p.points):
            with open_run(p.path(i)) as run:
                cfg, status = run.config, run.status
                cert = certify(run)
            rows.append({"d": cfg.data.d, "m0": cfg.data.teacher_m, "m": cfg.model.m,
                         "width_ratio": cfg.model.m // cfg.data.teacher_m,
                         "replicate": point.replicate, "seed": point.seed, "status": status,
                         "polar": cert.polar, "bound": cert.bound, "gap": cert.gap,
                         "objective": cert.objective,
                         "relative_gap": cert.gap / cert.objective, "exact": cert.exact,
                         "optimal": bool(cert.gap <= TOLERANCE * cert.objective)})
    return rows, COLUMNS


def draw(table):
    """Fraction optimal against m / m0 (left) and every run's relative gap (right)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    for k, d in enumerate(sorted(set(table.column("d")))):
        runs = table.where({"d": d})
        ratio = np.array(runs.column("width_ratio"))
        ratios = sorted(set(ratio))
        optimal = np.array(runs.column("optimal"), dtype=bool)
        seeds = len(set(runs.column("replicate")))
        how = "certified" if all(runs.column("exact")) else "no violation found"
        left.plot(ratios, [optimal[ratio == r].mean() for r in ratios], "o-", color=f"C{k}",
                  label=f"d = {d}, m0 = {runs.column('m0')[0]}, {seeds} seeds ({how})")
        gap = np.array(runs.column("relative_gap"))
        jitter = np.exp(np.random.default_rng(0).uniform(-0.12, 0.12, len(gap))) * (1 + 0.1 * k)
        right.scatter(ratio * jitter, np.maximum(gap, 1e-12), s=12, alpha=0.6, color=f"C{k}",
                      label=f"d = {d}")
        right.plot(ratios, [np.median(gap[ratio == r]) for r in ratios], "-", color=f"C{k}")
    left.set(xscale="log", xlabel="width m / m0", ylabel=f"fraction with gap <= {TOLERANCE:g} J",
             ylim=(-0.05, 1.05), title="runs ending globally optimal")
    right.axhline(TOLERANCE, color="gray", lw=0.8, ls="--")
    right.set(xscale="log", yscale="log", xlabel="width m / m0",
              ylabel="duality gap / J at the end",
              title="final relative duality gap (line: median)")
    for ax in (left, right):
        ax.set_xticks(ratios, [str(r) for r in ratios])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("spurious_minima", __doc__.splitlines()[0]), compute, draw))
