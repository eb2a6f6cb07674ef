r"""Parameter sweeps: plans, manifests, the array-job entry point, executors, collection.

A sweep is one TOML file: a base config, a grid of ``section.key`` value
lists and a number of seeds (replicates)::

    base = "run.toml"            # a config file, relative to this file; or a table:
    # [base]
    # model.activation = "relu"  # (or [base.model] activation = "relu")

    [grid]                       # the Cartesian product of the lists, in this order
    "model.m" = [8, 16, 32]
    "scaling.kappa" = [1.0, 10.0]

    [seeds]
    count = 3                    # or list = [0, 1, 2] (replicate labels)
    # shared = false             # true: all grid points of a replicate share its seed

:func:`plan` expands it into a *sweep folder*::

    DIR/manifest.json            # the base config and one entry per point
    DIR/runs/00000.h5 ...        # one run file per point, written when the point runs
    DIR/summary.csv              # written by collect()
    DIR/sweep.sbatch, DIR/logs/  # written by sbatch_scripts() and the array job
    DIR/slurm-arrays.json        # the array scripts (several past MaxArraySize points)
    DIR/failed/INDEX.txt         # why a point failed for good (e.g. its requeue limit)
    DIR/numba-cache/             # the compiled kernels shared by the array tasks

Every point is a dict of overrides (``{"model.m": 16, "scaling.kappa": 10.0}``),
a replicate label r and a seed: the first 63 bits of the SHA-256 of the
canonical JSON of ``(base run.seed, overrides, r)``.  The seed is therefore a
property of the point, not of the order in which points are planned or run;
it differs between points (unless ``seeds.shared``, which gives every grid
point of replicate r the same data, teacher and initial draws: common random
numbers for comparisons across m), and adding values to the grid or more
replicates leaves the seeds of the existing points unchanged.

A point runs with :func:`run_point`: a finished file (``completed`` or
``diverged``) is left untouched, a partial one (``running``: killed or
interrupted, or ``failed``) continues from its checkpoint bit-identically, a
missing one starts, and an unreadable one (a crash while it was created, a
damaged disk) or one holding another point's run starts again.  So re-running a point, a sweep, or the whole
array job is always safe, and it is how interrupted work resumes; each point
must only be run by one process at a time.

Execution back-ends all go through the same call:

* :func:`run_local`: a local process pool (``meanfield sweep local DIR -j N``);
* :func:`run_sweep`: any ``concurrent.futures.Executor``-like object with a
  ``submit`` method whose results have ``.result()`` (a process pool, a Dask
  ``distributed.Client().get_executor()``, a ``submitit`` executor);
* :func:`sbatch_scripts`: Slurm array jobs, one task per point (split into
  several arrays past the cluster's MaxArraySize), which run
  ``meanfield sweep run DIR --index I``, checkpoint on the SIGUSR1 Slurm
  sends 60 s before the time limit and requeue themselves, at most
  ``max_requeue`` times.

:func:`status` counts the points by state, :func:`status_report` adds the
failed and corrupt points with their reasons (``sweep status --json``), and
:func:`collect` tabulates the final observables of every finished point,
listing the files it could not use.  A run file whose stored config is not
its point's config (a file copied or moved between points) is ``corrupt``.

Relative paths in a sweep (``data.path``, ``init.path``) are relative to the
sweep file's folder, and those in a base config file to that file's folder,
as for ``meanfield run``; every point output must lie inside the folder.

Examples
--------
>>> from meanfield import sweep
>>> folder = sweep.plan("sweep.toml", "out/sweep")          # doctest: +SKIP
>>> sweep.run_local(folder, jobs=4)                          # doctest: +SKIP
>>> sweep.status(folder)                                     # doctest: +SKIP
{'pending': 0, 'running': 0, 'completed': 18, 'diverged': 0, 'failed': 0, 'corrupt': 0}
>>> rows, problems = sweep.collect(folder, "out/summary.csv")  # doctest: +SKIP
"""


from ..warmup import warmup
from .execute import PointInterrupted, run_config, run_point, run_sweep
from .local import run_local
from .plan import (FAILED, FORMAT, FORMAT_VERSION, MANIFEST, RUNS, Plan, Point, load_plan,
                   point_seed)
from .results import (FINAL, STATES, Problem, collect, file_status, point_statuses, status,
                      status_report)
from .slurm import LOGS, SBATCH, sbatch_script, sbatch_scripts
from .spec import plan, read_sweep

SUMMARY = "summary.csv"
NUMBA_CACHE = "numba-cache"

__all__ = ["Plan", "Point", "Problem", "PointInterrupted", "read_sweep", "plan", "load_plan",
           "point_seed", "run_point", "run_config", "run_local", "run_sweep", "file_status",
           "point_statuses", "status", "status_report", "collect", "sbatch_script",
           "sbatch_scripts", "warmup", "FINAL", "STATES", "MANIFEST", "RUNS", "FAILED", "LOGS",
           "SBATCH", "SUMMARY", "NUMBA_CACHE", "FORMAT", "FORMAT_VERSION"]
