"""Slurm array jobs over a sweep: one task per point, split at the cluster's MaxArraySize.

The bash text is the template ``array_job.sbatch`` beside this module; every
value put into it is checked (no control characters, no backslash in the
log folder) and quoted: with :func:`shlex.quote` in shell lines, and in
``#SBATCH`` lines with double quotes, the only quoting Slurm reads there
(``%`` doubled in the log path, where Slurm expands ``%A``, ``%a``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import site
import subprocess
import sys
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..storage.atomic import write_text
from .plan import as_plan

SBATCH = "sweep.sbatch"
ARRAYS = "slurm-arrays.json"
LOGS = "logs"
DEFAULT_MAX_ARRAY_SIZE = 1001
"""Slurm's default MaxArraySize: array task ids 0 .. 1000."""

_VALUE = re.compile(r"^[A-Za-z0-9_.:,+\-\[\]]+$")
_CONSTRAINT = re.compile(r"^[A-Za-z0-9_.:,+\-\[\]&|()*!]+$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_OWN_KEYS = ("array", "output", "error", "open-mode", "signal", "requeue", "no-requeue",
             "job-name", "ntasks", "cpus-per-task", "partition", "time", "mem", "account",
             "qos", "constraint")
"""``#SBATCH`` keys the script sets itself or that have their own option."""


def check_path_text(text: str, what: str) -> str:
    """``text`` if it has no control character (which could end a script line), else InputError."""
    bad = [ch for ch in text if ord(ch) < 32 or ord(ch) == 127]
    if bad:
        raise InputError(f"{what} {text!r} contains a control character ({bad[0]!r}); "
                         "refusing to write it into a job script")
    return text


def _sbatch_quote(value: str) -> str:
    """``value`` as one argument of a ``#SBATCH`` line (Slurm reads double quotes, backslash)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _option(name, value, pattern=_VALUE):
    if value is None:
        return None
    value = str(value)
    if not pattern.match(value):
        raise InputError(f"--{name} {value!r}: not a valid Slurm value")
    return value


def _extra_options(options) -> list:
    """``["KEY=VALUE", ...]`` of ``--sbatch-option`` as ``#SBATCH --KEY=VALUE`` arguments."""
    out = []
    for item in options or ():
        key, sep, value = str(item).partition("=")
        key = key.strip().lstrip("-")
        if not sep or not _KEY.match(key):
            raise InputError(f"--sbatch-option {item!r}: expected KEY=VALUE "
                             "(e.g. mail-type=END)")
        if key in _OWN_KEYS:
            raise InputError(f"--sbatch-option {item!r}: --{key} is set by meanfield "
                             "(use its own option of `sweep sbatch`, if it has one)")
        check_path_text(value, f"--sbatch-option {key}")
        out.append(f"--{key}={value}")
    return out


def cluster_max_array_size() -> int:
    """The cluster's MaxArraySize from ``scontrol show config``, else 1001 (Slurm's default)."""
    if shutil.which("scontrol") is None:
        return DEFAULT_MAX_ARRAY_SIZE
    try:
        r = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    found = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)", r.stdout or "", re.MULTILINE)
    return int(found.group(1)) if r.returncode == 0 and found else DEFAULT_MAX_ARRAY_SIZE


def _python_path_entry():
    """The folder holding the ``meanfield`` package when it is not installed (a checkout)."""
    root = Path(__file__).resolve().parents[2]
    installed = [Path(p).resolve() for p in site.getsitepackages() + [site.getusersitepackages()]]
    return None if root in installed else str(root)


def _positive(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"--{name} must be an integer >= 1, got {value!r}")


def _render(values: dict) -> str:
    template = resources.files(__package__).joinpath("array_job.sbatch").read_text()
    return re.sub(r"\{\{([A-Z0-9_]+)\}\}", lambda m: str(values[m.group(1)]), template)


