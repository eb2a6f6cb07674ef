# %% [markdown]
# # A tour of meanfield
#
# A two-layer network $f(x) = \frac{\alpha}{m} \sum_i c_i\, s(a_i \cdot x)$ trained by
# gradient descent is a system of m interacting particles $w_i = (a_i, c_i)$.  This
# notebook runs a few small simulations, opens them with `open_run`, reads them as xarray
# and pandas tables, compares the mean-field ($\alpha = 1$) and lazy (large $\alpha$)
# regimes, measures how the loss at convergence and the distance to the mean-field limit
# depend on the width m, and ends with a Gram-matrix rate, an optimality certificate and
# a deep linear network.  It needs the notebook extra (`pip install 'meanfield[notebook]'`)
# and runs in about a minute, in Jupyter (open it with jupytext, or convert it with
# `jupytext --to notebook experiments/tour.py`) or as a script:
#
#     python experiments/tour.py [--out DIR]
#
# With `--out DIR` (in a notebook: set `KEEP` below) the runs and figures are kept in DIR;
# otherwise they go to a temporary folder that the last cell removes.

# %%
import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from meanfield import Config, open_run, simulate
from meanfield.analysis import convergence, convergence_vs_m, distance_to_reference, load_table
from meanfield.gram import format_gram_report, gram_report
from meanfield.optimality import certify
from meanfield.plotting import (distance_vs_m, laziness_vs_alpha, loss_curves, loss_vs_m,
                                particle_trajectories)
from meanfield.sweep import plan, run_local

