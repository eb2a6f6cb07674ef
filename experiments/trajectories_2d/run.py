"""Particle paths in the plane: init scale tau = 0.2 (not lazy) against tau = 2 (lazy).

Top row, as published (Chizat, Oyallon & Bach 2019, figure 1, the authors'
``illustration.jl``): d = 2, a teacher ``sum_j s_j relu(t_j . x)`` of m0 = 3
unit neurons with random signs, 15 training (20 test) points on the unit
circle, m = 16 relu particles without bias, GD with step 0.005 for 10^5 steps
at scaling 1 (meanfield: alpha = m = 16, lr = m * step = 0.08), from unit
rows a with c ~ U(0, 1), symmetrised, then scaled by tau.  Particles are drawn
as |c| a, red for c > 0 and blue for c < 0 at the end, at 100 log-spaced
steps as published; the teacher's neurons t_j are arrows, the unit circle
dotted.

Bottom row, this package's own parameterisation (not published): the same
picture for the exact population gradient flow, Gaussian inputs, the teacher
the mean of its neurons with alternating signs, tau = 0.5 and alpha = 1
(mean field) against alpha = 100 (lazy).

    python experiments/trajectories_2d/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, run_many  # noqa: E402

M, STEP = 16, 0.005
PUBLISHED_TAUS = (0.2, 2.0)
OWN_ALPHAS = (1.0, 100.0)
STEPS, OWN_STEPS, KEEP, POINTS = 100_000, 20_000, 100, 100
QUICK = {"steps": 2000, "own_steps": 1000}
COLUMNS = ["panel", "tau", "alpha", "kind", "particle", "step", "x", "y", "sign",
           "final_train_loss", "final_population_loss"]


def published_config(tau, steps):
    """illustration.jl at init scale tau."""
    return {"model": {"m": M, "activation": "relu", "bias": False},
            "scaling": {"alpha": float(M)},
            "init": {"a": "sphere", "c": "uniform", "tau": tau, "symmetric": True},
            "data": {"kind": "teacher", "d": 2, "input": "sphere", "n_train": 15, "n_test": 20,
                     "teacher_m": 3, "teacher_output": "sum", "teacher_signs": "random"},
            "train": {"algorithm": "gd", "lr": M * STEP, "steps": steps},
            "record": {"every": 100}, "run": {"seed": 1}}


def own_config(alpha, steps):
    """This package's mean-field / lazy picture: population flow at alpha."""
    return {"model": {"m": M, "activation": "relu", "bias": False},
            "scaling": {"alpha": alpha},
            "init": {"tau": 0.5, "symmetric": True},
            "data": {"kind": "teacher", "d": 2, "input": "gaussian", "teacher_m": 3},
            "train": {"algorithm": "population", "lr": 0.05, "steps": steps},
            "record": {"every": 100}, "run": {"seed": 3}}


def summarise(result):
    """Particles at ~100 log-spaced kept steps, the teacher, the final loss."""
    import numpy as np
    kept = result["particle_steps"]
    index = np.unique(np.searchsorted(kept, np.geomspace(1, kept[-1], POINTS)))
    index = np.unique(np.concatenate([[0], index, [len(kept) - 1]]))
    return {"steps": kept[index].tolist(), "particles": result["particles"][index].tolist(),
            "teacher": result["teacher"].tolist(),
            "final_train_loss": float(result["train_loss"][-1]),
            "final_population_loss": float(result["population_loss"][-1])}


def _losses(out):
    return {k: out[k] for k in ("final_train_loss", "final_population_loss")}


