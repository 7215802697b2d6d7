"""The notebooks run on a real Jupyter kernel (nbclient), as ``python notebooks/run.py`` runs
them, so they cannot rot; and each is committed with its outputs, small enough to show."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TRAINING_STEPS = "30"  # own_network's training here (OWN_NETWORK_STEPS; about a minute: 1000)


def _runner():
    """``notebooks/run.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("notebooks_run", ROOT / "notebooks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebooks_are_there():
    names = {p.stem for p in NOTEBOOKS}
    assert {"article", "cascade", "maps", "benchmarks", "quickstart", "own_network"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_with_outputs_and_small(path):
    nbformat = pytest.importorskip("nbformat")
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    assert all(c.outputs for c in code), f"{path.name} was saved without its outputs"
    assert any(
        o.get("data", {}).keys() & {"image/png", "image/jpeg"} for c in code for o in c.outputs
    ), f"{path.name} shows no figure"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # top to bottom
    assert path.stat().st_size < _runner().MAX_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_a_kernel(path, request):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    run = _runner()
    env = run.kernel_environment()
    env["OWN_NETWORK_STEPS"] = TRAINING_STEPS
    if run.needs_mnist(path):  # skips, saying why, where MNIST is absent
        env["TFDS_DATA_DIR"] = request.getfixturevalue("mnist_dir")
    book = run.execute(path, env)
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    assert any(o.get("data", {}).keys() & {"image/png", "image/jpeg"} for o in outputs)


@pytest.mark.parametrize(
    "name, says",
    [
        ("nothere", "no notebook 'nothere' (the notebooks: article"),
        ("FOLDER", "is a folder, not a notebook"),
        ("TEXT", "is not a notebook (Notebook does not appear to be JSON"),
        ("JSON", "is not a notebook"),
    ],
)
def test_the_runner_refuses_what_is_not_a_notebook_in_one_line(tmp_path, name, says):
    pytest.importorskip("nbformat")
    import subprocess
    import sys

    (tmp_path / "text.ipynb").write_text("not json\n")
    (tmp_path / "other.ipynb").write_text('{"cells": 3}')
    name = {"FOLDER": str(tmp_path), "TEXT": str(tmp_path / "text.ipynb")}.get(name, name)
    name = str(tmp_path / "other.ipynb") if name == "JSON" else name
    run = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "run.py"), "article", name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("run.py: error: ")
    assert says in lines[0], lines
    assert run.stdout == ""  # checked before any notebook ran (article is named first)
