# %% [markdown]
# # A tour of meanfield
#
# A two-layer network $f(x) = \frac{\alpha}{m} \sum_i c_i\, s(a_i \cdot x)$ trained by
# gradient descent is a system of m interacting particles $w_i = (a_i, c_i)$.  This
# notebook runs a few small simulations, opens them with `open_run`, plots them, compares
# the mean-field ($\alpha = 1$) and lazy (large $\alpha$) regimes, and measures how the
# loss at convergence and the distance to the mean-field limit depend on the width m.  It
# runs in well under a minute, in Jupyter (open it with jupytext) or as a script:
#
#     python experiments/tour.py [--out DIR]
#
# Figures are saved in DIR (default: a new temporary folder).

# %%
import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from meanfield import Config, open_run, simulate
from meanfield.analysis import convergence, convergence_vs_m, distance_to_reference, load_table
from meanfield.plotting import (distance_vs_m, laziness_vs_alpha, loss_curves, loss_vs_m,
                                particle_trajectories)
from meanfield.sweep import plan, run_local

parser = argparse.ArgumentParser(description="A tour of meanfield (small runs, < 1 minute).")
parser.add_argument("--out", type=Path, help="folder for the runs and figures")
args, _ = parser.parse_known_args()          # Jupyter adds its own arguments
OUT = args.out or Path(tempfile.mkdtemp(prefix="meanfield-tour-"))
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Save a figure into OUT (and leave it for Jupyter to show)."""
    fig.savefig(OUT / name, dpi=110)
    print(f"saved {OUT / name}")
    return fig


# %% [markdown]
# ## One run: simulate, store, open
#
# A run is described by a `Config` (the same tables as a TOML file).  Here: 32 relu
# particles in d = 2 learn a teacher of 3 neurons by the exact population gradient flow,
# from a small initialisation, in the mean-field regime.

# %%
config = Config.from_dict({
    "model": {"m": 32, "activation": "relu"},
    "scaling": {"regime": "mean_field"},
    "init": {"tau": 0.1},
    "data": {"kind": "teacher", "d": 2, "teacher_m": 3},
    "train": {"algorithm": "population", "lr": 0.2, "steps": 3000},
    "record": {"every": 20, "snapshot_every": 50},
    "run": {"seed": 1},
})
simulate(config, out=OUT / "mean_field.h5", overwrite=True).close()

run = open_run(OUT / "mean_field.h5")        # lazy: nothing is read until asked
loss = run.observable("population_loss")     # Observable(step, time, value)
print(run)
print(f"population loss {loss.value[0]:.3g} -> {loss.value[-1]:.3g} at t = {loss.time[-1]:g}")
print("final particles (a_1, a_2, c):\n", np.round(run.particles(-1)[:4], 3))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
loss_curves(run, ax=left)
particle_trajectories(run, ax=right)
save(fig, "run.png")
run.close()

# %% [markdown]
# ## Mean field against lazy: the output scale alpha
#
# The same network with $\alpha = 1, 10, 100$ (time t is comparable across alpha).  In the
# lazy regime the particles move $O(1/\alpha)$, the network stays within $O(1/\alpha^2)$
# of its linearisation (symmetric initialisation) and its tangent kernel barely changes.
# A sweep runs the three; `load_table` reads every run into one table.

# %%
lazy_sweep = OUT / "alpha.toml"
lazy_sweep.write_text("""
[base.model]
m = 32
[base.init]
tau = 1.0
symmetric = true
[base.data]
d = 2
teacher_m = 3
[base.train]
algorithm = "population"
lr = 0.1
steps = 500
[base.record]
snapshot_every = 500
[grid]
"scaling.alpha" = [1.0, 10.0, 100.0]
""")
alpha_plan = plan(lazy_sweep, OUT / "alpha")
run_local(alpha_plan)
table = load_table(alpha_plan.folder / "runs")
fig = laziness_vs_alpha(table.column("alpha"), {
    "relative displacement": table.column("final.displacement"),
    "tangent gap |f - Tf|": table.column("final.tangent_gap"),
    "NTK change": table.column("final.ntk_change"),
})
save(fig, "laziness.png")

# %% [markdown]
# ## Convergence in the width m
#
# Population loss at the end of training for m = 2 ... 256 and 2 seeds, against a teacher
# of m0 = 4 neurons in d = 10.  `convergence_vs_m` averages over seeds (mean and standard
# error at every m): below m0 the student cannot represent the teacher, a few times m0
# suffice for the gradient flow to find it.  (`seeds.shared`: replicate r has one
# teacher for every m.)

# %%
width_sweep = OUT / "width.toml"
width_sweep.write_text("""
[base.model]
activation = "relu"
[base.init]
tau = 0.1
[base.data]
d = 10
teacher_m = 4
[base.train]
algorithm = "population"
lr = 0.5
steps = 1500
[base.record]
snapshot_every = 50
[grid]
"model.m" = [2, 4, 8, 16, 32, 64, 256]
[seeds]
count = 2
shared = true
""")
width_plan = plan(width_sweep, OUT / "width")
run_local(width_plan)
table = load_table(width_plan.folder / "runs")
conv = convergence_vs_m(table, "population_loss")
for m, mean, sem in zip(conv.m, conv.mean, conv.sem):
    print(f"m = {m:4g}: population loss {mean:.2e} +- {sem:.1e}")
fig = loss_vs_m(table.column("model.m"), table.column("final.population_loss"), m0=4)
save(fig, "width.png")

# %% [markdown]
# ## The mean-field limit
#
# The same runs, compared with the m = 256 run of their replicate at t = 0 and t = 25:
# the (sliced) Wasserstein-2 distance between the particle measures shrinks like
# $m^{-1/2}$ (propagation of chaos); `convergence` fits the rate.

# %%
widths = [width_plan.config(i).model.m for i in range(len(width_plan))]
reference = {pt.replicate: width_plan.path(pt.index) for pt, m in zip(width_plan.points, widths)
             if m == max(widths)}
m_of, t_of, w2 = [], [], []
for pt, m in zip(width_plan.points, widths):
    if m < max(widths):
        dist = distance_to_reference(width_plan.path(pt.index), reference[pt.replicate],
                                     times=[0.0, 25.0], method="sliced")
        m_of += [m] * len(dist.time)
        t_of += dist.time.tolist()
        w2 += dist.parameter.tolist()
for t, res in convergence(m_of, w2, groups=t_of).items():
    print(f"t = {t:g}: W2 ~ m^{res.slope:.2f}, 95% interval "
          f"[{res.slope_ci[0]:.2f}, {res.slope_ci[1]:.2f}]")
fig = distance_vs_m(m_of, w2, t_of, ylabel="sliced W2 to the m = 256 run")
save(fig, "limit.png")
