"""What every experiment script shares: options, running a sweep file, CSV in and out.

An experiment is a folder ``experiments/<name>/`` holding sweep TOML files
(the full-size experiment) and a ``run.py`` that

1. runs each sweep through :mod:`meanfield.sweep` (``plan`` + ``run_local``)
   into a work folder (``experiments/<name>/work/``, or ``--work DIR``),
   after applying the script's ``--quick`` overrides;
2. writes the numbers the figure is drawn from to ``<data>/<name>.csv``;
3. draws ``<data>/<name>.png`` from that CSV (``--plot-only`` does only this,
   from the committed CSV).

Run files (.h5) stay in the work folder; a run that finished is not run
again, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

from meanfield import _threading

_threading.apply()  # before NumPy loads, as the `meanfield` command does

REPO = Path(__file__).resolve().parents[1]


def options(name: str, description: str, argv=None, folder=None) -> argparse.Namespace:
    """Parse the options every experiment takes; adds ``csv``, ``png`` and ``work`` paths.

    ``name`` names the CSV and PNG; ``folder`` (default ``name``) is the
    experiment's folder under ``experiments/``.

    ``--quick`` uses the small sizes (and the work folder ``work/quick``, which
    then also receives the CSV and PNG),
    ``--plot-only`` redraws the figure from the CSV, ``--work DIR`` and
    ``--data DIR`` move the run files and the outputs.
    """
    folder = folder or name
    p = argparse.ArgumentParser(prog=f"experiments/{folder}/{Path(sys.argv[0]).name}",
                                description=description)
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in seconds")
    p.add_argument("--plot-only", action="store_true",
                   help="only redraw the figure from the CSV in the data folder")
    p.add_argument("--work", type=Path, metavar="DIR",
                   help=f"folder for the sweeps and run files (default experiments/{folder}/work)")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="folder for the CSV and PNG (default data/, or the work folder "
                        "with --quick, so that a quick run never replaces the gallery)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="runs in parallel (default 1)")
    p.add_argument("--collect", action="store_true",
                   help="write the CSV from the runs already finished in the work folder "
                        "(experiments that train in memory), running none")
    args = p.parse_args(argv)
    if args.work is None:
        args.work = REPO / "experiments" / folder / "work" / ("quick" if args.quick else "full")
    if args.data is None:
        args.data = args.work if args.quick else REPO / "data"
    args.name = name
    args.csv = args.data / f"{name}.csv"
    args.png = args.data / f"{name}.png"
    return args


def _merge(table: dict, overrides: dict) -> dict:
    out = dict(table)
    for key, value in overrides.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_sweep_file(toml: Path, work: Path, overrides=None, jobs: int = 1, stem=None):
    """Plan the sweep ``toml`` (with ``overrides`` merged in) into ``work/<stem>`` and run it.

    Parameters
    ----------
    toml : path
        A sweep file; a ``base`` config file it names is read relative to it.
    work : path
        Parent of the sweep folder; the sweep file actually planned is
        written there as ``<stem>.toml``.
    overrides : dict, optional
        Nested tables merged into the sweep file, e.g.
        ``{"grid": {"model.m": [2, 4], "train.steps": [100]}}`` (a one-value
        grid list sets a key for every point).
    jobs : int
        Processes of :func:`meanfield.sweep.run_local`.
    stem : str, optional
        Name of the planned sweep (default the file's stem): one sweep file
        planned several times with different ``overrides`` needs one stem each.

    Returns
    -------
    meanfield.sweep.Plan
        Every point finished (completed or diverged).
    """
    from meanfield.config import dumps_toml, read_toml
    from meanfield.sweep import plan, run_local

    toml = Path(toml)
    tables = _merge(read_toml(toml, "sweep file"), overrides or {})
    if isinstance(tables.get("base"), str):
        tables["base"] = str((toml.parent / tables["base"]).resolve())
    stem = stem or toml.stem
    work.mkdir(parents=True, exist_ok=True)
    planned = work / f"{stem}.toml"
    planned.write_text(dumps_toml(tables))
    p = plan(planned, work / stem)
    t0 = time.perf_counter()
    run_local(p, jobs=jobs)
    print(f"{stem}: {len(p)} runs in {p.folder} ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    return p


def train(config, keep_every=None, data=None):
    """Run ``config`` in memory with its recorded observables only (no snapshot observables).

    The experiments that need many runs but only their losses use this instead
    of a sweep: :func:`meanfield.simulate` also evaluates every snapshot
    observable (certificates, Gram spectra) at the start and the end, which
    costs more than a short run itself.

    Parameters
    ----------
    config : Config or dict
    keep_every : int, optional
        Also keep the particles every ``keep_every`` steps (and at the end).
    data : meanfield.data.Dataset, optional
        Train on these instead of the data ``config`` describes.

    Returns
    -------
    dict
        ``steps`` (k,), one array (k,) per recorded observable (``train_loss``,
        ``test_loss``, ...), ``particles`` (snapshots, m, D) with
        ``particle_steps``, ``teacher`` (m0, D0) or None, ``status``.
    """
    import numpy as np

    from meanfield import algorithms, observables
    from meanfield.config import as_config
    from meanfield.data import make_dataset
    from meanfield.kernels.jit import quiet_numba
    from meanfield.state import seed_streams

    config = as_config(config)
    algorithm = algorithms.for_config(config)
    streams = seed_streams(config.run.seed)
    data = (data or make_dataset(config, streams.data)).validated(config)
    state = algorithm.init(config, data, streams)
    names = observables.recorded_names(state.problem)
    total, chunk = config.train.steps, keep_every or config.train.steps
    steps, rows = [], []
    kept, kept_steps = [state.particles.copy()], [0]
    while state.step < total and not state.diverged:
        with quiet_numba():  # as simulate() does where kernels compile
            state = algorithm.advance(state, min(chunk, total - state.step))
        steps.append(state.records.steps)
        rows.append(state.records.values)
        kept.append(state.particles.copy())
        kept_steps.append(state.step)
    values = np.concatenate(rows) if rows else np.zeros((0, len(names)))
    out = {name: values[:, q] for q, name in enumerate(names)}
    out.update(steps=np.concatenate(steps) if steps else np.zeros(0, np.int64),
               particles=np.array(kept), particle_steps=np.array(kept_steps),
               teacher=data.teacher, status="diverged" if state.diverged else "completed")
    return out


def _run_one(key, config, summarise, path, keep_every):
    """Train ``config``, write ``summarise(result)`` with the config to ``path`` (JSON)."""
    import json
    summary = summarise(train(config, keep_every))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"config": config, "summary": summary}))
    tmp.replace(path)
    return key, summary


def run_many(configs: dict, summarise, folder: Path, jobs: int = 1, keep_every=None,
             collect: bool = False) -> dict:
    """:func:`train` every config of ``configs`` (name -> config dict), keep ``summarise`` of each.

    Each summary (JSON-able) is stored as ``folder/<name>.json`` beside its
    config: a run whose file holds the same config is not run again, so an
    interrupted experiment continues where it stopped.  ``jobs`` > 1 runs
    that many configs at once in fresh processes (``summarise`` must then be
    a module-level function); ``keep_every`` is passed on to :func:`train`.
    ``collect`` runs nothing and returns the finished runs only.

    Returns
    -------
    dict
        name -> summary, in the order of ``configs`` (finished ones only with
        ``collect``).
    """
    import json
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    folder.mkdir(parents=True, exist_ok=True)
    done, todo = {}, []
    for key, config in configs.items():
        path = folder / f"{key}.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored["config"] == json.loads(json.dumps(config)):
                done[key] = stored["summary"]
                continue
        todo.append((key, config, summarise, path, keep_every))
    t0 = time.perf_counter()
    if collect:
        todo = []
    elif jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            done.update(pool.map(_run_one, *zip(*todo)))
    else:
        done.update(_run_one(*job) for job in todo)
    print(f"{folder.name}: {len(done)} of {len(configs)} runs finished, {len(todo)} run now in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return {key: done[key] for key in configs if key in done}


def write_csv(path: Path, rows: list, columns: list, digits: int = 7):
    """Write ``rows`` (dicts) to ``path`` with the given column order.

    Floats are written with ``digits`` significant digits (plenty for a figure).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{float(v):.{digits}g}" if isinstance(v, float) else v
                             for k, v in row.items()})
    print(f"wrote {path} ({len(rows)} rows)")


