"""Run files and commands as other tools see them: h5dump (HDF5 1.10), h5py, xarray,
pandas, pyh5md; killed files and ``meanfield repair``; --version, info --json, --help."""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

import meanfield
from meanfield.cli import EXIT_CODES, build_parser
from meanfield.storage import RunWriter, open_run
from meanfield.storage.hdf import clear_write_flag, write_flag
from meanfield.storage.lock import lock_path
from test_cli import REPO, TINY, assert_input_error, cli, describe
from test_faults import SMALL, killed_writer_file, write_run


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A run file made by ``meanfield run`` (gzip), in its folder."""
    folder = tmp_path_factory.mktemp("compat")
    (folder / "c.toml").write_text(TINY + '\ncompression = "gzip"\n[run]\nauthor = "Ada"\n')
    result = cli("run", "c.toml", "-o", "run.h5", "-q", cwd=folder)
    assert result.returncode == 0, describe(result)
    return folder / "run.h5"


# ----------------------------------------------------------------------- HDF5 tools


@pytest.mark.skipif(shutil.which("h5dump") is None,
                    reason="h5dump not installed (apt-get install hdf5-tools; .ci/run does it)")
def test_h5dump_reads_the_file(cli_run):
    version = subprocess.run(["h5dump", "--version"], capture_output=True, text=True).stdout
    result = subprocess.run(["h5dump", "-H", str(cli_run)], capture_output=True, text=True)
    assert result.returncode == 0, (version, result.stderr[-2000:])
    assert '"/observables/train_loss/value"' in result.stdout or "train_loss" in result.stdout
    data = subprocess.run(["h5dump", "-d", "/particles/network/position/step", str(cli_run)],
                          capture_output=True, text=True)
    assert data.returncode == 0 and "30" in data.stdout, data.stderr


def test_file_format_is_within_hdf5_1_10(cli_run):
    """What HDF5 1.10 cannot read: superblock > 3, boolean (enum) attributes, newer layouts."""
    with open(cli_run, "rb") as fh:
        head = fh.read(12)
    assert head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] <= 3
    bad = []

    def visit(name, obj):
        for key, value in obj.attrs.items():
            dt = obj.attrs.get_id(key).dtype
            if dt.kind == "b" or h5py.check_enum_dtype(dt) is not None:
                bad.append(f"{name}@{key}")
    with h5py.File(cli_run, "r") as h5:
        visit("/", h5)
        h5.visititems(visit)
        assert h5.id.get_access_plist().get_libver_bounds()[0] <= h5py.h5f.LIBVER_V110
    assert not bad, bad


def test_compression_and_chunking(tmp_path):
    for kind, filt in (("none", None), ("lzf", "lzf"), ("gzip", "gzip")):
        cfg = dict(SMALL, record={"compression": kind})
        write_run(tmp_path / f"{kind}.h5", config=cfg)
        with h5py.File(tmp_path / f"{kind}.h5", "r") as h5:
            for name in ("particles/network/position/value", "observables/train_loss/value",
                         "meanfield/data/x_train"):
                ds = h5[name]
                assert ds.compression == filt and ds.shuffle == (filt is not None), name
                assert ds.fletcher32 and ds.chunks is not None, name
            for name in ("particles", "rng_state", "lengths"):
                assert h5[f"meanfield/checkpoint/{name}"].chunks is not None
        assert np.array_equal(open_run(tmp_path / f"{kind}.h5").observable("test_loss").value,
                              open_run(tmp_path / "none.h5").observable("test_loss").value)


def test_step_is_the_dimension_scale_of_every_series(cli_run):
    with h5py.File(cli_run, "r") as h5:
        for group in ["particles/network/position"] + [f"observables/{n}"
                                                       for n in h5["observables"]]:
            step = h5[f"{group}/step"]
            assert step.is_scale
            for name in ("value", "time"):
                assert h5[f"{group}/{name}"].dims[0][0] == step, group


def test_xarray_reads_observables_on_a_step_axis(cli_run):
    xr = pytest.importorskip("xarray", reason="xarray is in the notebook extra")
    pytest.importorskip("h5netcdf", reason="h5netcdf reads HDF5 groups into xarray")
    with xr.open_dataset(cli_run, engine="h5netcdf", group="observables/train_loss",
                         phony_dims="sort") as ds:
        assert "step" in ds.dims and ds["value"].dims == ("step",)
        steps = list(ds["step"].values)
    with xr.open_dataset(cli_run, engine="h5netcdf", group="particles/network/position",
                         phony_dims="sort") as ds:
        assert ds["value"].dims == ("step", "particle", "coordinate")
    with open_run(cli_run) as run:
        assert steps == list(run.observable("train_loss").step)


def test_author_and_fixed_length_h5md_strings(tmp_path, cli_run, monkeypatch):
    with h5py.File(cli_run, "r") as h5:
        name = h5["h5md/author"].attrs.get_id("name")
        assert not name.dtype.kind == "O" and h5["h5md/author"].attrs["name"] == b"Ada"
        assert h5["h5md/creator"].attrs["name"] == b"meanfield"
    monkeypatch.setenv("MEANFIELD_AUTHOR", "Grace")
    write_run(tmp_path / "env.h5")
    with h5py.File(tmp_path / "env.h5", "r") as h5:
        assert h5["h5md/author"].attrs["name"] == b"Grace"


def test_pyh5md_reads_the_file(cli_run):
    pyh5md = pytest.importorskip("pyh5md", reason="pyh5md not installed")
    with pyh5md.File(str(cli_run), "r") as f:
        assert f["h5md"].attrs["version"].tolist() == [1, 1]
        pos = pyh5md.element(f["particles/network"], "position")
        assert pos.value.shape[0] == len(pos.step[()]) == 4


# ---------------------------------------------------------------- notebook conveniences


def test_to_xarray_and_pandas(cli_run):
    xr = pytest.importorskip("xarray", reason="xarray is in the notebook extra")
    run = open_run(cli_run)
    ds = run.to_xarray()
    assert isinstance(ds, xr.Dataset)
    obs = run.observable("test_loss")
    assert np.array_equal(ds["test_loss"].sel(step=obs.step).values, obs.value)
    assert ds["position"].dims == ("snapshot", "particle", "coordinate")
    assert np.array_equal(ds["position"].values[-1], run.particles(-1))
    frame = run.to_pandas()
    assert list(frame.index) == list(ds["step"].values)
    assert np.allclose(frame["time"], frame.index * run.parameters["lr"])


def test_notebook_modules_are_imported_only_when_asked():
    code = ("import sys, meanfield.storage as s; "
            "print(any(m in sys.modules for m in ('xarray', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------------ killed runs, held files


def test_repair_clears_the_flag_of_a_killed_writer(tmp_path):
    path = tmp_path / "killed.h5"
    killed_writer_file(path)
    assert write_flag(path)
    with pytest.raises(OSError, match="already open for"):
        h5py.File(path, "r")
    result = cli("repair", path.name, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "cleared" in result.stdout, describe(result)
    with h5py.File(path, "r") as h5:  # plain HDF5 opens it again
        assert h5["meanfield"].attrs["status"] == b"running"
    assert "nothing to repair" in cli("repair", path.name, cwd=tmp_path).stdout
    assert open_run(path).checkpoint().step == 8  # and it still resumes


def test_repair_refuses_a_file_with_a_live_writer(tmp_path):
    write_run(tmp_path / "r.h5", finish=None)
    writer = RunWriter.resume(tmp_path / "r.h5", meanfield.Config.from_dict(SMALL))[0]
    try:
        assert_input_error(cli("repair", "r.h5", cwd=tmp_path), "is being written by pid")
        assert write_flag(tmp_path / "r.h5")
    finally:
        writer.close()
    assert not lock_path(tmp_path / "r.h5").exists()


def test_clear_write_flag_checks_the_superblock(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5" * 10)
    with pytest.raises(ValueError):
        clear_write_flag(tmp_path / "x.h5")


def test_run_notices_its_file_was_replaced(tmp_path):
    path = tmp_path / "r.h5"
    write_run(path, records=5)
    run = open_run(path)
    assert len(run.observable("train_loss").step) == 5
    write_run(path, records=9)  # --overwrite: a new file renamed into place
    with pytest.warns(RuntimeWarning, match="was replaced"):
        assert len(run.observable("train_loss").step) == 9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.status == "completed"
    run.close()


# ----------------------------------------------------------------------- commands


def test_version():
    result = cli("--version", cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == f"meanfield {meanfield.__version__}"


def test_info_json(cli_run):
    result = cli("info", cli_run.name, "--json", cwd=cli_run.parent)
    assert result.returncode == 0, describe(result)
    info = json.loads(result.stdout)
    run = open_run(cli_run)
    assert info["status"] == "completed" and info["snapshots"] == 4 and info["last_step"] == 30
    assert info["parameters"]["m"] == 8 and info["writer"] is None
    assert info["checkpoint_step"] == run.checkpoint().step
    assert info["observables"]["test_loss"]["last_value"] == run.observable("test_loss").value[-1]
    documented = re.findall(r"``(\w+)``", meanfield.cli.info_dict.__doc__)
    assert set(info) | set(info["observables"]["test_loss"]) <= set(documented) | {"parameters"}


def _all_parsers(parser, prefix=()):
    yield prefix, parser
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        for name, sub in (choices.items() if isinstance(choices, dict) else ()):
            if hasattr(sub, "format_help"):
                yield from _all_parsers(sub, prefix + (name,))


def test_help_texts_have_no_rest_markup_and_run_help_has_an_example():
    for prefix, parser in _all_parsers(build_parser()):
        text = parser.format_help()
        assert "``" not in text and ":class:" not in text and "::\n" not in text, prefix
        assert "%%" not in text, prefix
    run_help = cli("run", "--help", cwd=REPO).stdout
    assert "example:" in run_help and "meanfield run run.toml" in run_help
    assert "Config().to_toml()" in run_help


def test_exit_codes_are_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for code in EXIT_CODES:
        assert re.search(rf"\b{code}\b", readme), code
    assert "meanfield repair" in readme and "meanfield info run.h5 --json" in readme
    assert "meanfield[notebook]" in readme


@pytest.mark.slow
def test_diverged_run_exits_3_and_is_recorded(tmp_path):
    (tmp_path / "c.toml").write_text(TINY)
    result = cli("run", "c.toml", "-o", "div.h5", "--set", "train.lr=1e4", "-q", cwd=tmp_path)
    assert result.returncode == 3 and "diverged" in result.stderr, describe(result)
    info = json.loads(cli("info", "div.h5", "--json", cwd=tmp_path).stdout)
    assert info["status"] == "diverged" and info["message"]


def test_version_1_files_are_read_and_resumed(tmp_path):
    path = tmp_path / "v1.h5"
    write_run(path, finish=None)
    with h5py.File(path, "r+") as h5:  # as version 1 wrote them: no extras, no axes
        for name in ("meanfield/checkpoint/extras", "meanfield/checkpoint/extras_size",
                     "particles/network/particle", "particles/network/coordinate"):
            del h5[name]
        h5["meanfield"].attrs["format_version"] = 1
    with open_run(path) as run:
        assert run.format_version == 1 and run.checkpoint().extras == {}
    writer, ck, _ = RunWriter.resume(path, meanfield.Config.from_dict(SMALL))
    writer.checkpoint(ck.step + 1, ck.particles, ck.rng_state, extras={"m": np.ones(2)})
    run = writer.finish("completed")
    assert run.status == "completed" and list(run.checkpoint().extras["m"]) == [1.0, 1.0]
