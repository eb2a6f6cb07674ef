"""The ``meanfield`` command line, run in subprocesses.

Contract (design section 3): bad input never produces a traceback or a half-written
file; it gives one clear message naming the key/path and exit status 2.  A progress
bar appears only on a terminal.
"""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import meanfield
from meanfield.config import Config

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # generous: a cold Numba cache compiles the kernels on first use


def tiny_toml(m=8, n_train=20, n_test=20, steps=30, every=5, snapshot_every=10):
    """The text of a tiny run's config (d = 3, every other key at its default)."""
    return (f"[model]\nm = {m}\n\n[data]\nd = 3\nn_train = {n_train}\nn_test = {n_test}\n\n"
            f"[train]\nsteps = {steps}\n\n[record]\nevery = {every}\n"
            f"snapshot_every = {snapshot_every}\n")


TINY = tiny_toml()


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("COLUMNS", None)
    return env


def cli(*args, cwd, timeout=TIMEOUT, **kwargs):
    """Run ``python -m meanfield.cli ARGS`` in ``cwd``; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "meanfield.cli", *map(str, args)],
                          cwd=cwd, env=_env(), capture_output=True, text=True, check=False,
                          timeout=timeout, **kwargs)


def describe(result):
    """Failure text for an unexpected exit status (a negative one is a signal, e.g. -11)."""
    how = (f"killed by signal {-result.returncode}" if result.returncode < 0
           else f"exit status {result.returncode}")
    return f"{how}\nstdout: {result.stdout}\nstderr: {result.stderr}"


def listing(folder):
    """Every name in ``folder`` (hidden ones included), recursively."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def assert_input_error(result, *needles, folder=None, before=None, output=None):
    """Exit 2, exactly one non-empty stderr line naming every needle, no traceback,
    nothing on stdout, and the folder unchanged (no output, no temporary file)."""
    err_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode >= 0, f"killed by signal {-result.returncode}: {result.stderr}"
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(err_lines) == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for needle in needles:
        assert str(needle) in err_lines[0], f"{needle!r} not in {err_lines[0]!r}"
    assert result.stdout == "", result.stdout
    if output is not None:
        assert not Path(output).exists(), f"{output} was written"
    if folder is not None:
        assert listing(folder) == before, "files appeared or vanished in the run folder"
    return err_lines[0]


@pytest.fixture
def work(tmp_path):
    """A folder with the tiny config ``c.toml``."""
    (tmp_path / "c.toml").write_text(TINY)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One completed tiny run (``out.h5``) shared by the read-only tests."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "c.toml").write_text(TINY)
    result = cli("run", "c.toml", "-o", "out.h5", cwd=folder)
    return folder, result


# ------------------------------------------------------------------ happy path


def test_run_tiny_config(tiny_run):
    folder, result = tiny_run
    assert result.returncode == 0, describe(result)
    out = folder / "out.h5"
    assert out.is_file()
    with meanfield.open_run(out) as run:
        assert run.status == "completed"
        np.testing.assert_array_equal(run.steps, [0, 10, 20, 30])
        np.testing.assert_allclose(run.times, 0.1 * np.array([0, 10, 20, 30]))
        assert run.particles(-1).shape == (8, 4)
        assert run.config == Config.from_toml(folder / "c.toml")
        train = run.observable("train_loss")
        np.testing.assert_array_equal(train.step, np.arange(0, 31, 5))
        assert np.all(np.isfinite(train.value))
    # nothing but the config and the output is left behind
    assert listing(folder) == ["c.toml", "out.h5"]


def test_run_not_a_tty_prints_no_progress_bar(tiny_run):
    _, result = tiny_run
    assert result.stderr == ""
    assert "out.h5" in result.stdout and len(result.stdout.splitlines()) == 1
    for stream in (result.stdout, result.stderr):
        assert "\r" not in stream and "%|" not in stream and "step/s" not in stream


