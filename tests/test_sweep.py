"""Sweeps: plans and seeds, bad sweep files, the CLI end to end, executors, the array-job script."""

import csv
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pytest

from meanfield import Config, InputError, open_run, simulate
from meanfield import sweep
from meanfield.simulate import Interrupted

from sweeptools import (ROOT, SWEEP, cli, contents, long_sweep, main, recorded, wait_until,
                        write)


# ------------------------------------------------------------------ plans and seeds
def seeds_by_point(p):
    return {(json.dumps(pt.overrides, sort_keys=True), pt.replicate): pt.seed
            for pt in p.points}


def test_seeds_belong_to_points_not_to_the_order(tmp_path):
    a = sweep.plan(write(tmp_path / "a.toml", SWEEP), tmp_path / "a")
    shuffled = SWEEP.replace('"model.m" = [4, 8]\n"scaling.kappa" = [1.0, 10.0]',
                             '"scaling.kappa" = [10, 1]\n"model.m" = [8, 4]')
    shuffled = shuffled.replace("count = 2", "list = [1, 0]")
    assert shuffled != SWEEP
    b = sweep.plan(write(tmp_path / "b.toml", shuffled), tmp_path / "b")
    assert len(a) == len(b) == 8
    assert [pt.overrides for pt in a.points] != [pt.overrides for pt in b.points]
    assert seeds_by_point(a) == seeds_by_point(b)
    seeds = [pt.seed for pt in a.points]
    assert len(set(seeds)) == len(seeds), "every point has its own seed"
    for i, pt in enumerate(a.points):
        cfg = a.config(i)
        assert cfg.run.seed == pt.seed and 0 <= pt.seed < 2**63
        assert cfg.model.m == pt.overrides["model.m"]
        assert cfg.scaling.kappa == pt.overrides["scaling.kappa"]
        assert cfg.model.activation == "tanh" and cfg.train.steps == 50
        assert pt.output == f"runs/{i:05d}.h5"
    # more replicates and more grid values leave the existing points' seeds alone
    more = SWEEP.replace("count = 2", "count = 3").replace("[4, 8]", "[4, 8, 12]")
    c = sweep.plan(write(tmp_path / "c.toml", more), tmp_path / "c")
    assert len(c) == 18
    assert seeds_by_point(a).items() <= seeds_by_point(c).items()
    # the manifest is what plan() returned
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert [p["seed"] for p in manifest["points"]] == seeds
    assert Config.from_toml_text(manifest["base"]).model.activation == "tanh"


def test_point_seeds_are_fixed_values():
    """The seeds the docstring promises stable across versions (values of version 0.1.0)."""
    assert sweep.point_seed({"model.m": 16}, 0) == 6162730980271506639
    assert sweep.point_seed({}, 5, base_seed=7) == 7519536208168968348
    assert sweep.point_seed({"model.m": 16, "scaling.kappa": 10.0}, 2, 3) == 2852743902107715322


