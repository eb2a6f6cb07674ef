"""The ``meanfield`` command line.

::

    meanfield run CONFIG.toml [-o OUT.h5] [--set section.key=value ...] [--resume | --overwrite] [--quiet]
    meanfield info OUT.h5
    meanfield plot OUT.h5 [-o FIG.png] [--kind loss|particles|both]
    meanfield demo [-o DIR]
    meanfield certify RUN.h5 [--snapshot K] [--json]
    meanfield sweep plan SWEEP.toml -o DIR
    meanfield sweep run DIR [--index N]          # N defaults to $SLURM_ARRAY_TASK_ID
    meanfield sweep local DIR [-j N]
    meanfield sweep sbatch DIR [--partition P] [--time T] [--mem M] [--cpus C] [--max-parallel K]
                               [--account A] [--qos Q] [--constraint C] [--sbatch-option K=V ...]
                               [--max-requeue N] [--max-array-size S]
    meanfield sweep status DIR [--json]
    meanfield sweep collect DIR [-o summary.csv]
    meanfield warmup

Bad input (config keys and values, data files, output paths) prints one line
``meanfield: error: ...`` naming what is wrong and exits with status 2; a
diverged run exits with status 1; a run stopped by SIGTERM, SIGINT or SIGUSR1
writes a checkpoint (``--resume`` continues it) and exits with 128 + signal.
``sweep run`` exits with 0 for a point that completed or diverged (both are
results; ``sweep status`` and ``collect`` tell them apart) and with 128 + signal
when interrupted (running it again resumes the point).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import InputError
from .sweep.commands import add_parsers as add_sweep_parsers

EXIT_DIVERGED = 1
EXIT_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as the same one-line message and exit status 2."""

    def error(self, message):
        self.exit(EXIT_INPUT, f"meanfield: error: {message}\n")


def _show_progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def cmd_run(args) -> int:
    from .config import Config
    from .dynamics import Interrupted, simulate
    config = Config.from_toml(args.config, args.set)
    out = Path(args.output) if args.output else Path(Path(args.config).stem + ".h5")
    try:
        run = simulate(config, out=out, progress=_show_progress(args),
                       overwrite=args.overwrite, resume=args.resume)
    except Interrupted as exc:
        print(f"meanfield: {exc} in {out}; continue with --resume", file=sys.stderr)
        return 128 + exc.signum
    if run.status == "diverged":
        print(f"meanfield: run diverged: {run.message} (file: {out})", file=sys.stderr)
        return EXIT_DIVERGED
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def format_info(run) -> str:
    """Human-readable summary of a run: header, status, snapshots, last observables."""
    p = run.parameters
    lines = [
        f"file        {run.path}",
        f"status      {run.status}" + (f" ({run.message})" if run.message else ""),
        f"model       m={p['m']} d={p['d']} activation={p['activation']} bias={p['bias']}",
        f"scaling     regime={p['regime']} alpha={p['alpha']:g} tau={p['tau']:g} "
        f"symmetric={p['symmetric']}",
        f"training    {p['algorithm']} lr={p['lr']:g} steps={p['steps']} "
        f"weight_decay={p['weight_decay']:g} loss={p['loss']} seed={p['seed']}",
    ]
    steps = run.steps
    last = f", last step {steps[-1]} (t={run.times[-1]:g})" if len(steps) else ""
    lines.append(f"snapshots   {len(steps)}{last}")
    lines.append("observables (last recorded value)")
    width = max(map(len, run.observable_names), default=0)
    for name in run.observable_names:
        obs = run.observable(name)
        if len(obs.step):
            lines.append(f"  {name:<{width}}  {obs.value[-1]:<12.6g} step {obs.step[-1]}")
        else:
            lines.append(f"  {name:<{width}}  (none yet)")
    return "\n".join(lines)


def cmd_info(args) -> int:
    from .storage import open_run
    with open_run(args.file) as run:
        print(format_info(run))
    return 0


PLOT_KINDS = ("loss", "particles", "both")


def cmd_plot(args) -> int:
    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    from .plotting import loss_curves, particle_trajectories
    from .storage import open_run
    out = Path(args.output) if args.output else Path(args.file).with_suffix(".png")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FigureCanvasBase.get_supported_filetypes():
        raise InputError(f"{out}: unknown figure format {out.suffix or '(no suffix)'!r} "
                         "(use .png, .pdf, .svg, ...)")
    with open_run(args.file) as run:
        planar = run.parameters["d"] >= 2
        if args.kind == "particles" and not planar:
            raise InputError(f"{args.file}: particle paths need inputs of dimension d >= 2 "
                             "(this run has d = 1); use --kind loss")
        panels = {"loss": [loss_curves], "particles": [particle_trajectories],
                  "both": [loss_curves] + [particle_trajectories] * planar}[args.kind]
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5),
                                 constrained_layout=True, squeeze=False)
        for draw, ax in zip(panels, axes[0]):
            draw(run, ax=ax)
        fig.suptitle(f"{Path(args.file).name}: m = {run.parameters['m']}, "
                     f"alpha = {run.alpha:g}, {run.status}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.{fmt}")
    try:
        fig.savefig(tmp, dpi=120, format=fmt)
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    print(f"wrote {out}")
    return 0


def cmd_demo(args) -> int:
    from .demo import demo
    h5, png = demo(Path(args.output), progress=_show_progress(args))
    print(f"wrote {h5}\nwrote {png}")
    return 0


def cmd_certify(args) -> int:
    import json

    from .optimality import certify
    from .storage import open_run
    with open_run(args.file) as run:
        cert = certify(run, snapshot=args.snapshot)
    print(json.dumps(cert.as_dict()) if args.json else cert.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meanfield", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="simulate one config and write its HDF5 file")
    p.add_argument("config", help="TOML file describing the run")
    p.add_argument("-o", "--output", help="output file (default: CONFIG's name with .h5)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (repeatable)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue OUT from its last checkpoint (start it if it does not exist)")
    again.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("info", help="summarise a run file")
    p.add_argument("file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plot", help="draw the loss curves and/or particle paths of a run file")
    p.add_argument("file")
    p.add_argument("-o", "--output", metavar="FIG",
                   help="figure file; its suffix gives the format (default: FILE with .png)")
    p.add_argument("--kind", choices=PLOT_KINDS, default="both",
                   help="losses against time, particles |c| a in the plane, or both (default; "
                        "the losses alone when d = 1)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("demo", help="a small mean-field teacher-student run with a figure")
    p.add_argument("-o", "--output", default="data", help="folder for demo.h5 and demo.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("certify", help="global optimality of a relu run: polar, bound "
                       "alpha * weight_decay, duality gap")
    p.add_argument("file")
    p.add_argument("--snapshot", type=int, default=-1, metavar="K",
                   help="particle snapshot to certify (default: the last; negative counts back)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=cmd_certify)

    add_sweep_parsers(sub, _Parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"meanfield: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