def read_csv(path: Path):
    """Read a CSV written by :func:`write_csv` into a :class:`meanfield.analysis.Table`.

    Cells that parse as numbers become int or float, ``True``/``False``
    become booleans, the rest stay strings.
    """
    from meanfield.analysis import Table

    def parse(cell):
        if cell in ("True", "False"):
            return cell == "True"
        for kind in (int, float):
            try:
                return kind(cell)
            except ValueError:
                pass
        return cell

    with open(path, newline="") as fh:
        return Table([{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh)])


def save(fig, path: Path):
    """Save a figure (PNG, 130 dpi) and close it."""
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"wrote {path}")


def main(args, compute, draw):
    """Run an experiment: ``compute(args) -> (rows, columns)``, then ``draw(table) -> Figure``.

    With ``--plot-only`` only the figure is redrawn from ``args.csv``.  Bad
    input (a sweep file, a changed sweep in an existing work folder, a
    missing CSV) prints one line and exits with status 2.
    """
    import matplotlib
    matplotlib.use("Agg")
    from meanfield.errors import InputError

    t0 = time.perf_counter()
    try:
        if not args.plot_only:
            rows, columns = compute(args)
            write_csv(args.csv, rows, columns)
        if not args.csv.is_file():
            raise InputError(f"{args.csv}: no such file (run without --plot-only first)")
        save(draw(read_csv(args.csv)), args.png)
    except InputError as exc:
        print(f"{args.name}: error: {exc}", file=sys.stderr)
        return 2
    minutes = (time.perf_counter() - t0) / 60
    print(f"{args.name}: done in {minutes:.1f} min" if minutes >= 1 else
          f"{args.name}: done in {math.ceil(minutes * 60)} s")
    return 0