def test_paths_are_relative_to_the_file_that_names_them(tmp_path):
    exp = tmp_path / "exp"
    (exp / "conf").mkdir(parents=True)
    write(exp / "conf" / "base.toml", '[data]\nkind = "file"\npath = "../a.npz"\n')
    write(exp / "inline.toml", '[base]\ndata.kind = "file"\ndata.path = "a.npz"\n'
          '[grid]\n"data.path" = ["a.npz", "sub/b.npz"]\n')
    write(exp / "file.toml", 'base = "conf/base.toml"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("inline", "file"):
        r = cli("sweep", "plan", exp / f"{name}.toml", "-o", tmp_path / name, cwd=elsewhere)
        assert r.returncode == 0, r.stderr
    inline, from_file = sweep.load_plan(tmp_path / "inline"), sweep.load_plan(tmp_path / "file")
    assert inline.base.data.path == from_file.config(0).data.path == str(exp / "a.npz")
    assert [inline.config(i).data.path for i in range(2)] == [str(exp / "a.npz"),
                                                              str(exp / "sub" / "b.npz")]


def test_shared_seeds_and_master_seed(tmp_path):
    shared = sweep.plan(write(tmp_path / "s.toml", SWEEP + "shared = true\n"), tmp_path / "s")
    by_replicate = {}
    for pt in shared.points:
        by_replicate.setdefault(pt.replicate, set()).add(pt.seed)
    assert all(len(s) == 1 for s in by_replicate.values()) and len(by_replicate) == 2
    other = SWEEP.replace("[base]\n", "[base]\nrun.seed = 7\n")
    a = sweep.plan(write(tmp_path / "a.toml", SWEEP), tmp_path / "a")
    b = sweep.plan(write(tmp_path / "b.toml", other), tmp_path / "b")
    assert not {pt.seed for pt in a.points} & {pt.seed for pt in b.points}


def test_base_from_a_file_and_nested_tables(tmp_path):
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf" / "base.toml", '[model]\nactivation = "relu"\nm = 6\n'
          '[data]\nd = 2\n[train]\nsteps = 10\n')
    a = sweep.plan(write(tmp_path / "a.toml", 'base = "conf/base.toml"\n[grid]\n'
                         '"train.lr" = [0.1, 0.2]\n'), tmp_path / "a")
    b = sweep.plan(write(tmp_path / "b.toml", '[base.model]\nactivation = "relu"\nm = 6\n'
                         '[base.data]\nd = 2\n[base.train]\nsteps = 10\n'
                         '[grid.train]\nlr = [0.1, 0.2]\n'), tmp_path / "b")
    assert len(a) == len(b) == 2
    assert [a.config(i) for i in range(2)] == [b.config(i) for i in range(2)]
    assert a.config(1).train.lr == 0.2 and a.config(0).model.m == 6


def test_replan_is_a_noop_and_mixing_is_refused(tmp_path):
    path = write(tmp_path / "s.toml", SWEEP)
    folder = tmp_path / "out"
    sweep.plan(path, folder)
    manifest = folder / "manifest.json"
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    write(path, "# the same sweep, commented\n" + SWEEP.replace("[1.0, 10.0]", "[1, 10]"))
    r = cli("sweep", "plan", path, "-o", folder)
    assert r.returncode == 0 and "already holds this sweep" in r.stdout, r.stderr
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    write(path, SWEEP.replace("[4, 8]", "[4, 16]"))
    with pytest.raises(InputError, match="different sweep"):
        sweep.plan(path, folder)
    r = cli("sweep", "plan", path, "-o", folder)
    assert r.returncode == 2 and "different sweep" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert manifest.read_bytes() == before[0]


BAD = {
    "unknown top-level key": ("[base]\n[grid]\n[seedz]\ncount = 2\n", "seedz"),
    "unknown grid key": ('[grid]\n"model.mm" = [4, 8]\n', "model.mm"),
    "unknown grid section": ('[grid]\n"modle.m" = [4, 8]\n', "modle"),
    "grid key without section": ('[grid]\nm = [4, 8]\n', "'m'"),
    "wrong value type": ('[grid]\n"model.m" = [4, "eight"]\n', "model.m"),
    "value out of range": ('[grid]\n"train.lr" = [0.1, -1.0]\n', "train.lr"),
    "not a list": ('[grid]\n"model.m" = 4\n', "model.m"),
    "empty list": ('[grid]\n"model.m" = []\n', "model.m"),
    "repeated value": ('[grid]\n"model.m" = [4, 4]\n', "model.m"),
    "seed in the grid": ('[grid]\n"run.seed" = [1, 2]\n', "run.seed"),
    "unknown base key": ("[base]\nmodel.wdth = 3\n", "model.wdth"),
    "bad base value": ('[base]\nmodel.activation = "swish"\n', "swish"),
    "missing base file": ('base = "nowhere.toml"\n', "nowhere.toml"),
    "seeds count zero": ("[seeds]\ncount = 0\n", "count"),
    "seeds count and list": ("[seeds]\ncount = 2\nlist = [0, 1]\n", "count"),
    "unknown seeds key": ("[seeds]\nnumber = 2\n", "number"),
    "invalid point": ('[base]\ninit.symmetric = true\n[grid]\n"model.m" = [4, 5]\n', "model.m"),
    "invalid TOML": ("[grid\n", "invalid TOML"),
}


