"""The meanfield command line.

    meanfield --version
    meanfield run CONFIG.toml [-o OUT.h5] [--set section.key=value ...] [--resume | --overwrite] [--quiet]
    meanfield info OUT.h5 [--json]
    meanfield repair OUT.h5                      # clear the flag a killed writer left
    meanfield plot OUT.h5 [-o FIG.png] [--kind loss|particles|both]
    meanfield demo [-o DIR]
    meanfield certify RUN.h5 [--snapshot K] [--json]
    meanfield gram RUN.h5 [--json]               # lambda_0, lambda_min of H(0), H(T), GD's rate
    meanfield sweep plan SWEEP.toml -o DIR
    meanfield sweep run DIR [--index N]          # N defaults to $SLURM_ARRAY_TASK_ID
    meanfield sweep local DIR [-j N]
    meanfield sweep sbatch DIR [--partition P] [--time T] [--mem M] [--cpus C] [--max-parallel K]
                               [--account A] [--qos Q] [--constraint C] [--sbatch-option K=V ...]
                               [--max-requeue N] [--max-array-size S]
    meanfield sweep status DIR [--json]
    meanfield sweep collect DIR [-o summary.csv]
    meanfield warmup

Exit status (EXIT_CODES): 0 done; 1 crash (a bug: a traceback); 2 bad input
(config keys and values, data files, output paths, a damaged or busy file: one
line "meanfield: error: ..." naming the culprit); 3 the run diverged (recorded in
the file); 74 an output could not be written (disk full, I/O error: the last
checkpoint is kept, --resume continues once there is space); 130, 143, 138 on
SIGINT, SIGTERM, SIGUSR1 (a checkpoint is written; --resume continues); 141 when
the reader of the output went away (info | head).  "sweep run" exits with 0 for a
point that completed or diverged (both are results; "sweep status" and "collect"
tell them apart) and with 128 + signal when interrupted (running it again resumes
the point).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

from . import _threading
from .errors import InputError

EXIT_CRASH = 1
EXIT_INPUT = 2
EXIT_DIVERGED = 3
EXIT_WRITE = 74  # meanfield.storage.EXIT_WRITE
EXIT_PIPE = 141
EXIT_CODES = {0: "completed", EXIT_CRASH: "crash (a bug)", EXIT_INPUT: "bad input",
              EXIT_DIVERGED: "diverged", EXIT_WRITE: "output could not be written",
              130: "SIGINT", 143: "SIGTERM", 138: "SIGUSR1", EXIT_PIPE: "broken pipe"}
RUN_EPILOG = """example:
  meanfield run run.toml -o run.h5 --set model.m=500 --set train.steps=2000

Every key and its default: meanfield.Config().to_toml() in Python, or the
docstrings of meanfield.config (python -m pydoc meanfield.config); README.md
("A tour") shows a complete file.  Interrupted runs continue with --resume."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as the same one-line message and exit status 2."""

    def error(self, message):
        self.exit(EXIT_INPUT, f"meanfield: error: {message}\n")


