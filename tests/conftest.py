"""Shared fixtures: a tiny random CNN for fast tests, the bundled CNN, where MNIST lies, and a
photo in a file (plain functions and constants the tests share are in ``tests/helpers.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from jaxdream.runtime import cpu_flags  # starts no JAX backend: XLA_FLAGS still count

# One CPU device for the whole session, whichever test (the CLI's configure_cpu_devices) runs
# first, with the CPU code-generation choices the CLI makes; tests/test_runtime.py checks
# several devices, and XLA's own defaults, in processes of their own.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count=1 {cpu_flags(1)}".strip()
)

import gc

import jax
import numpy as np
import pytest

from jaxdream.checkpoint import load_model
from jaxdream.model import CNN, init_params
from tests.helpers import write_photo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache_in_a_temporary_folder(tmp_path_factory):
    """The CLI turns on JAX's persistent cache; in tests it goes to a temporary folder."""
    os.environ["JAXDREAM_CACHE_DIR"] = str(tmp_path_factory.mktemp("xla-cache"))


@pytest.fixture(autouse=True)
def _collect_after_motion_tests(request):
    """After a video or zoom test, what it left for the garbage collector (decoders, encoders,
    their FFmpeg threads) is freed here, in the main thread between tests, not whenever a later
    test's allocation happens to trigger a collection, in whatever thread runs it."""
    yield
    if any(word in request.node.nodeid for word in ("video", "zoom")):
        gc.collect()


@pytest.fixture(scope="session")
def tiny():
    """A small random CNN: ``(model, params)``, initialised in one compiled program (the values
    an initialisation op by op gives, without compiling each operation on its own)."""
    model = CNN(widths=(4, 6, 8), hidden=12)
    return model, jax.jit(init_params, static_argnums=0)(model, jax.random.key(0))


@pytest.fixture(scope="session")
def bundled():
    """The trained CNN shipped with the package: ``(model, params)``."""
    return load_model()


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    """The prepared TFDS folder, or skip: ``$TFDS_DATA_DIR``, else ``../shared/tfds``."""
    for candidate in (os.environ.get("TFDS_DATA_DIR"), REPO.parent / "shared" / "tfds"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return str(candidate)
    pytest.skip("MNIST is not prepared here: set TFDS_DATA_DIR to a TFDS folder holding mnist")


@pytest.fixture
def photo(tmp_path) -> Path:
    """A random 40x60 RGB photo, ``photo.png`` in the test's temporary folder."""
    return write_photo(tmp_path / "photo.png", 40, 60)


@pytest.fixture
def smooth_image() -> np.ndarray:
    """A smooth, non-square gray test image in [0, 1]."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    img = (
        0.5
        + 0.25 * np.sin(x / 13.0) * np.cos(y / 17.0)
        + 0.2 * np.exp(-((x - 80) ** 2 + (y - 30) ** 2) / 300.0)
    )
    return img.astype(np.float32)