def test_bad_sweep_files_are_refused_naming_the_culprit(tmp_path):
    for case, (text, culprit) in BAD.items():
        path = write(tmp_path / "bad.toml", text)
        with pytest.raises(InputError) as err:
            sweep.plan(path, tmp_path / "out")
            pytest.fail(f"{case}: accepted")
        assert culprit in str(err.value) and "\n" not in str(err.value), case
        assert not (tmp_path / "out" / "manifest.json").exists(), case


@pytest.mark.parametrize("case", ["unknown grid key", "invalid point", "invalid TOML"])
def test_bad_sweep_files_exit_2_with_one_line(tmp_path, case):
    text, culprit = BAD[case]
    path = write(tmp_path / "bad.toml", text)
    r = cli("sweep", "plan", path, "-o", tmp_path / "out")
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meanfield: error:"), r.stderr
    assert culprit in lines[0]
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_bad_sweep_run_arguments(tmp_path, capsys, monkeypatch):
    sweep.plan(write(tmp_path / "s.toml", SWEEP), tmp_path / "out")
    r = cli("sweep", "run", tmp_path / "out")
    assert r.returncode == 2 and "SLURM_ARRAY_TASK_ID" in r.stderr and "--index" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    for args, env, needle in [(["--index", "8"], {}, "out of range"),
                              (["--index", "-1"], {}, "out of range"),
                              (["--index", "two"], {}, "not an integer"),
                              ([], {"SLURM_ARRAY_TASK_ID": "99"}, "out of range")]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code, out, err = main(capsys, "sweep", "run", tmp_path / "out", *args)
        assert code == 2 and needle in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    for cmd in (["run", "--index", "0"], ["local"], ["status"], ["collect"], ["sbatch"]):
        code, out, err = main(capsys, "sweep", cmd[0], tmp_path / "nothing", *cmd[1:])
        assert code == 2 and "not a sweep folder" in err, (cmd, err)
    code, out, err = main(capsys, "sweep", "sbatch", tmp_path / "out", "--time", "1:00; rm -rf /")
    assert code == 2 and "--time" in err
    assert not list((tmp_path / "out" / "runs").iterdir())


# ---------------------------------------------------------------- end to end, CLI
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A sweep of 8 points run with `meanfield sweep local -j 2`, and its files' contents."""
    tmp = tmp_path_factory.mktemp("e2e")
    write(tmp / "sweep.toml", SWEEP)
    folder = tmp / "out"
    r = cli("sweep", "plan", tmp / "sweep.toml", "-o", folder)
    assert r.returncode == 0 and "planned 8 points" in r.stdout, r.stderr
    r = cli("sweep", "local", folder, "-j", "2")
    assert r.returncode == 0, r.stderr
    files = sorted((folder / "runs").glob("*.h5"))
    assert len(files) == 8
    return folder, {f.name: contents(f) for f in files}


def test_local_status_collect(finished, tmp_path, capsys):
    folder, _ = finished
    r = cli("sweep", "status", folder)
    assert r.returncode == 0
    assert r.stdout.split() == ["completed", "8", "total", "8"]
    assert sweep.status(folder) == {"pending": 0, "running": 0, "completed": 8,
                                    "diverged": 0, "failed": 0, "corrupt": 0}
    out = tmp_path / "summary.csv"
    code, stdout, stderr = main(capsys, "sweep", "collect", folder, "-o", out)
    assert code == 0 and "8 rows" in stdout and not stderr, stderr
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    plan = sweep.load_plan(folder)
    for row, pt in zip(rows, plan.points):
        assert int(row["index"]) == pt.index and int(row["run.seed"]) == pt.seed
        assert int(row["replicate"]) == pt.replicate and row["output"] == pt.output
        assert int(row["model.m"]) == pt.overrides["model.m"]
        assert float(row["scaling.kappa"]) == pt.overrides["scaling.kappa"]
        assert row["status"] == "completed" and int(row["step"]) == 50
        with open_run(folder / pt.output) as run:
            for name in run.observable_names:
                value = run.observable(name).value
                assert float(row[f"final.{name}"]) == value[-1]
                assert float(row[f"best.{name}"]) == np.nanmin(value)
    # the default output is DIR/summary.csv
    assert main(capsys, "sweep", "collect", folder)[0] == 0
    assert (folder / "summary.csv").is_file()