def _show_progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def cmd_run(args) -> int:
    from .config import Config
    from .simulate import Interrupted, simulate
    from .storage import check_output
    config = Config.from_toml(args.config, args.set)
    out = Path(Path(args.config).stem + ".h5") if args.output is None else args.output
    out = check_output(out, inputs=[args.config])
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
    from .storage import holder
    p, mc = run.parameters, run.config.model
    model = (f"deep_linear depth={mc.depth} width={mc.width} outputs={mc.outputs} d={p['d']}"
             if mc.kind == "deep_linear" else
             f"m={p['m']} d={p['d']} activation={p['activation']} bias={p['bias']}")
    lines = [
        f"file        {run.path}",
        f"status      {run.status}" + (f" ({run.message})" if run.message else "")
        + (f" (being written by {writer})" if (writer := holder(run.path)) else ""),
        f"model       {model}",
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


def info_dict(run) -> dict:
    """Machine-readable summary of a run (``meanfield info --json``).

    Fields: ``file``, ``status``, ``message``, ``format_version``,
    ``parameters`` (the ``/parameters`` values without the config text),
    ``config`` (the resolved TOML), ``snapshots`` (count), ``last_step`` and
    ``last_time`` (of the last snapshot, null if none), ``checkpoint_step``
    (null before the first), ``writer`` ("pid N on HOST" while a process
    writes the file, else null) and ``observables``: name -> {``records``,
    ``last_step``, ``last_value``} (nulls when empty; non-finite values as
    null).
    """
    from .storage import holder
    params = {k: v for k, v in run.parameters.items() if k != "config"}
    steps = run.steps
    ck = run.checkpoint()
    obs = {}
    for name in run.observable_names:
        o = run.observable(name)
        last = float(o.value[-1]) if len(o.step) else None
        obs[name] = {"records": int(len(o.step)),
                     "last_step": int(o.step[-1]) if len(o.step) else None,
                     "last_value": last if last is not None and math.isfinite(last) else None}
    return {"file": str(run.path), "status": run.status, "message": run.message,
            "format_version": run.format_version, "parameters": params,
            "config": run.config_text, "snapshots": int(len(steps)),
            "last_step": int(steps[-1]) if len(steps) else None,
            "last_time": float(run.times[-1]) if len(steps) else None,
            "checkpoint_step": None if ck is None else int(ck.step),
            "writer": holder(run.path), "observables": obs}


def cmd_info(args) -> int:
    from .storage import open_run
    with open_run(args.file) as run:
        print(json.dumps(info_dict(run), indent=1) if args.json else format_info(run))
    return 0


def cmd_repair(args) -> int:
    from .storage import repair
    if repair(args.file):
        print(f"{args.file}: cleared the open-for-writing flag; HDF5 tools read it now")
    else:
        print(f"{args.file}: nothing to repair")
    return 0


PLOT_KINDS = ("loss", "particles", "both")


def cmd_plot(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    from .plotting import loss_curves, network_size, particle_trajectories
    from .storage import check_output, open_run, replacing
    out = Path(args.file).with_suffix(".png") if args.output is None else args.output
    out = check_output(out, inputs=[args.file], what="figure")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FigureCanvasBase.get_supported_filetypes():
        raise InputError(f"{out}: unknown figure format {out.suffix or '(no suffix)'!r} "
                         "(use .png, .pdf, .svg, ...)")
    with open_run(args.file) as run:
        deep = run.config.model.kind == "deep_linear"
        planar = run.parameters["d"] >= 2 and not deep
        if args.kind == "particles" and not planar:
            what = "a deep linear network" if deep else "d = 1"
            raise InputError(f"{args.file}: particle paths need a two-layer network with inputs "
                             f"of dimension d >= 2 (this run: {what}); use --kind loss")
        panels = {"loss": [loss_curves], "particles": [particle_trajectories],
                  "both": [loss_curves] + [particle_trajectories] * planar}[args.kind]
        growing = "neurons" in run.observable_names
        if growing and args.kind != "particles":
            panels.insert(1, network_size)
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5),
                                 constrained_layout=True, squeeze=False)
        for draw, ax in zip(panels, axes[0]):
            draw(run, ax=ax)
        m = run.counts[-1] if growing and len(run.steps) else run.parameters["m"]
        fig.suptitle(f"{Path(args.file).name}: m = {m}, "
                     f"alpha = {run.alpha:g}, {run.status}")
    try:
        with replacing(out) as tmp:
            fig.savefig(tmp, dpi=120, format=fmt)
    finally:
        plt.close(fig)
    print(f"wrote {out}")
    return 0


def cmd_demo(args) -> int:
    from .demo import demo
    h5, png = demo(Path(args.output), progress=_show_progress(args))
    print(f"wrote {h5}\nwrote {png}")
    return 0


