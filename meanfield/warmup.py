"""``meanfield warmup``: compile every kernel ``simulate`` uses into the Numba cache.

Array jobs run it once before their tasks start (see
:func:`meanfield.sweep.sbatch_scripts`), so that the tasks load compiled
kernels instead of each compiling them.  It builds configs, so it lives
outside :mod:`meanfield.kernels`, which only import numpy and numba.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import fields

from .config import Config
from .errors import InputError

__all__ = ["warmup"]

log = logging.getLogger(__name__)

def _dispatchers():
    """Every Numba dispatcher of :mod:`meanfield.kernels`, as ``{"module.name": dispatcher}``."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import kernels

    found = {}
    for mod in pkgutil.iter_modules(kernels.__path__):
        try:
            module = importlib.import_module(f"{kernels.__name__}.{mod.name}")
        except Exception as exc:  # pragma: no cover - a broken kernel module
            log.warning("cannot import meanfield.kernels.%s: %s", mod.name, exc)
            continue
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found[f"{mod.name}.{name}"] = obj
    return found


def _warmup_configs():
    """Tiny configs covering every argument-type signature ``simulate`` gives the kernels.

    The kernels are specialised on argument types, not values (activations,
    losses and algorithms are integer ids, every array is float64), so one
    run would do; every choice of ``[train]`` (algorithm, model) x bias x loss
    x data kind is run anyway, cycling through the activations, so that a kernel added
    later with a type-dependent branch is covered too.  Each run is two
    steps of a 2-particle network on 4 points; then one deep linear run per
    algorithm of :mod:`meanfield.algorithms.deep_linear`.
    """
    from .activations import NAMES as ACTS
    from .config import TrainConfig
    from .deep_linear.config import ALGORITHMS as DEEP_LINEAR
    from .losses import NAMES as LOSSES

    # every choice of [train] (algorithm, model, ...), whatever this version has
    choices = {f.name: f.metadata["choices"] for f in fields(TrainConfig)
               if "choices" in f.metadata}
    acts = itertools.cycle(ACTS)
    for train in itertools.product(*choices.values()):
        if train[list(choices).index("algorithm")] in DEEP_LINEAR[1:]:
            continue                                   # deep linear networks only: below
        for bias in (False, True):
            for loss in LOSSES:
                for kind in ("teacher", "random_labels"):
                    yield {
                        "model": {"m": 2, "activation": next(acts), "bias": bias},
                        "init": {"symmetric": False},
                        "data": {"kind": kind, "d": 2, "n_train": 4, "n_test": 4,
                                 "teacher_m": 1},
                        "loss": {"name": loss},
                        "train": {**dict(zip(choices, train)), "lr": 0.01, "steps": 2,
                                  "batch_size": 2},
                        "record": {"every": 1, "snapshot_every": 1, "checkpoint_every": 1},
                    }
    for algorithm in DEEP_LINEAR:
        depth = 1 if algorithm in ("adagrad", "adam") else 2       # the baselines: depth 1
        yield {"model": {"kind": "deep_linear", "depth": depth, "width": 2},
               "data": {"kind": "linear_teacher", "d": 2, "n_train": 4, "n_test": 4},
               "loss": {"name": "lp", "p": 4.0},
               "train": {"algorithm": algorithm, "lr": 0.01, "steps": 2,
                         "track_end_to_end": algorithm == "gd"},
               "record": {"every": 1, "snapshot_every": 1, "checkpoint_every": 1}}


def warmup(out=None) -> dict:
    """Compile every kernel ``simulate`` uses into the Numba cache.

    Runs a tiny in-memory simulation for every algorithm, bias, loss and
    data kind (see :func:`_warmup_configs`), so that later processes (the
    tasks of an array job) load the compiled kernels instead of compiling
    them.  The cache is where Numba puts it: ``NUMBA_CACHE_DIR`` if set
    (read by Numba at import), else ``__pycache__`` beside the sources.

    Parameters
    ----------
    out : file, optional
        Where to print the report (default: no report).

    Returns
    -------
    dict
        ``{"seconds", "cache_dir", "runs", "skipped", "kernels"}``, where
        ``kernels`` maps ``module.function`` to its number of signatures,
        how many were compiled now and how many were loaded from the cache.

    Examples
    --------
    >>> import sys
    >>> report = warmup(sys.stdout)             # doctest: +SKIP
    """
    import numba

    from .simulate import simulate

    t0 = time.perf_counter()
    runs, skipped = 0, []
    for tables in _warmup_configs():
        try:
            config = Config.from_dict(tables)
            run = simulate(config)
            run.close()
            runs += 1
        except InputError as exc:   # a combination this engine does not support
            what = "/".join(str(v) for k, v in tables["train"].items() if isinstance(v, str))
            skipped.append(f"{what}/{tables['loss']['name']}: {exc}")
    seconds = time.perf_counter() - t0
    kernels = {}
    for name, disp in sorted(_dispatchers().items()):
        stats = disp.stats
        kernels[name] = {"signatures": len(disp.signatures),
                         "compiled": sum(stats.cache_misses.values()),
                         "loaded": sum(stats.cache_hits.values())}
    cache_dir = numba.config.CACHE_DIR or "__pycache__ beside the kernel sources"
    report = {"seconds": seconds, "cache_dir": cache_dir, "runs": runs, "skipped": skipped,
              "kernels": kernels}
    if out is not None:
        _print_warmup(report, out)
    return report


def _print_warmup(report, out):
    k = report["kernels"]
    print(f"numba cache: {report['cache_dir']}", file=out)
    print(f"{'kernel':<36} {'signatures':>10} {'compiled':>9} {'from cache':>11}", file=out)
    for name, s in k.items():
        if s["signatures"]:
            print(f"{name:<36} {s['signatures']:>10} {s['compiled']:>9} {s['loaded']:>11}",
                  file=out)
    others = sum(1 for s in k.values() if not s["signatures"])
    if others:
        print(f"({others} other kernels were not called directly: compiled into their "
              "callers, or not used by simulate)", file=out)
    if report["skipped"]:
        print(f"({len(report['skipped'])} combinations the engine refuses were skipped, "
              "e.g. the population flow of the tangent model)", file=out)
    compiled = sum(s["compiled"] for s in k.values())
    loaded = sum(s["loaded"] for s in k.values())
    used = sum(1 for s in k.values() if s["signatures"])
    print(f"{report['runs']} tiny runs, {used} kernels called: {compiled} signatures "
          f"compiled, {loaded} loaded from the cache, in {report['seconds']:.1f} s", file=out)
