"""Helpers shared by the sweep tests: the CLI in a subprocess, run contents, small sweeps."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from meanfield import InputError, open_run

ROOT = Path(__file__).resolve().parents[1]

def sweep_text(base, grid=None, seeds=None):
    """The text of a sweep file: ``[base]`` with dotted keys, ``[grid]`` with quoted ones
    (each a list of values) and ``[seeds] count``; a table left out when None or empty."""
    def table(name, items, key):
        return "".join([f"[{name}]\n"] + [f"{key(k)} = {json.dumps(v)}\n" for k, v in items])

    tables = [table("base", base.items(), str)]
    if grid:
        tables.append(table("grid", grid.items(), json.dumps))
    if seeds is not None:
        tables.append(table("seeds", [("count", seeds)], str))
    return "\n".join(tables)


def long_sweep(steps, lr, every, snapshot_every, checkpoint_every, grid=None, **record):
    """Points of m = 4 in d = 2 on 8 samples, too long to finish during a test (``record``:
    further record.* keys)."""
    base = {"model.m": 4, "data.d": 2, "data.n_train": 8, "data.n_test": 8,
            "train.steps": steps, "train.lr": lr, "record.every": every,
            "record.snapshot_every": snapshot_every, "record.checkpoint_every": checkpoint_every}
    base.update({f"record.{key}": value for key, value in record.items()})
    return sweep_text(base, grid)


SWEEP = sweep_text({"model.activation": "tanh", "data.d": 3, "data.n_train": 20,
                    "data.n_test": 20, "train.lr": 0.05, "train.steps": 50, "record.every": 10,
                    "record.snapshot_every": 25, "record.checkpoint_every": 10},
                   {"model.m": [4, 8], "scaling.kappa": [1.0, 10.0]}, seeds=2)


def cli(*args, env=None, cwd=None, timeout=300):
    """``python -m meanfield.cli ARGS`` in a subprocess (no Slurm task id inherited)."""
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.pop("SLURM_ARRAY_TASK_ID", None)
    full.pop("SLURM_RESTART_COUNT", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *map(str, args)],
                          capture_output=True, text=True, env=full, cwd=cwd, timeout=timeout)


def popen_cli(*args, **kwargs):
    """The CLI started in the background (stdout and stderr captured as text)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("SLURM_ARRAY_TASK_ID", None)
    return subprocess.Popen([sys.executable, "-m", "meanfield.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def contents(path):
    """Everything a run records (bytes), to compare runs bit for bit."""
    with open_run(path) as run:
        out = {"status": run.status, "steps": run.steps.tobytes(),
               "particles": run.particles(slice(None)).tobytes()}
        for name in run.observable_names:
            obs = run.observable(name)
            out[name] = (obs.step.tobytes(), obs.value.tobytes())
    return out


def write(path, text):
    path.write_text(text)
    return path


def recorded(path):
    """How many train_loss records ``path`` holds (0 when it cannot be read yet)."""
    try:
        with open_run(path) as run:
            return len(run.observable("train_loss").step)
    except (InputError, OSError, KeyError):
        return 0


def wait_until(condition, timeout=300, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def main(capsys, *args):
    """The command line run in this process: ``(exit status, stdout, stderr)``.

    For commands that fail on their input or only read and write small files:
    no interpreter to start, so much faster than :func:`cli`.
    """
    from meanfield.cli import main as cli_main
    capsys.readouterr()
    code = cli_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
