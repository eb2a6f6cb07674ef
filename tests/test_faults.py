"""Faults: kills, readers, full disks, two writers, damaged files, hostile output paths.

Each test reproduces one fault (a subprocess where it is a command; a tiny
tmpfs, or an injected ENOSPC, where it is the disk) and checks that nothing
is lost, nothing hangs and the user gets one clear line.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from meanfield.cli import main
from meanfield.config import Config
from meanfield.data import Dataset
from meanfield.errors import InputError
from meanfield.storage import (Busy, NoCheckpoint, RunWriter, WriteFailed, open_run,
                               replacing)
from meanfield.storage.lock import lock_path
from test_cli import TINY, _env, assert_input_error, cli, describe, work  # noqa: F401 (fixture)

SMALL = {"model": {"m": 6}, "data": {"d": 2, "n_train": 7, "n_test": 5},
         "train": {"lr": 0.1, "steps": 40}}
SERIES = {"train_loss": {"description": "risk on the training set"},
          "test_loss": {"description": "risk on the test set"}}


def write_run(path, records=12, finish="completed", checkpoints=(4, 8), config=SMALL):
    """A run file written through RunWriter alone (no engine): ``records`` records,
    a snapshot and a checkpoint at each step in ``checkpoints``; returns the config."""
    cfg = Config.from_dict(config)
    rng = np.random.default_rng(1)
    d, m = cfg.data.d, cfg.model.m
    data = Dataset(rng.normal(size=(7, d)), rng.normal(size=7), rng.normal(size=(5, d)),
                   rng.normal(size=5), teacher=rng.normal(size=(2, d + 1)))
    P = rng.normal(size=(m, d + 1))
    w = RunWriter.create(path, cfg, data, P, SERIES, overwrite=True)
    w.snapshot(0, P)
    w.checkpoint(0, P, {"state": 0})
    for k in range(1, records + 1):
        w.observables(list(SERIES), [k], np.array([[1.0 / k, 2.0 / k]]))
        if k in checkpoints:
            w.snapshot(k, P * k)
            w.checkpoint(k, P * k, {"state": k}, extras={"momentum": np.full(3, k)})
    if finish is None:
        w.close()
    else:
        w.finish(finish)
    return cfg


def read_everything(path):
    """Every number a reader can get from a run file, as one dict (raises on damage)."""
    with open_run(path) as run:
        out = {"status": run.status, "config": run.config_text, "steps": run.steps,
               "particles": run.particles(slice(None)), "data": run.data.x_train}
        for name in run.observable_names:
            out[name] = run.observable(name).value
        ck = run.checkpoint()
        out["checkpoint"] = None if ck is None else ck.particles
    return out


def same(a, b):
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)


def killed_writer_file(path, records=30):
    """A file whose writer was SIGKILLed mid-run (flagged open for writing, status running)."""
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import numpy as np
        import test_faults as t
        from meanfield.storage import RunWriter
        cfg = t.write_run({str(path)!r}, records={records}, finish=None)
        w = RunWriter.resume({str(path)!r}, cfg)[0]
        w.observables(list(t.SERIES), [{records + 1}], np.array([[0.5, 0.5]]))
        w.flush()
        os.kill(os.getpid(), 9)
    """)
    result = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == -9, describe(result)


# ------------------------------------------------------------- data loss and stuck runs


def _new_writer(tmp_path):
    """``(cfg, rng, writer)``: TINY in c.toml, a writer of out.h5 past its header only."""
    (tmp_path / "c.toml").write_text(TINY)
    cfg = Config.from_toml(tmp_path / "c.toml")
    rng = np.random.default_rng(0)
    data = Dataset(rng.normal(size=(20, 3)), rng.normal(size=20), rng.normal(size=(20, 3)),
                   rng.normal(size=20))
    return cfg, rng, RunWriter.create(tmp_path / "out.h5", cfg, data, rng.normal(size=(8, 4)),
                                      SERIES)