def _sbatch_lines(folder: Path, size: int, opts: dict) -> str:
    array = f"0-{size - 1}" + (f"%{opts['max_parallel']}" if opts["max_parallel"] else "")
    logs = str(folder / LOGS).replace("%", "%%") + "/%A_%a.out"
    name = "mf-" + re.sub(r"[^A-Za-z0-9_.-]", "_", folder.name)
    sb = [f"--job-name={name}", f"--array={array}", "--requeue", "--signal=B:USR1@60",
          _sbatch_quote(f"--output={logs}"), "--open-mode=append", "--ntasks=1",
          f"--cpus-per-task={opts['cpus']}"]
    for key in ("partition", "time", "mem", "account", "qos", "constraint"):
        if opts[key]:
            sb.append(_sbatch_quote(f"--{key}={opts[key]}"))
    sb += [_sbatch_quote(o) for o in opts["extra"]]
    return "\n".join(f"#SBATCH {s}" for s in sb)


def arrays(folder) -> list:
    """The array scripts last written for the sweep: ``[{"script", "first", "last"}]``."""
    path = as_plan(folder).folder / ARRAYS
    try:
        found = json.loads(path.read_text())
        return [{"script": str(a["script"]), "first": int(a["first"]), "last": int(a["last"])}
                for a in found]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def sbatch_scripts(folder, partition=None, time=None, mem=None, cpus: int = 1,
                   max_parallel=None, account=None, qos=None, constraint=None,
                   options=(), max_requeue: int = 3, max_array_size=None) -> list:
    """Write the Slurm array job(s) running every point of the sweep in ``folder``.

    One script ``folder/sweep.sbatch`` when the plan fits in one array
    (at most MaxArraySize points), else one script per block of
    MaxArraySize points, ``folder/sweep-000.sbatch``, ``sweep-001.sbatch``,
    ...: script k runs points ``k * S + t`` for its array tasks
    ``t = 0 .. S - 1``.  Each is submitted by itself (``sbatch PATH``); the
    list is kept in ``folder/slurm-arrays.json`` for ``sweep status``.

    Every task runs ``meanfield sweep run FOLDER --index I --max-requeue R``
    with the Python that runs this function (``sys.executable``, so a virtual
    environment works without activating it).  The script:

    * ``#SBATCH --array=0-(S-1)%K`` (K = ``max_parallel``), ``--requeue``,
      ``--signal=B:USR1@60``, logs in ``folder/logs/`` (appended across
      requeues), one task of ``cpus`` CPUs, and the optional partition,
      time, mem, account, qos, constraint and extra options;
    * sets ``NUMBA_CACHE_DIR=folder/numba-cache`` (shared by all tasks),
      ``NUMBA_NUM_THREADS`` and the BLAS/OpenMP thread counts to the task's
      CPUs, and ``HDF5_USE_FILE_LOCKING=FALSE`` unless already set;
    * warms the cache once per CPU model: the first task to create the lock
      folder ``numba-cache/warmup-KEY.lock`` (``mkdir`` is atomic, on NFS
      too) runs ``meanfield warmup`` and leaves ``numba-cache/warm-KEY``;
      the others wait for that marker (a lock older than 15 minutes is
      stale; after 30 minutes a task goes on and compiles what it needs);
    * forwards the SIGUSR1 Slurm sends 60 s before the time limit to
      meanfield, which checkpoints and exits with 128 + 10; the task then
      requeues itself (``scontrol requeue``) and the point resumes from its
      checkpoint when it runs again.  After ``max_requeue`` restarts
      (``SLURM_RESTART_COUNT``) the point is recorded as failed with the
      reason instead, and not requeued.  Other failures are not requeued.

    Parameters
    ----------
    folder : path
        A sweep folder made by :func:`plan`; its path may not contain
        control characters or a backslash.
    partition, time, mem, account, qos, constraint : str, optional
        ``--partition``, ``--time`` (``"02:00:00"``), ``--mem`` (``"4G"``),
        ``--account``, ``--qos``, ``--constraint`` (``"intel&ib"``).
    cpus : int
        ``--cpus-per-task`` (and Numba threads per point).
    max_parallel : int, optional
        At most this many tasks of each array at once (``%K``).
    options : list of str
        Extra ``KEY=VALUE`` options, each written as ``#SBATCH --KEY=VALUE``.
    max_requeue : int
        Requeues after a time limit before a point counts as failed.
    max_array_size : int, optional
        The cluster's MaxArraySize; default read from ``scontrol show
        config``, else 1001.

    Returns
    -------
    list of Path
        The scripts, in the order of their points.

    Examples
    --------
    >>> paths = sbatch_scripts("out/sweep", partition="cpu", time="01:00:00",
    ...                        max_parallel=50)                  # doctest: +SKIP
    >>> print(paths[0].read_text().splitlines()[3])              # doctest: +SKIP
    #SBATCH --array=0-71%50
    """
    p = as_plan(folder)
    folder = p.folder.resolve()
    check_path_text(str(folder), "sweep folder")
    if "\\" in str(folder):
        raise InputError(f"sweep folder {str(folder)!r} contains a backslash, which turns off "
                         "Slurm's %A/%a in log names; use another folder")
    for name, value in (("cpus", cpus), ("max-parallel", max_parallel),
                        ("max-array-size", max_array_size)):
        _positive(name, value)
    if isinstance(max_requeue, bool) or not isinstance(max_requeue, int) or max_requeue < 0:
        raise InputError(f"--max-requeue must be an integer >= 0, got {max_requeue!r}")
    opts = {"cpus": cpus, "max_parallel": max_parallel, "partition": _option("partition", partition),
            "time": _option("time", time), "mem": _option("mem", mem),
            "account": _option("account", account), "qos": _option("qos", qos),
            "constraint": _option("constraint", constraint, _CONSTRAINT),
            "extra": _extra_options(options)}
    pythonpath = _python_path_entry()
    q = shlex.quote
    common = {"FOLDER": q(str(folder)), "FOLDER_TEXT": str(folder), "TOTAL": len(p),
              "PYTHON": q(check_path_text(sys.executable, "Python interpreter")),
              "PYTHONPATH_LINE": (f'export PYTHONPATH={q(check_path_text(pythonpath, "PYTHONPATH"))}'
                                  '"${PYTHONPATH:+:$PYTHONPATH}"\n' if pythonpath else ""),
              "CPUS": cpus, "MAX_REQUEUE": max_requeue, "USR1_STATUS": 128 + int(signal.SIGUSR1)}
    try:
        (folder / LOGS).mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {folder / LOGS}: {exc.strerror or exc}") from None
    size = max_array_size or cluster_max_array_size()
    blocks = [(first, min(first + size, len(p)) - 1) for first in range(0, len(p), size)]
    _remove_old_scripts(folder)
    paths, listed = [], []
    for k, (first, last) in enumerate(blocks):
        path = folder / (SBATCH if len(blocks) == 1 else f"sweep-{k:03d}.sbatch")
        text = _render({**common, "FIRST": first, "LAST": last, "OFFSET": first,
                        "SCRIPT": q(str(path)),
                        "SBATCH_LINES": _sbatch_lines(folder, last - first + 1, opts)})
        write_text(path, text)
        path.chmod(0o755)
        paths.append(path)
        listed.append({"script": path.name, "first": first, "last": last})
    write_text(folder / ARRAYS, json.dumps(listed, indent=1) + "\n")
    return paths


def _remove_old_scripts(folder: Path):
    """Remove the scripts an earlier call wrote (a plan split differently leaves none behind)."""
    names = {SBATCH} | {Path(old["script"]).name for old in arrays(folder)}
    for name in names:
        if name == SBATCH or re.fullmatch(r"sweep-\d{3}\.sbatch", name):
            (folder / name).unlink(missing_ok=True)


def sbatch_script(folder, **options) -> Path:
    """Write ``folder/sweep.sbatch``, the one array job of a sweep that fits in one array.

    Takes the options of :func:`sbatch_scripts`; :class:`InputError` when
    the plan needs more than one array (use :func:`sbatch_scripts`).

    Examples
    --------
    >>> path = sbatch_script("out/sweep", time="01:00:00")     # doctest: +SKIP
    """
    paths = sbatch_scripts(folder, **options)
    if len(paths) > 1:
        raise InputError(f"{len(as_plan(folder))} points need {len(paths)} array jobs "
                         f"(MaxArraySize); use sbatch_scripts (written: {paths[0].name}, ...)")
    return paths[0]
