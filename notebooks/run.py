"""Execute the notebooks on a Jupyter kernel and save them in place, with their outputs.

    python notebooks/run.py                 # every notebook
    python notebooks/run.py article maps    # some of them (names, or paths to them)

Each notebook runs top to bottom in a fresh ``python3`` kernel (jupyter_client starts it with
this interpreter), from the ``notebooks`` folder, importing this checkout's jaxdream, on one
CPU device with the CPU settings the tests use: the same outputs every run on one machine
(the benchmarks notebook's timings aside). Needs the ``notebooks`` extra; the maps notebook
needs MNIST (``TFDS_DATA_DIR``). tests/test_notebooks.py runs them the same way.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_BYTES = 2 << 20  # a saved notebook, outputs included
TIMEOUT_S = 900  # one cell


def kernel_environment() -> dict[str, str]:
    """The kernel's environment: this checkout first on the path, one CPU device."""
    sys.path.insert(0, str(ROOT))
    from jaxdream.runtime import cpu_flags

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count=1 {cpu_flags(1)}".strip())
    return env


def needs_mnist(path: Path) -> bool:
    import nbformat

    return bool(nbformat.read(path, as_version=4).metadata.get("jaxdream", {}).get("needs_mnist"))


def execute(path: Path, env: dict[str, str] | None = None):
    """The notebook at ``path`` executed in a fresh kernel (not saved): raises
    ``nbclient.exceptions.CellExecutionError`` where a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        book,
        kernel_name="python3",
        timeout=TIMEOUT_S,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=env if env is not None else kernel_environment())
    return book


def notebook_path(name: str) -> Path:
    """The notebook ``name`` names: a path to one, or the name of one in this folder (with or
    without ``.ipynb``). ``ValueError``, saying why, where it is none: missing, a folder, a
    file that is not a notebook."""
    import nbformat

    given = Path(name)
    named = HERE / f"{given.name.removesuffix('.ipynb')}.ipynb"
    path = named if name == given.name and named.exists() else given
    if path.is_dir():
        raise ValueError(f"{name} is a folder, not a notebook")
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(HERE.glob("*.ipynb")))
        raise ValueError(f"no notebook {name!r} (the notebooks: {known})")
    if path.stat().st_size > 4 * MAX_BYTES:
        raise ValueError(f"{path} is too large to be one of these notebooks")
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as e:  # not JSON, not a notebook: nbformat's own errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise ValueError(f"{path} is not a notebook ({first})") from None
    return path


def main(names: list[str]) -> int:
    import nbformat

    try:  # every name checked before any notebook runs
        paths = [notebook_path(n) for n in names] or sorted(HERE.glob("*.ipynb"))
    except ValueError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 2
    env = kernel_environment()
    for path in paths:
        if needs_mnist(path) and not env.get("TFDS_DATA_DIR"):
            print(f"{path.name} needs MNIST: set TFDS_DATA_DIR to a TFDS folder holding mnist")
            return 1
        t0 = time.perf_counter()
        book = execute(path, env)
        nbformat.write(book, path)
        size = path.stat().st_size
        print(f"{path.name}: {time.perf_counter() - t0:.0f} s, {size / 1e6:.2f} MB")
        if size > MAX_BYTES:
            print(f"{path.name} is over {MAX_BYTES / 2**20:.0f} MB: make its figures smaller")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
