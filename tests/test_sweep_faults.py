"""Sweeps under faults and hostile input: signals, killed parents and points, escaping paths."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from meanfield import InputError, open_run
from meanfield import sweep

from sweeptools import (ROOT, SWEEP, cli, contents, long_sweep, main, popen_cli, recorded,
                        wait_until, write)

LONG = long_sweep(200000000, 0.0001, 100000, 10000000, 1000000000,
                  {"model.activation": ["relu", "tanh"]}, checkpoint_seconds=1e6)
"""Two points too long to finish during a test, whose only checkpoints are step 0 and a
signal's."""


def children(pid):
    """The pids of the processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def checkpoint_step(path):
    with open_run(path) as run:
        ck = run.checkpoint()
        return None if ck is None else ck.step


def start_local(tmp_path):
    """`sweep local -j 2` on LONG, returned once both points are training."""
    plan = sweep.plan(write(tmp_path / "long.toml", LONG), tmp_path / "long")
    proc = popen_cli("sweep", "local", plan.folder, "-j", "2")
    wait_until(lambda: (recorded(plan.path(0)) > 1 and recorded(plan.path(1)) > 1)
               or proc.poll() is not None, what="both points to train")
    assert proc.poll() is None, proc.communicate()
    workers = [p for p in children(proc.pid) if "resource_tracker" not in
               Path(f"/proc/{p}/cmdline").read_text()]
    assert len(workers) >= 2, workers
    return plan, proc, workers


@pytest.mark.slow
def test_sigterm_to_sweep_local_checkpoints_every_running_point(tmp_path):
    plan, proc, workers = start_local(tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM" in lines[0], err
    assert "2 running point(s) checkpointed" in lines[0] and "run the sweep again" in lines[0]
    wait_until(lambda: not any(alive(w) for w in workers), timeout=30, what="workers to exit")
    assert sweep.point_statuses(plan.folder) == ["running", "running"]
    for i in range(2):      # the only checkpoint after step 0 is the one SIGTERM asked for
        assert checkpoint_step(plan.path(i)) > 0


@pytest.mark.slow
def test_workers_die_with_a_killed_sweep_local(tmp_path):
    plan, proc, workers = start_local(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    wait_until(lambda: not any(alive(w) for w in workers), timeout=30,
               what=f"the workers {workers} of the killed parent to exit")
    # they were told with SIGTERM: each left a checkpoint where it stopped
    for i in range(2):
        assert checkpoint_step(plan.path(i)) > 0


KILL_EARLY = """\
import os, signal, sys
from meanfield import sweep, simulate
plan = sweep.load_plan(sys.argv[1])
simulate(plan.config(0), out=plan.path(0),
         callback=lambda step, P: os.kill(os.getpid(), signal.SIGKILL))
"""


def test_a_point_killed_before_its_first_checkpoint_does_not_block_the_sweep(tmp_path):
    text = SWEEP.replace("record.checkpoint_every = 10", "record.checkpoint_every = 1000000\n"
                         "record.checkpoint_seconds = 1000000.0")
    plan = sweep.plan(write(tmp_path / "s.toml", text), tmp_path / "out")
    r = subprocess.run([sys.executable, "-c", KILL_EARLY, str(plan.folder)],
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == -signal.SIGKILL
    assert plan.path(0).exists() and sweep.point_statuses(plan.folder)[0] == "running"
    r = cli("sweep", "run", plan.folder, "--index", "0")
    assert r.returncode == 0, r.stderr
    assert sweep.point_statuses(plan.folder)[0] == "completed"
    # the same as a run that was never killed
    write(tmp_path / "point.toml", plan.config(0).to_toml())
    r = cli("run", tmp_path / "point.toml", "-o", tmp_path / "reference.h5", "--quiet")
    assert r.returncode == 0, r.stderr
    assert contents(plan.path(0)) == contents(tmp_path / "reference.h5")


# ----------------------------------------------------------------------- hostile paths
def test_point_outputs_outside_the_folder_are_refused(tmp_path, capsys):
    folder = tmp_path / "deep" / "out"
    sweep.plan(write(tmp_path / "s.toml", SWEEP), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for output in ("/tmp/meanfield-escaped.h5", "runs/../../escaped.h5", "", 3, "../../escaped.h5"):
        manifest["points"][0]["output"] = output
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(InputError, match="point 0: output"):
            sweep.load_plan(folder)
    r = cli("sweep", "run", folder, "--index", "0")
    assert r.returncode == 2 and "outside the sweep folder" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    for cmd in ("local", "status", "collect"):
        code, out, err = main(capsys, "sweep", cmd, folder)
        assert code == 2 and "outside the sweep folder" in err, (cmd, err)
    assert not (tmp_path / "escaped.h5").exists()
    assert not Path("/tmp/meanfield-escaped.h5").exists()


def test_a_link_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "out"
    sweep.plan(write(tmp_path / "s.toml", SWEEP), folder)
    (folder / "runs").rmdir()
    (tmp_path / "elsewhere").mkdir()
    (folder / "runs").symlink_to(tmp_path / "elsewhere")
    r = cli("sweep", "run", folder, "--index", "0")
    assert r.returncode == 2 and "outside the sweep folder" in r.stderr, r.stderr
    assert not list((tmp_path / "elsewhere").iterdir())


def test_control_characters_in_script_paths_are_refused(tmp_path):
    folder = tmp_path / "nl\necho PWNED\n#"
    sweep.plan(write(tmp_path / "s.toml", SWEEP), folder)
    r = cli("sweep", "sbatch", folder)
    assert r.returncode == 2 and "control character" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (folder / "sweep.sbatch").exists()
    ok = tmp_path / "ok"
    sweep.plan(tmp_path / "s.toml", ok)
    r = cli("sweep", "sbatch", ok, "--sbatch-option", "comment=a\nb")
    assert r.returncode == 2 and "control character" in r.stderr, r.stderr


HOSTILE = "a b;touch PWNED;'q\"$(touch PWNED2)%x"


def test_hostile_folder_names_are_quoted_in_the_script(tmp_path):
    folder = tmp_path / HOSTILE
    sweep.plan(write(tmp_path / "s.toml", SWEEP), folder)
    r = cli("sweep", "sbatch", folder, "--sbatch-option", 'comment=two words "quoted"')
    assert r.returncode == 0, r.stderr
    script = folder / "sweep.sbatch"
    text = script.read_text()
    logs = str(folder.resolve() / "logs").replace("%", "%%").replace('"', '\\"')
    assert f'#SBATCH "--output={logs}/%A_%a.out"' in text.splitlines()
    assert '#SBATCH "--comment=two words \\"quoted\\""' in text.splitlines()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    # the shell reads back exactly the folder, and runs nothing hidden in its name
    lines = [line for line in text.splitlines() if line.startswith(("SWEEP=", "PYTHON="))]
    r = subprocess.run(["bash", "-c", "\n".join(lines) + '\nprintf %s "$SWEEP"'],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout == str(folder.resolve())
    assert not list(tmp_path.glob("PWNED*"))
