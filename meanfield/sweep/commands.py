"""The ``meanfield sweep ...`` and ``meanfield warmup`` commands (argparse sub-parsers).

``sweep run`` exits with 0 for a point that completed or diverged (both are
results; ``sweep status`` and ``collect`` tell them apart), with 128 + signal
when interrupted (running it again resumes the point), and with 1 when the
point reached its requeue limit (``--max-requeue``) and was recorded as
failed.  ``sweep local`` exits with 128 + signal when SIGTERM or SIGINT
stopped it, after a checkpoint in every running point.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from pathlib import Path

from ..errors import InputError

EXIT_FAILED = 1


def _sweep_index(args) -> int:
    raw = args.index
    if raw is None:
        raw = os.environ.get("SLURM_ARRAY_TASK_ID")
        if raw is None:
            raise InputError("sweep run: give --index N (or run it as a Slurm array task, "
                             "which sets SLURM_ARRAY_TASK_ID)")
        where = f"SLURM_ARRAY_TASK_ID={raw!r}"
    else:
        where = f"--index {raw!r}"
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"sweep run: {where} is not an integer") from None


def cmd_plan(args) -> int:
    from . import MANIFEST, plan
    existed = (Path(args.output) / MANIFEST).exists()
    p = plan(args.sweep, args.output)
    grid = ", ".join(f"{k} ({len(v)})" for k, v in p.grid.items()) or "no grid"
    seeds = len(p.manifest["seeds"]["list"])
    if existed:
        print(f"{p.manifest_path} already holds this sweep ({len(p)} points): nothing to do")
    else:
        print(f"planned {len(p)} points ({grid}; {seeds} seed(s)) in {p.manifest_path}")
    return 0


def _restarts() -> int:
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    except ValueError:
        raise InputError(f"SLURM_RESTART_COUNT={os.environ['SLURM_RESTART_COUNT']!r} "
                         "is not an integer") from None


def cmd_run(args) -> int:
    from ..cli import _show_progress
    from . import PointInterrupted, load_plan
    from .execute import run_point_action
    p = load_plan(args.folder)
    index = _sweep_index(args)
    try:
        status, action = run_point_action(p, index, progress=_show_progress(args))
    except PointInterrupted as exc:
        restarts = _restarts()
        if (args.max_requeue is not None and exc.signum == signal.SIGUSR1
                and restarts >= args.max_requeue):
            reason = (f"stopped at the time limit after {restarts} requeue(s) "
                      f"(--max-requeue {args.max_requeue}); checkpoint at step {exc.step}")
            p.mark_failed(index, reason)
            print(f"meanfield: point {index}: failed: {reason}; not requeued "
                  "(`meanfield sweep run` resumes it)", file=sys.stderr)
            return EXIT_FAILED
        print(f"meanfield: point {index}: {exc}; run it again to resume", file=sys.stderr)
        return 128 + exc.signum
    if not args.quiet:
        how = {"skipped": "already finished", "started": "started",
               "restarted": "unusable file, ran again", "resumed": "resumed (running)"}[action]
        print(f"point {index}: {status} ({how}): {p.path(index)}")
    return 0


def _print_counts(counts, total):
    for state, n in counts.items():
        if n:
            print(f"{state:<10} {n}")
    print(f"{'total':<10} {total}")


def cmd_local(args) -> int:
    from . import PointInterrupted, load_plan, run_local, status
    p = load_plan(args.folder)
    try:
        run_local(p, jobs=args.jobs)
    except PointInterrupted as exc:
        print(f"meanfield: {exc}; run the sweep again to resume", file=sys.stderr)
        return 128 + exc.signum
    if not args.quiet:
        _print_counts(status(p), len(p))
    return 0


def cmd_sbatch(args) -> int:
    from . import sbatch_scripts
    paths = sbatch_scripts(args.folder, partition=args.partition, time=args.time, mem=args.mem,
                           cpus=args.cpus, max_parallel=args.max_parallel, account=args.account,
                           qos=args.qos, constraint=args.constraint, options=args.sbatch_option,
                           max_requeue=args.max_requeue, max_array_size=args.max_array_size)
    for path in paths:
        print(f"wrote {path}")
    if len(paths) > 1:
        print(f"the plan is split into {len(paths)} array jobs (MaxArraySize); submit each:")
    for path in paths:
        print(f"submit with: sbatch {shlex.quote(str(path))}")
    return 0


def cmd_status(args) -> int:
    from . import status_report
    report = status_report(args.folder)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    _print_counts(report["counts"], report["total"])
    for state in ("failed", "corrupt"):
        bad = [str(q["index"]) for q in report["problems"] if q["state"] == state]
        if bad:
            print(f"{state} points: {' '.join(bad)}")
    if len(report["arrays"]) > 1:
        for a in report["arrays"]:
            counts = ", ".join(f"{s} {n}" for s, n in a["counts"].items() if n)
            print(f"{a['script']} (points {a['first']}-{a['last']}): {counts}")
    for q in report["problems"]:
        print(f"point {q['index']} ({q['output']}): {q['state']}: {q['reason']}", file=sys.stderr)
    return 0


def cmd_collect(args) -> int:
    from . import SUMMARY, collect
    out = Path(args.output) if args.output else Path(args.folder) / SUMMARY
    rows, problems = collect(args.folder, out)
    print(f"wrote {out} ({len(rows)} rows)")
    for p in problems:
        print(f"point {p.index} ({p.output}): {p.state}: {p.reason}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} point(s) left out", file=sys.stderr)
    return 0


def cmd_warmup(args) -> int:
    from ..warmup import warmup
    warmup(None if args.quiet else sys.stdout)
    return 0


def _add_sbatch_parser(ssub):
    q = ssub.add_parser("sbatch", help="write DIR/sweep.sbatch, a Slurm array job over the points "
                                       "(several past the cluster's MaxArraySize)")
    q.add_argument("folder", metavar="DIR", help="the sweep folder")
    q.add_argument("--partition", help="Slurm partition (#SBATCH --partition)")
    q.add_argument("--time", help="time limit per point, e.g. 02:00:00")
    q.add_argument("--mem", help="memory per point, e.g. 4G")
    q.add_argument("--cpus", type=int, default=1, help="CPUs per point (default 1)")
    q.add_argument("--max-parallel", type=int, metavar="K",
                   help="at most K points of each array at once (--array=...%%K)")
    q.add_argument("--account", help="account to charge (#SBATCH --account)")
    q.add_argument("--qos", help="quality of service (#SBATCH --qos)")
    q.add_argument("--constraint", help="node features, e.g. 'intel&ib' (#SBATCH --constraint)")
    q.add_argument("--sbatch-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra '#SBATCH --KEY=VALUE' line, e.g. mail-type=END (repeatable)")
    q.add_argument("--max-requeue", type=int, default=3, metavar="N",
                   help="requeue a point stopped at the time limit at most N times, then "
                        "report it failed (default 3; counted by SLURM_RESTART_COUNT)")
    q.add_argument("--max-array-size", type=int, metavar="S",
                   help="the cluster's MaxArraySize: larger plans are split into several array "
                        "jobs (default: from `scontrol show config`, else 1001)")
    q.set_defaults(func=cmd_sbatch)


def add_parsers(sub, parser_class):
    """Add ``sweep`` (with its sub-commands) and ``warmup`` to the sub-parsers ``sub``."""
    p = sub.add_parser("sweep", help="parameter sweeps: plan, run (locally or on Slurm), collect")
    ssub = p.add_subparsers(dest="sweep_command", required=True, parser_class=parser_class)

    q = ssub.add_parser("plan", help="expand a sweep file into DIR/manifest.json")
    q.add_argument("sweep", help="sweep TOML: [base], [grid], [seeds]; paths in it are "
                                 "relative to its folder")
    q.add_argument("-o", "--output", required=True, metavar="DIR", help="the sweep folder")
    q.set_defaults(func=cmd_plan)

    q = ssub.add_parser("run", help="run one point (skip it if finished, resume it if partial)")
    q.add_argument("folder", metavar="DIR", help="the sweep folder")
    q.add_argument("--index", metavar="N", help="the point (default: $SLURM_ARRAY_TASK_ID)")
    q.add_argument("--max-requeue", type=int, metavar="N",
                   help="stopped by SIGUSR1 after N or more restarts ($SLURM_RESTART_COUNT): "
                        "record the point as failed and exit 1 instead of 138")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    q.set_defaults(func=cmd_run)

    q = ssub.add_parser("local", help="run every unfinished point with a local process pool")
    q.add_argument("folder", metavar="DIR", help="the sweep folder")
    q.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="processes in parallel (default 1)")
    q.add_argument("-q", "--quiet", action="store_true", help="no summary")
    q.set_defaults(func=cmd_local)

    _add_sbatch_parser(ssub)

    q = ssub.add_parser("status", help="count the points by state; list failed and corrupt ones")
    q.add_argument("folder", metavar="DIR", help="the sweep folder")
    q.add_argument("--json", action="store_true",
                   help="print a JSON object: folder, total, counts, problems "
                        "(index, output, state, reason) and arrays (script, first, last, counts)")
    q.set_defaults(func=cmd_status)

    q = ssub.add_parser("collect", help="one CSV row per finished point with its final observables")
    q.add_argument("folder", metavar="DIR", help="the sweep folder")
    q.add_argument("-o", "--output", metavar="CSV", help="default: DIR/summary.csv")
    q.set_defaults(func=cmd_collect)

    p = sub.add_parser("warmup", help="compile every kernel into the numba cache (NUMBA_CACHE_DIR)")
    p.add_argument("-q", "--quiet", action="store_true", help="no report")
    p.set_defaults(func=cmd_warmup)