def _two_layer_only(run, args):
    """Refuse a deep linear run in a command about two-layer networks."""
    if run.config.model.kind == "deep_linear":
        raise InputError(f"{args.file}: meanfield {args.command} applies to two-layer "
                         "networks, not to a deep linear run")


def cmd_certify(args) -> int:
    import json

    from .optimality import certify
    from .storage import open_run
    with open_run(args.file) as run:
        _two_layer_only(run, args)
        cert = certify(run, snapshot=args.snapshot)
    print(json.dumps(cert.as_dict()) if args.json else cert.summary())
    return 0


def cmd_gram(args) -> int:
    from .gram import format_gram_report, gram_report
    from .storage import open_run
    with open_run(args.file) as run:
        _two_layer_only(run, args)
        report = gram_report(run)
    print(json.dumps(report) if args.json else format_gram_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .sweep.commands import add_parsers as add_sweep_parsers
    parser = _Parser(prog="meanfield", description=__doc__.split("\n")[0],
                     epilog=__doc__[__doc__.index("Exit status"):].replace(" (EXIT_CODES)", ""),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="simulate one config and write its HDF5 file",
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="TOML file describing the run")
    p.add_argument("-o", "--output", help="output file (default: CONFIG's name with .h5)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (repeatable)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue OUT from its last checkpoint (start it if it does not exist)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace an existing output file (the new file is built aside and "
                            "renamed into place; a reader still holding the old one is warned "
                            "on its next read and reads the new one)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("info", help="summarise a run file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true",
                   help="one JSON object (fields: see meanfield.cli.info_dict)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("repair", help="clear the open-for-writing flag a killed run left "
                       "(as h5clear -s), after checking that no writer is alive")
    p.add_argument("file")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("plot", help="draw the loss curves and/or particle paths of a run file")
    p.add_argument("file")
    p.add_argument("-o", "--output", metavar="FIG",
                   help="figure file; its suffix gives the format (default: FILE with .png)")
    p.add_argument("--kind", choices=PLOT_KINDS, default="both",
                   help="losses against time, particles |c| a in the plane, or both (default; "
                        "the losses alone when d = 1 or for a deep linear network); a growing "
                        "network adds its neurons, objective and lower bound to loss and both")
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

    p = sub.add_parser("gram", help="Gram matrices of a run: lambda_0 of the infinite-width "
                       "kernel, lambda_min of H(0) and H(T), the predicted linear rate of GD")
    p.add_argument("file")
    p.add_argument("--json", action="store_true",
                   help="one JSON object (fields: see meanfield.gram.gram_report)")
    p.set_defaults(func=cmd_gram)

    add_sweep_parsers(sub, _Parser)
    return parser


def _interrupt(signum, frame):
    """SIGINT handler: raise KeyboardInterrupt as Python's own does, and remember it fired.

    An interrupt that lands inside an extension module's initialisation surfaces as an
    ImportError instead (NumPy's "could not import module datetime"); ``main`` reads the
    mark to report that as the interruption it is.
    """
    _interrupt.fired = True
    raise KeyboardInterrupt


_interrupt.fired = False


def main(argv=None) -> int:
    """The console script: run one command, map its outcome to an exit status (EXIT_CODES)."""
    _threading.apply()  # before NumPy loads
    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if ours:
        _interrupt.fired = False
        signal.signal(signal.SIGINT, _interrupt)
    try:
        return _dispatch(argv)
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _dispatch(argv) -> int:
    """Parse ``argv``, run the command, and map its exceptions to exit statuses."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except InputError as exc:
        print(f"meanfield: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (info | head): say nothing more, and let the
        # interpreter's final flush of stdout go nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except Exception as exc:
        if _interrupt.fired:  # an interrupt turned into another error on its way up
            print("meanfield: interrupted", file=sys.stderr)
            return 130
        from .storage import WriteFailed
        if not isinstance(exc, WriteFailed):
            raise
        print(f"meanfield: error: {exc}", file=sys.stderr)
        return EXIT_WRITE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