def _run_on_pty(args, cwd):
    """Run the CLI with stderr on a pseudo-terminal (24 x 80); return (rc, tty text, stdout)."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    # a pty starts with size 0 x 0, for which tqdm draws nothing; give it a real size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "meanfield.cli", *args], cwd=cwd,
                                env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO on Linux once the child has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read().decode()
        rc = proc.wait(timeout=TIMEOUT)
    finally:
        os.close(master)
    return rc, b"".join(chunks).decode(errors="replace"), out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_run_on_a_tty_shows_progress_bar(work):
    # the converse of the test above, so that it can tell a bar from no bar
    rc, tty, out = _run_on_pty(["run", "c.toml", "-o", "out.h5"], work)
    assert rc == 0, tty
    assert "%|" in tty and "30" in tty, repr(tty)
    assert "out.h5" in out
    # --quiet silences it even on a terminal
    rc, tty, out = _run_on_pty(["run", "c.toml", "-o", "q.h5", "--quiet"], work)
    assert rc == 0, tty
    assert tty == "" and out == ""


def test_run_quiet_prints_nothing(work):
    result = cli("run", "c.toml", "-o", "out.h5", "--quiet", cwd=work)
    assert result.returncode == 0, describe(result)
    assert result.stdout == ""
    assert result.stderr == ""
    with meanfield.open_run(work / "out.h5") as run:
        assert run.status == "completed"


def test_run_default_output_name(work):
    result = cli("run", "c.toml", "-q", cwd=work)
    assert result.returncode == 0, describe(result)
    with meanfield.open_run(work / "c.h5") as run:
        assert run.status == "completed"


def test_set_overrides_land_in_stored_config(work):
    sets = ["train.lr=0.05", "model.activation=tanh", "model.bias=true", "run.seed=7",
            'data.input="sphere"', "train.steps=20", "scaling.alpha=2.5"]
    args = [a for s in sets for a in ("--set", s)]
    result = cli("run", "c.toml", "-o", "out.h5", *args, cwd=work)
    assert result.returncode == 0, describe(result)
    with meanfield.open_run(work / "out.h5") as run:
        cfg = run.config
        assert cfg == Config.from_toml(work / "c.toml", sets)
        assert cfg.train.lr == 0.05
        assert cfg.model.activation == "tanh"
        assert cfg.model.bias is True
        assert cfg.run.seed == 7
        assert cfg.data.input == "sphere"
        assert cfg.scaling.alpha == 2.5 and run.alpha == 2.5
        # untouched values come from the file
        assert cfg.model.m == 8 and cfg.data.d == 3
        # the overrides took effect in the run itself, not just the header
        np.testing.assert_array_equal(run.steps, [0, 10, 20])
        assert run.particles(0).shape == (8, 5)  # d + bias + c


def test_info(tiny_run):
    folder, _ = tiny_run
    result = cli("info", "out.h5", cwd=folder)
    assert result.returncode == 0, describe(result)
    assert result.stderr == ""
    text = result.stdout
    assert "completed" in text
    assert "m=8" in text
    with meanfield.open_run(folder / "out.h5") as run:
        names = run.observable_names
    assert {"train_loss", "test_loss"} <= set(names)
    for name in names:
        assert name in text, name
    # info is read-only
    assert listing(folder) == ["c.toml", "out.h5"]


def test_info_reports_m_of_the_file(work):
    result = cli("run", "c.toml", "-o", "m6.h5", "-q", "--set", "model.m=6", cwd=work)
    assert result.returncode == 0, describe(result)
    text = cli("info", "m6.h5", cwd=work).stdout
    assert "m=6" in text and "m=8" not in text


# ------------------------------------------------------------------- bad config


BAD_CONFIGS = {
    "unknown_section": ("[modle]\nm = 8\n", ["modle"]),
    "unknown_key": ("[model]\nwdith = 8\n", ["model.wdith", "unknown key"]),
    "wrong_type_str_for_int": ('[model]\nm = "8"\n', ["model.m"]),
    "wrong_type_float_for_int": ("[train]\nsteps = 10.0\n", ["train.steps"]),
    "wrong_type_int_for_bool": ("[model]\nbias = 1\n", ["model.bias"]),
    "m_zero": ("[model]\nm = 0\n", ["model.m"]),
    "lr_zero": ("[train]\nlr = 0\n", ["train.lr"]),
    "lr_negative": ("[train]\nlr = -0.1\n", ["train.lr"]),
    "lr_nan": ("[train]\nlr = nan\n", ["train.lr"]),
    "steps_negative": ("[train]\nsteps = -1\n", ["train.steps"]),
    "unknown_activation": ('[model]\nactivation = "gelu"\n', ["model.activation"]),
    "unknown_loss": ('[loss]\nname = "hinge"\n', ["loss.name"]),
    "unknown_algorithm": ('[train]\nalgorithm = "adam"\n', ["train.algorithm"]),
    "symmetric_odd_m": ("[model]\nm = 7\n[init]\nsymmetric = true\n", ["model.m"]),
    "file_without_path": ('[data]\nkind = "file"\n', ["data.path"]),
}


@pytest.mark.parametrize("text, needles", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_file(text, needles, tmp_path):
    (tmp_path / "bad.toml").write_text(text)
    before = listing(tmp_path)
    result = cli("run", "bad.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, *needles, folder=tmp_path, before=before,
                       output=tmp_path / "out.h5")


BAD_SETS = {
    "unknown_section": ("nosuch.m=1", ["nosuch"]),
    "unknown_key": ("model.wdith=8", ["model.wdith", "unknown key"]),
    "wrong_type": ("model.m=eight", ["model.m"]),
    "float_for_int": ("model.m=8.5", ["model.m"]),
    "bool_for_float": ("train.lr=true", ["train.lr"]),
    "m_zero": ("model.m=0", ["model.m"]),
    "lr_zero": ("train.lr=0", ["train.lr"]),
    "lr_inf": ("train.lr=inf", ["train.lr"]),
    "steps_negative": ("train.steps=-3", ["train.steps"]),
    "unknown_activation": ("model.activation=gelu", ["model.activation"]),
    "unknown_loss": ("loss.name=hinge", ["loss.name"]),
    "unknown_algorithm": ("train.algorithm=adam", ["train.algorithm"]),
    "malformed": ("model.m", ["model.m"]),
}


@pytest.mark.parametrize("item, needles", BAD_SETS.values(), ids=BAD_SETS.keys())
def test_bad_set_override(item, needles, work):
    before = listing(work)
    result = cli("run", "c.toml", "-o", "out.h5", "--set", item, cwd=work)
    assert_input_error(result, *needles, folder=work, before=before, output=work / "out.h5")


def test_missing_config_file(tmp_path):
    before = listing(tmp_path)
    result = cli("run", "missing.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, "missing.toml", folder=tmp_path, before=before,
                       output=tmp_path / "out.h5")


def test_config_is_a_directory(tmp_path):
    (tmp_path / "conf.toml").mkdir()
    before = listing(tmp_path)
    result = cli("run", "conf.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, "conf.toml", folder=tmp_path, before=before)


@pytest.mark.parametrize("text", ["[model\nm = 8\n", "[model]\nm = 8\nm = 9\n", "m ="])
def test_invalid_toml_config(text, tmp_path):
    (tmp_path / "broken.toml").write_text(text)
    before = listing(tmp_path)
    result = cli("run", "broken.toml", "-o", "out.h5", cwd=tmp_path)
    line = assert_input_error(result, "broken.toml", folder=tmp_path, before=before,
                              output=tmp_path / "out.h5")
    assert "TOML" in line


def test_binary_config(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    before = listing(tmp_path)
    result = cli("run", "bin.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, "bin.toml", folder=tmp_path, before=before)


# ---------------------------------------------------------------- bad data files


FILE_CONFIG = """\
[model]
m = 8