parser = argparse.ArgumentParser(description="A tour of meanfield (small runs, about a minute).")
parser.add_argument("--out", type=Path, help="folder to keep the runs and figures in")
args, _ = parser.parse_known_args()          # Jupyter adds its own arguments
KEEP = args.out                              # or KEEP = Path("some/folder")
TEMPORARY = None if KEEP else tempfile.TemporaryDirectory(prefix="meanfield-tour-")
OUT = KEEP or Path(TEMPORARY.name)
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Save a figure into OUT when it is kept (Jupyter shows it once, at the end of the cell)."""
    if KEEP:
        fig.savefig(OUT / name, dpi=110)
        print(f"saved {OUT / name}")


# %% [markdown]
# ## One run: simulate, store, open
#
# A run is described by a `Config` (the same tables as a TOML file).  Here: 32 relu
# particles in d = 2 learn a teacher of 3 neurons by the exact population gradient flow,
# from a small initialisation, in the mean-field regime.  `open_run` reads the file
# lazily; `with` closes it.

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

with open_run(OUT / "mean_field.h5") as run:    # lazy: nothing is read until asked
    loss = run.observable("population_loss")    # Observable(step, time, value)
    print(run)
    print(f"population loss {loss.value[0]:.3g} -> {loss.value[-1]:.3g} at t = {loss.time[-1]:g}")
    print("final particles (a_1, a_2, c):\n", np.round(run.particles(-1)[:4], 3))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
with open_run(OUT / "mean_field.h5") as run:
    loss_curves(run, ax=left)
    particle_trajectories(run, ax=right)
save(fig, "run.png")

# %% [markdown]
# ## The run as xarray and pandas
#
# `to_xarray()` puts the observables on a `step` axis (with `time` = lr * step as a
# coordinate) and the particle snapshots in `position` (snapshot, particle, coordinate);
# `observables_frame()` (also `to_pandas()`) is one DataFrame indexed by step.  Both are
# read into memory, so they outlive the file.  Below: the mean distance of the particles
# from the origin, which grows from the small initialisation (tau = 0.1) as the network
# learns the teacher.

# %%
with open_run(OUT / "mean_field.h5") as run:
    ds = run.to_xarray()
    frame = run.observables_frame()
print(dict(ds.sizes))
radius = np.sqrt((ds.position ** 2).sum("coordinate")).mean("particle")
print(radius.swap_dims(snapshot="snapshot_time")[::15].to_series())
print(frame[["time", "population_loss", "velocity_sq"]].iloc[::30])

# %% [markdown]
# ## Mean field against lazy: the output scale alpha
#
# The same network with $\alpha = 1, 10, 100$ (time t is comparable across alpha).  In the
# lazy regime the particles move $O(1/\alpha)$, the network stays within $O(1/\alpha^2)$
# of its linearisation (symmetric initialisation) and its tangent kernel barely changes.
# A sweep runs the three; `analysis.load_table` reads every run of a folder into one table
# (config values as `section.key`, the last and best value of every observable as
# `final.<name>` and `best.<name>`), which `to_pandas()` turns into a DataFrame.

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
print(table.to_pandas()[["alpha", "final.displacement", "final.tangent_gap", "final.ntk_change"]])
fig = laziness_vs_alpha(table.column("alpha"), {
    "relative displacement": table.column("final.displacement"),
    "tangent gap |f - Tf|": table.column("final.tangent_gap"),
    "NTK change": table.column("final.ntk_change"),
})
save(fig, "laziness.png")

# %% [markdown]
# ## Convergence in the width m
#
# Population loss at the end of training for m = 2 ... 128 and 2 seeds, against a teacher
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
"model.m" = [2, 4, 8, 16, 32, 64, 128]
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
# The same runs, compared with the m = 128 run of their replicate at t = 0 and t = 25:
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
fig = distance_vs_m(m_of, w2, t_of, ylabel=f"sliced W2 to the m = {max(widths)} run")
save(fig, "limit.png")

# %% [markdown]
# ## Gram matrices and the linear rate of lazy training
#
# In the NTK regime ($\alpha = \sqrt m$) with m = 500 particles on n = 50 training points,
# GD shrinks the squared residual at least by $(1 - \eta\lambda_0/2)$ per step
# ($\eta$ = lr / n), where $\lambda_0$ is the least eigenvalue of the infinite-width Gram
# matrix $H^\infty$ (Du et al.).  `gram_report` (the command `meanfield gram RUN`) gives
# it with the empirical Gram matrices at the first and last snapshots; the run itself
# says how much the residual actually shrank.  This run stays in memory: no file.

# %%
lazy = Config.from_dict({
    "model": {"m": 500}, "scaling": {"regime": "ntk"}, "init": {"symmetric": True},
    "data": {"d": 10, "n_train": 50}, "train": {"algorithm": "gd", "lr": 1.0, "steps": 500},
    "record": {"snapshot_every": 500},
})
with simulate(lazy) as run:
    report = gram_report(run)
    residual = run.observable("train_loss").value
print(format_gram_report(report))
print(f"measured |f - y|^2 shrank by {residual[-1] / residual[0]:.2e} "
      f"(the bound: {report['bound_at_T']:.2e})")

# %% [markdown]
# ## Is it a global minimum? The polar certificate
#
# With weight decay $\lambda$, relu particles without bias are at a global minimum of the
# lifted (convex) problem exactly when the polar $\max_{|u|=1}|g(u)|$ of the residual is
# at most $\alpha\lambda$; `certify` computes it (exactly in d = 2), the duality gap
# bounding $J - \inf J$, and the direction of the neuron to add when it is violated.
# A tiny gap with a polar just above the bound says that training is close to, but not
# yet at, the global minimum.

# %%
decay = Config.from_dict({
    "model": {"m": 64}, "init": {"tau": 0.1}, "data": {"d": 2, "n_train": 100},
    "train": {"algorithm": "gd", "lr": 0.5, "steps": 3000, "weight_decay": 1e-3},
    "record": {"snapshot_every": 3000}, "run": {"seed": 2},
})
with simulate(decay) as run:
    print(certify(run).summary())

# %% [markdown]
# ## Deep linear networks
#
# `model.kind = "deep_linear"` trains $x \mapsto W_3 W_2 W_1 x$ on a noisy linear teacher.
# From a balanced initialisation the layers stay balanced
# ($W_{j+1}^T W_{j+1} \approx W_j W_j^T$, up to the step size) while the singular values
# of the end-to-end matrix grow from tau to those of the teacher.

# %%
deep = Config.from_dict({
    "model": {"kind": "deep_linear", "depth": 3, "width": 10, "outputs": 3},
    "data": {"kind": "linear_teacher", "d": 10, "noise": 0.1},
    "init": {"tau": 0.1}, "train": {"lr": 0.05, "steps": 1000},
    "record": {"snapshot_every": 250},
})
names = ("balancedness", "sigma_min", "sigma_max")      # recorded with every snapshot
with simulate(deep) as run:
    series = {name: run.observable(name) for name in names}
    loss = run.observable("train_loss")
for k, step in enumerate(series["sigma_min"].step):
    print(f"step {step:4d}: " + "  ".join(f"{name} {series[name].value[k]:.3g}" for name in names))
print(f"train loss {loss.value[0]:.3g} -> {loss.value[-1]:.3g}")

# %% [markdown]
# Done: the temporary folder (if any) goes away.

# %%
if TEMPORARY:
    TEMPORARY.cleanup()
    print("runs removed (keep them and the figures with --out DIR, or KEEP = Path(...))")
