"""A sweep through a real Slurm: the array job script, warm-up, requeue after SIGUSR1.

Needs a working Slurm (``.ci/slurm-up`` starts a single-node one where it can);
skipped, with the reason, when there is none.
"""

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest

from meanfield import open_run, simulate
from meanfield import sweep

from sweeptools import long_sweep, recorded, sweep_text

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600
pytestmark = pytest.mark.slow  # real array jobs on a real Slurm: minutes, not seconds


def slurm_problem():
    """Why Slurm cannot run jobs here, or None."""
    for tool in ("sbatch", "sinfo", "squeue", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    try:
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 30 s"
    if r.returncode:
        return f"sinfo failed: {r.stderr.strip() or r.returncode}"
    states = [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]
    if not any(s.rstrip("*~#!%$@^-").lower() in ("idle", "mixed", "allocated", "completing")
               for s in states):
        return f"no responding node (sinfo: {r.stdout.strip() or 'no nodes'})"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm():
    problem = slurm_problem()
    if problem:
        print(f"\ntest_slurm skipped: {problem}", file=sys.stderr)
        pytest.skip(f"no usable Slurm: {problem}")


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("SLURM_ARRAY_TASK_ID", None)
    env.pop("SLURM_RESTART_COUNT", None)
    r = subprocess.run([sys.executable, "-m", "meanfield.cli", *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def job_gone(job):
    r = subprocess.run(["squeue", "-h", "-j", str(job)], capture_output=True, text=True)
    return r.returncode != 0 or not r.stdout.strip()


def submit(script, cwd):
    """Submit ``script``; returns the job id."""
    r = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                       timeout=60, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().split(";")[0]


def wait_for(job, folder):
    """Wait until ``job`` has left the queue; cancel it (and fail) after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    try:
        while not job_gone(job):
            assert time.monotonic() < deadline, (f"job {job} still queued after {TIMEOUT} s\n"
                                                 + logs(folder))
            time.sleep(0.5)
    finally:
        if not job_gone(job):
            subprocess.run(["scancel", job], timeout=60)


def logs(folder):
    return "".join(p.read_text() for p in sorted((folder / "logs").glob("*.out")))


TINY = sweep_text({"model.activation": "relu", "data.d": 2, "data.n_train": 16,
                   "data.n_test": 16, "train.lr": 0.05, "train.steps": 50, "record.every": 10},
                  {"model.m": [4, 8]}, seeds=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 4-point sweep submitted with sbatch --wait: warm-up in the job, then every point."""
    tmp = tmp_path_factory.mktemp("slurm")
    (tmp / "sweep.toml").write_text(TINY)
    folder = tmp / "tiny"
    cli("sweep", "plan", tmp / "sweep.toml", "-o", folder)
    out = cli("sweep", "sbatch", folder, "--max-parallel", "2", "--time", "00:10:00")
    script = folder / "sweep.sbatch"
    assert f"sbatch {script}" in out
    job = submit(script, tmp)
    wait_for(job, folder)
    return folder


def test_array_job_runs_every_point(tiny):
    folder = tiny
    assert cli("sweep", "status", folder).split() == ["completed", "4", "total", "4"]
    cli("sweep", "collect", folder)
    with open(folder / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    assert {int(r["model.m"]) for r in rows} == {4, 8}
    text = logs(folder)
    assert len(list((folder / "logs").glob("*.out"))) == 4
    assert text.count("warming the numba cache") == 1, text
    assert text.count(": completed (started)") == 4, text
    assert len(list((folder / "numba-cache").glob("warm-*"))) == 1


LONG = long_sweep(1000000, 0.001, 1000, 100000, 2000)


def hurry(job):
    """Start a requeued task at once instead of after Slurm's 2-minute hold."""
    r = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True)
    if r.stdout.split()[:1] == ["PENDING"] and "BeginTime" in r.stdout:
        subprocess.run(["scontrol", "update", f"JobId={job}_0", "StartTime=now"], timeout=60)


def wait_training(job, path, folder, more_than=0, requeued=False):
    """Wait until the point at ``path`` has more than ``more_than`` records."""
    deadline = time.monotonic() + TIMEOUT
    while recorded(path) <= more_than and time.monotonic() < deadline and not job_gone(job):
        if requeued:
            hurry(job)
        time.sleep(0.1)
    if recorded(path) <= more_than:
        subprocess.run(["scancel", job], timeout=60)
        pytest.fail("the job recorded nothing new\n" + logs(folder))


def usr1(job):
    """What Slurm does 60 s before the time limit (--signal=B:USR1@60)."""
    subprocess.run(["scancel", "--batch", "--signal=USR1", f"{job}_0"], check=True, timeout=60)


def test_usr1_requeues_until_the_limit_then_the_point_is_failed(tiny, tmp_path):
    folder = tmp_path / "long"
    (tmp_path / "long.toml").write_text(LONG)
    plan = sweep.plan(tmp_path / "long.toml", folder)
    # share the compiled kernels of the first sweep (same machine)
    (folder / "numba-cache").symlink_to(tiny / "numba-cache", target_is_directory=True)
    script = sweep.sbatch_script(folder, time="00:10:00", max_requeue=1)
    job = submit(script, tmp_path)
    wait_training(job, plan.path(0), folder)
    usr1(job)                      # restart 0 < 1: checkpoint, requeue
    deadline = time.monotonic() + TIMEOUT
    while "requeueing job" not in logs(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    done = recorded(plan.path(0))
    wait_training(job, plan.path(0), folder, more_than=done, requeued=True)
    assert "restart 1)" in logs(folder)
    usr1(job)                      # restart 1: the limit, the point is failed
    wait_for(job, folder)
    text = logs(folder)
    assert "exit status 138" in text and "requeueing job" in text, text
    assert "restart 1)" in text and "exit status 1\n" in text, text
    assert "failed: stopped at the time limit after 1 requeue(s) (--max-requeue 1)" in text, text
    assert text.count("requeueing job") == 1, text
    assert sweep.point_statuses(folder) == ["failed"]
    assert "--max-requeue 1" in cli("sweep", "status", folder, "--json")
    # run by hand, it resumes and completes, bit-identical to an uninterrupted run
    cli("sweep", "run", folder, "--index", "0", "--quiet")
    assert sweep.point_statuses(folder) == ["completed"]
    with open_run(plan.path(0)) as run:
        assert run.steps[-1] == 1000000
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        simulate(plan.config(0), out=tmp_path / "reference.h5").close()
    finally:
        numba.set_num_threads(threads)
    with open_run(plan.path(0)) as a, open_run(tmp_path / "reference.h5") as b:
        assert (a.particles(slice(None)) == b.particles(slice(None))).all()
        for name in a.observable_names:
            assert (a.observable(name).value == b.observable(name).value).all()


def test_split_arrays_in_a_hostile_folder(tiny, tmp_path):
    """Two array jobs (MaxArraySize 2) of a folder whose name is hostile to shells and Slurm."""
    (tmp_path / "sweep.toml").write_text(TINY)
    folder = tmp_path / "a b;touch PWNED;'%x"
    cli("sweep", "plan", tmp_path / "sweep.toml", "-o", folder)
    (folder / "numba-cache").symlink_to(tiny / "numba-cache", target_is_directory=True)
    out = cli("sweep", "sbatch", folder, "--max-array-size", "2", "--time", "00:10:00",
              "--sbatch-option", "comment=two words")
    scripts = sorted(folder.glob("sweep-*.sbatch"))
    assert [s.name for s in scripts] == ["sweep-000.sbatch", "sweep-001.sbatch"], out
    jobs = [submit(s, tmp_path) for s in scripts]
    for job in jobs:
        wait_for(job, folder)
    text = cli("sweep", "status", folder)
    assert text.split()[:4] == ["completed", "4", "total", "4"], text
    assert "sweep-001.sbatch (points 2-3): completed 2" in text
    assert len(list((folder / "logs").glob("*.out"))) == 4
    assert logs(folder).count(": completed (started)") == 4
    assert not list(tmp_path.rglob("PWNED*"))


def test_run_sweep_through_submitit(tmp_path):
    submitit = pytest.importorskip("submitit")
    (tmp_path / "sweep.toml").write_text(TINY)
    folder = tmp_path / "submitit"
    sweep.plan(tmp_path / "sweep.toml", folder)
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm")
    executor.update_parameters(timeout_min=10, cpus_per_task=1)
    assert sweep.run_sweep(folder, executor) == ["completed"] * 4
    report = sweep.status_report(folder)
    assert report["counts"]["completed"] == 4, report
