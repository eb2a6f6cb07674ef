"""experiments/tour.py as a notebook: converted by jupytext, executed by nbclient.

The tour must run in a Jupyter kernel without an error, show every figure once
(a cell that returns a figure which pyplot also shows would show it twice) and
leave nothing behind, neither in the working folder nor in the temporary folder.
jupytext, nbclient and ipykernel come with ``pip install -e '.[test]'``.
"""

import ast
import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip(
    "jupytext", reason="jupytext is not installed (pip install -e '.[test]' brings it)")
nbclient = pytest.importorskip(
    "nbclient", reason="nbclient is not installed (pip install -e '.[test]' brings it)")

TOUR = Path(__file__).resolve().parents[1] / "experiments" / "tour.py"
KERNEL = "python3"


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _images(cell):
    return [out for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def test_tour_converts_and_displays_nothing_but_what_it_prints_and_plots():
    """No code cell ends in an expression whose value Jupyter would display, a figure say.

    Allowed: ``print(...)``, the tour's ``save(fig, name)`` (both return None), or a last
    line ending in ``;``.
    """
    nb = jupytext.read(TOUR)
    cells = _code_cells(nb)
    assert cells and any(cell.cell_type == "markdown" for cell in nb.cells)
    for cell in cells:
        body = ast.parse(cell.source).body
        shown = (body and isinstance(body[-1], ast.Expr)
                 and not (isinstance(body[-1].value, ast.Call)
                          and getattr(body[-1].value.func, "id", None) in ("print", "save"))
                 and not cell.source.rstrip().endswith(";"))
        assert not shown, f"this cell displays the value of its last line:\n{cell.source}"


def _kernel_or_skip():
    from jupyter_client.kernelspec import KernelSpecManager
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        pytest.skip(f"no Jupyter kernel {KERNEL!r} (pip install ipykernel)")


@pytest.mark.slow
def test_tour_runs_as_a_notebook(tmp_path, monkeypatch):
    _kernel_or_skip()
    work, temporary = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))         # the kernel's tempfile folder
    monkeypatch.delenv("MPLBACKEND", raising=False)      # the kernel's inline backend
    nb = jupytext.read(TOUR)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()

    cells = _code_cells(nb)
    outputs = [out for cell in cells for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    stderr = "".join(out.text for out in outputs
                     if out.output_type == "stream" and out.name == "stderr")
    # Python's warnings ("...: UserWarning: ..."), not the kernel's own log lines
    assert not re.search(r"\w+Warning: |Traceback", stderr), stderr
    assert not [out for out in outputs
                if out.output_type == "execute_result" and "image/png" in out.data]
    for cell in cells:
        assert len(_images(cell)) == len(re.findall(r"^save\(fig", cell.source, re.M)), cell.source
    assert sum(len(_images(cell)) for cell in cells) >= 1
    assert "W2 ~ m^" in "".join(out.get("text", "") for out in outputs)
    assert list(work.iterdir()) == []
    assert list(temporary.iterdir()) == []
