"""Growing networks: a relu network grown one neuron at a time until its duality gap certifies it.

Teacher-student in d = 2 (m0 = 3 relu neurons without bias, 40 training points, mean-field
scaling alpha = 1), weight decay lam.  ``train.algorithm = "grow"`` starts from m = 1 neuron
and runs GD (lr = 1) until the mean squared velocity is below 1e-8, then certifies: the
network is globally optimal for the lifted convex problem once the duality gap
J - D / alpha^2 >= J - inf J (exact in d = 2) is below 1e-3 lam; otherwise one neuron of
scale 0.3 is inserted along the polar's maximiser (at most 40).  Against it, fixed-width GD
from the same data at m = 2, 4, 8, 32 (the same lr, lam and initial scale tau = 0.1), each
snapshot certified the same way.  Left: the objective J and the certified lower bound
J - gap on inf J against the step, for lam = 1e-3; middle: the number of neurons; right:
the final width of the grown network and its final gap against lam.

    python experiments/growing_network/run.py [--quick] [--plot-only] [--work DIR] [--data DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import main, options, train  # noqa: E402

COLUMNS = ["run", "kind", "lam", "m", "step", "neurons", "objective", "lower_bound", "gap"]
LAMS = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
WIDTHS = [2, 4, 8, 32]
MAIN_LAM = 1e-3
SNAPSHOT = 250


def config(lam, steps, m=1, algorithm="grow"):
    return {"model": {"m": m}, "init": {"tau": 0.1},
            "data": {"d": 2, "n_train": 40, "n_test": 200, "teacher_m": 3},
            "train": {"algorithm": algorithm, "lr": 1.0, "steps": steps, "weight_decay": lam},
            "record": {"every": 50, "snapshot_every": SNAPSHOT},
            "grow": {"tolerance": 1e-8, "gap_tolerance": 1e-3 * lam, "max_neurons": 40,
                     "init_scale": 0.3}}


def grown(lam, steps):
    """Rows of one growing run: its snapshot observables."""
    from meanfield import simulate
    with simulate(config(lam, steps)) as run:
        obs = {name: run.observable(name).value
               for name in ("neurons", "objective", "dual_bound", "duality_gap")}
        steps_ = run.observable("neurons").step
    return [{"run": f"grow lam={lam:g}", "kind": "grow", "lam": lam, "m": 1, "step": int(k),
             "neurons": int(obs["neurons"][i]), "objective": obs["objective"][i],
             "lower_bound": obs["dual_bound"][i], "gap": obs["duality_gap"][i]}
            for i, k in enumerate(steps_)]


def fixed(m, lam, steps):
    """Rows of one fixed-width GD run, every snapshot certified."""
    from meanfield.config import as_config
    from meanfield.data import make_dataset
    from meanfield.optimality import Problem, certificate_of
    from meanfield.state import seed_streams

    cfg = as_config(config(lam, steps, m, "gd"))
    result = train(cfg, keep_every=SNAPSHOT)
    problem = Problem.from_config(cfg, make_dataset(cfg, seed_streams(cfg.run.seed).data))
    rows = []
    for k, P in zip(result["particle_steps"], result["particles"]):
        cert = certificate_of(problem, P)
        rows.append({"run": f"GD m={m}", "kind": "gd", "lam": lam, "m": m, "step": int(k),
                     "neurons": m, "objective": cert.objective, "lower_bound": cert.dual,
                     "gap": cert.gap})
    return rows


def compute(args):
    steps = 4000 if args.quick else 30000
    lams = [1e-3, 1e-2] if args.quick else LAMS
    widths = [2, 8] if args.quick else WIDTHS
    rows = []
    for lam in lams:
        rows += grown(lam, steps)
    for m in widths:
        rows += fixed(m, MAIN_LAM, steps)
    return rows, COLUMNS


def draw(table):
    """J and its lower bound (left), neurons (middle) against the step; final m vs lam (right)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.3), constrained_layout=True)
    runs = [r for r in dict.fromkeys(table.column("run"))
            if not r.startswith("grow") or r == f"grow lam={MAIN_LAM:g}"]
    for i, name in enumerate(runs):
        rows = table.where({"run": name})
        step = np.array(rows.column("step"))
        colour = "k" if name.startswith("grow") else f"C{i}"
        left.plot(step, rows.column("objective"), color=colour, label=name)
        left.plot(step, np.maximum(rows.column("lower_bound"), 1e-12), color=colour, ls="--",
                  lw=0.9)
        middle.step(step, rows.column("neurons"), where="post", color=colour, label=name)
    left.set(yscale="log", xlabel="step", ylabel="J (solid), certified lower bound J - gap "
             "(dashed)", title=f"objective and lower bound, lam = {MAIN_LAM:g}")
    middle.set(yscale="log", xlabel="step", ylabel="neurons m", title="network size")
    finals = table.where({"kind": "grow"})
    lams = sorted(set(finals.column("lam")))
    last = [finals.where({"lam": lam}).rows[-1] for lam in lams]
    right.plot(lams, [r["neurons"] for r in last], "ko-", label="final neurons")
    right.set(xscale="log", xlabel="weight decay lam", ylabel="final neurons m",
              title="grown width against lam")
    gap = right.twinx()
    gap.plot(lams, [r["gap"] / r["objective"] for r in last], "s--", color="tab:red")
    gap.set(yscale="log", ylabel="final gap / J")
    gap.yaxis.label.set_color("tab:red")
    for ax in (left, middle):
        ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    sys.exit(main(options("growing_network", __doc__.splitlines()[0]), compute, draw))