[data]
kind = "file"
path = "{path}"
d = 3

[loss]
name = "{loss}"

[train]
steps = 10

[record]
every = 5
snapshot_every = 5
"""


def _arrays(n=20, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.standard_normal((n, d)), "y_train": rng.choice([-1.0, 1.0], n),
            "x_test": rng.standard_normal((n, d)), "y_test": rng.choice([-1.0, 1.0], n)}


def _file_run(folder, arrays, loss="squared", name="data.npz"):
    np.savez(folder / name, **arrays)
    (folder / "f.toml").write_text(FILE_CONFIG.format(path=name, loss=loss))
    before = listing(folder)
    result = cli("run", "f.toml", "-o", "out.h5", cwd=folder)
    return result, before


def test_good_data_file_runs(tmp_path):
    # the positive control for the bad-data tests below
    arrays = _arrays()
    result, _ = _file_run(tmp_path, arrays, loss="logistic")
    assert result.returncode == 0, describe(result)
    with meanfield.open_run(tmp_path / "out.h5") as run:
        assert run.status == "completed"
        np.testing.assert_array_equal(run.data.x_train, arrays["x_train"])
        np.testing.assert_array_equal(run.data.y_test, arrays["y_test"])


def test_logistic_labels_not_pm1(tmp_path):
    arrays = _arrays()
    arrays["y_train"] = np.random.default_rng(1).standard_normal(20)
    result, before = _file_run(tmp_path, arrays, loss="logistic")
    line = assert_input_error(result, "data.npz", "y_train", folder=tmp_path, before=before,
                              output=tmp_path / "out.h5")
    assert "logistic" in line


@pytest.mark.parametrize("name", ["x_train", "y_train", "x_test", "y_test"])
def test_data_with_nan(name, tmp_path):
    arrays = _arrays()
    arrays[name].flat[3] = np.nan
    result, before = _file_run(tmp_path, arrays)
    assert_input_error(result, "data.npz", name, folder=tmp_path, before=before,
                       output=tmp_path / "out.h5")


@pytest.mark.parametrize("change, needle", [
    (lambda a: a.update(y_train=a["y_train"][:15]), "y_train"),
    (lambda a: a.update(y_test=a["y_test"][:-1]), "y_test"),
    (lambda a: a.update(x_test=a["x_test"][:, :2]), "x_test"),
    (lambda a: a.update(x_train=np.zeros((20, 4))), "x_train"),
    (lambda a: a.update(y_train=a["y_train"][:, None]), "y_train"),
    (lambda a: a.pop("y_test"), "y_test"),
], ids=["y_train_rows", "y_test_rows", "x_test_columns", "x_train_columns",
        "y_train_2d", "missing_y_test"])
def test_data_with_bad_shapes(change, needle, tmp_path):
    arrays = _arrays()
    change(arrays)
    result, before = _file_run(tmp_path, arrays)
    assert_input_error(result, "data.npz", needle, folder=tmp_path, before=before,
                       output=tmp_path / "out.h5")


def test_data_file_missing(tmp_path):
    (tmp_path / "f.toml").write_text(FILE_CONFIG.format(path="nope.npz", loss="squared"))
    before = listing(tmp_path)
    result = cli("run", "f.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, "nope.npz", folder=tmp_path, before=before,
                       output=tmp_path / "out.h5")


def test_data_file_corrupt(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip archive")
    (tmp_path / "f.toml").write_text(FILE_CONFIG.format(path="junk.npz", loss="squared"))
    before = listing(tmp_path)
    result = cli("run", "f.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, "junk.npz", folder=tmp_path, before=before,
                       output=tmp_path / "out.h5")


def test_h5_data_file_with_group_instead_of_array(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5.create_group("x_train")
        for k, v in _arrays().items():
            if k != "x_train":
                h5[k] = v
    (tmp_path / "f.toml").write_text(FILE_CONFIG.format(path="d.h5", loss="squared"))
    before = listing(tmp_path)
    result = cli("run", "f.toml", "-o", "out.h5", cwd=tmp_path)
    assert_input_error(result, "d.h5", folder=tmp_path, before=before)


# ---------------------------------------------------------------- output paths


def test_existing_output_is_left_untouched(tiny_run, tmp_path):
    folder, _ = tiny_run
    original = (folder / "out.h5").read_bytes()
    (tmp_path / "c.toml").write_text(TINY)
    (tmp_path / "out.h5").write_bytes(original)
    before = listing(tmp_path)
    result = cli("run", "c.toml", "-o", "out.h5", "--set", "model.m=4", cwd=tmp_path)
    line = assert_input_error(result, "out.h5", folder=tmp_path, before=before)
    assert "--overwrite" in line
    assert (tmp_path / "out.h5").read_bytes() == original


def test_existing_non_hdf5_output_is_left_untouched(work):
    precious = b"my thesis, do not delete\n" * 100
    (work / "out.h5").write_bytes(precious)
    before = listing(work)
    result = cli("run", "c.toml", "-o", "out.h5", cwd=work)
    assert_input_error(result, "out.h5", folder=work, before=before)
    assert (work / "out.h5").read_bytes() == precious


def test_overwrite_replaces_existing_output(work):
    (work / "out.h5").write_bytes(b"old contents")
    result = cli("run", "c.toml", "-o", "out.h5", "--overwrite", "--set", "model.m=4", cwd=work)
    assert result.returncode == 0, describe(result)
    with meanfield.open_run(work / "out.h5") as run:
        assert run.status == "completed"
        assert run.config.model.m == 4
    assert listing(work) == ["c.toml", "out.h5"]


def test_overwrite_with_bad_config_keeps_existing_output(work):
    precious = b"previous results\n" * 10
    (work / "out.h5").write_bytes(precious)
    before = listing(work)
    result = cli("run", "c.toml", "-o", "out.h5", "--overwrite", "--set", "model.m=0", cwd=work)
    assert_input_error(result, "model.m", folder=work, before=before)
    assert (work / "out.h5").read_bytes() == precious


def test_output_folder_missing(work):
    before = listing(work)
    result = cli("run", "c.toml", "-o", "no/such/dir/out.h5", cwd=work)
    assert_input_error(result, "no/such/dir", folder=work, before=before)


def test_output_is_a_directory(work):
    (work / "outdir").mkdir()
    before = listing(work)
    result = cli("run", "c.toml", "-o", "outdir", cwd=work)
    assert_input_error(result, "outdir", folder=work, before=before)


def test_overwrite_onto_a_directory(work):
    (work / "outdir").mkdir()
    before = listing(work)
    result = cli("run", "c.toml", "-o", "outdir", "--overwrite", cwd=work)
    assert_input_error(result, "outdir", folder=work, before=before)


# ------------------------------------------------------------------------- info


def test_info_missing_file(tmp_path):
    result = cli("info", "missing.h5", cwd=tmp_path)
    assert_input_error(result, "missing.h5", folder=tmp_path, before=[])


def test_info_not_hdf5(tmp_path):
    (tmp_path / "notes.h5").write_text("just some text\n")
    before = listing(tmp_path)
    result = cli("info", "notes.h5", cwd=tmp_path)
    assert_input_error(result, "notes.h5", folder=tmp_path, before=before)


def test_info_hdf5_but_not_a_run(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5["x"] = np.arange(3)
    before = listing(tmp_path)
    result = cli("info", "other.h5", cwd=tmp_path)
    assert_input_error(result, "other.h5", folder=tmp_path, before=before)


def test_info_run_file_missing_parameters(tiny_run, tmp_path):
    folder, _ = tiny_run
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes((folder / "out.h5").read_bytes())
    with h5py.File(damaged, "r+") as h5:
        del h5["parameters"]
    result = cli("info", "damaged.h5", cwd=tmp_path)
    assert_input_error(result, "damaged.h5")


def test_info_truncated_file(tiny_run, tmp_path):
    # regression: opening a truncated file in SWMR mode made HDF5 retry for many minutes;
    # a healthy `info` takes about a second, so the timeout turns a hang into a failure
    folder, _ = tiny_run
    data = (folder / "out.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 10])
    before = listing(tmp_path)
    result = cli("info", "cut.h5", cwd=tmp_path, timeout=30)
    assert_input_error(result, "cut.h5", folder=tmp_path, before=before)


# -------------------------------------------------------------------- argparse


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    [],
    ["run"],
    ["info"],
    ["run", "c.toml", "--no-such-flag"],
    ["run", "c.toml", "--set"],
    ["run", "c.toml", "--resume", "--overwrite"],
], ids=["unknown_subcommand", "no_subcommand", "run_no_config", "info_no_file",
        "unknown_flag", "set_without_value", "resume_and_overwrite"])
def test_usage_errors(args, work):
    before = listing(work)
    result = cli(*args, cwd=work)
    assert_input_error(result, folder=work, before=before)


def test_help_exits_zero(tmp_path):
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "run" in result.stdout and "info" in result.stdout


# ------------------------------------------------------------------------- demo


def test_demo(tmp_path):
    result = cli("demo", "-o", "figs", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr
    h5, png = tmp_path / "figs" / "demo.h5", tmp_path / "figs" / "demo.png"
    assert h5.is_file() and png.is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    printed = result.stdout
    assert str(Path("figs") / "demo.h5") in printed
    assert str(Path("figs") / "demo.png") in printed
    with meanfield.open_run(h5) as run:
        assert run.status == "completed"
        assert run.config.scaling.regime == "mean_field"
        assert len(run.steps) > 1
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["demo.h5", "demo.png"]