def copy_sweep(source, folder):
    """A copy of a sweep folder's manifest and run files."""
    (folder / "runs").mkdir(parents=True)
    (folder / "manifest.json").write_bytes((source / "manifest.json").read_bytes())
    for f in (source / "runs").glob("*.h5"):
        (folder / "runs" / f.name).write_bytes(f.read_bytes())
    return sweep.load_plan(folder)


@pytest.mark.slow
def test_corrupt_truncated_skipped_and_resumed_points(finished, tmp_path_factory):
    source, expected = finished
    folder = tmp_path_factory.mktemp("damaged") / "out"
    plan = copy_sweep(source, folder)     # a copy of the finished sweep, to damage
    corrupt, truncated, done, partial = (plan.path(i) for i in (1, 2, 0, 3))
    corrupt.write_bytes(np.random.default_rng(0).bytes(corrupt.stat().st_size))
    with open(truncated, "r+b") as fh:
        fh.truncate(truncated.stat().st_size // 2)
    # point 3: interrupted (SIGUSR1) after its first chunk -> a partial file
    partial.unlink()

    def interrupt(step, P):
        os.kill(os.getpid(), signal.SIGUSR1)

    with pytest.raises(Interrupted):
        simulate(plan.config(3), out=partial, callback=interrupt)
    with open_run(partial) as run:
        assert run.status == "running" and run.steps[-1] < 50

    counts = sweep.status(folder)
    assert counts == {"pending": 0, "running": 1, "completed": 5, "diverged": 0,
                      "failed": 0, "corrupt": 2}
    r = cli("sweep", "status", folder)
    assert r.returncode == 0 and "corrupt    2" in r.stdout and "corrupt points: 1 2" in r.stdout
    r = cli("sweep", "collect", folder)
    assert r.returncode == 0, r.stderr
    assert "point 1 (runs/00001.h5): corrupt" in r.stderr
    assert "point 2 (runs/00002.h5): corrupt" in r.stderr
    assert "point 3 (runs/00003.h5): running: unfinished" in r.stderr
    with open(folder / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(row["index"]) for row in rows] == [0, 4, 5, 6, 7]
    rows, problems = sweep.collect(folder)
    assert [(p.index, p.state) for p in problems] == [(1, "corrupt"), (2, "corrupt"),
                                                      (3, "running")]

    # a finished point is skipped: its file is not touched
    stat = done.stat()
    r = cli("sweep", "run", folder, "--index", "0")
    assert r.returncode == 0 and "already finished" in r.stdout, r.stderr
    assert done.stat().st_mtime_ns == stat.st_mtime_ns and done.stat().st_size == stat.st_size
    assert contents(done) == expected[done.name]
    # a partial point resumes from its checkpoint, bit-identical to the uninterrupted run
    r = cli("sweep", "run", folder, env={"SLURM_ARRAY_TASK_ID": "3"})
    assert r.returncode == 0 and "resumed" in r.stdout, r.stderr
    assert contents(partial) == expected[partial.name]
    # unreadable points run again from the start
    r = cli("sweep", "local", folder, "-j", "1")
    assert r.returncode == 0 and r.stdout.split() == ["completed", "8", "total", "8"], r.stderr
    for f in (corrupt, truncated):
        assert contents(f) == expected[f.name]


def test_swapped_run_files_are_corrupt(finished, tmp_path, capsys):
    source, expected = finished
    plan = copy_sweep(source, tmp_path / "out")
    a, b = plan.path(3), plan.path(4)
    a.write_bytes((source / plan.points[4].output).read_bytes())
    b.write_bytes((source / plan.points[3].output).read_bytes())
    assert sweep.point_statuses(plan.folder) == ["completed"] * 3 + ["corrupt"] * 2 + \
        ["completed"] * 3
    code, out, err = main(capsys, "sweep", "status", plan.folder, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["folder"] == str(plan.folder.resolve()) and report["total"] == 8
    assert report["counts"] == {"pending": 0, "running": 0, "completed": 6, "diverged": 0,
                                "failed": 0, "corrupt": 2}
    assert [(q["index"], q["output"], q["state"]) for q in report["problems"]] == [
        (3, "runs/00003.h5", "corrupt"), (4, "runs/00004.h5", "corrupt")]
    assert all("another run" in q["reason"] for q in report["problems"])
    assert report["arrays"] == []
    rows, problems = sweep.collect(plan.folder)
    assert [row["index"] for row in rows] == [0, 1, 2, 5, 6, 7]
    assert [(p.index, p.state) for p in problems] == [(3, "corrupt"), (4, "corrupt")]
    # a file given explicitly is not the sweep's to replace
    stat = a.stat()
    with pytest.raises(InputError, match="config differs"):
        sweep.run_config(plan.config(3), a)
    assert a.stat().st_mtime_ns == stat.st_mtime_ns
    # running the sweep again replaces them with the points' own runs
    r = cli("sweep", "local", plan.folder)
    assert r.returncode == 0 and r.stdout.split() == ["completed", "8", "total", "8"], r.stderr
    assert contents(a) == expected[a.name] and contents(b) == expected[b.name]


# -------------------------------------------------------------------- executors
@pytest.mark.slow
def test_run_sweep_on_executors_gives_identical_files(finished, tmp_path):
    source, expected = finished
    write(tmp_path / "s.toml", SWEEP)
    pools = {
        "inline": lambda: None,
        "threads": lambda: ThreadPoolExecutor(2),
        "processes": lambda: ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn")),
    }
    for name, make in pools.items():
        folder = tmp_path / name
        sweep.plan(tmp_path / "s.toml", folder)
        pool = make()
        try:
            statuses = sweep.run_sweep(folder, pool)
            # a second call finds everything finished and submits nothing
            assert sweep.run_sweep(str(folder), pool) == statuses
        finally:
            if pool is not None:
                pool.shutdown()
        assert statuses == ["completed"] * 8, name
        for f in sorted((folder / "runs").glob("*.h5")):
            assert contents(f) == expected[f.name], (name, f.name)
    # explicit (config, path) pairs
    plan = sweep.load_plan(source)
    pairs = [(plan.config(i), tmp_path / "pairs" / f"{i}.h5") for i in (0, 5)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert sweep.run_sweep(pairs, pool) == ["completed", "completed"]
    assert contents(pairs[1][1]) == expected[plan.path(5).name]
    with pytest.raises(InputError, match="Config"):
        sweep.run_sweep([({"model": {}}, tmp_path / "x.h5")])
    with pytest.raises(InputError, match="same output"):
        sweep.run_sweep([pairs[0], (plan.config(1), pairs[0][1])])


@pytest.mark.slow
def test_run_sweep_on_a_local_dask_cluster(finished, tmp_path):
    distributed = pytest.importorskip("distributed")
    source, expected = finished
    write(tmp_path / "s.toml", SWEEP)
    folder = tmp_path / "dask"
    sweep.plan(tmp_path / "s.toml", folder)
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        statuses = sweep.run_sweep(folder, client.get_executor())
    assert statuses == ["completed"] * 8
    for f in sorted((folder / "runs").glob("*.h5")):
        assert contents(f) == expected[f.name]


# -------------------------------------------------------------------- Slurm script
def test_sbatch_script_content(finished, tmp_path):
    folder, _ = finished
    r = cli("sweep", "sbatch", folder, "--partition", "debug", "--time", "00:30:00",
            "--mem", "2G", "--cpus", "2", "--max-parallel", "3")
    assert r.returncode == 0, r.stderr
    path = folder / "sweep.sbatch"
    assert f"wrote {path.resolve()}" in r.stdout and "sbatch " in r.stdout
    text = path.read_text()
    for line in ["#SBATCH --array=0-7%3", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@60",
                 f'#SBATCH "--output={folder.resolve()}/logs/%A_%a.out"',
                 '#SBATCH "--partition=debug"', '#SBATCH "--time=00:30:00"',
                 '#SBATCH "--mem=2G"', "#SBATCH --cpus-per-task=2"]:
        assert line in text.splitlines(), line
    assert (folder / "logs").is_dir()
    assert 'export NUMBA_CACHE_DIR="$SWEEP/numba-cache"' in text
    assert f"SWEEP={folder.resolve()}" in text and f"PYTHON={sys.executable}" in text
    assert "meanfield warmup" in text
    assert '-m meanfield.cli sweep run "$SWEEP" --index "$index"' in text
    assert 'scontrol requeue "${SLURM_JOB_ID}"' in text and '"$rc" -eq 138' in text
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    # without --max-parallel there is no %K
    path = sweep.sbatch_script(folder)
    assert "#SBATCH --array=0-7\n" in path.read_text()


def sbatch_lines(path):
    return [line for line in Path(path).read_text().splitlines() if line.startswith("#SBATCH")]


def test_sbatch_options_are_passed_and_checked(tmp_path):
    folder = tmp_path / "out"
    sweep.plan(write(tmp_path / "s.toml", SWEEP), folder)
    r = cli("sweep", "sbatch", folder, "--account", "proj-12", "--qos", "high",
            "--constraint", "intel&(ib|opa)", "--sbatch-option", "mail-type=END",
            "--sbatch-option", "--comment=a b", "--max-requeue", "5")
    assert r.returncode == 0, r.stderr
    lines = sbatch_lines(folder / "sweep.sbatch")
    for line in ['#SBATCH "--account=proj-12"', '#SBATCH "--qos=high"',
                 '#SBATCH "--constraint=intel&(ib|opa)"', '#SBATCH "--mail-type=END"',
                 '#SBATCH "--comment=a b"']:
        assert line in lines, (line, lines)
    assert "--max-requeue 5 &" in (folder / "sweep.sbatch").read_text()
    before = (folder / "sweep.sbatch").read_bytes()
    for kwargs, needle in [({"options": ["array=0-3"]}, "--array is set by meanfield"),
                           ({"options": ["no-value"]}, "KEY=VALUE"),
                           ({"options": ["bad key=1"]}, "KEY=VALUE"),
                           ({"constraint": "a;b"}, "--constraint"),
                           ({"account": "x y"}, "--account"),
                           ({"qos": "$(id)"}, "--qos"),
                           ({"max_requeue": -1}, "--max-requeue"),
                           ({"max_array_size": 0}, "--max-array-size")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            sweep.sbatch_scripts(folder, **kwargs)
    r = cli("sweep", "sbatch", folder, "--sbatch-option", "output=/tmp/x")
    assert r.returncode == 2 and "--output is set by meanfield" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (folder / "sweep.sbatch").read_bytes() == before


def test_every_sweep_option_has_help():
    import argparse

    from meanfield.cli import build_parser

    def subparsers(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices
        return {}

    commands = subparsers(subparsers(build_parser())["sweep"])
    assert set(commands) == {"plan", "run", "local", "sbatch", "status", "collect"}
    for name, parser in commands.items():
        for action in parser._actions:
            assert action.help, (name, action.dest)
    r = cli("sweep", "sbatch", "--help")
    assert r.returncode == 0
    for option in ("--account", "--qos", "--constraint", "--sbatch-option", "--max-requeue",
                   "--max-array-size"):
        assert option in r.stdout


def test_plans_past_max_array_size_are_split(tmp_path, capsys):
    folder = tmp_path / "out"
    sweep.plan(write(tmp_path / "s.toml", SWEEP), folder)
    r = cli("sweep", "sbatch", folder, "--max-array-size", "3", "--max-parallel", "2")
    assert r.returncode == 0, r.stderr
    names = ["sweep-000.sbatch", "sweep-001.sbatch", "sweep-002.sbatch"]
    assert sorted(p.name for p in folder.glob("*.sbatch")) == names
    for name, array, offset in zip(names, ["0-2%2", "0-2%2", "0-1%2"], [0, 3, 6]):
        text = (folder / name).read_text()
        assert f"#SBATCH --array={array}" in text.splitlines()
        assert f"OFFSET={offset}" in text.splitlines() and 'index=$((OFFSET + task))' in text
        assert f"submit with: sbatch {folder.resolve() / name}" in r.stdout
        assert subprocess.run(["bash", "-n", str(folder / name)]).returncode == 0
    report = json.loads(main(capsys, "sweep", "status", folder, "--json")[1])
    assert [(a["script"], a["first"], a["last"], a["counts"]["pending"])
            for a in report["arrays"]] == [(names[0], 0, 2, 3), (names[1], 3, 5, 3),
                                           (names[2], 6, 7, 2)]
    text = main(capsys, "sweep", "status", folder)[1]
    assert "sweep-002.sbatch (points 6-7): pending 2" in text
    # MaxArraySize from `scontrol show config`; one array again: the split scripts are gone
    fake = tmp_path / "bin"
    fake.mkdir()
    write(fake / "scontrol", "#!/bin/sh\necho 'MaxArraySize            = 8'\n").chmod(0o755)
    r = cli("sweep", "sbatch", folder, env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    assert [p.name for p in folder.glob("*.sbatch")] == ["sweep.sbatch"]
    assert "#SBATCH --array=0-7" in sbatch_lines(folder / "sweep.sbatch")
    with pytest.raises(InputError, match="sbatch_scripts"):
        sweep.sbatch_script(folder, max_array_size=5)
    assert len(sweep.sbatch_scripts(folder, max_array_size=5)) == 2


LONG = long_sweep(2000000, 0.0001, 10000, 1000000, 20000,
                  {"model.activation": ["relu", "tanh"]})


@pytest.mark.slow
def test_sbatch_script_warms_once_forwards_usr1_and_requeues(tmp_path):
    """The array-job script run by bash as Slurm would, with a fake `scontrol`."""
    folder = tmp_path / "long"
    plan = sweep.plan(write(tmp_path / "long.toml", LONG), folder)
    script = sweep.sbatch_script(folder, max_parallel=2)
    fake = tmp_path / "bin"
    fake.mkdir()
    write(fake / "scontrol", f'#!/bin/sh\necho "$@" >> {tmp_path}/scontrol.log\n').chmod(0o755)

    def task(i, restarts=0):
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(i), SLURM_JOB_ID=str(100 + i),
                   SLURM_CPUS_PER_TASK="1", SLURM_RESTART_COUNT=str(restarts),
                   PATH=f"{fake}:{os.environ['PATH']}")
        return subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    first, second = task(0), task(1)
    deadline = time.monotonic() + 300
    # wait until point 0 is training (its first chunk is on disk), then signal its task
    while not recorded(plan.path(0)) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGUSR1)          # what Slurm does 60 s before the time limit
    out0 = first.communicate(timeout=300)[0]
    out1 = second.communicate(timeout=300)[0]
    assert first.returncode == 138, out0
    assert second.returncode == 0, out1
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "100"]
    assert (out0 + out1).count("warming the numba cache") == 1, out0 + out1
    assert sweep.point_statuses(folder) == ["running", "completed"]
    # at the requeue limit (--max-requeue, default 3) the point is failed, not requeued
    done = recorded(plan.path(0))
    capped = task(0, restarts=3)
    wait_until(lambda: recorded(plan.path(0)) > done or capped.poll() is not None,
               what="the resumed point to train")
    capped.send_signal(signal.SIGUSR1)
    out = capped.communicate(timeout=300)[0]
    assert capped.returncode == 1, out
    assert "stopped at the time limit after 3 requeue(s) (--max-requeue 3)" in out, out
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "100"]
    assert sweep.point_statuses(folder) == ["failed", "completed"]
    problems = sweep.status_report(folder)["problems"]
    assert [(q["index"], q["state"]) for q in problems] == [(0, "failed")]
    assert "--max-requeue 3" in problems[0]["reason"]
    # the task run again resumes the point; the file is the uninterrupted run's
    again = task(0)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0 and "resumed" in out and "warming" not in out, out
    assert sweep.point_statuses(folder) == ["completed", "completed"]
    threads = numba.get_num_threads()          # the task ran with SLURM_CPUS_PER_TASK=1
    numba.set_num_threads(1)
    try:
        simulate(plan.config(0), out=tmp_path / "reference.h5")
    finally:
        numba.set_num_threads(threads)
    assert contents(plan.path(0)) == contents(tmp_path / "reference.h5")
    assert len(list((folder / "numba-cache").glob("warm-*"))) == 1


@pytest.mark.slow
def test_warmup_fills_the_cache_that_a_second_process_loads(tmp_path):
    """Every kernel is cacheable: after one warm-up, a second process compiles nothing."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    reports = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "meanfield.cli", "warmup"], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert "Cannot cache" not in r.stderr, r.stderr
        reports.append(r.stdout.splitlines()[-1])
    assert " 0 signatures compiled, 0 loaded" not in reports[0], reports
    assert " 0 signatures compiled" in reports[1], reports
    assert any((tmp_path / "cache").rglob("*.nbi"))