def _rows(panel, tau, alpha, out):
    import numpy as np
    from meanfield.plotting import plane_positions
    P = np.array(out["particles"])
    xy, sign = plane_positions(P), np.where(P[-1, :, -1] >= 0, 1, -1)
    rows = [{"panel": panel, "tau": tau, "alpha": alpha, "kind": "student", "particle": j,
             "step": step, "x": x, "y": y, "sign": int(sign[j]), **_losses(out)}
            for step, frame in zip(out["steps"], xy) for j, (x, y) in enumerate(frame)]
    teacher = np.array(out["teacher"])
    return rows + [{"panel": panel, "tau": tau, "alpha": alpha, "kind": "teacher",
                    "particle": j, "step": 0, "x": t[0], "y": t[1], "sign": int(np.sign(t[-1])),
                    **_losses(out)} for j, t in enumerate(teacher)]


def compute(args):
    """One row per particle and kept step, and one per teacher neuron, for each panel."""
    steps, own_steps = ((QUICK["steps"], QUICK["own_steps"]) if args.quick
                        else (STEPS, OWN_STEPS))
    configs = {**{f"published_tau{tau:g}": published_config(tau, steps)
                  for tau in PUBLISHED_TAUS},
               **{f"own_alpha{alpha:g}": own_config(alpha, own_steps) for alpha in OWN_ALPHAS}}
    done = run_many(configs, summarise, args.work / "runs", args.jobs, keep_every=KEEP,
                    collect=args.collect)
    rows = []
    for key, cfg in configs.items():
        if key not in done:
            continue
        panel = "published" if key.startswith("published") else "own"
        rows += _rows(panel, cfg["init"]["tau"], cfg["scaling"]["alpha"], done[key])
    return rows, COLUMNS


def _panel(ax, student, teacher, title):
    """Paths of |c| a, end points, teacher arrows, unit circle (illustration.jl's picture)."""
    import numpy as np
    m = int(student.column("particle").max()) + 1
    xy = np.column_stack([student.column("x"), student.column("y")]).reshape(-1, m, 2)
    sign = student.column("sign")[:m]
    theta = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(theta), np.sin(theta), ":", color="k", lw=1)
    for (x, y), s in zip(np.column_stack([teacher.column("x"), teacher.column("y")]),
                         teacher.column("sign")):
        ax.arrow(0, 0, x, y, head_width=0.06, length_includes_head=True,
                 facecolor="C3" if s > 0 else "C0")
    for j in range(m):
        colour = "C3" if sign[j] > 0 else "C0"
        ax.plot(xy[:, j, 0], xy[:, j, 1], color=colour, lw=1)
        ax.scatter(xy[-1, j, 0], xy[-1, j, 1], 30, color=colour)
    bound = max(np.abs(xy).max() * 1.1, 1.1)
    ax.set(xlim=(-bound, bound), ylim=(-bound, bound), aspect="equal", title=title)
    ax.title.set_fontsize(9)
    ax.axis("off")


def draw(table):
    """Top: tau = 0.2 and 2 as published; bottom: alpha = 1 and 100 (own parameterisation)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(9, 9), constrained_layout=True)
    for ax, tau in zip(axes[0], np.unique(table.where({"panel": "published"}).column("tau"))):
        runs = table.where({"panel": "published", "tau": tau})
        student = runs.where({"kind": "student"})
        regime = "not lazy" if tau < 1 else "lazy"
        _panel(ax, student, runs.where({"kind": "teacher"}),
               f"published setting, tau = {tau:g} ({regime}), "
               f"{int(student.column('step').max())} GD steps\n"
               f"final train loss {student.column('final_train_loss')[0]:.1e}")
    own = table.where({"panel": "own"})
    for ax, alpha in zip(axes[1], np.unique(own.column("alpha"))):
        runs = own.where({"alpha": alpha})
        student = runs.where({"kind": "student"})
        regime = "mean field" if alpha <= 1 else "lazy"
        _panel(ax, student, runs.where({"kind": "teacher"}),
               f"own parameterisation: population flow, tau = 0.5, alpha = {alpha:g} "
               f"({regime})\nfinal population loss "
               f"{student.column('final_population_loss')[0]:.1e}")
    return fig


if __name__ == "__main__":
    sys.exit(main(options("trajectories_2d", __doc__.splitlines()[0]), compute, draw))
