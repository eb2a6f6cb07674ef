"""``meanfield demo``: a small mean-field teacher-student run and its figure."""

from __future__ import annotations

from pathlib import Path

from .config import Config

DEMO = {
    "model": {"m": 32, "activation": "relu"},
    "scaling": {"regime": "mean_field"},
    "init": {"tau": 0.1},
    "data": {"kind": "teacher", "d": 2, "n_train": 200, "n_test": 1000, "teacher_m": 3},
    "train": {"algorithm": "gd", "lr": 0.5, "steps": 4000},
    "record": {"every": 10, "snapshot_every": 20},
    "run": {"seed": 1},
}
"""The demo run: relu students in d = 2 learning a 3-neuron teacher from a small init."""


def demo(folder: Path = Path("data"), progress: bool = False):
    """Run the demo into ``folder/demo.h5`` (replacing it) and draw ``folder/demo.png``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .simulate import simulate
    from .storage.atomic import replacing
    from .plotting import loss_curves, particle_trajectories

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h5, png = folder / "demo.h5", folder / "demo.png"
    run = simulate(Config.from_dict(DEMO), out=h5, progress=progress, overwrite=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    loss_curves(run, ax=left)
    left.set_title(f"mean-field regime, m = {run.parameters['m']}")
    particle_trajectories(run, ax=right)
    with replacing(png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    run.close()
    return h5, png