def test_file_without_checkpoint_restarts_on_resume(tmp_path):
    cfg, _, writer = _new_writer(tmp_path)
    writer.close()  # killed after the header, before its first checkpoint was complete
    with pytest.raises(NoCheckpoint):
        RunWriter.resume(tmp_path / "out.h5", cfg)
    assert not lock_path(tmp_path / "out.h5").exists()
    result = cli("run", "c.toml", "-o", "out.h5", "--resume", "-q", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    with open_run(tmp_path / "out.h5") as run:
        assert run.status == "completed" and run.steps[-1] == 30


def test_reader_holding_the_file_never_blocks_finish_and_sees_final_status(tmp_path):
    path = tmp_path / "held.h5"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import numpy as np
        import test_faults as t
        from meanfield.config import Config
        from meanfield.data import Dataset
        from meanfield.storage import RunWriter
        cfg = Config.from_dict(t.SMALL)
        rng = np.random.default_rng(0)
        data = Dataset(rng.normal(size=(7, 2)), rng.normal(size=7), rng.normal(size=(5, 2)),
                       rng.normal(size=5))
        w = RunWriter.create({str(path)!r}, cfg, data, rng.normal(size=(6, 3)), t.SERIES)
        w.checkpoint(0, rng.normal(size=(6, 3)), {{}})
        w.observables(list(t.SERIES), [1], np.array([[1.0, 2.0]]))
        w.flush()
        print("ready", flush=True)
        sys.stdin.readline()
        w.observables(list(t.SERIES), [2], np.array([[0.5, 1.0]]))
        print(w.finish("completed").status, flush=True)
    """)
    writer = subprocess.Popen([sys.executable, "-c", code], env=_env(), text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
    held = [open_run(path) for _ in range(3)]  # readers in a notebook
    assert held[0].status == "running"
    assert list(held[1].observable("train_loss").value) == [1.0]
    out, err = writer.communicate("go\n", timeout=60)
    assert writer.returncode == 0 and out.strip().endswith("completed"), err
    for run in held:
        assert run.status == "completed"
        assert list(run.observable("train_loss").value) == [1.0, 0.5]
        run.close()


def test_injected_write_failure_stops_at_once_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "full.h5"
    cfg = write_run(path, records=8, finish=None)
    writer, ck, _ = RunWriter.resume(path, cfg)
    assert ck.step == 8
    writer.observables(list(SERIES), [9], np.array([[0.1, 0.2]]))

    def no_space(*args):
        raise RuntimeError("Unable to synchronously flush file (file write failed: "
                           "errno = 28, error message = 'No space left on device')")
    monkeypatch.setattr(h5py.File, "flush", no_space)
    with pytest.raises(WriteFailed, match="no space left on device"):
        writer.checkpoint(9, np.zeros((6, 3)), {"state": 9})
    with pytest.raises(WriteFailed):  # every later call fails the same way, writing nothing
        writer.finish("failed", "crash")
    monkeypatch.undo()
    assert not lock_path(path).exists()
    with open_run(path) as run:
        assert run.status == "running" and run.checkpoint().step == 8
    writer, ck, _ = RunWriter.resume(path, cfg)  # resumable
    assert ck.step == 8 and ck.rng_state == {"state": 8}
    assert np.array_equal(ck.extras["momentum"], np.full(3, 8))
    writer.finish("completed")


def _mount_tmpfs(folder, size):
    folder.mkdir(exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}); "
                    "the injected-ENOSPC test covers the writer")
    return folder


BIG = TINY.replace("m = 8", "m = 200").replace("d = 3", "d = 20").replace(
    "steps = 30", "steps = 600").replace("every = 5", "every = 10\ncheckpoint_every = 100")


@pytest.mark.slow
def test_disk_full_on_a_tiny_tmpfs_then_resume_is_bit_identical(tmp_path):
    (tmp_path / "c.toml").write_text(BIG)
    disk = _mount_tmpfs(tmp_path / "disk", "1m")
    try:
        result = cli("run", "c.toml", "-o", disk / "out.h5", "-q", cwd=tmp_path, timeout=300)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 74, describe(result)
        assert len(lines) == 1 and "no space left on device" in lines[0], result.stderr
        with open_run(disk / "out.h5") as run:
            assert run.status == "running" and run.checkpoint() is not None
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        result = cli("run", "c.toml", "-o", disk / "out.h5", "--resume", "-q", cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        result = cli("run", "c.toml", "-o", "ref.h5", "-q", cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        assert same(read_everything(disk / "out.h5"), read_everything(tmp_path / "ref.h5"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_second_writer_is_refused_with_the_owner(tmp_path):
    cfg, rng, first = _new_writer(tmp_path)
    first.checkpoint(0, rng.normal(size=(8, 4)), {})
    owner = f"out.h5 is being written by pid {os.getpid()} on {socket.gethostname()}"
    for again in ("--overwrite", "--resume"):
        result = cli("run", "c.toml", "-o", "out.h5", again, cwd=tmp_path)
        assert_input_error(result, owner)
    with pytest.raises(Busy):
        RunWriter.resume(tmp_path / "out.h5", cfg)
    assert first.finish("completed").status == "completed"


def test_stale_lock_of_a_dead_writer_is_taken_over(tmp_path):
    (tmp_path / "c.toml").write_text(TINY)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock_path(tmp_path / "out.h5").write_text(f"{dead} {socket.gethostname()}\n")
    result = cli("run", "c.toml", "-o", "out.h5", "-q", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert not lock_path(tmp_path / "out.h5").exists()


@pytest.mark.slow
def test_writers_started_together_one_wins_one_is_refused(tmp_path):
    (tmp_path / "c.toml").write_text(TINY.replace("steps = 30", "steps = 3000"))
    procs = [subprocess.Popen([sys.executable, "-m", "meanfield.cli", "run", "c.toml", "-o",
                               "same.h5", "--overwrite", "-q"], cwd=tmp_path, env=_env(),
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, err in results:
        if code == 2:
            assert "is being written by pid" in err and len(err.strip().splitlines()) == 1
    with open_run(tmp_path / "same.h5") as run:
        assert run.status == "completed"


# -------------------------------------------------------------- corrupt and hostile files


def _flipped(src, dst, offset, n=16):
    shutil.copy(src, dst)
    with open(dst, "r+b") as fh:
        fh.seek(offset)
        raw = fh.read(n)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in raw))


def test_every_dataset_has_a_checksum(tmp_path):
    write_run(tmp_path / "r.h5")
    seen = []
    with h5py.File(tmp_path / "r.h5", "r") as h5:
        h5.visititems(lambda name, obj: seen.append((name, obj.fletcher32))
                      if isinstance(obj, h5py.Dataset) and obj.size > 1 else None)
    assert seen and all(ok for _, ok in seen), [n for n, ok in seen if not ok]


def test_flipped_bytes_give_an_error_or_the_right_numbers(tmp_path, capsys):
    good = tmp_path / "good.h5"
    write_run(good)
    truth = read_everything(good)
    size = good.stat().st_size
    tried = detected = 0
    for offset in range(64, size - 16, max(1, size // 60)):
        bad = tmp_path / "bad.h5"
        _flipped(good, bad, offset)
        tried += 1
        try:
            got = read_everything(bad)
        except InputError:
            detected += 1
            code = main(["info", str(bad)])
            err = capsys.readouterr().err
            assert code in (0, 2) and "Traceback" not in err
            continue
        assert same(got, truth), f"flip at {offset} changed numbers silently"
    # the rest fell in unused space (free metadata blocks, chunk padding) and changed nothing
    assert tried >= 50 and detected >= 3, (tried, detected)


@pytest.mark.slow
def test_metadata_corruption_is_one_line_for_info_and_resume(tmp_path, capsys):
    good = tmp_path / "good.h5"
    (tmp_path / "c.toml").write_text(TINY)
    assert cli("run", "c.toml", "-o", good, "-q", cwd=tmp_path).returncode == 0
    bad = tmp_path / "bad.h5"
    refused = []
    for offset in range(100, 4000, 100):  # superblock, object headers, link tables
        _flipped(good, bad, offset)
        for args in (["info", str(bad)], ["run", str(tmp_path / "c.toml"), "-o", str(bad),
                                          "--resume", "-q"]):
            code = main(args)
            err = capsys.readouterr().err
            assert code in (0, 2), (offset, args, err)
            if code == 2:
                assert len(err.strip().splitlines()) == 1 and str(bad) in err, err
                refused.append(offset)
    assert len(set(refused)) >= 4, refused
    _flipped(good, bad, refused[0])  # and as a user runs them
    for args in (["info", "bad.h5"], ["run", "c.toml", "-o", "bad.h5", "--resume"]):
        assert_input_error(cli(*args, cwd=tmp_path, timeout=60), "bad.h5")


def test_damaged_partial_file_is_refused_within_seconds(tmp_path):
    partial = tmp_path / "partial.h5"
    killed_writer_file(partial)
    assert open_run(partial).status == "running"
    script = textwrap.dedent(f"""
        import shutil, sys, time, json
        from meanfield.cli import main
        src, dst = {str(partial)!r}, {str(tmp_path / 'bad.h5')!r}
        times = []
        for offset in range(150, 3000, 150):
            shutil.copy(src, dst)
            with open(dst, "r+b") as fh:
                fh.seek(offset); raw = fh.read(16); fh.seek(offset)
                fh.write(bytes(b ^ 0xFF for b in raw))
            t = time.time()
            code = main(["info", dst])
            times.append((offset, code, time.time() - t))
        print(json.dumps(times))
    """)
    result = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, describe(result)
    times = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(code in (0, 2) and seconds < 5 for _, code, seconds in times), times
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------- hostile output paths


def _mount_readonly(folder):
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a read-only file system here ({result.stderr.strip()})")
    return folder


@pytest.mark.slow
def test_outputs_on_a_read_only_file_system(tmp_path):
    (tmp_path / "c.toml").write_text(TINY)
    (tmp_path / "s.toml").write_text('base = "c.toml"\n[grid]\n"model.m" = [4, 5]\n')
    assert cli("run", "c.toml", "-o", "run.h5", "-q", cwd=tmp_path).returncode == 0
    assert cli("sweep", "plan", "s.toml", "-o", "sw", cwd=tmp_path).returncode == 0
    ro = _mount_readonly(tmp_path / "ro")
    try:
        for args in (["run", "c.toml", "-o", ro / "x.h5"], ["plot", "run.h5", "-o", ro / "x.png"],
                     ["sweep", "collect", "sw", "-o", ro / "x.csv"], ["info", "run.h5"]):
            result = cli(*args, cwd=tmp_path, timeout=120)
            if args[0] == "info":
                assert result.returncode == 0
                continue
            assert_input_error(result, "read-only file system", ro / "x")
        assert os.listdir(ro) == []
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_output_names_at_the_length_limit(work):
    longest = "r" * 252 + ".h5"  # 255 bytes: the file system's limit
    result = cli("run", "c.toml", "-o", longest, "-q", cwd=work)
    assert result.returncode == 0, describe(result)
    assert (work / longest).exists() and not lock_path(work / longest).exists()
    assert_input_error(cli("run", "c.toml", "-o", "r" + longest, cwd=work), "too long")
    with replacing(work / ("p" * 251 + ".png")) as tmp:
        assert len(tmp.name) <= 255
        tmp.write_text("x")


@pytest.mark.parametrize("output", ["", "c.toml", "./c.toml"])
def test_output_that_is_empty_or_the_config_itself(work, output):
    before = (work / "c.toml").read_text()
    result = cli("run", "c.toml", "-o", output, cwd=work)
    assert_input_error(result, "empty file name" if not output else "is the input file")
    assert (work / "c.toml").read_text() == before


def test_plot_onto_its_own_run_file_is_refused(tiny_file):
    folder, name = tiny_file
    before = (folder / name).read_bytes()
    assert_input_error(cli("plot", name, "-o", name, cwd=folder), "is the input file")
    assert (folder / name).read_bytes() == before


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tinyfile")
    write_run(folder / "r.h5")
    return folder, "r.h5"


def test_info_into_a_closed_pipe_ends_quietly(tiny_file):
    folder, name = tiny_file
    result = subprocess.run(f"{sys.executable} -m meanfield.cli info {name} | head -1",
                            shell=True, cwd=folder, env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.startswith("file"), result
    assert result.stderr == "", result.stderr


def _loaded(pid, library, timeout=60):
    """Wait until process ``pid`` has mapped a shared library whose path contains ``library``."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if library in Path(f"/proc/{pid}/maps").read_text():
                return True
        except OSError:
            return False
        time.sleep(0.002)
    return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_sigint_while_starting_up_prints_no_traceback(tiny_file):
    folder, name = tiny_file
    for library in ("numpy", "h5py", "matplotlib"):  # while main() imports what it needs
        args = ["plot", name, "-o", "p.png"] if library == "matplotlib" else ["info", name]
        proc = subprocess.Popen([sys.executable, "-m", "meanfield.cli", *args],
                                cwd=folder, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        _loaded(proc.pid, library)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        # 130 with "meanfield: interrupted", or killed by the signal once main() returned
        assert proc.returncode in (0, 130, -signal.SIGINT), (proc.returncode, err)


def test_sigint_turned_into_an_import_error_is_reported_as_an_interruption(monkeypatch, capsys):
    # what an extension module does with an interrupt during its initialisation
    # (NumPy: "PyCapsule_Import could not import module datetime")
    def parser_interrupted_while_importing():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            raise ImportError("could not import module") from None
        raise AssertionError("SIGINT was not delivered")

    monkeypatch.setattr("meanfield.cli.build_parser", parser_interrupted_while_importing)
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.default_int_handler)
    try:
        assert main(["info", "x.h5"]) == 130
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert capsys.readouterr().err == "meanfield: interrupted\n"


def test_an_import_error_without_an_interrupt_is_not_hidden(monkeypatch):
    def broken():
        raise ImportError("a real one")

    monkeypatch.setattr("meanfield.cli.build_parser", broken)
    with pytest.raises(ImportError, match="a real one"):
        main(["info", "x.h5"])


def test_replacing_keeps_the_old_file_on_error_and_clears_stale_temporaries(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with replacing(target) as tmp:
            tmp.write_text("half")
            1 / 0
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".a.txt.tmp-{dead}"
    stale.write_text("left by a killed writer")
    with replacing(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_no_space_for_a_small_output_is_a_write_failure_not_bad_input(tmp_path):
    full = _mount_tmpfs(tmp_path / "full", "64k")
    try:
        with pytest.raises(WriteFailed, match="No space left on device"):
            with replacing(full / "big.txt") as tmp:
                tmp.write_bytes(b"x" * (1 << 20))
        assert os.listdir(full) == []
    finally:
        subprocess.run(["umount", "-l", str(full)], capture_output=True)
