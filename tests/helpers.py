"""What several test files share, as plain functions and constants: the small command-line
settings a test dreams with, a photo written to a file, a free TCP port, and the command line
run in a process of its own (alone, or as two processes of one run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# The least work a dream takes on the command line: one level (the whole image), one step.
TINY_DREAM_FLAGS = ["--size", "32", "--iterations", "1", "--steps", "1", "--levels", "0", "-q"]

# No --levels: the CLI's own (the article's: the whole image and a quadrant tile) or those a test
# gives, before or after these (argparse takes the last). Refusals of work "over one call's tile
# steps" are counted over these two levels' tiles.
SMALL_DREAM_FLAGS = ["--size", "48", "--iterations", "1", "--steps", "2", "-q"]


def write_photo(path: str | os.PathLike, height: int = 30, width: int = 40, seed: int = 0) -> Path:
    """A random RGB photo of ``height x width`` saved at ``path`` (its format by its name)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return Path(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jaxdream_process(
    args: list[str], cwd: str | os.PathLike, xla_flags: str | None = None, **env: str
) -> subprocess.Popen:
    """``python -m jaxdream ARGS`` started in ``cwd`` with this repository's package, on
    ``xla_flags`` (default: one CPU device), with ``env`` added; its standard output and error
    are pipes of text. It shares the test session's persistent compilation cache (``conftest``
    puts it in a temporary folder): a program one such process compiled, the next loads."""
    from jaxdream.runtime import cpu_flags

    environment = dict(os.environ, XLA_FLAGS=xla_flags or cpu_flags(1))
    environment.update(PYTHONPATH=str(REPO), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "jaxdream", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def two_processes(args: list[str], cwd: str | os.PathLike) -> list[subprocess.Popen]:
    """Processes 0 and 1 of one two-process run of ``python -m jaxdream ARGS`` (a coordinator
    on a free local port), each on two CPU devices, without the persistent compilation cache:
    the two compile at once (nothing to load), and JAX writes an entry from process 0 while
    process 1 may be reading it."""
    from jaxdream.runtime import cpu_flags

    run = [*args, "--coordinator-address", f"127.0.0.1:{free_port()}", "--num-processes", "2"]
    return [
        jaxdream_process([*run, "--process-id", str(i)], cwd, cpu_flags(2), JAXDREAM_NO_CACHE="1")
        for i in range(2)
    ]


def refused(capsys, argv: list[str], *folders: str | os.PathLike) -> str:
    """Run the command line in this process on ``argv`` and check the refusal: exit code 2, one
    line ``jaxdream: error: ...`` on standard error, and each of ``folders`` as it was (nothing
    made, nothing left). Returns the line."""
    from jaxdream.cli import main

    before = [sorted(os.listdir(f)) for f in folders]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: "), err
    assert [sorted(os.listdir(f)) for f in folders] == before
    return err[0]


class LinenCNN(nn.Module):
    """A tiny Flax Linen CNN: SAME convolutions, a max-pool, a dense head; its input channels
    (gray or RGB) and side are those it is first given (``init``)."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), padding="SAME")(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(6, (3, 3), padding="SAME")(x))
        return nn.Dense(5)(x.reshape(x.shape[0], -1))
